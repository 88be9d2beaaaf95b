"""Where a train step's time goes: every convolution of the step alone, float32 and bfloat16.

Each layer is one convolution between a large map x and a small map y: Conv2D (x -> y),
its transpose (y -> x) and the filter gradient. A discriminator layer runs Conv2D forward,
a generator layer the transpose. The counts per step follow the update schedule (two D
updates, `generator_steps` G updates, the first reusing the D fake batch); their sum is
printed beside the measured step. Each op is timed twice: TensorFlow's kernel, and the
project's formulation (trainer/strided_conv.py: the filter gradient as a forward
convolution, the transpose onto a one-channel map as a sub-pixel convolution); the step
once with each (filter_gradient native / forward_conv).

    .venv/bin/python -m bench.bench_step_ops [--repeats N]   # from the repository root
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import keras
import tensorflow as tf

from dcgan_common.config import TrainerConfig, preset
from dcgan_common import features
from trainer import strided_conv
from dcgan_common.features import FAKE_LABELS, REAL, REAL_LABELS, Z
from trainer.gan import DCGAN
from trainer.models import PROJECTED_SIZE

REPEATS = 40


def milliseconds(fn) -> float:
    for _ in range(3):
        fn()
    started = time.perf_counter()
    for _ in range(REPEATS):
        result = fn()
    result.numpy()
    return (time.perf_counter() - started) / REPEATS * 1000


class ConvLayer(NamedTuple):
    """One convolution of the DCGAN, between a large map and a small (half-size) one."""

    name: str
    large_size: int
    large_channels: int
    small_channels: int
    in_generator: bool  # Runs as a transposed convolution (small -> large).
    takes_images: bool  # The discriminator's first layer: no input gradient in D updates.


def conv_layers(config: TrainerConfig) -> list[ConvLayer]:
    size, (g0, g1), (d0, d1) = features.IMAGE_SIZE, config.model.generator_filters, \
        config.model.discriminator_filters
    return [ConvLayer("G 7->14", 2 * PROJECTED_SIZE, g1, g0, True, False),
            ConvLayer("G 14->28 (output)", size, 1, g1, True, False),
            ConvLayer("D 28->14 (input)", size, 1, d0, False, True),
            ConvLayer("D 14->7", size // 2, d0, d1, False, False)]


def per_step_counts(config: TrainerConfig, layer: ConvLayer) -> dict[str, int]:
    """How often the step runs each of the layer's three convolutions."""
    g_updates, d_passes = config.optimizer.generator_steps, 2 + config.optimizer.generator_steps
    if layer.in_generator:  # Forward, input gradient and filter gradient once per G update.
        return {"transpose": g_updates, "conv": g_updates, "filter": g_updates}
    return {"conv": d_passes, "transpose": g_updates if layer.takes_images else d_passes,
            "filter": 2}


OPS = ("conv", "transpose", "filter")


def layer_times(config: TrainerConfig, dtype: tf.DType, layer: ConvLayer
                ) -> dict[str, dict[str, float]]:
    """ms per op, TensorFlow's kernels ("native") and trainer/strided_conv.py's ("project")."""
    batch, k = config.optimizer.batch_size, config.model.kernel_size
    large, small = layer.large_size, layer.large_size // 2
    x = tf.cast(tf.random.normal([batch, large, large, layer.large_channels]), dtype)
    y = tf.cast(tf.random.normal([batch, small, small, layer.small_channels]), dtype)
    w = tf.cast(tf.random.normal([k, k, layer.large_channels, layer.small_channels]), dtype)
    conv = milliseconds(tf.function(lambda: tf.nn.conv2d(x, w, 2, "SAME")))
    return {
        "native": {
            "conv": conv,
            "transpose": milliseconds(tf.function(
                lambda: tf.nn.conv2d_transpose(y, w, x.shape, 2, "SAME"))),
            "filter": milliseconds(tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=w.shape, out_backprop=y, strides=[1, 2, 2, 1],
                padding="SAME"))),
        },
        "project": {
            "conv": conv,
            "transpose": milliseconds(tf.function(
                lambda: strided_conv.transpose_onto(y, w, x.shape, (2, 2)))),
            "filter": milliseconds(tf.function(
                lambda: strided_conv.filter_gradient(x, y, (k, k), (2, 2)))),
        },
    }


def step_milliseconds(config: TrainerConfig) -> float:
    gan = DCGAN(config, tf.distribute.get_strategy())
    size, steps = config.optimizer.batch_size, config.optimizer.generator_steps
    batch = {REAL: tf.random.uniform([size, *features.IMAGE_SHAPE], -1, 1),
             REAL_LABELS: tf.zeros([size], tf.int64),
             Z: tf.random.normal([size, steps, config.model.z_dim]),
             FAKE_LABELS: tf.zeros([size, steps], tf.int64)}
    return milliseconds(lambda: gan.train_step(batch)["d_loss"])


def main(argv: list[str] | None = None) -> None:
    global REPEATS  # pylint: disable=global-statement
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per op")
    REPEATS = parser.parse_args(argv).repeats
    base = preset("default").trainer
    for policy, dtype in (("float32", tf.float32), ("mixed_bfloat16", tf.bfloat16)):
        keras.mixed_precision.set_global_policy(policy)
        totals = {"native": 0.0, "project": 0.0}
        print(f"--- {dtype.name}, batch {base.optimizer.batch_size}: ms per op, TensorFlow's "
              "kernel -> "
              "the project's (runs per step)")
        for layer in conv_layers(base):
            times, counts = layer_times(base, dtype, layer), per_step_counts(base, layer)
            for kind in totals:
                totals[kind] += sum(times[kind][op] * counts[op] for op in OPS)
            print(f"{layer.name:18s} " + "  ".join(
                f"{op} {times['native'][op]:5.2f} -> {times['project'][op]:5.2f} (x{counts[op]})"
                for op in OPS))
        for kind, filter_gradient in (("native", "native"), ("project", "forward_conv")):
            step = step_milliseconds(base.replace(
                runtime={"mixed_precision": policy, "filter_gradient": filter_gradient}))
            print(f"{kind:8s} convolutions per step {totals[kind]:6.1f} ms; measured train step "
                  f"{step:6.1f} ms; convolution share {totals[kind] / step:.0%}")


if __name__ == "__main__":
    main()
