"""One thread pool for the compiled CPU kernels (IIR, oscillators, envelopes, FDN).

The kernels are serial numba functions that release the GIL and touch only their own rows (or
their own range of items); work is shared out between ``torch.get_num_threads()`` threads of
this pool rather than numba's parallel runtime, which would contend with torch's OpenMP pool.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

__all__ = ["run_rows", "run_split"]

_POOL: ThreadPoolExecutor | None = None


def _reset_pool_after_fork() -> None:  # pragma: no cover - runs in forked children
    # a forked child (DataLoader workers, fork-based multiprocessing) inherits the pool object but
    # not its threads: start a fresh pool there instead of waiting forever on dead workers
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_after_fork)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
    return _POOL


def run_rows(kern: Any, arrays: list[np.ndarray], *extra: Any, work: int, min_work: int) -> None:
    """Run ``kern(*arrays, *extra)`` with the rows (first axis of every array) split over threads.

    Runs in the calling thread alone when there is one thread, one row, or ``work < min_work``.
    """
    rows = arrays[0].shape[0]
    n = min(torch.get_num_threads(), rows)
    if n <= 1 or work < min_work:
        kern(*arrays, *extra)
        return
    bounds = [(lo, hi) for lo, hi in itertools.pairwise(round(i * rows / n) for i in range(n + 1))
              if hi > lo]
    futures = [_pool().submit(kern, *[a[lo:hi] for a in arrays], *extra)
               for lo, hi in bounds[1:]]
    lo, hi = bounds[0]
    kern(*[a[lo:hi] for a in arrays], *extra)  # the calling thread takes the first share
    for f in futures:
        f.result()


def run_split(kern: Any, total: int, args: tuple[Any, ...], min_per_thread: int) -> None:
    """Run ``kern(*args, start, stop)`` over ``[0, total)`` split into ranges across threads."""
    n = max(1, min(torch.get_num_threads(), total // max(1, min_per_thread)))
    if n <= 1:
        kern(*args, 0, total)
        return
    bounds = [round(i * total / n) for i in range(n + 1)]
    futures = [_pool().submit(kern, *(*args, lo, hi))
               for lo, hi in itertools.pairwise(bounds) if hi > lo]
    for f in futures:
        f.result()
