"""Serving benchmark: gRPC and REST through dcgan-serve against the in-process call of the same
SavedModel.

All are measured in this one process, one after the other, on the same model, so the ratios are
meaningful on a noisy machine. Prints p50/p99 latency for count=1 and count=64, images/s under
concurrency for each protocol, and last: `grpc_over_inprocess_p50: <x.xx>` (count=1).

    make bench-serving [MODEL_BASE_PATH=runs/local/serving/dcgan_mnist]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import tempfile
import time
import urllib.request

import numpy as np
import tensorflow as tf

from bench.provenance import provenance
from dcgan_common.config import preset
from serving import client as client_lib
from serving import limits, rest
from dcgan_common.layout import available_versions
from serving.model_store import ModelStore
from serving.grpc_server import serve
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-base-path", default=os.environ.get("MODEL_BASE_PATH"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--concurrent-requests", type=int, default=1000)
    parser.add_argument("--report", help="write the report (JSON) here")
    args = parser.parse_args(argv)
    header = provenance("bench.bench_serving")
    store = ModelStore(MODEL, model_base(args.model_base_path)).start()
    server, port = serve(store, 0, host="127.0.0.1")
    rest_server, rest_port = rest.serve_rest(store, 0, limits.MAX_BATCH_SIZE, host="127.0.0.1")
    predict_url = f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}:predict"
    client = client_lib.GeneratorClient(f"127.0.0.1:{port}")
    signature = store.current.signatures["serving_default"]
    z_dim = signature.structured_input_signature[1]["z"].shape[-1]

    def calls(count: int):
        request = client_lib.build_request(MODEL, count, seed=0, z_dim=z_dim)
        z = tf.make_ndarray(request.inputs["z"])
        body = json.dumps({"instances": z.tolist()}).encode()
        return {"in-process": lambda: signature(z=tf.constant(z)),
                "gRPC": lambda: client.predict(request),
                "REST": lambda: urllib.request.urlopen(predict_url, body, timeout=60).read()}

    ratios, latencies, throughput = {}, {}, {}
    for count in (1, 64):
        p50 = {}
        for name, call in calls(count).items():
            p50[name], p99 = percentiles(timed(call, args.repeats))
            latencies[f"{name} count={count}"] = {"p50_ms": p50[name], "p99_ms": p99}
            print(f"count={count:3d}  {name:10s} p50 {p50[name]:7.2f} ms  p99 {p99:7.2f} ms  "
                  f"p50 / in-process {p50[name] / p50['in-process']:.2f}")
        ratios[count] = p50["gRPC"] / p50["in-process"]
    for name, call in calls(16).items():
        if name == "in-process":
            continue
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda _: call(), range(args.concurrent_requests)))
        elapsed = time.perf_counter() - started
        throughput[name] = args.concurrent_requests * 16 / elapsed
        print(f"{name}: {args.concurrency} concurrent clients, {args.concurrent_requests} requests "
              f"of 16: {args.concurrent_requests * 16 / elapsed:.0f} images/s")
    client.close()
    rest_server.shutdown()
    server.stop(None)
    store.stop()
    report = {**header, "model": "an untrained `default` generator" if not args.model_base_path
              else args.model_base_path, "repeats": args.repeats,
              "concurrency": args.concurrency, "latency": latencies,
              "images_per_second_at_concurrency_count16": throughput,
              "grpc_over_inprocess_p50": {str(count): ratio for count, ratio in ratios.items()}}
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"report: {args.report}")
    print(f"grpc_over_inprocess_p50: {ratios[1]:.2f}")
    return report


if __name__ == "__main__":
    main()
