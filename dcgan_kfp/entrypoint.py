"""The command every compiled task runs: TFX's Kubeflow V2 executor entrypoint, with object
stores registered for tf.io.gfile and an exit status that is the task's own.

- `import tensorflow_io` registers `s3://` (and `hdfs://`) with tf.io.gfile; TF 2.16 itself
  reads gs:// only (tensorflow-io-gcs-filesystem).
- A process that touched s3:// through tensorflow-io 0.37.1 (the last release for TF 2.16)
  aborts at exit ("pure virtual method called", exit code 134; tensorflow/io#2039, open), so a
  finished task would look failed to Kubeflow. The process therefore ends with `os._exit` and
  the executor's own status, before static destructors run.

    python -m dcgan_kfp.entrypoint --executor_class_path ... --json_serialized_invocation_args ...
"""

from __future__ import annotations

import os
import sys
import traceback

TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
ENTRYPOINT = "dcgan_kfp.entrypoint"


def register_object_stores() -> None:
    import tensorflow_io  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import


def exit_now(status: int) -> None:
    """Ends the process with `status`, skipping the interpreter's teardown (see above)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # pylint: disable=protected-access


def run(argv: list[str]) -> int:
    """TFX's executor entrypoint on `argv` (without the program name); its exit status."""
    from absl import app  # pylint: disable=import-outside-toplevel
    from tfx.orchestration.kubeflow.v2.container import (  # pylint: disable=import-outside-toplevel
        kubeflow_v2_run_executor as tfx_entrypoint)
    register_object_stores()
    try:
        app.run(tfx_entrypoint.main, argv=[TFX_ENTRYPOINT, *argv],
                flags_parser=tfx_entrypoint._parse_flags)  # pylint: disable=protected-access
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    exit_now(run(sys.argv[1:]))
