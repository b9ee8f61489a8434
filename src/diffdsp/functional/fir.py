"""FIR filters: windowed-sinc design, frequency-sampling design, (time-varying) FIR filtering.

* :func:`firwin` designs low/high/band-pass/band-stop windowed-sinc filters exactly as
  ``scipy.signal.firwin`` (``scale=True``), differentiable in the cutoff frequencies.
* :func:`fir_from_magnitude` turns a sampled magnitude response into a causal linear-phase FIR
  (DDSP's window method: zero-phase inverse FFT, centred, Hann-windowed).
* :func:`fir_filter` convolves with one FIR via FFT; :func:`time_varying_fir` filters frame by
  frame with one FIR per frame and overlap-adds the full convolutions (DDSP's filtered noise).

References:
    scipy.signal.firwin. Engel et al., "DDSP: Differentiable Digital Signal Processing", ICLR 2020
    (``frequency_impulse_response``, ``apply_window_to_impulse_response``, ``fft_convolve``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffdsp._numerics import next_pow2
from diffdsp._validation import (
    InputError,
    as_tensor,
    check_choice,
    check_frequency,
    check_int,
    check_sample_rate,
    check_tensor,
)

__all__ = ["fir_filter", "fir_from_magnitude", "firwin", "get_window", "time_varying_fir"]

_KINDS = ("lowpass", "highpass", "bandpass", "bandstop")


def get_window(
    window: str | tuple[str, float] | Tensor,
    n: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Symmetric window of length ``n`` (as ``scipy.signal.get_window(..., fftbins=False)``).

    Args:
        window: ``"hamming"``, ``"hann"``, ``"blackman"``, ``"boxcar"``, ``("kaiser", beta)`` or
            a tensor of length ``n`` (returned as is).
        n: length.
        dtype: dtype (default float).
        device: device.

    Examples:
        >>> get_window("hann", 5)
        tensor([0.0000, 0.5000, 1.0000, 0.5000, 0.0000])
    """
    n = check_int(n, "n", minimum=1)
    if isinstance(window, Tensor):
        if window.shape != (n,):
            raise InputError(f"window must have shape ({n},), got {tuple(window.shape)}")
        return window
    kw = {"dtype": dtype or torch.get_default_dtype(), "device": device}
    if n == 1:
        return torch.ones(1, **kw)  # type: ignore[arg-type]
    if isinstance(window, tuple):
        if len(window) != 2 or window[0] != "kaiser":
            raise InputError(f"window tuple must be ('kaiser', beta), got {window!r}")
        return torch.kaiser_window(n, periodic=False, beta=float(window[1]), **kw)  # type: ignore[arg-type]
    check_choice(window, "window", ("hamming", "hann", "blackman", "boxcar"))
    if window == "hamming":
        return torch.hamming_window(n, periodic=False, **kw)  # type: ignore[arg-type]
    if window == "hann":
        return torch.hann_window(n, periodic=False, **kw)  # type: ignore[arg-type]
    if window == "blackman":
        return torch.blackman_window(n, periodic=False, **kw)  # type: ignore[arg-type]
    return torch.ones(n, **kw)  # type: ignore[arg-type]


def firwin(
    num_taps: int,
    cutoff_hz: float | Tensor | Sequence[float],
    *,
    sample_rate: int,
    kind: str = "lowpass",
    window: str | tuple[str, float] | Tensor = "hamming",
) -> Tensor:
    """Windowed-sinc FIR design (``scipy.signal.firwin`` with ``scale=True``), differentiable.

    Args:
        num_taps: filter length (odd for ``highpass`` and ``bandstop``, whose Nyquist gain is 1).
        cutoff_hz: cutoff in Hz, in ``(0, sample_rate/2)``: ``(...)`` for low/high-pass,
            ``(..., 2)`` (lower, upper edge) for band-pass/band-stop.
        sample_rate: sample rate in Hz.
        kind: ``"lowpass"``, ``"highpass"``, ``"bandpass"`` or ``"bandstop"``.
        window: window name, ``("kaiser", beta)`` or a tensor (see :func:`get_window`).

    Returns:
        Taps ``(..., num_taps)``, normalised to unit gain at the centre of the first pass band.

    Shape:
        cutoff ``(...)`` or ``(..., 2)`` -> ``(..., num_taps)``.

    Examples:
        >>> h = firwin(5, 1000.0, sample_rate=8000)
        >>> round(float(h.sum()), 6)
        1.0

    References:
        scipy.signal.firwin; Oppenheim & Schafer, window method.
    """
    num_taps = check_int(num_taps, "num_taps", minimum=1)
    sample_rate = check_sample_rate(sample_rate)
    check_choice(kind, "kind", _KINDS)
    if kind in ("highpass", "bandstop") and num_taps % 2 == 0:
        raise InputError(
            f"num_taps must be odd for a {kind} filter (its Nyquist gain is 1), got {num_taps}"
        )
    like = cutoff_hz if isinstance(cutoff_hz, Tensor) else torch.zeros(())
    fc = as_tensor(cutoff_hz if not isinstance(cutoff_hz, (list, tuple)) else list(cutoff_hz), like)
    check_frequency(fc, "cutoff_hz", sample_rate)
    banded = kind in ("bandpass", "bandstop")
    if banded and (fc.ndim == 0 or fc.shape[-1] != 2):
        raise InputError(f"cutoff_hz must have shape (..., 2) for {kind}, got {tuple(fc.shape)}")
    nyq = sample_rate / 2.0
    f = fc / nyq
    m = torch.arange(num_taps, dtype=f.dtype, device=f.device) - (num_taps - 1) / 2.0
    zero = torch.zeros_like(f[..., 0] if banded else f)
    one = torch.ones_like(zero)
    if kind == "lowpass":
        bands = [(zero, f)]
    elif kind == "highpass":
        bands = [(f, one)]
    elif kind == "bandpass":
        bands = [(f[..., 0], f[..., 1])]
    else:
        bands = [(zero, f[..., 0]), (f[..., 1], one)]
    h: Tensor | None = None
    for left, right in bands:
        term = right[..., None] * torch.sinc(right[..., None] * m) - left[..., None] * torch.sinc(
            left[..., None] * m
        )
        h = term if h is None else h + term
    assert h is not None
    h = h * get_window(window, num_taps, dtype=f.dtype, device=f.device)
    left, right = bands[0]
    if kind == "lowpass" or kind == "bandstop":
        scale_f = zero
    elif kind == "highpass":
        scale_f = one
    else:
        scale_f = (left + right) / 2
    s = (h * torch.cos(math.pi * m * scale_f[..., None])).sum(-1, keepdim=True)
    return h / s


def fir_from_magnitude(magnitudes: Tensor, *, num_taps: int | None = None) -> Tensor:
    """Causal linear-phase FIR from a magnitude response sampled on an rfft grid (window method).

    The zero-phase impulse response ``irfft(magnitudes)`` (length ``n = 2 (n_bins - 1)``) is
    rotated so that its centre lands at tap ``(num_taps - 1) // 2``, cropped to ``num_taps`` and
    multiplied by a symmetric Hann window, which smooths the response between the given samples.
    For odd ``num_taps`` the taps are exactly symmetric (linear phase, delay ``(num_taps-1)/2``).

    Args:
        magnitudes: non-negative magnitudes ``(..., n_bins)`` from 0 Hz to Nyquist.
        num_taps: FIR length, ``<= 2 (n_bins - 1)``; default ``2 (n_bins - 1) - 1``.

    Returns:
        Taps ``(..., num_taps)``, differentiable w.r.t. ``magnitudes``.

    Examples:
        >>> h = fir_from_magnitude(torch.ones(5), num_taps=7)
        >>> h
        tensor([0., 0., 0., 1., 0., 0., 0.])

    References:
        Engel et al., ICLR 2020 (DDSP ``frequency_impulse_response``).
    """
    check_tensor(magnitudes, "magnitudes", min_ndim=1)
    n_bins = magnitudes.shape[-1]
    if n_bins < 2:
        raise InputError(f"magnitudes needs at least 2 bins, got {n_bins}")
    n = 2 * (n_bins - 1)
    if num_taps is None:
        num_taps = n - 1
    num_taps = check_int(num_taps, "num_taps", minimum=1, maximum=n)
    ir = torch.fft.irfft(magnitudes, n=n)
    c = (num_taps - 1) // 2
    ir = torch.roll(ir, shifts=c, dims=-1)[..., :num_taps]
    return ir * get_window("hann", num_taps + 2, dtype=ir.dtype, device=ir.device)[1:-1]


def _fft_conv_full(x: Tensor, h: Tensor) -> Tensor:
    """Full linear convolution along the last axis (length Tx + Th - 1)."""
    n_out = x.shape[-1] + h.shape[-1] - 1
    n = next_pow2(n_out)
    return torch.fft.irfft(torch.fft.rfft(x, n=n) * torch.fft.rfft(h, n=n), n=n)[..., :n_out]


def fir_filter(x: Tensor, taps: Tensor, *, compensate_delay: bool = False) -> Tensor:
    """Filter with an FIR by FFT convolution; output has the input's length.

    Args:
        x: input ``(..., T)``.
        taps: FIR ``(..., L)`` (leading dimensions broadcast).
        compensate_delay: drop the first ``(L - 1) // 2`` output samples (the delay of a
            linear-phase FIR) instead of the last ones.

    Returns:
        ``(..., T)``; without ``compensate_delay`` equal to ``lfilter(taps, [1], x)``.

    Examples:
        >>> fir_filter(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0]))
        tensor([1.0000, 3.0000, 5.0000])
    """
    check_tensor(x, "x", min_ndim=1)
    check_tensor(taps, "taps", min_ndim=1)
    T = x.shape[-1]
    start = (taps.shape[-1] - 1) // 2 if compensate_delay else 0
    return _fft_conv_full(x, taps)[..., start : start + T]


def time_varying_fir(x: Tensor, taps: Tensor, *, compensate_delay: bool = False) -> Tensor:
    """Filter ``x`` frame by frame with one FIR per frame, overlap-adding the full convolutions.

    ``x`` is cut into ``frames`` non-overlapping blocks of ``hop = ceil(T / frames)`` samples; block
    ``f`` is convolved (FFT) with ``taps[..., f, :]`` and the ``hop + L - 1`` results are
    overlap-added, so each filter's tail carries into the next frames (DDSP's filtered noise). With
    the same taps in every frame the result equals :func:`fir_filter`.

    Args:
        x: input ``(..., T)``.
        taps: per-frame FIRs ``(..., frames, L)``.
        compensate_delay: as in :func:`fir_filter`.

    Returns:
        ``(..., T)``, differentiable w.r.t. ``x`` and ``taps``.

    Shape:
        x ``(..., T)``, taps ``(..., frames, L)`` -> ``(..., T)``.

    Examples:
        >>> taps = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> time_varying_fir(torch.tensor([1.0, 1.0, 1.0, 1.0]), taps)
        tensor([1., 1., 0., 1.])

    References:
        Engel et al., ICLR 2020 (``fft_convolve`` with per-frame impulse responses).
    """
    check_tensor(x, "x", min_ndim=1)
    check_tensor(taps, "taps", min_ndim=2)
    T = x.shape[-1]
    frames, L = taps.shape[-2], taps.shape[-1]
    if frames < 1 or L < 1 or T < 1:
        raise InputError(
            f"need T, frames, taps >= 1, got x {tuple(x.shape)}, taps {tuple(taps.shape)}"
        )
    hop = math.ceil(T / frames)
    lead = torch.broadcast_shapes(x.shape[:-1], taps.shape[:-2])
    xb = F.pad(x, (0, frames * hop - T)).expand(*lead, frames * hop)
    blocks = xb.reshape(*lead, frames, hop)
    seg = hop + L - 1
    n = next_pow2(seg)
    y = torch.fft.irfft(torch.fft.rfft(blocks, n=n) * torch.fft.rfft(taps, n=n), n=n)[..., :seg]
    B = math.prod(lead)
    out_len = (frames - 1) * hop + seg
    y2 = y.reshape(B, frames, seg).transpose(1, 2)  # (B, seg, frames)
    out = F.fold(y2, output_size=(1, out_len), kernel_size=(1, seg), stride=(1, hop))
    out = out.reshape(*lead, out_len)
    start = (L - 1) // 2 if compensate_delay else 0
    return out[..., start : start + T]
