"""Every benchmark script runs in quick mode in the main venv (peers may be missing there).

Scripts are discovered with the same rule ``benchmarks/run_all.py`` uses, so a benchmark added later
is covered without editing this file. Also checks how ``run_all`` renders ``RESULTS.md``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
QUICK_TIMEOUT_S = 120


def _run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN_ALL = _run_all()
SCRIPTS = RUN_ALL.benchmark_scripts(BENCH)


def test_discovery_skips_helpers() -> None:
    names = {p.name for p in SCRIPTS}
    assert not {"run_all.py", "check_peers.py", "_common.py", "_peers.py"} & names
    assert all(not n.startswith(("_", "setup")) for n in names)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_quick(script: Path) -> None:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--no-save"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_S,
        check=False,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, (
        f"{script.name} --quick exited {proc.returncode} after {seconds:.1f} s\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    # _common.report prints a "## name" title and a header with "ours ms", then one line per row.
    lines = proc.stdout.splitlines()
    header = [i for i, line in enumerate(lines) if "ours ms" in line and "operation" in line]
    assert header, f"{script.name} printed no result table:\n{proc.stdout[-3000:]}"
    assert any(line.startswith("## ") for line in lines), proc.stdout[-3000:]
    rows = [line for line in lines[header[0] + 1:] if line.strip() and not line.startswith("##")]
    assert rows, f"{script.name} printed a table header but no rows"


def _payload(rows: list[dict[str, object]]) -> dict[str, object]:
    machine = {"platform": "Linux-x", "processor": "x86_64", "cpu_count": 2, "threads": 2,
               "torch": "2.13.0+cpu", "python": "3.11.7"}
    return {"name": "demo", "machine": machine, "repeats": 7, "rows": rows}


def test_render_keeps_and_flags_slower_rows() -> None:
    rows = [
        {"operation": "fast op", "ours_ms": 10.0, "peer": "flamo", "peer_ms": 30.0, "goal": ">= 2x",
         "note": "", "ratio": 3.0},
        {"operation": "slow op", "ours_ms": 40.0, "peer": "torchlpc", "peer_ms": 10.0,
         "goal": ">= 2x", "note": "a | pipe", "ratio": 0.25},
        {"operation": "solo op", "ours_ms": 5.0, "peer": "", "peer_ms": None, "goal": "",
         "note": "", "ratio": None},
    ]
    md = RUN_ALL.render([_payload(rows)], failures=["broken.py (exit 1)"], started="today",
                        threads=2, peer_versions={"flamo": "0.2.20", "torchlpc": None})
    table = [line for line in md.splitlines() if line.startswith("| demo |")]
    assert len(table) == 3
    fast, slow, solo = table
    assert "3.00" in fast and "3.00x faster; goal met" in fast
    assert "0.25" in slow and "**SLOWER** than torchlpc (4.00x)" in slow
    assert "**goal not met**" in slow and "a \\| pipe" in slow
    assert "ours only" in solo
    assert "broken.py (exit 1)" in md
    assert "threads: 2" in md and "median of 7" in md and "torch 2.13.0+cpu" in md
    assert "missing: torchlpc" in md
    assert "diffdsp slower than the peer in 1." in md
