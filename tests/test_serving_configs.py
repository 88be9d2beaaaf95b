"""The TF Serving deployment files parse, and agree with each other and with the pipeline."""

import copy
import os
import re

import kubernetes_validate
import pytest
import yaml
from google.protobuf import (descriptor_pb2, descriptor_pool, message_factory, text_format,
                             wrappers_pb2)
from tensorflow_serving.config import model_server_config_pb2

from dcgan_common.config import PipelineConfig

SERVING = os.path.join(os.path.dirname(__file__), os.pardir, "serving")


def read(*parts):
    with open(os.path.join(SERVING, *parts), encoding="utf-8") as f:
        return f.read()


def message_class(name, fields):
    """A message with TF Serving's documented fields: tensorflow-serving-api 2.16 ships
    model_server_config_pb2 but not the BatchingParameters or MonitoringConfig modules."""
    proto = descriptor_pb2.FileDescriptorProto(name=f"{name}.proto", package="check",
                                               dependency=["google/protobuf/wrappers.proto"])
    messages = {}
    for message_name, message_fields in fields.items():
        message = proto.message_type.add(name=message_name)
        for number, (field, kind, label) in enumerate(message_fields, start=1):
            entry = message.field.add(name=field, number=number, label=label)
            if isinstance(kind, str):
                entry.type, entry.type_name = entry.TYPE_MESSAGE, kind
            else:
                entry.type = kind
        messages[message_name] = message
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName(f"check.{name}"))


F = descriptor_pb2.FieldDescriptorProto
OPTIONAL, REPEATED = F.LABEL_OPTIONAL, F.LABEL_REPEATED
INT64 = (".google.protobuf.Int64Value", OPTIONAL)


def test_models_config_names_the_pipelines_model_under_models():
    config = text_format.Parse(read("config", "models.config"),
                               model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == PipelineConfig().model_name
    assert model.base_path == f"/models/{model.name}"
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 1


def test_batching_parameters_parse():
    cls = message_class("BatchingParameters", {"BatchingParameters": [
        ("max_batch_size", *INT64), ("batch_timeout_micros", *INT64),
        ("max_enqueued_batches", *INT64), ("num_batch_threads", *INT64),
        ("thread_pool_name", ".google.protobuf.StringValue", OPTIONAL),
        ("allowed_batch_sizes", F.TYPE_INT64, REPEATED),
        ("pad_variable_length_inputs", F.TYPE_BOOL, OPTIONAL)]})
    params = text_format.Parse(read("config", "batching_parameters.txt"), cls())
    assert params.max_batch_size.value == 64
    # TF Serving requires the last allowed batch size to equal max_batch_size.
    assert list(params.allowed_batch_sizes)[-1] == params.max_batch_size.value
    assert list(params.allowed_batch_sizes) == sorted(params.allowed_batch_sizes)


def test_monitoring_config_enables_prometheus():
    cls = message_class("MonitoringConfig", {
        "MonitoringConfig": [("prometheus_config", ".check.PrometheusConfig", OPTIONAL)],
        "PrometheusConfig": [("enable", F.TYPE_BOOL, OPTIONAL), ("path", F.TYPE_STRING, OPTIONAL)]})
    config = text_format.Parse(read("config", "monitoring.config"), cls())
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def kustomized() -> tuple[dict, dict]:
    """The kustomization and its resources by kind; every listed file must exist."""
    kustomization = yaml.safe_load(read("kustomization.yaml"))
    (generator,) = kustomization["configMapGenerator"]
    for path in generator["files"]:
        assert os.path.exists(os.path.join(SERVING, path)), path
    docs = {d["kind"]: d for path in kustomization["resources"]
            for d in yaml.safe_load_all(read(path))}
    return kustomization, docs


def test_every_manifest_is_valid_against_the_kubernetes_schema():
    kustomization, docs = kustomized()
    assert set(docs) == {"Deployment", "Service", "PersistentVolumeClaim"}
    (generator,) = kustomization["configMapGenerator"]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
                  "data": {os.path.basename(f): read(f) for f in generator["files"]}}
    version = kubernetes_validate.latest_version()
    for doc in [*docs.values(), config_map]:
        kubernetes_validate.validate(doc, version, strict=True)
    # The validator refuses what the API server refuses: a misspelt probe field.
    broken = copy.deepcopy(docs["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["failureTreshold"] = 3
    with pytest.raises(kubernetes_validate.ValidationError, match="failureTreshold"):
        kubernetes_validate.validate(broken, version, strict=True)


def test_kubernetes_manifests_wire_ports_probes_volume_and_config():
    kustomization, docs = kustomized()
    (generator,) = kustomization["configMapGenerator"]
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("tensorflow/serving:")
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    assert {p["port"] for p in docs["Service"]["spec"]["ports"]} == {8500, 8501}
    # TF Serving's REST metadata call (404 unless a version is AVAILABLE; what it answers is
    # tested against the stand-in in test_serving_abuse.py); the startup probe covers a slow
    # first load.
    status = {"path": "/v1/models/dcgan_mnist/metadata", "port": 8501}
    assert container["readinessProbe"]["httpGet"] == status
    startup = container["startupProbe"]
    assert startup["httpGet"] == status
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert container["livenessProbe"]["tcpSocket"] == {"port": 8500}
    args = dict(a.lstrip("-").split("=", 1) for a in container["args"])
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    config_files = {os.path.basename(f) for f in generator["files"]}
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        directory, name = os.path.split(args[flag])
        assert directory == mounts["config"]["mountPath"] and name in config_files, flag
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == generator["name"]
    # Every replica mounts the push destination: a claim that several nodes can mount.
    claim = docs["PersistentVolumeClaim"]
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert docs["Deployment"]["spec"]["replicas"] > 1
    assert set(claim["spec"]["accessModes"]) & {"ReadWriteMany", "ReadOnlyMany"}
    assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"]


def test_docker_command_in_the_docs_uses_the_same_files():
    docs = read("..", "docs", "serving.md")
    command = re.search(r"docker run .*?tensorflow/serving:\S+(.*?)```", docs, re.S)
    assert command, "docs/serving.md lost its docker run command"
    for name in ("models.config", "batching_parameters.txt", "monitoring.config"):
        assert f"/config/{name}" in command.group(1)
