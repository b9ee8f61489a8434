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


def assert_runs(args: Sequence[str], inputs: Iterable[Path] = ()) -> tuple[str, str]:
    """The command exits 0, no traceback, inputs byte-identical; returns ``(stdout, stderr)``."""
    inputs = list(inputs)
    before = _digest(inputs)
    code, out, err = run_cli(args)
    assert code == 0, f"expected exit 0 for {list(args)}, got {code}; stderr: {err}"
    assert "Traceback" not in err, err
    assert _digest(inputs) == before, "an input file was modified"
    return out, err


def _tone(sample_rate: int, seconds: float, channels: int = 1, f0_hz: float = 220.0) -> np.ndarray:
    """A decaying harmonic note (five harmonics below Nyquist) plus a little noise, ``(T, C)``."""
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    x = sum(0.3 / k * np.sin(2 * np.pi * f0_hz * k * t) for k in range(1, 6)
            if f0_hz * k < sample_rate / 2)
    x = x * np.minimum(1.0, t / 0.02) * np.exp(-t / 1.5)
    x = x + 0.003 * np.random.default_rng(channels).standard_normal(t.size)
    # channels differ (gains), so a per-channel process is visible
    return (x[:, None] * np.linspace(1.0, 0.5, channels)[None]).astype(np.float32)


def _rir(sample_rate: int, seconds: float, channels: int = 1, t60_s: float = 0.3) -> np.ndarray:
    """An exponentially decaying noise tail after a direct-sound click, ``(T, C)``."""
    n = round(sample_rate * seconds)
    t = np.arange(n) / sample_rate
    h = np.random.default_rng(1).standard_normal((n, channels)) * 0.3
    h *= np.exp(-6.9 * t / t60_s)[:, None]
    h[:5] = 0.0
    h[5] = 1.0
    return h.astype(np.float32)


def odd_audio_files(folder: Path, kind: str = "tone", seconds: float = 0.5,
                    long: bool = True) -> dict[str, Path]:
    """Valid but unusual files: ``8 kHz``, ``192 kHz``, ``8 channels`` (16-bit PCM, ``seconds``
    long) and, with ``long``, ``10 minutes`` (8 kHz 16-bit, 9.6 MB).

    ``kind`` is ``"tone"`` (a harmonic note) or ``"rir"`` (a decaying noise tail).
    """
    folder.mkdir(parents=True, exist_ok=True)
    make = _tone if kind == "tone" else _rir
    files = {}
    for name, sr, ch in (("8 kHz", 8000, 1), ("192 kHz", 192000, 1), ("8 channels", 22050, 8)):
        p = folder / f"{kind}_{name.replace(' ', '')}.wav"
        sf.write(p, make(sr, seconds, ch), sr, subtype="PCM_16")
        files[name] = p
    if not long:
        return files
    p = folder / f"{kind}_10min.wav"
    period = make(8000, 2.0)  # the 10 minutes repeat a 2 s excerpt: cheap to write
    with sf.SoundFile(p, "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        for _ in range(300):
            f.write(period)
    files["10 minutes"] = p
    return files
