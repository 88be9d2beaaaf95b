"""InfoGAN's categorical code (Chen et al. 2016), drawn from z (trainer/models.py)."""

from __future__ import annotations

import tensorflow as tf

from trainer.models import category_of
from trainer.terms.base import Term, View


class LatentCode(Term):
    """The mutual-information term: latent_code_weight times how badly the discriminator's
    category head recovers the latent categories of z from the fakes (the cross-entropy,
    averaged over the image channels). Both networks learn from it: the head to read the
    categories, the generator to make them readable."""

    name = "code_loss"

    def fake(self, gan, view: View) -> tf.Tensor:
        model = self.config.model
        per_channel = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=category_of(view.z, model.latent_categories, model.channels),
            logits=self.channel_logits(view.category_logits))
        return self.config.objective.latent_code_weight * self.average(
            tf.reduce_mean(per_channel, axis=1))

    generator = fake
