"""dcgan-serve under careless and hostile clients, over real HTTP and gRPC on loopback: every
request answered as TF Serving 2.16.1 answers it, nothing allocated beyond the batch limit, one
owner per port, start-up failures in one line, metrics that count what happened.
docs/serving.md cites TF Serving's source for each behaviour."""

import http.client
import json
import os
import re
import shutil
import socket
import threading
import time
import tracemalloc

import grpc
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     predict_pb2, prediction_service_pb2_grpc)

from serving import api, limits
from serving.grpc_server import PortInUse, serve
from serving.model_store import ModelStore, VersionState
from serving_helpers import MAX_BATCH, MODEL, free_port, push, serving, start_dcgan_serve

State = get_model_status_pb2.ModelVersionStatus
GENERATE = json.dumps({"signature_name": "generate", "instances": [1, 2]}).encode()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("abuse") / MODEL)
    push(path, 1, seed=1)
    return path


@pytest.fixture(scope="module")
def server(base):
    with serving(base) as served:
        yield served


def raw_http(server, method: str, path: str, body: bytes = b"",
             headers: dict | None = None) -> tuple[int, bytes]:
    """One request as bytes on the wire; (status, body) of the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server["rest_port"], timeout=60)
    connection.putrequest(method, path, skip_accept_encoding=True)
    headers = {"Content-Length": str(len(body)), **(headers or {})}
    for key, value in headers.items():
        if value is not None:  # None: the header left out.
            connection.putheader(key, value)
    connection.endheaders(body)
    reply = connection.getresponse()
    answer = (reply.status, reply.read())
    connection.close()
    return answer


def predict_raw(server, body: bytes, headers: dict | None = None) -> tuple[int, bytes]:
    return raw_http(server, "POST", f"/v1/models/{MODEL}:predict", body, headers)


def still_serves(server) -> None:
    status, body = predict_raw(server, GENERATE)
    assert status == 200 and len(json.loads(body)["predictions"]) == 2


def chunked(body: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:])) + \
        b"0\r\n\r\n"


ROW0 = "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
DEEP = 100_000


# TF Serving's texts from util/json_tensor.cc (2.16.1); the stand-in's own bounds last.
@pytest.mark.parametrize("body, headers, message", [
    (b'{"instances": [["a"]]}', None,
     ROW0 + 'JSON Value: "a" Type: String is not of expected type: float'),
    (b"5", None, "JSON Value: 5 Is not object"),
    (b'{"instances": [[true]]}', None,
     ROW0 + "JSON Value: true Type: True is not of expected type: float"),
    (b'{"instances": [[1.0, 2.0], [1.0]]}', None, "Failed to process element: 1 of 'instances' "
     "list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
    (b'{"inputs": [[1.0, 2.0], [1.0]]}', None,
     "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    (b'{"inputs": [[1.0, [2.0]]]}', None,
     "Encountered list at unexpected level: 2 expected < 2"),
    (b'{"inputs": [[1.0], 2.0]}', None,
     "JSON Value: 2.0 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    (b'{"instances": 5}', None, "JSON Value: {\n    \"instances\": 5\n} Expecting 'instances' to "
     "be an list/array"),
    (b'{"instances": []}', None, "JSON Value: {\n    \"instances\": []\n} No values in "
     "'instances' array"),
    (b'{"signature_name": 5, "instances": [1]}', None, "JSON Value: {\n    \"signature_name\": "
     "5,\n    \"instances\": [\n        1\n    ]\n} not formatted correctly. 'signature_name' "
     "key must be a string value."),
    (b'{"instances": [{"b64": "x"}]}', None,
     ROW0 + 'JSON Value: {\n    "b64": "x"\n} Type: Object is not of expected type: float'),
    (b'{"instances": [{"z": [1.0]}, [1.0]]}', None,
     "Expecting object but got list at item 1 of input list"),
    (b"", None, "JSON Parse error: The document is empty"),
    (b'{"instances": [', None, "JSON Parse error: "),
    (b'{"instances": ["\xff"]}', None, "JSON Parse error: Invalid encoding in string."),
    (b'{"instances": ' + b"[" * DEEP + b"]" * DEEP + b"}", None,
     "JSON Parse error: nesting too deep"),
    (b"{}", {"Content-Length": "abc"}, "Malformed Content-Length header"),
    (b"{}", {"Content-Length": str(limits.MAX_REST_BODY_BYTES + 1)},
     f"request body of {limits.MAX_REST_BODY_BYTES + 1} bytes is above dcgan-serve's limit"),
])
def test_every_http_body_gets_tf_servings_answer_and_the_server_keeps_serving(
        server, body, headers, message):
    status, reply = predict_raw(server, body, headers)
    assert status == 400, reply
    assert json.loads(reply)["error"].startswith(message), reply
    still_serves(server)


def test_a_chunked_body_is_read_like_any_other(server):
    status, reply = predict_raw(server, chunked(GENERATE), {"Transfer-Encoding": "chunked",
                                                            "Content-Length": None})
    assert status == 200 and len(json.loads(reply)["predictions"]) == 2


def test_an_internal_failure_is_a_500_with_its_message(server, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "run_predict", broken)
    status, reply = predict_raw(server, GENERATE)
    assert (status, json.loads(reply)) == (500, {"error": "RuntimeError: boom"})


def claiming(rows: int, columns: int = 100) -> predict_pb2.PredictRequest:
    """A request of a few bytes whose shape claims rows x columns floats (TensorFlow fills
    values a tensor proto leaves out)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    tensor.tensor_shape.dim.add(size=rows)
    tensor.tensor_shape.dim.add(size=columns)
    request.inputs["z"].CopyFrom(tensor)
    return request


def one_row() -> predict_pb2.PredictRequest:
    request = claiming(1)
    request.inputs["z"].float_val.append(0.5)  # Filled out to 100 values, as TensorFlow does.
    return request


@pytest.mark.parametrize("rows, columns, message", [
    (2_500_000, 100, "Task size 2500000 is larger than maximum input batch size 64"),
    (10 ** 9, 100, "Task size 1000000000 is larger than maximum input batch size 64"),
    (1, 10 ** 9, "input 'z' has shape [1, 1000000000], the signature expects (None, 100)"),
])
def test_a_claimed_shape_is_refused_before_anything_is_allocated(server, rows, columns, message):
    request = claiming(rows, columns)
    assert request.ByteSize() < 40
    tracemalloc.start()
    try:
        with pytest.raises(api.RequestError, match=re.escape(message)):
            api.predict(server["store"], request, MAX_BATCH)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20, f"{peak} bytes allocated before the refusal"
    with pytest.raises(grpc.RpcError) as raised:  # The same over gRPC.
        server["predict"].Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == message


def test_a_second_server_on_a_taken_port_is_refused(server):
    with pytest.raises(PortInUse, match=f"port {server['port']} is in use by another process"):
        serve(server["store"], server["port"], host="127.0.0.1")
    still_serves(server)


def last_line(process, timeout: float = 120) -> tuple[int, str, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output.strip().splitlines()[-1], output


def test_dcgan_serve_on_a_busy_port_is_one_line(base):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, line, output = last_line(start_dcgan_serve(base, "--port", str(port),
                                                         "--rest-port", "0"))
    assert code == 255 and "Traceback" not in output, output
    assert line == ("Failed to start server. Error: INVALID_ARGUMENT: Failed to BuildAndStart "
                    f"gRPC server: port {port} is in use by another process")


def test_a_busy_rest_port_is_logged_and_grpc_serves_on(base):
    """As TF Serving's server.cc: the REST server's failure is an error in the log, not an
    exit."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        rest_port, port = holder.getsockname()[1], free_port()
        process = start_dcgan_serve(base, "--port", str(port), "--rest-port", str(rest_port))
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=120)
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                one_row(), timeout=30)
            assert response.model_spec.version.value == 1
            channel.close()
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert re.search(rf"ERROR Failed to start HTTP Server at localhost:{rest_port} \(", output)


def garbage_version(base: str, version: int) -> None:
    os.makedirs(os.path.join(base, str(version)))
    with open(os.path.join(base, str(version), "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")


def test_dcgan_serve_exits_when_the_version_to_serve_never_loads(tmp_path):
    """TF Serving's server_core.cc: the first load failed for good, so the server does not
    start (main.cc prints the error and exits)."""
    base = str(tmp_path / MODEL)
    garbage_version(base, 1)
    code, line, output = last_line(start_dcgan_serve(
        base, "--port", str(free_port()), "--rest-port", "0", "--max-load-retries", "1",
        "--load-retry-interval-seconds", "0"))
    assert code == 255 and "Traceback" not in output, output
    assert line == ("Failed to start server. Error: UNKNOWN: 1 model(s) did not become "
                    f"available: {{{{name: {MODEL} version: 1}} due to error: DATA_LOSS: Can't "
                    f"parse {base}/1/saved_model.pb as binary proto}}, }}")


def test_a_missing_base_path_is_logged_on_every_poll_and_changes_nothing(base, tmp_path,
                                                                         caplog):
    missing = str(tmp_path / "nowhere" / MODEL)
    store = ModelStore(MODEL, missing)
    store.refresh()
    store.refresh()
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"FileSystemStoragePathSource encountered a filesystem access error: Could "
                    f"not find base path {missing} for servable {MODEL} with error NOT_FOUND: "
                    f"{missing} not found"] * 2
    caplog.clear()
    os.makedirs(missing)
    store.refresh()
    assert [r.getMessage() for r in caplog.records] == [
        f"No versions of servable {MODEL} found under base path {missing}. Did you forget to "
        "name your leaf directory as a number (eg. '/1/')?"]
    copy = str(tmp_path / "copy" / MODEL)
    shutil.copytree(base, copy)
    serving_store = ModelStore(MODEL, copy)
    serving_store.refresh()
    shutil.rmtree(os.path.dirname(copy))  # The poll fails: what is served stays served.
    serving_store.refresh()
    assert serving_store.current.version == 1


def test_a_version_deleted_while_its_retry_is_pending_ends(tmp_path):
    base = str(tmp_path / MODEL)
    garbage_version(base, 1)
    store = ModelStore(MODEL, base, max_load_retries=5, load_retry_interval_seconds=3600)
    store.refresh()
    assert store.states[1] == VersionState(State.LOADING)
    shutil.rmtree(os.path.join(base, "1"))
    store.refresh()  # The harness is cancelled: END with the last load's error.
    assert store.states[1].state == State.END
    assert store.states[1].code == error_codes_pb2.DATA_LOSS


def metric_lines(page: str, name: str) -> dict[str, float]:
    return {labels: float(value) for labels, value in
            re.findall(rf"^{re.escape(name)}(\{{[^}}]*\}}) (\S+)$", page, re.M)}


def test_metrics_count_what_happened_as_tf_serving_counts_it(base):
    with serving(base) as served:
        ok_row = json.dumps({"instances": [[0.0] * 100]}).encode()
        assert predict_raw(served, ok_row)[0] == 200
        assert predict_raw(served, GENERATE)[0] == 200
        assert predict_raw(served, b'{"instances": [["a"]]}')[0] == 400
        assert raw_http(served, "GET", f"/v1/models/{MODEL}")[0] == 200
        assert raw_http(served, "GET", "/v1/models/nope/metadata")[0] == 404
        assert raw_http(served, "GET", "/elsewhere")[0] == 404  # No handler: not counted.
        served["predict"].Predict(one_row(), timeout=30)
        missing = one_row()
        missing.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError):
            served["predict"].Predict(missing, timeout=30)
        metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata.model_spec.name = MODEL
        served["predict"].GetModelMetadata(metadata, timeout=30)  # Not counted by TF Serving.
        status, page = raw_http(served, "GET", "/monitoring/prometheus/metrics")
    page = page.decode()
    assert status == 200
    assert metric_lines(page, ":tensorflow:serving:request_count") == {
        f'{{model_name="{MODEL}",status="INVALID_ARGUMENT"}}': 1,
        f'{{model_name="{MODEL}",status="OK"}}': 4,
        '{model_name="nope",status="NOT_FOUND"}': 2}
    counts = metric_lines(page, ":tensorflow:serving:request_latency_count")
    assert counts == {f'{{model_name="{MODEL}",API="",entrypoint="REST"}}': 1,
                      f'{{model_name="{MODEL}",API="Predict",entrypoint="GRPC"}}': 1,
                      f'{{model_name="{MODEL}",API="predict",entrypoint="REST"}}': 2}
    bounds = re.findall(r'^:tensorflow:serving:request_latency_bucket\{model_name="dcgan_mnist",'
                        r'API="Predict",entrypoint="GRPC",le="([^"]+)"\}', page, re.M)
    assert bounds[:4] == ["10", "18", "32.4", "58.32"] and bounds[-1] == "+Inf"
    assert len(bounds) == 34 and "# HELP" not in page
    families = {f.name: f for f in text_string_to_metric_families(page)}  # Valid exposition.
    assert families[":tensorflow:serving:request_latency"].type == "histogram"


def test_the_readiness_probe_fails_while_no_version_is_available(base, tmp_path):
    """The Deployment's readiness path answers 200 only while a version is AVAILABLE; the
    status call (the old probe) stays 200 once every version has ended."""
    with open(os.path.join(os.path.dirname(__file__), os.pardir, "serving", "k8s",
                           "deployment.yaml")) as f:
        (container,) = yaml.safe_load(f)["spec"]["template"]["spec"]["containers"]
    probe = container["readinessProbe"]["httpGet"]["path"]
    copy = str(tmp_path / MODEL)
    shutil.copytree(base, copy)
    with serving(copy) as served:
        assert raw_http(served, "GET", probe)[0] == 200
        shutil.rmtree(os.path.join(copy, "1"))
        deadline = time.monotonic() + 30
        while served["store"].current is not None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        status, body = raw_http(served, "GET", f"/v1/models/{MODEL}")
        assert status == 200 and json.loads(body)["model_version_status"][0]["state"] == "END"
        assert raw_http(served, "GET", probe)[0] == 404


def test_concurrent_abuse_leaves_the_server_serving(server):
    """Hostile bodies and claimed shapes from 8 threads at once, then a good request."""
    bodies = [b"5", b'{"instances": [["a"]]}', b"[" * 5000, b'{"inputs": {"x": 1}}']
    failures = []

    def hammer(index: int) -> None:
        for i in range(25):
            status, reply = predict_raw(server, bodies[(index + i) % len(bodies)])
            if status != 400 or "error" not in json.loads(reply):
                failures.append((status, reply))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    still_serves(server)
