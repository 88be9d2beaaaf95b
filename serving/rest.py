"""TF Serving's REST API for `dcgan-serve` (port 8501), on the same request handling as gRPC.

As tensorflow_serving/g3doc/api_rest.md and model_servers/http_rest_api_handler.cc define it:

    GET  /v1/models/{name}[/versions/{v}]            GetModelStatusResponse as JSON
    GET  /v1/models/{name}[/versions/{v}]/metadata   GetModelMetadataResponse as JSON
    POST /v1/models/{name}[/versions/{v}]:predict    {"instances": ...} -> {"predictions": ...}
                                                     {"inputs": ...}    -> {"outputs": ...}

An output whose alias ends in `_bytes` is returned as {"b64": ...}; errors are
{"error": "<message>"} with TF Serving's HTTP status for the gRPC code
(model_servers/http_server.cc, ToHTTPStatusCode).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from serving import metrics as metrics_lib
from serving import api
from serving.metrics import RequestMetrics
from serving.model_store import ModelStore

PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                  r"(?P<call>/metadata|:predict)?")
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.UNIMPLEMENTED: 501,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.RESOURCE_EXHAUSTED: 429}
BINARY_SUFFIX = "_bytes"


def _to_json(message) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


def _tensor_values(alias: str, value: np.ndarray) -> Any:
    if value.dtype.kind in "SO":
        if alias.endswith(BINARY_SUFFIX):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()},
                                otypes=[object])(value).tolist()
        try:
            return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist()
        except UnicodeDecodeError as err:
            raise api.RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"output {alias} is not valid UTF-8; name it *{BINARY_SUFFIX} for base64") from err
    return value.tolist()


def predict_json(store: ModelStore, name: str, version: int | None, body: dict[str, Any],
                 max_batch: int) -> dict[str, Any]:
    """One :predict call: the JSON request to a PredictRequest, api.predict, back."""
    if ("instances" in body) == ("inputs" in body):
        raise api.RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                       "Missing 'instances' or 'inputs' key" if
                                       "instances" not in body else
                                       "Not both 'instances' and 'inputs' can be specified")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = body.get("signature_name", "")
    if version is not None:
        request.model_spec.version.value = version
    _, signature = api.signature_of(api.servable(store, request.model_spec),
                                            request.model_spec)
    names = sorted(signature.inputs)
    if "instances" in body:
        rows = body["instances"]
        columns = ({n: [row[n] for row in rows] for n in names}
                   if len(names) > 1 or (rows and isinstance(rows[0], dict))
                   else {names[0]: rows})
    else:
        columns = body["inputs"] if isinstance(body["inputs"], dict) else {names[0]: body["inputs"]}
    for alias, values in columns.items():
        dtype = (tf.dtypes.as_dtype(signature.inputs[alias].dtype).as_numpy_dtype
                 if alias in signature.inputs else None)
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(np.asarray(values, dtype=dtype)))
    response = api.predict(store, request, max_batch)
    outputs = {alias: _tensor_values(alias, tf.make_ndarray(tensor))
               for alias, tensor in sorted(response.outputs.items())}
    if "inputs" in body:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    count = len(next(iter(outputs.values())))
    return {"predictions": [{alias: values[i] for alias, values in outputs.items()}
                            for i in range(count)]}


class Handler(BaseHTTPRequestHandler):
    server: "RestServer"

    def log_message(self, *args) -> None:  # Requests are not logged one by one.
        pass

    def _reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        metrics = self.server.metrics
        if metrics and method == "GET" and path == metrics_lib.PATH:
            data = metrics.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        match = PATH.fullmatch(path)
        started, status = time.perf_counter(), "OK"
        try:
            if not match or (method == "POST") != (match["call"] == ":predict"):
                raise api.RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                               f"Malformed request: {method} {self.path}")
            version = int(match["version"]) if match["version"] else None
            store = self.server.store
            if match["call"] == ":predict":
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except json.JSONDecodeError as err:
                    raise api.RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                                   f"JSON Parse error: {err}") from err
                reply = json.dumps(predict_json(store, match["name"], version, body,
                                                self.server.max_batch))
            elif match["call"] == "/metadata":
                request = get_model_metadata_pb2.GetModelMetadataRequest(
                    metadata_field=["signature_def"])
                request.model_spec.name = match["name"]
                if version is not None:
                    request.model_spec.version.value = version
                reply = _to_json(api.model_metadata(store, request))
            else:
                request = get_model_status_pb2.GetModelStatusRequest()
                request.model_spec.name = match["name"]
                if version is not None:
                    request.model_spec.version.value = version
                reply = _to_json(api.model_status(store, request))
        except api.RequestError as err:
            status = err.code.name
            self._reply(HTTP_STATUS.get(err.code, 500), json.dumps({"error": str(err)}))
            return
        finally:
            if metrics and match and match["call"] == ":predict":
                metrics.record(match["name"], "Predict", "REST", status,
                               time.perf_counter() - started)
        self._reply(200, reply)

    def do_GET(self) -> None:  # pylint: disable=invalid-name
        self._handle("GET")

    def do_POST(self) -> None:  # pylint: disable=invalid-name
        self._handle("POST")


class RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: ModelStore, port: int, max_batch: int,
                 metrics: RequestMetrics | None, host: str = ""):
        super().__init__((host, port), Handler)
        self.store, self.max_batch, self.metrics = store, max_batch, metrics


def serve_rest(store: ModelStore, port: int, max_batch: int,
               metrics: RequestMetrics | None = None,
               host: str = "") -> tuple[RestServer, int]:
    """Starts the REST server in a thread (with `metrics`: also the Prometheus page); returns
    it and the bound port (0: a free one)."""
    server = RestServer(store, port, max_batch, metrics, host)
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    return server, server.server_address[1]
