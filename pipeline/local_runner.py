"""Runs the pipeline with LocalDagRunner (sqlite metadata, local files) and summarizes the run.

`dcgan-pipeline` (pipeline/console.py, also `python -m pipeline.console`) is the command
line; `run` writes `<output-dir>/run_summary.json`, where the run's outputs are.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import time
from typing import Any

import tensorflow as tf
from tfx import v1 as tfx

from pipeline import pipeline as pipeline_def
from components.atomic_pusher import is_object_store
from pipeline.metadata import (abandon_unfinished, component_durations, latest_outputs,
                               newest_pipeline_run)
from pipeline.run_lock import RunLock
from dcgan_common.config import PipelineConfig
from dcgan_common.layout import EVALUATION_FILE, LOGS_DIR, SAMPLES_DIR

SUMMARY_FILE = "run_summary.json"


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
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, EVALUATION_FILE)) as f:
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
        "evaluation": os.path.join(evaluation.uri, EVALUATION_FILE) if evaluation else None,
        "sample_grids": grids,
        "final_sample_grid": grids[-1] if grids else None,
        "tensorboard_logs": os.path.join(model_run, LOGS_DIR),
        "metadata_db": pipeline_def.metadata_path(config),
        "pipeline_root": pipeline_def.pipeline_root(config),
        "trainer": config.trainer.to_dict(),
        "wall_time_s": round(wall_time_s, 1),
        "component_durations": component_durations(config),
    }


def run(config: PipelineConfig) -> dict[str, Any]:
    """Runs the whole DAG and returns (and writes) the run summary. Holds the output directory
    (pipeline/run_lock.py) if it is local: raises OutputDirLocked if a live run holds it."""
    if is_object_store(config.output_dir):
        return _run(config)
    with RunLock(config.output_dir):
        return _run(config)


def _run(config: PipelineConfig) -> dict[str, Any]:
    tf.io.gfile.makedirs(config.output_dir)
    started_at = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    abandoned = abandon_unfinished(
        config, f"its process ended before it did; found by the run of pid {os.getpid()} "
                f"started {started_at}")
    if abandoned:
        logging.warning("marked %d execution(s) left unfinished by a run that died as FAILED "
                        "(abandoned): %s", len(abandoned), abandoned)
    started = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(pipeline_def.create_pipeline(
        config, tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config))))
    summary = {"run": {"pipeline_run_id": newest_pipeline_run(config), "started": started_at,
                       "pid": os.getpid(), "host": socket.gethostname(),
                       "abandoned_executions": abandoned},
               **run_summary(config, time.perf_counter() - started)}
    with open(os.path.join(config.output_dir, SUMMARY_FILE), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary
