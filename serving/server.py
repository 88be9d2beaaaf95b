"""`dcgan-serve`: a local gRPC server on TF Serving's own API, for development and tests.

Production serves the pushed model with TensorFlow Serving (see serving/README.md).
This stand-in implements what the project's client and tests use, with TF
Serving's status codes: PredictionService.Predict and GetModelMetadata, and
ModelService.GetModelStatus, for one model directory in TF Serving's layout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import signal
import threading
import time
from typing import Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving import limits
from serving import metrics as metrics_lib
from serving.metrics import RequestMetrics
from serving.model_store import LoadedVersion, ModelStore

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_MAX_BATCH = limits.MAX_BATCH_SIZE  # TF Serving's, from batching_parameters.txt.


class RequestError(Exception):
    """A request TF Serving would refuse: carries the gRPC code and message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def servable(store: ModelStore, spec: model_pb2.ModelSpec) -> LoadedVersion:
    """The version a ModelSpec asks for, or TF Serving's NOT_FOUND."""
    if not spec.name:  # model_servers/server_core.cc
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
    current = store.current if spec.name == store.name else None
    if spec.HasField("version"):
        if current is None or current.version != spec.version.value:
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Specific({spec.name}, "
                               f"{spec.version.value})")
    elif spec.version_label:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Unrecognized servable version label: {spec.version_label}")
    if current is None:
        raise RequestError(grpc.StatusCode.NOT_FOUND,
                           f"Servable not found for request: Latest({spec.name})")
    return current


def _type_name(dtype) -> str:
    """TensorFlow's DataTypeString: float, double, int64, ..."""
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(dtype).as_datatype_enum)[3:].lower()


def _check_input(name: str, index: int, value: np.ndarray, info, max_batch: int) -> None:
    expected = tf.dtypes.as_dtype(info.dtype)
    if tf.dtypes.as_dtype(value.dtype) != expected:  # The session's feed check.
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Expects arg[{index}] to be {_type_name(expected)} but "
                           f"{_type_name(value.dtype)} is provided")
    shape = tf.TensorShape(None if info.tensor_shape.unknown_rank else
                           [d.size if d.size >= 0 else None for d in info.tensor_shape.dim])
    if not shape.is_compatible_with(value.shape):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input '{name}' has shape {list(value.shape)}, the signature "
                           f"expects {shape}")
    if value.ndim and value.shape[0] > max_batch:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Task size {value.shape[0]} is larger than maximum input batch "
                           f"size {max_batch}")


def signature_of(served: LoadedVersion, spec: model_pb2.ModelSpec
                 ) -> tuple[str, meta_graph_pb2.SignatureDef]:
    """The signature a ModelSpec names (default: serving_default), or TF Serving's error."""
    name = spec.signature_name or DEFAULT_SIGNATURE
    if name not in served.signatures:  # servables/tensorflow/predict_util.cc
        raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"Serving signature key \"{name}\" not found.")
    return name, served.signature_defs[name]


def predict(store: ModelStore, request: predict_pb2.PredictRequest,
            max_batch: int = DEFAULT_MAX_BATCH) -> predict_pb2.PredictResponse:
    """Runs one PredictRequest the way TF Serving would (predict_util.cc, as all below), or
    raises RequestError."""
    served = servable(store, request.model_spec)
    name, signature_def = signature_of(served, request.model_spec)
    expected, given = sorted(signature_def.inputs), sorted(request.inputs)
    if len(given) != len(expected):
        def names(keys):
            return "{" + ",".join(keys) + "}"
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input size does not match signature: {len(given)}!={len(expected)} "
            f"len({names(given)}) != len({names(expected)}). Sent extra: "
            f"{names(sorted(set(given) - set(expected)))}. Missing but required: "
            f"{names(sorted(set(expected) - set(given)))}.")
    for key in given:
        if key not in signature_def.inputs:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input tensor alias not found in signature: {key}. Inputs "
                               f"expected to be in the set {{{','.join(expected)}}}.")
    inputs = {}
    for index, key in enumerate(expected):
        try:
            value = tf.make_ndarray(request.inputs[key])
        except (TypeError, ValueError) as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"tensor parsing error: {key}") from err
        _check_input(key, index, value, signature_def.inputs[key], max_batch)
        inputs[key] = tf.constant(value)
    outputs = set(request.output_filter) or set(signature_def.outputs)
    unknown = outputs - set(signature_def.outputs)
    if unknown:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"output tensor alias not found in signature: {sorted(unknown)}")
    try:
        results = served.signatures[name](**inputs)
    except tf.errors.InvalidArgumentError as err:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, err.message) from err
    response = predict_pb2.PredictResponse()
    response.model_spec.name = store.name
    response.model_spec.version.value = served.version
    response.model_spec.signature_name = name
    for key in outputs:
        response.outputs[key].CopyFrom(tf.make_tensor_proto(results[key].numpy()))
    return response


def model_metadata(store: ModelStore, request: get_model_metadata_pb2.GetModelMetadataRequest
                   ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    served = servable(store, request.model_spec)
    if list(request.metadata_field) != ["signature_def"]:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           "Metadata field(s) not supported: only signature_def")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = store.name
    response.model_spec.version.value = served.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in served.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata["signature_def"].Pack(signature_map)
    return response


def model_status(store: ModelStore, request: get_model_status_pb2.GetModelStatusRequest
                 ) -> get_model_status_pb2.GetModelStatusResponse:
    """Every version the store has handled, newest first, with its state (END after a swap or
    a failed load), as model_servers/get_model_status_impl.cc answers."""
    if not request.HasField("model_spec"):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    spec = request.model_spec
    states = dict(store.states) if spec.name == store.name else {}
    if spec.HasField("version"):
        if spec.version.value not in states:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"Could not find version "
                               f"{spec.version.value} of model {spec.name}")
        states = {spec.version.value: states[spec.version.value]}
    elif not states:
        raise RequestError(grpc.StatusCode.NOT_FOUND,
                           f"Could not find any versions of model {spec.name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in sorted(states, reverse=True):
        status = response.model_version_status.add(version=version, state=states[version].state)
        status.status.SetInParent()  # TF Serving always sets it: OK, or the load's error.
        if states[version].error:
            status.status.error_code = error_codes_pb2.UNKNOWN
            status.status.error_message = states[version].error
    return response


def _grpc_method(function, api: str = ""):
    """Adapts `function(store, request)` to a servicer method with TF Serving's error codes;
    an `api` (TF Serving's metric label, e.g. "Predict") is counted and timed."""

    def method(self, request, context):
        started, status = time.perf_counter(), "OK"
        try:
            return function(self.store, request, **self.options.get(function.__name__, {}))
        except RequestError as err:
            status = err.code.name
            context.abort(err.code, str(err))
        finally:
            if api and self.metrics:
                self.metrics.record(request.model_spec.name, api, "GRPC", status,
                                    time.perf_counter() - started)

    return method


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, store: ModelStore, max_batch: int, metrics: RequestMetrics | None):
        self.store, self.metrics = store, metrics
        self.options = {"predict": {"max_batch": max_batch}}

    Predict = _grpc_method(predict, "Predict")
    GetModelMetadata = _grpc_method(model_metadata)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, store: ModelStore):
        self.store, self.metrics = store, None
        self.options = {}

    GetModelStatus = _grpc_method(model_status)


def serve(store: ModelStore, port: int, max_batch: int = DEFAULT_MAX_BATCH,
          workers: int = 16, host: str = "[::]", metrics: RequestMetrics | None = None
          ) -> tuple[grpc.Server, int]:
    """Starts the gRPC server; returns it and the bound port (port 0 picks a free one)."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=workers))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(store, max_batch, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dcgan-serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-base-path", required=True,
                        help="<serving dir>/<model name>, holding numeric version directories")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--port", type=int, default=8500, help="gRPC (default: %(default)s)")
    parser.add_argument("--rest-port", type=int, default=8501,
                        help="TF Serving's REST API (default: %(default)s; 0: none)")
    parser.add_argument("--monitoring", action="store_true",
                        help=f"Prometheus metrics at REST {metrics_lib.PATH} (TF Serving's "
                             "--monitoring_config_file, serving/config/monitoring.config)")
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH,
                        help="rows per request, as TF Serving's batching config "
                             "(default: %(default)s, serving/config/batching_parameters.txt)")
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="how often to look for a new version (TF Serving's "
                             "--file_system_poll_wait_seconds)")
    parser.add_argument("--max-load-retries", type=int, default=5,
                        help="retries of a failed load (TF Serving's --max_num_load_retries)")
    parser.add_argument("--load-retry-interval-seconds", type=float, default=60.0,
                        help="between retries (TF Serving's --load_retry_interval_micros)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    store = ModelStore(args.model_name, args.model_base_path, args.poll_seconds,
                       args.max_load_retries, args.load_retry_interval_seconds).start()
    if store.current is None:
        # As TF Serving: the ports open once a version is available; until then clients
        # get UNAVAILABLE (nothing listens).
        logging.info("waiting for a version of %s in %s before listening", args.model_name,
                     args.model_base_path)
    if store.wait_for_a_version(stopped):
        from serving import rest  # pylint: disable=import-outside-toplevel  # rest imports this.
        metrics = metrics_lib.RequestMetrics() if args.monitoring else None
        server, port = serve(store, args.port, args.max_batch_size, metrics=metrics)
        rest_server = (rest.serve_rest(store, args.rest_port, args.max_batch_size, metrics)[0]
                       if args.rest_port else None)
        logging.info("dcgan-serve: model %s version %d on port %d (gRPC)%s", args.model_name,
                     store.current.version, port,
                     f" and {args.rest_port} (REST)" if rest_server else "")
        stopped.wait()
        if rest_server:
            rest_server.shutdown()
        server.stop(grace=5).wait()
    store.stop()


if __name__ == "__main__":
    main()
