"""Audio analysis: STFT and mel helpers, loudness, pitch, and room-acoustic parameters.

Every function is pure and batched over ``(..., time)``; names carry units (``_db``, ``_hz``,
``_s``, ``_lufs``). All of them are safe on silence, DC, clicks, zero padding and clipping: logs go
through :func:`diffdsp._numerics.safe_log10`, divisions through ``safe_divide``.

Room-acoustic parameters follow ISO 3382-1: the Schroeder energy decay curve (backward integral),
T60 from a line fitted to the EDC between -5 and -35 dB (T30), -5 and -25 dB (T20) or 0 and -10 dB
(EDT), extrapolated to 60 dB, per octave or third-octave band. **Noise-floor handling** (a
documented simpler alternative to Lundeby's iteration): before integrating, the noise floor is
estimated as the mean power of the last 10 % of the response; the response is truncated where its
smoothed (10 ms) energy envelope first falls to 5 dB above that floor, and the floor power is
subtracted from the integral (Chu's compensation). On a noiseless decay both steps do nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffdsp._numerics import EPS_POWER, power_to_db, safe_divide, safe_log10, safe_sqrt
from diffdsp._validation import (
    InputError,
    check_choice,
    check_int,
    check_sample_rate,
    check_tensor,
)

__all__ = [
    "a_weighting_db",
    "band_center_frequencies_hz",
    "clarity_db",
    "drr_db",
    "echo_density_profile",
    "edc_db",
    "f0_yin",
    "get_window",
    "k_weighting_sos",
    "loudness_lufs",
    "mel_filterbank",
    "mel_spectrogram",
    "mixing_time_s",
    "octave_filterbank",
    "rms_db",
    "schroeder_edc",
    "short_term_loudness_lufs",
    "spectral_centroid_hz",
    "stft",
    "stft_magnitude",
    "t60_per_band",
]

_WINDOWS = ("hann", "hamming", "blackman", "bartlett", "rectangular")


def get_window(
    name: str, win_length: int, *, dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """A periodic analysis window (torch's convention, as ``torch.hann_window(n)``).

    Args:
        name: ``"hann"``, ``"hamming"``, ``"blackman"``, ``"bartlett"`` or ``"rectangular"``
            (a ``"_window"`` suffix as in auraloss is accepted).
        win_length: window length in samples, >= 1.
        dtype: floating dtype (default: torch's default).
        device: device.

    Returns:
        ``(win_length,)`` window.

    Examples:
        >>> get_window("hann", 4)
        tensor([0.0000, 0.5000, 1.0000, 0.5000])
    """
    key = name[:-7] if name.endswith("_window") else name
    check_choice(key, "window", _WINDOWS)
    n = check_int(win_length, "win_length", minimum=1)
    kw = {"dtype": dtype, "device": device}
    if key == "rectangular":
        return torch.ones(n, **kw)  # type: ignore[arg-type]
    fn = {
        "hann": torch.hann_window,
        "hamming": torch.hamming_window,
        "blackman": torch.blackman_window,
        "bartlett": torch.bartlett_window,
    }[key]
    return fn(n, **kw)  # type: ignore[arg-type]


def _check_stft_args(x: Tensor, n_fft: int, hop_length: int, win_length: int, center: bool) -> None:
    check_int(n_fft, "n_fft", minimum=2)
    check_int(hop_length, "hop_length", minimum=1)
    check_int(win_length, "win_length", minimum=1, maximum=n_fft)
    length = x.shape[-1]
    if center and length <= n_fft // 2:
        raise InputError(
            f"signal length must be > n_fft // 2 = {n_fft // 2} for centred (reflect-padded) "
            f"frames, got {length} samples"
        )
    if not center and length < n_fft:
        raise InputError(f"signal length must be >= n_fft = {n_fft} without centring, got {length}")


def stft(
    x: Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | Tensor = "hann",
    center: bool = True,
) -> Tensor:
    """One-sided STFT of ``(..., time)`` signals, frames along the second-to-last axis.

    Equal to ``torch.stft(x, n_fft, hop_length, win_length, window, center=center,
    pad_mode="reflect", return_complex=True).transpose(-1, -2)`` up to a linear phase term per bin
    when ``win_length < n_fft`` (frames are the ``win_length`` windowed samples zero-padded at the
    end rather than centred): magnitudes are identical. Framing is a strided view; the backward
    pass is an overlap-add, far cheaper than ``torch.stft``'s ``as_strided`` backward.

    Args:
        x: signal ``(..., time)``.
        n_fft: FFT size in samples.
        hop_length: hop in samples.
        win_length: window length in samples (default ``n_fft``), <= ``n_fft``.
        window: window name (see :func:`get_window`) or a ``(win_length,)`` tensor.
        center: reflect-pad ``n_fft // 2`` samples on both sides (torch/librosa convention).

    Returns:
        Complex spectrum ``(..., frames, n_fft // 2 + 1)``,
        ``frames = 1 + (time + 2 * (n_fft // 2) - n_fft) // hop_length`` when centred.

    Shape:
        ``(..., T) -> (..., 1 + T // hop, n_fft // 2 + 1)`` for even ``n_fft`` and ``center``.

    Examples:
        >>> stft(torch.zeros(2, 1000), n_fft=256, hop_length=64).shape
        torch.Size([2, 16, 129])

    References:
        Allen & Rabiner, "A unified approach to short-time Fourier analysis", Proc. IEEE 1977.
    """
    check_tensor(x, "x", min_ndim=1)
    win_length = n_fft if win_length is None else win_length
    _check_stft_args(x, n_fft, hop_length, win_length, center)
    w = window if isinstance(window, Tensor) else get_window(
        window, win_length, dtype=x.dtype, device=x.device
    )
    if w.shape[-1] != win_length:
        raise InputError(f"window must have win_length = {win_length} samples, got {w.shape[-1]}")
    length = x.shape[-1]
    lead = x.shape[:-1]
    if center:
        pad = n_fft // 2
        xp = F.pad(x.reshape(-1, 1, length), (pad, pad), mode="reflect").reshape(*lead, -1)
    else:
        xp = x
    n_frames = 1 + (xp.shape[-1] - n_fft) // hop_length
    left = (n_fft - win_length) // 2
    span = (n_frames - 1) * hop_length + win_length
    frames = xp[..., left : left + span].unfold(-1, win_length, hop_length)
    return torch.fft.rfft(frames * w, n=n_fft)


def stft_magnitude(
    x: Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | Tensor = "hann",
    center: bool = True,
    power: float = 1.0,
    eps: float = EPS_POWER,
) -> Tensor:
    """STFT magnitude ``max(|X|^2, eps) ** (power / 2)`` with finite gradients at silence.

    Args:
        x: signal ``(..., time)``.
        n_fft: FFT size in samples.
        hop_length: hop in samples.
        win_length: window length in samples (default ``n_fft``).
        window: window name or tensor.
        center: reflect-pad by ``n_fft // 2`` (torch/librosa convention).
        power: 1 for magnitude, 2 for power.
        eps: floor on ``|X|^2`` (the gradient below it is zero).

    Returns:
        ``(..., frames, n_fft // 2 + 1)`` real tensor.

    Examples:
        >>> m = stft_magnitude(torch.ones(1, 512), n_fft=64, hop_length=16)
        >>> round(float(m[0, 10, 0]), 3)  # DC bin of a constant: the window sum
        32.0

    References:
        Allen & Rabiner, Proc. IEEE 1977.
    """
    spec = stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                center=center)
    p = torch.view_as_real(spec).square().sum(-1).clamp_min(eps)
    if power == 2.0:
        return p
    if power == 1.0:
        return p.sqrt()
    return p.pow(power / 2.0)


def hz_to_mel(f_hz: Tensor) -> Tensor:
    """Slaney mel scale (librosa's default, ``htk=False``): linear below 1 kHz, log above."""
    f_sp = 200.0 / 3.0
    logstep = math.log(6.4) / 27.0
    lin = f_hz / f_sp
    return torch.where(f_hz >= 1000.0, 15.0 + torch.log(f_hz.clamp_min(1e-3) / 1000.0) / logstep,
                       lin)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    f_sp = 200.0 / 3.0
    logstep = math.log(6.4) / 27.0
    return torch.where(mel >= 15.0, 1000.0 * torch.exp(logstep * (mel - 15.0)), f_sp * mel)


@functools.lru_cache(maxsize=32)
def _mel_fb_np(sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float) -> Tensor:
    fft_f = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(float(hz_to_mel(torch.tensor(fmin_hz, dtype=torch.float64))),
                          float(hz_to_mel(torch.tensor(fmax_hz, dtype=torch.float64))),
                          n_mels + 2, dtype=torch.float64)
    f_pts = mel_to_hz(mels)
    fdiff = f_pts[1:] - f_pts[:-1]
    ramps = f_pts[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    enorm = 2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])
    return weights * enorm[:, None]


def mel_filterbank(
    *, sample_rate: int, n_fft: int, n_mels: int = 128, fmin_hz: float = 0.0,
    fmax_hz: float | None = None, dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Triangular mel filterbank ``(n_mels, n_fft // 2 + 1)`` (Slaney scale and area norm).

    Same definition as ``librosa.filters.mel`` defaults (``htk=False, norm="slaney"``). Designed
    once per configuration and cached.

    Args:
        sample_rate: sample rate in Hz.
        n_fft: FFT size in samples.
        n_mels: number of mel bands.
        fmin_hz: lowest band edge in Hz.
        fmax_hz: highest band edge in Hz (default ``sample_rate / 2``).
        dtype: output dtype.
        device: output device.

    Returns:
        ``(n_mels, n_fft // 2 + 1)`` non-negative weights.

    Examples:
        >>> mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40).shape
        torch.Size([40, 257])

    References:
        Slaney, "Auditory Toolbox", Interval Research TR 1998-010.
    """
    sr = check_sample_rate(sample_rate)
    check_int(n_fft, "n_fft", minimum=2)
    check_int(n_mels, "n_mels", minimum=1)
    fmax = sr / 2.0 if fmax_hz is None else float(fmax_hz)
    if not 0.0 <= fmin_hz < fmax <= sr / 2.0:
        raise InputError(
            f"need 0 <= fmin_hz < fmax_hz <= {sr / 2.0} for sample_rate {sr}, "
            f"got fmin_hz={fmin_hz}, fmax_hz={fmax}"
        )
    fb = _mel_fb_np(sr, int(n_fft), int(n_mels), float(fmin_hz), fmax)
    return fb.to(dtype=dtype or torch.get_default_dtype(), device=device)


def mel_spectrogram(
    x: Tensor, *, sample_rate: int, n_fft: int, hop_length: int, win_length: int | None = None,
    n_mels: int = 128, fmin_hz: float = 0.0, fmax_hz: float | None = None, power: float = 1.0,
    eps: float = EPS_POWER,
) -> Tensor:
    """Mel spectrogram ``(..., frames, n_mels)`` of a ``(..., time)`` signal.

    Args:
        x: signal ``(..., time)``.
        sample_rate: sample rate in Hz.
        n_fft: FFT size in samples.
        hop_length: hop in samples.
        win_length: Hann window length (default ``n_fft``).
        n_mels: number of mel bands.
        fmin_hz: lowest band edge in Hz.
        fmax_hz: highest band edge in Hz.
        power: exponent of the magnitude before the filterbank (1 or 2).
        eps: floor on ``|X|^2``.

    Returns:
        ``(..., frames, n_mels)``.

    Examples:
        >>> mel_spectrogram(torch.zeros(1, 4000), sample_rate=16000, n_fft=512,
        ...                 hop_length=128, n_mels=40).shape
        torch.Size([1, 32, 40])

    References:
        Slaney 1998; librosa.feature.melspectrogram.
    """
    mag = stft_magnitude(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                         power=power, eps=eps)
    fb = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin_hz=fmin_hz,
                        fmax_hz=fmax_hz, dtype=x.dtype, device=x.device)
    return mag @ fb.T


def a_weighting_db(freqs_hz: Tensor) -> Tensor:
    """A-weighting gain in dB at the given frequencies (IEC 61672-1), 0 dB at 1 kHz.

    ``R_A(f) = 12194^2 f^4 / ((f^2 + 20.6^2) sqrt((f^2 + 107.7^2)(f^2 + 737.9^2))
    (f^2 + 12194^2))``,
    ``A(f) = 20 log10 R_A(f) + 2.00``. At 0 Hz the gain is floored (``-inf`` mathematically) at the
    -140 dB amplitude floor of :func:`diffdsp._numerics.amp_to_db` plus 2 dB.

    Args:
        freqs_hz: frequencies in Hz, any shape, >= 0.

    Returns:
        Gains in dB, same shape.

    Examples:
        >>> a_weighting_db(torch.tensor([1000.0, 100.0])).round(decimals=1)
        tensor([  0.0000, -19.1000])

    References:
        IEC 61672-1:2013, Annex E.
    """
    check_tensor(freqs_hz, "freqs_hz")
    f2 = freqs_hz.to(torch.float64) ** 2 if freqs_hz.dtype != torch.float64 else freqs_hz**2
    c1, c2, c3, c4 = 20.598997**2, 107.65265**2, 737.86223**2, 12194.217**2
    ra = c4 * f2**2 / ((f2 + c1) * torch.sqrt((f2 + c2) * (f2 + c3)) * (f2 + c4))
    out = 20.0 * safe_log10(ra, 1e-7) + 2.0
    return out.to(freqs_hz.dtype)


# ----------------------------------------------------------------------------------------------
# level, loudness, centroid


def rms_db(
    x: Tensor, *, frame_length: int | None = None, hop_length: int | None = None,
    eps: float = EPS_POWER,
) -> Tensor:
    """RMS level in dB (re full scale 1.0): over the whole signal, or per frame.

    Args:
        x: signal ``(..., time)``.
        frame_length: frame length in samples (``None``: one value for the whole signal).
        hop_length: hop in samples (default ``frame_length // 4``).
        eps: floor on the mean power (silence gives ``10 log10(eps)`` = -140 dB).

    Returns:
        ``(...)`` or ``(..., frames)`` in dB.

    Examples:
        >>> round(float(rms_db(torch.ones(100) * 0.1)), 3)
        -20.0

    References:
        IEC 61672-1 (RMS level).
    """
    check_tensor(x, "x", min_ndim=1)
    if frame_length is None:
        return power_to_db(x.square().mean(-1), eps)
    n = check_int(frame_length, "frame_length", minimum=1, maximum=x.shape[-1])
    hop = check_int(hop_length or max(1, n // 4), "hop_length", minimum=1)
    return power_to_db(x.unfold(-1, n, hop).square().mean(-1), eps)


@functools.lru_cache(maxsize=16)
def _k_weighting_sos_cached(sample_rate: int) -> Tensor:
    from diffdsp.functional.filters import biquad

    b1, a1 = biquad("highshelf", cutoff_hz=1500.0, q=1.0 / math.sqrt(2.0), gain_db=4.0,
                    sample_rate=sample_rate)
    b2, a2 = biquad("highpass", cutoff_hz=38.0, q=0.5, sample_rate=sample_rate)
    return torch.stack([torch.cat([b1, a1]), torch.cat([b2, a2])]).to(torch.float64)


def k_weighting_sos(*, sample_rate: int, dtype: torch.dtype | None = None) -> Tensor:
    """BS.1770 K-weighting as two second-order sections ``(2, 6)`` (shelf +4 dB, then high-pass).

    The pre-filter is the RBJ high shelf (1500 Hz, Q = 1/sqrt(2), +4 dB) and the RLB filter the
    RBJ high-pass (38 Hz, Q = 0.5), designed at any sample rate (as pyloudnorm; at 48 kHz within
    0.05 dB of the standard's tabulated coefficients over 20 Hz - 20 kHz).

    Examples:
        >>> k_weighting_sos(sample_rate=48000).shape
        torch.Size([2, 6])

    References:
        ITU-R BS.1770-4, Sec. 2.1 and Tables 1-2; Steinmetz & Reiss, pyloudnorm, AES 2021.
    """
    sr = check_sample_rate(sample_rate)
    return _k_weighting_sos_cached(sr).to(dtype or torch.get_default_dtype())


def _k_weight(x: Tensor, sample_rate: int) -> Tensor:
    from diffdsp.functional.iir import sosfilt

    sos = k_weighting_sos(sample_rate=sample_rate, dtype=x.dtype).to(x.device)
    return sosfilt(sos, x)


_BS1770_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)


def _channel_power(z: Tensor, multichannel: bool) -> Tensor:
    """Weighted sum over the channel axis (-2) of block powers ``(..., C, blocks)``."""
    if not multichannel:
        return z
    n_ch = z.shape[-2]
    if n_ch > 5:
        raise InputError(f"BS.1770 weights are defined for up to 5 channels, got {n_ch}")
    g = torch.tensor(_BS1770_GAINS[:n_ch], dtype=z.dtype, device=z.device)
    return (z * g[:, None]).sum(-2)


def _block_powers(y: Tensor, sample_rate: int, block_s: float, overlap: float) -> Tensor:
    """Mean square of K-weighted ``y`` over gating blocks (pyloudnorm's block boundaries)."""
    n = y.shape[-1]
    t_total = n / sample_rate
    step = 1.0 - overlap
    n_blocks = round((t_total - block_s) / (block_s * step)) + 1
    if n_blocks < 1:
        raise InputError(
            f"signal must be at least {block_s} s long for loudness blocks, got {t_total:.4f} s"
        )
    lo = [int(block_s * (j * step) * sample_rate) for j in range(n_blocks)]
    hi = [min(n, int(block_s * (j * step + 1) * sample_rate)) for j in range(n_blocks)]
    c = F.pad(torch.cumsum(y.to(torch.float64).square(), -1), (1, 0))
    idx_lo = torch.tensor(lo, device=y.device)
    idx_hi = torch.tensor(hi, device=y.device)
    z = (c[..., idx_hi] - c[..., idx_lo]) / (block_s * sample_rate)
    return z.clamp_min(0.0)


def loudness_lufs(
    x: Tensor, *, sample_rate: int, multichannel: bool = False, block_s: float = 0.4,
    overlap: float = 0.75, eps: float = EPS_POWER,
) -> Tensor:
    """Integrated loudness in LUFS per ITU-R BS.1770-4 (K-weighting, 400 ms blocks, gating).

    Blocks of ``block_s`` with ``overlap``; absolute gate -70 LUFS, relative gate -10 LU below the
    absolutely-gated mean. Gates are hard masks (no gradient through them); the value is
    differentiable w.r.t. ``x`` through the block energies. Silence (no block above the absolute
    gate) gives ``-0.691 + 10 log10(eps)`` = -140.7 LUFS instead of ``-inf``.

    Args:
        x: signal ``(..., time)``; with ``multichannel`` the channels are axis -2 (order L, R, C,
            Ls, Rs, weights 1, 1, 1, 1.41, 1.41).
        sample_rate: sample rate in Hz.
        multichannel: sum channels (axis -2) with BS.1770 weights.
        block_s: gating block length in seconds.
        overlap: block overlap fraction in [0, 1).
        eps: floor on the gated mean power.

    Returns:
        ``(...)`` loudness in LUFS (without the channel axis when ``multichannel``).

    Examples:
        >>> t = torch.arange(48000) / 48000
        >>> x = 0.5 * torch.sin(2 * math.pi * 1000 * t)
        >>> round(float(loudness_lufs(x, sample_rate=48000)), 1)
        -9.0

    References:
        ITU-R BS.1770-4 (2015), eqs. (1)-(7); pyloudnorm (Steinmetz & Reiss, AES 2021).
    """
    check_tensor(x, "x", min_ndim=2 if multichannel else 1)
    sr = check_sample_rate(sample_rate)
    if not 0.0 <= overlap < 1.0:
        raise InputError(f"overlap must be in [0, 1), got {overlap}")
    z = _block_powers(_k_weight(x, sr), sr, block_s, overlap)
    p = _channel_power(z, multichannel)  # (..., blocks) float64
    with torch.no_grad():
        lj = -0.691 + 10.0 * torch.log10(p.clamp_min(1e-300))
        abs_gate = lj >= -70.0
        mean_abs = (p * abs_gate).sum(-1) / abs_gate.sum(-1).clamp_min(1)
        gamma_r = -0.691 + 10.0 * torch.log10(mean_abs.clamp_min(1e-300)) - 10.0
        gate = abs_gate & (lj > gamma_r[..., None])
    zg = z * gate.unsqueeze(-2) if multichannel else z * gate
    count = gate.sum(-1).clamp_min(1).to(z.dtype)
    if multichannel:
        zbar = zg.sum(-1) / count[..., None]
    else:
        zbar = zg.sum(-1) / count
    ptot = _channel_power(zbar[..., None], multichannel)[..., 0] if multichannel else zbar
    out = -0.691 + 10.0 * safe_log10(ptot, eps)
    return out.to(x.dtype)


def short_term_loudness_lufs(
    x: Tensor, *, sample_rate: int, window_s: float = 3.0, hop_s: float = 0.1,
    multichannel: bool = False, eps: float = EPS_POWER,
) -> Tensor:
    """Ungated K-weighted loudness over sliding windows (EBU R128 short-term 3 s, momentary 0.4 s).

    Args:
        x: signal ``(..., time)`` (channels on axis -2 with ``multichannel``).
        sample_rate: sample rate in Hz.
        window_s: window length in seconds.
        hop_s: hop in seconds.
        multichannel: sum channels with BS.1770 weights.
        eps: floor on the mean power.

    Returns:
        ``(..., frames)`` in LUFS; frame ``j`` covers ``[j hop, j hop + window)``.

    Examples:
        >>> x = 0.5 * torch.sin(2 * math.pi * 1000 * torch.arange(96000) / 48000)
        >>> short_term_loudness_lufs(x, sample_rate=48000, window_s=0.4).shape
        torch.Size([17])

    References:
        EBU Tech 3341 (2016); ITU-R BS.1770-4.
    """
    check_tensor(x, "x", min_ndim=2 if multichannel else 1)
    sr = check_sample_rate(sample_rate)
    n_win = round(window_s * sr)
    hop = max(1, round(hop_s * sr))
    if x.shape[-1] < n_win:
        raise InputError(f"signal must be at least window_s = {window_s} s long, got "
                         f"{x.shape[-1] / sr:.4f} s")
    y = _k_weight(x, sr)
    c = F.pad(torch.cumsum(y.to(torch.float64).square(), -1), (1, 0))
    starts = torch.arange(0, x.shape[-1] - n_win + 1, hop, device=x.device)
    z = ((c[..., starts + n_win] - c[..., starts]) / n_win).clamp_min(0.0)
    p = _channel_power(z, multichannel)
    return (-0.691 + 10.0 * safe_log10(p, eps)).to(x.dtype)


def spectral_centroid_hz(
    x: Tensor, *, sample_rate: int, n_fft: int = 2048, hop_length: int = 512,
    eps: float = EPS_POWER,
) -> Tensor:
    """Spectral centroid per frame in Hz, ``sum f |X(f)| / sum |X(f)|`` (0 Hz for silent frames).

    Args:
        x: signal ``(..., time)``.
        sample_rate: sample rate in Hz.
        n_fft: FFT size (Hann window of the same length).
        hop_length: hop in samples.
        eps: floor on the magnitude sum.

    Returns:
        ``(..., frames)`` in Hz.

    Examples:
        >>> x = torch.sin(2 * math.pi * 1000 * torch.arange(16000) / 16000)
        >>> round(float(spectral_centroid_hz(x, sample_rate=16000, n_fft=1024)[5]) / 100)
        10

    References:
        Peeters, "A large set of audio features", CUIDADO report, 2004, Sec. 6.1.
    """
    sr = check_sample_rate(sample_rate)
    p = stft_magnitude(x, n_fft=n_fft, hop_length=hop_length, power=2.0, eps=0.0)
    mag = p / safe_sqrt(p, eps)  # = |X| above the floor, -> 0 (not sqrt(eps)) on silence
    freqs = torch.linspace(0.0, sr / 2.0, n_fft // 2 + 1, dtype=x.dtype, device=x.device)
    return safe_divide((mag * freqs).sum(-1), mag.sum(-1), eps)


# ----------------------------------------------------------------------------------------------
# pitch


def f0_yin(
    x: Tensor,
    *,
    sample_rate: int,
    frame_rate_hz: float | None = None,
    hop: int | None = None,
    fmin_hz: float = 40.0,
    fmax_hz: float = 2000.0,
    frame_length: int | None = None,
    threshold: float = 0.1,
) -> tuple[Tensor, Tensor]:
    """Fundamental frequency per frame with YIN, and a voicing confidence in [0, 1].

    Difference function by FFT autocorrelation, cumulative-mean normalisation, absolute threshold
    (first dip below ``threshold`` followed to its local minimum, else the global minimum),
    parabolic interpolation. All frames at once, no Python loop over frames or lags. Not
    differentiable (an arg-min): the outputs are detached.

    Args:
        x: signal ``(..., time)``.
        sample_rate: sample rate in Hz.
        frame_rate_hz: frames per second (exclusive with ``hop``; default 100 Hz).
        hop: hop in samples.
        fmin_hz: lowest f0 searched in Hz.
        fmax_hz: highest f0 searched in Hz.
        frame_length: integration window in samples (default: the longest period searched,
            ``ceil(sample_rate / fmin_hz)``; must exceed half of it).
        threshold: YIN absolute threshold on the normalised difference.

    Returns:
        ``(f0_hz, confidence)``, each ``(..., frames)``; frame ``k`` is centred on sample
        ``k * hop``; ``confidence = 1 - d'(tau)`` clamped to [0, 1] (near 1: periodic; near 0:
        noise or silence, where ``f0_hz`` is still the best lag but meaningless).

    Examples:
        >>> t = torch.arange(16000) / 16000
        >>> f0, conf = f0_yin(torch.sin(2 * math.pi * 220 * t), sample_rate=16000)
        >>> round(float(f0[50]), 1), bool(conf[50] > 0.9)
        (220.0, True)

    References:
        de Cheveigné & Kawahara, "YIN, a fundamental frequency estimator for speech and music",
        JASA 111(4), 2002, steps 1-5.
    """
    check_tensor(x, "x", min_ndim=1)
    sr = check_sample_rate(sample_rate)
    if frame_rate_hz is not None and hop is not None:
        raise InputError("give frame_rate_hz or hop, not both")
    if hop is None:
        hop = round(sr / (frame_rate_hz if frame_rate_hz is not None else 100.0))
    hop = check_int(hop, "hop", minimum=1)
    if not 0.0 < fmin_hz < fmax_hz < sr / 2.0:
        raise InputError(
            f"need 0 < fmin_hz < fmax_hz < {sr / 2.0} for sample_rate {sr}, got fmin_hz={fmin_hz},"
            f" fmax_hz={fmax_hz}"
        )
    tau_min = max(2, math.floor(sr / fmax_hz))
    tau_max = math.ceil(sr / fmin_hz)
    w = int(frame_length) if frame_length is not None else tau_max
    w = check_int(w, "frame_length", minimum=tau_max // 2 + 1)
    with torch.no_grad():
        xd = x.detach()
        length = xd.shape[-1]
        n_frames = 1 + length // hop
        total = w + tau_max + 1
        lead = xd.shape[:-1]
        xr = xd.reshape(-1, length)
        left = total // 2
        need = (n_frames - 1) * hop + total
        xp = F.pad(xr, (left, max(0, need - left - length)))
        frames = xp.unfold(-1, total, hop)[:, :n_frames].to(torch.float64)  # (R, F, total)
        n_fft = 1 << math.ceil(math.log2(2 * total))
        spec_full = torch.fft.rfft(frames, n=n_fft)
        spec_head = torch.fft.rfft(frames[..., :w], n=n_fft)
        acf = torch.fft.irfft(spec_full * spec_head.conj(), n=n_fft)[..., : tau_max + 1]
        sq = F.pad(torch.cumsum(frames.square(), -1), (1, 0))
        taus = torch.arange(tau_max + 1, device=x.device)
        e0 = sq[..., w : w + 1]  # energy of frames[:w]
        e_tau = sq[..., taus + w] - sq[..., taus]
        d = (e0 + e_tau - 2.0 * acf).clamp_min(0.0)
        cum = torch.cumsum(d[..., 1:], -1)
        dn = torch.ones_like(d)
        dn[..., 1:] = d[..., 1:] * taus[1:] / cum.clamp_min(1e-12 * float(w))
        dn = torch.where(cum.new_ones(()).bool() & (F.pad(cum, (1, 0)) > 0), dn,
                         torch.ones_like(dn))
        search = dn[..., tau_min : tau_max + 1]
        nxt = torch.cat([search[..., 1:], search[..., -1:]], -1)
        is_dip = (search < threshold) & (search <= nxt)
        has_dip = is_dip.any(-1)
        first_dip = is_dip.to(torch.int8).argmax(-1)
        global_min = search.argmin(-1)
        k = torch.where(has_dip, first_dip, global_min)
        # parabolic interpolation on the raw difference function (step 5)
        raw = d[..., tau_min : tau_max + 1]
        km = (k - 1).clamp_min(0)
        kp = (k + 1).clamp_max(search.shape[-1] - 1)
        a = raw.gather(-1, km[..., None])[..., 0]
        b_raw = raw.gather(-1, k[..., None])[..., 0]
        b = search.gather(-1, k[..., None])[..., 0]
        c = raw.gather(-1, kp[..., None])[..., 0]
        den = a - 2.0 * b_raw + c
        shift = torch.where((den.abs() > 1e-12) & (k > 0) & (k < search.shape[-1] - 1),
                            0.5 * (a - c) / torch.where(den.abs() > 1e-12, den, 1.0), 0.0)
        shift = shift.clamp(-1.0, 1.0)
        tau = (k + tau_min).to(torch.float64) + shift
        f0 = sr / tau
        conf = (1.0 - b).clamp(0.0, 1.0)
    return f0.to(x.dtype).reshape(*lead, n_frames), conf.to(x.dtype).reshape(*lead, n_frames)


# ----------------------------------------------------------------------------------------------
# room acoustics: bands, EDC, T60, DRR, clarity, echo density


def band_center_frequencies_hz(
    bands: str, *, sample_rate: int, fmin_hz: float | None = None, fmax_hz: float | None = None
) -> list[float]:
    """Exact base-2 centre frequencies ``1000 * 2^(k/b)`` of octave (b=1) or third-octave (b=3)
    bands whose upper edge is below Nyquist, within ``[fmin_hz, fmax_hz]``.

    Defaults: octave 63 Hz - 8 kHz; third-octave 20 Hz - 12.5 kHz (nominal), as in Dal Santo's
    tutorial.

    Examples:
        >>> [round(f, 1) for f in band_center_frequencies_hz("octave", sample_rate=48000)]
        [62.5, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0]

    References:
        IEC 61260-1:2014 (base-2 band centres).
    """
    check_choice(bands, "bands", ("octave", "third_octave"))
    sr = check_sample_rate(sample_rate)
    b = 1 if bands == "octave" else 3
    lo = fmin_hz if fmin_hz is not None else (60.0 if b == 1 else 19.0)
    hi = fmax_hz if fmax_hz is not None else (8500.0 if b == 1 else 13000.0)
    out = []
    for k in range(-40, 40):
        fc = 1000.0 * 2.0 ** (k / b)
        if lo <= fc <= hi and fc * 2.0 ** (1.0 / (2 * b)) < sr / 2.0:
            out.append(fc)
    if not out:
        raise InputError(f"no {bands} band between {lo} and {hi} Hz below Nyquist {sr / 2.0}")
    return out


@functools.lru_cache(maxsize=64)
def _band_mags(
    sample_rate: int, n_fft: int, centers: tuple[float, ...], b: int, order: int,
    dtype: torch.dtype, device: str,
) -> Tensor:
    f = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    fc = torch.tensor(centers, dtype=torch.float64)[:, None]
    q = 1.0 / (2.0 ** (1.0 / (2 * b)) - 2.0 ** (-1.0 / (2 * b)))
    fs = f.clamp_min(1e-6)[None, :]
    u = q * (fs / fc - fc / fs)
    mag = 1.0 / (1.0 + u ** (2 * order))
    mag[:, 0] = 0.0
    return mag.to(dtype=dtype, device=torch.device(device))


def octave_filterbank(
    x: Tensor, *, sample_rate: int, bands: str = "octave",
    center_frequencies_hz: Sequence[float] | None = None, order: int = 3,
) -> Tensor:
    """Split ``(..., time)`` into octave / third-octave bands ``(..., n_bands, time)``.

    Zero-phase Butterworth band-pass ``|H| = 1 / (1 + (Q (f/fc - fc/f))^(2 order))``, i.e. the
    response of forward-backward filtering (``scipy.signal.sosfiltfilt``) with an analog-prototype
    Butterworth band-pass of the given order (-6 dB at the band edges ``fc 2^(+-1/2b)``), applied
    in the frequency domain with zero padding to ``>= 2 x`` the length (no circular wrap). The
    magnitudes are designed once per (rate, length, bands) and cached on the input's device; all
    bands are one batched inverse FFT, no Python loop over bands.

    Args:
        x: signal ``(..., time)``.
        sample_rate: sample rate in Hz.
        bands: ``"octave"`` or ``"third_octave"``.
        center_frequencies_hz: explicit centres (default :func:`band_center_frequencies_hz`).
        order: Butterworth order of each band edge.

    Returns:
        ``(..., n_bands, time)``.

    Examples:
        >>> octave_filterbank(torch.randn(2, 4800), sample_rate=48000).shape
        torch.Size([2, 8, 4800])

    References:
        IEC 61260-1:2014; ISO 3382-1:2009 Sec. 5.3 (band filtering of impulse responses).
    """
    check_tensor(x, "x", min_ndim=1)
    sr = check_sample_rate(sample_rate)
    check_choice(bands, "bands", ("octave", "third_octave"))
    b = 1 if bands == "octave" else 3
    centers = tuple(float(c) for c in (center_frequencies_hz if center_frequencies_hz is not None
                                       else band_center_frequencies_hz(bands, sample_rate=sr)))
    for c in centers:
        if not 0.0 < c < sr / 2.0:
            raise InputError(f"center_frequencies_hz must be in (0, {sr / 2.0}), got {c}")
    order = check_int(order, "order", minimum=1)
    n = x.shape[-1]
    n_fft = 1 << math.ceil(math.log2(max(2, 2 * n)))
    mags = _band_mags(sr, n_fft, centers, b, order, x.dtype, str(x.device))
    spec = torch.fft.rfft(x, n=n_fft)
    return torch.fft.irfft(spec.unsqueeze(-2) * mags, n=n_fft)[..., :n]


def schroeder_edc(rir: Tensor, *, normalize: bool = True) -> Tensor:
    """Schroeder energy decay curve ``E(t) = sum_{tau >= t} h(tau)^2`` (backward integral).

    Args:
        rir: impulse responses ``(..., time)``.
        normalize: divide by ``E(0)`` (0 dB at t = 0; silence stays 0).

    Returns:
        ``(..., time)`` non-negative, non-increasing energies.

    Examples:
        >>> schroeder_edc(torch.tensor([1.0, 1.0, 0.0]))
        tensor([1.0000, 0.5000, 0.0000])

    References:
        Schroeder, "New method of measuring reverberation time", JASA 37, 1965.
    """
    check_tensor(rir, "rir", min_ndim=1)
    e = torch.flip(torch.cumsum(torch.flip(rir.square(), (-1,)), -1), (-1,))
    if normalize:
        e = safe_divide(e, e[..., :1])
    return e


def edc_db(
    rir: Tensor, *, sample_rate: int | None = None, bands: str = "broadband",
    normalize: bool = True, eps: float = EPS_POWER,
) -> Tensor:
    """Energy decay curve in dB, broadband ``(..., time)`` or per band ``(..., n_bands, time)``.

    The curve is normalised to 0 dB at t = 0 and floored at ``10 log10(eps)`` (-140 dB), so
    trailing zeros give a finite floor (not ``-inf``) with a zero gradient below it.

    Args:
        rir: impulse responses ``(..., time)``.
        sample_rate: sample rate in Hz (needed for bands).
        bands: ``"broadband"``, ``"octave"`` or ``"third_octave"``.
        normalize: 0 dB at t = 0.
        eps: floor on the normalised energy.

    Returns:
        EDC in dB.

    Examples:
        >>> edc_db(torch.tensor([1.0, 1.0, 0.0])).round(decimals=2)
        tensor([   0.0000,   -3.0100, -140.0000])

    References:
        Schroeder, JASA 1965; ISO 3382-1:2009 Sec. 5.3.3.
    """
    check_choice(bands, "bands", ("broadband", "octave", "third_octave"))
    h = rir
    if bands != "broadband":
        if sample_rate is None:
            raise InputError(f"sample_rate is required for bands={bands!r}, got None")
        h = octave_filterbank(rir, sample_rate=sample_rate, bands=bands)
    return power_to_db(schroeder_edc(h, normalize=normalize), eps)


def _masked_linefit(t: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares ``y = a t + b`` over ``mask`` along the last axis; returns (a, b, count)."""
    m = mask.to(y.dtype)
    n = m.sum(-1)
    st = (m * t).sum(-1)
    sy = (m * y).sum(-1)
    stt = (m * t * t).sum(-1)
    sty = (m * t * y).sum(-1)
    den = n * stt - st * st
    ok = den.abs() > 0
    a = torch.where(ok, (n * sty - st * sy) / torch.where(ok, den, 1.0), 0.0)
    b = torch.where(n > 0, (sy - a * st) / n.clamp_min(1.0), 0.0)
    return a, b, n


def _compensated_edc(h: Tensor, sample_rate: int, noise_handling: str) -> tuple[Tensor, Tensor]:
    """Normalised EDC (float64) with truncation at the noise floor and tail compensation, and
    the dynamic range (10 ms envelope peak over the floor, in dB)."""
    p = h.to(torch.float64).square()
    n = p.shape[-1]
    tail = max(1, n // 10)
    floor = p[..., -tail:].mean(-1, keepdim=True)
    win = max(1, int(0.01 * sample_rate))
    c = F.pad(torch.cumsum(p, -1), (win, 0))
    env = (c[..., win:] - c[..., :-win]) / win  # trailing 10 ms mean power
    env_db = power_to_db(env, 1e-300)
    floor_db = power_to_db(floor, 1e-300)
    peak_idx = env.argmax(-1, keepdim=True)
    dyn_range_db = (env_db.gather(-1, peak_idx) - floor_db)[..., 0]
    if noise_handling == "none":
        return schroeder_edc(p.sqrt(), normalize=True), dyn_range_db
    idx = torch.arange(n, device=h.device)
    after_peak = idx >= peak_idx
    below = after_peak & (env_db <= floor_db + 5.0)
    cut = torch.where(below.any(-1, keepdim=True), below.to(torch.int8).argmax(-1, keepdim=True),
                      torch.full_like(peak_idx, n))
    keep = idx < cut
    # late decay rate from the envelope between peak - 5 dB and floor + 10 dB
    peak_db = env_db.gather(-1, peak_idx)
    t = idx.to(torch.float64).expand_as(env_db)
    fit = keep & after_peak & (env_db <= peak_db - 5.0) & (env_db >= floor_db + 10.0)
    slope, icpt, cnt = _masked_linefit(t, env_db, fit)
    rate = -slope * math.log(10.0) / 10.0  # per sample, > 0 for a decay
    cut_c = (cut - 1).clamp(0, n - 1)
    p_cut = _db_to_power(slope[..., None] * cut_c + icpt[..., None])
    comp = torch.where((rate[..., None] > 0) & (cnt[..., None] >= 2) & (cut < n),
                       p_cut / (1.0 - torch.exp(-rate[..., None])).clamp_min(1e-300), 0.0)
    e = torch.flip(torch.cumsum(torch.flip(p * keep, (-1,)), -1), (-1,)) + comp * keep
    return safe_divide(e, e[..., :1], 1e-300), dyn_range_db


def _db_to_power(x_db: Tensor) -> Tensor:
    """``10^(x/10)`` for a float64 tensor."""
    return torch.pow(10.0, x_db / 10.0)


_T60_LIMITS = {"t30": (-5.0, -35.0), "t20": (-5.0, -25.0), "edt": (0.0, -10.0)}


def t60_per_band(
    rir: Tensor,
    *,
    sample_rate: int,
    bands: str = "octave",
    method: str = "t30",
    noise_handling: str = "truncate",
    center_frequencies_hz: Sequence[float] | None = None,
) -> Tensor:
    """Reverberation time T60 in seconds per band, from a line fit to the EDC (ISO 3382-1).

    ``method`` picks the fit range: T30 (-5 to -35 dB), T20 (-5 to -25 dB) or EDT (0 to -10 dB);
    the slope is extrapolated to 60 dB. Noise handling ``"truncate"`` (see the module docstring):
    the EDC is integrated only up to where the 10 ms envelope first falls to 5 dB above the noise
    floor (mean power of the last 10 %), and the energy of the decay beyond that point (from a line
    fitted to the envelope between peak - 5 dB and floor + 10 dB) is added back (Lundeby's
    compensation). ``"none"``: plain Schroeder integral.

    Args:
        rir: impulse responses ``(..., time)``.
        sample_rate: sample rate in Hz.
        bands: ``"broadband"``, ``"octave"`` or ``"third_octave"``.
        method: ``"t30"``, ``"t20"`` or ``"edt"``.
        noise_handling: ``"truncate"`` or ``"none"``.
        center_frequencies_hz: explicit band centres.

    Returns:
        ``(...)`` for broadband, ``(..., n_bands)`` otherwise; ``NaN`` where the dynamic range
        (10 ms envelope peak over the noise floor, the mean power of the last 10 %) is less than
        10 dB beyond the fit range (45 dB for T30, 35 dB for T20, 20 dB for EDT; ISO 3382-1):
        the value is undefined there, not 0.
        Not differentiable (a measurement; the fit range is a hard mask).

    Examples:
        >>> n = torch.arange(48000)
        >>> rir = torch.exp(-3 * math.log(10) * n / (0.5 * 48000))  # T60 = 0.5 s
        >>> round(float(t60_per_band(rir, sample_rate=48000, bands="broadband")), 3)
        0.5

    References:
        ISO 3382-1:2009 Sec. 5.3; Schroeder, JASA 1965; Lundeby et al., "Uncertainties of
        measurements in room acoustics", Acustica 81, 1995.
    """
    check_tensor(rir, "rir", min_ndim=1)
    sr = check_sample_rate(sample_rate)
    check_choice(bands, "bands", ("broadband", "octave", "third_octave"))
    check_choice(method, "method", tuple(_T60_LIMITS))
    check_choice(noise_handling, "noise_handling", ("truncate", "none"))
    with torch.no_grad():
        h = rir.detach()
        if bands != "broadband":
            h = octave_filterbank(h, sample_rate=sr, bands=bands,
                                  center_frequencies_hz=center_frequencies_hz)
        e, dyn_range_db = _compensated_edc(h, sr, noise_handling)
        e_db = power_to_db(e, 1e-300)
        hi, lo = _T60_LIMITS[method]
        mask = (e_db <= hi) & (e_db >= lo)
        # ISO 3382-1: the floor must be >= 10 dB below the lowest point of the fit range
        reached = (e_db < lo).any(-1) & (dyn_range_db >= -lo + 10.0)
        t = torch.arange(e.shape[-1], dtype=torch.float64, device=e.device) / sr
        slope, _, cnt = _masked_linefit(t.expand_as(e_db), e_db, mask)
        t60 = -60.0 / torch.where(slope < 0, slope, -1e-300)
        t60 = torch.where(reached & (cnt >= 2) & (slope < 0), t60, math.nan)
    return t60.to(rir.dtype if rir.is_floating_point() else torch.float32)


def _onset_index(rir: Tensor) -> Tensor:
    return rir.detach().abs().argmax(-1, keepdim=True)


def drr_db(rir: Tensor, *, sample_rate: int, direct_window_ms: float = 2.5,
           eps: float = EPS_POWER) -> Tensor:
    """Direct-to-reverberant ratio in dB: energy within +-``direct_window_ms`` of the peak over
    the energy after it.

    Args:
        rir: impulse responses ``(..., time)``.
        sample_rate: sample rate in Hz.
        direct_window_ms: half-width of the direct-sound window in ms.
        eps: floor on energies.

    Returns:
        ``(...)`` in dB (differentiable w.r.t. the samples; the window is located by arg-max).

    Examples:
        >>> h = torch.zeros(4800); h[100] = 1.0; h[1000] = 0.1
        >>> round(float(drr_db(h, sample_rate=48000)), 1)
        20.0

    References:
        ISO 3382-1:2009 Annex; Zahorik, "Direct-to-reverberant energy ratio sensitivity", JASA 2002.
    """
    check_tensor(rir, "rir", min_ndim=1)
    sr = check_sample_rate(sample_rate)
    half = max(1, round(direct_window_ms * 1e-3 * sr))
    idx = torch.arange(rir.shape[-1], device=rir.device)
    on = _onset_index(rir)
    direct = (idx >= on - half) & (idx <= on + half)
    late = idx > on + half
    p = rir.square()
    return power_to_db(safe_divide((p * direct).sum(-1), (p * late).sum(-1), eps), eps)


def clarity_db(rir: Tensor, *, sample_rate: int, time_ms: float = 50.0,
               eps: float = EPS_POWER) -> Tensor:
    """Clarity ``C_t = 10 log10(E[0, t) / E[t, end))`` with t = 50 ms (C50) or 80 ms (C80),
    measured from the direct sound (the peak).

    Examples:
        >>> h = torch.zeros(48000); h[0] = 1.0; h[4800] = 1.0
        >>> round(float(clarity_db(h, sample_rate=48000, time_ms=80.0)), 2)
        0.0

    References:
        ISO 3382-1:2009 Annex A.2.4.
    """
    check_tensor(rir, "rir", min_ndim=1)
    sr = check_sample_rate(sample_rate)
    k = round(time_ms * 1e-3 * sr)
    idx = torch.arange(rir.shape[-1], device=rir.device)
    on = _onset_index(rir)
    early = (idx >= on) & (idx < on + k)
    late = idx >= on + k
    p = rir.square()
    return power_to_db(safe_divide((p * early).sum(-1), (p * late).sum(-1), eps), eps)


def echo_density_profile(
    rir: Tensor, *, sample_rate: int, window_ms: float = 20.0, hop: int | None = None
) -> Tensor:
    """Normalised echo density ``eta(t)`` (Abel & Huang): the fraction of samples in a Hann
    window whose magnitude exceeds the window's standard deviation, divided by
    ``erfc(1/sqrt(2))`` (its value for Gaussian noise), so 1 means fully diffuse.

    Args:
        rir: impulse responses ``(..., time)``.
        sample_rate: sample rate in Hz.
        window_ms: window length in ms.
        hop: hop in samples (default 1 ms).

    Returns:
        ``(..., frames)``; frame ``k`` centred at sample ``k * hop``. Not differentiable (a count).

    Examples:
        >>> eta = echo_density_profile(torch.randn(48000), sample_rate=48000)
        >>> 0.9 < float(eta[100:].mean()) < 1.1
        True

    References:
        Abel & Huang, "A simple, robust measure of reverberation echo density", AES 121, 2006.
    """
    check_tensor(rir, "rir", min_ndim=1)
    sr = check_sample_rate(sample_rate)
    w = max(3, round(window_ms * 1e-3 * sr))
    hop = check_int(hop if hop is not None else max(1, sr // 1000), "hop", minimum=1)
    with torch.no_grad():
        h = rir.detach().to(torch.float64)
        n = h.shape[-1]
        n_frames = 1 + (n - 1) // hop
        hp = F.pad(h, (w // 2, w // 2 + hop))
        frames = hp.unfold(-1, w, hop)[..., :n_frames, :]
        win = torch.hann_window(w, periodic=False, dtype=torch.float64, device=h.device)
        win = win / win.sum()
        sigma = torch.sqrt((frames.square() * win).sum(-1, keepdim=True))
        count = ((frames.abs() > sigma).to(torch.float64) * win).sum(-1)
        eta = count / math.erfc(1.0 / math.sqrt(2.0))
    return eta.to(rir.dtype)


def mixing_time_s(
    rir: Tensor, *, sample_rate: int, threshold: float = 1.0, window_ms: float = 20.0
) -> Tensor:
    """Mixing time in seconds: first time after the direct sound at which the normalised echo
    density reaches ``threshold`` (Abel & Huang's criterion), ``NaN`` if it never does.

    Examples:
        >>> h = torch.zeros(48000); h[0] = 1.0
        >>> h[2400:] = torch.randn(45600, generator=torch.Generator().manual_seed(0)) * 0.1
        >>> 0.04 < float(mixing_time_s(h, sample_rate=48000, threshold=0.9)) < 0.07
        True

    References:
        Abel & Huang, AES 2006; Lindau et al., "Perceptual evaluation of model- and signal-based
        predictors of the mixing time in binaural room impulse responses", JAES 2012.
    """
    sr = check_sample_rate(sample_rate)
    hop = max(1, sr // 1000)
    eta = echo_density_profile(rir, sample_rate=sr, window_ms=window_ms, hop=hop)
    with torch.no_grad():
        on = (_onset_index(rir) // hop)
        idx = torch.arange(eta.shape[-1], device=eta.device)
        hit = (eta >= threshold) & (idx >= on)
        first = hit.to(torch.int8).argmax(-1)
        t = (first * hop).to(torch.float64) / sr
        t = torch.where(hit.any(-1), t, math.nan)
    return t.to(rir.dtype)
