"""Scores a generator checkpoint with a pipeline's classifier, as the Evaluator would.

    python -m bench.evaluate_checkpoint CHECKPOINT RUN_OUTPUT_DIR [--preset default] [--samples N]

RUN_OUTPUT_DIR is a `dcgan-pipeline --output-dir` whose classifier and transformed eval split
are used (e.g. runs/local). Prints the metrics of the trained generator and (with a weight
average) of the averaged one beside the classifier's real-data floor, and writes their sample
grids to checkpoint_samples_<raw|averaged>.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from dcgan_common.features import NUM_CLASSES

from dcgan_common import embedding, layout, quality_metrics
from pipeline import metadata
from pipeline import pipeline as pipeline_def
from components.sample_quality_evaluator import to_unit_range
from dcgan_common.config import PipelineConfig, TrainerConfig, preset
from dcgan_common import images as image_utils
from dcgan_common.examples import load_arrays
from trainer.export import float32_copy, noise_from_seeds
from trainer.gan import DCGAN


def checkpoint_generators(config: TrainerConfig, checkpoint: str) -> dict[str, keras.Model]:
    """A training checkpoint's trained generator ("raw") and, with `ema_decay`, its weight
    average with standing BatchNorm statistics ("averaged", what the Trainer exports); both
    compute in float32, as served."""
    gan = DCGAN(config, tf.distribute.get_strategy())
    tf.train.Checkpoint(generator=gan.generator, **(
        {"weight_average": gan.average} if gan.average else {})).restore(
            checkpoint).expect_partial()
    generators = {"raw": float32_copy(gan.generator)}
    if gan.average is not None:
        generators["averaged"] = gan.served_generator()
    return generators


def generator_samples(generator: keras.Model, z_dim: int, count: int) -> np.ndarray:
    """uint8 [count, 28, 28, C], z from seeds 0..count-1 (the z of the Evaluator's `generate`
    calls); a conditional generator is asked for digit seed % 10, as the Evaluator asks."""
    seeds = tf.range(count, dtype=tf.int64)
    z = noise_from_seeds(seeds, z_dim)
    conditional = len(generator.inputs) == 2
    labels = tf.one_hot(seeds % NUM_CLASSES, NUM_CLASSES)

    def batch(start: int):
        rows = slice(start, start + 500)
        return [z[rows], labels[rows]] if conditional else z[rows]

    return np.concatenate([image_utils.to_uint8(generator(batch(i), training=False)).numpy()
                           for i in range(0, count, 500)])


def print_beside_floor(metrics: dict, floor: dict) -> None:
    """Every scalar metric beside its real-data floor, then FID as a multiple of the floor."""
    for key in ("fid", "kid_mean", "mnist_score", "classes_covered", "min_class_share",
                "max_class_share", "kl_to_uniform", "precision", "recall", "density", "coverage"):
        print(f"{key:16s} {metrics[key]:10.4f}   real-data floor {floor[key]:10.4f}")
    if "mode_kl" in metrics:
        for key in ("modes_covered", "mode_kl", "mode_dependence", "confident_share"):
            print(f"{key:16s} {metrics[key]:10.4f}   real-data floor {floor[key]:10.4f}")
    print(f"FID / floor: {metrics['fid'] / floor['fid']:.2f}")


def checkpoint_command(description: str) -> tuple[argparse.Namespace, PipelineConfig, dict]:
    """The checkpoint tools' command line, CHECKPOINT RUN_OUTPUT_DIR [--preset] [--samples]:
    the arguments, the preset's config and the run's latest output artifacts."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("run_output_dir")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    config = preset(args.preset)
    run = metadata.latest_outputs(
        dataclasses.replace(config, output_dir=os.path.abspath(args.run_output_dir)))
    return args, config, run


def main() -> None:
    args, config, run = checkpoint_command(__doc__)
    classifier_uri = run[(pipeline_def.CLASSIFIER_NODE_ID, "Model")].uri
    eval_pattern = os.path.join(run[("Transform", "Examples")].uri, "Split-eval", "*")
    embed_fn = embedding.load_embed_fn(classifier_uri)
    real, _ = load_arrays([eval_pattern], args.samples)
    real_features, _ = embedding.embed(embed_fn, real)
    with tf.io.gfile.GFile(os.path.join(classifier_uri, layout.CLASSIFIER_METRICS_FILE)) as f:
        floor = json.load(f)["floor"]
    for kind, generator in checkpoint_generators(config.trainer, args.checkpoint).items():
        fake = generator_samples(generator, config.trainer.model.z_dim, args.samples)
        features, probs = embedding.embed(embed_fn, to_unit_range(fake))
        print(f"{kind} generator:")
        print_beside_floor(quality_metrics.all_metrics(real_features, features, probs), floor)
        image_utils.write_png(image_utils.tile(tf.constant(fake[:64])),
                              os.path.abspath(f"checkpoint_samples_{kind}.png"))


if __name__ == "__main__":
    main()
