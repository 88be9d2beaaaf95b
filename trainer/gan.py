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

import functools

import keras
import tensorflow as tf

from dcgan_common.config import TrainerConfig
from dcgan_common import features
from dcgan_common.features import FAKE_LABELS, REAL, REAL_LABELS, Z
from trainer.averaging import WeightAverage, recompute_batch_norm_statistics
from trainer.export import float32_copy
from trainer.hardware import resolve
from trainer.models import (StepwiseSpectralNormalization, build_discriminator, build_generator,
                            category_of)


# The instance-noise and shift key of the discriminator's look at shifted real images (the real
# minibatch is view 0, the fakes 1 and up).
SHIFT_VIEW = -1


def shifted(images: tf.Tensor, max_shift: int, seed: tf.Tensor) -> tf.Tensor:
    """Each image [N, H, W, 1] in [-1, 1] moved by its own whole-pixel offsets in
    -max_shift..max_shift (rows and columns, stateless from `seed`), background (-1) filling
    what comes in. Two one-hot shift matrices per image: matmuls, so it runs and
    differentiates on any device, XLA included."""
    size = images.shape[1]
    offsets = tf.random.stateless_uniform([2, tf.shape(images)[0]], seed, -max_shift,
                                          max_shift + 1, dtype=tf.int32)
    # rows[n, i, j] = 1 where output row i reads input row i - offset (none: zero, background).
    rows, columns = (tf.one_hot(tf.range(size)[tf.newaxis] - offset[:, tf.newaxis], size,
                                dtype=images.dtype) for offset in tf.unstack(offsets))
    ink = images[..., 0] + 1.0  # Background 0, so what shifts in is background.
    moved = tf.matmul(tf.matmul(rows, ink), columns, transpose_b=True)
    return (moved - 1.0)[..., tf.newaxis]


def _adam(config: TrainerConfig, learning_rate: float,
          updates_per_step: int) -> keras.optimizers.Optimizer:
    """Adam for a network updated `updates_per_step` times per train step."""
    if config.learning_rate_decay:  # Linear to 0 at train_steps (the optimizer counts updates).
        learning_rate = keras.optimizers.schedules.PolynomialDecay(
            learning_rate, config.train_steps * updates_per_step, end_learning_rate=0.0)
    adam = keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, epsilon=config.adam_epsilon)
    # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
    return keras.optimizers.LossScaleOptimizer(adam) if config.mixed_precision == \
        "mixed_float16" else adam


class DCGAN:
    """Both networks, their two Adam optimizers and the distributed train step."""

    def __init__(self, config: TrainerConfig, strategy: tf.distribute.Strategy):
        self.config = config = resolve(config)
        self.strategy = strategy
        # The seed fixes the initial weights too (not only the data order and the noise), so a
        # run can be repeated: unseeded, two runs of one config differed from the first step.
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            self.generator = build_generator(config)
            self.discriminator = build_discriminator(config)
            self.g_optimizer = _adam(config, config.learning_rate, config.generator_steps)
            # Two discriminator updates per step: the real and the fake minibatch.
            self.d_optimizer = _adam(config, config.learning_rate * config.discriminator_lr_scale,
                                     2)
            # Built here, in the strategy's scope, not lazily inside the replica step.
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.average = (WeightAverage(self.generator, config.ema_decay)
                            if config.ema_decay else None)
        # Two compiled steps, with and without the R1 penalty (lazy R1 picks one per step).
        self._compiled_steps = {r1: tf.function(functools.partial(self._train_step, r1=r1),
                                                jit_compile=config.jit_compile)
                                for r1 in {False, bool(config.r1_weight)}}

    def _loss(self, logits: tf.Tensor, target: float) -> tf.Tensor:
        logits = tf.cast(logits, tf.float32)
        per_example = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.fill(tf.shape(logits), target), logits=logits)
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def _generator_loss_on(self, fake_logits: tf.Tensor) -> tf.Tensor:
        """The generator's loss: every fake towards "real", or with top-k updates only this
        replica's k most real-looking fakes (k from the annealed fraction of its batch),
        averaged over the k of every replica."""
        if self.config.top_k_fraction == 1.0:
            return self._loss(fake_logits, 1.0)
        logits = tf.cast(fake_logits, tf.float32)[:, 0]
        kept = tf.math.top_k(logits, self._top_k(tf.shape(logits)[0])).values
        per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(kept),
                                                              logits=kept)
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        return tf.reduce_sum(per_example) / tf.cast(tf.size(kept) * replicas, tf.float32)

    def _top_k(self, batch: tf.Tensor) -> tf.Tensor:
        """ceil(fraction * batch), the fraction falling linearly from 1 to top_k_fraction."""
        config = self.config
        progress = (tf.minimum(1.0, tf.cast(self.step, tf.float32) / config.top_k_anneal_steps)
                    if config.top_k_anneal_steps else 1.0)
        fraction = 1.0 - (1.0 - config.top_k_fraction) * progress
        return tf.cast(tf.math.ceil(fraction * tf.cast(batch, tf.float32)), tf.int32)

    def _global_mean(self, values: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(values) / self.config.batch_size

    def _apply(self, tape: tf.GradientTape, loss: tf.Tensor, model: keras.Model,
               optimizer: keras.optimizers.Optimizer) -> None:
        """One optimizer update of `model` from this replica's `loss` on `tape`."""
        variables = model.trainable_variables
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            with tape:  # float16: scaled on the tape, so small gradients stay representable.
                loss = optimizer.scale_loss(loss)
        # Keras 3.4's optimizer applies each replica's own gradient to that replica's
        # copy of a mirrored variable (its all-reduce runs in cross-replica context,
        # where it is skipped), so the copies drift apart. Summing here makes every
        # replica apply the global-batch gradient; tests/test_gan.py checks it.
        # Only the variables the loss depends on (the real minibatch's loss reaches the
        # latent-category head only with real_cluster_weight): Adam leaves the others, and
        # their moments, as they are.
        pairs = [(gradient, variable) for gradient, variable
                 in zip(tape.gradient(loss, variables), variables) if gradient is not None]
        gradients = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [gradient for gradient, _ in pairs])
        optimizer.apply_gradients(zip(gradients, [variable for _, variable in pairs]))

    def inputs(self, first: tf.Tensor, labels: tf.Tensor) -> tf.Tensor | list[tf.Tensor]:
        """A model's inputs: `first` alone, or with the one-hot labels when conditional."""
        if not self.config.conditional:
            return first
        return [first, tf.one_hot(labels, features.NUM_CLASSES)]

    def _critic(self, images: tf.Tensor, labels: tf.Tensor,
                view: int) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The discriminator's logit for each image, and its latent-category logits (None
        without `latent_categories`). `view` keys the instance noise: within a step, one
        number per minibatch the discriminator looks at."""
        outputs = self.discriminator(self.inputs(self._noisy(images, view), labels),
                                     training=True)
        return (outputs[0], outputs[1]) if self.config.latent_categories else (outputs, None)

    def instance_noise_stddev(self) -> tf.Tensor:
        """instance_noise, falling linearly to 0 at instance_noise_anneal_steps."""
        config = self.config
        if not config.instance_noise_anneal_steps:
            return tf.constant(config.instance_noise)
        progress = tf.cast(self.step, tf.float32) / config.instance_noise_anneal_steps
        return config.instance_noise * tf.maximum(0.0, 1.0 - progress)

    def _stateless_seed(self, view: int) -> tf.Tensor:
        """A random seed keyed by the run's seed, the step, the replica and `view`, so a run
        replays exactly."""
        seed = tf.constant([self.config.seed, view], tf.int64)
        for data in (self.step, tf.distribute.get_replica_context().replica_id_in_sync_group):
            seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))
        return seed

    def _noisy(self, images: tf.Tensor, view: int) -> tf.Tensor:
        """`images` with instance noise (stateless)."""
        if not self.config.instance_noise:
            return images
        noise = tf.random.stateless_normal(tf.shape(images), self._stateless_seed(view),
                                           dtype=images.dtype)
        return images + tf.cast(self.instance_noise_stddev(), images.dtype) * noise

    def _real_critic(self, images: tf.Tensor, labels: tf.Tensor, r1: bool
                     ) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor]:
        """The discriminator's logits and latent-category logits on the real minibatch, and
        with `r1` the R1 penalty: r1_weight * r1_interval / 2 times the mean over real images
        of |d logit / d image|^2 (else 0). Its gradient reaches the discriminator's weights
        through the input gradient (double backpropagation)."""
        if not r1:
            return (*self._critic(images, labels, view=0), tf.constant(0.0))
        with tf.GradientTape() as input_tape:
            input_tape.watch(images)
            logits, category_logits = self._critic(images, labels, view=0)
            summed = tf.reduce_sum(tf.cast(logits, tf.float32))
        gradient = tf.cast(input_tape.gradient(summed, images), tf.float32)
        per_example = tf.reduce_sum(tf.square(gradient), axis=[1, 2, 3])
        weight = 0.5 * self.config.r1_weight * self.config.r1_interval
        return logits, category_logits, weight * tf.nn.compute_average_loss(
            per_example, global_batch_size=self.config.batch_size)

    def _real_cluster_loss(self, category_logits: tf.Tensor | None) -> tf.Tensor:
        """real_cluster_weight * (mean entropy of the head's prediction per real image - the
        entropy of its mean prediction over the global batch); 0 when off.

        The mean prediction is all-reduced, so every replica holds the global batch's; each
        adds a 1/replicas share of its entropy, and the gradients summed over replicas (the
        all-reduce's gradient is an all-reduce) are the single-device ones."""
        if not self.config.real_cluster_weight:
            return tf.constant(0.0)
        log_p = tf.nn.log_softmax(tf.cast(category_logits, tf.float32))
        p = tf.exp(log_p)
        conditional = tf.nn.compute_average_loss(-tf.reduce_sum(p * log_p, axis=1),
                                                 global_batch_size=self.config.batch_size)
        context = tf.distribute.get_replica_context()
        mean = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                  tf.reduce_sum(p, axis=0)) / self.config.batch_size
        marginal = -tf.reduce_sum(mean * tf.math.log(mean + 1e-12))
        return self.config.real_cluster_weight * (
            conditional - marginal / context.num_replicas_in_sync)

    def _cluster_consistency_loss(self, images: tf.Tensor, labels: tf.Tensor,
                                  category_logits: tf.Tensor | None) -> tf.Tensor:
        """cluster_consistency_weight times the mean over real images of KL(p(image) ||
        p(shifted image)), p the head's prediction, the first held fixed; 0 when off."""
        if not self.config.cluster_consistency_weight:
            return tf.constant(0.0)
        _, shifted_logits = self._critic(
            shifted(images, self.config.cluster_shift_pixels, self._stateless_seed(SHIFT_VIEW)),
            labels, view=SHIFT_VIEW)
        target = tf.stop_gradient(tf.nn.log_softmax(tf.cast(category_logits, tf.float32)))
        per_example = tf.reduce_sum(
            tf.exp(target) * (target - tf.nn.log_softmax(tf.cast(shifted_logits, tf.float32))),
            axis=1)
        return self.config.cluster_consistency_weight * tf.nn.compute_average_loss(
            per_example, global_batch_size=self.config.batch_size)

    def _code_loss(self, category_logits: tf.Tensor | None, z: tf.Tensor) -> tf.Tensor:
        """InfoGAN's mutual-information term: how badly the discriminator's head recovers the
        latent category of z from the fakes (0 without `latent_categories`)."""
        if category_logits is None:
            return tf.constant(0.0)
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=category_of(z, self.config.latent_categories),
            logits=tf.cast(category_logits, tf.float32))
        return self.config.latent_code_weight * tf.nn.compute_average_loss(
            per_example, global_batch_size=self.config.batch_size)

    def _generator_losses(self, z: tf.Tensor, labels: tf.Tensor,
                          view: int) -> tuple[tf.Tensor, tf.Tensor]:
        """How far the discriminator is from calling fresh fakes real, and the code term."""
        fakes = self.generator(self.inputs(z, labels), training=True)
        logits, category_logits = self._critic(fakes, labels, view)
        return self._generator_loss_on(logits), self._code_loss(category_logits, z)

    def _replica_step(self, batch: dict[str, tf.Tensor], r1: bool) -> dict[str, tf.Tensor]:
        config = self.config

        # 1. Discriminator on an all-real minibatch, towards the (smoothed) real target.
        with tf.GradientTape() as tape:
            real_logits, real_category_logits, r1_penalty = self._real_critic(
                batch[REAL], batch[REAL_LABELS], r1)
            d_loss_real = self._loss(real_logits, config.real_target)
            cluster_loss = self._real_cluster_loss(real_category_logits)
            consistency_loss = self._cluster_consistency_loss(
                batch[REAL], batch[REAL_LABELS], real_category_logits)
            d_total = d_loss_real + r1_penalty + cluster_loss + consistency_loss
        self._apply(tape, d_total, self.discriminator, self.d_optimizer)

        # 2. Discriminator on an all-fake minibatch, then 3. the first generator update on the
        #    same fakes: the generator's forward pass is recorded once, on the generator's tape.
        z, labels = batch[Z][:, 0], batch[FAKE_LABELS][:, 0]
        with tf.GradientTape() as generator_tape:
            fakes = self.generator(self.inputs(z, labels), training=True)
            with generator_tape.stop_recording():  # The discriminator's update, unrecorded.
                with tf.GradientTape() as tape:
                    fake_logits, category_logits = self._critic(fakes, labels, view=1)
                    d_loss_fake = self._loss(fake_logits, config.fake_target)
                    code_loss = self._code_loss(category_logits, z)
                    d_total = d_loss_fake + (code_loss if config.code_head_on_fakes else 0.0)
                self._apply(tape, d_total, self.discriminator, self.d_optimizer)
            # The discriminator has changed: it scores the same fakes again (the same view).
            logits, category_logits = self._critic(fakes, labels, view=1)
            g_loss = self._generator_loss_on(logits)
            g_total = g_loss + self._code_loss(category_logits, z)
        self._apply(generator_tape, g_total, self.generator, self.g_optimizer)

        # 4. The other generator updates, each on fresh noise.
        for index in range(1, config.generator_steps):
            with tf.GradientTape() as tape:
                g_loss, g_code_loss = self._generator_losses(
                    batch[Z][:, index], batch[FAKE_LABELS][:, index], view=1 + index)
                g_total = g_loss + g_code_loss
            self._apply(tape, g_total, self.generator, self.g_optimizer)

        metrics = {
            "d_loss": d_loss_real + d_loss_fake,
            "g_loss": g_loss,
            "d_real": self._global_mean(tf.sigmoid(real_logits)),
            "d_fake": self._global_mean(tf.sigmoid(fake_logits)),
        }
        if config.latent_categories:  # The head's loss on the fakes of its update.
            metrics["code_loss"] = code_loss
        if r1:
            metrics["r1_penalty"] = r1_penalty
        if config.real_cluster_weight:
            metrics["real_cluster_loss"] = cluster_loss
        if config.cluster_consistency_weight:
            metrics["cluster_consistency_loss"] = consistency_loss
        return metrics

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One step on a distributed global batch; returns global-batch metrics (r1_penalty
        only on the steps that apply it: every r1_interval-th, counted from `step` 0)."""
        r1 = bool(self.config.r1_weight) and int(self.step.numpy()) % self.config.r1_interval == 0
        return self._compiled_steps[r1](batch)

    def _train_step(self, batch: dict[str, tf.Tensor], r1: bool) -> dict[str, tf.Tensor]:
        """The compiled step: replica steps, then the weight average; `r1` is fixed per trace."""
        for layer in self.discriminator.layers:  # Cross-replica: see StepwiseSpectralNormalization.
            if isinstance(layer, StepwiseSpectralNormalization):
                layer.project()
        per_replica = self.strategy.run(self._replica_step, args=(batch, r1))
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
