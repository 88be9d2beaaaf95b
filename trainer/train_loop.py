"""The training loop: steps, progress logs, TensorBoard summaries, sample grids."""

from __future__ import annotations

import logging
import math
import os
import time

import tensorflow as tf

from dcgan_common.config import TrainerConfig
from dcgan_common import features
from dcgan_common import images as image_utils
from dcgan_common.layout import LOGS_DIR, SAMPLES_DIR
from trainer.gan import DCGAN

log = logging.getLogger(__name__)  # dcgan-pipeline shows its lines (pipeline/console.py).

GRID_SAMPLES = 64  # An 8x8 grid.


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or Inf; nothing from this run may be exported."""


def fixed_noise(config: TrainerConfig) -> tf.Tensor:
    """The z of every sample grid, so grids of one run are comparable."""
    return tf.random.stateless_normal([GRID_SAMPLES, config.model.z_dim],
                                      seed=[config.runtime.seed, -1])


def save_grid(gan: DCGAN, z: tf.Tensor, step: int, run_dir: str) -> str:
    """The fixed z's samples from the generator that would be exported now (conditional:
    digit i % 10 for sample i)."""
    labels = tf.range(GRID_SAMPLES, dtype=tf.int64) % features.NUM_CLASSES
    generator = gan.served_generator()
    grid = image_utils.tile(image_utils.to_uint8(generator(gan.inputs(z, labels),
                                                           training=False)))
    path = os.path.join(run_dir, SAMPLES_DIR, f"step_{step:06d}.png")
    image_utils.write_png(grid, path)
    tf.summary.image("samples", grid[tf.newaxis], step=step)
    return path


class Checkpoints:
    """Both networks, both optimizers, the step, the fixed z and the generator's weight
    average (if any), every N steps, last K kept.

    Every worker restores from the shared `directory`; only the chief writes
    there, the others write to a scratch directory (all must take part in a save).
    """

    def __init__(self, gan: DCGAN, fixed_z: tf.Variable, directory: str, scratch_dir: str,
                 chief: bool):
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(
            generator=gan.generator, discriminator=gan.discriminator,
            g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer, step=gan.step,
            fixed_z=fixed_z, **({"weight_average": gan.average} if gan.average else {}))
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory if chief else os.path.join(scratch_dir, "checkpoints"),
            max_to_keep=gan.config.runtime.checkpoints_to_keep)

    def restore(self) -> int:
        """The step to resume after (0 for a fresh start)."""
        latest = tf.train.latest_checkpoint(self.directory)
        if not latest:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        step = int(self.checkpoint.step.numpy())
        log.info("resumed from checkpoint %s at step %d", latest, step)
        return step

    def save(self, step: int) -> None:
        self.manager.save(checkpoint_number=step)


def train(gan: DCGAN, dataset: tf.data.Dataset, run_dir: str, checkpoint_dir: str = "",
          chief: bool = True) -> dict[str, float]:
    """Trains (or resumes) up to `config.optimizer.train_steps`; returns the last step's metrics.

    Raises TrainingDivergedError on a NaN or Inf loss.
    """
    config = gan.config
    z = tf.Variable(fixed_noise(config), trainable=False, name="fixed_z")
    checkpoints = (Checkpoints(gan, z, checkpoint_dir, run_dir, chief)
                   if checkpoint_dir else None)
    start = checkpoints.restore() if checkpoints else 0
    if start >= config.optimizer.train_steps:
        log.info("already trained to step %d of %d", start, config.optimizer.train_steps)
        return {}
    # BackupAndRestore semantics: the batches of the steps already trained are skipped, so a
    # resumed run trains on the images and noise an uninterrupted run would have used.
    batches = iter(gan.strategy.experimental_distribute_dataset(dataset.skip(start)))
    writer = (tf.summary.create_file_writer(os.path.join(run_dir, LOGS_DIR)) if chief
              else tf.summary.create_noop_writer())
    metrics: dict[str, float] = {}
    with writer.as_default():
        if chief and start == 0:
            save_grid(gan, z, 0, run_dir)
        started, started_step = time.perf_counter(), start
        for step in range(start + 1, config.optimizer.train_steps + 1):
            metrics = {k: float(v) for k, v in gan.train_step(next(batches)).items()}
            bad = [k for k in ("d_loss", "g_loss") if not math.isfinite(metrics[k])]
            if bad:
                raise TrainingDivergedError(
                    f"training diverged at step {step}: {', '.join(bad)} = "
                    f"{', '.join(str(metrics[k]) for k in bad)}; nothing is exported")
            gan.step.assign(step)
            for name, value in metrics.items():
                tf.summary.scalar(name, value, step=step)
            last = step == config.optimizer.train_steps
            if step % config.runtime.log_every_steps == 0 or last:
                elapsed = time.perf_counter() - started
                rate = (step - started_step) * config.optimizer.batch_size / max(elapsed, 1e-9)
                left = ((config.optimizer.train_steps - step) * config.optimizer.batch_size
                        / max(rate, 1e-9))
                log.info("step %d/%d d_loss %.4f g_loss %.4f D(x) %.3f D(G(z)) %.3f "
                         "%.0f images/s, %.0f s left", step, config.optimizer.train_steps,
                         metrics["d_loss"], metrics["g_loss"], metrics["d_real"],
                         metrics["d_fake"], rate, left)
                started, started_step = time.perf_counter(), step
            if chief and (step % config.runtime.sample_every_steps == 0 or last):
                save_grid(gan, z, step, run_dir)
            if checkpoints and (step % config.runtime.checkpoint_every_steps == 0 or last):
                checkpoints.save(step)
    writer.close()
    return metrics
