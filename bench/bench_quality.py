"""Quality benchmark: the `full` preset on full MNIST, then a report of how good the samples are.

Writes into the report directory: metrics.json (the Evaluator's: every metric beside its
real-data floor, the verdict), samples.png, curves.csv and curves.png (both losses per step;
FID against the eval images, MNIST score and the smallest and largest class share at every
checkpoint, from FID_SAMPLES samples).

    make bench-quality [MNIST_DIR=...]   # report in runs/bench-quality/report
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import time

import tensorflow as tf
from PIL import Image, ImageDraw

from dcgan_common import embedding, quality_metrics
from components.sample_quality_evaluator import to_unit_range
from bench.evaluate_checkpoint import checkpoint_samples, print_beside_floor
from pipeline import local_runner, metadata
from pipeline import pipeline as pipeline_def
from dcgan_common.config import preset
from dcgan_common.examples import load_arrays
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


def checkpoint_curves(config, train_files: list[str], classifier_uri: str,
                      eval_pattern: str) -> dict[str, dict[int, float]]:
    """CHECKPOINT_METRICS of FID_SAMPLES samples at every kept checkpoint: name -> step -> value."""
    embed_fn = embedding.load_embed_fn(classifier_uri)
    real, _ = load_arrays([eval_pattern], FID_SAMPLES)
    real_features, _ = embedding.embed(embed_fn, real)
    directory = checkpoint_dir(config, train_files)
    curves: dict[str, dict[int, float]] = {name: {} for name in CHECKPOINT_METRICS}
    for path in tf.train.get_checkpoint_state(directory).all_model_checkpoint_paths:
        step = int(path.rsplit("-", 1)[1])
        fake = checkpoint_samples(config, path, FID_SAMPLES)
        features, probabilities = embedding.embed(embed_fn, to_unit_range(fake))
        histogram = quality_metrics.class_histogram(probabilities.argmax(1))
        curves["fid"][step] = quality_metrics.frechet_distance(real_features, features)
        curves["mnist_score"][step] = quality_metrics.mnist_score(probabilities)
        for name in ("min_class_share", "max_class_share"):
            curves[name][step] = histogram[name]
    return curves


def plot(series: dict[str, dict[int, float]], path: str, size=(900, 500)) -> None:
    """One panel per series, drawn with PIL (no plotting library in the lock)."""
    image = Image.new("RGB", (size[0], size[1] * len(series)), "white")
    draw = ImageDraw.Draw(image)
    for row, (name, points) in enumerate(series.items()):
        top, margin = row * size[1], 50
        xs, ys = zip(*sorted(points.items()))
        x0, x1, y0, y1 = min(xs), max(xs) or 1, min(ys), max(ys)
        y1 = y1 if y1 > y0 else y0 + 1

        def at(x, y):
            return (margin + (x - x0) / max(x1 - x0, 1) * (size[0] - 2 * margin),
                    top + size[1] - margin - (y - y0) / (y1 - y0) * (size[1] - 2 * margin))

        draw.rectangle([margin, top + margin, size[0] - margin, top + size[1] - margin],
                       outline="gray")
        draw.line([at(x, y) for x, y in zip(xs, ys)], fill="navy", width=2)
        draw.text((margin, top + 10), f"{name}: {y0:.3g} .. {y1:.3g} over steps {x0}..{x1}",
                  fill="black")
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", ""))
    parser.add_argument("--output-dir", default="runs/bench-quality")
    parser.add_argument("--train-steps", type=int, help="override the full preset's steps")
    args = parser.parse_args()
    if not args.mnist_dir:
        parser.error("--mnist-dir (or MNIST_DIR) is required: the benchmark uses full MNIST")
    config = dataclasses.replace(preset("full"), mnist_dir=args.mnist_dir,
                                 output_dir=os.path.abspath(args.output_dir))
    config = config.replace_trainer(checkpoints_to_keep=1000, **(
        {"train_steps": args.train_steps} if args.train_steps else {}))
    local_runner.show_progress_logs()
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
    trainer_config = dataclasses.replace(config.trainer,
                                         checkpoint_dir=pipeline_def.checkpoint_root(config))
    curves = checkpoint_curves(trainer_config, [os.path.join(transformed, "Split-train", "*")],
                     outputs[(pipeline_def.CLASSIFIER_NODE_ID, "Model")].uri,
                     os.path.join(transformed, "Split-eval", "*"))
    losses = loss_curves(summary["tensorboard_logs"])
    with open(os.path.join(report_dir, "curves.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "d_loss", "g_loss", *CHECKPOINT_METRICS])
        for step in sorted(losses):
            writer.writerow([step, losses[step].get("d_loss"), losses[step].get("g_loss"),
                             *(curves[name].get(step, "") for name in CHECKPOINT_METRICS)])
    plot({"d_loss": {s: v["d_loss"] for s, v in losses.items() if "d_loss" in v},
          "g_loss": {s: v["g_loss"] for s, v in losses.items() if "g_loss" in v},
          **{f"{name} ({FID_SAMPLES} samples)": curves[name] for name in CHECKPOINT_METRICS}},
         os.path.join(report_dir, "curves.png"))
    with open(os.path.join(report_dir, "metrics.json")) as f:
        report = json.load(f)
    metrics, floor = report["metrics"], report["floor"]
    print(f"wall time {wall / 60:.1f} min on {os.cpu_count()} CPUs; verdict {report['verdict']}")
    print_beside_floor(metrics, floor)
    print(f"report in {report_dir}")


if __name__ == "__main__":
    main()
