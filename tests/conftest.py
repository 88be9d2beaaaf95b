"""Test setup: two logical CPU devices (for the MirroredStrategy tests) and shared paths.

The logical devices must be configured before TensorFlow initializes its
runtime, hence here, at import time.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

MNIST_SLICE = os.path.join(os.path.dirname(__file__), "data", "mnist_slice")


@pytest.fixture
def mnist_slice() -> str:
    """1,000 official training and 500 official test digits, as IDX files."""
    return MNIST_SLICE
