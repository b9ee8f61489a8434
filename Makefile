# Set-up and checks. `make demo` and `make test` are the two README commands: each creates .venv
# when missing and installs what it needs, with torch pinned by constraints.txt (never a CUDA build).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# The machines' pip configuration lists index folders that do not all exist: hide that noise only.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
OUT    ?= demo_out

.PHONY: demo test lint typecheck pytest browser bench bench-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps make a second run reuse the venv (only pyproject/constraints changes reinstall).
$(VENV)/.cli-stamp: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[cli]' $(QUIET_PIP)
	touch $@

$(VENV)/.dev-stamp: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev]' $(QUIET_PIP)
	touch $@ $(VENV)/.cli-stamp

demo: $(VENV)/.cli-stamp
	$(BIN)/diffdsp demo --out $(OUT)

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check src tests $(wildcard benchmarks evals examples)

typecheck: $(VENV)/.dev-stamp
	$(BIN)/mypy

# The report test drives a real headless Chromium (Debian package); installed when we can (root +
# apt), otherwise that one test is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the report test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      >/dev/null 2>&1) || echo "chromium could not be installed: the browser test will skip"; \
	  else echo "no chromium and no root apt: the browser test will skip"; fi; }

pytest: $(VENV)/.dev-stamp browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test: lint typecheck pytest

# Peers (FLAMO, auraloss, dasp-pytorch, torchcomp, torchlpc, torchsynth, pedalboard) live in their own venv.
bench-venv:
	./benchmarks/setup_bench_venv.sh

bench: bench-venv
	.venv-bench/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv-bench $(OUT) build dist src/*.egg-info
