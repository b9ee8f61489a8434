"""Frequency responses and frequency-sampling (FFT) filtering.

* :func:`freqz` / :func:`sosfreqz` evaluate ``H(z)`` (in float64, returned in the complex dtype
  matching the input) on scipy's grid (``worN`` points on the upper
  half or the whole circle) or at arbitrary frequencies, optionally on a circle of radius ``!= 1``.
* :func:`fft_filter` filters a signal by multiplying its spectrum with the sampled response of an
  SOS cascade or a ``(b, a)`` pair. The FFT is zero-padded past the signal length by the length the
  impulse response needs to decay below ``tail_tol`` (from the largest pole radius), so the result
  equals the *linear* convolution (what :func:`diffdsp.functional.iir.sosfilt` computes) to that
  tolerance, instead of wrapping the IIR tail around (dasp-pytorch pads only to ``2 T``).
* The anti-time-aliasing option of FLAMO samples the response on the circle of radius ``1/gamma``,
  i.e. filters ``x[n] gamma^n`` with ``h[n] gamma^n`` and multiplies the result by ``gamma^-n``:
  time aliasing is attenuated by ``alias_decay_db`` at the cost of the same amplification of
  rounding errors at the end of the output (:func:`alias_gamma`, :func:`decay_envelope`).

References:
    scipy.signal.freqz / sosfreqz (conventions). Dal Santo et al., "FLAMO: an open-source library
    for frequency-domain differentiable audio processing", ICASSP 2025, and "Building robust audio
    DDSP pipelines" (anti-time-aliasing envelope ``gamma^n``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffdsp._numerics import next_pow2
from diffdsp._validation import InputError, check_in_range, check_int, check_tensor
from diffdsp.functional import iir
from diffdsp.functional.filters import sos_pole_radius
from diffdsp.functional.iir import _HAVE_NUMBA, _run_rows

if _HAVE_NUMBA:
    import numba

__all__ = [
    "alias_gamma",
    "decay_envelope",
    "fft_filter",
    "freqz",
    "rfft_freqs",
    "sosfreqz",
]


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _grid(
    worN: int | Tensor | Sequence[float],
    sample_rate: float | None,
    whole: bool,
    like: Tensor,
) -> tuple[Tensor, Tensor]:
    """(w in the caller's unit, w in rad/sample) as float64 tensors on ``like``'s device."""
    dev = like.device
    if isinstance(worN, int) and not isinstance(worN, bool):
        npts = check_int(worN, "worN", minimum=1)
        span = 2.0 * math.pi if whole else math.pi
        w = torch.arange(npts, dtype=torch.float64, device=dev) * (span / npts)
        return (w * sample_rate / (2 * math.pi) if sample_rate else w), w
    wt = torch.as_tensor(worN, dtype=torch.float64, device=dev).reshape(-1)
    if sample_rate:
        return wt, wt * (2 * math.pi / sample_rate)
    return wt, wt


def _polyval(c: Tensor, zinv: Tensor) -> Tensor:
    """``sum_k c[..., k] zinv^k`` for complex ``zinv (F,)`` -> ``(..., F)``."""
    n = c.shape[-1]
    cc = c.to(zinv.dtype)
    if n > 16:
        lags = torch.arange(n, device=c.device, dtype=zinv.real.dtype)
        powers = torch.exp(torch.log(zinv)[:, None] * lags[None, :])
        return cc @ powers.transpose(0, 1)
    h = cc[..., n - 1 : n].expand(*c.shape[:-1], zinv.shape[0])
    for k in range(n - 2, -1, -1):
        h = h * zinv + cc[..., k : k + 1]
    return h


def _zinv(w: Tensor, radius: float, dtype: torch.dtype) -> Tensor:
    z = torch.polar(torch.full_like(w, 1.0 / radius), -w)
    return z.to(_complex_dtype(dtype))


def freqz(
    b: Tensor,
    a: Tensor | float = 1.0,
    worN: int | Tensor | Sequence[float] = 512,
    *,
    sample_rate: float | None = None,
    whole: bool = False,
    radius: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Frequency response ``H = B/A`` of a digital filter (scipy's ``freqz``), batched.

    Args:
        b: numerator ``(..., nb)``.
        a: denominator ``(..., na)`` or a number (FIR).
        worN: number of points on ``[0, pi)`` (``[0, 2 pi)`` with ``whole``), or the frequencies
            themselves (in Hz when ``sample_rate`` is given, else rad/sample).
        sample_rate: sample rate in Hz; ``w`` is then returned in Hz.
        whole: cover the whole circle.
        radius: evaluate at ``z = radius * e^{jw}`` (``1`` on the unit circle; ``1/gamma`` for
            the anti-time-aliasing trick).

    Returns:
        ``(w, h)``: ``w (F,)`` float64 in Hz or rad/sample, ``h (..., F)`` complex.

    Examples:
        >>> w, h = freqz(torch.tensor([0.5, 0.5]), 1.0, 3)
        >>> h.abs()
        tensor([1.0000, 0.8660, 0.5000])

    References:
        scipy.signal.freqz.
    """
    check_tensor(b, "b", min_ndim=1)
    if radius <= 0:
        raise InputError(f"radius must be > 0, got {radius!r}")
    at = a if isinstance(a, Tensor) else torch.tensor([float(a)], dtype=b.dtype, device=b.device)
    check_tensor(at, "a", min_ndim=1)
    dtype = torch.promote_types(b.dtype, at.dtype)
    w_out, w = _grid(worN, sample_rate, whole, b)
    zinv = _zinv(w, radius, torch.float64)
    hb = _polyval(b.to(torch.float64), zinv)
    if at.shape[-1] == 1:
        h = hb / at.to(torch.float64)
    else:
        h = hb / _polyval(at.to(torch.float64), zinv)
    return w_out, h.to(_complex_dtype(dtype))


def sosfreqz(
    sos: Tensor,
    worN: int | Tensor | Sequence[float] = 512,
    *,
    sample_rate: float | None = None,
    whole: bool = False,
    radius: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Frequency response of a cascade of second-order sections ``(..., S, 6)`` (scipy's sosfreqz).

    Args:
        sos: sections ``(..., S, 6)`` (``a0`` need not be 1).
        worN: as :func:`freqz`.
        sample_rate: as :func:`freqz`.
        whole: as :func:`freqz`.
        radius: as :func:`freqz`.

    Returns:
        ``(w, h)``: ``w (F,)``, ``h (..., F)`` complex, the product of the section responses.

    Examples:
        >>> sos = torch.tensor([[1.0, 1.0, 0.0, 1.0, 0.0, 0.0]])
        >>> w, h = sosfreqz(sos, 2)
        >>> h.abs()
        tensor([2.0000, 1.4142])

    References:
        scipy.signal.sosfreqz.
    """
    check_tensor(sos, "sos", min_ndim=1)
    if sos.ndim == 1:
        sos = sos[None]
    if sos.shape[-1] != 6:
        raise InputError(f"sos must have shape (..., n_sections, 6), got {tuple(sos.shape)}")
    if radius <= 0:
        raise InputError(f"radius must be > 0, got {radius!r}")
    w_out, w = _grid(worN, sample_rate, whole, sos)
    zinv = _zinv(w, radius, torch.float64)
    h = _sos_response(sos.to(torch.float64), zinv)
    return w_out, h.to(_complex_dtype(sos.dtype))


# --------------------------------------------------------------------------------------------
# SOS response on many bins: a fused numba kernel (CPU) with its own backward
# --------------------------------------------------------------------------------------------

if _HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _nb_sos_resp(sos, out, z):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        B, S = sos.shape[0], sos.shape[1]
        F = z.shape[0]
        for bi in range(B):
            c = sos[bi]
            for f in range(F):
                z1 = z[f]
                z2 = z1 * z1
                num = 1.0 + 0.0j
                den = 1.0 + 0.0j
                for s in range(S):
                    num *= c[s, 0] + c[s, 1] * z1 + c[s, 2] * z2
                    den *= c[s, 3] + c[s, 4] * z1 + c[s, 5] * z2
                out[bi, f] = num / den

    @numba.njit(cache=True, nogil=True)
    def _nb_sos_resp_bwd(sos, g, gsos, z):  # type: ignore[no-untyped-def]  # pragma: no cover
        # dL/dtheta = Re(conj(g) dH/dtheta); dH/db_sk = (prod_{t != s} N_t) z^k / D,
        # dH/da_sk = -H z^k / D_s (prefix/suffix products: no division by a zero of N)
        B, S = sos.shape[0], sos.shape[1]
        F = z.shape[0]
        for bi in range(B):
            c = sos[bi]
            acc = np.zeros((S, 6))
            ns = np.empty(S, dtype=np.complex128)
            ds = np.empty(S, dtype=np.complex128)
            pre = np.empty(S + 1, dtype=np.complex128)
            suf = np.empty(S + 1, dtype=np.complex128)
            for f in range(F):
                z1 = z[f]
                z2 = z1 * z1
                den = 1.0 + 0.0j
                for s in range(S):
                    ns[s] = c[s, 0] + c[s, 1] * z1 + c[s, 2] * z2
                    ds[s] = c[s, 3] + c[s, 4] * z1 + c[s, 5] * z2
                    den *= ds[s]
                pre[0] = 1.0
                suf[S] = 1.0
                for s in range(S):
                    pre[s + 1] = pre[s] * ns[s]
                    suf[S - 1 - s] = suf[S - s] * ns[S - 1 - s]
                h = pre[S] / den
                gc = np.conj(g[bi, f])
                cn = gc / den
                cd = gc * h
                for s in range(S):
                    e = cn * pre[s] * suf[s + 1]
                    e2 = cd / ds[s]
                    acc[s, 0] += e.real
                    acc[s, 1] += (e * z1).real
                    acc[s, 2] += (e * z2).real
                    acc[s, 3] -= e2.real
                    acc[s, 4] -= (e2 * z1).real
                    acc[s, 5] -= (e2 * z2).real
            for s in range(S):
                for k in range(6):
                    gsos[bi, s, k] = acc[s, k]


def _sos_response_torch(sos: Tensor, zinv: Tensor) -> Tensor:
    powers = torch.stack([torch.ones_like(zinv), zinv, zinv * zinv], dim=0)  # (3, F)
    coef = sos.to(zinv.dtype)
    num = coef[..., 0, :3] @ powers
    den = coef[..., 0, 3:] @ powers
    for s in range(1, sos.shape[-2]):
        num = num * (coef[..., s, :3] @ powers)
        den = den * (coef[..., s, 3:] @ powers)
    return num / den


class _SosResponse(torch.autograd.Function):
    """H(z) of flat float64 sections (B, S, 6) at complex128 ``zinv`` (F,) -> (B, F)."""

    @staticmethod
    def forward(sos: Tensor, zinv: Tensor) -> Tensor:
        sos = sos.detach().contiguous()
        out = torch.empty(sos.shape[0], zinv.shape[0], dtype=torch.complex128)
        _run_rows(_nb_sos_resp, [sos.numpy(), out.numpy()], zinv.detach().contiguous().numpy())
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, None]:
        sos, zinv = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        if torch.is_grad_enabled():  # double backward: the same response in torch ops
            with torch.enable_grad():
                h = _sos_response_torch(sos, zinv)
                (gs,) = torch.autograd.grad(h, sos, g, create_graph=True)
            return gs, None
        gsos = torch.empty_like(sos)
        _run_rows(_nb_sos_resp_bwd, [sos.detach().contiguous().numpy(),
                                     g.detach().to(torch.complex128).contiguous().numpy(),
                                     gsos.numpy()], zinv.detach().contiguous().numpy())
        return gsos, None


def _sos_response(sos: Tensor, zinv: Tensor) -> Tensor:
    """Product over sections of ``B_s(z)/A_s(z)`` at ``zinv (F,)`` -> ``(..., F)``.

    float64 sections and complex128 ``zinv``. On the CPU one fused numba kernel evaluates all
    sections per bin in registers (and a second one accumulates the coefficient gradients);
    elsewhere each section is a small complex matrix product with ``[1, z^-1, z^-2]``.
    """
    if _HAVE_NUMBA and sos.device.type == "cpu" and iir.get_backend() != "torch":
        lead = sos.shape[:-2]
        flat = sos.reshape(-1, *sos.shape[-2:])
        return _SosResponse.apply(flat, zinv).reshape(*lead, zinv.shape[0])
    return _sos_response_torch(sos, zinv)


def rfft_freqs(n_fft: int, *, sample_rate: float | None = None) -> Tensor:
    """Frequencies of the ``n_fft // 2 + 1`` bins of ``torch.fft.rfft`` (Hz, or rad/sample).

    Examples:
        >>> rfft_freqs(4, sample_rate=8000)
        tensor([   0., 2000., 4000.], dtype=torch.float64)
    """
    n_fft = check_int(n_fft, "n_fft", minimum=1)
    w = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (2 * math.pi / n_fft)
    return w * sample_rate / (2 * math.pi) if sample_rate else w


def alias_gamma(alias_decay_db: float, n_fft: int) -> float:
    """FLAMO's anti-time-aliasing factor ``gamma = 10^(-alias_decay_db / (20 n_fft))``.

    Multiplying an impulse response by ``gamma^n`` attenuates it by ``alias_decay_db`` over
    ``n_fft`` samples, so whatever wraps around the FFT frame is that much weaker.

    Examples:
        >>> round(alias_gamma(60.0, 1000) ** 1000, 6)
        0.001
    """
    check_in_range(alias_decay_db, "alias_decay_db", 0.0, 300.0)
    n_fft = check_int(n_fft, "n_fft", minimum=1)
    return float(10.0 ** (-alias_decay_db / (20.0 * n_fft)))


def decay_envelope(n: int, gamma: float, *, like: Tensor | None = None) -> Tensor:
    """``gamma^k`` for ``k = 0..n-1`` (``like``'s dtype and device), computed in float64.

    Examples:
        >>> decay_envelope(3, 0.5)
        tensor([1.0000, 0.5000, 0.2500])
    """
    n = check_int(n, "n", minimum=0)
    if not gamma > 0:
        raise InputError(f"gamma must be > 0, got {gamma!r}")
    dev = like.device if like is not None else None
    dt = like.dtype if like is not None and like.is_floating_point() else torch.get_default_dtype()
    k = torch.arange(n, dtype=torch.float64, device=dev)
    return torch.exp(k * math.log(gamma)).to(dt)


def _max_pole_radius(filt: Tensor | tuple[Tensor, Tensor]) -> tuple[float, int]:
    """(largest pole radius over the whole batch, number of FIR taps - 1)."""
    with torch.no_grad():
        if isinstance(filt, Tensor):
            r = sos_pole_radius(filt.detach().to(torch.float64))
            return float(r.max()) if r.numel() else 0.0, 2 * filt.shape[-2]
        b, a = filt
        a64 = a.detach().to(torch.float64)
        na = a64.shape[-1]
        if na <= 1:
            return 0.0, b.shape[-1] - 1
        a64 = a64 / a64[..., :1]
        comp = torch.zeros(*a64.shape[:-1], na - 1, na - 1, dtype=torch.float64, device=a.device)
        comp[..., 0, :] = -a64[..., 1:]
        if na > 2:
            idx = torch.arange(na - 2, device=a.device)
            comp[..., idx + 1, idx] = 1.0
        r = torch.linalg.eigvals(comp).abs()
        return float(r.max()), b.shape[-1] - 1


def fft_filter(
    x: Tensor,
    filt: Tensor | tuple[Tensor, Tensor],
    *,
    n_fft: int | None = None,
    tail_tol: float = 1e-7,
    alias_decay_db: float = 0.0,
) -> Tensor:
    """Filter by frequency sampling, ``irfft(rfft(x) * H)``, padded for a linear convolution.

    Without ``n_fft`` the FFT length is the next power of two >= ``T + order + tail`` where
    ``tail = 2 log(tail_tol) / log(r_max)`` samples, ``r_max`` being the largest pole radius in
    the batch: the part of the impulse response that could wrap around into the output is below
    ``tail_tol^2`` of its start, so the output matches the exact recursion (``sosfilt`` /
    ``lfilter``) to about ``tail_tol`` relative to the signal scale. Unstable or marginally stable
    filters (``r_max >= 1``) are refused: their responses cannot be frequency-sampled.

    Args:
        x: input ``(..., T)``.
        filt: second-order sections ``(..., S, 6)`` or a ``(b, a)`` pair ``(..., nb)``,
            ``(..., na)`` (leading dimensions broadcast against ``x``'s).
        n_fft: FFT length (>= T); chosen as above when ``None``.
        tail_tol: relative size of the impulse response's neglected tail (default 1e-7).
        alias_decay_db: FLAMO's anti-time-aliasing attenuation (0 disables it): the response is
            sampled at radius ``1/gamma`` with ``gamma = alias_gamma(alias_decay_db, n_fft)``.

    Returns:
        The filtered signal ``(..., T)``, differentiable w.r.t. ``x`` and the coefficients.

    Shape:
        x ``(..., T)``, sos ``(..., S, 6)`` -> ``(..., T)``.

    Examples:
        >>> sos = torch.tensor([[1.0, 0.0, 0.0, 1.0, -0.5, 0.0]])
        >>> fft_filter(torch.tensor([1.0, 0.0, 0.0]), sos)
        tensor([1.0000, 0.5000, 0.2500])

    References:
        Dal Santo et al., ICASSP 2025 (frequency sampling, gamma envelope); Steinmetz et al.,
        JAES 2022 (frequency-sampled EQ).
    """
    check_tensor(x, "x", min_ndim=1)
    if isinstance(filt, tuple):
        if len(filt) != 2:
            raise InputError(f"filt must be sos or a (b, a) pair, got a tuple of {len(filt)}")
        b, a = filt
        check_tensor(b, "b", min_ndim=1)
        check_tensor(a, "a", min_ndim=1)
    else:
        check_tensor(filt, "sos", min_ndim=1)
        if filt.ndim == 1:
            filt = filt[None]
        if filt.shape[-1] != 6:
            raise InputError(f"sos must have shape (..., n_sections, 6), got {tuple(filt.shape)}")
    if not 0 < tail_tol < 1:
        raise InputError(f"tail_tol must be in (0, 1), got {tail_tol!r}")
    T = x.shape[-1]
    if n_fft is None:
        r_max, order = _max_pole_radius(filt)
        if not r_max < 1.0:
            raise InputError(
                f"fft_filter needs a stable filter (all pole radii < 1), got a pole radius of "
                f"{r_max:.6g}; use iir.sosfilt/lfilter for unstable or marginal filters"
            )
        tail = 0 if r_max <= 0 else math.ceil(2 * math.log(tail_tol) / math.log(r_max))
        n_fft = next_pow2(T + order + tail)
    else:
        n_fft = check_int(n_fft, "n_fft", minimum=max(T, 1))
    gamma = alias_gamma(alias_decay_db, n_fft) if alias_decay_db > 0 else 1.0
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    w = rfft_freqs(n_fft).to(x.device)
    # the response is evaluated in float64 (in float32 it dominates the error near poles close
    # to the unit circle, ~1e-5 against ~1e-7 for the float32 FFTs), then cast
    zinv = _zinv(w, 1.0 / gamma, torch.float64)
    if isinstance(filt, tuple):
        b, a = filt
        h = _polyval(b.to(torch.float64), zinv) / _polyval(a.to(torch.float64), zinv)
    else:
        h = _sos_response(filt.to(torch.float64), zinv)
    h = h.to(_complex_dtype(dtype))
    xin = x.to(dtype)
    if gamma != 1.0:
        env = decay_envelope(T, gamma, like=xin)
        xin = xin * env
    y = torch.fft.irfft(torch.fft.rfft(xin, n=n_fft) * h, n=n_fft)[..., :T]
    if gamma != 1.0:
        y = y / env
    return y
