"""CLI test helpers: run in-process, build bad input files, check the error contract.

Every task command's tests can use :func:`assert_usage_error` with :func:`bad_audio_files` to check
DESIGN.md's contract: exit 2, one plain line on stderr, no traceback, inputs byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from diffdsp.cli import main


def run_cli(args: Sequence[str]) -> tuple[int, str, str]:
    """Run ``diffdsp ARGS`` in-process; returns ``(exit code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _digest(paths: Iterable[Path]) -> dict[Path, str | None]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in paths}


def assert_usage_error(args: Sequence[str], inputs: Iterable[Path] = (), match: str = "") -> str:
    """The command exits 2 with one plain stderr line (no traceback) and leaves inputs untouched."""
    inputs = list(inputs)
    before = _digest(inputs)
    code, _, err = run_cli(args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"expected exit 2 for {list(args)}, got {code}; stderr: {err}"
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err}"
    assert "Traceback" not in err and lines[0].startswith("diffdsp: error:")
    assert match.lower() in lines[0].lower(), f"{match!r} not in {lines[0]!r}"
    assert _digest(inputs) == before, "an input file was modified"
    return lines[0]


def bad_audio_files(folder: Path) -> dict[str, Path]:
    """Files every audio-reading command must refuse: name -> path (``missing`` does not exist)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"missing": folder / "missing.wav"}
    (folder / "empty.wav").write_bytes(b"")
    files["empty"] = folder / "empty.wav"
    (folder / "notaudio.wav").write_bytes(b"RIFF....WAVEfmt definitely not audio" * 20)
    files["not audio"] = folder / "notaudio.wav"
    sf.write(folder / "zero.wav", np.zeros((0, 1)), 44100)
    files["no samples"] = folder / "zero.wav"
    sf.write(folder / "nan.wav", np.array([[0.1], [np.nan], [0.2]] * 100), 44100, subtype="FLOAT")
    files["NaN"] = folder / "nan.wav"
    return files
