"""A process that pushes one model twice, a second apart, to an s3:// destination through the
project's Pusher executor, and a leftover in staging first.

    python tests/s3_push_worker.py S3_BASE LOCAL_TMP   (S3 endpoint and keys from the env)

Prints one JSON line: the versions published, the two pushes' recorded versions, and whether
the staging leftover is gone. It touches s3:// through tensorflow-io, so it ends with
dcgan_kfp.entrypoint.exit_now.
"""

import json
import os
import pathlib
import sys
import time

import tensorflow as tf

from components import atomic_pusher
from dcgan_common.layout import available_versions
from dcgan_kfp import entrypoint
from test_atomic_pusher import exported_model, push


def main(base: str, local_tmp: str) -> None:
    entrypoint.register_object_stores()
    local = pathlib.Path(local_tmp)
    leftover = os.path.join(atomic_pusher.staging_dir(base), "1700000000", "variables", "half")
    with tf.io.gfile.GFile(leftover, "w") as f:
        f.write("half-written")
    model = exported_model(local / "model", seed=0)
    first = push(model, base, local / "first")
    time.sleep(1.1)  # Versions are Unix seconds.
    second = push(model, base, local / "second")
    print(json.dumps({
        "versions": available_versions(base),
        "recorded": [p.get_string_custom_property("pushed_version") for p in (first, second)],
        "leftover_gone": not tf.io.gfile.exists(leftover)}), flush=True)


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    except BaseException:  # pylint: disable=broad-except
        import traceback  # pylint: disable=import-outside-toplevel
        traceback.print_exc()
        entrypoint.exit_now(1)
    entrypoint.exit_now(0)
