"""`dcgan-pipeline`: runs the pipeline with LocalDagRunner (sqlite metadata, local files).

Also `python -m pipeline.local_runner`. At the end it prints, and writes to
`<output-dir>/run_summary.json`, where the run's outputs are.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from typing import Any, Sequence

import tensorflow as tf
from ml_metadata import metadata_store
from tfx import v1 as tfx

from pipeline import pipeline as pipeline_def
from pipeline.config import PRESETS, PipelineConfig, preset
from components.sample_quality_evaluator import METRICS_FILE
from trainer.train_loop import LOGS_DIR, SAMPLES_DIR

SUMMARY_FILE = "run_summary.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcgan-pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", ""),
                        help="directory with the four MNIST IDX files (default: $MNIST_DIR; "
                             "empty: download with tensorflow-datasets)")
    parser.add_argument("--output-dir", default="runs/local",
                        help="pipeline root, metadata and serving destination (default: %(default)s)")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--train-steps", type=int, help="override the preset's training steps")
    parser.add_argument("--batch-size", type=int, help="override the preset's global batch size")
    parser.add_argument("--conditional", action="store_true",
                        help="train the class-conditional DCGAN (serving takes a `label`)")
    parser.add_argument("--strategy", help="override the tf.distribute strategy "
                                           "(auto, mirrored, multi_worker, tpu, one_device)")
    parser.add_argument("--mixed-precision", metavar="POLICY",
                        help="override the precision policy: float32, mixed_bfloat16 (CPUs "
                             "with AVX512_BF16 or AMX, TPUs), mixed_float16 (GPUs)")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    if args.mnist_dir and not os.path.isdir(args.mnist_dir):
        raise SystemExit(f"dcgan-pipeline: --mnist-dir {args.mnist_dir}: not a directory")
    overrides = {name: value for name, value in (("train_steps", args.train_steps),
                                                 ("batch_size", args.batch_size),
                                                 ("strategy", args.strategy),
                                                 ("mixed_precision", args.mixed_precision),
                                                 ("conditional", args.conditional or None))
                 if value is not None}
    config = dataclasses.replace(preset(args.preset), mnist_dir=args.mnist_dir,
                                 output_dir=os.path.abspath(args.output_dir))
    return config.replace_trainer(**overrides)


def latest_outputs(config: PipelineConfig) -> dict[tuple[str, str], Any]:
    """(node id, artifact type) -> the newest such artifact of this pipeline in the metadata store.

    The node is read off the URI: TFX writes outputs to <pipeline root>/<node id>/<key>/<id>.
    """
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config)))
    context = store.get_context_by_type_and_name("pipeline", config.pipeline_name)
    root = pipeline_def.pipeline_root(config)
    types = {t.id: t.name for t in store.get_artifact_types()}
    newest: dict[tuple[str, str], Any] = {}
    for artifact in store.get_artifacts_by_context(context.id):
        key = (os.path.relpath(artifact.uri, root).split(os.sep)[0], types[artifact.type_id])
        if key not in newest or artifact.id > newest[key].id:
            newest[key] = artifact
    return newest


def run_summary(config: PipelineConfig, wall_time_s: float) -> dict[str, Any]:
    outputs = latest_outputs(config)
    pushed = outputs.get(("Pusher", "PushedModel"))
    model_run = outputs[("Trainer", "ModelRun")].uri
    samples_dir = os.path.join(model_run, SAMPLES_DIR)
    grids = sorted(tf.io.gfile.glob(os.path.join(samples_dir, "*.png")))
    props = pushed.custom_properties if pushed else {}
    evaluation = outputs.get(("SampleQualityEvaluator", "ModelEvaluation"))
    report = {}
    if evaluation:
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, METRICS_FILE)) as f:
            report = json.load(f)
    return {
        "pipeline_name": config.pipeline_name,
        "pushed": bool(props and props["pushed"].int_value),
        "pushed_model": props["pushed_destination"].string_value if props else None,
        "pushed_version": props["pushed_version"].string_value if props else None,
        "verdict": report.get("verdict"),
        "verdict_reasons": report.get("reasons"),
        "quality_metrics": report.get("metrics"),
        "real_data_floor": report.get("floor"),
        "evaluation": os.path.join(evaluation.uri, METRICS_FILE) if evaluation else None,
        "sample_grids": grids,
        "final_sample_grid": grids[-1] if grids else None,
        "tensorboard_logs": os.path.join(model_run, LOGS_DIR),
        "metadata_db": pipeline_def.metadata_path(config),
        "pipeline_root": pipeline_def.pipeline_root(config),
        "trainer": config.trainer.to_dict(),
        "wall_time_s": round(wall_time_s, 1),
    }


def run(config: PipelineConfig) -> dict[str, Any]:
    """Runs the whole DAG and returns (and writes) the run summary."""
    tf.io.gfile.makedirs(config.output_dir)
    started = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(pipeline_def.create_pipeline(
        config, tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config))))
    summary = run_summary(config, time.perf_counter() - started)
    with open(os.path.join(config.output_dir, SUMMARY_FILE), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def show_progress_logs() -> None:
    """INFO on stderr: every component's start and end, the Trainer's step logs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> None:
    show_progress_logs()
    config = config_from_args(parse_args(argv))
    summary = run(config)
    print(json.dumps(summary, indent=2))
    reasons = "".join(f"\n  - {reason}" for reason in summary["verdict_reasons"] or [])
    print(f"Verdict: {summary['verdict']}{reasons}\n"
          f"Pushed generator: {summary['pushed_model'] if summary['pushed'] else 'nothing pushed'}\n"
          f"Final sample grid: {summary['final_sample_grid']}\n"
          f"TensorBoard: tensorboard --logdir {summary['tensorboard_logs']}\n"
          f"Summary: {os.path.join(config.output_dir, SUMMARY_FILE)}", file=sys.stderr)


if __name__ == "__main__":
    main()
