"""Boundary checks shared by every public function.

Each check raises :class:`InputError` (a ``ValueError``) or ``TypeError`` whose message names the
parameter, what was expected and what was received, e.g.
``cutoff_hz must be in (0, 24000.0) for sample_rate 48000, got 30000.0``.

Checks that need the values of a tensor (finiteness, ranges) synchronise with the device. Range
checks on design parameters are cheap and always on; finiteness checks of whole signals run only
when enabled with :func:`set_finite_checks` or ``DIFFDSP_CHECK_FINITE=1`` (as torchsynth's
``debug`` flag), because they would cost a host sync on every call of a hot path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "InputError",
    "as_tensor",
    "check_choice",
    "check_finite",
    "check_frequency",
    "check_in_range",
    "check_int",
    "check_positive",
    "check_same_sample_rate",
    "check_sample_rate",
    "check_tensor",
    "finite_checks_enabled",
    "set_finite_checks",
]

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000

_finite_checks = os.environ.get("DIFFDSP_CHECK_FINITE", "0") not in ("", "0")


class InputError(ValueError):
    """Invalid input given to a public function or command (maps to exit code 2 in the CLI)."""


def set_finite_checks(enabled: bool) -> None:
    """Turn the (host-synchronising) finiteness checks of signals on or off."""
    global _finite_checks
    _finite_checks = bool(enabled)


def finite_checks_enabled() -> bool:
    """Whether :func:`check_finite` checks values (see :func:`set_finite_checks`)."""
    return _finite_checks


def _fmt(value: Any) -> str:
    if isinstance(value, Tensor):
        if value.numel() == 1:
            return repr(float(value.detach().reshape(()).item()))
        return f"tensor of shape {tuple(value.shape)}"
    return repr(value)


def _tracing() -> bool:
    return bool(torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling())


def check_tensor(
    x: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    floating: bool = True,
) -> Tensor:
    """Check that ``x`` is a tensor of the right rank and dtype and return it.

    Examples:
        >>> check_tensor(torch.zeros(2, 3), "x", ndim=2).shape
        torch.Size([2, 3])
        >>> check_tensor([1.0], "x")
        Traceback (most recent call last):
        ...
        TypeError: x must be a torch.Tensor, got list
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise InputError(
                f"{name} must have {want} dimensions, got {x.ndim} (shape {tuple(x.shape)})"
            )
    if min_ndim is not None and x.ndim < min_ndim:
        raise InputError(
            f"{name} must have at least {min_ndim} dimensions, "
            f"got {x.ndim} (shape {tuple(x.shape)})"
        )
    return x


def check_finite(x: Tensor, name: str, *, force: bool = False) -> Tensor:
    """Raise if ``x`` holds NaN or Inf (only when finite checks are enabled, or ``force``)."""
    if (force or _finite_checks) and not _tracing():
        if not bool(torch.isfinite(x).all()):
            n_bad = int((~torch.isfinite(x)).sum())
            raise InputError(f"{name} must be finite, got {n_bad} NaN/Inf values")
    return x


def check_in_range(
    value: float | Tensor,
    name: str,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    context: str = "",
) -> None:
    """Check ``low <(=) value <(=) high`` for a number or every element of a tensor.

    Examples:
        >>> check_in_range(0.5, "q", 0.0, 1.0)
        >>> check_in_range(2.0, "q", 0.0, 1.0)
        Traceback (most recent call last):
        ...
        diffdsp._validation.InputError: q must be in [0.0, 1.0], got 2.0
    """
    if isinstance(value, Tensor):
        if _tracing() or value.numel() == 0:
            return
        v = value.detach()
        lo_ok = (v >= low) if low_inclusive else (v > low)
        hi_ok = (v <= high) if high_inclusive else (v < high)
        ok = lo_ok & hi_ok
        if bool(ok.all()):
            return
        bad = v[~ok].flatten()[0]
        shown: Any = float(bad.item())
    else:
        fv = float(value)
        lo_ok_f = (fv >= low) if low_inclusive else (fv > low)
        hi_ok_f = (fv <= high) if high_inclusive else (fv < high)
        if lo_ok_f and hi_ok_f and not math.isnan(fv):
            return
        shown = value
    lb = "[" if low_inclusive else "("
    rb = "]" if high_inclusive else ")"
    ctx = f" {context}" if context else ""
    raise InputError(f"{name} must be in {lb}{low}, {high}{rb}{ctx}, got {shown!r}")


def check_positive(value: float | Tensor, name: str) -> None:
    """Check ``value > 0`` (number or every element of a tensor).

    Examples:
        >>> check_positive(-1.0, "t60_s")
        Traceback (most recent call last):
        ...
        diffdsp._validation.InputError: t60_s must be in (0.0, inf), got -1.0
    """
    check_in_range(value, name, 0.0, math.inf, low_inclusive=False, high_inclusive=False)


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Check that ``value`` is an integer within optional bounds and return it as ``int``.

    Examples:
        >>> check_int(3, "order", minimum=1)
        3
        >>> check_int(0, "order", minimum=1)
        Traceback (most recent call last):
        ...
        diffdsp._validation.InputError: order must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    iv = int(value)
    if minimum is not None and iv < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {iv}")
    if maximum is not None and iv > maximum:
        raise InputError(f"{name} must be an integer <= {maximum}, got {iv}")
    return iv


def check_sample_rate(sample_rate: Any, name: str = "sample_rate") -> int:
    """Check a sample rate in Hz: a positive integer in [1000, 768000].

    Examples:
        >>> check_sample_rate(48000)
        48000
        >>> check_sample_rate(10)
        Traceback (most recent call last):
        ...
        diffdsp._validation.InputError: sample_rate must be an integer in [1000, 768000] Hz, got 10
    """
    if isinstance(sample_rate, float) and sample_rate.is_integer():
        sample_rate = int(sample_rate)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise InputError(f"{name} must be an integer number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(
            f"{name} must be an integer in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz, "
            f"got {sample_rate}"
        )
    return sample_rate


def check_frequency(
    f_hz: float | Tensor, name: str, sample_rate: float, *, allow_zero: bool = False
) -> None:
    """Check ``0 < f_hz < sample_rate / 2`` (``0 <=`` with ``allow_zero``).

    Examples:
        >>> check_frequency(30000.0, "cutoff_hz", 48000)
        Traceback (most recent call last):
        ...
        diffdsp._validation.InputError: cutoff_hz must be in (0.0, 24000.0) ... got 30000.0
    """
    check_in_range(
        f_hz,
        name,
        0.0,
        sample_rate / 2.0,
        low_inclusive=allow_zero,
        high_inclusive=False,
        context=f"for sample_rate {sample_rate}",
    )


def check_same_sample_rate(sr_a: int, sr_b: int, name_a: str = "a", name_b: str = "b") -> None:
    """Check that two sample rates agree.

    Examples:
        >>> check_same_sample_rate(44100, 48000, "input", "reference")
        Traceback (most recent call last):
        ...
        diffdsp._validation.InputError: sample rates must match: input has 44100 Hz, ...
    """
    if int(sr_a) != int(sr_b):
        raise InputError(
            f"sample rates must match: {name_a} has {sr_a} Hz, {name_b} has {sr_b} Hz"
        )


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Check that ``value`` is one of ``choices`` and return it.

    Examples:
        >>> check_choice("log", "scale", ["linear", "log"])
        'log'
        >>> check_choice("cubic", "scale", ["linear", "log"])
        Traceback (most recent call last):
        ...
        diffdsp._validation.InputError: scale must be one of 'linear', 'log', got 'cubic'
    """
    options = list(choices)
    if value not in options:
        allowed = ", ".join(repr(c) for c in options)
        raise InputError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def as_tensor(value: float | Tensor | Sequence[float], like: Tensor) -> Tensor:
    """Convert a number, sequence or tensor to a tensor with ``like``'s dtype and device.

    A tensor that already has them is returned as is (its autograd graph kept).

    Examples:
        >>> as_tensor(2.0, torch.zeros(3, dtype=torch.float64))
        tensor(2., dtype=torch.float64)
    """
    dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
    if isinstance(value, Tensor):
        if value.dtype == dtype and value.device == like.device:
            return value
        return value.to(dtype=dtype, device=like.device)
    return torch.as_tensor(value, dtype=dtype, device=like.device)
