"""Numerically safe primitives shared by every loss, analysis and processor.

Everything in diffdsp that takes a logarithm, a root or divides by an energy goes through these
functions, so that silence, DC, zero padding and clipping never produce ``inf`` or ``NaN`` values or
gradients (auraloss#63, torchsynth's ``log2(0)`` gradient).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Default floor for magnitudes before a logarithm (-140 dB in amplitude).
EPS_AMP: float = 1e-7
#: Default floor for powers/energies before a logarithm or a division (-140 dB in power).
EPS_POWER: float = 1e-14


def safe_log(x: Tensor, eps: float = EPS_AMP) -> Tensor:
    """Natural logarithm of ``max(x, eps)``.

    The floor is applied with ``clamp_min``, so the gradient below ``eps`` is exactly zero instead
    of ``inf``.

    Args:
        x: input tensor, any shape.
        eps: floor, > 0.

    Returns:
        ``log(max(x, eps))``, same shape as ``x``.

    Examples:
        >>> safe_log(torch.tensor([0.0, 1.0]))
        tensor([-16.1181,   0.0000])
    """
    return torch.log(x.clamp_min(eps))


def safe_log10(x: Tensor, eps: float = EPS_AMP) -> Tensor:
    """Base-10 logarithm of ``max(x, eps)`` (see :func:`safe_log`).

    Examples:
        >>> safe_log10(torch.tensor([0.0, 100.0]), eps=1e-3)
        tensor([-3.,  2.])
    """
    return torch.log10(x.clamp_min(eps))


def safe_divide(num: Tensor, den: Tensor, eps: float = EPS_POWER) -> Tensor:
    """``num / den`` with the denominator's magnitude floored at ``eps`` (sign kept, 0 -> +eps).

    Examples:
        >>> safe_divide(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 2.0]), eps=1e-3)
        tensor([1000.0000,    0.5000])
    """
    sign = torch.where(den < 0, -1.0, 1.0).to(den.dtype)
    return num / (sign * den.abs().clamp_min(eps))


def safe_sqrt(x: Tensor, eps: float = EPS_POWER) -> Tensor:
    """Square root with a finite gradient at 0: ``sqrt(max(x, eps))``.

    Examples:
        >>> safe_sqrt(torch.tensor([4.0]))
        tensor([2.])
    """
    return torch.sqrt(x.clamp_min(eps))


def amp_to_db(x: Tensor, eps: float = EPS_AMP) -> Tensor:
    """Amplitude to decibels, ``20 log10(max(|x|, eps))``.

    Examples:
        >>> amp_to_db(torch.tensor([1.0, 0.1, 0.0]))
        tensor([   0.,  -20., -140.])
    """
    return 20.0 * safe_log10(x.abs(), eps)


def power_to_db(x: Tensor, eps: float = EPS_POWER) -> Tensor:
    """Power (energy) to decibels, ``10 log10(max(x, eps))``.

    Examples:
        >>> power_to_db(torch.tensor([1.0, 0.01]))
        tensor([  0., -20.])
    """
    return 10.0 * safe_log10(x, eps)


def db_to_amp(x_db: Tensor | float) -> Tensor:
    """Decibels to amplitude, ``10^(x/20)``.

    Examples:
        >>> db_to_amp(torch.tensor([0.0, -20.0]))
        tensor([1.0000, 0.1000])
    """
    return torch.pow(10.0, torch.as_tensor(x_db) / 20.0)


def db_to_power(x_db: Tensor | float) -> Tensor:
    """Decibels to power, ``10^(x/10)``.

    Examples:
        >>> db_to_power(torch.tensor([10.0]))
        tensor([10.])
    """
    return torch.pow(10.0, torch.as_tensor(x_db) / 10.0)


def hz_to_midi(f_hz: Tensor) -> Tensor:
    """Frequency in Hz to MIDI note number (A4 = 440 Hz = 69), safe at 0 Hz.

    Examples:
        >>> hz_to_midi(torch.tensor([440.0, 880.0]))
        tensor([69., 81.])
    """
    return 69.0 + 12.0 * torch.log2(f_hz.clamp_min(1e-3) / 440.0)


def midi_to_hz(midi: Tensor | float) -> Tensor:
    """MIDI note number to frequency in Hz.

    Examples:
        >>> midi_to_hz(torch.tensor([69.0, 81.0]))
        tensor([440., 880.])
    """
    return 440.0 * torch.pow(2.0, (torch.as_tensor(midi) - 69.0) / 12.0)


def cents(f_hz: Tensor, ref_hz: Tensor) -> Tensor:
    """Pitch difference ``1200 log2(f / ref)`` in cents (safe at 0 Hz).

    Examples:
        >>> cents(torch.tensor([880.0]), torch.tensor([440.0]))
        tensor([1200.])
    """
    return 1200.0 * torch.log2(f_hz.clamp_min(1e-3) / ref_hz.clamp_min(1e-3))


def next_pow2(n: int) -> int:
    """Smallest power of two >= ``n`` (``n >= 1``).

    Examples:
        >>> next_pow2(1000)
        1024
    """
    return 1 << max(0, math.ceil(math.log2(max(1, n))))
