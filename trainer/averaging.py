"""An exponential moving average of the generator's weights, and the model built from it.

Averaging the generator's iterates (Yazici et al. 2019, "The Unusual Effectiveness of
Averaging in GAN Training") smooths out the oscillation of adversarial training without
changing it: the trained generator keeps training, the average is what is exported. The
average's BatchNorm layers need statistics of their own weights' activations ("standing
statistics"): the trained generator's moving statistics belong to other weights.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

# Warm-up: the decay at update t is min(decay, (1 + t) / (WARMUP + t)), as in
# tf.train.ExponentialMovingAverage's num_updates, so the random initial weights wash out.
WARMUP = 10.0
STANDING_BATCH = 512


class WeightAverage(tf.Module):
    """Shadow copies of a model's trainable variables, created in the current (strategy) scope."""

    def __init__(self, model: keras.Model, decay: float):
        super().__init__(name="weight_average")
        self.decay = decay
        self.averages = [tf.Variable(v.value, trainable=False, name=f"average_{i}")
                         for i, v in enumerate(model.trainable_variables)]

    def update(self, variables: list[tf.Variable], updates_done: tf.Tensor) -> None:
        """Moves every average towards its variable; `updates_done` counts earlier updates."""
        t = tf.cast(updates_done, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + t) / (WARMUP + t))
        for average, variable in zip(self.averages, variables):
            value = tf.cast(variable, average.dtype)
            average.assign(decay * average + (1.0 - decay) * value)


def recompute_batch_norm_statistics(model: keras.Model,
                                    inputs_fn: Callable[[int, int], tf.Tensor | list],
                                    samples: int) -> None:
    """Sets every BatchNorm layer's moving mean and variance to their average over batches of
    `inputs_fn(batch_index, batch_size)`, `samples` inputs in all (a running mean: the momentum
    of batch i is i / (i + 1))."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    batches = max(1, samples // STANDING_BATCH)
    try:
        for index in range(batches):
            for layer in norms:
                layer.momentum = index / (index + 1)
            model(inputs_fn(index, STANDING_BATCH), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
