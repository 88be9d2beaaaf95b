"""create_pipeline: the one definition of the DAG; runners only choose where it runs."""

from __future__ import annotations

import dataclasses
import json
import os

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.base.base_component import BaseComponent

import components
from components import atomic_pusher
from components.data_validation_gate import DataValidationGate
from components.mnist_example_gen import MnistExampleGen
from components.sample_quality_evaluator import SampleQualityEvaluator
from dcgan_common import datasets
from dcgan_common.config import (CLASSIFIER_CONFIG_KEY, TRAINER_CONFIG_KEY,
                                  TRANSFORM_CHANNELS_KEY, PipelineConfig)

SCHEMA_DIR = os.path.join(os.path.dirname(components.__file__), "schema")
SCHEMA_FILE = "schema.pbtxt"  # In SCHEMA_DIR/<dataset>/, beside its TFDV custom validations.
CUSTOM_VALIDATIONS_FILE = "custom_validations.pbtxt"
PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"
RUN_FN = "trainer.run.run_fn"
CLASSIFIER_RUN_FN = "trainer.classifier.run_fn"
# Node ids become Kubeflow task names, hence Argo names: letters, digits and '-' only
# (dcgan_kfp/backend_rules.py).
CLASSIFIER_NODE_ID = "ClassifierTrainer"


def serving_model_dir(config: PipelineConfig) -> str:
    """TF Serving's layout: <serving base>/<model name>/<numeric version>/."""
    return os.path.join(config.serving_base or os.path.join(config.output_dir, "serving"),
                        config.model_name)


def pipeline_root(config: PipelineConfig) -> str:
    return os.path.join(config.output_dir, "pipeline_root")


def checkpoint_root(config: PipelineConfig) -> str:
    """Stable across executions, so a killed Trainer resumes (trainer/run.py keys it further)."""
    return config.trainer.runtime.checkpoint_dir or os.path.join(config.output_dir, "checkpoints")


def metadata_path(config: PipelineConfig) -> str:
    return os.path.join(config.output_dir, "metadata.sqlite")


def schema_file(config: PipelineConfig, schema_dir: str = SCHEMA_DIR) -> str:
    """The curated schema of the configured dataset."""
    return config.schema_file or os.path.join(schema_dir, config.dataset, SCHEMA_FILE)


def data_components(config: PipelineConfig,
                    example_gen: BaseComponent | None = None) -> list[BaseComponent]:
    """Ingestion, validation and Transform: the DAG up to the Trainers (Transform is last)."""
    example_gen = example_gen or MnistExampleGen(mnist_dir=config.mnist_dir,
                                                 dataset_name=config.dataset,
                                                 seed=config.dataset_seed)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file(config))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"],
                                                  schema=schema_gen.outputs["schema"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    with open(os.path.join(SCHEMA_DIR, config.dataset, CUSTOM_VALIDATIONS_FILE),
              encoding="utf-8") as f:
        custom_validations = f.read()
    data_gate = DataValidationGate(anomalies=example_validator.outputs["anomalies"],
                                   statistics=statistics_gen.outputs["statistics"],
                                   schema=schema_gen.outputs["schema"],
                                   custom_validations=custom_validations)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={TRANSFORM_CHANNELS_KEY: datasets.dataset(config.dataset).channels})
    transform.add_upstream_node(data_gate)  # No transformation of data with anomalies.
    return [example_gen, schema_gen, statistics_gen, example_validator, data_gate, transform]


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
    example_gen: BaseComponent | None = None,
) -> tfx.dsl.Pipeline:
    """The whole DAG. `example_gen` replaces MnistExampleGen as the source of raw
    examples (output key `examples`); the data-validation tests feed bad records that way."""
    data = data_components(config, example_gen)
    transform = data[-1]
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(splits=["train"],
                                       num_steps=config.trainer.optimizer.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=0),
        custom_config={TRAINER_CONFIG_KEY: config.trainer.replace(
            runtime={"checkpoint_dir": checkpoint_root(config)}).to_dict()})
    classifier = tfx.components.Trainer(
        run_fn=CLASSIFIER_RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={CLASSIFIER_CONFIG_KEY: dataclasses.replace(
            config.classifier, floor_samples=config.evaluator.num_samples).to_dict()},
    ).with_id(CLASSIFIER_NODE_ID)
    evaluator = SampleQualityEvaluator(
        generator=trainer.outputs["model"],
        classifier=classifier.outputs["model"],
        examples=transform.outputs["transformed_examples"],
        serving_model_dir=serving_model_dir(config),
        evaluator_config=json.dumps(config.evaluator.to_dict()))
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        custom_executor_spec=executor_spec.ExecutorClassSpec(atomic_pusher.Executor),
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=serving_model_dir(config))))
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root(config),
        components=[*data, trainer, classifier, evaluator, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args))
