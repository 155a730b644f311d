# Quick start: `make demo`, `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first with an exact spec: an open range pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= agent,edge,controller,dev
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck proto bench clean wheelhouse wheelhouse-aarch64 compose-e2e arm64-e2e

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(BIN)/python scripts/demo.py

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy splitbed device_agent edge_server controller

test: setup lint typecheck
	$(BIN)/python -m pytest -q -rs

proto: setup
	$(BIN)/python scripts/gen_proto.py

bench: setup
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/pruning.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/solver.py

# Every wheel the images need (torch CPU included) for offline `docker build`.
wheelhouse: setup
	PYTHON=$(BIN)/python scripts/wheelhouse.sh

wheelhouse-aarch64: setup
	ARCH=aarch64 WHEELHOUSE=wheelhouse-aarch64 PYTHON=$(BIN)/python scripts/wheelhouse.sh

# Builds the images on a local base image and runs the compose demo (needs root or a Docker engine).
compose-e2e: setup
	scripts/compose-e2e.sh

# The agent on an arm64 Debian root under QEMU against an x86 edge server, checked against an x86 agent,
# then the root as an arm64 image (needs root; not part of `make test`; cache in .cache/arm64).
arm64-e2e: setup
	scripts/arm64-e2e.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
