"""The config's 'auto' settings made concrete for the machine the Trainer runs on.

Resolved where the model is built, after the strategy: listing devices starts the
TensorFlow runtime, which MultiWorkerMirroredStrategy must configure first.
"""

from __future__ import annotations

import re

import tensorflow as tf

from dcgan_common.config import TrainerConfig

CPU_INFO = "/proc/cpuinfo"


def cpu_has_native_bfloat16(cpu_info: str = CPU_INFO) -> bool:
    """AVX512_BF16 or AMX: oneDNN runs bfloat16 convolutions in hardware (Linux only)."""
    try:
        with open(cpu_info) as f:
            return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", f.read()))
    except OSError:
        return False


def has_accelerator() -> bool:
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def resolve(config: TrainerConfig) -> TrainerConfig:
    """mixed_precision 'auto': mixed_bfloat16 on a CPU-only host whose CPU computes bfloat16
    natively, else float32 (GPUs: choose mixed_float16 explicitly; not measured here).
    filter_gradient 'auto': forward_conv on a CPU-only host, else native."""
    on_cpu = not has_accelerator()
    precision, filter_gradient = config.runtime.mixed_precision, config.runtime.filter_gradient
    if precision == "auto":
        precision = "mixed_bfloat16" if on_cpu and cpu_has_native_bfloat16() else "float32"
    if filter_gradient == "auto":
        filter_gradient = "forward_conv" if on_cpu else "native"
    return config.replace(runtime={"mixed_precision": precision,
                                   "filter_gradient": filter_gradient})
