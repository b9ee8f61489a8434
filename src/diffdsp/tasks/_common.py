"""Pieces every task shares: progress callbacks, seeds, devices, output folders, results."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffdsp._validation import InputError, check_choice
from diffdsp.io import PathLike

__all__ = [
    "Progress",
    "TaskResult",
    "checkpoint_digest",
    "fit_progress",
    "load_checkpoint",
    "prepare_out_dir",
    "resolve_device",
    "seed_all",
]

#: ``progress(stage, step, total, loss)``: called by tasks during long work (the CLI draws a bar).
Progress = Callable[[str, int, int, float], None]


@dataclass
class TaskResult:
    """What a task wrote.

    Attributes:
        task: task name.
        out_dir: the output folder.
        result: the content of ``result.json``.
        files: names of the files written in ``out_dir``.
        sections: report sections (``diffdsp.report.Section``) for ``report.html`` and the demo.
    """

    task: str
    out_dir: Path
    result: dict[str, Any]
    files: list[str] = field(default_factory=list)
    sections: list[Any] = field(default_factory=list)


def fit_progress(
    progress: Progress | None, stage: str, total: int
) -> Callable[[int, float], None] | None:
    """Adapt a task :data:`Progress` callback to :func:`diffdsp.optim.fit`'s ``(step, loss)``."""
    if progress is None:
        return None

    def cb(step: int, loss: float) -> None:
        progress(stage, step, total, loss)

    return cb


def seed_all(seed: int | None) -> None:
    """Seed torch, numpy and random (same seed, same result)."""
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeds legacy global users too
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available) to a ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    check_choice(device, "device", ("cpu", "cuda", "auto"))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but no CUDA device is available")
    return torch.device(device)


def prepare_out_dir(out_dir: PathLike, inputs: Iterable[PathLike] = ()) -> Path:
    """Create the output folder (refusing a path that is an existing file or an input file)."""
    out = Path(out_dir).expanduser()
    resolved = out.resolve()
    for p in inputs:
        if Path(p).expanduser().resolve() == resolved:
            raise InputError(f"{out}: the output folder cannot be an input file")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create output folder ({exc.strerror})") from None
    probe = out / ".diffdsp-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{out}: output folder is not writable ({exc.strerror})") from None
    return out


def checkpoint_digest(tensors: Iterable[torch.Tensor | None], meta: dict[str, Any]) -> str:
    """A fingerprint of what a checkpoint is written for (input samples, settings, seed).

    ``--resume`` refuses a checkpoint whose digest differs, so a stale file in the output folder is
    never silently mixed into another fit.

    Examples:
        >>> x = torch.zeros(3)
        >>> checkpoint_digest([x], {"seed": 0}) == checkpoint_digest([x], {"seed": 1})
        False
    """
    import hashlib
    import json

    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            h.update(t.detach().cpu().to(torch.float64).contiguous().numpy().tobytes())
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return h.hexdigest()


def load_checkpoint(path: Path | None, digest: str, *, written_for: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (``None`` if there is none), refusing one of another fit.

    Raises:
        InputError: the file cannot be read, or was written for another ``written_for``
            (e.g. "target, patch, settings or seed").
    """
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unreadable file is a bad input
        raise InputError(f"{path}: cannot read the checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("digest") != digest:
        raise InputError(f"{path}: checkpoint written for another {written_for}; remove it or "
                         "run without --resume")
    return state
