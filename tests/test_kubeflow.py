"""Kubeflow: the compiled spec against the backend's rules, and what `dcgan-kfp schedule` / `run`
send to an API server that enforces them.

The Kubeflow API server cannot run here: a local HTTP server implements the REST endpoints
kfp.Client calls, records every request, and refuses what the real backend refuses
(dcgan_kfp/backend_rules.py cites the backend source of each rule).
"""

import cgi
import io
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kfp
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from kfp_server_api import ApiException

from dcgan_kfp import backend_rules, cli, compiler, scheduler
from dcgan_common.config import PRESETS

NODES = {"MnistExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
         "DataValidationGate", "Transform", "Trainer", "ClassifierTrainer",
         "SampleQualityEvaluator", "Pusher"}
COMMON = ["--pipeline-root", "gs://bucket/dcgan", "--image", "registry.example/dcgan:1.0",
          "--preset", "smoke"]


def load_spec(text: str) -> pipeline_spec_pb2.PipelineSpec:
    return json_format.ParseDict(yaml.safe_load(text), pipeline_spec_pb2.PipelineSpec(),
                                 ignore_unknown_fields=False)


def compile_text(tmp_path, *args: str, output: str = "pipeline.yaml") -> str:
    path = str(tmp_path / output)
    assert cli.main(["compile", *args, "--output", path]) == 0
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    text = compile_text(tmp_path_factory.mktemp("kfp"), *COMMON, "--trainer-gpus", "2",
                        "--mixed-precision", "mixed_float16")
    return text, load_spec(text)


def main_spec(spec: pipeline_spec_pb2.PipelineSpec) -> pipeline_spec_pb2.PipelineSpec:
    """The spec as the previous main compiled it: the classifier's task `Trainer.classifier`,
    and `mnist_dir` with a type but no default."""
    old = pipeline_spec_pb2.PipelineSpec()
    old.CopyFrom(spec)
    old.root.dag.tasks["Trainer.classifier"].CopyFrom(old.root.dag.tasks["ClassifierTrainer"])
    del old.root.dag.tasks["ClassifierTrainer"]
    old.root.input_definitions.parameters["mnist_dir"].ClearField("default_value")
    return old


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_compiles_to_names_and_defaults_the_backend_accepts(preset, tmp_path):
    spec = load_spec(compile_text(tmp_path, *COMMON[:4], "--preset", preset,
                                  "--mnist-dir", "gs://bucket/mnist"))
    assert set(spec.root.dag.tasks) == NODES
    assert backend_rules.name_errors(spec) == []
    mnist_dir = spec.root.input_definitions.parameters["mnist_dir"]
    assert mnist_dir.default_value.string_value == "gs://bucket/mnist"  # --mnist-dir sets it.
    backend_rules.check_run_parameters(spec, {})  # A run from the UI, with no parameters.
    backend_rules.check_run_parameters(spec, {"mnist_dir": "gs://other/mnist"})


def test_the_name_rule_refuses_what_argo_refuses(compiled):
    _, spec = compiled
    errors = backend_rules.name_errors(main_spec(spec))
    assert len(errors) == 1 and "'Trainer.classifier-driver'" in errors[0]
    assert "must consist of alpha-numeric characters or '-'" in errors[0]
    for bad in ("-Trainer", "Trainer_2", "T" * 122):  # 122 + len("-driver") > 128.
        renamed = pipeline_spec_pb2.PipelineSpec()
        renamed.CopyFrom(spec)
        renamed.root.dag.tasks[bad].CopyFrom(renamed.root.dag.tasks["Trainer"])
        assert len(backend_rules.name_errors(renamed)) == 1, bad
    with pytest.raises(backend_rules.BackendRuleError, match="would refuse"):
        backend_rules.check_names(main_spec(spec))


def test_the_parameter_rule_refuses_what_the_api_server_refuses(compiled):
    _, spec = compiled
    with pytest.raises(backend_rules.BackendRuleError, match="parameter mnist_dir is not "
                       "optional, yet has neither default value nor user provided value"):
        backend_rules.check_run_parameters(main_spec(spec), {})
    with pytest.raises(backend_rules.BackendRuleError, match="not required by pipeline: other"):
        backend_rules.check_run_parameters(spec, {"other": "x"})
    with pytest.raises(backend_rules.BackendRuleError, match="requires type string"):
        backend_rules.check_run_parameters(spec, {"mnist_dir": 3})


def test_compiled_spec_has_every_component_and_edge(compiled):
    _, spec = compiled
    tasks = spec.root.dag.tasks
    def upstream(task):
        return set(tasks[task].dependent_tasks)
    assert "DataValidationGate" in upstream("Transform")
    assert upstream("ExampleValidator") == {"StatisticsGen", "ImportSchemaGen"}
    assert {"Trainer", "SampleQualityEvaluator"} <= upstream("Pusher")
    assert {"Trainer", "ClassifierTrainer", "Transform"} <= upstream("SampleQualityEvaluator")
    assert spec.pipeline_info.name == "dcgan-mnist"


def executors(spec):
    return json_format.MessageToDict(spec.deployment_spec)["executors"]


def trainer_container(spec):
    label = spec.components[spec.root.dag.tasks["Trainer"].component_ref.name].executor_label
    return executors(spec)[label]["container"]


def test_trainer_requests_gpus_and_everything_runs_in_the_image(compiled):
    _, spec = compiled
    trainer = trainer_container(spec)
    # The open-source backend writes the type into the pod's limits: a Kubernetes resource.
    assert trainer["resources"]["accelerator"] == {"type": "nvidia.com/gpu", "count": "2"}
    assert trainer["resources"]["cpuLimit"] == 8.0 and trainer["resources"]["memoryLimit"] == 32.0
    # The GPU trainer trains in mixed_float16 (auto would keep float32 on GPUs).
    inputs = spec.root.dag.tasks["Trainer"].inputs.parameters
    custom_config = json.loads(inputs["custom_config"].runtime_value.constant.string_value)
    assert custom_config["trainer"]["runtime"]["mixed_precision"] == "mixed_float16"
    for label, executor in executors(spec).items():
        assert executor["container"]["image"] == "registry.example/dcgan:1.0", label
        if executor["container"] is not trainer and label != "Trainer_executor":
            assert "accelerator" not in executor["container"].get("resources", {}), label


def test_vertex_pipeline_job_uses_vertex_accelerator_types(tmp_path, capsys):
    job = json.loads(compile_text(tmp_path, *COMMON, output="job.json"))
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert trainer_container(spec)["resources"]["accelerator"]["type"] == "NVIDIA_TESLA_T4"
    assert spec.root.input_definitions.parameters["mnist_dir"].HasField("default_value")
    job = json.loads(compile_text(tmp_path, *COMMON, "--gpu-type", "NVIDIA_L4",
                                  output="l4.json"))
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert trainer_container(spec)["resources"]["accelerator"]["type"] == "NVIDIA_L4"
    assert cli.main(["compile", *COMMON, "--gpu-type", "nvidia.com/gpu",
                     "--output", str(tmp_path / "bad.json")]) == 2
    assert "Vertex AI (.json) takes one of" in capsys.readouterr().err
    assert cli.main(["compile", *COMMON, "--gpu-type", "NVIDIA L4",
                     "--output", str(tmp_path / "bad.yaml")]) == 2
    assert "Kubernetes resource name" in capsys.readouterr().err


def test_no_resolver_and_the_data_is_a_runtime_parameter(compiled):
    text, spec = compiled
    assert "resolver" not in text.lower()
    assert "mnist_dir" in spec.root.input_definitions.parameters
    assert "gs://bucket/dcgan/serving/dcgan_mnist" in text
    assert "/pipeline/components/schema/mnist/schema.pbtxt" in text
    # Caching is off unless asked for: each run trains a new challenger.
    assert not any(task.caching_options.enable_cache for task in spec.root.dag.tasks.values())


@pytest.mark.parametrize("cron", ["0 0 3 * * *", "0 */15 9-17 * * MON-FRI", "0 0 0 1 jan,jul ?",
                                  "@daily", "@hourly", "@every 6h", "@every 1h30m",
                                  "@every 90s"])
def test_cron_accepts_what_robfig_cron_accepts(cron):
    assert scheduler.validate_cron(cron) == cron


@pytest.mark.parametrize("cron, message", [
    ("99 99 99 * * *", r"End of range \(99\) above maximum \(59\)"),
    ("a b c d e f", "Failed to parse int from a"),
    ("0 0 3 * * 7", r"End of range \(7\) above maximum \(6\)"),
    ("0 0 0 0 * *", r"Beginning of range \(0\) below minimum \(1\)"),
    ("5-1 * * * * *", r"Beginning of range \(5\) beyond end of range \(1\)"),
    ("*/0 * * * * *", "Step of range should be a positive number"),
    ("1-2-3 * * * * *", "Too many hyphens"),
    ("0 3 *", "Expected 5 to 6 fields, found 3"),
    ("0 0 0 * * * *", "Expected 5 to 6 fields, found 7"),
    ("@fortnightly", "Unrecognized descriptor"),
    ("@every 6 hours", "Failed to parse duration"),
    ("", "Empty spec string"),
])
def test_cron_refuses_what_robfig_cron_refuses(cron, message):
    with pytest.raises(backend_rules.BackendRuleError, match=message):
        backend_rules.parse_cron(cron)
    with pytest.raises(scheduler.CronError, match=message):
        scheduler.validate_cron(cron)


def test_a_five_field_unix_cron_is_refused_with_its_six_field_equivalent():
    # The backend accepts it, but reads it seconds first: minute 2 of every hour.
    assert backend_rules.parse_cron("30 2 * * *") == ["30", "2", "*", "*", "*", "*"]
    with pytest.raises(scheduler.CronError, match=r"use '0 30 2 \* \* \*'"):
        scheduler.validate_cron("30 2 * * *")


def test_pipeline_name_is_validated(capsys):
    assert cli.main(["compile", *COMMON, "--pipeline-name", "Bad_Name"]) == 2
    assert "Kubeflow requires [a-z0-9][a-z0-9-]*" in capsys.readouterr().err


class FakeKubeflow(BaseHTTPRequestHandler):
    """The kfp v2beta1 REST endpoints kfp.Client calls. Records each request, keeps uploaded
    specs per version, and refuses a run or recurring run as the API server does."""

    def log_message(self, *args):
        pass

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, message):
        # The API server's InvalidInputError: HTTP 400, gRPC code 3.
        return self._reply(400, {"error": message, "code": 3, "message": message})

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
            return self._reply(200, {"pipeline_versions": [
                {"pipeline_version_id": v} for v in state["versions"]]})
        if entry["path"] == "/apis/v2beta1/recurringruns":
            predicates = json.loads(entry["query"].get("filter", '{"predicates": []}'))
            runs = [run for run in state["recurring"].values()
                    if run["experiment_id"] == entry["query"].get("experiment_id")
                    and all(run[p["key"]] == p["stringValue"] for p in predicates["predicates"])]
            # The API names the list `recurringRuns` (backend/api/v2beta1/swagger/recurring_run.swagger.json).
            return self._reply(200, {"recurringRuns": runs, "total_size": len(runs)})
        if entry["path"] == "/apis/v2beta1/experiments":
            return self._reply(200, {})
        if entry["path"] == "/apis/v2beta1/healthz":
            return self._reply(200, {"multi_user": False})
        return self._reply(404, {"error": "not found"})

    def do_DELETE(self):
        entry = self._record(None)
        run_id = entry["path"].rsplit("/", 1)[-1]
        if self.server.state["recurring"].pop(run_id, None) is None:
            return self._reply(404, {"error": f"recurring run {run_id} not found"})
        return self._reply(200, {})

    def _check_run(self, body, path):
        """What the API server checks, where it checks it (backend_rules.py cites the source):
        parameters (v2_template.go) for runs and recurring runs, max concurrency and cron
        (api_converter.go) for recurring runs, HTTP 400; Argo's names only when a run's
        workflow is validated (resource_manager.go CreateRun), HTTP 500. A recurring run with
        a bad name is accepted: its firings fail later, in the scheduled-workflow controller."""
        spec = load_spec(self.server.state["versions"][
            body["pipeline_version_reference"]["pipeline_version_id"]])
        backend_rules.check_run_parameters(spec, body["runtime_config"].get("parameters", {}))
        if path.endswith("/recurringruns"):
            backend_rules.check_max_concurrency(int(body["max_concurrency"]))
            backend_rules.parse_cron(body["trigger"]["cron_schedule"]["cron"])
            return None
        errors = backend_rules.name_errors(spec)
        return (f"Failed to validate workflow for ({spec.pipeline_info.name}-): "
                + "; ".join(errors)) if errors else None

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
        state = self.server.state
        if self.server.refuse and entry["path"].endswith(self.server.refuse):
            return self._reply(403, {"error": "permission denied", "code": 7})
        if entry["path"] in ("/apis/v2beta1/pipelines/upload",
                             "/apis/v2beta1/pipelines/upload_version"):
            version_id = f"version-{len(state['versions']) + 1}"
            state["versions"][version_id] = body["uploadfile"]
            if entry["path"].endswith("/upload"):
                state["pipelines"][entry["query"]["name"]] = "pipeline-1"
                return self._reply(200, {"pipeline_id": "pipeline-1",
                                         "display_name": entry["query"]["name"]})
            return self._reply(200, {"pipeline_id": entry["query"]["pipelineid"],
                                     "pipeline_version_id": version_id})
        if entry["path"] == "/apis/v2beta1/experiments":
            return self._reply(200, {"experiment_id": "experiment-1", **body})
        if entry["path"] in ("/apis/v2beta1/recurringruns", "/apis/v2beta1/runs"):
            try:
                internal_error = self._check_run(body, entry["path"])
            except backend_rules.BackendRuleError as err:
                return self._refuse(str(err))
            if internal_error:  # util.NewInternalServerError: HTTP 500, gRPC code 13.
                return self._reply(500, {"error": internal_error, "code": 13,
                                         "message": internal_error})
            if entry["path"].endswith("/runs"):
                return self._reply(200, {"run_id": "run-1", **body})
            run_id = f"recurring-{len(posts(self.server, entry['path']))}"
            state["recurring"][run_id] = {"recurring_run_id": run_id, **body}
            return self._reply(200, state["recurring"][run_id])
        return self._reply(404, {"error": "not found"})


@pytest.fixture
def kubeflow(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # No kfp context file from the machine.
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubeflow)
    server.requests, server.refuse = [], None
    server.state = {"pipelines": {}, "versions": {}, "recurring": {}}
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
    assert set(spec.root.dag.tasks) == NODES
    assert not any(t.caching_options.enable_cache for t in spec.root.dag.tasks.values())
    (experiment,) = posts(kubeflow, "/apis/v2beta1/experiments")
    assert experiment["body"]["display_name"] == "nightly"
    (recurring,) = posts(kubeflow, "/apis/v2beta1/recurringruns")
    body = recurring["body"]
    assert body["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    assert int(body["max_concurrency"]) == 1
    assert body["no_catchup"] is True
    assert body["pipeline_version_reference"] == {"pipeline_id": "pipeline-1",
                                                 "pipeline_version_id": "version-1"}
    assert body["runtime_config"]["parameters"] == {"mnist_dir": "gs://bucket/mnist"}
    assert body["runtime_config"]["pipeline_root"] == "gs://bucket/dcgan/pipeline_root"
    assert body["experiment_id"] == "experiment-1"
    assert all(r["auth"] == "Bearer secret" for r in kubeflow.requests)
    out = capsys.readouterr().out
    assert "recurring run recurring-1" in out and "/#/recurringruns/details/recurring-1" in out


def test_schedule_again_replaces_the_recurring_run(kubeflow, capsys):
    for cron in ("0 0 3 * * *", "@every 6h"):
        assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", cron,
                         "--max-concurrency", "2", "--catchup"]) == 0, capsys.readouterr().err
    (version,) = posts(kubeflow, "/apis/v2beta1/pipelines/upload_version")
    assert version["query"]["pipelineid"] == "pipeline-1"
    (active,) = kubeflow.state["recurring"].values()  # Exactly one schedule stays.
    assert active["recurring_run_id"] == "recurring-2"
    assert active["trigger"]["cron_schedule"]["cron"] == "@every 6h"
    assert int(active["max_concurrency"]) == 2 and active["no_catchup"] is False
    assert active["pipeline_version_reference"]["pipeline_version_id"] == "version-2"
    deleted = [r for r in kubeflow.requests if r["method"] == "DELETE"]
    assert [r["path"] for r in deleted] == ["/apis/v2beta1/recurringruns/recurring-1"]
    assert "replaced (deleted) the previous recurring run recurring-1" in capsys.readouterr().out


def test_run_without_parameters_starts(kubeflow, capsys):
    """A run with no parameters (as from the Kubeflow UI) is accepted: mnist_dir has a default."""
    assert cli.main(["run", *COMMON, "--host", host(kubeflow)]) == 0, capsys.readouterr().err
    (run,) = posts(kubeflow, "/apis/v2beta1/runs")
    assert run["body"]["runtime_config"]["parameters"] == {}
    assert run["body"]["pipeline_version_reference"]["pipeline_id"] == "pipeline-1"
    assert run["body"]["runtime_config"]["pipeline_root"] == "gs://bucket/dcgan/pipeline_root"
    assert not posts(kubeflow, "/apis/v2beta1/recurringruns")
    assert "run run-1" in capsys.readouterr().out


def upload(kubeflow, tmp_path, spec: pipeline_spec_pb2.PipelineSpec) -> tuple[kfp.Client, str]:
    path = tmp_path / "uploaded.yaml"
    path.write_text(yaml.safe_dump(json_format.MessageToDict(spec)))
    client = kfp.Client(host=host(kubeflow), namespace="kubeflow")
    return client, client.upload_pipeline(str(path), pipeline_name="dcgan-mnist").pipeline_id


def test_the_fake_server_refuses_the_previous_mains_spec(kubeflow, compiled, tmp_path):
    """What the real backend does with the spec main compiled before: no run starts."""
    _, spec = compiled
    old = main_spec(spec)
    old.root.dag.tasks["ClassifierTrainer"].CopyFrom(old.root.dag.tasks["Trainer.classifier"])
    del old.root.dag.tasks["Trainer.classifier"]  # Only the missing default, first.
    client, pipeline_id = upload(kubeflow, tmp_path, old)
    with pytest.raises(ApiException) as refused:
        client.run_pipeline(experiment_id="experiment-1", job_name="run", params={},
                            pipeline_id=pipeline_id, version_id="version-1")
    assert refused.value.status == 400
    assert "parameter mnist_dir is not optional" in refused.value.body
    kubeflow.state["versions"]["version-1"] = yaml.safe_dump(
        json_format.MessageToDict(main_spec(spec)))  # Now the dotted task name too.
    with pytest.raises(ApiException) as refused:
        client.run_pipeline(experiment_id="experiment-1", job_name="run",
                            params={"mnist_dir": "gs://bucket/mnist"},
                            pipeline_id=pipeline_id, version_id="version-1")
    assert refused.value.status == 500 and "Trainer.classifier-driver" in refused.value.body
    assert "Failed to validate workflow for (" in refused.value.body
    # A recurring run of it is accepted, as the backend accepts it; each firing would fail.
    nightly = client.create_recurring_run(
        experiment_id="experiment-1", job_name="nightly", cron_expression="0 0 3 * * *",
        params={"mnist_dir": "gs://bucket/mnist"}, pipeline_id=pipeline_id,
        version_id="version-1")
    assert nightly.recurring_run_id in kubeflow.state["recurring"]


def test_dcgan_kfp_refuses_a_bad_name_before_it_sends_anything(kubeflow, monkeypatch, capsys):
    """The backend would accept the recurring run and fail every night: dcgan-kfp checks the
    names itself."""
    load = compiler.load_spec

    def dotted(path):  # What the compiler wrote, with a task name Argo refuses.
        spec = load(path)
        spec.root.dag.tasks["Trainer.classifier"].CopyFrom(spec.root.dag.tasks["Trainer"])
        return spec

    monkeypatch.setattr(compiler, "load_spec", dotted)
    assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", "@daily"]) == 2
    assert "Trainer.classifier-driver" in capsys.readouterr().err
    assert kubeflow.requests == []


@pytest.mark.parametrize("params, message", [
    ({}, "parameter mnist_dir is not optional, yet has neither default value nor user "
         "provided value"),
    ({"mnist_dir": 3, "other": 1}, "input parameter mnist_dir requires type string, but the "
                                   "input parameter is not of string value type"),
    ({"mnist_dir": "gs://b/m", "other": 1, "b": 2},
     "parameter(s) provided are not required by pipeline: b, other"),
])
def test_run_parameters_are_refused_with_the_backends_full_text_in_its_order(
        kubeflow, compiled, tmp_path, params, message):
    """v2_template.go checks each declared parameter (missing, then type) before extras."""
    _, spec = compiled
    no_default = main_spec(spec)
    no_default.root.dag.tasks["ClassifierTrainer"].CopyFrom(
        no_default.root.dag.tasks["Trainer.classifier"])
    del no_default.root.dag.tasks["Trainer.classifier"]
    client, pipeline_id = upload(kubeflow, tmp_path, no_default)
    with pytest.raises(ApiException) as refused:
        client.run_pipeline(experiment_id="experiment-1", job_name="run", params=params,
                            pipeline_id=pipeline_id, version_id="version-1")
    assert refused.value.status == 400 and json.loads(refused.value.body)["message"] == message


def test_the_fake_server_refuses_max_concurrency_11_and_a_bad_cron(kubeflow, compiled, tmp_path):
    _, spec = compiled
    client, pipeline_id = upload(kubeflow, tmp_path, spec)
    for concurrency, cron, message in ((11, "0 0 3 * * *", "at most 10. Received 11"),
                                       (1, "0 0 3 * * 7", "above maximum (6)")):
        with pytest.raises(ApiException) as refused:
            client.create_recurring_run(
                experiment_id="experiment-1", job_name="nightly", cron_expression=cron,
                max_concurrency=concurrency, pipeline_id=pipeline_id, version_id="version-1")
        assert refused.value.status == 400 and message in refused.value.body
    assert kubeflow.state["recurring"] == {}


def test_max_concurrency_11_is_refused_before_anything_is_sent(kubeflow, capsys):
    assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", "@daily",
                     "--max-concurrency", "11"]) == 2
    assert "at most 10. Received 11" in capsys.readouterr().err
    assert kubeflow.requests == []


def test_a_five_field_cron_is_refused_before_anything_is_sent(kubeflow, capsys):
    assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", "30 2 * * *"]) == 2
    assert "use '0 30 2 * * *'" in capsys.readouterr().err
    assert kubeflow.requests == []  # Refused before the client even connects.


def test_a_refusing_server_is_reported(kubeflow, capsys):
    kubeflow.refuse = "/recurringruns"
    assert cli.main(["schedule", *COMMON, "--host", host(kubeflow), "--cron", "0 0 3 * * *"]) == 1
    err = capsys.readouterr().err
    assert "refused the request: 403" in err and "permission denied" in err
    assert "Traceback" not in err


def test_an_unreachable_server_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cli.main(["run", *COMMON, "--host", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dcgan-kfp: cannot reach the Kubeflow API at http://127.0.0.1:9: ")
    assert "Connection refused" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_presets_spec_is_accepted_and_rescheduled_by_the_fake_backend(
        kubeflow, preset, capsys):
    args = [*COMMON[:4], "--preset", preset, "--host", host(kubeflow)]
    assert cli.main(["run", *args]) == 0, capsys.readouterr().err  # No parameters: defaults.
    for cron in ("0 0 3 * * *", "@daily"):
        assert cli.main(["schedule", *args, "--cron", cron]) == 0, capsys.readouterr().err
    (active,) = kubeflow.state["recurring"].values()
    assert active["trigger"]["cron_schedule"]["cron"] == "@daily"
