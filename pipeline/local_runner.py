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
    parser.add_argument("--strategy", help="override the tf.distribute strategy "
                                           "(auto, mirrored, one_device)")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    if args.mnist_dir and not os.path.isdir(args.mnist_dir):
        raise SystemExit(f"dcgan-pipeline: --mnist-dir {args.mnist_dir}: not a directory")
    overrides = {name: value for name, value in (("train_steps", args.train_steps),
                                                 ("batch_size", args.batch_size),
                                                 ("strategy", args.strategy)) if value is not None}
    config = dataclasses.replace(preset(args.preset), mnist_dir=args.mnist_dir,
                                 output_dir=os.path.abspath(args.output_dir))
    return config.replace_trainer(**overrides)


def latest_outputs(config: PipelineConfig) -> dict[str, Any]:
    """The newest artifact of each type this pipeline produced, read from the metadata store."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config)))
    context = store.get_context_by_type_and_name("pipeline", config.pipeline_name)
    newest: dict[str, Any] = {}
    types = {t.id: t.name for t in store.get_artifact_types()}
    for artifact in store.get_artifacts_by_context(context.id):
        name = types[artifact.type_id]
        if name not in newest or artifact.id > newest[name].id:
            newest[name] = artifact
    return newest


def run_summary(config: PipelineConfig, wall_time_s: float) -> dict[str, Any]:
    outputs = latest_outputs(config)
    pushed = outputs.get("PushedModel")
    model_run = outputs["ModelRun"].uri
    samples_dir = os.path.join(model_run, SAMPLES_DIR)
    grids = sorted(tf.io.gfile.glob(os.path.join(samples_dir, "*.png")))
    props = pushed.custom_properties if pushed else {}
    return {
        "pipeline_name": config.pipeline_name,
        "pushed": bool(props and props["pushed"].int_value),
        "pushed_model": props["pushed_destination"].string_value if props else None,
        "pushed_version": props["pushed_version"].string_value if props else None,
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


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(logging.INFO)
    config = config_from_args(parse_args(argv))
    summary = run(config)
    print(json.dumps(summary, indent=2))
    print(f"Pushed generator: {summary['pushed_model']}\n"
          f"Final sample grid: {summary['final_sample_grid']}\n"
          f"TensorBoard: tensorboard --logdir {summary['tensorboard_logs']}\n"
          f"Summary: {os.path.join(config.output_dir, SUMMARY_FILE)}", file=sys.stderr)


if __name__ == "__main__":
    main()
