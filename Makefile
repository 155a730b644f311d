# Quick start: `make demo`, `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first with an exact spec: an open range pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= agent,edge,controller,dev,experiments
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-py310 lint typecheck proto bench clean wheelhouse wheelhouse-aarch64 compose-e2e base-image experiments arm64-e2e

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
	$(BIN)/mypy splitbed device_agent edge_server controller experiments

test: setup lint typecheck
	$(BIN)/python -m pytest -q -rs

# The agent's targets include JetPack 6, whose Python is 3.10. `make test` checks 3.10 statically
# (ruff py310, mypy --python-version 3.10); this runs the agent, codec and controller tests on a real
# 3.10. Not part of `make test`: PyPI's torch for 3.10 is a CUDA build of several GB.
PYTHON310 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python) $(shell command -v python3.10))
VENV310 := .venv310
PY310_TESTS ?= tests/test_aio_compat.py tests/test_py310_compat.py tests/test_bad_input.py tests/test_coinference.py tests/test_model_split.py \
	tests/test_model_profile.py tests/test_hw_clock_emulated.py tests/test_solver_exact.py tests/test_solver_input.py \
	tests/test_controller_service.py tests/test_live_system.py tests/test_conic_fast.py tests/test_multi_solver.py \
	tests/test_push_retry.py tests/test_edge_guard.py tests/test_controller_protocol.py

test-py310:
	@test -n "$(PYTHON310)" || { echo "no Python 3.10 found: set PYTHON310=/path/to/python3.10" >&2; exit 2; }
	test -x $(VENV310)/bin/python || $(PYTHON310) -m venv $(VENV310)
	$(VENV310)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 10), sys.version'
	$(VENV310)/bin/python -m pip install -q --upgrade pip
	$(VENV310)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(VENV310)/bin/python -m pip install -q -e ".[$(EXTRAS)]"
	$(VENV310)/bin/python -m pytest -q -p no:cacheprovider $(PY310_TESTS)
	@du -sh $(VENV310)

proto: setup
	$(BIN)/python scripts/gen_proto.py

bench: setup
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/pruning.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/solver.py

# The paper's figures at full size (modelled + live; <= 60 min on 2 cores), then docs/results.md.
# EXPERIMENTS_FLAGS=--resume continues an interrupted run; scratch CSVs stay in results/ (ignored).
experiments: setup
	$(BIN)/python -m experiments run all --out results $(EXPERIMENTS_FLAGS)
	$(BIN)/python -m experiments report --out results

# Every wheel the images need (torch CPU included) for offline `docker build`.
wheelhouse: setup
	PYTHON=$(BIN)/python scripts/wheelhouse.sh

wheelhouse-aarch64: setup
	ARCH=aarch64 WHEELHOUSE=wheelhouse-aarch64 PYTHON=$(BIN)/python scripts/wheelhouse.sh

# The offline base image splitbed-base:bookworm (debootstrap + docker import; needs root and an engine).
base-image:
	scripts/base-image.sh

# Builds the images on a local base image and runs the compose demo (needs root or a Docker engine).
compose-e2e: setup
	scripts/compose-e2e.sh

# The agent on an arm64 Debian root under QEMU against an x86 edge server, checked against an x86 agent,
# then the root as an arm64 image (needs root; not part of `make test`; cache in .cache/arm64).
arm64-e2e: setup
	scripts/arm64-e2e.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
