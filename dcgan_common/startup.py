"""Quiet start-up for the console commands (`dcgan-serve`, `dcgan-generate`, `dcgan-kfp`).

On import, TensorFlow prints a dozen C++ lines (CUDA factory registration, oneDNN, CPU flags)
and Google's client libraries print FutureWarnings about Python and grpcio versions; none of
them says anything about the command's work. They are hidden unless TF_CPP_MIN_LOG_LEVEL is set
by the caller. This must happen before TensorFlow is imported, hence small entry points that
call this first.
"""

import os
import warnings


def quiet_startup(tf_log_level: str) -> None:
    """tf_log_level: TF_CPP_MIN_LOG_LEVEL, "2" (errors) or "3" (none: the CUDA factory lines are
    logged as errors on every CPU-only import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_log_level)
    for module in (r"google\.", r"kfp\."):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
