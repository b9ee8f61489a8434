"""Shared harness for the side-by-side benchmarks: timing, peer imports, result tables.

Every ``benchmarks/*.py`` runs our code and the peer's in one process, on the same inputs, with the
same thread count, and reports ``ratio = peer_ms / ours_ms`` (> 1 means diffdsp is faster). Results
are printed and written to ``benchmarks/results/<name>.json``; ``run_all.py`` collects them into
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(description: str) -> argparse.Namespace:
    """Common flags: ``--quick`` (tiny shapes, few repeats: for the test suite), ``--threads``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small shapes and 1 repeat (smoke test)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/*.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats = 1
    return args


def time_ms(fn: Callable[[], Any], *, repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in milliseconds (CUDA synchronised when used)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def fwd_bwd(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Callable[[], None]:
    """Wrap a loss closure into one forward+backward step (grads cleared each time)."""

    def step() -> None:
        for p in params:
            p.grad = None
        loss_fn().backward()

    return step


def try_import(name: str) -> ModuleType | None:
    """Import a peer library, or return None (the row then says the peer is missing)."""
    try:
        return importlib.import_module(name)
    except Exception as exc:  # peers fail in many ways on mismatched versions
        print(f"[peer {name} unavailable: {type(exc).__name__}: {exc}]", file=sys.stderr)
        return None


@dataclass
class Row:
    """One benchmark row: an operation timed for us and (optionally) a peer."""

    operation: str
    ours_ms: float
    peer: str = ""
    peer_ms: float | None = None
    goal: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.peer_ms is None or self.ours_ms <= 0:
            return None
        return self.peer_ms / self.ours_ms


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def report(name: str, rows: list[Row], args: argparse.Namespace) -> None:
    """Print the table and save it as JSON for ``run_all.py``."""
    print(f"\n## {name}  (threads={torch.get_num_threads()}, median of {args.repeats})")
    print(f"{'operation':58s} {'ours ms':>9s} {'peer':>14s} {'peer ms':>9s} {'ratio':>7s}  goal")
    for r in rows:
        peer_ms = f"{r.peer_ms:9.1f}" if r.peer_ms is not None else f"{'-':>9s}"
        ratio = f"{r.ratio:6.2f}x" if r.ratio is not None else f"{'-':>7s}"
        slower = "  (SLOWER than peer)" if r.ratio is not None and r.ratio < 1 else ""
        note = f"  [{r.note}]" if r.note else ""
        print(f"{r.operation:58s} {r.ours_ms:9.1f} {r.peer:>14s} {peer_ms} {ratio}  "
              f"{r.goal}{slower}{note}")
    if args.quick or args.no_save:
        return
    RESULTS_DIR.mkdir(exist_ok=True)
    payload = {
        "name": name,
        "machine": machine(),
        "repeats": args.repeats,
        "rows": [asdict(r) | {"ratio": r.ratio} for r in rows],
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2))
