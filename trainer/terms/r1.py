"""R1 (Mescheder et al. 2018), optionally lazy (Karras et al. 2020, StyleGAN2)."""

from __future__ import annotations

import tensorflow as tf

from dcgan_common.config import TrainerConfig
from trainer.terms.base import Term, View


class R1Penalty(Term):
    """r1_weight / 2 times the squared norm of the gradient of the discriminator's logit with
    respect to each real image. Lazy: only every r1_interval-th step, r1_interval times as
    heavy, so its double backpropagation costs 1/r1_interval as much."""

    name = "r1_penalty"
    needs_input_gradient = True

    def __init__(self, config: TrainerConfig):
        super().__init__(config)
        self.interval = config.objective.r1_interval

    def real(self, gan, view: View) -> tf.Tensor:
        with view.input_tape:  # The sum is part of what the input gradient differentiates.
            summed = tf.reduce_sum(tf.cast(view.logits, tf.float32))
        gradient = tf.cast(view.input_tape.gradient(summed, view.images), tf.float32)
        per_example = tf.reduce_sum(tf.square(gradient), axis=[1, 2, 3])
        return 0.5 * self.config.objective.r1_weight * self.interval * self.average(per_example)
