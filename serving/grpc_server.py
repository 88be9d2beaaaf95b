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
