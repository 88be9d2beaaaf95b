"""Training benchmark: the project's train step against a tutorial-style reference, one process.

The reference is written the way the TensorFlow DCGAN tutorial writes it
(tf.function + GradientTape, noise drawn inside the step, Keras loss objects,
`from_tensor_slices(...).shuffle().batch()` with no prefetch, no XLA), with the
same architecture, global batch and update schedule (D real, D fake, two G
updates), in float32 with TensorFlow's own convolution gradients. The project
runs as configured by default ('auto': on a CPU-only host its convolutions'
filter gradients run as forward convolutions, and in bfloat16 where the CPU has
it natively); the flags select other settings. Rounds alternate between the
two so that machine noise hits both.
Also prints the input pipeline's throughput alone and the pipeline overhead
(every component but the Trainers, Evaluator and Pusher, then a cached rerun).
Last line: `ratio_vs_reference: <x.xx>`.

    make bench-train [MNIST_DIR=...] [BENCH_ARGS="--mixed-precision float32"]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from components import mnist_idx
from dcgan_common.config import TrainerConfig, preset
from dcgan_common import features
from trainer.data import training_dataset
from trainer.gan import DCGAN
from trainer.models import build_discriminator, build_generator
from dcgan_common.images import scale_pixels


def write_transformed(images: np.ndarray, labels: np.ndarray, path: str) -> None:
    """The training split as Transform writes it, so the project's input pipeline reads it."""
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(path, options) as writer:
        for image, label in zip(images, labels):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                features.IMAGE_XF: tf.train.Feature(float_list=tf.train.FloatList(
                    value=scale_pixels(image.reshape(-1)).numpy())),
                features.LABEL_XF: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())


class TutorialDCGAN:
    """The reference: the TensorFlow DCGAN tutorial's style, the project's schedule."""

    def __init__(self, config: TrainerConfig, images: np.ndarray):
        self.config = config
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
        self.d_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        scaled = (images[..., None].astype("float32") - 127.5) / 127.5
        self.dataset = tf.data.Dataset.from_tensor_slices(scaled).shuffle(60000).batch(
            config.batch_size, drop_remainder=True).repeat()

    @tf.function
    def train_step(self, real):
        c = self.config
        with tf.GradientTape() as tape:
            out = self.discriminator(real, training=True)
            loss = self.cross_entropy(tf.ones_like(out) * c.real_target, out)
        grads = tape.gradient(loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        noise = tf.random.normal([c.batch_size, c.z_dim])
        with tf.GradientTape() as tape:
            out = self.discriminator(self.generator(noise, training=True), training=True)
            loss = self.cross_entropy(tf.ones_like(out) * c.fake_target, out)
        grads = tape.gradient(loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        for _ in range(c.generator_steps):
            noise = tf.random.normal([c.batch_size, c.z_dim])
            with tf.GradientTape() as tape:
                out = self.discriminator(self.generator(noise, training=True), training=True)
                g_loss = self.cross_entropy(tf.ones_like(out), out)
            grads = tape.gradient(g_loss, self.generator.trainable_variables)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return g_loss


def images_per_second(step, batches, steps: int, batch_size: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        result = step(next(batches))
    float(tf.reduce_sum(tf.nest.flatten(result)[0]))  # Wait for the last step.
    return steps * batch_size / (time.perf_counter() - started)


def pipeline_overhead(mnist_dir: str) -> tuple[float, float]:
    """Seconds for every component before the Trainers, then for a cached rerun."""
    from tfx import v1 as tfx
    from pipeline import pipeline as pipeline_def
    config = dataclasses.replace(preset("default"), mnist_dir=mnist_dir,
                                 output_dir=tempfile.mkdtemp(prefix="bench-pipeline-"))
    times = []
    for _ in range(2):
        started = time.perf_counter()
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name=config.pipeline_name, pipeline_root=pipeline_def.pipeline_root(config),
            components=pipeline_def.data_components(config), enable_cache=True,
            metadata_connection_config=tfx.orchestration.metadata
            .sqlite_metadata_connection_config(pipeline_def.metadata_path(config)),
            beam_pipeline_args=list(config.beam_pipeline_args)))
        times.append(time.perf_counter() - started)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", ""))
    parser.add_argument("--steps", type=int, default=60, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mixed-precision", default="auto",
                        help="the project's precision: auto (the default: mixed_bfloat16 on "
                             "CPUs with native bfloat16), float32, mixed_bfloat16, mixed_float16")
    parser.add_argument("--filter-gradient", default="auto", help="auto, native, forward_conv")
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    if not args.mnist_dir:
        parser.error("--mnist-dir (or MNIST_DIR) is required: the benchmark uses full MNIST")
    train = mnist_idx.load_split(args.mnist_dir, "train")
    base = preset("default").trainer
    config = dataclasses.replace(base, mixed_precision=args.mixed_precision,
                                 filter_gradient=args.filter_gradient, jit_compile=args.jit_compile)
    path = os.path.join(tempfile.mkdtemp(prefix="bench-train-"), "train.gz")
    write_transformed(train.images, train.labels, path)

    dataset = training_dataset([path], config)
    batches = iter(dataset)
    started = time.perf_counter()
    for _ in range(500):
        next(batches)
    print(f"input pipeline alone: {500 * config.batch_size / (time.perf_counter() - started):.0f}"
          " images/s (includes the first pass that parses and caches)")

    project = DCGAN(config, tf.distribute.get_strategy())
    resolved = project.config
    print(f"machine: {os.cpu_count()} CPUs, GPUs: {len(tf.config.list_physical_devices('GPU'))}; "
          f"model {config.generator_filters}/{config.discriminator_filters}, global batch "
          f"{config.batch_size}, {config.generator_steps} G updates per step; project options: "
          f"mixed_precision={resolved.mixed_precision}, filter_gradient="
          f"{resolved.filter_gradient}, jit_compile={config.jit_compile}")
    # The reference: float32 and TensorFlow's own convolution gradients.
    reference = TutorialDCGAN(dataclasses.replace(base, mixed_precision="float32",
                                                  filter_gradient="native"), train.images)
    reference_batches = iter(reference.dataset)
    for _ in range(3):  # Trace and warm both.
        project.train_step(next(batches))
        reference.train_step(next(reference_batches))
    ratios = []
    for index in range(args.rounds):
        ref = images_per_second(reference.train_step, reference_batches, args.steps,
                                config.batch_size)
        own = images_per_second(project.train_step, batches, args.steps, config.batch_size)
        ratios.append(own / ref)
        print(f"round {index + 1}: reference {ref:.0f} images/s, project {own:.0f} images/s, "
              f"ratio {own / ref:.2f}")
    if not args.skip_pipeline:
        first, cached = pipeline_overhead(args.mnist_dir)
        print(f"pipeline overhead (components before the Trainers, full MNIST): {first:.1f} s; "
              f"cached rerun {cached:.1f} s")
    print(f"ratio_vs_reference: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
