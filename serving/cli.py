"""The console entry points of serving/ (`dcgan-generate`, `dcgan-serve`), and the start-up
quieting they share with `dcgan-kfp`.

On import, TensorFlow prints a dozen C++ lines (CUDA factory registration, oneDNN, CPU flags)
and Google's client libraries print FutureWarnings about Python and grpcio versions; none of
them says anything about the command's work. They are hidden unless TF_CPP_MIN_LOG_LEVEL is set
by the caller. This must happen before TensorFlow is imported, hence these small entry points.
"""

import os
import warnings


def quiet_startup(tf_log_level: str) -> None:
    """tf_log_level: TF_CPP_MIN_LOG_LEVEL, "2" (errors) or "3" (none: the CUDA factory lines are
    logged as errors on every CPU-only import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_log_level)
    for module in (r"google\.", r"kfp\."):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)


def generate() -> int:
    quiet_startup("3")  # A client: its errors come back as gRPC status, not TF logs.
    from serving import client  # pylint: disable=import-outside-toplevel
    return client.main()


def serve() -> None:
    quiet_startup("2")  # A server: TensorFlow's own errors stay in its log.
    from serving import server  # pylint: disable=import-outside-toplevel
    server.main()
