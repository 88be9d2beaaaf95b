"""The request-size limits: the batch size, read from TF Serving's own batching configuration,
and the REST body's size.

`serving/config/batching_parameters.txt` is what production TF Serving runs with
(`--enable_batching --batching_parameters_file`); it refuses a request of more rows than its
`max_batch_size`. `dcgan-serve` refuses the same requests and `dcgan-generate` splits a larger
`--count` into requests of at most this many rows, both by default from this file.
"""

from __future__ import annotations

import os
import re

BATCHING_PARAMETERS = os.path.join(os.path.dirname(__file__), "config", "batching_parameters.txt")
_MAX_BATCH_SIZE = re.compile(r"^max_batch_size\s*\{\s*value:\s*(\d+)\s*\}", re.M)


def max_batch_size(path: str = BATCHING_PARAMETERS) -> int:
    """`max_batch_size` of a BatchingParameters text proto."""
    with open(path, encoding="utf-8") as f:
        found = _MAX_BATCH_SIZE.search(f.read())
    if not found:
        raise ValueError(f"{path}: no `max_batch_size {{ value: N }}`")
    return int(found.group(1))


MAX_BATCH_SIZE = max_batch_size()

# dcgan-serve's own bounds on a REST request, where TF Serving's evhttp server sets none: a body
# is read whole before its JSON says how many rows it has, so its size is bounded first. 64 rows
# of noise take about 150 KB of JSON; the bound leaves room for whitespace, not for abuse.
MAX_REST_BODY_BYTES = 16 * 2 ** 20
REST_READ_TIMEOUT_SECONDS = 30.0  # TF Serving's --rest_api_timeout_in_ms default.
