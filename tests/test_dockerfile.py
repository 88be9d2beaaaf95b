"""kfp/Dockerfile: installs from the repository's own lock file, and every locked package
installs on the image's platform (asked of pip, against the package index the image uses).

`make image-test` builds the image and runs the pipeline in it (Docker needed, not in CI).
"""

import concurrent.futures
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile

import pytest

from dcgan_kfp.compiler import IMAGE_PROJECT_DIR

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
# The bases: python:3.10-slim-bookworm is Debian 12 (glibc 2.36), the GPU variant's
# nvidia/cuda:12.3.2-base-ubuntu22.04 is Ubuntu 22.04 (glibc 2.35). A manylinux wheel for glibc
# <= 2.35 installs on both.
MAX_GLIBC_MINOR = 35
PIP_CHECKS = 12  # Parallel pip processes (each waits on the index more than on the CPU).
NO_MATCH = re.compile(r"No matching distribution found for (\S+)")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def stages(dockerfile: str) -> list[str]:
    return re.split(r"^FROM ", dockerfile, flags=re.M)[1:]


def test_installs_the_lock_with_no_resolution_then_the_project():
    dockerfile = read("kfp/Dockerfile")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.10-slim-bookworm$", dockerfile, re.M)
    assert "local/" not in dockerfile  # Builds from the public base unchanged.
    build, runtime = stages(dockerfile)
    assert re.search(r"^COPY requirements\.lock setup\.py \./", build, re.M)
    assert "pip install --no-cache-dir --no-deps -r requirements.lock" in build
    assert "pip install --no-cache-dir --no-deps -r kfp/requirements-gpu.lock" in build
    pip = re.search(r"pip==([\d.]+)", dockerfile).group(1)
    assert f"PIP_VERSION := {pip}" in read("Makefile")  # The same pip as `make install`.
    assert "COPY --from=venv /venv /venv" in runtime
    assert f"WORKDIR {IMAGE_PROJECT_DIR}" in runtime  # Where the compiled specs look.
    packages = set(re.findall(r'"(\w+)"', re.search(r'include=\[([^\]]*)\]',
                                                   read("setup.py")).group(1)))
    assert packages == set(re.findall(r"^COPY (\w+) \1$", runtime, re.M))
    assert "pip check" in runtime
    assert "g++" not in runtime  # The compiler stays in the build stage.


def source_only(requirements: list[str], tmp_dir: str) -> tuple[list[str], str]:
    """Asks pip, for the image's platform, which requirements have no installable wheel.

    pip stops at the first requirement without one, so it is asked again without it until
    the rest resolve. Returns (source-only requirements, pip's error for the rest, if any)."""
    platforms = [f"--platform=manylinux_2_{minor}_x86_64" for minor in
                 range(17, MAX_GLIBC_MINOR + 1)]
    platforms += ["--platform=manylinux2014_x86_64", "--platform=manylinux2010_x86_64",
                  "--platform=manylinux1_x86_64"]
    remaining, missing = list(requirements), []
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # The index alone, as in the image.
    requirements_file = os.path.join(tmp_dir, "requirements.txt")
    while remaining:
        with open(requirements_file, "w", encoding="utf-8") as f:
            f.write("\n".join(remaining) + "\n")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps",
             "--ignore-installed", "--only-binary=:all:", *platforms, "--python-version", "3.10",
             "--implementation", "cp", "--target", os.path.join(tmp_dir, "target"),
             "-r", requirements_file],
            capture_output=True, text=True, env=env, timeout=600, check=False)
        found = NO_MATCH.search(result.stderr)
        if result.returncode == 0 or not found:
            return missing, result.stderr if result.returncode else ""
        missing.append(found.group(1))
        remaining.remove(found.group(1))
    return missing, ""


def locked(path: str) -> list[str]:
    return [line for line in read(path).splitlines() if line and not line.startswith("#")]


@pytest.mark.timeout(900)
def test_every_locked_package_has_a_wheel_or_the_build_stage_compiles_it(tmp_path):
    requirements = locked("requirements.lock") + locked("kfp/requirements-gpu.lock")
    chunks = [requirements[i::PIP_CHECKS] for i in range(PIP_CHECKS)]  # pip, in parallel.
    os.makedirs(tmp_path / "chunks")
    with concurrent.futures.ThreadPoolExecutor(PIP_CHECKS) as pool:
        results = list(pool.map(lambda i: source_only(chunks[i], tempfile.mkdtemp(
            dir=tmp_path / "chunks")), range(PIP_CHECKS)))
    missing = sorted(req for found, _ in results for req in found)
    assert [error for _, error in results if error] == []  # The rest: wheels for the platform.
    assert "pyfarmhash==0.3.2" in missing  # TFDV's C++ extension: PyPI has its source only.
    assert all(req in requirements for req in missing)
    # Source-only packages build in the first stage, which has a C++ compiler.
    build = stages(read("kfp/Dockerfile"))[0]
    assert re.search(r"apt-get install [^\n]*\bg\+\+", build)
    print("source-only on PyPI:", ", ".join(missing))


def test_the_gpu_lock_is_tensorflows_own_cuda_pins():
    lock = set(locked("kfp/requirements-gpu.lock"))
    tensorflow = importlib.metadata.distribution("tensorflow")
    extra = {re.sub(r"\s*;.*|\s", "", r) for r in tensorflow.requires
             if "extra == \"and-cuda\"" in r or "extra == 'and-cuda'" in r}
    assert lock == extra and any(l.startswith("nvidia-cudnn-cu12==8.9") for l in lock)
    assert f"tensorflow=={tensorflow.version}" in read("requirements.lock")
