"""The DCGAN training step, written for a tf.distribute strategy.

One step: a discriminator update on an all-real minibatch, one on an all-fake
minibatch (separate batches, so BatchNorm never mixes them), then
`generator_steps` generator updates with the "real" target. As in the original
DCGAN code, the first generator update uses the noise of the discriminator's
fake batch, so the fakes the discriminator just saw are reused, not generated
again: one generator forward pass fewer per step (bench/bench_train.py measures
it). Losses are sigmoid cross-entropy on logits, averaged over the global batch,
so gradients summed over replicas equal the single-device gradients.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from pipeline.config import TrainerConfig
from trainer import features
from trainer.averaging import WeightAverage, recompute_batch_norm_statistics
from trainer.export import float32_copy
from trainer.hardware import resolve
from trainer.models import build_discriminator, build_generator

# Keys of one batch: real images and labels; the noise (and, for the conditional model,
# the sampled labels) of every G update, [N, generator_steps, ...]; the first one's
# fakes are also the D fake batch.
REAL = "images"
REAL_LABELS = "labels"
Z = "z"
FAKE_LABELS = "fake_labels"


def _adam(config: TrainerConfig, learning_rate: float) -> keras.optimizers.Optimizer:
    adam = keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, epsilon=config.adam_epsilon)
    # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
    return keras.optimizers.LossScaleOptimizer(adam) if config.mixed_precision == \
        "mixed_float16" else adam


class DCGAN:
    """Both networks, their two Adam optimizers and the distributed train step."""

    def __init__(self, config: TrainerConfig, strategy: tf.distribute.Strategy):
        self.config = config = resolve(config)
        self.strategy = strategy
        with strategy.scope():
            self.generator = build_generator(config)
            self.discriminator = build_discriminator(config)
            self.g_optimizer = _adam(config, config.learning_rate)
            self.d_optimizer = _adam(config, config.learning_rate * config.discriminator_lr_scale)
            # Built here, in the strategy's scope, not lazily inside the replica step.
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.average = (WeightAverage(self.generator, config.ema_decay)
                            if config.ema_decay else None)
        self.train_step = tf.function(self._train_step, jit_compile=config.jit_compile)

    def _loss(self, logits: tf.Tensor, target: float) -> tf.Tensor:
        logits = tf.cast(logits, tf.float32)
        per_example = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.fill(tf.shape(logits), target), logits=logits)
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def _global_mean(self, values: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(values) / self.config.batch_size

    def _minimize(self, logits_fn: Callable[[], tf.Tensor], target: float, model: keras.Model,
                  optimizer: keras.optimizers.Optimizer,
                  tape: tf.GradientTape | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """One update of `model` towards `target` for the logits; returns (loss, logits).

        `tape` may already hold the start of the computation (the generator's forward pass).
        """
        variables = model.trainable_variables
        tape = tape or tf.GradientTape()
        with tape:
            logits = logits_fn()
            loss = self._loss(logits, target)
            scaled = (optimizer.scale_loss(loss)
                      if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss)
        # Keras 3.4's optimizer applies each replica's own gradient to that replica's
        # copy of a mirrored variable (its all-reduce runs in cross-replica context,
        # where it is skipped), so the copies drift apart. Summing here makes every
        # replica apply the global-batch gradient; tests/test_gan.py checks it.
        gradients = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tape.gradient(scaled, variables))
        optimizer.apply_gradients(zip(gradients, variables))
        return loss, logits

    def inputs(self, first: tf.Tensor, labels: tf.Tensor) -> tf.Tensor | list[tf.Tensor]:
        """A model's inputs: `first` alone, or with the one-hot labels when conditional."""
        if not self.config.conditional:
            return first
        return [first, tf.one_hot(labels, features.NUM_CLASSES)]

    def _replica_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        config, d, g, inputs = self.config, self.discriminator, self.generator, self.inputs
        d_loss_real, real_logits = self._minimize(
            lambda: d(inputs(batch[REAL], batch[REAL_LABELS]), training=True),
            config.real_target, d, self.d_optimizer)
        first_labels = batch[FAKE_LABELS][:, 0]
        with tf.GradientTape() as g_tape:  # Kept for the first generator update.
            first_fake = g(inputs(batch[Z][:, 0], first_labels), training=True)
        def first_fake_logits() -> tf.Tensor:
            return d(inputs(first_fake, first_labels), training=True)

        d_loss_fake, fake_logits = self._minimize(first_fake_logits, config.fake_target, d,
                                                  self.d_optimizer)
        # D has changed: its logits for the same fakes are computed again, on the kept tape.
        g_loss, _ = self._minimize(first_fake_logits, 1.0, g, self.g_optimizer, tape=g_tape)
        for index in range(1, config.generator_steps):
            z, labels = batch[Z][:, index], batch[FAKE_LABELS][:, index]
            g_loss, _ = self._minimize(
                lambda: d(inputs(g(inputs(z, labels), training=True), labels), training=True),
                1.0, g, self.g_optimizer)
        return {
            "d_loss": d_loss_real + d_loss_fake,
            "g_loss": g_loss,
            "d_real": self._global_mean(tf.sigmoid(real_logits)),
            "d_fake": self._global_mean(tf.sigmoid(fake_logits)),
        }

    def _train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One step on a distributed global batch; returns global-batch metrics."""
        per_replica = self.strategy.run(self._replica_step, args=(batch,))
        if self.average is not None:
            self.average.update([v.value for v in self.generator.trainable_variables], self.step)
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()}

    def served_generator(self) -> keras.Model:
        """What is exported, evaluated and drawn in the sample grids: a float32 copy of the
        generator, with the averaged weights and their standing BatchNorm statistics when
        `ema_decay` is set."""
        generator = float32_copy(self.generator)
        if self.average is None:
            return generator
        for variable, average in zip(generator.trainable_variables, self.average.averages):
            variable.assign(tf.convert_to_tensor(average))
        recompute_batch_norm_statistics(generator, self._standing_inputs,
                                        self.config.ema_standing_samples)
        return generator

    def _standing_inputs(self, index: int, size: int) -> tf.Tensor | list[tf.Tensor]:
        """Fixed noise (and labels) for the standing statistics: the same for every export."""
        seed = tf.constant([self.config.seed, -2 - index], tf.int64)
        z = tf.random.stateless_normal([size, self.config.z_dim], seed=seed)
        labels = tf.random.stateless_uniform([size], seed, 0, features.NUM_CLASSES, tf.int64)
        return self.inputs(z, labels)
