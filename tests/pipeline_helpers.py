"""Reading a LocalDagRunner run back from its metadata store and outputs."""

import dataclasses
import os

import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from pipeline import pipeline as pipeline_def
from pipeline.config import PipelineConfig, preset

NODES = ("MnistExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
         "DataValidationGate", "Transform", "Trainer", "ClassifierTrainer",
         "SampleQualityEvaluator", "Pusher")
State = metadata_store_pb2.Execution.State


def smoke_config(mnist_dir: str, output_dir: str) -> PipelineConfig:
    """The smoke preset in float32: what the e2e tests assert must not depend on whether the
    host computes bfloat16 natively (`auto`)."""
    config = dataclasses.replace(preset("smoke"), mnist_dir=mnist_dir, output_dir=str(output_dir))
    return config.replace_trainer(mixed_precision="float32")


def store(config: PipelineConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config)))


def executions_by_node(config: PipelineConfig) -> dict[str, list[metadata_store_pb2.Execution]]:
    """Node id -> its executions, oldest first."""
    db = store(config)
    result = {}
    for context in db.get_contexts_by_type("node"):
        node = context.name.split(".", 1)[1]
        result[node] = sorted(db.get_executions_by_context(context.id), key=lambda e: e.id)
    return result


def live_artifacts(config: PipelineConfig, type_name: str) -> list[metadata_store_pb2.Artifact]:
    return [a for a in store(config).get_artifacts_by_type(type_name)
            if a.state == metadata_store_pb2.Artifact.LIVE]


def pushed_versions(config: PipelineConfig) -> list[str]:
    base = pipeline_def.serving_model_dir(config)
    return sorted(tf.io.gfile.listdir(base)) if tf.io.gfile.exists(base) else []


def read_examples(pattern: str) -> list[tf.train.Example]:
    files = tf.io.gfile.glob(pattern)
    assert files, pattern
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(r.numpy()) for r in dataset]


def split_pattern(artifact: metadata_store_pb2.Artifact, split: str) -> str:
    return os.path.join(artifact.uri, f"Split-{split}", "*")
