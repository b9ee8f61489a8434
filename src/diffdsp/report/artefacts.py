"""``result.json`` and other JSON artefacts (DESIGN.md, command line contract)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffdsp.io import PathLike, atomic_write_text

__all__ = ["describe_input", "to_jsonable", "write_json", "write_result_json"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe_input(path: PathLike) -> dict[str, Any]:
    """The ``inputs`` entry of ``result.json``: path, sha256, sample_rate, channels, seconds.

    Examples:
        >>> from diffdsp import data
        >>> d = describe_input(data.path("rir/seminar_room_clap.flac"))
        >>> d["sample_rate"], d["channels"], len(d["sha256"])
        (44100, 1, 64)
    """
    p = Path(path)
    entry: dict[str, Any] = {"path": str(p), "sha256": _sha256(p)}
    try:
        import soundfile

        info = soundfile.info(str(p))
        entry.update(sample_rate=int(info.samplerate), channels=int(info.channels),
                     seconds=round(info.frames / info.samplerate, 6))
    except Exception:  # not audio (a checkpoint, a JSON file): hash only
        pass
    return entry


def to_jsonable(obj: Any) -> Any:
    """Convert tensors, numpy values, dataclasses and paths into plain JSON data.

    Non-finite floats become ``None`` (JSON has no NaN), so a file is always valid JSON.

    Examples:
        >>> to_jsonable({"a": torch.tensor([1.0, float("nan")]), "b": np.float32(2.5)})
        {'a': [1.0, None], 'b': 2.5}
    """
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(obj.to_dict() if hasattr(obj, "to_dict") else asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def write_json(path: PathLike, obj: Any, *, protect: Iterable[PathLike] = ()) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n", protect=protect)


def write_result_json(
    out_dir: PathLike,
    *,
    task: str,
    inputs: Iterable[PathLike],
    settings: Mapping[str, Any],
    metrics_before: Mapping[str, Any] | None = None,
    metrics_after: Mapping[str, Any] | None = None,
    fit: Any = None,
    seed: int | None = None,
    files: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/result.json`` in the DESIGN.md layout and return its content.

    Args:
        out_dir: output folder (created if missing).
        task: task name (``"reverb"``, ``"match"``, ...).
        inputs: input file paths (described with :func:`describe_input`).
        settings: the options the task ran with.
        metrics_before: metrics of the unprocessed input / initial state; names carry units.
        metrics_after: the same metrics after fitting.
        fit: a :class:`diffdsp.optim.FitResult` or a dict
            ``{steps, seconds, final_loss, converged}``.
        seed: the random seed.
        files: names of the files written in ``out_dir`` (``result.json`` is added).
        extra: additional top-level keys (task-specific results).

    Returns:
        The dictionary written.
    """
    from diffdsp import __version__

    inputs = list(inputs)
    result: dict[str, Any] = {
        "task": task,
        "diffdsp_version": __version__,
        "inputs": [describe_input(p) for p in inputs],
        "settings": dict(settings),
        "metrics": {"before": dict(metrics_before or {}), "after": dict(metrics_after or {})},
        "fit": fit,
        "seed": seed,
        "files": sorted({*files, "result.json"}),
    }
    if extra:
        result.update(extra)
    clean = to_jsonable(result)
    write_json(Path(out_dir) / "result.json", clean, protect=inputs)
    return clean
