"""Compiles the same create_pipeline(config) for Kubeflow Pipelines with KubeflowV2DagRunner."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import yaml
from google.cloud.aiplatform_v1.types import accelerator_type
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from components.mnist_example_gen import MnistExampleGen
from dcgan_kfp import backend_rules, entrypoint
from pipeline import pipeline as pipeline_def
from dcgan_common.config import PipelineConfig

PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
# The open-source backend puts the accelerator type into the pod's limits as a Kubernetes
# resource name (backend/src/v2/driver/driver.go); Vertex AI takes its AcceleratorType enum.
KUBERNETES_GPU = "nvidia.com/gpu"
KUBERNETES_RESOURCE = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*"
                                 r"[a-zA-Z0-9])?")
VERTEX_GPU = "NVIDIA_TESLA_T4"
VERTEX_GPUS = tuple(t.name for t in accelerator_type.AcceleratorType
                    if t.name.startswith("NVIDIA_"))
# Where kfp/Dockerfile installs the project, so the schema path resolves in the container.
IMAGE_PROJECT_DIR = "/pipeline"
# The data directory is a runtime parameter: the one input that changes between runs.
MNIST_DIR_PARAMETER = "mnist_dir"


@dataclasses.dataclass(frozen=True)
class Resources:
    """CPU (cores) and memory (GB) per component; GPUs for the DCGAN Trainer. `gpu_type`
    empty: the default of the output format (KUBERNETES_GPU for .yaml, VERTEX_GPU for .json)."""

    cpu: float = 2.0
    memory_gb: float = 8.0
    trainer_cpu: float = 8.0
    trainer_memory_gb: float = 32.0
    trainer_gpus: int = 1
    gpu_type: str = ""

    def spec_for(self, node_id: str) -> ResourceSpec:
        if node_id == "Trainer":
            spec = ResourceSpec(cpu_limit=self.trainer_cpu, memory_limit=self.trainer_memory_gb)
            if self.trainer_gpus:
                spec.accelerator.type = self.gpu_type
                spec.accelerator.count = self.trainer_gpus
            return spec
        return ResourceSpec(cpu_limit=self.cpu, memory_limit=self.memory_gb)

    def for_output(self, output_path: str) -> Resources:
        """The GPU type checked against (or defaulted for) the backend the format is for."""
        vertex = output_path.endswith(".json")
        gpu_type = self.gpu_type or (VERTEX_GPU if vertex else KUBERNETES_GPU)
        if vertex and gpu_type not in VERTEX_GPUS:
            raise ValueError(f"--gpu-type {gpu_type!r}: Vertex AI (.json) takes one of "
                             f"{', '.join(VERTEX_GPUS)}")
        if not vertex and not KUBERNETES_RESOURCE.fullmatch(gpu_type):
            raise ValueError(f"--gpu-type {gpu_type!r}: the Kubeflow backend (.yaml) takes a "
                             f"Kubernetes resource name, e.g. {KUBERNETES_GPU}")
        return dataclasses.replace(self, gpu_type=gpu_type)


def validate_name(name: str) -> str:
    if not PIPELINE_NAME.fullmatch(name):
        raise ValueError(f"pipeline name {name!r}: Kubeflow requires [a-z0-9][a-z0-9-]*")
    return name


def kubeflow_pipeline(config: PipelineConfig, resources: Resources) -> tfx.dsl.Pipeline:
    """The local DAG, unchanged, with a runtime parameter for the data and per-node resources."""
    validate_name(config.pipeline_name)
    example_gen = MnistExampleGen(mnist_dir=tfx.dsl.experimental.RuntimeParameter(
        name=MNIST_DIR_PARAMETER, ptype=str, default=config.mnist_dir),
        dataset_name=config.dataset, seed=config.dataset_seed)
    pipeline = pipeline_def.create_pipeline(config, example_gen=example_gen)
    for node in pipeline.components:
        node.with_platform_config(resources.spec_for(node.id))
    return pipeline


def compile_spec(config: PipelineConfig, image: str, output_path: str,
                 resources: Resources = Resources(),
                 in_image: bool = True) -> pipeline_spec_pb2.PipelineSpec:
    """Writes the spec: `.yaml` is the bare PipelineSpec kfp.Client uploads, `.json` the
    Vertex PipelineJob wrapper. `in_image`: the tasks find the repository in the image (else
    where this checkout is: `local-run` without Docker). Returns the spec, checked against the
    backend's naming rules."""
    project_dir = IMAGE_PROJECT_DIR if in_image else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    resources = resources.for_output(output_path)
    config = dataclasses.replace(config, schema_file=pipeline_def.schema_file(
        config, os.path.join(project_dir, "components", "schema")))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path))
    runner.run(kubeflow_pipeline(config, resources))
    _post_process(output_path, {MNIST_DIR_PARAMETER: config.mnist_dir})
    spec = load_spec(output_path)
    backend_rules.check_names(spec)
    return spec


def _post_process(path: str, defaults: dict[str, Any]) -> None:
    """What TFX 1.16 cannot write: a default for each runtime parameter (it compiles a type and
    no default, which the backend refuses for a run that does not pass the parameter: a run
    from the UI, every recurring run), and the task command (dcgan_kfp/entrypoint.py: TFX's
    entrypoint with object stores and the task's own exit status)."""
    document = _read(path)
    spec = document.get("pipelineSpec", document)  # .json wraps the spec in a PipelineJob.
    parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, value in defaults.items():
        parameters[name]["defaultValue"] = value
    for executor in spec["deploymentSpec"]["executors"].values():
        command = executor["container"]["command"]
        if command != ["python", "-m", entrypoint.TFX_ENTRYPOINT]:
            raise ValueError(f"unexpected task command {command}: TFX changed its entrypoint")
        command[-1] = entrypoint.ENTRYPOINT
    with open(path, "w", encoding="utf-8") as f:
        if path.endswith(".json"):
            json.dump(document, f, indent=2, sort_keys=True)
        else:
            yaml.safe_dump(document, f, sort_keys=True)


def _read(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f) if path.endswith(".json") else yaml.safe_load(f)


def load_spec(path: str) -> pipeline_spec_pb2.PipelineSpec:
    """The PipelineSpec of a compiled `.yaml` (or of a `.json` PipelineJob)."""
    document = _read(path)
    return json_format.ParseDict(document.get("pipelineSpec", document),
                                 pipeline_spec_pb2.PipelineSpec())
