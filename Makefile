# Every target runs inside .venv, built from the pinned lock file only.
SHELL := /bin/bash
# python3.10: the first interpreter that really is 3.10 (a pyenv shim may exist but refuse to run).
PYTHON310 ?= $(shell for p in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
MNIST_DIR ?=
PRESET ?= default
OUTPUT_DIR ?= runs/local
PYTEST_ARGS ?=
BENCH_ARGS ?=
# The image: the public base by default; on a machine without a registry, a local stand-in
# (BASE_IMAGE=$$(../shared/tools/local-docker-base)).
BASE_IMAGE ?= python:3.10-slim-bookworm
IMAGE ?= dcgan-mnist:local
PIP_VERSION := 26.3

.PHONY: install run test serve bench-serving bench-train bench-quality image image-test clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock setup.py Makefile
	@test -n "$(PYTHON310)" || { echo "error: python3.10 not found (install it, or pass PYTHON310=/path/to/python3.10)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON310) -m venv $(VENV)
	# A current pip: PEP 660 editable install, console scripts without pkg_resources.
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

run: install
	$(BIN)/dcgan-pipeline --preset $(PRESET) --output-dir $(OUTPUT_DIR) $(if $(MNIST_DIR),--mnist-dir $(MNIST_DIR))

test: install
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

# The local stand-in server on the push destination (production: TF Serving, docs/serving.md).
serve: install
	$(BIN)/dcgan-serve --model-base-path $(OUTPUT_DIR)/serving/dcgan_mnist --model-name dcgan_mnist --port 8500 --rest-port 8501 --monitoring

bench-serving: install
	$(BIN)/python -m bench.bench_serving $(if $(MODEL_BASE_PATH),--model-base-path $(MODEL_BASE_PATH))

bench-train: install
	$(BIN)/python -m bench.bench_train $(if $(MNIST_DIR),--mnist-dir $(MNIST_DIR)) $(BENCH_ARGS)

bench-quality: install
	$(BIN)/python -m bench.bench_quality $(if $(MNIST_DIR),--mnist-dir $(MNIST_DIR)) $(BENCH_ARGS)

# --network host: pip in the build reaches the package index the way this machine does.
image:
	docker build --network host --build-arg BASE_IMAGE=$(BASE_IMAGE) -f kfp/Dockerfile -t $(IMAGE) .

# Docker needed; not part of `make test` (the image build alone takes minutes).
image-test: install image
	kfp/image_test.sh $(IMAGE) $(BIN)/python

clean:
	rm -rf $(VENV) runs
