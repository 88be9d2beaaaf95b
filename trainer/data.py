"""The training input pipeline: parse once, cache, shuffle, batch, add noise, prefetch."""

from __future__ import annotations

import tensorflow as tf

from pipeline.config import TrainerConfig
from trainer import features
from trainer.gan import REAL, Z_DISCRIMINATOR, Z_GENERATOR

PARSE_BATCH = 1024


def transformed_images(file_patterns: list[str],
                       feature_spec: dict[str, tf.io.FixedLenFeature]) -> tf.data.Dataset:
    """Every transformed image as float32 [28, 28, 1], parsed in vectorized batches."""
    files = tf.data.Dataset.list_files(file_patterns, shuffle=False)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                      num_parallel_reads=tf.data.AUTOTUNE)
    parsed = records.batch(PARSE_BATCH).map(
        lambda serialized: tf.io.parse_example(serialized, feature_spec)[features.IMAGE_XF],
        num_parallel_calls=tf.data.AUTOTUNE)
    return parsed.unbatch().map(lambda pixels: tf.reshape(pixels, features.IMAGE_SHAPE))


def with_noise(images: tf.data.Dataset, config: TrainerConfig) -> tf.data.Dataset:
    """Global batches of real images plus the noise of every fake batch of the step.

    The noise is stateless, keyed by the seed and the batch index, so the
    same config replays the same inputs.
    """
    batches = images.batch(config.batch_size, drop_remainder=True)

    def attach(index: tf.Tensor, real: tf.Tensor) -> dict[str, tf.Tensor]:
        seed = tf.stack([tf.constant(config.seed, tf.int64), index])
        d_seed, g_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        return {
            REAL: real,
            Z_DISCRIMINATOR: tf.random.stateless_normal([config.batch_size, config.z_dim], d_seed),
            Z_GENERATOR: tf.random.stateless_normal(
                [config.batch_size, config.generator_steps, config.z_dim], g_seed),
        }

    return batches.enumerate().map(attach, num_parallel_calls=tf.data.AUTOTUNE)


def training_dataset(file_patterns: list[str], feature_spec: dict[str, tf.io.FixedLenFeature],
                     config: TrainerConfig) -> tf.data.Dataset:
    images = transformed_images(file_patterns, feature_spec).cache()
    images = images.shuffle(config.shuffle_buffer, seed=config.seed).repeat()
    return with_noise(images, config).prefetch(tf.data.AUTOTUNE)
