"""Compiles the same create_pipeline(config) for Kubeflow Pipelines with KubeflowV2DagRunner."""

from __future__ import annotations

import dataclasses
import os
import re

from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from components.mnist_example_gen import MnistExampleGen
from pipeline import pipeline as pipeline_def
from pipeline.config import PipelineConfig

PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
GPU_TYPE = "nvidia.com/gpu"  # What the open-source backend puts into the pod's limits.
# Where kfp/Dockerfile installs the project, so the schema path resolves in the container.
IMAGE_PROJECT_DIR = "/pipeline"


@dataclasses.dataclass(frozen=True)
class Resources:
    """CPU (cores) and memory (GB) per component; GPUs for the DCGAN Trainer."""

    cpu: float = 2.0
    memory_gb: float = 8.0
    trainer_cpu: float = 8.0
    trainer_memory_gb: float = 32.0
    trainer_gpus: int = 1
    gpu_type: str = GPU_TYPE

    def spec_for(self, node_id: str) -> ResourceSpec:
        if node_id == "Trainer":
            spec = ResourceSpec(cpu_limit=self.trainer_cpu, memory_limit=self.trainer_memory_gb)
            if self.trainer_gpus:
                spec.accelerator.type = self.gpu_type
                spec.accelerator.count = self.trainer_gpus
            return spec
        return ResourceSpec(cpu_limit=self.cpu, memory_limit=self.memory_gb)


def validate_name(name: str) -> str:
    if not PIPELINE_NAME.fullmatch(name):
        raise ValueError(f"pipeline name {name!r}: Kubeflow requires [a-z0-9][a-z0-9-]*")
    return name


def kubeflow_pipeline(config: PipelineConfig, resources: Resources) -> tfx.dsl.Pipeline:
    """The local DAG, unchanged, with a runtime parameter for the data and per-node resources."""
    validate_name(config.pipeline_name)
    example_gen = MnistExampleGen(mnist_dir=tfx.dsl.experimental.RuntimeParameter(
        name="mnist_dir", ptype=str, default=config.mnist_dir))
    pipeline = pipeline_def.create_pipeline(config, example_gen=example_gen)
    for node in pipeline.components:
        node.with_platform_config(resources.spec_for(node.id))
    return pipeline


def compile_pipeline(config: PipelineConfig, image: str, output_path: str,
                     resources: Resources = Resources()) -> str:
    """Writes the spec: `.yaml` is the bare PipelineSpec kfp.Client uploads, `.json` the
    Vertex PipelineJob wrapper. Returns the path."""
    config = dataclasses.replace(
        config, schema_file=config.schema_file or os.path.join(
            IMAGE_PROJECT_DIR, "components", "schema", "schema.pbtxt"))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path))
    runner.run(kubeflow_pipeline(config, resources))
    return output_path

