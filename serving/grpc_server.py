"""The gRPC front end: TF Serving's PredictionService and ModelService on serving/api.py."""

from __future__ import annotations

import concurrent.futures
import time

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.api import DEFAULT_MAX_BATCH, RequestError, model_metadata, model_status, predict
from serving.metrics import RequestMetrics
from serving.model_store import ModelStore


def _grpc_method(function, api: str = ""):
    """Adapts `function(store, request)` to a servicer method with TF Serving's error codes;
    an `api` (TF Serving's metric label, "Predict") is counted and timed
    (model_servers/prediction_service_impl.cc)."""

    def method(self, request, context):
        started, status = time.perf_counter(), "OK"
        try:
            return function(self.store, request, **self.options.get(function.__name__, {}))
        except RequestError as err:
            status = err.code.name
            context.abort(err.code, str(err))
        except Exception:  # gRPC answers UNKNOWN with the exception's text; counted so.
            status = grpc.StatusCode.UNKNOWN.name
            raise
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


class PortInUse(OSError):
    """The port is held by another process."""


def serve(store: ModelStore, port: int, max_batch: int = DEFAULT_MAX_BATCH,
          workers: int = 16, host: str = "[::]", metrics: RequestMetrics | None = None
          ) -> tuple[grpc.Server, int]:
    """Starts the gRPC server; returns it and the bound port (port 0 picks a free one).

    gRPC's default SO_REUSEPORT would let a second server bind the same port and take half of
    the clients (to a possibly different model); here a port has one owner, and a second
    server is refused (PortInUse)."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(store, max_batch, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), server)
    in_use = f"Failed to BuildAndStart gRPC server: port {port} is in use by another process"
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as err:  # grpcio raises it when the bind fails.
        raise PortInUse(in_use) from err
    if not bound:  # Older grpcio: 0 instead of an exception.
        raise PortInUse(in_use)
    server.start()
    return server, bound
