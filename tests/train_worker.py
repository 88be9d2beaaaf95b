"""A real training process for the kill/resume and multi-worker tests.

    python tests/train_worker.py CONFIG_JSON TRAIN_PATTERN RUN_DIR SERVING_DIR

Runs trainer.run.train_and_export (the Trainer's own code path) and, when
done, saves the final generator weights to RUN_DIR/weights-<task>.npz so the
test can compare workers (even a non-chief's, whose RUN_DIR is not written).
With SEED_BEFORE set, the process first seeds TensorFlow's global random state
with it, as an earlier component of the same pipeline process may have.
"""

import json
import logging
import os
import sys

import keras
import numpy as np

from dcgan_common.config import TrainerConfig
from trainer import run as run_lib


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", force=True)
    config_json, pattern, run_dir, serving_dir = sys.argv[1:5]
    config = TrainerConfig.from_dict(json.loads(config_json))
    if "SEED_BEFORE" in os.environ:
        keras.utils.set_random_seed(int(os.environ["SEED_BEFORE"]))
    gan = run_lib.train_and_export(config, [pattern], run_dir, serving_dir)
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0)
    weights = {v.path: np.array(v) for v in gan.generator.weights + gan.discriminator.weights}
    os.makedirs(os.path.dirname(serving_dir), exist_ok=True)
    np.savez(os.path.join(os.path.dirname(serving_dir), f"weights-{task}.npz"), **weights)


if __name__ == "__main__":
    main()
