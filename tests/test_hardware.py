"""trainer/hardware.py: what 'auto' means on the machine the Trainer runs on."""

import pytest


from trainer import hardware
from settings import trainer_config

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra} avx512_vnni\n"


@pytest.mark.parametrize("extra, native", [("avx512_bf16", True), ("amx_bf16 amx_tile", True),
                                           ("", False), ("avx512_bf16x", False)])
def test_native_bfloat16_is_read_off_the_cpu_flags(tmp_path, extra, native):
    cpu_info = tmp_path / "cpuinfo"
    cpu_info.write_text(FLAGS.format(extra=extra))
    assert hardware.cpu_has_native_bfloat16(str(cpu_info)) == native
    assert not hardware.cpu_has_native_bfloat16(str(tmp_path / "missing"))


@pytest.mark.parametrize("accelerator, bfloat16, precision, filter_gradient", [
    (False, True, "mixed_bfloat16", "forward_conv"),
    (False, False, "float32", "forward_conv"),
    (True, True, "float32", "native"),
])
def test_auto_resolves_by_hardware(monkeypatch, accelerator, bfloat16, precision,
                                   filter_gradient):
    monkeypatch.setattr(hardware, "has_accelerator", lambda: accelerator)
    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: bfloat16)
    resolved = hardware.resolve(trainer_config())
    assert (resolved.runtime.mixed_precision, resolved.runtime.filter_gradient) == (precision, filter_gradient)
    # Explicit settings are kept.
    explicit = trainer_config(mixed_precision="mixed_float16", filter_gradient="native")
    assert hardware.resolve(explicit) == explicit


@pytest.mark.parametrize("devices, expected", [
    ({"GPU": ["/device:GPU:0"]}, True),   # A GPU host.
    ({"TPU": ["/device:TPU:0"]}, True),   # A TPU VM.
    ({}, False),                          # CPU only.
])
def test_accelerators_are_read_off_the_logical_devices(monkeypatch, devices, expected):
    import tensorflow as tf
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [
        tf.config.LogicalDevice(name, kind) for name in devices.get(kind, [])])
    assert hardware.has_accelerator() == expected
