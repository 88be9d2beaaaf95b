"""The training input pipeline: parse once, cache, shuffle, batch, add noise, prefetch."""

from __future__ import annotations

import tensorflow as tf

from dcgan_common.config import TrainerConfig
from dcgan_common import features
from dcgan_common.examples import transformed_examples
from dcgan_common.features import FAKE_LABELS, REAL, REAL_LABELS, Z


def with_noise(examples: tf.data.Dataset, config: TrainerConfig) -> tf.data.Dataset:
    """Global batches of real (image, label) pairs plus the noise and the sampled labels of
    every generator update of the step.

    The noise is stateless, keyed by the seed and the batch index, so the
    same config replays the same inputs.
    """
    batches = examples.batch(config.optimizer.batch_size, drop_remainder=True)
    size, steps = config.optimizer.batch_size, config.optimizer.generator_steps

    def attach(index: tf.Tensor, pair: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        seed = tf.stack([tf.constant(config.runtime.seed, tf.int64), index])
        noise_seed, labels_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))

        return {
            REAL: pair[0],
            REAL_LABELS: tf.cast(pair[1], tf.int64),
            Z: tf.random.stateless_normal([size, steps, config.model.z_dim], noise_seed),
            FAKE_LABELS: tf.random.stateless_uniform([size, steps], labels_seed, 0,
                                                     features.NUM_CLASSES, tf.int64),
        }

    return batches.enumerate().map(attach, num_parallel_calls=tf.data.AUTOTUNE)


def training_dataset(file_patterns: list[str], config: TrainerConfig) -> tf.data.Dataset:
    examples = transformed_examples(file_patterns).cache()
    examples = examples.shuffle(config.runtime.shuffle_buffer, seed=config.runtime.seed).repeat()
    dataset = with_noise(examples, config).prefetch(tf.data.AUTOTUNE)
    # Multi-worker: every worker builds the same global batches and keeps its share.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
