#!/usr/bin/env bash
# Build .venv-bench: torch 2.13.0 (CPU, pinned by constraints.txt), diffdsp editable with [dev], and
# the peer libraries the benchmarks compare against (FLAMO, auraloss, dasp-pytorch, torchcomp,
# torchlpc, torchsynth, pedalboard), none of which may bring in another torch.
#
# Idempotent: a complete venv carries a stamp holding the hash of its inputs (this script,
# requirements-bench.txt, constraints.txt, pyproject.toml); a second run with the same inputs
# returns at once. A half-built venv (no stamp) is completed in place.
#
#   ./benchmarks/setup_bench_venv.sh            # build or reuse
#   FORCE=1 ./benchmarks/setup_bench_venv.sh    # rebuild from scratch
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv-bench"
STAMP="$VENV/.bench-stamp"
REQ="$ROOT/benchmarks/requirements-bench.txt"
CONS="$ROOT/constraints.txt"

inputs_hash() {
    cat "$ROOT/benchmarks/setup_bench_venv.sh" "$REQ" "$CONS" "$ROOT/pyproject.toml" \
        | sha256sum | cut -d' ' -f1
}
HASH="$(inputs_hash)"

if [[ "${FORCE:-0}" == "1" ]]; then
    rm -rf "$VENV"
fi
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$VENV/bin/python" ]]; then
    echo "bench venv up to date: $VENV"
    exit 0
fi

t0=$SECONDS
step() { echo "[bench-venv +$((SECONDS - t0))s] $*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check --quiet -c "$CONS")

step "torch (pinned by constraints.txt) + build tools"
"${PIP[@]}" torch setuptools wheel numpy
step "diffdsp (editable, [dev])"
"${PIP[@]}" -e "$ROOT[dev]"
step "peers and their light dependencies (requirements-bench.txt)"
"${PIP[@]}" -r "$REQ"
# torchlpc builds a C++ extension against the installed torch; build isolation would download
# another torch into the build environment.
step "torchlpc 0.7.2 (C++ extension, --no-build-isolation; takes minutes)"
"${PIP[@]}" --no-deps --no-build-isolation torchlpc==0.7.2
step "torchcomp 0.2.1, torchsynth 1.0.2, flamo 0.2.20 (--no-deps)"
"${PIP[@]}" --no-deps torchcomp==0.2.1 torchsynth==1.0.2 flamo==0.2.20

step "checking torch was not replaced and torchaudio was not pulled in"
"$PY" - <<'PYEOF'
import importlib.metadata as md
import sys

import torch

want = "2.13.0"
if not torch.__version__.startswith(want) or torch.version.cuda is not None:
    sys.exit(f"bench venv has torch {torch.__version__} (cuda={torch.version.cuda}), want {want} CPU")
for pkg in ("torchaudio", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime"):
    try:
        md.version(pkg)
    except md.PackageNotFoundError:
        continue
    sys.exit(f"bench venv must not contain {pkg}")
print(f"torch {torch.__version__} OK")
PYEOF

step "smoke-checking every peer (benchmarks/check_peers.py)"
"$PY" "$ROOT/benchmarks/check_peers.py"

echo "$HASH" > "$STAMP"
step "done: $VENV"
