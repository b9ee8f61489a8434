# Set-up and checks. `make demo` and `make test` are the two README commands: each creates .venv
# when missing and installs what it needs, with torch pinned by constraints.txt (never a CUDA build).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
OUT    ?= demo_out

.PHONY: demo test lint typecheck pytest bench bench-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps make a second run reuse the venv (only pyproject/constraints changes reinstall).
$(VENV)/.cli-stamp: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[cli]'
	touch $@

$(VENV)/.dev-stamp: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.cli-stamp

demo: $(VENV)/.cli-stamp
	$(BIN)/diffdsp demo --out $(OUT)

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check src tests $(wildcard benchmarks evals examples)

typecheck: $(VENV)/.dev-stamp
	$(BIN)/mypy

pytest: $(VENV)/.dev-stamp
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test: lint typecheck pytest

# Peers (FLAMO, auraloss, dasp-pytorch, torchcomp, torchlpc, torchsynth, pedalboard) live in their own venv.
bench-venv:
	./benchmarks/setup_bench_venv.sh

bench: bench-venv
	.venv-bench/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv-bench $(OUT) build dist src/*.egg-info
