"""The training loop: steps, progress logs, TensorBoard summaries, sample grids."""

from __future__ import annotations

import logging
import math
import os
import time

import tensorflow as tf

from pipeline.config import TrainerConfig
from trainer import images as image_utils
from trainer.gan import DCGAN

GRID_SAMPLES = 64  # An 8x8 grid.
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or Inf; nothing from this run may be exported."""


def fixed_noise(config: TrainerConfig) -> tf.Tensor:
    """The z of every sample grid, so grids of one run are comparable."""
    return tf.random.stateless_normal([GRID_SAMPLES, config.z_dim], seed=[config.seed, -1])


def save_grid(gan: DCGAN, z: tf.Tensor, step: int, run_dir: str) -> str:
    grid = image_utils.tile(image_utils.to_uint8(gan.generator(z, training=False)))
    path = os.path.join(run_dir, SAMPLES_DIR, f"step_{step:06d}.png")
    image_utils.write_png(grid, path)
    tf.summary.image("samples", grid[tf.newaxis], step=step)
    return path


def train(gan: DCGAN, dataset: tf.data.Dataset, run_dir: str) -> dict[str, float]:
    """Trains for `config.train_steps`; returns the last step's metrics."""
    config = gan.config
    z = fixed_noise(config)
    batches = iter(gan.strategy.experimental_distribute_dataset(dataset))
    writer = tf.summary.create_file_writer(os.path.join(run_dir, LOGS_DIR))
    with writer.as_default():
        save_grid(gan, z, 0, run_dir)
        started, started_step = time.perf_counter(), 0
        for step in range(1, config.train_steps + 1):
            metrics = {k: float(v) for k, v in gan.train_step(next(batches)).items()}
            bad = [k for k in ("d_loss", "g_loss") if not math.isfinite(metrics[k])]
            if bad:
                raise TrainingDivergedError(
                    f"training diverged at step {step}: {', '.join(bad)} = "
                    f"{', '.join(str(metrics[k]) for k in bad)}; nothing is exported")
            for name, value in metrics.items():
                tf.summary.scalar(name, value, step=step)
            if step % config.log_every_steps == 0 or step == config.train_steps:
                elapsed = time.perf_counter() - started
                rate = (step - started_step) * config.batch_size / max(elapsed, 1e-9)
                logging.info("step %d/%d d_loss %.4f g_loss %.4f D(x) %.3f D(G(z)) %.3f "
                             "%.0f images/s", step, config.train_steps, metrics["d_loss"],
                             metrics["g_loss"], metrics["d_real"], metrics["d_fake"], rate)
                started, started_step = time.perf_counter(), step
            if step % config.sample_every_steps == 0 or step == config.train_steps:
                save_grid(gan, z, step, run_dir)
    writer.close()
    return metrics
