"""`dcgan-generate`: asks a TF Serving endpoint for digits over gRPC and writes PNGs.

Uses the official stubs from tensorflow-serving-api, so it talks to TensorFlow Serving and to
`dcgan-serve` alike. It reads the model's inputs (z's size, whether it takes a `label`) from
GetModelMetadata, and splits a `--count` above the server's batch limit into several requests.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving import limits
from dcgan_common import images as image_utils

SIGNATURES = ("serving_default", "generate")
MAX_COUNT = 4096


class GenerateError(Exception):
    """A request failed; the message says why in words a user can act on."""


def request_inputs(count: int, seed: int, z_dim: int, signature: str = "serving_default",
                   labels: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """`serving_default`: z ~ N(0, 1) from `seed`; `generate`: seeds seed, seed+1, ...

    `labels` (a conditional model's digits) are cycled over the `count` samples.
    """
    if signature == "generate":
        inputs = {"seed": np.arange(seed, seed + count, dtype=np.int64)}
    else:
        inputs = {"z": np.random.default_rng(seed).standard_normal((count, z_dim))
                  .astype(np.float32)}
    if labels:
        inputs["label"] = np.resize(np.asarray(labels, np.int64), count)
    return inputs


def build_request(model: str, count: int, seed: int, z_dim: int,
                  signature: str = "serving_default", version: int | None = None,
                  labels: Sequence[int] | None = None) -> predict_pb2.PredictRequest:
    """One PredictRequest for `count` digits (see request_inputs)."""
    return _request(model, signature, version,
                    request_inputs(count, seed, z_dim, signature, labels))


def _request(model: str, signature: str, version: int | None,
             inputs: dict[str, np.ndarray]) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.append("images")
    return request


class GeneratorClient:
    """A channel to one server; `generate` returns uint8 images [N, 28, 28, 1]."""

    def __init__(self, server: str, timeout: float = 30.0,
                 max_batch: int = limits.MAX_BATCH_SIZE):
        self.server = server
        self.timeout = timeout
        self.max_batch = max_batch
        self.channel = grpc.insecure_channel(server)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        return self._call(self.stub.Predict, request)

    def signature_inputs(self, model: str, signature: str, version: int | None = None
                         ) -> dict[str, object]:
        """The signature's inputs (TensorInfo by name), from GetModelMetadata."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = model
        if version is not None:
            request.model_spec.version.value = version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        self._call(self.stub.GetModelMetadata, request).metadata["signature_def"].Unpack(
            signatures)
        if signature not in signatures.signature_def:
            raise GenerateError(f"model {model} has no signature {signature!r} (it has: "
                                f"{', '.join(sorted(signatures.signature_def))})")
        return dict(signatures.signature_def[signature].inputs)

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            code = err.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                raise GenerateError(f"server {self.server} is unreachable ({err.details()})") from err
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise GenerateError(f"no answer from {self.server} within {self.timeout} s") from err
            if code == grpc.StatusCode.NOT_FOUND:
                raise GenerateError(f"unknown model or version on {self.server}: "
                                    f"{err.details()}") from err
            raise GenerateError(f"{code.name}: {err.details()}") from err

    def generate(self, model: str, count: int, seed: int = 0, signature: str = "serving_default",
                 version: int | None = None, labels: Sequence[int] | None = None
                 ) -> tuple[np.ndarray, list[int]]:
        """Returns (images, the served version of each request). A conditional model without
        `labels` draws the digits 0-9 in turn."""
        inputs = self.signature_inputs(model, signature, version)
        conditional = "label" in inputs
        if labels and not conditional:
            raise GenerateError(f"model {model} takes no digit (no `label` input): drop "
                                "--digit/--digits")
        z_dim = inputs["z"].tensor_shape.dim[-1].size if "z" in inputs else 0
        values = request_inputs(count, seed, z_dim, signature,
                                list(labels or range(10)) if conditional else None)
        images, versions = [], []
        for start in range(0, count, self.max_batch):
            chunk = {name: value[start:start + self.max_batch] for name, value in values.items()}
            response = self.predict(_request(model, signature, version, chunk))
            images.append(tf.make_ndarray(response.outputs["images"]))
            versions.append(response.model_spec.version.value)
        return np.concatenate(images), versions

    def close(self) -> None:
        self.channel.close()


def write_outputs(images: np.ndarray, out: str | None, out_dir: str | None) -> list[str]:
    paths = []
    if out:
        image_utils.write_png(image_utils.tile(tf.constant(images)), os.path.abspath(out))
        paths.append(out)
    if out_dir:
        for index, image in enumerate(images):
            path = os.path.join(os.path.abspath(out_dir), f"digit_{index:04d}.png")
            image_utils.write_png(tf.constant(image), path)
            paths.append(path)
    return paths


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcgan-generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="localhost:8500", help="host:port of the gRPC endpoint")
    parser.add_argument("--model", default="dcgan_mnist")
    parser.add_argument("--count", type=int, default=64,
                        help=f"digits, 1-{MAX_COUNT}, sent in requests of at most --max-batch")
    parser.add_argument("--max-batch", type=int, default=limits.MAX_BATCH_SIZE,
                        help="rows per request: the server's max_batch_size (default: "
                             "%(default)s, serving/config/batching_parameters.txt)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--signature", default="serving_default", choices=SIGNATURES)
    parser.add_argument("--version", type=int, help="a specific model version (default: latest)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default: %(default)s)")
    parser.add_argument("--out", help="write one grid PNG here")
    parser.add_argument("--out-dir", help="write one PNG per digit into this directory")
    digits = parser.add_mutually_exclusive_group()
    digits.add_argument("--digit", type=int, help="a conditional model: this digit (0-9) only")
    digits.add_argument("--digits", help="a conditional model: these digits in turn, e.g. "
                                         "0123456789")
    args = parser.parse_args(argv)
    if args.digit is not None and not 0 <= args.digit <= 9:
        parser.error(f"--digit must be 0-9, got {args.digit}")
    if args.digits is not None and not (args.digits.isdigit()):
        parser.error(f"--digits must be digits 0-9, e.g. 0123456789, got {args.digits!r}")
    args.labels = ([args.digit] if args.digit is not None else
                   [int(c) for c in args.digits] if args.digits else None)
    if not 1 <= args.count <= MAX_COUNT:
        parser.error(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if args.max_batch < 1:
        parser.error(f"--max-batch must be positive, got {args.max_batch}")
    if not (args.out or args.out_dir):
        parser.error("give --out grid.png and/or --out-dir DIR")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    client = GeneratorClient(args.server, args.timeout, args.max_batch)
    started = time.perf_counter()
    try:
        images, versions = client.generate(args.model, args.count, args.seed, args.signature,
                                           args.version, args.labels)
    except GenerateError as err:
        print(f"dcgan-generate: {err}", file=sys.stderr)
        return 1
    finally:
        client.close()
    latency_ms = (time.perf_counter() - started) * 1000
    paths = write_outputs(images, args.out, args.out_dir)
    served = ", ".join(str(v) for v in sorted(set(versions)))
    print(f"{len(images)} digits from {args.model} version {served} in {len(versions)} "
          f"request(s), {latency_ms:.1f} ms; wrote {paths[0]}" +
          (f" and {len(paths) - 1} more" if len(paths) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
