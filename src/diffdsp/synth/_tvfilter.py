"""Time-varying resonant biquads for the synth modules (cutoff driven by envelopes and LFOs).

Coefficients follow the RBJ audio-EQ cookbook per sample. The second-order all-pole recursion runs
in a numba kernel (CPU) inside a ``torch.autograd.Function`` whose backward is the adjoint
recursion run backwards in time (the FIR part is plain differentiable torch). On other devices the
recursion is evaluated on the CPU kernel and moved back (documented limitation of this fallback).

References:
    R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients".
    Masuda & Saito, ISMIR 2021 (time-varying filter in a differentiable synth).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffdsp._validation import check_choice

__all__ = ["FILTER_KINDS", "allpole2", "rbj_coefficients", "tv_biquad"]

FILTER_KINDS = ("lowpass", "highpass", "bandpass")

_KERNEL: Any = None


def _kernel() -> Any:
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(cache=True, parallel=True)
        def run(e: np.ndarray, a1: np.ndarray, a2: np.ndarray, y: np.ndarray) -> None:
            n_rows, n = e.shape
            for r in numba.prange(n_rows):
                y1 = 0.0
                y2 = 0.0
                for t in range(n):
                    v = e[r, t] - a1[r, t] * y1 - a2[r, t] * y2
                    y[r, t] = v
                    y2 = y1
                    y1 = v

        _KERNEL = run
    return _KERNEL


def _run(e: Tensor, a1: Tensor, a2: Tensor) -> Tensor:
    dev = e.device
    e_c = e.detach().to("cpu").contiguous()
    a1_c = a1.detach().to("cpu").contiguous()
    a2_c = a2.detach().to("cpu").contiguous()
    y = torch.empty_like(e_c)
    _kernel()(e_c.numpy(), a1_c.numpy(), a2_c.numpy(), y.numpy())
    return y.to(dev)


class _AllPole2(torch.autograd.Function):
    @staticmethod
    def forward(e: Tensor, a1: Tensor, a2: Tensor) -> Tensor:
        return _run(e, a1, a2)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        _, a1, a2 = inputs
        ctx.save_for_backward(a1, a2, output)

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        a1, a2, y = ctx.saved_tensors
        zero = torch.zeros_like(a1[..., :1])
        a1s = torch.cat([a1[..., 1:], zero], -1)  # a1[n+1]
        a2s = torch.cat([a2[..., 2:], zero, zero], -1)  # a2[n+2]
        ge = _run(grad_y.flip(-1), a1s.flip(-1), a2s.flip(-1)).flip(-1)
        y1 = torch.cat([zero, y[..., :-1]], -1)
        y2 = torch.cat([zero, zero, y[..., :-2]], -1)
        ga1 = -ge * y1 if ctx.needs_input_grad[1] else None
        ga2 = -ge * y2 if ctx.needs_input_grad[2] else None
        return ge, ga1, ga2


def allpole2(e: Tensor, a1: Tensor, a2: Tensor) -> Tensor:
    """``y[n] = e[n] - a1[n] y[n-1] - a2[n] y[n-2]`` on rows ``(rows, time)`` (zero initial state).

    Examples:
        >>> e = torch.tensor([[1.0, 0.0, 0.0]])
        >>> allpole2(e, torch.full((1, 3), -0.5), torch.zeros(1, 3))
        tensor([[1.0000, 0.5000, 0.2500]])
    """
    shape = e.shape
    e2 = e.reshape(-1, shape[-1])
    a1b = a1.expand(shape).reshape(-1, shape[-1])
    a2b = a2.expand(shape).reshape(-1, shape[-1])
    out: Tensor = _AllPole2.apply(e2, a1b, a2b)
    return out.reshape(shape)


def rbj_coefficients(
    kind: str, *, cutoff_hz: Tensor, q: Tensor, sample_rate: int
) -> tuple[Tensor, Tensor]:
    """Normalised RBJ biquad coefficients ``b (..., 3)`` and ``a (..., 3)`` (``a0 = 1``).

    Examples:
        >>> b, a = rbj_coefficients("lowpass", cutoff_hz=torch.tensor(1000.0),
        ...                         q=torch.tensor(0.7071), sample_rate=48000)
        >>> round(float(b.sum() / a.sum()), 4)  # unit gain at DC
        1.0
    """
    check_choice(kind, "kind", FILTER_KINDS)
    w0 = 2.0 * math.pi * cutoff_hz / sample_rate
    cw = torch.cos(w0)
    alpha = torch.sin(w0) / (2.0 * q)
    a0 = 1.0 + alpha
    if kind == "lowpass":
        b0 = (1.0 - cw) / 2.0
        b = torch.stack([b0, 1.0 - cw, b0], -1)
    elif kind == "highpass":
        b0 = (1.0 + cw) / 2.0
        b = torch.stack([b0, -(1.0 + cw), b0], -1)
    else:
        b = torch.stack([alpha, torch.zeros_like(alpha), -alpha], -1)
    a = torch.stack([torch.ones_like(a0), -2.0 * cw / a0, (1.0 - alpha) / a0], -1)
    return b / a0.unsqueeze(-1), a


def tv_biquad(
    x: Tensor, *, kind: str, cutoff_hz: Tensor, q: Tensor, sample_rate: int
) -> Tensor:
    """Filter ``x (..., time)`` with a biquad whose cutoff/Q vary per sample ``(..., time)``.

    Examples:
        >>> x = torch.zeros(1, 64); x[0, 0] = 1.0
        >>> y = tv_biquad(x, kind="lowpass", cutoff_hz=torch.full((1, 64), 1000.0),
        ...               q=torch.full((1, 64), 0.7071), sample_rate=8000)
        >>> bool(y.isfinite().all())
        True
    """
    b, a = rbj_coefficients(kind, cutoff_hz=cutoff_hz, q=q, sample_rate=sample_rate)
    b = b.expand(*x.shape, 3)
    a = a.expand(*x.shape, 3)
    x1 = torch.nn.functional.pad(x, (1, 0))[..., :-1]
    x2 = torch.nn.functional.pad(x, (2, 0))[..., :-2]
    e = b[..., 0] * x + b[..., 1] * x1 + b[..., 2] * x2
    return allpole2(e, a[..., 1], a[..., 2])
