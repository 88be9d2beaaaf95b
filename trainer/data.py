"""The training input pipeline: parse once, cache, shuffle, batch, add noise, prefetch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipeline.config import TrainerConfig
from trainer import features
from trainer.gan import FAKE_LABELS, REAL, REAL_LABELS, Z

PARSE_BATCH = 1024


def transformed_examples(file_patterns: list[str]) -> tf.data.Dataset:
    """(image float32 [28, 28, 1] in [-1, 1], label int64) pairs, parsed in vectorized batches."""
    spec = features.transformed_feature_spec()
    files = tf.data.Dataset.list_files(file_patterns, shuffle=False)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                      num_parallel_reads=tf.data.AUTOTUNE)

    def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, spec)
        images = tf.reshape(parsed[features.IMAGE_XF], (-1, *features.IMAGE_SHAPE))
        return images, parsed[features.LABEL_XF]

    return records.batch(PARSE_BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def load_arrays(file_patterns: list[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` (default: all) transformed examples as numpy arrays."""
    dataset = transformed_examples(file_patterns)
    if limit is not None:
        dataset = dataset.take(limit)
    images, labels = next(iter(dataset.batch(1 << 20)))
    return images.numpy(), labels.numpy()


def with_noise(examples: tf.data.Dataset, config: TrainerConfig) -> tf.data.Dataset:
    """Global batches of real (image, label) pairs plus the noise and the sampled labels of
    every generator update of the step.

    The noise is stateless, keyed by the seed and the batch index, so the
    same config replays the same inputs.
    """
    batches = examples.batch(config.batch_size, drop_remainder=True)
    size, steps = config.batch_size, config.generator_steps

    def attach(index: tf.Tensor, pair: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        seed = tf.stack([tf.constant(config.seed, tf.int64), index])
        noise_seed, labels_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))

        return {
            REAL: pair[0],
            REAL_LABELS: tf.cast(pair[1], tf.int64),
            Z: tf.random.stateless_normal([size, steps, config.z_dim], noise_seed),
            FAKE_LABELS: tf.random.stateless_uniform([size, steps], labels_seed, 0,
                                                     features.NUM_CLASSES, tf.int64),
        }

    return batches.enumerate().map(attach, num_parallel_calls=tf.data.AUTOTUNE)


def training_dataset(file_patterns: list[str], config: TrainerConfig) -> tf.data.Dataset:
    examples = transformed_examples(file_patterns).cache()
    examples = examples.shuffle(config.shuffle_buffer, seed=config.seed).repeat()
    dataset = with_noise(examples, config).prefetch(tf.data.AUTOTUNE)
    # Multi-worker: every worker builds the same global batches and keeps its share.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
