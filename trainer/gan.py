"""The DCGAN training step, written for a tf.distribute strategy.

One step: a discriminator update on an all-real minibatch, one on an all-fake
minibatch (separate batches, so BatchNorm never mixes them), then
`generator_steps` generator updates with the "real" target. As in the original
DCGAN code, the first generator update uses the noise of the discriminator's
fake batch, so the fakes the discriminator just saw are reused, not generated
again: one generator forward pass fewer per step (bench/bench_train.py measures
it). Losses are sigmoid cross-entropy on logits, averaged over the global batch,
so gradients summed over replicas equal the single-device gradients. The extra
terms of the objective (trainer/terms/) add to these losses where they apply.
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
from trainer.models import StepwiseSpectralNormalization, build_discriminator, build_generator
from trainer.terms import Term, View, terms_for


def _adam(config: TrainerConfig) -> keras.optimizers.Optimizer:
    adam = keras.optimizers.Adam(config.optimizer.learning_rate, beta_1=config.optimizer.beta_1,
                                 epsilon=config.optimizer.adam_epsilon)
    # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
    return keras.optimizers.LossScaleOptimizer(adam) if config.runtime.mixed_precision == \
        "mixed_float16" else adam


class DCGAN:
    """Both networks, their two Adam optimizers, the objective's terms and the distributed
    train step."""

    def __init__(self, config: TrainerConfig, strategy: tf.distribute.Strategy):
        self.config = config = resolve(config)
        self.strategy = strategy
        self.terms = terms_for(config)
        # The seed fixes the initial weights too (not only the data order and the noise), so a
        # run can be repeated.
        keras.utils.set_random_seed(config.runtime.seed)
        per_replica = config.optimizer.batch_size // strategy.num_replicas_in_sync
        if per_replica % config.model.pack:
            raise ValueError(f"each replica's batch ({per_replica}) must be a multiple of pack "
                             f"{config.model.pack}")
        with strategy.scope():
            self.generator = build_generator(config)
            self.discriminator = build_discriminator(config)
            self.g_optimizer = _adam(config)
            self.d_optimizer = _adam(config)
            # Built here, in the strategy's scope, not lazily inside the replica step.
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.average = (WeightAverage(self.generator, config.averaging.ema_decay)
                            if config.averaging.ema_decay else None)
        # One compiled step with the lazy terms (applied every `interval` steps) and one without.
        lazy = {term.interval for term in self.terms if term.interval > 1}
        self._lazy_interval = lazy.pop() if lazy else 1
        self._compiled_steps = {due: tf.function(functools.partial(self._train_step, due=due),
                                                 jit_compile=config.runtime.jit_compile)
                                for due in {False, bool(self.terms)}}

    @property
    def _judged(self) -> int:
        """Discriminator outputs per global batch: one per image, or per pack of images."""
        return self.config.optimizer.batch_size // self.config.model.pack

    def _loss(self, logits: tf.Tensor, target: float) -> tf.Tensor:
        logits = tf.cast(logits, tf.float32)
        per_example = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.fill(tf.shape(logits), target), logits=logits)
        return tf.nn.compute_average_loss(per_example, global_batch_size=self._judged)

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
        # category head only through a clustering term): Adam leaves the others, and their
        # moments, as they are.
        pairs = [(gradient, variable) for gradient, variable
                 in zip(tape.gradient(loss, variables), variables) if gradient is not None]
        gradients = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [gradient for gradient, _ in pairs])
        optimizer.apply_gradients(zip(gradients, [variable for _, variable in pairs]))

    def inputs(self, first: tf.Tensor, labels: tf.Tensor) -> tf.Tensor | list[tf.Tensor]:
        """A model's inputs: `first` alone, or with the one-hot labels when conditional."""
        if not self.config.model.conditional:
            return first
        return [first, tf.one_hot(labels, features.NUM_CLASSES)]

    def critic(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The discriminator's logit for each image, and its latent-category logits (None
        without `latent_categories`)."""
        outputs = self.discriminator(self.inputs(images, labels), training=True)
        return (outputs[0], outputs[1]) if self.config.model.latent_categories else (outputs, None)

    def stateless_seed(self, key: int) -> tf.Tensor:
        """A random seed keyed by the run's seed, the step, the replica and `key`, so a run
        replays exactly."""
        seed = tf.constant([self.config.runtime.seed, key], tf.int64)
        for data in (self.step, tf.distribute.get_replica_context().replica_id_in_sync_group):
            seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))
        return seed

    def _look(self, images: tf.Tensor, labels: tf.Tensor, z: tf.Tensor | None = None,
              watch: bool = False) -> View:
        """The discriminator on one minibatch; with `watch`, on a tape watching its images."""
        if not watch:
            return View(images, labels, *self.critic(images, labels), z)
        with tf.GradientTape() as input_tape:
            input_tape.watch(images)
            logits, category_logits = self.critic(images, labels)
        return View(images, labels, logits, category_logits, z, input_tape)

    def _with_terms(self, loss: tf.Tensor, terms: list[Term], phase: str, view: View,
                    reported: dict[str, tf.Tensor]) -> tf.Tensor:
        """`loss` plus each term's value for this phase ("real", "fake", "generator"),
        recorded in `reported` under the term's name."""
        for term in terms:
            value = getattr(term, phase)(self, view)
            if value is not None:
                reported[term.name] = value
                loss = loss + value
        return loss

    def _replica_step(self, batch: dict[str, tf.Tensor], terms: list[Term]
                      ) -> dict[str, tf.Tensor]:
        config, terms_d, terms_g = self.config, {}, {}

        # 1. Discriminator on an all-real minibatch, towards the (smoothed) real target.
        with tf.GradientTape() as tape:
            real = self._look(batch[REAL], batch[REAL_LABELS],
                              watch=any(term.needs_input_gradient for term in terms))
            d_loss_real = self._loss(real.logits, config.objective.real_target)
            d_total = self._with_terms(d_loss_real, terms, "real", real, terms_d)
        self._apply(tape, d_total, self.discriminator, self.d_optimizer)

        # 2. Discriminator on an all-fake minibatch, then 3. the first generator update on the
        #    same fakes: the generator's forward pass is recorded once, on the generator's tape.
        z, labels = batch[Z][:, 0], batch[FAKE_LABELS][:, 0]
        with tf.GradientTape() as generator_tape:
            fakes = self.generator(self.inputs(z, labels), training=True)
            with generator_tape.stop_recording():  # The discriminator's update, unrecorded.
                with tf.GradientTape() as tape:
                    fake = self._look(fakes, labels, z)
                    d_loss_fake = self._loss(fake.logits, config.objective.fake_target)
                    d_total = self._with_terms(d_loss_fake, terms, "fake", fake, terms_d)
                self._apply(tape, d_total, self.discriminator, self.d_optimizer)
            # The discriminator has changed: it scores the same fakes again.
            scored = self._look(fakes, labels, z)
            g_loss = self._loss(scored.logits, 1.0)
            g_total = self._with_terms(g_loss, terms, "generator", scored, terms_g)
        self._apply(generator_tape, g_total, self.generator, self.g_optimizer)

        # 4. The other generator updates, each on fresh noise.
        for index in range(1, config.optimizer.generator_steps):
            z, labels = batch[Z][:, index], batch[FAKE_LABELS][:, index]
            with tf.GradientTape() as tape:
                fakes = self.generator(self.inputs(z, labels), training=True)
                scored = self._look(fakes, labels, z)
                g_loss = self._loss(scored.logits, 1.0)
                g_total = self._with_terms(g_loss, terms, "generator", scored, terms_g)
            self._apply(tape, g_total, self.generator, self.g_optimizer)

        return {"d_loss": d_loss_real + d_loss_fake, "g_loss": g_loss,
                "d_real": tf.reduce_sum(tf.sigmoid(real.logits)) / self._judged,
                "d_fake": tf.reduce_sum(tf.sigmoid(fake.logits)) / self._judged,
                **terms_d}

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One step on a distributed global batch; returns global-batch metrics, with each
        discriminator-side term's value under its name on the steps that apply it."""
        due = bool(self.terms) and int(self.step.numpy()) % self._lazy_interval == 0
        return self._compiled_steps[due](batch)

    def _train_step(self, batch: dict[str, tf.Tensor], due: bool) -> dict[str, tf.Tensor]:
        """The compiled step: replica steps, then the weight average; `due` (fixed per trace)
        says whether the lazy terms apply."""
        for layer in self.discriminator.layers:  # Cross-replica: see StepwiseSpectralNormalization.
            if isinstance(layer, StepwiseSpectralNormalization):
                layer.project()
        terms = [term for term in self.terms if due or term.interval == 1]
        per_replica = self.strategy.run(self._replica_step, args=(batch, terms))
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
                                        self.config.averaging.ema_standing_samples)
        return generator

    def _standing_inputs(self, index: int, size: int) -> tf.Tensor | list[tf.Tensor]:
        """Fixed noise (and labels) for the standing statistics: the same for every export."""
        seed = tf.constant([self.config.runtime.seed, -2 - index], tf.int64)
        z = tf.random.stateless_normal([size, self.config.model.z_dim], seed=seed)
        labels = tf.random.stateless_uniform([size], seed, 0, features.NUM_CLASSES, tf.int64)
        return self.inputs(z, labels)
