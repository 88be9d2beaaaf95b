"""dcgan-serve and dcgan-generate over real gRPC on loopback, with the official stubs."""

import base64
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import threading
import time
import http.client as http_client
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     prediction_service_pb2_grpc)


from serving import api, limits, model_store
from serving import client as client_lib
from serving.model_store import ModelStore
from serving_helpers import MAX_BATCH, MODEL, DCGAN_SERVE, free_port, push
from settings import trainer_config

def request(signature="serving_default", count=3, model=MODEL, **inputs):
    req = client_lib.build_request(model, count, seed=5, z_dim=trainer_config().model.z_dim,
                                   signature=signature)
    for name, value in inputs.items():
        req.inputs.pop("z", None)
        req.inputs.pop("seed", None)
        if value is not None:
            req.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    del req.output_filter[:]
    return req


def images_of(response):
    return tf.make_ndarray(response.outputs["images"])


def test_predict_both_signatures(server):
    response = server["predict"].Predict(request(count=5), timeout=30)
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    images = images_of(response)
    assert images.dtype == np.uint8 and images.shape == (5, 28, 28, 1)
    assert set(response.outputs) == {"images", "png_bytes"}
    by_seed = images_of(server["predict"].Predict(request("generate", 4), timeout=30))
    again = images_of(server["predict"].Predict(
        request("generate", seed=np.array([6], np.int64)), timeout=30))
    np.testing.assert_array_equal(by_seed[1], again[0])  # Seed 6 is the second of 5, 6, 7, 8.


def test_output_filter_is_honoured(server):
    req = request(count=2)
    req.output_filter.append("png_bytes")
    response = server["predict"].Predict(req, timeout=30)
    assert set(response.outputs) == {"png_bytes"}


def extra_input():
    req = request(count=2)
    req.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.arange(2, dtype=np.int64)))
    return req


# TF Serving 2.16's codes and texts (docs/serving.md cites the source of each).
@pytest.mark.parametrize("make_request, code, message", [
    (lambda: request(z=np.zeros([2, 100], np.float64)), "INVALID_ARGUMENT",
     "Expects arg[0] to be float but double is provided"),
    (lambda: request(z=np.zeros([2, 99], np.float32)), "INVALID_ARGUMENT", "has shape [2, 99]"),
    (lambda: request(z=None), "INVALID_ARGUMENT", "input size does not match signature: 0!=1 "
     "len({}) != len({z}). Sent extra: {}. Missing but required: {z}."),
    (extra_input, "INVALID_ARGUMENT", "input size does not match signature: 2!=1 "
     "len({seed,z}) != len({z}). Sent extra: {seed}. Missing but required: {}."),
    (lambda: request(x=np.zeros([2, 100], np.float32)), "INVALID_ARGUMENT",
     "Signature input alias: z(feed name: serving_default_z:0) not found in request and no "
     "default value provided. Inputs expected to be in the request {x}, or default input alias "
     "set: "),
    (lambda: filtered("png", "images"), "INVALID_ARGUMENT", "output tensor alias not found in "
     "signature: png Outputs expected to be in the set {images,png_bytes}."),
    (lambda: filtered("images", "images"), "INVALID_ARGUMENT",
     "duplicate output tensor alias: images"),
    (lambda: request("classify"), "FAILED_PRECONDITION",
     'Serving signature key "classify" not found.'),
    (lambda: request(model=""), "INVALID_ARGUMENT", "ModelSpec has no name specified."),
    (lambda: request(model="nope"), "NOT_FOUND", "Servable not found for request: Latest(nope)"),
    (lambda: request(count=MAX_BATCH + 1), "INVALID_ARGUMENT",
     f"Task size {MAX_BATCH + 1} is larger than maximum input batch size {MAX_BATCH}"),
])
def test_malformed_requests_get_tf_serving_errors_and_the_server_keeps_serving(
        server, make_request, code, message):
    with pytest.raises(grpc.RpcError) as raised:
        server["predict"].Predict(make_request(), timeout=30)
    assert raised.value.code() == getattr(grpc.StatusCode, code)
    assert message in raised.value.details(), raised.value.details()
    assert images_of(server["predict"].Predict(request(count=1), timeout=30)).shape[0] == 1


def filtered(*aliases):
    req = request(count=1)
    req.output_filter.extend(aliases)
    return req


def test_outputs_are_in_typed_fields_as_tf_serving_sends_them(server):
    """TF Serving answers with Tensor::AsProtoField (server_core.h): a client reading
    int_val / string_val directly, not through make_ndarray, sees the values."""
    response = server["predict"].Predict(request(count=2), timeout=30)
    images, pngs = response.outputs["images"], response.outputs["png_bytes"]
    assert not images.tensor_content and not pngs.tensor_content
    assert len(images.int_val) == 2 * 28 * 28 and len(pngs.string_val) == 2
    np.testing.assert_array_equal(np.array(images.int_val, np.uint8).reshape(2, 28, 28, 1),
                                  images_of(response))
    assert pngs.string_val[0].startswith(b"\x89PNG")


@pytest.mark.parametrize("fields, message", [
    ([], "GetModelMetadataRequest must specify at least one metadata_field"),
    (["signature_def", "x"], "Metadata field x is not supported"),
])
def test_metadata_requests_are_validated_before_the_model_is_looked_up(server, fields, message):
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
    req.model_spec.name = "no_such_model"  # Would be NOT_FOUND, were it looked up first.
    with pytest.raises(grpc.RpcError) as raised:
        server["predict"].GetModelMetadata(req, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == message


def test_unknown_version_is_not_found(server):
    req = request()
    req.model_spec.version.value = 99
    with pytest.raises(grpc.RpcError) as raised:
        server["predict"].Predict(req, timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"Specific({MODEL}, 99)" in raised.value.details()


def test_metadata_and_status(server):
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = MODEL
    response = server["predict"].GetModelMetadata(req, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "generate"} <= set(signatures.signature_def)
    assert set(signatures.signature_def["generate"].inputs) == {"seed"}
    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = MODEL
    (status,) = server["models"].GetModelStatus(status_req, timeout=30).model_version_status
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.version == server["store"].current.version


def test_cli_writes_a_grid_and_reports_errors(server, tmp_path, capsys):
    target = f"127.0.0.1:{server['port']}"
    grid = tmp_path / "grid.png"
    assert client_lib.main(["--server", target, "--count", "16", "--out", str(grid),
                            "--out-dir", str(tmp_path / "digits")]) == 0
    assert tf.io.decode_png(tf.io.read_file(str(grid))).shape == (4 * 28, 4 * 28, 1)
    assert len(os.listdir(tmp_path / "digits")) == 16
    assert "16 digits from dcgan_mnist version" in capsys.readouterr().out
    assert client_lib.main(["--server", target, "--model", "nope", "--out", str(grid)]) == 1
    assert "unknown model or version" in capsys.readouterr().err
    assert client_lib.main(["--server", "127.0.0.1:1", "--timeout", "3",
                            "--out", str(grid)]) == 1
    assert "unreachable" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        client_lib.main(["--count", "0", "--out", str(grid)])


def test_one_batching_limit_for_tf_serving_dcgan_serve_and_the_client():
    assert limits.max_batch_size(limits.BATCHING_PARAMETERS) == MAX_BATCH  # TF Serving's file.
    assert api.DEFAULT_MAX_BATCH == MAX_BATCH
    assert client_lib.parse_args(["--out", "grid.png"]).max_batch == MAX_BATCH
    with open(os.path.join(os.path.dirname(__file__), os.pardir, "Makefile")) as f:
        (serve_recipe,) = re.findall(r"^serve: .*\n\t(.*)$", f.read(), re.M)
    assert "--max-batch-size" not in serve_recipe  # make serve takes dcgan-serve's default.


def test_a_count_above_the_limit_is_split_into_requests(server, tmp_path, capsys):
    client = client_lib.GeneratorClient(f"127.0.0.1:{server['port']}")
    try:
        images, versions = client.generate(MODEL, 2 * MAX_BATCH + 1, seed=7, signature="generate")
        assert images.shape == (2 * MAX_BATCH + 1, 28, 28, 1) and len(versions) == 3
        last, _ = client.generate(MODEL, 1, seed=7 + 2 * MAX_BATCH, signature="generate")
        np.testing.assert_array_equal(images[-1], last[0])  # Seeds run on across requests.
        by_z, _ = client.generate(MODEL, MAX_BATCH + 5, seed=3)  # z's size from the metadata.
        assert by_z.shape[0] == MAX_BATCH + 5
    finally:
        client.close()
    assert client_lib.main(["--server", f"127.0.0.1:{server['port']}", "--count", "100",
                            "--out", str(tmp_path / "grid.png")]) == 0
    assert re.search(r"100 digits from dcgan_mnist version \d+ in 2 request\(s\)",
                     capsys.readouterr().out)


def http(url: str, body: dict | None = None) -> tuple[int, dict]:
    """(HTTP status, JSON body) of a GET, or of a POST of `body`."""
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_rest_status_and_metadata_as_tf_serving(server):
    status, body = http(f"{server['rest']}/v1/models/{MODEL}")
    assert status == 200
    (version,) = [v for v in body["model_version_status"] if v["state"] == "AVAILABLE"]
    assert version["version"] == str(server["store"].current.version)
    assert version["status"] == {"error_code": "OK", "error_message": ""}
    status, body = http(f"{server['rest']}/v1/models/{MODEL}/metadata")
    assert status == 200
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert set(signatures["generate"]["inputs"]) == {"seed"}
    assert "@type" not in json.dumps(body)  # http_rest_api_util.cc unpacks the Any.
    assert http(f"{server['rest']}/v1/models/nope") == (
        404, {"error": "Could not find any versions of model nope"})


def test_rest_predict_rows_and_columns_with_base64_for_bytes_outputs(server):
    z = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    status, rows = http(f"{server['rest']}/v1/models/{MODEL}:predict",
                        {"instances": z.tolist()})
    assert status == 200 and len(rows["predictions"]) == 2
    by_grpc = images_of(server["predict"].Predict(request(z=z), timeout=30))
    for row, image in zip(rows["predictions"], by_grpc):
        np.testing.assert_array_equal(np.array(row["images"], np.uint8), image)
        png = base64.b64decode(row["png_bytes"]["b64"])
        np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), image)
    status, columns = http(f"{server['rest']}/v1/models/{MODEL}:predict",
                           {"signature_name": "generate", "inputs": {"seed": [3, 4]}})
    assert status == 200 and np.array(columns["outputs"]["images"]).shape == (2, 28, 28, 1)


@pytest.mark.parametrize("method, path, status, body", [
    ("GET", f"/V1/Models/{MODEL}/Metadata", 200, None),  # Paths match case-insensitively.
    ("GET", "/v1/models", 400, {"error": "Missing model name in request."}),
    ("GET", "/v1/models/", 400, {"error": "Malformed request: GET /v1/models/"}),
    ("PUT", f"/v1/models/{MODEL}", 400, {"error": f"Malformed request: PUT /v1/models/{MODEL}"}),
    ("GET", f"/v1/models/{MODEL}/versions/99999999999999999999", 400,
     {"error": "Failed to convert version: 99999999999999999999 to numeric."}),
    ("GET", "/v2/models/x", 404, None),  # No handler outside /v1/.
    ("GET", "/", 404, None),
])
def test_rest_paths_as_tf_serving_routes_them(server, method, path, status, body):
    connection = http_client.HTTPConnection(server["rest"].split("//")[1], timeout=30)
    connection.request(method, path)
    reply = connection.getresponse()
    data = reply.read()
    assert reply.status == status
    if body is not None:
        assert json.loads(data) == body
    connection.close()


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/nope:predict", {"instances": [[0.0] * 100]}, 404,
     "Servable not found for request: Latest(nope)"),
    (f"/v1/models/{MODEL}:predict", {"signature_name": "x", "instances": [[0.0] * 100]}, 400,
     'Serving signature name: "x" not found in signature def'),
    (f"/v1/models/{MODEL}:predict", {"instances": [[0.0]], "inputs": [[0.0]]}, 400,
     'JSON Value: {\n    "instances": [\n        [\n            0.0\n        ]\n    ],\n    '
     '"inputs": [\n        [\n            0.0\n        ]\n    ]\n} Not formatted correctly '
     "expecting only one of 'inputs' or 'instances' keys to exist "),
    (f"/v1/models/{MODEL}:predict", {"inputs": {"x": [[0.0] * 100]}}, 400,
     "Missing named input: z in 'inputs' object."),
    (f"/v1/models/{MODEL}:predict", {"instances": [{}]}, 400,
     "Failed to process element: 0 of 'instances' list. JSON object: {} keys must be equal to: "
     "z"),
    (f"/v1/models/{MODEL}:predict", {"instances": [{"x": [0.0] * 100}]}, 400,
     "Failed to process element: 0 key: x of 'instances' list. Error: INVALID_ARGUMENT: JSON "
     "object: does not have named input: x"),
    (f"/v1/models/{MODEL}:predict", {"instances": [{"z": [0.0] * 100, "seed": 1}]}, 400,
     "Failed to process element: 0 key: seed of 'instances' list. Error: INVALID_ARGUMENT: "
     "JSON object: does not have named input: seed"),
    (f"/v1/models/{MODEL}:predict", {"instances": [[0.0] * 100] * (MAX_BATCH + 1)}, 400,
     f"Task size {MAX_BATCH + 1} is larger than maximum input batch size {MAX_BATCH}"),
    (f"/v1/models/{MODEL}/versions/99:predict", {"instances": [[0.0] * 100]}, 404,
     f"Servable not found for request: Specific({MODEL}, 99)"),
])
def test_rest_errors_are_json_with_tf_servings_http_codes(server, path, body, status, message):
    assert http(server["rest"] + path, body) == (status, {"error": message})


def test_load_with_a_new_version_pushed_mid_run(server):
    """16 concurrent clients, 2,000 requests, version 2 pushed while they run: 0 errors."""
    total, clients = 2000, 16
    versions, rest_ok, errors, lock = [], [], [], threading.Lock()
    z = np.random.default_rng(0).standard_normal((1, 100)).astype(np.float32)
    pushed = threading.Event()

    def one(index):
        if index == total // 4:
            threading.Thread(target=lambda: (push(server["base"], 2, seed=2), pushed.set())).start()
        if index >= total // 2:
            assert pushed.wait(120)  # The second half runs after the push, whatever the speed.
        if index >= 3 * total // 4:  # The last quarter after the load, however slow the host.
            deadline = time.monotonic() + 120
            while server["store"].current.version != 2:
                assert time.monotonic() < deadline, "version 2 never loaded"
                time.sleep(0.05)
        if index % 2:  # Every other request over REST, which does not say the version.
            status, body = http(f"{server['rest']}/v1/models/{MODEL}:predict",
                                {"instances": z.tolist()})
            with lock:
                if status != 200 or len(body.get("predictions", [])) != 1:
                    errors.append((index, status, body))
                else:
                    rest_ok.append((index, np.array(body["predictions"][0]["images"], np.uint8)))
            return
        try:
            response = server["predict"].Predict(request(count=1), timeout=60)
            with lock:
                versions.append((index, response.model_spec.version.value))
        except grpc.RpcError as err:
            with lock:
                errors.append(err)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(total)))
    assert pushed.wait(60)
    assert errors == [] and len(versions) + len(rest_ok) == total
    served = {v for _, v in versions}
    assert served == {1, 2}, served
    # Once version 2 answered, no later request went back to version 1.
    ordered = [v for _, v in sorted(versions)]
    first_new = ordered.index(2)
    assert ordered[-50:] == [2] * 50 and first_new > 0
    response = server["predict"].Predict(request(count=1), timeout=30)
    assert response.model_spec.version.value == 2
    # REST answers carry no version: tell the two apart by the digit each draws from z.
    drawn = {v: tf.saved_model.load(os.path.join(server["base"], str(v))).signatures[
        "serving_default"](z=tf.constant(z))["images"].numpy()[0] for v in (1, 2)}
    assert not np.array_equal(drawn[1], drawn[2])
    by_rest = [next(v for v in (1, 2) if np.array_equal(image, drawn[v]))
               for _, image in sorted(rest_ok, key=lambda r: r[0])]
    assert set(by_rest) == {1, 2} and by_rest[-50:] == [2] * 50
    # GetModelStatus lists both versions, newest first; the replaced one has ended.
    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = MODEL
    statuses = server["models"].GetModelStatus(status_req, timeout=30).model_version_status
    State = get_model_status_pb2.ModelVersionStatus
    assert [(s.version, s.state) for s in statuses] == [(2, State.AVAILABLE), (1, State.END)]


@pytest.mark.parametrize("name, version, message", [
    ("nope", None, "Could not find any versions of model nope"),
    (MODEL, 99, f"Could not find version 99 of model {MODEL}"),
])
def test_model_status_not_found_as_tf_serving_says_it(server, name, version, message):
    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = name
    if version is not None:
        status_req.model_spec.version.value = version
    with pytest.raises(grpc.RpcError) as raised:
        server["models"].GetModelStatus(status_req, timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == message


def statuses_of(store):
    return sorted((v, s.state) for v, s in store.states.items())


State = get_model_status_pb2.ModelVersionStatus


def garbage_version(base, version):
    os.makedirs(os.path.join(base, str(version)))
    with open(os.path.join(base, str(version), "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")


def test_a_failed_load_is_retried_then_given_up_and_the_served_version_stays(tmp_path):
    base = str(tmp_path / MODEL)
    push(base, 1, seed=1)
    store = ModelStore(MODEL, base, max_load_retries=1, load_retry_interval_seconds=0)
    store.refresh()
    garbage_version(base, 2)
    store.refresh()
    # A retry pending: LOADING and healthy, as TF Serving's harness reports it (loader_harness.cc).
    assert store.states[2] == model_store.VersionState(State.LOADING)
    store.refresh()  # The one retry fails too: TF Serving gives up on the version.
    assert store.states[2].state == State.END and store.states[2].code == error_codes_pb2.DATA_LOSS
    assert store.states[2].error.startswith("Can't parse ")
    store.refresh()
    assert store.states[2].state == State.END  # Not tried again.
    assert store.current.version == 1 and store.states[1].state == State.AVAILABLE


def test_a_version_fixed_before_its_retry_loads(tmp_path):
    base = str(tmp_path / MODEL)
    garbage_version(base, 1)
    store = ModelStore(MODEL, base, max_load_retries=5, load_retry_interval_seconds=0)
    store.refresh()
    assert store.current is None and store.states[1].state == State.LOADING
    shutil.rmtree(os.path.join(base, "1"))
    push(base, 1, seed=1)  # Complete now, e.g. an object-store copy that has finished.
    store.refresh()
    assert store.current.version == 1 and store.states[1] == model_store.VersionState(
        State.AVAILABLE)


def test_deleting_the_served_version_rolls_back_to_the_next(tmp_path):
    base = str(tmp_path / MODEL)
    push(base, 1, seed=1)
    push(base, 2, seed=2)
    store = ModelStore(MODEL, base)
    store.refresh()
    assert store.current.version == 2
    shutil.rmtree(os.path.join(base, "2"))
    store.refresh()
    assert store.current.version == 1
    assert statuses_of(store) == [(1, State.AVAILABLE), (2, State.END)]
    shutil.rmtree(os.path.join(base, "1"))
    store.refresh()
    assert store.current is None and statuses_of(store) == [(1, State.END), (2, State.END)]


def test_dcgan_serve_listens_only_once_a_version_is_available(tmp_path):
    base = tmp_path / MODEL
    base.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [DCGAN_SERVE, "--model-base-path",
         str(base), "--model-name", MODEL, "--port", str(port), "--poll-seconds", "0.2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        time.sleep(5)  # Started, and found no version.
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request(count=1), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        push(str(base), 1, seed=1)
        deadline = time.monotonic() + 120
        while True:
            try:
                response = stub.Predict(request(count=1), timeout=5)
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline, "dcgan-serve never started listening"
                time.sleep(0.5)
        assert response.model_spec.version.value == 1
        channel.close()
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0
