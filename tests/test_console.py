"""`dcgan-pipeline` as a person sees it: a screenful on the terminal, the details in a log file,
a failure in a few lines with no traceback. Runs the real command as a process."""

import glob
import gzip
import os
import shutil
import subprocess
import sys

import pytest

from pipeline_helpers import NODES

MAX_LINES = 50  # The bound: a run's whole terminal output fits on one screen.
HERE = os.path.dirname(os.path.abspath(__file__))
SLICE = os.path.join(HERE, "data", "mnist_slice")


def dcgan_pipeline(*args: str) -> subprocess.CompletedProcess:
    command = os.path.join(os.path.dirname(sys.executable), "dcgan-pipeline")  # The venv's.
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=1200,
                          check=False)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("console")
    done = dcgan_pipeline("--preset", "smoke", "--mnist-dir", SLICE, "--output-dir", str(out))
    return done, out


def test_the_terminal_gets_a_screenful_ending_with_the_verdict(smoke_run):
    done, out = smoke_run
    assert done.returncode == 0, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) <= MAX_LINES, "\n".join(lines)
    for node in NODES:  # Each component once started, once ended with its outcome.
        assert sum(line.split() == [node, "running"] for line in lines) == 1, node
        ended = [line for line in lines if line.startswith(node + " ") and
                 ("done in" in line or "CACHED" in line)]
        assert len(ended) == 1, node
    assert any(line.strip().startswith("step 20/20") and "images/s" in line for line in lines)
    assert any(line.startswith("FID ") and "floor" in line for line in lines)
    assert lines[-1].startswith("Verdict: BLESSED")
    assert "Traceback" not in done.stdout + done.stderr
    assert not any("oneDNN" in line or "cuda" in line.lower() for line in lines)


def test_the_log_file_holds_the_details(smoke_run):
    done, out = smoke_run
    (log,) = glob.glob(os.path.join(str(out), "logs", "dcgan-pipeline-*.log"))
    assert f"full log: {log}" in done.stdout
    with open(log, encoding="utf-8") as f:
        text = f.read()
    assert "Component Trainer is running." in text  # TFX's own logging.
    assert "executor_output" in text or "exec_properties" in text
    assert len(text.splitlines()) > 10 * MAX_LINES


def test_a_corrupt_idx_file_fails_in_a_few_lines_with_the_component_and_the_log(tmp_path):
    mnist = tmp_path / "mnist"
    shutil.copytree(SLICE, mnist)
    path = mnist / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        data = bytearray(f.read())
    data[3] = 0x01  # Magic number 0x00000803 -> 0x00000801.
    with gzip.open(path, "wb") as f:
        f.write(bytes(data))
    done = dcgan_pipeline("--preset", "smoke", "--mnist-dir", str(mnist),
                          "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 1
    terminal = done.stdout + done.stderr
    assert "Traceback" not in terminal
    failed = [line for line in terminal.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("MnistExampleGen FAILED: ")
    assert "wrong magic number 0x00000801, expected 0x00000803" in failed[0]
    (log,) = glob.glob(str(tmp_path / "out" / "logs" / "dcgan-pipeline-*.log"))
    assert f"full log (with the traceback): {log}" in terminal
    with open(log, encoding="utf-8") as f:
        assert "Traceback" in f.read()


def test_offline_without_mnist_dir_fails_in_one_line_that_says_what_to_pass(tmp_path):
    """The download failure simulated: tensorflow-datasets' load raises what `requests` raises
    on a machine without internet."""
    script = (
        "import sys, requests, tensorflow_datasets\n"
        "def offline(*args, **kwargs):\n"
        "    raise requests.exceptions.ConnectionError('Failed to establish a new connection')\n"
        "tensorflow_datasets.load = offline\n"
        "from pipeline import console\n"
        f"sys.exit(console.main(['--preset', 'smoke', '--output-dir', {str(tmp_path)!r}]))\n")
    env = {key: value for key, value in os.environ.items() if key != "MNIST_DIR"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, check=False, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    terminal = done.stdout + done.stderr
    assert "Traceback" not in terminal
    (failed,) = [line for line in terminal.splitlines() if "FAILED" in line]
    assert failed.startswith("MnistExampleGen FAILED: downloading MNIST with tensorflow-datasets "
                             "failed (ConnectionError: Failed to establish a new connection)")
    assert "--mnist-dir DIR" in failed and "MNIST_DIR=DIR" in failed


@pytest.mark.parametrize("make_bad", ["under_a_file", "read_only"])
def test_an_output_dir_that_cannot_be_written_fails_in_one_line(tmp_path, make_bad):
    blocker = tmp_path / "file"
    blocker.write_text("")
    if make_bad == "under_a_file":
        output_dir, reason = blocker / "out", "Not a directory"
    elif os.geteuid() != 0:
        output_dir, reason = tmp_path / "read-only", "Permission denied"
        output_dir.mkdir(mode=0o500)
    else:  # root writes anywhere permissions allow nothing; sysfs refuses new files.
        output_dir, reason = "/sys", "Permission denied"  # Creating /sys/run.lock.
    done = dcgan_pipeline("--preset", "smoke", "--mnist-dir", SLICE,
                          "--output-dir", str(output_dir))
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).splitlines()
    assert lines == [f"dcgan-pipeline: --output-dir {output_dir}: {reason}"], lines
