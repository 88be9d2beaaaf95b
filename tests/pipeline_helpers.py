"""Reading a LocalDagRunner run back from its outputs; the metadata store through
pipeline/metadata.py, as the runner reads it."""

import dataclasses
import os

import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from dcgan_common.config import PipelineConfig, preset
from pipeline import pipeline as pipeline_def

NODES = ("MnistExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
         "DataValidationGate", "Transform", "Trainer", "ClassifierTrainer",
         "SampleQualityEvaluator", "Pusher")


def smoke_config(mnist_dir: str, output_dir: str) -> PipelineConfig:
    """The smoke preset in float32: what the e2e tests assert must not depend on whether the
    host computes bfloat16 natively (`auto`)."""
    config = dataclasses.replace(preset("smoke"), mnist_dir=mnist_dir, output_dir=str(output_dir))
    return config.replace_trainer(runtime={"mixed_precision": "float32"})


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
