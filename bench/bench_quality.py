"""Quality benchmark: a preset (default: `default`) through the whole pipeline on full MNIST,
then a report of how good the samples are.

Writes into the report directory: report.json (the headline numbers with their command,
commit, date and machine), metrics.json (the Evaluator's: every metric beside its
real-data floor, the verdict), samples.png, curves.csv and curves.png (both losses per step;
FID against the eval images, MNIST score and the smallest and largest class share at every
checkpoint, from FID_SAMPLES samples, of the trained generator and, with a weight average, of
the averaged one).

    make bench-quality [MNIST_DIR=...] [BENCH_ARGS="--preset full"]
    # report in runs/bench-quality/report

A preset that keeps every checkpoint (`default`) trains exactly what `make run` trains: with
--output-dir of a finished `make run`, every component is cached and only the report is made.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import shutil
import time

import numpy as np
import tensorflow as tf
from absl import logging as absl_logging

from dcgan_common import embedding, quality_metrics
from components.sample_quality_evaluator import to_unit_range
from bench.evaluate_checkpoint import checkpoint_generators, generator_samples, print_beside_floor
from bench.plotting import plot_mode_histogram, plot_panels
from bench.provenance import provenance
from pipeline import local_runner, metadata
from pipeline import pipeline as pipeline_def
from dcgan_common import datasets
from dcgan_common.config import PRESETS, preset, with_dataset
from dcgan_common.examples import load_arrays
from dcgan_common.features import NUM_CLASSES
from trainer.run import checkpoint_dir

FID_SAMPLES = 2000


def loss_curves(logs_dir: str) -> dict[int, dict[str, float]]:
    """step -> {d_loss, g_loss} from the Trainer's TensorBoard events."""
    from tensorflow.core.util import event_pb2
    curves: dict[int, dict[str, float]] = {}
    for path in tf.io.gfile.glob(os.path.join(logs_dir, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag in ("d_loss", "g_loss"):
                    curves.setdefault(event.step, {})[value.tag] = float(
                        tf.make_ndarray(value.tensor))
    return curves


CHECKPOINT_METRICS = ("fid", "mnist_score", "min_class_share", "max_class_share")
# Datasets of several digits per image add these, from COVERAGE_SAMPLES samples (a thousand
# modes need far more than FID_SAMPLES: even a perfect generator covers only 865 in 2,000).
COVERAGE_METRICS = ("modes_covered", "mode_kl")
COVERAGE_SAMPLES = 10_000


def checkpoint_metrics(generator, z_dim: int, embed_fn, real_features) -> dict[str, float]:
    """CHECKPOINT_METRICS (and COVERAGE_METRICS for stacked digits) of one generator."""
    channels = real_features.shape[0]
    fake = generator_samples(generator, z_dim, FID_SAMPLES if channels == 1 else COVERAGE_SAMPLES)
    features, probabilities = embedding.embed_channels(embed_fn, to_unit_range(fake))
    dim = features.shape[-1]
    histogram = quality_metrics.class_histogram(probabilities.reshape(-1, NUM_CLASSES).argmax(1))
    values = {"fid": quality_metrics.frechet_distance(
                  real_features.reshape(-1, dim), features[:, :FID_SAMPLES].reshape(-1, dim)),
              "mnist_score": quality_metrics.mnist_score(probabilities.reshape(-1, NUM_CLASSES)),
              "min_class_share": histogram["min_class_share"],
              "max_class_share": histogram["max_class_share"]}
    if channels > 1:
        coverage = quality_metrics.mode_coverage(np.moveaxis(probabilities, 0, 1))
        values.update({name: coverage[name] for name in COVERAGE_METRICS})
    return values


def checkpoint_curves(config, train_files: list[str], classifier_uri: str,
                      eval_pattern: str) -> dict[str, dict[str, dict[int, float]]]:
    """checkpoint_metrics at every kept checkpoint, for the raw and the averaged generator:
    metric -> generator -> step -> value."""
    embed_fn = embedding.load_embed_fn(classifier_uri)
    real, _ = load_arrays([eval_pattern], FID_SAMPLES)
    real_features, _ = embedding.embed_channels(embed_fn, real)
    directory = checkpoint_dir(config, train_files)
    curves: dict[str, dict[str, dict[int, float]]] = {}
    for path in tf.train.get_checkpoint_state(directory).all_model_checkpoint_paths:
        step = int(path.rsplit("-", 1)[1])
        for kind, generator in checkpoint_generators(config, path).items():
            values = checkpoint_metrics(generator, config.model.z_dim, embed_fn, real_features)
            for name, value in values.items():
                curves.setdefault(name, {}).setdefault(kind, {})[step] = value
    return curves


def coverage_summary(metrics: dict, floor: dict) -> dict:
    """Stacked MNIST's headline numbers beside their real-data floors (nothing for MNIST)."""
    if "mode_kl" not in metrics:
        return {}
    return {"dataset_modes": metrics["num_modes"], "modes_covered": metrics["modes_covered"],
            "floor_modes_covered": floor["modes_covered"], "mode_kl": metrics["mode_kl"],
            "floor_mode_kl": floor["mode_kl"], "channel_kl": metrics["channel_kl"],
            "floor_channel_kl": floor["channel_kl"], "mode_dependence": metrics["mode_dependence"],
            "floor_mode_dependence": floor["mode_dependence"],
            "confident_share": metrics["confident_share"],
            "fid_per_channel": metrics["fid_per_channel"],
            "floor_fid_per_channel": floor["fid_per_channel"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", ""))
    parser.add_argument("--output-dir", default="runs/bench-quality")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--train-steps", type=int, help="override the preset's steps")
    parser.add_argument("--dataset", choices=sorted(datasets.DATASETS),
                        help="override the preset's dataset (the recipe on Stacked MNIST: "
                             "--preset spec --dataset stacked_mnist)")
    parser.add_argument("--seed", type=int, help="override the Trainer's seed")
    args = parser.parse_args()
    header = provenance("bench.bench_quality")
    if not args.mnist_dir:
        parser.error("--mnist-dir (or MNIST_DIR) is required: the benchmark uses full MNIST")
    config = dataclasses.replace(preset(args.preset), mnist_dir=args.mnist_dir,
                                 output_dir=os.path.abspath(args.output_dir))
    if args.dataset:
        config = with_dataset(config, args.dataset)
    if args.train_steps:
        config = config.replace_trainer(optimizer={"train_steps": args.train_steps})
    if args.seed is not None:
        config = config.replace_trainer(runtime={"seed": args.seed})
    trainer = config.trainer
    checkpoints = trainer.optimizer.train_steps // trainer.runtime.checkpoint_every_steps + 1
    if trainer.runtime.checkpoints_to_keep < checkpoints:  # The curves need every checkpoint.
        config = config.replace_trainer(runtime={"checkpoints_to_keep": checkpoints})
    # Every component's progress on the terminal (TFX logs through absl).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    absl_logging.set_verbosity(absl_logging.INFO)
    started = time.perf_counter()
    summary = local_runner.run(config)
    wall = time.perf_counter() - started
    outputs = metadata.latest_outputs(config)
    report_dir = os.path.join(config.output_dir, "report")
    os.makedirs(report_dir, exist_ok=True)
    evaluation_dir = os.path.dirname(summary["evaluation"])
    for name in ("metrics.json", "samples.png"):
        shutil.copy(os.path.join(evaluation_dir, name), report_dir)
    transformed = outputs[("Transform", "Examples")].uri
    trainer_config = config.trainer.replace(
        runtime={"checkpoint_dir": pipeline_def.checkpoint_root(config)},
        model={"channels": datasets.dataset(config.dataset).channels})
    curves = checkpoint_curves(trainer_config, [os.path.join(transformed, "Split-train", "*")],
                     outputs[(pipeline_def.CLASSIFIER_NODE_ID, "Model")].uri,
                     os.path.join(transformed, "Split-eval", "*"))
    losses = loss_curves(summary["tensorboard_logs"])
    kinds, names = sorted(curves["fid"]), list(curves)
    with open(os.path.join(report_dir, "curves.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "d_loss", "g_loss", *(f"{name}_{kind}" for name in names
                                                       for kind in kinds)])
        for step in sorted(losses):
            writer.writerow([step, losses[step].get("d_loss"), losses[step].get("g_loss"),
                             *(curves[name][kind].get(step, "") for name in names
                               for kind in kinds)])
    loss_panels = {name: {name: {step: values[name] for step, values in losses.items()
                                 if name in values}} for name in ("d_loss", "g_loss")}
    plot_panels({**loss_panels, **{
        f"{name} ({COVERAGE_SAMPLES if name in COVERAGE_METRICS else FID_SAMPLES} samples)":
            curves[name] for name in names}}, os.path.join(report_dir, "curves.png"))
    with open(os.path.join(report_dir, "metrics.json")) as f:
        report = json.load(f)
    metrics, floor = report["metrics"], report["floor"]
    with open(os.path.join(report_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump({**header, "preset": args.preset,
                   "train_steps": config.trainer.optimizer.train_steps,
                   "seed": config.trainer.runtime.seed, "wall_time_s": round(wall, 1),
                   "verdict": report["verdict"], "fid": metrics["fid"], "floor_fid": floor["fid"],
                   "fid_to_floor": metrics["fid"] / floor["fid"],
                   "mnist_score": metrics["mnist_score"],
                   "min_class_share": metrics["min_class_share"],
                   "max_class_share": metrics["max_class_share"],
                   **coverage_summary(metrics, floor)}, f, indent=2)
    if "mode_counts" in metrics:
        plot_mode_histogram(metrics["mode_counts"], os.path.join(report_dir, "modes.png"))
    print(f"wall time {wall / 60:.1f} min on {os.cpu_count()} CPUs; verdict {report['verdict']}")
    print_beside_floor(metrics, floor)
    print(f"report in {report_dir}")


if __name__ == "__main__":
    main()
