"""Serving benchmark: gRPC through dcgan-serve against the in-process call of the same SavedModel.

Both are measured in this one process, one after the other, on the same model,
so the ratio is meaningful on a noisy machine. Prints p50/p99 latency for
count=1 and count=64, images/s under concurrency, and last:
`grpc_over_inprocess_p50: <x.xx>` (count=1).

    make bench-serving [MODEL_BASE_PATH=runs/local/serving/dcgan_mnist]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from pipeline.config import preset
from serving import client as client_lib
from serving.model_store import ModelStore, available_versions
from serving.server import serve
from trainer.export import export_generator
from trainer.models import build_generator

MODEL = "dcgan_mnist"


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples_ms, 50)), float(np.percentile(samples_ms, 99))


def timed(call, repeats: int) -> list[float]:
    call()  # Warm.
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def model_base(path: str | None) -> str:
    if path and available_versions(path):
        return path
    base = os.path.join(tempfile.mkdtemp(), MODEL)
    export_generator(build_generator(preset("default").trainer), os.path.join(base, "1"))
    print(f"no pushed model given; benchmarking an untrained default-preset generator in {base}")
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-base-path", default=os.environ.get("MODEL_BASE_PATH"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--concurrent-requests", type=int, default=1000)
    args = parser.parse_args()
    store = ModelStore(MODEL, model_base(args.model_base_path)).start()
    server, port = serve(store, 0, host="127.0.0.1")
    client = client_lib.GeneratorClient(f"127.0.0.1:{port}")
    signature = store.current.signatures["serving_default"]
    ratios = {}
    for count in (1, 64):
        request = client_lib.build_request(MODEL, count, seed=0)
        z = tf.constant(tf.make_ndarray(request.inputs["z"]))
        inproc = percentiles(timed(lambda: signature(z=z), args.repeats))
        grpc_ = percentiles(timed(lambda: client.predict(request), args.repeats))
        ratios[count] = grpc_[0] / inproc[0]
        print(f"count={count:3d}  in-process p50 {inproc[0]:7.2f} ms  p99 {inproc[1]:7.2f} ms | "
              f"gRPC p50 {grpc_[0]:7.2f} ms  p99 {grpc_[1]:7.2f} ms | p50 ratio {ratios[count]:.2f}")
    request = client_lib.build_request(MODEL, 16, seed=0)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(lambda _: client.predict(request), range(args.concurrent_requests)))
    elapsed = time.perf_counter() - started
    print(f"{args.concurrency} concurrent clients, {args.concurrent_requests} requests of 16: "
          f"{args.concurrent_requests * 16 / elapsed:.0f} images/s")
    client.close()
    server.stop(None)
    store.stop()
    print(f"grpc_over_inprocess_p50: {ratios[1]:.2f}")


if __name__ == "__main__":
    main()
