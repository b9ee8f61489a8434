"""Audio I/O, resampling and atomic file writes.

Reading and writing go through soundfile (extra ``[io]``), imported lazily. Every problem with a
file (missing, empty, zero-length, not audio, NaN/Inf samples, absurd sample rate, too long) raises
:class:`~diffdsp._validation.InputError` (a ``ValueError``) naming the file and the problem; the CLI
turns it into exit code 2 and one plain line. Writes are atomic (temporary file in the target
folder, then rename) and refuse to replace a protected input file.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffdsp._validation import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    InputError,
    check_sample_rate,
    check_tensor,
)

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "load_audio",
    "resample",
    "save_audio",
]

PathLike = str | os.PathLike[str]


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "reading and writing audio needs soundfile: pip install 'diffdsp[io]'"
        ) from exc
    return soundfile


def load_audio(
    path: PathLike,
    *,
    max_seconds: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, int]:
    """Read an audio file (WAV, FLAC, OGG, ...) into a float tensor.

    Args:
        path: file to read.
        max_seconds: refuse files longer than this (``None``: no limit).
        dtype: floating dtype of the result.

    Returns:
        ``(audio, sample_rate)``, ``audio`` shaped ``(channels, time)`` (in [-1, 1] for PCM).

    Raises:
        InputError: the file is missing, empty, not audio, has no samples, NaN/Inf samples, a sample
            rate outside [1000, 768000] Hz, or is longer than ``max_seconds``.

    Examples:
        >>> from diffdsp import data
        >>> x, sr = load_audio(data.path("rir/seminar_room_clap.flac"))
        >>> x.shape[0], sr
        (1, 44100)
    """
    sf = _soundfile()
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty (0 bytes)")
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise InputError(f"{p}: not a readable audio file ({_short(exc)})") from None
    sr = int(info.samplerate)
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise InputError(
            f"{p}: unsupported sample rate {sr} Hz "
            f"(expected {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)"
        )
    if info.frames == 0:
        raise InputError(f"{p}: audio file has no samples")
    if max_seconds is not None and info.frames > max_seconds * sr:
        raise InputError(
            f"{p}: audio is {info.frames / sr:.1f} s long, longer than the {max_seconds:g} s limit"
        )
    try:
        data, _ = sf.read(str(p), dtype="float64" if dtype == torch.float64 else "float32",
                          always_2d=True)
    except Exception as exc:
        raise InputError(f"{p}: could not decode audio ({_short(exc)})") from None
    audio = torch.from_numpy(data.T.copy()).to(dtype)
    if audio.shape[-1] == 0:
        raise InputError(f"{p}: audio file has no samples")
    if not bool(torch.isfinite(audio).all()):
        n_bad = int((~torch.isfinite(audio)).sum())
        raise InputError(f"{p}: audio contains {n_bad} NaN/Inf samples")
    return audio, sr


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _resolve(p: PathLike) -> Path:
    return Path(p).expanduser().resolve()


def _check_not_input(path: Path, protect: Iterable[PathLike]) -> None:
    for q in protect:
        if _resolve(q) == path:
            raise InputError(f"{path}: refusing to overwrite an input file")


def _atomic_write(path: PathLike, write: Any, protect: Iterable[PathLike] = ()) -> Path:
    target = _resolve(path)
    _check_not_input(target, protect)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create output folder ({exc.strerror})") from None
    # Same folder and suffix, so the rename is atomic and soundfile picks the same format.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=folder)
    except OSError as exc:
        raise InputError(f"{folder}: output folder is not writable ({exc.strerror})") from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: PathLike, payload: bytes, *, protect: Iterable[PathLike] = ()) -> Path:
    """Write bytes atomically (temporary file, then rename); never replace a ``protect`` path."""

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(payload)

    return _atomic_write(path, write, protect)


def atomic_write_text(path: PathLike, text: str, *, protect: Iterable[PathLike] = ()) -> Path:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), protect=protect)


def save_audio(
    path: PathLike,
    audio: Tensor,
    sample_rate: int,
    *,
    subtype: str | None = None,
    protect: Iterable[PathLike] = (),
) -> Path:
    """Write audio atomically; the format follows the extension (``.wav``, ``.flac``, ``.ogg``).

    Args:
        path: output file.
        audio: ``(time,)`` or ``(channels, time)`` tensor, any float dtype and device.
        sample_rate: in Hz.
        subtype: soundfile subtype (``"FLOAT"``, ``"PCM_16"``, ``"PCM_24"``); default: ``FLOAT``
            for WAV (no clipping of the result), the format's default otherwise.
        protect: input paths this write must never replace.

    Returns:
        The resolved path written.

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = save_audio(d / "x.wav", torch.zeros(2, 100), 16000)
        >>> load_audio(d / "x.wav")[0].shape
        torch.Size([2, 100])
    """
    sf = _soundfile()
    sample_rate = check_sample_rate(sample_rate)
    audio = check_tensor(audio, "audio", ndim=(1, 2))
    if audio.ndim == 1:
        audio = audio.unsqueeze(0)
    if audio.shape[-1] == 0:
        raise InputError("audio must have at least one sample, got 0")
    if not bool(torch.isfinite(audio).all()):
        raise InputError("audio to save contains NaN/Inf samples")
    data = audio.detach().to("cpu", torch.float32).numpy().T
    suffix = Path(path).suffix.lower()
    if subtype is None and suffix == ".wav":
        subtype = "FLOAT"

    def write(tmp: str) -> None:
        sf.write(tmp, data, sample_rate, subtype=subtype)

    return _atomic_write(path, write, protect)


def _kaiser_lowpass(numtaps: int, cutoff: float, beta: float, dtype: torch.dtype) -> Tensor:
    """Windowed-sinc low-pass (cutoff as a fraction of Nyquist), unit DC gain (as scipy firwin)."""
    n = torch.arange(numtaps, dtype=torch.float64) - (numtaps - 1) / 2.0
    h = cutoff * torch.sinc(cutoff * n) * torch.kaiser_window(
        numtaps, periodic=False, beta=beta, dtype=torch.float64
    )
    return (h / h.sum()).to(dtype)


def resample(
    x: Tensor,
    orig_sr: int,
    target_sr: int,
    *,
    window_beta: float = 5.0,
    half_width: int = 10,
) -> Tensor:
    """Band-limited polyphase resampling along the last axis (differentiable).

    Implements the same filter and alignment as ``scipy.signal.resample_poly`` (Kaiser-windowed
    sinc with ``beta = 5`` and ``10 * max(up, down)`` taps per side, cutoff at the lower Nyquist),
    evaluated polyphase so that no upsampled signal is materialised.

    Args:
        x: signal ``(..., time)``.
        orig_sr: its sample rate in Hz.
        target_sr: the wanted sample rate in Hz.
        window_beta: Kaiser window shape parameter.
        half_width: filter half-length in units of ``max(up, down)``.

    Returns:
        Resampled signal ``(..., ceil(time * target_sr / orig_sr))``.

    Shape:
        ``(..., T) -> (..., ceil(T * up / down))`` with ``up/down = target_sr/orig_sr`` reduced.

    Examples:
        >>> resample(torch.zeros(2, 44100), 44100, 48000).shape
        torch.Size([2, 48000])

    References:
        Crochiere & Rabiner, "Multirate Digital Signal Processing", 1983 (polyphase filtering).
    """
    x = check_tensor(x, "x", min_ndim=1)
    orig_sr = check_sample_rate(orig_sr, "orig_sr")
    target_sr = check_sample_rate(target_sr, "target_sr")
    if orig_sr == target_sr:
        return x
    g = math.gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    n_in = x.shape[-1]
    max_rate = max(up, down)
    half_len = half_width * max_rate
    h = _kaiser_lowpass(2 * half_len + 1, 1.0 / max_rate, window_beta, x.dtype) * up
    n_out = -(-n_in * up // down)
    # Same padding as scipy so that output sample m sits at input time m * down / up.
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    h = torch.cat([h.new_zeros(n_pre_pad), h])
    taps_per_phase = -(-h.numel() // up)
    h = torch.cat([h, h.new_zeros(taps_per_phase * up - h.numel())]).to(x.device)
    # y[m] = sum_j x[i_hi(m) - j] * h[p(m) + j * up], with q = m*down, i_hi = q // up, p = q % up.
    m = torch.arange(n_pre_remove, n_pre_remove + n_out, device=x.device)
    q = m * down
    i_hi = torch.div(q, up, rounding_mode="floor")
    phase = q - i_hi * up
    pad = taps_per_phase
    xp = torch.nn.functional.pad(x.reshape(-1, n_in), (pad, pad))
    y = x.new_zeros(xp.shape[0], n_out)
    for j in range(taps_per_phase):  # loop over filter taps (~21), not samples
        idx = (i_hi - j + pad).clamp(0, xp.shape[-1] - 1)
        y = y + xp[:, idx] * h[phase + j * up]
    return y.reshape(*x.shape[:-1], n_out)
