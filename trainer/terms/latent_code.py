"""InfoGAN's categorical code (Chen et al. 2016), drawn from z (trainer/models.py)."""

from __future__ import annotations

import tensorflow as tf

from trainer.models import category_of
from trainer.terms.base import Term, View


class LatentCode(Term):
    """The mutual-information term: latent_code_weight times how badly the discriminator's
    category head recovers the latent category of z from the fakes. Both networks learn from
    it: the head to read the category, the generator to make it readable."""

    name = "code_loss"

    def fake(self, gan, view: View) -> tf.Tensor:
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=category_of(view.z, self.config.model.latent_categories),
            logits=tf.cast(view.category_logits, tf.float32))
        return self.config.objective.latent_code_weight * self.average(per_example)

    generator = fake
