"""kfp/Dockerfile installs from the repository's own lock file (it cannot be built here)."""

import importlib.metadata
import os
import re

from dcgan_kfp.compiler import IMAGE_PROJECT_DIR

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def test_installs_the_lock_with_no_resolution_then_the_project():
    dockerfile = read("kfp/Dockerfile")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.10", dockerfile, re.M)
    assert re.search(r"^COPY requirements\.lock setup\.py \./", dockerfile, re.M)
    assert "pip install --no-cache-dir --no-deps -r requirements.lock" in dockerfile
    pip = re.search(r"pip==([\d.]+)", dockerfile).group(1)
    assert f"PIP_VERSION := {pip}" in read("Makefile")  # The same pip as `make install`.
    assert f"WORKDIR {IMAGE_PROJECT_DIR}" in dockerfile  # Where the compiled specs look.
    packages = set(re.search(r'include=\[([^\]]*)\]', read("setup.py")).group(1)
                   .replace('"', "").replace(" ", "").split(","))
    assert packages == set(re.findall(r"^COPY (\w+) \1$", dockerfile, re.M))
    assert "pip check" in dockerfile


def test_the_gpu_lock_is_tensorflows_own_cuda_pins():
    lock = {line for line in read("kfp/requirements-gpu.lock").splitlines()
            if line and not line.startswith("#")}
    tensorflow = importlib.metadata.distribution("tensorflow")
    extra = {re.sub(r"\s*;.*|\s", "", r) for r in tensorflow.requires
             if "extra == \"and-cuda\"" in r or "extra == 'and-cuda'" in r}
    assert lock == extra and any(l.startswith("nvidia-cudnn-cu12==8.9") for l in lock)
    assert f"tensorflow=={tensorflow.version}" in read("requirements.lock")
