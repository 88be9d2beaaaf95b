"""Executes a compiled spec on this machine, task by task, the way the Kubeflow backend runs it.

Everything a task receives comes from the spec: its command and arguments (TFX's Kubeflow V2
container entrypoint), its parameters (constants, or the run's parameters: the spec's defaults
or `--param`), its input artifacts (the upstream tasks' `executor_output.json`) and its output
artifacts under the pipeline root. kfp's local-execution utilities build the executor input and
resolve the placeholders; kfp 2.5 has no input artifacts there, so they are added here. Nothing
is re-derived from the pipeline definition.

What only a cluster shows (scheduling, pods, GPUs, the metadata server, caching) is not run.
"""

from __future__ import annotations

import dataclasses
import graphlib
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Mapping

from google.protobuf import json_format
from kfp.local import executor_input_utils, executor_output_utils, placeholder_utils
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.dsl.io import fileio

from dcgan_kfp import backend_rules

ParameterType = pipeline_spec_pb2.ParameterType
RUN_RECORD = "tasks.json"  # Per task: command, exit code, seconds.


class TaskFailed(RuntimeError):
    """A task exited non-zero: nothing downstream of it ran (so nothing was pushed)."""

    def __init__(self, task: str, returncode: int, log_path: str):
        self.task, self.returncode, self.log_path = task, returncode, log_path
        with open(log_path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        # The last line of a Python failure is the exception and its message.
        self.error = lines[-1] if lines else "(no output)"
        super().__init__(f"task {task} failed (exit code {returncode}): {self.error}\n"
                         f"its log: {log_path}")


@dataclasses.dataclass(frozen=True)
class TaskResult:
    name: str
    seconds: float
    log_path: str
    command: tuple[str, ...]
    outputs: pipeline_spec_pb2.ExecutorOutput


def parse_parameters(spec: pipeline_spec_pb2.PipelineSpec,
                     pairs: Mapping[str, str]) -> dict[str, Any]:
    """`--param NAME=VALUE` strings typed as the spec declares the root parameter."""
    declared = spec.root.input_definitions.parameters
    typed = {}
    for name, text in pairs.items():
        kind = declared[name].parameter_type if name in declared else ParameterType.STRING
        try:
            if kind == ParameterType.NUMBER_INTEGER:
                typed[name] = int(text)
            elif kind == ParameterType.NUMBER_DOUBLE:
                typed[name] = float(text)
            elif kind == ParameterType.BOOLEAN:
                typed[name] = {"true": True, "false": False}[text.lower()]
            else:
                typed[name] = text
        except (ValueError, KeyError):
            raise ValueError(f"--param {name}={text}: not a "
                             f"{ParameterType.ParameterTypeEnum.Name(kind)}") from None
    return typed


def run_parameters(spec: pipeline_spec_pb2.PipelineSpec,
                   params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's parameter values as the backend resolves them: given value, else default."""
    backend_rules.check_names(spec)
    backend_rules.check_run_parameters(spec, params)
    values = {name: executor_output_utils.pb2_value_to_python(param.default_value)
              for name, param in spec.root.input_definitions.parameters.items()
              if param.HasField("default_value")}
    return {**values, **params}


def task_order(dag: pipeline_spec_pb2.DagSpec) -> list[str]:
    """Dependency order (ties by name): explicit dependencies and artifact producers."""
    graph = graphlib.TopologicalSorter()
    for name, task in dag.tasks.items():
        producers = {a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()
                     if a.HasField("task_output_artifact")}
        graph.add(name, *task.dependent_tasks, *producers)
    graph.prepare()
    order = []
    while graph.is_active():
        ready = sorted(graph.get_ready())
        order += ready
        graph.done(*ready)
    return order


def _parameter_arguments(task: pipeline_spec_pb2.PipelineTaskSpec, run_values: Mapping[str, Any],
                         done: Mapping[str, TaskResult]) -> dict[str, Any]:
    arguments = {}
    for name, binding in task.inputs.parameters.items():
        if binding.HasField("runtime_value"):
            value = binding.runtime_value.constant
            arguments[name] = executor_output_utils.pb2_value_to_python(value)
        elif binding.component_input_parameter:
            arguments[name] = run_values[binding.component_input_parameter]
        elif binding.HasField("task_output_parameter"):
            upstream = binding.task_output_parameter
            arguments[name] = executor_output_utils.pb2_value_to_python(
                done[upstream.producer_task].outputs.parameter_values[
                    upstream.output_parameter_key])
        else:
            raise ValueError(f"task {task.task_info.name}: parameter {name}: unsupported "
                             f"binding {json_format.MessageToJson(binding)}")
    return arguments


def executor_input(spec: pipeline_spec_pb2.PipelineSpec, task_name: str, task_root: str,
                   run_values: Mapping[str, Any],
                   done: Mapping[str, TaskResult]) -> pipeline_spec_pb2.ExecutorInput:
    """kfp's executor input for the task, plus its input artifacts from upstream outputs."""
    task = spec.root.dag.tasks[task_name]
    component = spec.components[task.component_ref.name]
    without_artifacts = pipeline_spec_pb2.ComponentSpec()
    without_artifacts.CopyFrom(component)
    without_artifacts.input_definitions.ClearField("artifacts")
    result = executor_input_utils.construct_executor_input(
        without_artifacts, _parameter_arguments(task, run_values, done), task_root)
    for name, binding in task.inputs.artifacts.items():
        upstream = binding.task_output_artifact
        if not upstream.producer_task:
            raise ValueError(f"task {task_name}: artifact {name}: only upstream task outputs "
                             "are supported")
        result.inputs.artifacts[name].CopyFrom(
            done[upstream.producer_task].outputs.artifacts[upstream.output_artifact_key])
    return result


ContainerSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec


def task_container(spec: pipeline_spec_pb2.PipelineSpec, task_name: str) -> ContainerSpec:
    """The image, command and arguments the spec gives the task."""
    deployment = json_format.ParseDict(
        json_format.MessageToDict(spec.deployment_spec),
        pipeline_spec_pb2.PipelineDeploymentConfig())
    label = spec.components[spec.root.dag.tasks[task_name].component_ref.name].executor_label
    return deployment.executors[label].container


def docker_command(image: str, command: list[str], mounts: tuple[str, ...]) -> list[str]:
    """`docker run` of the task's command in the image, each local path mounted at itself."""
    volumes = []
    for path in sorted(set(mounts)):
        volumes += ["-v", f"{path}:{path}"]
    env = []
    for name in ("S3_ENDPOINT", "S3_USE_HTTPS", "S3_VERIFY_SSL", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL"):
        if name in os.environ:
            env += ["-e", name]
    return ["docker", "run", "--rm", "--network", "host", *env, *volumes, image, *command]


def run_spec(spec: pipeline_spec_pb2.PipelineSpec, pipeline_root: str, log_dir: str,
             params: Mapping[str, Any] | None = None, docker_image: str | None = None,
             mounts: tuple[str, ...] = (),
             progress: Callable[[str], None] = print) -> dict[str, TaskResult]:
    """Runs every task of the spec's root DAG in dependency order; raises TaskFailed at the
    first failure. Output artifacts go to <pipeline_root>/<run name>/<task>/, each task's log
    to <log_dir>/<run name>/<task>.log. With `docker_image`, each task runs in that image with
    `mounts` (and every absolute path among the run's parameters) mounted at the same path."""
    run_values = run_parameters(spec, params or {})
    run_name = executor_input_utils.get_local_pipeline_resource_name(spec.pipeline_info.name)
    run_root = f"{pipeline_root.rstrip('/')}/{run_name}"
    log_dir = os.path.join(log_dir, run_name)
    os.makedirs(log_dir, exist_ok=True)
    progress(f"run {run_name}: {len(spec.root.dag.tasks)} tasks; outputs under {run_root}; "
             f"logs in {log_dir}")
    # The venv's `python` first, as the image's PATH has it.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep +
           os.environ.get("PATH", "")}
    mounts += tuple(v for v in run_values.values() if isinstance(v, str) and os.path.isabs(v))
    done: dict[str, TaskResult] = {}
    for task_name in task_order(spec.root.dag):
        task_root = f"{run_root}/{task_name}"
        inputs = executor_input(spec, task_name, task_root, run_values, done)
        component = spec.components[spec.root.dag.tasks[task_name].component_ref.name]
        container = task_container(spec, task_name)
        command = placeholder_utils.replace_placeholders(
            full_command=[*container.command, *container.args],
            executor_input_dict=executor_input_utils.executor_input_to_dict(inputs, component),
            pipeline_resource_name=run_name, task_resource_name=task_name,
            pipeline_root=pipeline_root)
        if docker_image:
            command = docker_command(docker_image, command, mounts)
        log_path = os.path.join(log_dir, f"{task_name}.log")
        progress(f"{task_name}: running")
        started = time.perf_counter()
        with open(log_path, "w", encoding="utf-8") as log:
            returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, check=False).returncode
        seconds = time.perf_counter() - started
        _record(log_dir, task_name, command, returncode, seconds)
        if returncode != 0:
            progress(f"{task_name}: FAILED after {seconds:.0f} s")
            raise TaskFailed(task_name, returncode, log_path)
        outputs = _load_executor_output(inputs.outputs.output_file)
        executor_output_utils.add_type_to_executor_output(inputs, outputs)
        done[task_name] = TaskResult(task_name, seconds, log_path, tuple(command), outputs)
        progress(f"{task_name}: done in {seconds:.0f} s")
    return done


def _record(log_dir: str, task: str, command: list[str], returncode: int,
            seconds: float) -> None:
    """Appends the task to <log_dir>/tasks.json: what ran, how it ended, how long it took."""
    path = os.path.join(log_dir, RUN_RECORD)
    record = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    record.append({"task": task, "command": command, "returncode": returncode,
                   "seconds": round(seconds, 1)})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)


def _load_executor_output(path: str) -> pipeline_spec_pb2.ExecutorOutput:
    """What the task wrote (TFX's entrypoint writes it through tf.io.gfile: any filesystem)."""
    output = pipeline_spec_pb2.ExecutorOutput()
    if not fileio.exists(path):
        raise RuntimeError(f"{path}: the task exited 0 but wrote no executor output")
    with fileio.open(path, "r") as f:
        json_format.Parse(f.read(), output, ignore_unknown_fields=True)
    return output


def pushed_destination(results: Mapping[str, TaskResult]) -> str | None:
    """Where the Pusher published the model, or None when it did not push."""
    pusher = results.get("Pusher")
    if pusher is None:
        return None
    (artifact,) = pusher.outputs.artifacts["pushed_model"].artifacts
    metadata = json_format.MessageToDict(artifact.metadata)
    return metadata.get("pushed_destination") if metadata.get("pushed") == 1 else None
