"""Test setup: two logical CPU devices (for the MirroredStrategy tests) and shared paths.

The logical devices must be configured before TensorFlow initializes its
runtime, hence here, at import time.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline import local_runner  # noqa: E402
from pipeline.metadata import executions_by_node
from pipeline_helpers import pushed_versions, smoke_config  # noqa: E402
from serving_helpers import MODEL, push, serving  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

MNIST_SLICE = os.path.join(os.path.dirname(__file__), "data", "mnist_slice")


@pytest.fixture
def mnist_slice() -> str:
    """1,000 official training and 500 official test digits, as IDX files."""
    return MNIST_SLICE


@pytest.fixture(scope="session")
def e2e(tmp_path_factory):
    """The smoke pipeline on the slice, run twice with unchanged inputs; MLMD after each run."""
    config = smoke_config(MNIST_SLICE, tmp_path_factory.mktemp("e2e"))
    first = local_runner.run(config)
    after_first = executions_by_node(config)
    versions_after_first = pushed_versions(config)
    second = local_runner.run(config)
    return {"config": config, "first": first, "second": second, "after_first": after_first,
            "after_second": executions_by_node(config),
            "versions_after_first": versions_after_first}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One small generator pushed as version 1 and served by dcgan-serve's gRPC and REST front
    ends on loopback, per test module (serving_helpers.serving says what it holds)."""
    base = str(tmp_path_factory.mktemp("serving") / MODEL)
    push(base, 1, seed=1)
    with serving(base) as served:
        yield served
