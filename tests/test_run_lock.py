"""One run per output directory: a live holder refuses a second run in one line, a dead one's
lock is taken over, and two real `dcgan-pipeline` runs started together publish one version."""

import json
import os
import signal
import subprocess
import sys

import pytest

from pipeline.run_lock import LOCK_FILE, OutputDirLocked, RunLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A process that holds the lock on argv[1] and says so, then sleeps until killed.
HOLDER = ("import sys, time\n"
          "from pipeline.run_lock import RunLock\n"
          "with RunLock(sys.argv[1]):\n"
          "    print('held', flush=True)\n"
          "    time.sleep(600)\n")


def start_holder(output_dir: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, output_dir], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_live_holder_refuses_a_second_lock_naming_its_pid(tmp_path):
    holder = start_holder(str(tmp_path))
    try:
        with pytest.raises(OutputDirLocked, match=f"pid {holder.pid} on .*, started "):
            with RunLock(str(tmp_path)):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_taken_over_and_said_so(tmp_path, caplog):
    holder = start_holder(str(tmp_path))
    holder.send_signal(signal.SIGKILL)  # No clean-up: the file still names it.
    holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid
    with caplog.at_level("WARNING"), RunLock(str(tmp_path)) as lock:
        assert lock.took_over["pid"] == holder.pid
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"pid {holder.pid}" in caplog.text and "no longer running" in caplog.text


def test_a_clean_release_leaves_nothing_to_take_over_and_nesting_is_one_hold(tmp_path):
    with RunLock(str(tmp_path)):
        with RunLock(str(tmp_path)):  # The same process: one hold, not a deadlock.
            pass
        other = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
        assert other.returncode != 0 and "is in use by another run" in other.stderr
    assert (tmp_path / LOCK_FILE).read_text() == ""
    with RunLock(str(tmp_path)) as lock:
        assert lock.took_over is None


def test_dcgan_pipeline_on_a_held_directory_exits_2_in_one_line_before_anything_runs(
        tmp_path, mnist_slice):
    holder = start_holder(str(tmp_path))
    try:
        done = subprocess.run([sys.executable, "-m", "pipeline.console", "--preset", "smoke",
                               "--mnist-dir", mnist_slice, "--output-dir", str(tmp_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {holder.pid}" in lines[0] and str(tmp_path) in lines[0]
    assert not (tmp_path / "logs").exists() and not (tmp_path / "metadata.sqlite").exists()


def test_two_runs_started_together_publish_one_version(tmp_path, mnist_slice):
    """The issue's case: both on one directory at once; one runs, the other is refused."""
    command = [sys.executable, "-m", "pipeline.console", "--preset", "smoke",
               "--mnist-dir", mnist_slice, "--output-dir", str(tmp_path)]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(run.wait(timeout=900), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is in use by another run" in refused
    versions = os.listdir(tmp_path / "serving" / "dcgan_mnist")
    assert len([v for v in versions if v.isdigit()]) == 1
    logs = os.listdir(tmp_path / "logs")
    assert len(logs) == 1  # The refused run wrote no log of its own.


def test_dcgan_kfp_local_run_on_a_held_directory_exits_2_naming_the_holder(tmp_path,
                                                                          mnist_slice):
    holder = start_holder(str(tmp_path))
    try:
        done = subprocess.run([sys.executable, "-m", "dcgan_kfp.cli", "local-run", "--preset",
                               "smoke", "--pipeline-root", str(tmp_path), "--mnist-dir",
                               mnist_slice], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"dcgan-kfp: {tmp_path} is in use by another run: pid {holder.pid}" in done.stderr
    assert not (tmp_path / "logs").exists()
