"""The interface every objective term implements."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import tensorflow as tf

from dcgan_common.config import TrainerConfig


class Step(Protocol):
    """What a term may ask of the train step (trainer/gan.py's DCGAN)."""

    def critic(self, images: tf.Tensor, labels: tf.Tensor
               ) -> tuple[tf.Tensor, tf.Tensor | None]: ...

    def stateless_seed(self, key: int) -> tf.Tensor: ...


@dataclasses.dataclass
class View:
    """What the discriminator saw of one minibatch: the images, their labels, its outputs, and
    for the fakes the noise that drew them. `input_tape` watched the images (real minibatch,
    when a term needs the gradient with respect to them)."""

    images: tf.Tensor
    labels: tf.Tensor
    logits: tf.Tensor
    category_logits: tf.Tensor | None
    z: tf.Tensor | None = None
    input_tape: tf.GradientTape | None = None


class Term:
    """One extra loss: what it adds to the discriminator's loss on the real and on the fake
    minibatch and to the generator's loss (None: nothing). Values are per replica, scaled to
    the global batch like the adversarial losses, so summed over replicas they are the
    single-device values. The discriminator-side value is reported under `name`."""

    name: str = ""
    needs_input_gradient = False  # The real minibatch's View then carries its input tape.
    interval = 1  # Applied on every interval-th step only (lazy regularisation).

    def __init__(self, config: TrainerConfig):
        self.config = config

    def real(self, gan: Step, view: View) -> tf.Tensor | None:
        return None

    def fake(self, gan: Step, view: View) -> tf.Tensor | None:
        return None

    def generator(self, gan: Step, view: View) -> tf.Tensor | None:
        return None

    def channel_logits(self, category_logits: tf.Tensor) -> tf.Tensor:
        """The code head's logits [N, C * K] as each channel's [N, C, K], in float32."""
        model = self.config.model
        return tf.reshape(tf.cast(category_logits, tf.float32),
                          [-1, model.channels, model.latent_categories])

    def channel_log_probabilities(self, category_logits: tf.Tensor) -> tf.Tensor:
        """Each channel's category log-probabilities [N, C, K] (channel_logits, normalized)."""
        return tf.nn.log_softmax(self.channel_logits(category_logits))

    def average(self, per_example: tf.Tensor) -> tf.Tensor:
        """A per-example loss of this replica as its share of the global-batch mean."""
        return tf.nn.compute_average_loss(per_example,
                                          global_batch_size=self.config.optimizer.batch_size)
