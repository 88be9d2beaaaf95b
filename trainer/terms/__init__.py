"""The extra losses and regularisers of the GAN objective, one module each, with one interface.

The adversarial losses live in the train step (trainer/gan.py); every term here adds to one
network's loss on one minibatch and is switched on by the configuration. `terms_for` lists the
configured terms in the order their values are added.
"""

from __future__ import annotations

from dcgan_common.config import TrainerConfig
from trainer.terms.base import Step, Term, View
from trainer.terms.clustering import RealClustering, ShiftConsistency
from trainer.terms.latent_code import LatentCode
from trainer.terms.r1 import R1Penalty

__all__ = ["Step", "Term", "View", "terms_for"]


def terms_for(config: TrainerConfig) -> list[Term]:
    """The terms the configuration enables (a zero weight switches a term off)."""
    candidates = [(config.objective.r1_weight, R1Penalty),
                  (config.objective.real_cluster_weight, RealClustering),
                  (config.objective.cluster_consistency_weight, ShiftConsistency),
                  (config.model.latent_categories, LatentCode)]
    return [term(config) for enabled, term in candidates if enabled]
