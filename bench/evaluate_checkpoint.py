"""Scores a generator checkpoint with a pipeline's classifier, as the Evaluator would.

    python -m bench.evaluate_checkpoint CHECKPOINT RUN_OUTPUT_DIR [--preset full] [--samples N]

RUN_OUTPUT_DIR is a `dcgan-pipeline --output-dir` whose classifier and transformed eval split
are used (e.g. runs/local). Prints the metrics beside the classifier's real-data floor.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from dcgan_common import embedding, layout, quality_metrics
from pipeline import metadata
from pipeline import pipeline as pipeline_def
from components.sample_quality_evaluator import to_unit_range
from dcgan_common.config import TrainerConfig, preset
from dcgan_common import images as image_utils
from dcgan_common.examples import load_arrays
from trainer.export import noise_from_seeds
from trainer.models import build_generator


def checkpoint_samples(config: TrainerConfig, checkpoint: str, count: int) -> np.ndarray:
    """uint8 [count, 28, 28, 1] from a training checkpoint's generator, z from seeds 0..count-1
    (the same z the Evaluator's `generate` calls use), computed in float32 as served."""
    generator = build_generator(dataclasses.replace(config, mixed_precision="float32"))
    tf.train.Checkpoint(generator=generator).restore(checkpoint).expect_partial()
    z = noise_from_seeds(tf.range(count, dtype=tf.int64), config.z_dim)
    return np.concatenate([image_utils.to_uint8(generator(z[i:i + 500], training=False)).numpy()
                           for i in range(0, count, 500)])


def print_beside_floor(metrics: dict, floor: dict) -> None:
    """Every scalar metric beside its real-data floor, then FID as a multiple of the floor."""
    for key in ("fid", "kid_mean", "mnist_score", "classes_covered", "min_class_share",
                "max_class_share", "kl_to_uniform", "precision", "recall", "density", "coverage"):
        print(f"{key:16s} {metrics[key]:10.4f}   real-data floor {floor[key]:10.4f}")
    print(f"FID / floor: {metrics['fid'] / floor['fid']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("run_output_dir")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    config = preset(args.preset)
    run = metadata.latest_outputs(
        dataclasses.replace(config, output_dir=os.path.abspath(args.run_output_dir)))
    classifier_uri = run[(pipeline_def.CLASSIFIER_NODE_ID, "Model")].uri
    eval_pattern = os.path.join(run[("Transform", "Examples")].uri, "Split-eval", "*")
    embed_fn = embedding.load_embed_fn(classifier_uri)
    real, _ = load_arrays([eval_pattern], args.samples)
    real_features, _ = embedding.embed(embed_fn, real)
    fake = checkpoint_samples(config.trainer, args.checkpoint, args.samples)
    features, probs = embedding.embed(embed_fn, to_unit_range(fake))
    metrics = quality_metrics.all_metrics(real_features, features, probs)
    with tf.io.gfile.GFile(os.path.join(classifier_uri, layout.CLASSIFIER_METRICS_FILE)) as f:
        floor = json.load(f)["floor"]
    print_beside_floor(metrics, floor)
    grid = image_utils.tile(tf.constant(fake[:64]))
    image_utils.write_png(grid, os.path.abspath("checkpoint_samples.png"))


if __name__ == "__main__":
    main()
