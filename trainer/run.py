"""The Trainer's run_fn (`trainer.run.run_fn`): trains the DCGAN and exports the generator."""

from __future__ import annotations

import logging
import os

from tfx.components.trainer.fn_args_utils import FnArgs

from pipeline.config import TrainerConfig
from trainer.data import training_dataset
from trainer.export import export_generator
from trainer.gan import DCGAN
from trainer.strategy import make_strategy
from trainer.train_loop import train

TRAINER_CONFIG_KEY = "trainer"  # custom_config key holding TrainerConfig.to_dict().
DISCRIMINATOR_FILE = "discriminator.keras"


def run_fn(fn_args: FnArgs) -> None:
    config = TrainerConfig.from_dict(fn_args.custom_config[TRAINER_CONFIG_KEY])
    strategy = make_strategy(config.strategy)
    logging.info("DCGAN training: %d steps, global batch %d, %d replica(s) under %s",
                 config.train_steps, config.batch_size, strategy.num_replicas_in_sync,
                 type(strategy).__name__)
    dataset = training_dataset(fn_args.train_files, config)
    gan = DCGAN(config, strategy)
    train(gan, dataset, fn_args.model_run_dir)
    gan.discriminator.save(os.path.join(fn_args.model_run_dir, DISCRIMINATOR_FILE))
    export_generator(gan.generator, fn_args.serving_model_dir)
    logging.info("DCGAN generator exported to %s", fn_args.serving_model_dir)
