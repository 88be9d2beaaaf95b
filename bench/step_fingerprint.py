"""A refactoring check: short same-seed float32 runs of the train step, their losses at every
step and the generator's weights, written to JSON; `--compare` says whether two such files are
identical. Run it before a change to trainer/ and after it, on the same machine: a change that
only restructures the code gives bit-identical numbers.

    python -m bench.step_fingerprint --out /tmp/before.json      # before the change
    python -m bench.step_fingerprint --out /tmp/after.json --compare /tmp/before.json

Each case is a preset's objective (and `default` with lazy R1) on small networks, on the
committed MNIST slice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import tensorflow as tf

from components import mnist_idx
from dcgan_common.config import TrainerConfig, preset
from dcgan_common.features import IMAGE_SHAPE
from dcgan_common.images import scale_pixels
from trainer.data import with_noise
from trainer.gan import DCGAN

SLICE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "tests", "data", "mnist_slice")
SMALL = {"model": {"generator_filters": (32, 16), "discriminator_filters": (16, 32)},
         "optimizer": {"batch_size": 32}, "runtime": {"mixed_precision": "float32"}}


def cases() -> dict[str, TrainerConfig]:
    return {"spec": preset("spec").trainer.replace(**SMALL),
            "default": preset("default").trainer.replace(**SMALL),
            "conditional": preset("conditional").trainer.replace(**SMALL),
            "default_lazy_r1": preset("default").trainer.replace(**SMALL).replace(
                objective={"r1_weight": 1.0, "r1_interval": 2})}


def fingerprint(config: TrainerConfig, steps: int) -> dict:
    """Every step's metrics and the generator's summed absolute weights after `steps`."""
    train = mnist_idx.load_split(SLICE, "train")
    images = tf.reshape(scale_pixels(train.images.reshape(len(train.images), -1)),
                        [-1, *IMAGE_SHAPE])
    examples = tf.data.Dataset.from_tensor_slices((images, train.labels)).repeat()
    with tf.device("/CPU:0"):  # Deterministic kernels on any host (a GPU's need not be).
        gan = DCGAN(config, tf.distribute.get_strategy())
        losses = []
        for step, batch in enumerate(with_noise(examples, config).take(steps)):
            losses.append({name: float(value)
                           for name, value in sorted(gan.train_step(batch).items())})
            gan.step.assign(step + 1)
    weights = float(sum(np.abs(v.numpy().astype(np.float64)).sum() for v in gan.generator.weights))
    return {"losses": losses, "generator_abs_weight_sum": weights}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--compare", help="a fingerprint file to compare with")
    args = parser.parse_args(argv)
    found = {name: fingerprint(config, args.steps) for name, config in cases().items()}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(found, f, indent=1)
    if not args.compare:
        return 0
    with open(args.compare, encoding="utf-8") as f:
        reference = json.load(f)
    differ = [name for name in found if found[name] != reference.get(name)]
    for name in found:
        print(f"{name}: {'differs' if name in differ else 'identical'}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
