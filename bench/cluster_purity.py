"""How much the latent code's categories are digits: the discriminator head's clusters of the
real eval images, and the classifier's digits of each generator category's samples.

    python -m bench.cluster_purity CHECKPOINT RUN_OUTPUT_DIR [--preset default] [--samples N]

CHECKPOINT is a training checkpoint of a generator with `latent_categories` (e.g.
runs/X/checkpoints/<key>/ckpt-4500); RUN_OUTPUT_DIR a `dcgan-pipeline --output-dir` on full
MNIST whose transformed eval split (with its labels) and classifier are used. Purity is the
share of images that fall in their cluster's (or category's) commonest digit: 1.0 when every
cluster is one digit, 0.1 when clusters ignore digits. The head is read with its moving
BatchNorm statistics (inference mode); the generator is the exported (averaged) one.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from bench.evaluate_checkpoint import checkpoint_command, checkpoint_generators, generator_samples
from components.sample_quality_evaluator import to_unit_range
from dcgan_common import embedding, features
from dcgan_common.examples import load_arrays
from pipeline import pipeline as pipeline_def
from trainer.export import noise_from_seeds
from trainer.gan import DCGAN
from trainer.models import category_of


def contingency(groups: np.ndarray, digits: np.ndarray, count: int) -> np.ndarray:
    """[count, 10]: how many of each digit fell in each group."""
    table = np.zeros([count, features.NUM_CLASSES], np.int64)
    np.add.at(table, (groups, digits), 1)
    return table


def purity(table: np.ndarray) -> float:
    """The share of items in their group's commonest digit."""
    return float(table.max(axis=1).sum() / table.sum())


def print_table(title: str, table: np.ndarray) -> None:
    print(f"{title}\n        " + " ".join(f"{d:>5d}" for d in range(features.NUM_CLASSES))
          + "  commonest share")
    for group, row in enumerate(table):
        print(f"  {group:>3d}   " + " ".join(f"{n:>5d}" for n in row)
              + f"  {row.argmax()} {row.max() / max(row.sum(), 1):.2f}")
    print(f"purity {purity(table):.3f}\n")


def main() -> None:
    args, config, run = checkpoint_command(__doc__)
    categories = config.trainer.model.latent_categories
    if not categories:
        raise SystemExit(f"preset {args.preset!r} has no latent code (latent_categories 0)")
    real, labels = load_arrays(
        [os.path.join(run[("Transform", "Examples")].uri, "Split-eval", "*")], args.samples)

    gan = DCGAN(config.trainer, tf.distribute.get_strategy())
    tf.train.Checkpoint(discriminator=gan.discriminator).restore(args.checkpoint).expect_partial()
    _, category_logits = gan.discriminator.predict(real, batch_size=500, verbose=0)
    print_table(f"the head's clusters (rows) of {len(real)} real eval images, by digit",
                contingency(category_logits.argmax(axis=1), labels, categories))

    generators = checkpoint_generators(config.trainer, args.checkpoint)
    generator = generators.get("averaged", generators["raw"])
    embed_fn = embedding.load_embed_fn(run[(pipeline_def.CLASSIFIER_NODE_ID, "Model")].uri)
    _, probabilities = embedding.embed(embed_fn, to_unit_range(
        generator_samples(generator, config.trainer.model.z_dim, args.samples)))
    # The z of those samples (seeds 0..N-1), for their categories.
    z = noise_from_seeds(tf.range(args.samples, dtype=tf.int64), config.trainer.model.z_dim)
    print_table(f"the generator's categories (rows) of {args.samples} samples, by the "
                "classifier's digit",
                contingency(category_of(z, categories).numpy(), probabilities.argmax(axis=1),
                            categories))


if __name__ == "__main__":
    main()
