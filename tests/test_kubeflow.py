"""Kubeflow: the compiled spec, and the exact requests `dcgan-kfp schedule` / `run` send.

The Kubeflow API server cannot run here: a local HTTP server implements the
REST endpoints kfp.Client calls and records every request.
"""

import cgi
import io
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from dcgan_kfp import cli, scheduler

NODES = {"MnistExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
         "DataValidationGate", "Transform", "Trainer", "Trainer-classifier",
         "SampleQualityEvaluator", "Pusher"}
COMMON = ["--pipeline-root", "gs://bucket/dcgan", "--image", "registry.example/dcgan:1.0",
          "--preset", "smoke"]


def load_spec(text: str) -> pipeline_spec_pb2.PipelineSpec:
    return json_format.ParseDict(yaml.safe_load(text), pipeline_spec_pb2.PipelineSpec(),
                                 ignore_unknown_fields=False)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("kfp") / "pipeline.yaml")
    assert cli.main(["compile", *COMMON, "--output", path, "--trainer-gpus", "2",
                     "--mixed-precision", "mixed_float16"]) == 0
    with open(path) as f:
        text = f.read()
    return text, load_spec(text)


def test_compiled_spec_has_every_component_and_edge(compiled):
    _, spec = compiled
    tasks = spec.root.dag.tasks
    assert {re.sub(r"[^A-Za-z0-9]", "-", name) for name in tasks} == NODES
    def upstream(task):
        return set(tasks[task].dependent_tasks)
    assert "DataValidationGate" in upstream("Transform")
    assert upstream("ExampleValidator") == {"StatisticsGen", "ImportSchemaGen"}
    assert {"Trainer", "SampleQualityEvaluator"} <= upstream("Pusher")
    assert {"Trainer", "Trainer-classifier", "Transform"} <= {
        re.sub(r"[^A-Za-z0-9]", "-", t) for t in upstream("SampleQualityEvaluator")}
    assert spec.pipeline_info.name == "dcgan-mnist"


def test_trainer_requests_gpus_and_everything_runs_in_the_image(compiled):
    _, spec = compiled
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    trainer = executors[spec.components[spec.root.dag.tasks["Trainer"].component_ref.name]
                        .executor_label]["container"]
    assert trainer["resources"]["accelerator"] == {"type": "nvidia.com/gpu", "count": "2"}
    assert trainer["resources"]["cpuLimit"] == 8.0 and trainer["resources"]["memoryLimit"] == 32.0
    # The GPU trainer trains in mixed_float16 (auto would keep float32 on GPUs).
    inputs = spec.root.dag.tasks["Trainer"].inputs.parameters
    custom_config = json.loads(inputs["custom_config"].runtime_value.constant.string_value)
    assert custom_config["trainer"]["mixed_precision"] == "mixed_float16"
    for label, executor in executors.items():
        if "container" in executor:
            assert executor["container"]["image"] == "registry.example/dcgan:1.0", label
            if executor is not executors[spec.components[
                    spec.root.dag.tasks["Trainer"].component_ref.name].executor_label]:
                assert "accelerator" not in executor["container"].get("resources", {}), label


def test_no_resolver_and_the_data_is_a_runtime_parameter(compiled):
    text, spec = compiled
    assert "resolver" not in text.lower()
    assert "mnist_dir" in spec.root.input_definitions.parameters
    assert "gs://bucket/dcgan/serving/dcgan_mnist" in text
    assert "/pipeline/components/schema/schema.pbtxt" in text
    # Caching is off unless asked for: each run trains a new challenger.
    assert not any(task.caching_options.enable_cache for task in spec.root.dag.tasks.values())


def test_pipeline_name_and_cron_are_validated():
    with pytest.raises(SystemExit):
        cli.parse_args(["compile", "--pipeline-name", "DCGAN_mnist"])
    assert cli.main(["compile", *COMMON, "--pipeline-name", "Bad_Name"]) == 2
    with pytest.raises(scheduler.CronError, match=r"use '0 0 3 \* \* \*'"):
        scheduler.validate_cron("0 3 * * *")
    assert scheduler.validate_cron("0 0 3 * * *") == "0 0 3 * * *"
    with pytest.raises(scheduler.CronError, match="has 3 fields"):
        scheduler.validate_cron("0 3 *")


class FakeKubeflow(BaseHTTPRequestHandler):
    """The kfp v2beta1 REST endpoints, recording each request."""

    def log_message(self, *args):
        pass

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body):
        url = urllib.parse.urlparse(self.path)
        entry = {"method": self.command, "path": url.path,
                 "query": dict(urllib.parse.parse_qsl(url.query)), "body": body,
                 "auth": self.headers.get("Authorization")}
        self.server.requests.append(entry)
        return entry

    def do_GET(self):
        entry = self._record(None)
        state = self.server.state
        if entry["path"] == "/apis/v2beta1/pipelines":
            pipelines = [{"pipeline_id": pid, "display_name": name}
                         for name, pid in state["pipelines"].items()
                         if name in entry["query"].get("filter", "")]
            return self._reply(200, {"pipelines": pipelines} if pipelines else {})
        if re.fullmatch(r"/apis/v2beta1/pipelines/[^/]+/versions", entry["path"]):
            return self._reply(200, {"pipeline_versions": [{"pipeline_version_id": "version-1"}]})
        if entry["path"] == "/apis/v2beta1/experiments":
            return self._reply(200, {})
        if entry["path"] == "/apis/v2beta1/healthz":
            return self._reply(200, {"multi_user": False})
        return self._reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            form = cgi.FieldStorage(fp=io.BytesIO(raw), headers=self.headers,
                                    environ={"REQUEST_METHOD": "POST"})
            body = {"uploadfile": form["uploadfile"].file.read().decode()}
        else:
            body = json.loads(raw or b"{}")
        entry = self._record(body)
        if self.server.refuse and entry["path"].endswith(self.server.refuse):
            return self._reply(403, {"error": "permission denied", "code": 7})
        if entry["path"] == "/apis/v2beta1/pipelines/upload":
            self.server.state["pipelines"][entry["query"]["name"]] = "pipeline-1"
            return self._reply(200, {"pipeline_id": "pipeline-1",
                                     "display_name": entry["query"]["name"]})
        if entry["path"] == "/apis/v2beta1/pipelines/upload_version":
            return self._reply(200, {"pipeline_id": entry["query"]["pipelineid"],
                                     "pipeline_version_id": "version-2"})
        if entry["path"] == "/apis/v2beta1/experiments":
            return self._reply(200, {"experiment_id": "experiment-1", **body})
        if entry["path"] == "/apis/v2beta1/recurringruns":
            return self._reply(200, {"recurring_run_id": "recurring-1", **body})
        if entry["path"] == "/apis/v2beta1/runs":
            return self._reply(200, {"run_id": "run-1", **body})
        return self._reply(404, {"error": "not found"})


@pytest.fixture
def kubeflow(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # No kfp context file from the machine.
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubeflow)
    server.requests, server.state, server.refuse = [], {"pipelines": {}}, None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def host(server):
    return f"http://127.0.0.1:{server.server_address[1]}"


def posts(server, path):
    return [r for r in server.requests if r["method"] == "POST" and r["path"] == path]


def test_schedule_sends_the_spec_cron_concurrency_catchup_and_parameters(kubeflow, capsys):
    code = cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--token", "secret",
                     "--cron", "0 30 2 * * *", "--experiment", "nightly",
                     "--param", "mnist_dir=gs://bucket/mnist"])
    assert code == 0, capsys.readouterr().err
    (upload,) = posts(kubeflow, "/apis/v2beta1/pipelines/upload")
    assert upload["query"]["name"] == "dcgan-mnist"
    spec = load_spec(upload["body"]["uploadfile"])
    assert {re.sub(r"[^A-Za-z0-9]", "-", t) for t in spec.root.dag.tasks} == NODES
    assert not any(t.caching_options.enable_cache for t in spec.root.dag.tasks.values())
    (experiment,) = posts(kubeflow, "/apis/v2beta1/experiments")
    assert experiment["body"]["display_name"] == "nightly"
    (recurring,) = posts(kubeflow, "/apis/v2beta1/recurringruns")
    body = recurring["body"]
    assert body["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    assert body["max_concurrency"] == "1" or body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["pipeline_version_reference"] == {"pipeline_id": "pipeline-1",
                                                 "pipeline_version_id": "version-1"}
    assert body["runtime_config"]["parameters"] == {"mnist_dir": "gs://bucket/mnist"}
    assert body["runtime_config"]["pipeline_root"] == "gs://bucket/dcgan/pipeline_root"
    assert body["experiment_id"] == "experiment-1"
    assert all(r["auth"] == "Bearer secret" for r in kubeflow.requests)
    out = capsys.readouterr().out
    assert "recurring run recurring-1" in out and "/#/recurringruns/details/recurring-1" in out


def test_schedule_again_uploads_a_new_version(kubeflow, capsys):
    kubeflow.state["pipelines"]["dcgan-mnist"] = "pipeline-1"
    assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", "0 0 * * * *",
                     "--max-concurrency", "2", "--catchup"]) == 0
    assert not posts(kubeflow, "/apis/v2beta1/pipelines/upload")
    (version,) = posts(kubeflow, "/apis/v2beta1/pipelines/upload_version")
    assert version["query"]["pipelineid"] == "pipeline-1"
    (recurring,) = posts(kubeflow, "/apis/v2beta1/recurringruns")
    assert int(recurring["body"]["max_concurrency"]) == 2
    assert recurring["body"]["no_catchup"] is False
    assert recurring["body"]["pipeline_version_reference"]["pipeline_version_id"] == "version-2"


def test_run_starts_one_run(kubeflow, capsys):
    assert cli.main(["run", *COMMON, "--host", host(kubeflow)]) == 0
    (run,) = posts(kubeflow, "/apis/v2beta1/runs")
    assert run["body"]["pipeline_version_reference"]["pipeline_id"] == "pipeline-1"
    assert run["body"]["runtime_config"]["pipeline_root"] == "gs://bucket/dcgan/pipeline_root"
    assert not posts(kubeflow, "/apis/v2beta1/recurringruns")
    assert "run run-1" in capsys.readouterr().out


def test_a_five_field_cron_is_refused_before_anything_is_sent(kubeflow, capsys):
    assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", "30 2 * * *"]) == 2
    assert "use '0 30 2 * * *'" in capsys.readouterr().err
    assert kubeflow.requests == []  # Refused before the client even connects.


def test_a_refusing_server_is_reported(kubeflow, capsys):
    kubeflow.refuse = "/recurringruns"
    assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", "0 0 3 * * *"]) == 1
    err = capsys.readouterr().err
    assert "the Kubeflow API refused the request: 403" in err and "permission denied" in err
