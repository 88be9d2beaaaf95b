"""Runs the pipeline with LocalDagRunner (sqlite metadata, local files) and summarizes the run.

`dcgan-pipeline` (pipeline/console.py, also `python -m pipeline.local_runner`) is the command
line; `run` writes `<output-dir>/run_summary.json`, where the run's outputs are.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from pipeline import pipeline as pipeline_def
from pipeline.config import PipelineConfig
from components.sample_quality_evaluator import METRICS_FILE
from trainer.train_loop import LOGS_DIR, SAMPLES_DIR

SUMMARY_FILE = "run_summary.json"


def _store(config: PipelineConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config)))


def latest_outputs(config: PipelineConfig) -> dict[tuple[str, str], Any]:
    """(node id, artifact type) -> the newest such artifact of this pipeline in the metadata store.

    The node is read off the URI: TFX writes outputs to <pipeline root>/<node id>/<key>/<id>.
    """
    store = _store(config)
    context = store.get_context_by_type_and_name("pipeline", config.pipeline_name)
    root = pipeline_def.pipeline_root(config)
    types = {t.id: t.name for t in store.get_artifact_types()}
    newest: dict[tuple[str, str], Any] = {}
    for artifact in store.get_artifacts_by_context(context.id):
        key = (os.path.relpath(artifact.uri, root).split(os.sep)[0], types[artifact.type_id])
        if key not in newest or artifact.id > newest[key].id:
            newest[key] = artifact
    return newest


def component_durations(config: PipelineConfig) -> dict[str, dict[str, Any]]:
    """node id -> state and seconds of its newest execution in this pipeline, from the metadata
    store (an execution is created when the component starts and updated when it ends)."""
    store = _store(config)
    durations = {}
    for context in store.get_contexts_by_type("node"):
        pipeline_name, node = context.name.split(".", 1)
        executions = store.get_executions_by_context(context.id)
        if pipeline_name != config.pipeline_name or not executions:
            continue
        newest = max(executions, key=lambda execution: execution.id)
        durations[node] = {
            "state": metadata_store_pb2.Execution.State.Name(newest.last_known_state),
            "seconds": round((newest.last_update_time_since_epoch
                              - newest.create_time_since_epoch) / 1000, 1)}
    return durations


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
        "component_durations": component_durations(config),
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


if __name__ == "__main__":
    from pipeline import console
    sys.exit(console.main())
