"""TF Serving's request metrics for `dcgan-serve`, under the names its Prometheus exporter gives
them (tensorflow_serving/servables/tensorflow/util.cc defines `/tensorflow/serving/request_count`
{model_name, status} and `/tensorflow/serving/request_latency` {model_name, API, entrypoint} in
microseconds, exponential buckets 10 x 1.8^i, 33 of them; util/prometheus_exporter.cc turns
every character outside [a-zA-Z0-9_] into ':')."""

from __future__ import annotations

import threading
from typing import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import Metric

PATH = "/monitoring/prometheus/metrics"  # serving/config/monitoring.config
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"


class _RequestCount:
    """A counter whose samples carry TF Serving's name as is (prometheus_client's Counter would
    add `_total`)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def inc(self, model_name: str, status: str) -> None:
        with self._lock:
            key = (model_name, status)
            self._counts[key] = self._counts.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        metric = Metric(REQUEST_COUNT, "The total number of requests.", "counter")
        with self._lock:
            for (model_name, status), count in sorted(self._counts.items()):
                metric.add_sample(REQUEST_COUNT, {"model_name": model_name, "status": status},
                                  count)
        yield metric


class RequestMetrics:
    """One server's request count and latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._count = _RequestCount()
        self.registry.register(self._count)
        self._latency = Histogram(
            REQUEST_LATENCY,
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], registry=self.registry,
            buckets=[10 * 1.8 ** i for i in range(33)])

    def record(self, model_name: str, api: str, entrypoint: str, status: str,
               seconds: float) -> None:
        """status: "OK" or the gRPC code's name, as TF Serving labels it."""
        self._count.inc(model_name, status)
        self._latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
