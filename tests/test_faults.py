"""Faults of a real run: `dcgan-pipeline` killed with kill -9 during the Trainer, then run
again. The metadata store must not keep claiming the dead execution runs, the rerun must end
with exactly one complete version, and its summary must say which run it describes."""

import dataclasses
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dcgan_common.config import preset
from pipeline.metadata import State, executions_by_node
from pipeline_helpers import pushed_versions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(output_dir: str, mnist_dir: str) -> list[str]:
    # Enough Trainer steps for the kill to land inside it.
    return [sys.executable, "-m", "pipeline.console", "--preset", "smoke", "--mnist-dir",
            mnist_dir, "--output-dir", output_dir, "--train-steps", "400",
            "--mixed-precision", "float32"]


def wait_for_log_line(output_dir: str, text: str, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in glob.glob(os.path.join(output_dir, "logs", "*.log")):
            with open(path, encoding="utf-8", errors="replace") as f:
                if text in f.read():
                    return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in the log")


def test_a_run_killed_during_the_trainer_is_marked_abandoned_by_the_rerun(tmp_path,
                                                                         mnist_slice):
    output_dir = str(tmp_path)
    config = dataclasses.replace(preset("smoke"), output_dir=output_dir)
    killed = subprocess.Popen(command(output_dir, mnist_slice), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_log_line(output_dir, "step 5/400")  # The Trainer is training.
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (trainer,) = executions_by_node(config)["Trainer"]
    assert trainer.last_known_state == State.RUNNING  # What the store believed before.

    rerun = subprocess.run(command(output_dir, mnist_slice), cwd=ROOT, capture_output=True,
                           text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"taking over {output_dir}" in rerun.stdout  # The dead run's lock.
    executions = executions_by_node(config)
    states = {node: [State.Name(e.last_known_state) for e in runs]
              for node, runs in executions.items()}
    assert not any("RUNNING" in runs or "NEW" in runs for runs in states.values()), states
    old = next(e for e in executions["Trainer"] if e.id == trainer.id)
    assert old.last_known_state == State.FAILED
    assert "its process ended before it did" in old.custom_properties["abandoned"].string_value
    assert executions["Trainer"][-1].last_known_state == State.COMPLETE
    assert len(pushed_versions(config)) == 1
    with open(os.path.join(output_dir, "run_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["run"]["abandoned_executions"] == [trainer.id]
    assert summary["run"]["pid"] != killed.pid and summary["run"]["pipeline_run_id"]


def published(output_dir: str) -> list[str]:
    base = os.path.join(output_dir, "serving", "dcgan_mnist")
    return sorted(name for name in os.listdir(base) if name.isdigit()) \
        if os.path.isdir(base) else []


def smoke_command(output_dir: str, mnist_dir: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.console", "--preset", "smoke", "--mnist-dir",
            mnist_dir, "--output-dir", output_dir, "--mixed-precision", "float32"]


@pytest.mark.parametrize("point, visible_after_crash", [("staged", 0), ("published", 1)])
def test_a_pusher_killed_at_a_fault_point_leaves_one_complete_version_after_the_rerun(
        tmp_path, mnist_slice, point, visible_after_crash):
    """kill -9 inside the Pusher (atomic_pusher's fault points): after the copy into staging,
    nothing is visible; after the rename, the version is, and the metadata store does not know.
    The rerun (every other component cached) ends with exactly one complete version."""
    output_dir = str(tmp_path)
    crashed = subprocess.run(smoke_command(output_dir, mnist_slice), cwd=ROOT,
                             capture_output=True, text=True, timeout=900,
                             env={**os.environ, "DCGAN_PUSHER_FAULT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    assert len(published(output_dir)) == visible_after_crash
    rerun = subprocess.run(smoke_command(output_dir, mnist_slice), cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    versions = published(output_dir)
    assert len(versions) == 1
    version_dir = os.path.join(output_dir, "serving", "dcgan_mnist", versions[0])
    assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
    staging = os.path.join(output_dir, "serving", ".staging-dcgan_mnist")
    assert not os.path.exists(staging) or os.listdir(staging) == []  # Nothing partial left.
    with open(os.path.join(output_dir, "run_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["pushed"] and summary["pushed_version"] == versions[0]


def test_a_run_killed_between_the_evaluator_and_the_pusher_pushes_once_on_rerun(
        tmp_path, mnist_slice):
    output_dir = str(tmp_path)
    killed = subprocess.Popen(smoke_command(output_dir, mnist_slice), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_log_line(output_dir, "Component SampleQualityEvaluator is finished")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    rerun = subprocess.run(smoke_command(output_dir, mnist_slice), cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(published(output_dir)) == 1
