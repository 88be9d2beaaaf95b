"""TF Serving's REST API for `dcgan-serve` (port 8501), on the same request handling as gRPC.

As tensorflow_serving/g3doc/api_rest.md, model_servers/http_rest_api_util.cc (paths, matched
case-insensitively) and model_servers/http_rest_api_handler.cc define it:

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            GetModelStatusResponse as JSON
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   GetModelMetadataResponse
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    {"instances"|"inputs": ...}

Bodies are converted by serving/json_tensor.py; errors are {"error": "<message>"} with TF
Serving's HTTP status for the code (model_servers/http_server.cc, ToHTTPStatusCode). Every
request gets an answer: a path outside /v1/ is 404 (no handler is registered for it), anything
unforeseen is 500 with its message (and a traceback in the log).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from serving import api, json_tensor, limits
from serving import metrics as metrics_lib
from serving.metrics import RequestMetrics
from serving.model_store import ModelStore

HANDLED = re.compile(r"(?i)/v1/.*")  # kHTTPRestApiHandlerPathRegex
PREDICTION = re.compile(r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                        r":(classify|regress|predict)")
MODEL_STATUS = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|"
                          r"(?:/labels/([^/:]+)))?(?:\/(metadata))?")
HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500, grpc.StatusCode.UNAUTHENTICATED: 401}
_INT64_MAX = 2 ** 63 - 1


def _invalid(message: str) -> api.RequestError:
    return api.RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _json(message, preserve_names: bool) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=preserve_names,
                                     including_default_value_fields=True)


def _model_spec(spec, name: str, version: str | None, label: str | None) -> None:
    """FillModelSpecWithNameVersionAndLabel, after ParseModelInfo's decoding."""
    spec.name = name
    if version:
        if int(version) > _INT64_MAX:
            raise _invalid(f"Failed to convert version: {version} to numeric.")
        spec.version.value = int(version)
    if label:
        spec.version_label = urllib.parse.unquote(label)


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
    """http_rest_api_util.cc ToJsonString: the model spec and the unpacked SignatureDefMap,
    concatenated (so no "@type" key)."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[api.SIGNATURE_DEF].Unpack(signature_map)
    return (f'{{\n"model_spec":{_json(response.model_spec, True)},\n"metadata": '
            f'{{"signature_def": {_json(signature_map, True)}}}\n}}\n')


@dataclasses.dataclass(frozen=True)
class _Route:
    """http_rest_api_util.cc ParseModelInfo: the path's match (None: not parsed), the model
    name in it (decoded) and the REST method ("predict"; "" for a GET). The name and method
    label the request's metrics whatever its outcome."""
    match: re.Match | None
    model: str
    method: str

    @classmethod
    def parse(cls, method: str, path: str) -> "_Route":
        pattern = {"POST": PREDICTION, "GET": MODEL_STATUS}.get(method)
        match = pattern.fullmatch(path) if pattern else None
        return cls(match, urllib.parse.unquote(match[1] or "") if match else "",
                   match[4] if match and method == "POST" else "")


class Handler(BaseHTTPRequestHandler):
    server: "RestServer"
    timeout = limits.REST_READ_TIMEOUT_SECONDS  # A body that never arrives frees its thread.

    def log_message(self, *args) -> None:  # Requests are not logged one by one.
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        """The request body (Content-Length or chunked), at most limits.MAX_REST_BODY_BYTES."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(limits.MAX_REST_BODY_BYTES)
                try:
                    length = int(line.split(b";")[0].strip() or b"x", 16)
                except ValueError as err:
                    raise _invalid("Malformed chunked body") from err
                size += length
                if length < 0 or size > limits.MAX_REST_BODY_BYTES:
                    raise _invalid(f"request body above dcgan-serve's limit of "
                                   f"{limits.MAX_REST_BODY_BYTES} bytes")
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
                if length == 0:
                    return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length", 0))
        except ValueError as err:
            raise _invalid("Malformed Content-Length header") from err
        if length < 0 or length > limits.MAX_REST_BODY_BYTES:
            raise _invalid(f"request body of {length} bytes is above dcgan-serve's limit of "
                           f"{limits.MAX_REST_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _predict(self, spec, body: bytes) -> bytes:
        """ProcessPredictRequest."""
        request = predict_pb2.PredictRequest()
        request.model_spec.CopyFrom(spec)

        def signature_inputs(signature: str):  # HttpRestApiHandler::GetInfoMap
            served = api.servable(self.server.store, request.model_spec)
            name = signature or api.DEFAULT_SIGNATURE
            if name not in served.signature_defs:
                raise _invalid(f'Serving signature name: "{name}" not found in signature def')
            return served.signature_defs[name].inputs

        response_format = json_tensor.fill_predict_request(json_tensor.parse(body), request,
                                                           signature_inputs)
        _, _, outputs = api.run_predict(self.server.store, request, self.server.max_batch)
        return json_tensor.response_json(outputs, response_format).encode()

    def _process(self, method: str, path: str, route: "_Route", body: bytes) -> bytes:
        """HttpRestApiHandler::ProcessRequest: the JSON reply, or RequestError."""
        store, match = self.server.store, route.match
        if not match or route.method in ("classify", "regress"):  # Predict signatures only.
            raise _invalid(f"Malformed request: {method} {path}")
        if not route.model:
            raise _invalid("Missing model name in request.")
        if method == "POST":
            spec = predict_pb2.PredictRequest().model_spec
            _model_spec(spec, route.model, match[2], match[3])
            return self._predict(spec, body)
        if match[4]:  # /metadata
            request = get_model_metadata_pb2.GetModelMetadataRequest(
                metadata_field=[api.SIGNATURE_DEF])
            _model_spec(request.model_spec, route.model, match[2], match[3])
            return _metadata_json(api.model_metadata(store, request)).encode()
        request = get_model_status_pb2.GetModelStatusRequest()
        _model_spec(request.model_spec, route.model, match[2], match[3])
        return _json(api.model_status(store, request), False).encode()

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        metrics = self.server.metrics
        if metrics and method == "GET" and path == metrics_lib.PATH:
            self._reply(200, metrics.exposition(), "text/plain")
            return
        if not HANDLED.fullmatch(path):
            self._reply(404, b"", "text/plain")
            return
        started, route = time.perf_counter(), _Route.parse(method, path)
        try:
            body = self._body()
            if method == "OPTIONS":  # A CORS preflight (http_server.cc).
                if not re.search(r"https?://", self.headers.get("Origin", "")):
                    raise api.RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                                           "Origin header is missing in CORS preflight")
                code, reply = grpc.StatusCode.OK, b""
            else:
                code, reply = grpc.StatusCode.OK, self._process(method, path, route, body)
        except api.RequestError as err:
            code, reply = err.code, json.dumps({"error": str(err)}, indent=4).encode()
        except Exception as err:  # pylint: disable=broad-except
            logging.exception("REST %s %s failed", method, path)
            code = grpc.StatusCode.INTERNAL
            reply = json.dumps({"error": f"{type(err).__name__}: {err}"}, indent=4).encode()
        if metrics and method != "OPTIONS":
            metrics.record(route.model, route.method, "REST", code.name,
                           time.perf_counter() - started)
        self._reply(HTTP_STATUS[code], reply)

    def _dispatch(self) -> None:
        self._handle(self.command)  # The request's method, as BaseHTTPRequestHandler parsed it.

    # Every method is answered: GET and POST as TF Serving routes them, the others with its
    # "Malformed request" (OPTIONS: a CORS preflight).
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch  # noqa: N815


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
