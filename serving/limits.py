"""The one request-size limit, read from TF Serving's own batching configuration.

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
