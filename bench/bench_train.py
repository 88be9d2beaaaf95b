"""Training benchmark: the project's train step against a tutorial-style reference, one process.

The reference is written the way the TensorFlow DCGAN tutorial writes it (tf.function +
GradientTape, noise drawn inside the step, Keras loss objects, `from_tensor_slices(...)
.shuffle().batch()` with no prefetch, no XLA), with the preset's networks, global batch and
update schedule (D real, D fake, `generator_steps` G updates), in float32 with TensorFlow's own
convolution gradients. It trains the specification's objective: what the preset adds beyond it
(its objective terms, the weight average) the report names under `reference_leaves_out`
(nothing for `spec`). Rounds alternate between the runs so that machine noise hits all.

Two comparisons, equal precision first: the project in float32 against the reference, then the
project as configured ('auto': bfloat16 on a CPU that computes it natively, its filter
gradients as forward convolutions on a CPU-only host). Also: the achieved FLOP/s of each, from
the networks' own multiply-adds per trained image (`step_multiply_adds`), as a fraction of this
machine's matrix-multiply rate measured in the same run at the same precision; the input
pipeline alone; the pipeline's overhead (every component before the Trainers, then a cached
rerun). Last line: `ratio_vs_reference: <x.xx>` (equal precision).

    make bench-train [MNIST_DIR=...] \
        [BENCH_ARGS="--preset spec --report docs/reports/bench_train.json"]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from bench.provenance import provenance
from components import mnist_idx
from dcgan_common.config import PRESETS, TrainerConfig, preset
from dcgan_common import features
from trainer.data import training_dataset
from trainer.gan import DCGAN
from trainer.models import build_discriminator, build_generator
from trainer.terms import terms_for
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


def specification_objective(config: TrainerConfig) -> TrainerConfig:
    """The preset's networks and schedule with the specification's objective only, in float32
    with TensorFlow's own convolution gradients: what the reference trains."""
    return config.replace(
        model={"latent_categories": 0},
        objective={"real_cluster_weight": 0.0, "cluster_consistency_weight": 0.0,
                   "r1_weight": 0.0},
        averaging={"ema_decay": 0.0},
        runtime={"mixed_precision": "float32", "filter_gradient": "native"})


def reference_leaves_out(config: TrainerConfig) -> list[str]:
    """What the project's step does that the reference's does not."""
    return [term.name for term in terms_for(config)] + (
        ["weight average"] if config.averaging.ema_decay else [])


class TutorialDCGAN:
    """The reference: the TensorFlow DCGAN tutorial's style, the project's schedule."""

    def __init__(self, config: TrainerConfig, images: np.ndarray):
        self.config = config = specification_objective(config)
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.g_optimizer, self.d_optimizer = (
            keras.optimizers.Adam(config.optimizer.learning_rate, beta_1=config.optimizer.beta_1)
            for _ in range(2))
        self.num_images = len(images)
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        scaled = (images[..., None].astype("float32") - 127.5) / 127.5
        self.dataset = tf.data.Dataset.from_tensor_slices(scaled).shuffle(len(images)).batch(
            config.optimizer.batch_size, drop_remainder=True).repeat()

    @tf.function
    def train_step(self, real):
        c = self.config
        with tf.GradientTape() as tape:
            out = self.discriminator(real, training=True)
            loss = self.cross_entropy(tf.ones_like(out) * c.objective.real_target, out)
        grads = tape.gradient(loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        noise = tf.random.normal([c.optimizer.batch_size, c.model.z_dim])
        with tf.GradientTape() as tape:
            out = self.discriminator(self.generator(noise, training=True), training=True)
            loss = self.cross_entropy(tf.ones_like(out) * c.objective.fake_target, out)
        grads = tape.gradient(loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        for _ in range(c.optimizer.generator_steps):
            noise = tf.random.normal([c.optimizer.batch_size, c.model.z_dim])
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


def forward_multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one image's forward pass through the convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # Spectral normalisation wraps its layer.
        if isinstance(inner, keras.layers.Conv2DTranspose):
            _, height, width, channels = layer.input.shape
            total += height * width * channels * int(np.prod(inner.kernel.shape[:2])) \
                * inner.filters
        elif isinstance(inner, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            total += height * width * filters * int(np.prod(inner.kernel.shape[:3]))
        elif isinstance(inner, keras.layers.Dense):
            total += int(np.prod(inner.kernel.shape))
    return total


def step_multiply_adds(config: TrainerConfig, generator: int, discriminator: int) -> int:
    """Multiply-adds per trained image of one train step, counting a backpropagated pass as
    three forward passes (forward, input gradient, weight gradient) and a pass backpropagated
    to its inputs only as two: D real 3D (with the shift consistency another 3D); D fake G + 3D;
    the first G update on the same fakes 2D + 2G; every further G update 3G + 2D. The R1
    penalty's double backpropagation and the small heads are not counted (a lower bound)."""
    d_real = 3 * discriminator * (2 if config.objective.cluster_consistency_weight else 1)
    first = generator + 3 * discriminator + 2 * discriminator + 2 * generator
    others = (config.optimizer.generator_steps - 1) * (3 * generator + 2 * discriminator)
    return d_real + first + others


def matmul_flops_per_second(dtype: tf.DType, size: int, repeats: int = 10) -> float:
    """This machine's rate for a square matrix multiply at `dtype` (the best of 3 timings)."""
    a = tf.random.stateless_normal([size, size], [0, 1], dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda x: tf.matmul(x, x))
    matmul(a).numpy()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            result = matmul(a)
        result.numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 * repeats / best


def pipeline_overhead(mnist_dir: str, preset_name: str) -> tuple[float, float]:
    """Seconds for every component before the Trainers, then for a cached rerun."""
    from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel
    from pipeline import pipeline as pipeline_def  # pylint: disable=import-outside-toplevel
    config = dataclasses.replace(preset(preset_name), mnist_dir=mnist_dir,
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", ""))
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=60, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mixed-precision", default="auto",
                        help="the project's configured precision: auto (mixed_bfloat16 on CPUs "
                             "with native bfloat16), float32, mixed_bfloat16, mixed_float16")
    parser.add_argument("--filter-gradient", default="auto", help="auto, native, forward_conv")
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="side of the square matrices of the peak-rate measurement")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--report", help="write the report (JSON) here")
    args = parser.parse_args(argv)
    if not args.mnist_dir:
        parser.error("--mnist-dir (or MNIST_DIR) is required")
    train = mnist_idx.load_split(args.mnist_dir, "train")
    base = preset(args.preset).trainer
    configured = base.replace(runtime={"mixed_precision": args.mixed_precision,
                                       "filter_gradient": args.filter_gradient,
                                       "jit_compile": args.jit_compile})
    float32 = configured.replace(runtime={"mixed_precision": "float32"})
    path = os.path.join(tempfile.mkdtemp(prefix="bench-train-"), "train.gz")
    write_transformed(train.images, train.labels, path)

    batches = iter(training_dataset([path], configured))
    warm = min(500, len(train.images) // configured.optimizer.batch_size)
    started = time.perf_counter()
    for _ in range(warm):
        next(batches)
    input_rate = warm * configured.optimizer.batch_size / (time.perf_counter() - started)
    print(f"input pipeline alone: {input_rate:.0f} images/s (includes the first pass that "
          "parses and caches)")

    runs = {"reference": TutorialDCGAN(base, train.images),
            "project_float32": DCGAN(float32, tf.distribute.get_strategy())}
    resolved = DCGAN(configured, tf.distribute.get_strategy())
    if resolved.config.runtime.mixed_precision != "float32":  # Else it is project_float32 again.
        runs["project_configured"] = resolved
    iterators = {name: iter(run.dataset) if name == "reference" else batches
                 for name, run in runs.items()}
    for _ in range(3):  # Trace and warm every run.
        for name, run in runs.items():
            run.train_step(next(iterators[name]))
    precisions = {name: run.config.runtime.mixed_precision for name, run in runs.items()}
    dtypes = {policy: tf.bfloat16 if policy == "mixed_bfloat16" else
              tf.float16 if policy == "mixed_float16" else tf.float32
              for policy in set(precisions.values())}
    macs = {name: step_multiply_adds(
        run.config, forward_multiply_adds(run.generator), forward_multiply_adds(run.discriminator))
        for name, run in runs.items()}
    # Each round times every run and the matmul rate back to back: noise from other work on
    # the machine hits a round's numbers alike, so the per-round ratios are what is compared.
    rates: dict[str, list[float]] = {name: [] for name in runs}
    peaks: dict[str, list[float]] = {policy: [] for policy in dtypes}
    for index in range(args.rounds):
        for name, run in runs.items():
            rates[name].append(images_per_second(run.train_step, iterators[name], args.steps,
                                                 configured.optimizer.batch_size))
        for policy, dtype in dtypes.items():
            peaks[policy].append(matmul_flops_per_second(dtype, args.matmul_size))
        print(f"round {index + 1}: " + ", ".join(f"{name} {values[-1]:.0f} images/s"
                                                 for name, values in rates.items()))
    median = {name: statistics.median(values) for name, values in rates.items()}

    def paired(values: list[float], reference: list[float]) -> float:
        return statistics.median(a / b for a, b in zip(values, reference))

    flops = {name: {"step_multiply_adds_per_image": macs[name],
                    "achieved_flops_per_second": 2 * macs[name] * median[name],
                    "matmul_flops_per_second": statistics.median(peaks[precisions[name]]),
                    "fraction_of_matmul_rate": paired(
                        [2 * macs[name] * rate for rate in rates[name]],
                        peaks[precisions[name]])} for name in runs}
    for name, values in flops.items():
        print(f"{name}: {values['achieved_flops_per_second'] / 1e9:.1f} GFLOP/s achieved, "
              f"{values['fraction_of_matmul_rate']:.1%} of this machine's {precisions[name]} "
              f"matmul rate ({values['matmul_flops_per_second'] / 1e9:.0f} GFLOP/s)")
    reference_model = runs["reference"]
    report = {**provenance("bench.bench_train"), "preset": args.preset,
              "reference_leaves_out": reference_leaves_out(base),
              "precision": precisions, "filter_gradient": {
                  name: run.config.runtime.filter_gradient for name, run in runs.items()
                  if name != "reference"}
              | {"reference": reference_model.config.runtime.filter_gradient},
              "model": {"generator_filters": list(base.model.generator_filters),
                        "discriminator_filters": list(base.model.discriminator_filters),
                        "batch_size": base.optimizer.batch_size,
                        "generator_steps": base.optimizer.generator_steps},
              "steps_per_round": args.steps, "rounds": rates, "images_per_second": median,
              "ratio_equal_precision": paired(rates["project_float32"], rates["reference"]),
              "ratio_configured": paired(rates.get("project_configured",
                                                   rates["project_float32"]), rates["reference"]),
              "flops": flops, "input_pipeline_images_per_second":
              input_rate}
    if not args.skip_pipeline:
        first, cached = pipeline_overhead(args.mnist_dir, args.preset)
        report["pipeline_overhead_s"] = {"first": first, "cached": cached}
        print(f"pipeline overhead (components before the Trainers): {first:.1f} s; "
              f"cached rerun {cached:.1f} s")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"report: {args.report}")
    print(f"ratio_configured: {report['ratio_configured']:.2f}")
    print(f"ratio_vs_reference: {report['ratio_equal_precision']:.2f}")
    return report


if __name__ == "__main__":
    main()
