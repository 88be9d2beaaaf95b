"""The command-line options that choose what is trained, shared by `dcgan-pipeline` and
`dcgan-kfp` (compile, run, schedule, local-run): a preset and its overrides."""

from __future__ import annotations

import argparse
import dataclasses

from dcgan_common.config import (CONDITIONAL_OVERRIDES, PRESETS, PipelineConfig, preset,
                                 with_dataset)
from dcgan_common.datasets import DATASETS


def add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--train-steps", type=int, help="override the preset's training steps")
    parser.add_argument("--batch-size", type=int, help="override the preset's global batch size")
    parser.add_argument("--seed", type=int,
                        help="override the Trainer's seed (initial weights, data order, noise)")
    parser.add_argument("--dataset", choices=sorted(DATASETS),
                        help="override the preset's dataset: mnist, or stacked_mnist (three "
                             "digits as the channels of one image, 1,000 modes)")
    parser.add_argument("--conditional", action="store_true",
                        help="train the class-conditional DCGAN (serving takes a `label`)")
    parser.add_argument("--strategy", help="override the tf.distribute strategy "
                                           "(auto, mirrored, multi_worker, tpu, one_device)")
    parser.add_argument("--mixed-precision", metavar="POLICY",
                        help="override the precision policy (default auto: mixed_bfloat16 on a "
                             "CPU that computes it natively, else float32): float32, "
                             "mixed_bfloat16 (CPUs with AVX512_BF16 or AMX, TPUs), "
                             "mixed_float16 (GPUs)")


def training_config(args: argparse.Namespace, **changes) -> PipelineConfig:
    """The chosen preset with the overrides given, then `changes` (where the run goes).
    Raises ValueError on a setting the config refuses."""
    flags = {"optimizer": {"train_steps": args.train_steps, "batch_size": args.batch_size},
             "runtime": {"seed": args.seed, "strategy": args.strategy,
                         "mixed_precision": args.mixed_precision}}
    overrides = {group: {name: value for name, value in settings.items() if value is not None}
                 for group, settings in flags.items()}
    config = dataclasses.replace(preset(args.preset), **changes)
    if args.dataset:
        config = with_dataset(config, args.dataset)
    if args.conditional:  # The labels replace `default`'s unconditional-only settings.
        config = config.replace_trainer(**CONDITIONAL_OVERRIDES)
    return config.replace_trainer(**overrides)
