"""The Trainer's run_fn (`trainer.run.run_fn`): trains the DCGAN and exports the generator."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile

import keras
import tensorflow as tf

from tfx.components.trainer.fn_args_utils import FnArgs

from dcgan_common.config import TRAINER_CONFIG_KEY, TrainerConfig
from dcgan_common.examples import image_channels
from trainer.data import training_dataset
from trainer.export import export_generator
from trainer.gan import DCGAN
from trainer.strategy import is_chief, make_strategy
from trainer.train_loop import train

DISCRIMINATOR_FILE = "discriminator.keras"
FINGERPRINT_CHUNK = 1 << 24


def data_fingerprint(file_patterns: list[str]) -> str:
    """sha256 over the contents of every training file (in name order): the checkpoint key's
    data part. Paths alone are not enough: a reset metadata store reuses artifact paths."""
    digest = hashlib.sha256()
    for path in sorted(set(p for pattern in file_patterns for p in tf.io.gfile.glob(pattern))):
        digest.update(os.path.basename(path).encode() + b"\0")
        with tf.io.gfile.GFile(path, "rb") as f:
            for chunk in iter(lambda: f.read(FINGERPRINT_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def checkpoint_dir(config: TrainerConfig, train_files: list[str]) -> str:
    """A stable directory per (config, training data content): a retry of the same training
    resumes, a run on other data or with other settings starts fresh."""
    if not config.runtime.checkpoint_dir:
        return ""
    key = json.dumps({"config": config.replace(runtime={"checkpoint_dir": ""}).to_dict(),
                      "data": data_fingerprint(train_files)}, sort_keys=True)
    return os.path.join(config.runtime.checkpoint_dir,
                        hashlib.sha256(key.encode()).hexdigest()[:16])


def train_and_export(config: TrainerConfig, train_files: list[str], run_dir: str,
                     serving_dir: str) -> DCGAN:
    """Trains under the configured strategy; only the chief keeps what it writes."""
    strategy = make_strategy(config.runtime.strategy)
    chief = is_chief(strategy)
    # The data order follows the global seed as much as the shuffle's own: fixed here, before
    # the dataset is built, whatever an earlier component in this process seeded (a resumed
    # run, whose ClassifierTrainer was cached, must see the uninterrupted run's batches).
    keras.utils.set_random_seed(config.runtime.seed)
    dataset = training_dataset(train_files, config)
    gan = DCGAN(config, strategy)
    logging.info("DCGAN training: %d steps, global batch %d, %d replica(s) under %s%s; "
                 "precision %s, filter gradients %s", config.optimizer.train_steps,
                 config.optimizer.batch_size,
                 strategy.num_replicas_in_sync, type(strategy).__name__,
                 "" if chief else " (non-chief worker)", gan.config.runtime.mixed_precision,
                 gan.config.runtime.filter_gradient)
    # Non-chief workers take part in every write, into a scratch directory that is removed.
    if not chief:
        run_dir = tempfile.mkdtemp(prefix="dcgan-worker-")
        serving_dir = os.path.join(run_dir, "serving")
    try:
        train(gan, dataset, run_dir, checkpoint_dir(config, train_files), chief)
        # A run resumed at its last step writes nothing before this; Kubeflow's launcher does
        # not create output directories either.
        tf.io.gfile.makedirs(run_dir)
        gan.discriminator.save(os.path.join(run_dir, DISCRIMINATOR_FILE))
        export_generator(gan.served_generator(), serving_dir)
    finally:
        if not chief:
            tf.io.gfile.rmtree(run_dir)
    if chief:
        logging.info("DCGAN generator exported to %s", serving_dir)
    return gan


def run_fn(fn_args: FnArgs) -> None:
    config = TrainerConfig.from_dict(fn_args.custom_config[TRAINER_CONFIG_KEY])
    # The networks' channels are the data's: one MNIST digit per channel.
    config = config.replace(model={"channels": image_channels(fn_args.train_files)})
    train_and_export(config, fn_args.train_files, fn_args.model_run_dir,
                     fn_args.serving_model_dir)
