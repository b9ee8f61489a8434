"""Linear prediction: reflection coefficients, differentiable Levinson recursion, LPC analysis.

Conventions follow :func:`diffdsp.functional.iir.allpole`: an order-``K`` predictor is
``a (..., K)`` with ``A(z) = 1 + sum_k a[k-1] z^-k`` and the synthesis filter ``1/A(z)``.

* :func:`reflection_to_lpc` (the Levinson step-up recursion) maps reflection coefficients with
  ``|k| < 1`` to a minimum-phase ``A(z)``: a stable all-pole filter by construction, so
  ``reflection_to_lpc(torch.tanh(raw))`` (:func:`stable_lpc`) is a stability map for learned
  all-pole filters, per frame or per sample.
* :func:`lpc_to_reflection` (step-down) inverts it; all ``|k| < 1`` iff ``A(z)`` is minimum phase.
* :func:`levinson` solves the Toeplitz normal equations from an autocorrelation and
  :func:`lpc_analysis` estimates a predictor from a signal (autocorrelation method).

All are loops over the order (never over samples) of batched tensor operations, differentiable.

References:
    Makhoul, "Linear prediction: a tutorial review", Proc. IEEE 1975, eq. (38)-(41).
    Yu & Fazekas, DAFx 2024 (time-varying all-pole filters parameterised by reflection
    coefficients).
"""

from __future__ import annotations

import torch
from torch import Tensor

from diffdsp._numerics import safe_sqrt
from diffdsp._validation import InputError, check_int, check_tensor

__all__ = [
    "autocorrelation",
    "levinson",
    "lpc_analysis",
    "lpc_to_reflection",
    "reflection_to_lpc",
    "stable_lpc",
]


def reflection_to_lpc(k: Tensor) -> Tensor:
    """Direct-form predictor ``a (..., K)`` from reflection coefficients ``k (..., K)`` (step-up).

    ``A_m(z) = A_{m-1}(z) + k_m z^-m A_{m-1}(1/z)``; every ``|k_m| < 1`` gives a stable
    ``1/A(z)``. Works for any leading shape, e.g. per-sample ``(..., T, K)`` for
    :func:`diffdsp.functional.iir.allpole`.

    Examples:
        >>> reflection_to_lpc(torch.tensor([0.5, 0.25]))
        tensor([0.6250, 0.2500])

    References:
        Makhoul 1975, eq. (41).
    """
    check_tensor(k, "k", min_ndim=1)
    K = k.shape[-1]
    if K == 0:
        raise InputError("k must have at least one coefficient")
    a = k[..., :1]
    for m in range(1, K):
        km = k[..., m : m + 1]
        a = torch.cat([a + km * a.flip(-1), km], dim=-1)
    return a


def lpc_to_reflection(a: Tensor) -> Tensor:
    """Reflection coefficients ``(..., K)`` of a predictor ``a (..., K)`` (step-down recursion).

    All ``|k| < 1`` iff ``1/A(z)`` is stable. A coefficient with ``|k| = 1`` (a pole on the unit
    circle) makes the next step divide by zero; it is guarded (the result is then not
    meaningful beyond that order).

    Examples:
        >>> lpc_to_reflection(torch.tensor([0.625, 0.25]))
        tensor([0.5000, 0.2500])
    """
    check_tensor(a, "a", min_ndim=1)
    K = a.shape[-1]
    ks = []
    cur = a
    for m in range(K, 0, -1):
        km = cur[..., m - 1 : m]
        ks.append(km)
        if m > 1:
            den = 1.0 - km * km
            den = torch.where(den.abs() < 1e-12, torch.full_like(den, 1e-12), den)
            prev = cur[..., : m - 1]
            cur = (prev - km * prev.flip(-1)) / den
    return torch.cat(ks[::-1], dim=-1)


def stable_lpc(raw: Tensor) -> Tensor:
    """Stable predictor from unconstrained values: ``reflection_to_lpc(tanh(raw))``.

    Examples:
        >>> a = stable_lpc(torch.tensor([5.0, -5.0, 5.0]))
        >>> bool((lpc_to_reflection(a.double()).abs() < 1).all())
        True
    """
    return reflection_to_lpc(torch.tanh(raw))


def levinson(r: Tensor, order: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Levinson-Durbin recursion: predictor from an autocorrelation ``r (..., >= order + 1)``.

    Solves ``sum_j a[j-1] r[|i-j|] = -r[i]`` (i = 1..order), differentiably.

    Args:
        r: autocorrelation ``r[0..]`` with ``r[0] > 0``.
        order: predictor order (default ``r.shape[-1] - 1``).

    Returns:
        ``(a, k, err)``: predictor ``(..., order)``, reflection coefficients ``(..., order)`` and
        the final prediction-error power ``(...)``.

    Examples:
        >>> a, k, err = levinson(torch.tensor([1.0, 0.5, 0.25]))
        >>> a, err
        (tensor([-0.5000,  0.0000]), tensor(0.7500))

    References:
        Makhoul 1975, eq. (38)-(40).
    """
    check_tensor(r, "r", min_ndim=1)
    order = r.shape[-1] - 1 if order is None else order
    order = check_int(order, "order", minimum=1, maximum=r.shape[-1] - 1)
    err = r[..., 0]
    a = r[..., :0]
    ks = []
    for m in range(1, order + 1):
        acc = r[..., m] + (a * r[..., 1:m].flip(-1)).sum(-1)
        km = -acc / err
        ks.append(km)
        a = torch.cat([a + km[..., None] * a.flip(-1), km[..., None]], dim=-1)
        err = err * (1.0 - km * km)
    return a, torch.stack(ks, dim=-1), err


def autocorrelation(x: Tensor, max_lag: int) -> Tensor:
    """Biased autocorrelation ``r[l] = sum_n x[n] x[n+l]`` for ``l = 0..max_lag`` (via FFT).

    Examples:
        >>> autocorrelation(torch.tensor([1.0, 2.0, 3.0]), 2)
        tensor([14.0000,  8.0000,  3.0000])
    """
    check_tensor(x, "x", min_ndim=1)
    max_lag = check_int(max_lag, "max_lag", minimum=0)
    T = x.shape[-1]
    n = 1 << max(1, (T + max_lag).bit_length())
    spec = torch.fft.rfft(x, n=n)
    r = torch.fft.irfft(spec.real**2 + spec.imag**2, n=n)[..., : max_lag + 1]
    if max_lag + 1 > T:
        r = torch.cat([r[..., :T], r.new_zeros(*r.shape[:-1], max_lag + 1 - T)], dim=-1)
    return r


def lpc_analysis(x: Tensor, order: int, *, eps: float = 1e-9) -> tuple[Tensor, Tensor]:
    """Autocorrelation-method LPC: predictor ``a (..., order)`` and gain ``sqrt(err)`` ``(...)``.

    ``eps`` (relative to ``r[0]``, plus an absolute floor) regularises silent frames so the
    result stays finite (white-noise correction).

    Examples:
        >>> x = torch.tensor([1.0, 0.9, 0.81, 0.729, 0.6561])
        >>> a, g = lpc_analysis(x, 1)
        >>> round(float(a[0]), 3)
        -0.787
    """
    order = check_int(order, "order", minimum=1)
    r = autocorrelation(x, order)
    r = torch.cat([r[..., :1] * (1.0 + eps) + 1e-12, r[..., 1:]], dim=-1)
    a, _, err = levinson(r, order)
    return a, safe_sqrt(err)
