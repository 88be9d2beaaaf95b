"""A served generator for the serving tests: a small one exported and pushed as the Pusher does,
and dcgan-serve's gRPC and REST front ends on loopback."""

import contextlib
import os
import socket
import subprocess
import sys

import grpc
import keras
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import rest
from serving.grpc_server import serve
from serving.metrics import RequestMetrics
from serving.model_store import ModelStore
from settings import trainer_config
from trainer.export import export_generator
from trainer.models import build_generator

MODEL = "dcgan_mnist"
MAX_BATCH = 64
DCGAN_SERVE = os.path.join(os.path.dirname(sys.executable), "dcgan-serve")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push(base: str, version: int, seed: int) -> None:
    """Exports a generator and publishes it as <base>/<version> with one rename."""
    keras.utils.set_random_seed(seed)
    staging = os.path.join(os.path.dirname(base), f".staging-{version}")
    export_generator(build_generator(trainer_config(generator_filters=(16, 8))), staging)
    os.makedirs(base, exist_ok=True)
    os.rename(staging, os.path.join(base, str(version)))


@contextlib.contextmanager
def serving(base: str, poll_seconds: float = 0.2):
    """A ModelStore on `base` behind both front ends, with metrics: a dict of what the tests
    use (the store, the metrics, the ports, the stubs, the REST URL)."""
    store = ModelStore(MODEL, base, poll_seconds=poll_seconds).start()
    metrics = RequestMetrics()
    grpc_server, port = serve(store, 0, max_batch=MAX_BATCH, host="127.0.0.1", metrics=metrics)
    rest_server, rest_port = rest.serve_rest(store, 0, MAX_BATCH, metrics, host="127.0.0.1")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield {"base": base, "port": port, "store": store, "metrics": metrics,
               "rest": f"http://127.0.0.1:{rest_port}", "rest_port": rest_port,
               "predict": prediction_service_pb2_grpc.PredictionServiceStub(channel),
               "models": model_service_pb2_grpc.ModelServiceStub(channel)}
    finally:
        channel.close()
        rest_server.shutdown()
        grpc_server.stop(None)
        store.stop()


def start_dcgan_serve(base: str, *args: str) -> subprocess.Popen:
    """dcgan-serve as a user starts it, its log on stdout (text)."""
    return subprocess.Popen([DCGAN_SERVE, "--model-base-path", base, "--model-name", MODEL,
                             "--poll-seconds", "0.2", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
