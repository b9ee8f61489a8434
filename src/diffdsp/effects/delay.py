"""Feedback delay (echo) with fractional, differentiable delay time.

References:
    Zölzer (ed.), "DAFX: Digital Audio Effects", 2nd ed., 2011, ch. 2 (feedback comb filter);
    Lee et al., "Differentiable artificial reverberation", TASLP 2022 (gamma anti-aliasing).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from diffdsp._numerics import next_pow2
from diffdsp._validation import check_in_range
from diffdsp.effects.base import Effect
from diffdsp.params import ParamRange

__all__ = ["Delay", "feedback_delay"]


def feedback_delay(x: Tensor, *, delay_samples: Tensor, feedback: Tensor,
                   alias_decay_db: float = 80.0) -> Tensor:
    """Echoes of a feedback comb ``w[n] = x[n - D] + feedback * w[n - D]`` (wet signal only).

    Evaluated by frequency sampling, ``H(z) = z^-D / (1 - g z^-D)``, so ``D`` may be fractional
    (band-limited delay, differentiable in ``D``). The FFT grid is taken at radius ``1/gamma``
    with ``gamma^n_fft = 10^(-alias_decay_db/20)`` so the echo tail that wraps around is
    attenuated by ``alias_decay_db`` (plus the zero padding of ``T``).

    Args:
        x: input ``(..., T)``.
        delay_samples: delay in samples (> 0), broadcast against ``x.shape[:-1]``.
        feedback: feedback gain in (-1, 1), same broadcasting.
        alias_decay_db: attenuation of the wrapped tail in dB.

    Returns:
        The wet signal ``(..., T)``.

    Shape:
        ``(..., T)``, parameters ``(...)``.

    Examples:
        >>> y = feedback_delay(torch.tensor([1.0] + [0.0] * 9), delay_samples=torch.tensor(3.0),
        ...                    feedback=torch.tensor(0.5))
        >>> [round(v, 4) for v in y.tolist()]
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.25]

    References:
        Zölzer, DAFX 2011, ch. 2; Lee et al., TASLP 2022.
    """
    n = x.shape[-1]
    n_fft = next_pow2(2 * max(n, 1))
    gamma = 10.0 ** (-alias_decay_db / (20.0 * n_fft))
    k = torch.arange(n_fft // 2 + 1, device=x.device, dtype=x.dtype)
    w = 2 * math.pi * k / n_fft
    d = delay_samples[..., None]
    zd = torch.polar(gamma ** d, -w * d)  # (gamma e^{-jw})^D
    h = zd / (1 - feedback[..., None] * zd)
    t = torch.arange(n, device=x.device, dtype=x.dtype)
    env = gamma ** t
    y = torch.fft.irfft(torch.fft.rfft(x * env, n=n_fft) * h, n=n_fft)[..., :n]
    return y / env


class Delay(Effect):
    """Feedback delay: ``y = x + mix * echoes``.

    Parameters: ``delay_ms`` [1, 1000] (log), ``feedback`` [0, 0.95], ``mix`` [0, 1].

    Args:
        sample_rate: sample rate in Hz.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> x = torch.zeros(1, 1, 100); x[..., 0] = 1.0
        >>> y = Delay(1000)(x, delay_ms=10.0, feedback=0.5, mix=1.0)
        >>> [round(float(v), 3) for v in y[0, 0, [0, 10, 20, 30]]]
        [1.0, 1.0, 0.5, 0.25]

    References:
        Zölzer, DAFX 2011, ch. 2.
    """

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.param_ranges = {
            "delay_ms": ParamRange(1.0, 1000.0, "log", unit="ms", default=250.0),
            "feedback": ParamRange(0.0, 0.95, default=0.3),
            "mix": ParamRange(0.0, 1.0, default=0.3),
        }

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Add the echoes."""
        check_in_range(values["delay_ms"], "delay_ms", 0.0, math.inf, low_inclusive=False)
        check_in_range(values["feedback"], "feedback", -1.0, 1.0, low_inclusive=False,
                       high_inclusive=False)  # |feedback| < 1: a stable loop
        d = (values["delay_ms"] * self.sample_rate / 1000.0).expand(x.shape[:-1])
        fb = values["feedback"].expand(x.shape[:-1])
        return x + values["mix"][..., None] * feedback_delay(x, delay_samples=d, feedback=fb)
