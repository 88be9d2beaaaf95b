"""Reads a pipeline's ML Metadata store: the one place that knows how TFX records runs.

TFX attributes every execution and every artifact it publishes to a `node` context named
`<pipeline name>.<node id>`; everything here is read through those contexts.
"""

from __future__ import annotations

import os
from typing import Any

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from dcgan_common.config import PipelineConfig
from pipeline import pipeline as pipeline_def

State = metadata_store_pb2.Execution.State
NODE_CONTEXT = "node"


def store(config: PipelineConfig) -> metadata_store.MetadataStore:
    """The local sqlite store of `config` (LocalDagRunner's)."""
    return metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config)))


def _node_contexts(db: metadata_store.MetadataStore, pipeline_name: str
                   ) -> dict[str, metadata_store_pb2.Context]:
    prefix = pipeline_name + "."
    return {context.name[len(prefix):]: context
            for context in db.get_contexts_by_type(NODE_CONTEXT)
            if context.name.startswith(prefix)}


def executions_by_node(config: PipelineConfig) -> dict[str, list[metadata_store_pb2.Execution]]:
    """Node id -> its executions, oldest first."""
    db = store(config)
    return {node: sorted(db.get_executions_by_context(context.id), key=lambda e: e.id)
            for node, context in _node_contexts(db, config.pipeline_name).items()}


def latest_outputs(config: PipelineConfig) -> dict[tuple[str, str], Any]:
    """(node id, artifact type) -> the newest such artifact the node recorded."""
    db = store(config)
    types = {t.id: t.name for t in db.get_artifact_types()}
    newest: dict[tuple[str, str], Any] = {}
    for node, context in _node_contexts(db, config.pipeline_name).items():
        for artifact in db.get_artifacts_by_context(context.id):
            key = (node, types[artifact.type_id])
            if key not in newest or artifact.id > newest[key].id:
                newest[key] = artifact
    return newest


def live_artifacts(config: PipelineConfig, type_name: str) -> list[metadata_store_pb2.Artifact]:
    """Every LIVE artifact of the type in the store (any pipeline)."""
    return [artifact for artifact in store(config).get_artifacts_by_type(type_name)
            if artifact.state == metadata_store_pb2.Artifact.LIVE]


def component_durations(config: PipelineConfig) -> dict[str, dict[str, Any]]:
    """node id -> state and seconds of its newest execution (an execution is created when the
    component starts and updated when it ends)."""
    durations = {}
    for node, executions in executions_by_node(config).items():
        if executions:
            newest = executions[-1]
            durations[node] = {
                "state": State.Name(newest.last_known_state),
                "seconds": round((newest.last_update_time_since_epoch
                                  - newest.create_time_since_epoch) / 1000, 1)}
    return durations


def abandon_unfinished(config: PipelineConfig, reason: str) -> list[int]:
    """Marks FAILED, with `reason` as its `abandoned` property, every execution of the
    pipeline still NEW or RUNNING: called by a run that holds the output directory, so the
    process that started them is gone (killed, crashed). Returns their ids."""
    if not os.path.exists(pipeline_def.metadata_path(config)):
        return []
    db = store(config)
    unfinished = [execution for executions in executions_by_node(config).values()
                  for execution in executions
                  if execution.last_known_state in (State.NEW, State.RUNNING)]
    for execution in unfinished:
        execution.last_known_state = State.FAILED
        execution.custom_properties["abandoned"].string_value = reason
    if unfinished:
        db.put_executions(unfinished)
    return [execution.id for execution in unfinished]


def newest_pipeline_run(config: PipelineConfig) -> str | None:
    """The id of the newest pipeline run recorded in the store."""
    runs = store(config).get_contexts_by_type("pipeline_run")
    return max(runs, key=lambda context: context.id).name if runs else None
