"""TF Serving's request metrics for `dcgan-serve`, counted and printed as TF Serving 2.16.1 does:

- servables/tensorflow/util.cc defines `/tensorflow/serving/request_count` {model_name, status}
  and `/tensorflow/serving/request_latency` {model_name, API, entrypoint}, microseconds, in
  exponential buckets 10 x 1.8^i, 33 of them, and a last one to infinity;
- model_servers/prediction_service_impl.cc counts every gRPC Predict and times the OK ones
  (GetModelMetadata and GetModelStatus are not counted); model_servers/http_server.cc counts
  every REST request under /v1/ (status and metadata GETs too, with the model name it parsed)
  and times the OK ones, labelled with the REST method ("predict"; "" for a GET);
- util/prometheus_exporter.cc prints them: every character outside [a-zA-Z0-9_] of a name
  becomes ':', a `# TYPE` line per metric and no `# HELP`, bucket bounds and the sum as
  absl::StrCat prints a double (six significant digits: `le="10"`, `le="18"`), `+Inf` last.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading

PATH = "/monitoring/prometheus/metrics"  # serving/config/monitoring.config
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LATENCY_BOUNDS = [10 * 1.8 ** i for i in range(33)]  # Buckets::Exponential(10, 1.8, 33)


def _double(value: float) -> str:
    """absl::StrCat of a double."""
    return f"{value:.6g}"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclasses.dataclass
class _Histogram:
    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    total: float = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_right(LATENCY_BOUNDS, value)] += 1  # Bucket i: value < bound.
        self.total += value


class RequestMetrics:
    """One server's request count and latency."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._latency: dict[tuple[str, str, str], _Histogram] = {}
        self._lock = threading.Lock()

    def record(self, model_name: str, api: str, entrypoint: str, status: str,
               seconds: float) -> None:
        """One request: counted under its status ("OK" or the gRPC code's name), and its
        latency kept if it succeeded."""
        with self._lock:
            key = (model_name, status)
            self._counts[key] = self._counts.get(key, 0) + 1
            if status == "OK":
                self._latency.setdefault((model_name, api, entrypoint), _Histogram()).add(
                    seconds * 1e6)

    def exposition(self) -> bytes:
        """The Prometheus page, line for line as PrometheusExporter::GeneratePage writes it."""
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        with self._lock:
            for (model, status), count in sorted(self._counts.items()):
                lines.append(f'{REQUEST_COUNT}{{model_name="{_label(model)}",'
                             f'status="{_label(status)}"}} {count}')
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), histogram in sorted(self._latency.items()):
                labels = (f'model_name="{_label(model)}",API="{_label(api)}",'
                          f'entrypoint="{_label(entrypoint)}"')
                cumulative = 0
                for index, count in enumerate(histogram.counts):
                    cumulative += count
                    bound = (_double(LATENCY_BOUNDS[index]) if index < len(LATENCY_BOUNDS)
                             else "+Inf")
                    lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="{bound}"}} '
                                 f"{cumulative}")
                lines.append(f"{REQUEST_LATENCY}_sum{{{labels}}} {_double(histogram.total)}")
                lines.append(f"{REQUEST_LATENCY}_count{{{labels}}} {cumulative}")
        return ("\n".join(lines) + "\n").encode()
