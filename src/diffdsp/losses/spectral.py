"""Spectral losses: (multi-resolution) STFT magnitude losses, mel, random resolutions,
perceptual pre-filters, Wasserstein (cumulative-sum) spectral distances and a stereo
sum-and-difference loss.

Conventions (auraloss-compatible where auraloss has the same configuration):

* magnitudes ``|X| = sqrt(max(|X|^2, eps))`` with ``eps = 1e-8`` by default (auraloss's floor);
* spectral convergence ``||Y| - |X||_F / ||Y||_F``, log-magnitude
  ``mean |log|Y| - log|X||``, linear magnitude ``mean ||Y| - |X||`` (L1) or squared (L2);
* the multi-resolution loss is the **mean** over resolutions of
  ``w_sc * sc + w_log_mag * log_mag + w_lin_mag * lin_mag``;
* ``reduction`` is computed **per item**: every leading index of ``(..., time)`` (batch and
  channels) is one item; ``"none"`` returns ``(...)``, ``"mean"``/``"sum"`` reduce over items.
  auraloss's spectral convergence takes one Frobenius norm over the whole batch; pass
  ``sc_over_batch=True`` to reproduce that (then every item carries the batch value).

For batch 1 (and any batch with ``sc_over_batch=True``) the values equal auraloss's
``MultiResolutionSTFTLoss`` to float precision.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffdsp._numerics import safe_divide, safe_sqrt
from diffdsp._validation import (
    InputError,
    check_choice,
    check_int,
    check_sample_rate,
    check_tensor,
)
from diffdsp.functional.analysis import (
    a_weighting_db,
    get_window,
    mel_filterbank,
    stft_magnitude,
)
from diffdsp.losses._stft_kernels import reflect_pad_pair, stft_sums

__all__ = [
    "MelSTFTLoss",
    "MultiResolutionSTFTLoss",
    "RandomResolutionSTFTLoss",
    "STFTLoss",
    "SumAndDifferenceSTFTLoss",
    "WassersteinSpectralLoss",
    "a_weighting_fir",
    "apply_prefilter",
    "multi_resolution_stft_loss",
    "norm_ratio",
    "reduce_loss",
    "spectral_wasserstein_loss",
    "stft_loss_terms",
]

Reduction = Literal["mean", "sum", "none"]
AURALOSS_FFT = (1024, 2048, 512)
AURALOSS_HOP = (120, 240, 50)
AURALOSS_WIN = (600, 1200, 240)


def norm_ratio(num_sq: Tensor, den_sq: Tensor, eps: float = 1e-14) -> Tensor:
    """``sqrt(num_sq) / sqrt(den_sq)`` (a ratio of norms from squared norms), safe at zero.

    Computed as ``num_sq / (sqrt(max(num_sq, eps)) sqrt(max(den_sq, eps)))``: equal to the ratio
    whenever ``num_sq >= eps``, exactly 0 when ``num_sq = 0`` (identical spectra), and with a
    finite gradient everywhere (``sqrt`` has an infinite slope at 0).

    Examples:
        >>> norm_ratio(torch.tensor([4.0, 0.0]), torch.tensor([16.0, 16.0]))
        tensor([0.5000, 0.0000])
    """
    return num_sq / (safe_sqrt(num_sq, eps) * safe_sqrt(den_sq, eps))


def reduce_loss(per_item: Tensor, reduction: str) -> Tensor:
    """Reduce a per-item loss ``(...)``: ``"mean"``, ``"sum"`` or ``"none"`` (unchanged).

    Examples:
        >>> reduce_loss(torch.tensor([1.0, 3.0]), "mean")
        tensor(2.)
    """
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    return per_item


def _cast(buffer: Tensor, like: Tensor) -> Tensor:
    """A buffer in the input's dtype and on its device (no-op when it already is).

    A loss module left on the CPU and called on CUDA inputs then still works (copying its small
    windows per call, as auraloss builds them per call); ``.to(device)`` once avoids the copy.
    """
    return buffer.to(device=like.device, dtype=like.dtype)


def _check_pair(input: Tensor, target: Tensor) -> None:
    check_tensor(input, "input", min_ndim=1)
    check_tensor(target, "target", min_ndim=1)
    if input.shape != target.shape:
        raise InputError(
            f"input and target must have the same shape, got {tuple(input.shape)} and "
            f"{tuple(target.shape)}"
        )


def _check_resolutions(
    fft_sizes: Sequence[int], hop_sizes: Sequence[int], win_lengths: Sequence[int]
) -> None:
    if not (len(fft_sizes) == len(hop_sizes) == len(win_lengths)) or len(fft_sizes) == 0:
        raise InputError(
            "fft_sizes, hop_sizes and win_lengths must be non-empty and of equal length, got "
            f"{len(fft_sizes)}, {len(hop_sizes)}, {len(win_lengths)}"
        )
    for n, h, w in zip(fft_sizes, hop_sizes, win_lengths, strict=False):
        check_int(n, "fft_size", minimum=2)
        check_int(h, "hop_size", minimum=1)
        check_int(w, "win_length", minimum=1, maximum=int(n))


def stft_loss_terms(
    input: Tensor,
    target: Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | Tensor = "hann",
    eps: float = 1e-8,
    sc_over_batch: bool = False,
) -> dict[str, Tensor]:
    """Per-item STFT magnitude loss terms at one resolution.

    Computed by a fused kernel (one rfft per signal, one pass over the bins for every term, a
    hand-written backward): see :mod:`diffdsp.losses._stft_kernels`.

    Args:
        input: estimate ``(..., time)``.
        target: reference ``(..., time)``, same shape.
        n_fft: FFT size in samples.
        hop_length: hop in samples.
        win_length: window length in samples (default ``n_fft``).
        window: window name or ``(win_length,)`` tensor.
        eps: floor on ``|X|^2`` (magnitudes >= ``sqrt(eps)``).
        sc_over_batch: spectral convergence with one norm over all items (auraloss).

    Returns:
        Dict with ``"sc"``, ``"log_mag"``, ``"lin_mag"`` (L1), ``"lin_mag_l2"`` and
        ``"log_mag_l2"`` (mean squared errors), each ``(...)``.

    Shape:
        ``(..., T), (..., T) -> (...)`` per term.

    Examples:
        >>> x = torch.randn(2, 4096)
        >>> t = stft_loss_terms(x, x, n_fft=512, hop_length=128)
        >>> [round(float(v.abs().max()), 6) for v in t.values()]
        [0.0, 0.0, 0.0, 0.0, 0.0]

    References:
        Arik et al., "Fast spectrogram inversion using multi-head CNNs", 2018 (SC, log-mag);
        Yamamoto et al., "Parallel WaveGAN", ICASSP 2020, eqs. (4)-(6).
    """
    _check_pair(input, target)
    win_length = n_fft if win_length is None else win_length
    _check_resolutions([n_fft], [hop_length], [win_length])
    if input.shape[-1] <= n_fft // 2:
        raise InputError(
            f"signal length must be > n_fft // 2 = {n_fft // 2} (reflect padding), got "
            f"{input.shape[-1]} samples"
        )
    w = window if isinstance(window, Tensor) else get_window(
        window, win_length, dtype=input.dtype, device=input.device
    )
    return _terms_from_window(input, target, w, n_fft, hop_length, eps, sc_over_batch, None)


def _terms_from_window(
    input: Tensor, target: Tensor, window: Tensor, n_fft: int, hop: int, eps: float,
    sc_over_batch: bool, padded: tuple[Tensor, Tensor, int] | None,
) -> dict[str, Tensor]:
    sums = stft_sums(input, target, window, n_fft, hop, eps, padded).sum(-2)  # (..., 5)
    n_el = float((n_fft // 2 + 1) * _n_frames(input.shape[-1], n_fft, hop))
    s_diff, s_ref = sums[..., 0], sums[..., 1]
    if sc_over_batch:
        sc = norm_ratio(s_diff.sum(), s_ref.sum())
        sc = sc.expand(s_diff.shape)
    else:
        sc = norm_ratio(s_diff, s_ref)
    return {
        "sc": sc,
        "log_mag": sums[..., 2] / n_el,
        "lin_mag": sums[..., 3] / n_el,
        "lin_mag_l2": s_diff / n_el,
        "log_mag_l2": sums[..., 4] / n_el,
    }


def _n_frames(length: int, n_fft: int, hop: int) -> int:
    return 1 + (length + 2 * (n_fft // 2) - n_fft) // hop


def multi_resolution_stft_loss(
    input: Tensor,
    target: Tensor,
    *,
    fft_sizes: Sequence[int] = AURALOSS_FFT,
    hop_sizes: Sequence[int] = AURALOSS_HOP,
    win_lengths: Sequence[int] = AURALOSS_WIN,
    window: str = "hann",
    w_sc: float = 1.0,
    w_log_mag: float = 1.0,
    w_lin_mag: float = 0.0,
    mag_distance: str = "L1",
    eps: float = 1e-8,
    reduction: str = "mean",
    sc_over_batch: bool = False,
    return_terms: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Multi-resolution STFT loss: mean over resolutions of weighted magnitude terms.

    Args:
        input: estimate ``(..., time)``.
        target: reference ``(..., time)``, same shape.
        fft_sizes: FFT sizes in samples (default auraloss's ``(1024, 2048, 512)``).
        hop_sizes: hops in samples.
        win_lengths: window lengths in samples.
        window: window name.
        w_sc: weight of spectral convergence.
        w_log_mag: weight of the log-magnitude L1 distance.
        w_lin_mag: weight of the linear-magnitude distance.
        mag_distance: ``"L1"`` or ``"L2"`` (mean squared error) for both magnitude terms
            (auraloss's convention).
        eps: floor on ``|X|^2``.
        reduction: ``"mean"``, ``"sum"`` (over items) or ``"none"`` (per item ``(...)``).
        sc_over_batch: spectral convergence with one norm over the batch (auraloss).
        return_terms: also return the per-item terms averaged over resolutions.

    Returns:
        The loss (scalar, or ``(...)`` for ``"none"``), and with ``return_terms`` a dict
        ``{"sc", "log_mag", "lin_mag"}`` of per-item (unweighted) terms.

    Shape:
        ``(..., T), (..., T) -> ()`` or ``(...)``.

    Examples:
        >>> x, y = torch.randn(2, 1, 8000), torch.randn(2, 1, 8000)
        >>> multi_resolution_stft_loss(x, y, reduction="none").shape
        torch.Size([2, 1])

    References:
        Yamamoto et al., "Parallel WaveGAN", ICASSP 2020; Steinmetz & Reiss, "auraloss", DMRN 2020.
    """
    _check_pair(input, target)
    _check_resolutions(fft_sizes, hop_sizes, win_lengths)
    check_choice(mag_distance, "mag_distance", ("L1", "L2"))
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    windows = [get_window(window, int(w), dtype=input.dtype, device=input.device)
               for w in win_lengths]
    return _mrstft(input, target, fft_sizes, hop_sizes, windows, w_sc, w_log_mag, w_lin_mag,
                   mag_distance, eps, reduction, sc_over_batch, return_terms)


def _mrstft(
    input: Tensor, target: Tensor, fft_sizes: Sequence[int], hop_sizes: Sequence[int],
    windows: Sequence[Tensor], w_sc: float, w_log_mag: float, w_lin_mag: float,
    mag_distance: str, eps: float, reduction: str, sc_over_batch: bool, return_terms: bool,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    length = input.shape[-1]
    if length <= max(fft_sizes) // 2:
        raise InputError(
            f"signal length must be > max(fft_sizes) // 2 = {max(fft_sizes) // 2} (reflect "
            f"padding), got {length} samples"
        )
    lin_key = "lin_mag" if mag_distance == "L1" else "lin_mag_l2"
    log_key = "log_mag" if mag_distance == "L1" else "log_mag_l2"
    total: Tensor | float = 0.0
    acc: dict[str, Tensor | float] = {"sc": 0.0, "log_mag": 0.0, "lin_mag": 0.0}
    padded = reflect_pad_pair(input, target, max(fft_sizes) // 2)
    for n_fft, hop, w in zip(fft_sizes, hop_sizes, windows, strict=False):
        t = _terms_from_window(input, target, w, int(n_fft), int(hop), eps, sc_over_batch, padded)
        total = total + w_sc * t["sc"] + w_log_mag * t[log_key] + w_lin_mag * t[lin_key]
        acc["sc"] = acc["sc"] + t["sc"]
        acc["log_mag"] = acc["log_mag"] + t[log_key]
        acc["lin_mag"] = acc["lin_mag"] + t[lin_key]
    n_res = len(fft_sizes)
    per_item = torch.as_tensor(total) / n_res
    loss = reduce_loss(per_item, reduction)
    if return_terms:
        return loss, {k: torch.as_tensor(v) / n_res for k, v in acc.items()}
    return loss


# ----------------------------------------------------------------------------------------------
# pre-filters


def a_weighting_fir(*, sample_rate: int, n_taps: int = 255, dtype: torch.dtype | None = None
                    ) -> Tensor:
    """Linear-phase FIR ``(n_taps,)`` approximating the A-weighting magnitude (frequency sampling).

    The IEC 61672 magnitude is sampled on an ``n_fft = 4 * next_pow2(n_taps)`` grid, made
    zero-phase, truncated to ``n_taps`` with a Hann window. Delay ``(n_taps - 1) / 2`` samples
    (removed by :func:`apply_prefilter`).

    Args:
        sample_rate: sample rate in Hz.
        n_taps: odd number of taps.
        dtype: output dtype.

    Returns:
        ``(n_taps,)`` taps.

    Examples:
        >>> a_weighting_fir(sample_rate=44100).shape
        torch.Size([255])

    References:
        IEC 61672-1:2013; Wright & Välimäki, "Perceptual loss function for neural modelling of
        audio systems", ICASSP 2020.
    """
    sr = check_sample_rate(sample_rate)
    n = check_int(n_taps, "n_taps", minimum=3)
    if n % 2 == 0:
        raise InputError(f"n_taps must be odd, got {n}")
    n_fft = 4 * (1 << math.ceil(math.log2(n)))
    f = torch.linspace(0.0, sr / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mag = torch.pow(10.0, a_weighting_db(f) / 20.0)
    h = torch.fft.irfft(mag.to(torch.complex128), n=n_fft)
    h = torch.roll(h, n // 2)[:n] * torch.hann_window(n + 2, periodic=False,
                                                       dtype=torch.float64)[1:-1]
    return h.to(dtype or torch.get_default_dtype())


def apply_prefilter(
    x: Tensor, *, kind: str, sample_rate: int | None = None, coef: float = 0.85,
    taps: Tensor | None = None,
) -> Tensor:
    """Perceptual pre-filter on ``(..., time)``: ``"pre_emphasis"`` or ``"a_weighting"``.

    ``"pre_emphasis"`` is ``y[n] = x[n] - coef * x[n-1]`` (Wright & Välimäki's first-order
    high-pass). ``"a_weighting"`` convolves with :func:`a_weighting_fir` (or ``taps``), delay
    compensated, output the same length as the input.

    Args:
        x: signal ``(..., time)``.
        kind: ``"pre_emphasis"`` or ``"a_weighting"``.
        sample_rate: sample rate in Hz (for ``"a_weighting"``).
        coef: pre-emphasis coefficient.
        taps: precomputed A-weighting taps (modules pass their buffer).

    Returns:
        Filtered ``(..., time)``.

    Examples:
        >>> apply_prefilter(torch.ones(4), kind="pre_emphasis", coef=0.5)
        tensor([1.0000, 0.5000, 0.5000, 0.5000])

    References:
        Wright & Välimäki, ICASSP 2020.
    """
    check_choice(kind, "kind", ("pre_emphasis", "a_weighting"))
    if kind == "pre_emphasis":
        prev = F.pad(x[..., :-1], (1, 0))
        return x - coef * prev
    if taps is None:
        if sample_rate is None:
            raise InputError("sample_rate is required for the a_weighting pre-filter, got None")
        taps = a_weighting_fir(sample_rate=sample_rate, dtype=x.dtype).to(x.device)
    n = x.shape[-1]
    k = taps.shape[-1]
    n_fft = 1 << math.ceil(math.log2(n + k - 1))
    y = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(taps, n=n_fft), n=n_fft)
    d = (k - 1) // 2
    return y[..., d : d + n]


# ----------------------------------------------------------------------------------------------
# modules


class MultiResolutionSTFTLoss(nn.Module):
    """Multi-resolution STFT magnitude loss (auraloss-compatible, ~several times faster).

    Windows are buffers (they follow ``.to()``); called on inputs of another dtype or device, the
    forward pass uses copies of them in the input's.

    Args:
        fft_sizes: FFT sizes in samples.
        hop_sizes: hops in samples.
        win_lengths: window lengths in samples.
        window: window name.
        w_sc: spectral-convergence weight.
        w_log_mag: log-magnitude weight.
        w_lin_mag: linear-magnitude weight.
        mag_distance: ``"L1"`` or ``"L2"`` for the linear-magnitude term.
        eps: floor on ``|X|^2`` (auraloss: 1e-8).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``, per item.
        return_terms: forward returns ``(loss, {"sc", "log_mag", "lin_mag"})``.
        sc_over_batch: spectral convergence over the whole batch (auraloss's convention).
        prefilter: ``None``, ``"pre_emphasis"`` or ``"a_weighting"`` (needs ``sample_rate``).
        sample_rate: sample rate in Hz (for the A-weighting pre-filter).
        pre_emphasis_coef: coefficient of the pre-emphasis filter.

    Shape:
        ``(..., T), (..., T) -> ()`` or ``(...)`` with ``reduction="none"``.

    Examples:
        >>> loss = MultiResolutionSTFTLoss.auraloss_default()
        >>> x = torch.randn(1, 1, 16000)
        >>> float(loss(x, x))
        0.0

    References:
        Yamamoto et al., ICASSP 2020; Steinmetz & Reiss, auraloss, DMRN 2020.
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = AURALOSS_FFT,
        hop_sizes: Sequence[int] = AURALOSS_HOP,
        win_lengths: Sequence[int] = AURALOSS_WIN,
        window: str = "hann",
        w_sc: float = 1.0,
        w_log_mag: float = 1.0,
        w_lin_mag: float = 0.0,
        mag_distance: str = "L1",
        eps: float = 1e-8,
        reduction: str = "mean",
        return_terms: bool = False,
        sc_over_batch: bool = False,
        prefilter: str | None = None,
        sample_rate: int | None = None,
        pre_emphasis_coef: float = 0.85,
    ) -> None:
        super().__init__()
        _check_resolutions(fft_sizes, hop_sizes, win_lengths)
        check_choice(mag_distance, "mag_distance", ("L1", "L2"))
        check_choice(reduction, "reduction", ("mean", "sum", "none"))
        check_choice(prefilter, "prefilter", (None, "pre_emphasis", "a_weighting"))
        self.fft_sizes = [int(n) for n in fft_sizes]
        self.hop_sizes = [int(h) for h in hop_sizes]
        self.win_lengths = [int(w) for w in win_lengths]
        self.window = window
        self.w_sc, self.w_log_mag, self.w_lin_mag = float(w_sc), float(w_log_mag), float(w_lin_mag)
        self.mag_distance = mag_distance
        self.eps = float(eps)
        self.reduction = reduction
        self.return_terms = return_terms
        self.sc_over_batch = sc_over_batch
        self.prefilter = prefilter
        self.pre_emphasis_coef = float(pre_emphasis_coef)
        for i, w in enumerate(self.win_lengths):
            self.register_buffer(f"window_{i}", get_window(window, w), persistent=False)
        if prefilter == "a_weighting":
            if sample_rate is None:
                raise InputError("sample_rate is required with prefilter='a_weighting', got None")
            self.register_buffer("fir_taps", a_weighting_fir(sample_rate=sample_rate),
                                 persistent=False)
        self.sample_rate = sample_rate

    @classmethod
    def auraloss_default(cls, **kwargs: Any) -> MultiResolutionSTFTLoss:
        """auraloss / Parallel WaveGAN resolutions: FFT (1024, 2048, 512), hop (120, 240, 50),
        window (600, 1200, 240), ``w_sc = w_log_mag = 1``."""
        return cls(AURALOSS_FFT, AURALOSS_HOP, AURALOSS_WIN, **kwargs)

    @classmethod
    def ddsp(cls, **kwargs: Any) -> MultiResolutionSTFTLoss:
        """DDSP multi-scale spectral loss: FFT (2048, 1024, 512, 256, 128, 64), 75 % overlap,
        L1 on linear and log magnitudes (``w_sc = 0``), magnitude floor 1e-5 (``eps = 1e-10``)
        as DDSP's ``safe_log``. DDSP sums over scales; we average, so multiply by 6 to compare
        values; DDSP frames without centring (Engel et al., ICLR 2020, Sec. 4.2)."""
        ffts = (2048, 1024, 512, 256, 128, 64)
        opts: dict[str, Any] = {"w_sc": 0.0, "w_log_mag": 1.0, "w_lin_mag": 1.0, "eps": 1e-10}
        opts.update(kwargs)
        return cls(ffts, tuple(n // 4 for n in ffts), ffts, **opts)

    @classmethod
    def deepafx_st(cls, **kwargs: Any) -> MultiResolutionSTFTLoss:
        """DeepAFx-ST: windows W in {32, 128, 512, 2048, 8192, 32768}, hop W/2, L1 on linear and
        log magnitudes (``w_sc = 0``) (Steinmetz, Bryan & Reiss, JAES 2022, Sec. 4)."""
        ws = (32, 128, 512, 2048, 8192, 32768)
        opts: dict[str, Any] = {"w_sc": 0.0, "w_log_mag": 1.0, "w_lin_mag": 1.0}
        opts.update(kwargs)
        return cls(ws, tuple(w // 2 for w in ws), ws, **opts)

    def _windows(self) -> list[Tensor]:
        return [getattr(self, f"window_{i}") for i in range(len(self.win_lengths))]

    def _prefilter(self, x: Tensor) -> Tensor:
        if self.prefilter is None:
            return x
        if self.prefilter == "pre_emphasis":
            return apply_prefilter(x, kind="pre_emphasis", coef=self.pre_emphasis_coef)
        taps = cast(Tensor, self.fir_taps)
        return apply_prefilter(x, kind="a_weighting", taps=_cast(taps, x))

    def forward(self, input: Tensor, target: Tensor) -> Any:
        """Loss between ``input`` and ``target`` ``(..., time)`` (see the class docstring)."""
        _check_pair(input, target)
        input, target = self._prefilter(input), self._prefilter(target)
        windows = [_cast(w, input) for w in self._windows()]
        return _mrstft(input, target, self.fft_sizes, self.hop_sizes, windows, self.w_sc,
                       self.w_log_mag, self.w_lin_mag, self.mag_distance, self.eps,
                       self.reduction, self.sc_over_batch, self.return_terms)


class STFTLoss(MultiResolutionSTFTLoss):
    """Single-resolution STFT loss (:class:`MultiResolutionSTFTLoss` with one resolution).

    Examples:
        >>> STFTLoss(1024, 256)(torch.zeros(1, 4096), torch.zeros(1, 4096)).item()
        0.0
    """

    def __init__(self, fft_size: int = 1024, hop_size: int = 256, win_length: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__([fft_size], [hop_size], [win_length or fft_size], **kwargs)


class RandomResolutionSTFTLoss(nn.Module):
    """STFT loss at ``resolutions`` random resolutions, redrawn every ``randomize_every`` calls.

    FFT sizes are powers of two in ``[min_fft_size, max_fft_size]``, hops a random fraction of
    the FFT size in ``[min_hop, max_hop]``, windows the FFT size. A ``torch.Generator`` seeded by
    ``seed`` makes the draws reproducible.

    Examples:
        >>> loss = RandomResolutionSTFTLoss(resolutions=2, max_fft_size=1024, seed=0)
        >>> loss(torch.zeros(1, 4096), torch.zeros(1, 4096)).item()
        0.0

    References:
        Steinmetz & Reiss, auraloss, DMRN 2020.
    """

    def __init__(self, resolutions: int = 3, min_fft_size: int = 64, max_fft_size: int = 8192,
                 min_hop: float = 0.1, max_hop: float = 0.5, randomize_every: int = 1,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.resolutions = check_int(resolutions, "resolutions", minimum=1)
        self.min_fft_size = check_int(min_fft_size, "min_fft_size", minimum=4)
        self.max_fft_size = check_int(max_fft_size, "max_fft_size", minimum=self.min_fft_size)
        if not 0.0 < min_hop <= max_hop <= 1.0:
            raise InputError(f"need 0 < min_hop <= max_hop <= 1, got {min_hop}, {max_hop}")
        self.min_hop, self.max_hop = min_hop, max_hop
        self.randomize_every = check_int(randomize_every, "randomize_every", minimum=1)
        self.kwargs = kwargs
        self._rng = random.Random(seed)
        self._calls = 0
        self.current: MultiResolutionSTFTLoss = self._draw()

    def _draw(self) -> MultiResolutionSTFTLoss:
        lo, hi = int(math.log2(self.min_fft_size)), int(math.log2(self.max_fft_size))
        ffts = [1 << self._rng.randint(lo, hi) for _ in range(self.resolutions)]
        hops = [max(1, int(n * self._rng.uniform(self.min_hop, self.max_hop))) for n in ffts]
        return MultiResolutionSTFTLoss(ffts, hops, ffts, **self.kwargs)

    def forward(self, input: Tensor, target: Tensor) -> Any:
        """Loss at the current random resolutions."""
        if self._calls % self.randomize_every == 0 and self._calls > 0:
            self.current = self._draw().to(input.device)
        self._calls += 1
        return self.current(input, target)


class MelSTFTLoss(nn.Module):
    """Multi-resolution mel-spectrogram loss (SC + log-magnitude + linear terms on mel bands).

    Args:
        sample_rate: sample rate in Hz.
        fft_sizes, hop_sizes, win_lengths: resolutions in samples.
        n_mels: mel bands per resolution.
        w_sc, w_log_mag, w_lin_mag: term weights.
        eps: floor on mel magnitudes (before the log) and on ``|X|^2``.
        reduction: per-item reduction.

    Examples:
        >>> loss = MelSTFTLoss(16000, fft_sizes=(512,), hop_sizes=(128,), win_lengths=(512,),
        ...                    n_mels=40)
        >>> x = torch.randn(1, 8000)
        >>> loss(x, x).item()
        0.0

    References:
        Engel et al., DDSP, ICLR 2020; Steinmetz & Reiss, auraloss.
    """

    def __init__(self, sample_rate: int, fft_sizes: Sequence[int] = (2048,),
                 hop_sizes: Sequence[int] = (512,), win_lengths: Sequence[int] = (2048,),
                 n_mels: int = 128, w_sc: float = 1.0, w_log_mag: float = 1.0,
                 w_lin_mag: float = 0.0, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__()
        _check_resolutions(fft_sizes, hop_sizes, win_lengths)
        check_choice(reduction, "reduction", ("mean", "sum", "none"))
        self.sample_rate = check_sample_rate(sample_rate)
        self.fft_sizes, self.hop_sizes = list(fft_sizes), list(hop_sizes)
        self.win_lengths = list(win_lengths)
        self.w_sc, self.w_log_mag, self.w_lin_mag = w_sc, w_log_mag, w_lin_mag
        self.eps, self.reduction = eps, reduction
        for i, (n, w) in enumerate(zip(fft_sizes, win_lengths, strict=False)):
            self.register_buffer(f"window_{i}", get_window("hann", w), persistent=False)
            self.register_buffer(
                f"fb_{i}", mel_filterbank(sample_rate=sample_rate, n_fft=n, n_mels=n_mels),
                persistent=False)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Per-item mel loss, reduced."""
        _check_pair(input, target)
        total: Tensor | float = 0.0
        for i, (n, h) in enumerate(zip(self.fft_sizes, self.hop_sizes, strict=False)):
            w = _cast(getattr(self, f"window_{i}"), input)
            fb = _cast(getattr(self, f"fb_{i}"), input)
            mx = stft_magnitude(input, n_fft=n, hop_length=h, window=w,
                                win_length=w.shape[-1], eps=self.eps) @ fb.T
            my = stft_magnitude(target, n_fft=n, hop_length=h, window=w,
                                win_length=w.shape[-1], eps=self.eps) @ fb.T
            mx, my = mx.clamp_min(math.sqrt(self.eps)), my.clamp_min(math.sqrt(self.eps))
            d = mx - my
            sc = norm_ratio(d.square().sum((-2, -1)), my.square().sum((-2, -1)))
            logm = (torch.log(mx) - torch.log(my)).abs().mean((-2, -1))
            lin = d.abs().mean((-2, -1))
            total = total + self.w_sc * sc + self.w_log_mag * logm + self.w_lin_mag * lin
        return reduce_loss(torch.as_tensor(total) / len(self.fft_sizes), self.reduction)


def spectral_wasserstein_loss(
    input: Tensor,
    target: Tensor,
    *,
    n_fft: int = 1024,
    hop_length: int = 256,
    axis: str = "time",
    normalize: bool = True,
    p: int = 1,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Tensor:
    """Wasserstein (cumulative-sum) distance between magnitude spectrograms along time or frequency.

    Each bin's envelope over time (``axis="time"``) or each frame's spectrum over frequency
    (``axis="frequency"``) is normalised to unit sum (``normalize``; a distribution), cumulated,
    and the ``p``-norm of the CDF difference is averaged: for ``p = 1`` this is the 1-D
    Wasserstein-1 (earth mover's) distance in units of frames / bins, divided by the axis length.
    It varies smoothly when a partial moves (in frequency) or an onset moves (in time), where
    plain magnitude distances are flat (DiffMoog Table 1: cumsum over time helps frequency
    estimation). Without ``normalize`` the raw cumulative sums are compared (scale-sensitive).

    Args:
        input: estimate ``(..., time)``.
        target: reference ``(..., time)``.
        n_fft: FFT size in samples.
        hop_length: hop in samples.
        axis: ``"time"`` or ``"frequency"``.
        normalize: compare normalised distributions (silent slices become uniform).
        p: 1 or 2.
        eps: floor on ``|X|^2``.
        reduction: per-item reduction.

    Returns:
        Scalar or ``(...)``.

    Examples:
        >>> x = torch.randn(1, 4096)
        >>> spectral_wasserstein_loss(x, x, n_fft=256, hop_length=64).item()
        0.0

    References:
        Uzrad et al., "DiffMoog", 2024, Sec. 4 and Table 1; Villani, "Optimal Transport", 2009.
    """
    _check_pair(input, target)
    check_choice(axis, "axis", ("time", "frequency"))
    check_choice(p, "p", (1, 2))
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    mx = stft_magnitude(input, n_fft=n_fft, hop_length=hop_length, eps=eps)
    my = stft_magnitude(target, n_fft=n_fft, hop_length=hop_length, eps=eps)
    dim = -2 if axis == "time" else -1
    if normalize:
        mx = safe_divide(mx, mx.sum(dim, keepdim=True))
        my = safe_divide(my, my.sum(dim, keepdim=True))
    d = torch.cumsum(mx, dim) - torch.cumsum(my, dim)
    n = d.shape[dim]
    dist = d.abs().sum(dim) / n if p == 1 else d.square().sum(dim) / n
    return reduce_loss(dist.mean(-1), reduction)


class WassersteinSpectralLoss(nn.Module):
    """Module form of :func:`spectral_wasserstein_loss`, optionally at several resolutions.

    Examples:
        >>> loss = WassersteinSpectralLoss(axis="frequency", fft_sizes=(256,), hop_sizes=(64,))
        >>> loss(torch.zeros(1, 2048), torch.zeros(1, 2048)).item()
        0.0
    """

    def __init__(self, axis: str = "time", fft_sizes: Sequence[int] = (1024,),
                 hop_sizes: Sequence[int] = (256,), normalize: bool = True, p: int = 1,
                 eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__()
        check_choice(axis, "axis", ("time", "frequency"))
        _check_resolutions(fft_sizes, hop_sizes, fft_sizes)
        self.axis, self.fft_sizes, self.hop_sizes = axis, list(fft_sizes), list(hop_sizes)
        self.normalize, self.p, self.eps, self.reduction = normalize, p, eps, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Mean over resolutions of the Wasserstein spectral distance."""
        vals = [spectral_wasserstein_loss(input, target, n_fft=n, hop_length=h, axis=self.axis,
                                          normalize=self.normalize, p=self.p, eps=self.eps,
                                          reduction="none")
                for n, h in zip(self.fft_sizes, self.hop_sizes, strict=False)]
        return reduce_loss(torch.stack(vals).mean(0), self.reduction)


class SumAndDifferenceSTFTLoss(nn.Module):
    """Stereo loss: MR-STFT of the mid (L+R) and side (L-R) signals, ``w_sum`` and ``w_diff``.

    Input and target are ``(..., 2, time)``. Other keyword arguments go to
    :class:`MultiResolutionSTFTLoss`.

    Examples:
        >>> loss = SumAndDifferenceSTFTLoss(fft_sizes=(512,), hop_sizes=(128,), win_lengths=(512,))
        >>> x = torch.randn(1, 2, 4096)
        >>> loss(x, x).item()
        0.0

    References:
        Steinmetz et al., "Automatic multitrack mixing with a differentiable mixing console of
        neural audio effects", ICASSP 2021.
    """

    def __init__(self, w_sum: float = 1.0, w_diff: float = 1.0, **kwargs: Any) -> None:
        super().__init__()
        self.w_sum, self.w_diff = w_sum, w_diff
        reduction = kwargs.pop("reduction", "mean")
        check_choice(reduction, "reduction", ("mean", "sum", "none"))
        self.reduction = reduction
        self.mrstft = MultiResolutionSTFTLoss(reduction="none", **kwargs)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss on mid/side signals."""
        _check_pair(input, target)
        if input.ndim < 2 or input.shape[-2] != 2:
            raise InputError(f"input must be stereo (..., 2, time), got shape {tuple(input.shape)}")
        s = self.mrstft(input[..., 0, :] + input[..., 1, :], target[..., 0, :] + target[..., 1, :])
        d = self.mrstft(input[..., 0, :] - input[..., 1, :], target[..., 0, :] - target[..., 1, :])
        return reduce_loss(self.w_sum * s + self.w_diff * d, self.reduction)
