"""Parameter ranges and stability maps.

Every processor declares ``param_ranges: dict[str, ParamRange]`` and can be driven either by
physical-unit keyword arguments or by one normalised tensor ``(batch, n_params)`` in [0, 1] mapped
through the ranges. Raw, unconstrained learnable tensors go through the *stability maps* below so
that every value an optimiser can reach is a stable, valid system (smooth bounded maps, never
``clamp``, whose gradient is zero outside the range).

References:
    Engel et al., "DDSP: Differentiable Digital Signal Processing", ICLR 2020 (``exp_sigmoid``).
    Nercessian et al., "Lightweight and interpretable neural modeling of an audio distortion effect
    using hyperconditioned differentiable biquads", ICASSP 2021 (stable biquad maps).
    torchsynth ``ModuleParameterRange`` (normalised parameters in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from diffdsp._validation import InputError, check_choice

__all__ = [
    "ParamRange",
    "bounded_sigmoid",
    "bounded_tanh",
    "denormalise_dict",
    "exp_sigmoid",
    "inverse_bounded_sigmoid",
    "inverse_positive_map",
    "normalise_dict",
    "orthogonal_map",
    "pole_radius_map",
    "positive_map",
    "soft_clamp",
]

Scale = Literal["linear", "log", "power"]
_SCALES = ("linear", "log", "power")


@dataclass(frozen=True)
class ParamRange:
    """The physical range of one parameter and its mapping to and from [0, 1].

    Args:
        min: lowest physical value.
        max: highest physical value (> ``min``).
        scale: ``"linear"``; ``"log"`` (geometric interpolation, needs ``min > 0``; use it for
            frequencies and times); or ``"power"`` (``min + (max-min) * u**exponent``).
        unit: unit label for display and JSON (``"Hz"``, ``"dB"``, ``"ms"``, ...).
        default: physical default (the midpoint in normalised space when omitted).
        exponent: exponent for the ``"power"`` scale (>= 1 keeps the gradient finite at 0).
        description: one line for ``diffdsp info`` and docs.

    Examples:
        >>> r = ParamRange(20.0, 20000.0, "log", unit="Hz")
        >>> r.denormalise(torch.tensor([0.0, 0.5, 1.0])).round()
        tensor([   20.,   632., 20000.])
        >>> r.normalise(torch.tensor(632.4556))
        tensor(0.5000)
    """

    min: float
    max: float
    scale: Scale = "linear"
    unit: str = ""
    default: float | None = None
    exponent: float = 1.0
    description: str = ""
    _default: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice(self.scale, "scale", _SCALES)
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or not self.max > self.min:
            raise InputError(
                f"ParamRange needs finite min < max, got min={self.min!r}, max={self.max!r}"
            )
        if self.scale == "log" and self.min <= 0:
            raise InputError(f"ParamRange with scale 'log' needs min > 0, got min={self.min!r}")
        if self.scale == "power" and self.exponent < 1.0:
            raise InputError(f"ParamRange exponent must be >= 1, got {self.exponent!r}")
        if self.default is None:
            mid = float(self.denormalise(torch.tensor(0.5, dtype=torch.float64)))
            object.__setattr__(self, "_default", mid)
        else:
            if not self.min <= self.default <= self.max:
                raise InputError(
                    f"ParamRange default must be in [{self.min}, {self.max}], got {self.default!r}"
                )
            object.__setattr__(self, "_default", float(self.default))

    @property
    def default_value(self) -> float:
        """The physical default (``default`` or the normalised midpoint)."""
        return self._default

    def denormalise(self, u: Tensor) -> Tensor:
        """Map ``u`` in [0, 1] to the physical range (differentiable, any shape)."""
        if self.scale == "linear":
            return self.min + (self.max - self.min) * u
        if self.scale == "log":
            return self.min * torch.exp(u * math.log(self.max / self.min))
        return self.min + (self.max - self.min) * u.clamp(0.0, 1.0) ** self.exponent

    def normalise(self, value: Tensor) -> Tensor:
        """Map a physical value to [0, 1] (inverse of :meth:`denormalise`)."""
        if self.scale == "linear":
            return (value - self.min) / (self.max - self.min)
        if self.scale == "log":
            return torch.log(value.clamp_min(self.min * 1e-12) / self.min) / math.log(
                self.max / self.min
            )
        frac = ((value - self.min) / (self.max - self.min)).clamp_min(0.0)
        return frac ** (1.0 / self.exponent)

    def from_raw(self, raw: Tensor) -> Tensor:
        """Map an unconstrained tensor into the range through a sigmoid (the stability map)."""
        return self.denormalise(torch.sigmoid(raw))

    def to_raw(self, value: Tensor) -> Tensor:
        """Inverse of :meth:`from_raw`, for initialising raw parameters from physical values."""
        u = self.normalise(value).clamp(1e-6, 1.0 - 1e-6)
        return torch.logit(u)

    def contains(self, value: float | Tensor) -> bool:
        """Whether ``value`` (every element) lies in [min, max]."""
        v = torch.as_tensor(value)
        return bool(((v >= self.min) & (v <= self.max)).all())

    def to_dict(self) -> dict[str, object]:
        """Plain-data description for JSON."""
        return {
            "min": self.min,
            "max": self.max,
            "scale": self.scale,
            "unit": self.unit,
            "default": self.default_value,
        }


def denormalise_dict(ranges: Mapping[str, ParamRange], u: Tensor) -> dict[str, Tensor]:
    """Split a normalised ``(..., n_params)`` tensor into physical values, one per range.

    Args:
        ranges: ordered mapping name -> ParamRange (its order is the column order).
        u: tensor ``(..., len(ranges))`` in [0, 1].

    Returns:
        dict name -> tensor ``(...)`` in physical units.

    Examples:
        >>> ranges = {"gain_db": ParamRange(-12.0, 12.0), "q": ParamRange(0.1, 10.0, "log")}
        >>> out = denormalise_dict(ranges, torch.tensor([[0.5, 1.0]]))
        >>> out["gain_db"], out["q"]
        (tensor([0.]), tensor([10.]))
    """
    if u.shape[-1] != len(ranges):
        raise InputError(
            f"normalised parameters must have {len(ranges)} columns ({', '.join(ranges)}), "
            f"got shape {tuple(u.shape)}"
        )
    return {name: r.denormalise(u[..., i]) for i, (name, r) in enumerate(ranges.items())}


def normalise_dict(ranges: Mapping[str, ParamRange], values: Mapping[str, Tensor]) -> Tensor:
    """Stack physical values into one normalised ``(..., n_params)`` tensor (inverse of
    :func:`denormalise_dict`).

    Examples:
        >>> ranges = {"gain_db": ParamRange(-12.0, 12.0)}
        >>> normalise_dict(ranges, {"gain_db": torch.tensor([6.0])})
        tensor([[0.7500]])
    """
    missing = [k for k in ranges if k not in values]
    if missing:
        raise InputError(f"missing parameters {missing}; expected {list(ranges)}")
    cols = [r.normalise(torch.as_tensor(values[k])) for k, r in ranges.items()]
    return torch.stack(torch.broadcast_tensors(*cols), dim=-1)


def bounded_sigmoid(raw: Tensor, low: float, high: float) -> Tensor:
    """Smoothly map an unconstrained tensor into ``(low, high)``: ``low + (high-low)*sigmoid(raw)``.

    Examples:
        >>> bounded_sigmoid(torch.tensor([0.0]), -1.0, 3.0)
        tensor([1.])
    """
    return low + (high - low) * torch.sigmoid(raw)


def inverse_bounded_sigmoid(value: Tensor, low: float, high: float, eps: float = 1e-6) -> Tensor:
    """Inverse of :func:`bounded_sigmoid` (values are pulled ``eps`` inside the open interval).

    Examples:
        >>> inverse_bounded_sigmoid(torch.tensor([1.0]), -1.0, 3.0)
        tensor([0.])
    """
    u = ((value - low) / (high - low)).clamp(eps, 1.0 - eps)
    return torch.logit(u)


def bounded_tanh(raw: Tensor, bound: float) -> Tensor:
    """Map an unconstrained tensor into ``(-bound, bound)`` with ``bound * tanh(raw)``.

    Used for stable biquad coefficients (``a1 = 2 tanh(.)``, Nercessian et al. 2021).

    Examples:
        >>> bounded_tanh(torch.tensor([0.0, 100.0]), 2.0)
        tensor([0., 2.])
    """
    return bound * torch.tanh(raw)


def soft_clamp(x: Tensor, low: float, high: float, sharpness: float = 8.0) -> Tensor:
    """Smooth clamp into ``(low, high)``: the identity inside, saturating at the limits.

    ``x + softplus(k (low - x)) / k - softplus(k (x - high)) / k`` with ``k = sharpness``. It is
    strictly increasing, stays strictly inside ``(low, high)``, and differs from ``x`` by at most
    ``log(1 + exp(-k d)) / k`` at a distance ``d`` inside a limit (``k = 8``, ``d = 0.7``: below
    5e-4, i.e. 0.05 % in frequency an octave inside a limit when ``x`` is a log-frequency). Unlike
    ``tanh`` it does not bend the values in the middle of the range.

    Examples:
        >>> soft_clamp(torch.tensor([-100.0, 0.0, 0.5, 100.0]), -1.0, 1.0).tolist()
        [-1.0, 0.0, 0.5, 1.0]
    """
    if not high > low:
        raise InputError(f"soft_clamp needs high > low, got low={low!r}, high={high!r}")
    k = float(sharpness)

    def sp(z: Tensor) -> Tensor:
        return torch.nn.functional.softplus(k * z) / k

    # the same function written twice (sp(z) = z + sp(-z)), each form free of cancellation on
    # its side, so that it stays monotone in floating point far outside the limits
    below = low + sp(x - low) - sp(x - high)
    above = high - sp(high - x) + sp(low - x)
    return torch.where(x < 0.5 * (low + high), below, above)


def pole_radius_map(raw: Tensor, max_radius: float = 0.9999) -> Tensor:
    """Map an unconstrained tensor to a pole radius in ``(0, max_radius)`` (stable by construction).

    Examples:
        >>> pole_radius_map(torch.tensor([0.0]), 0.9)
        tensor([0.4500])
    """
    if not 0.0 < max_radius < 1.0:
        raise InputError(f"max_radius must be in (0, 1), got {max_radius!r}")
    return max_radius * torch.sigmoid(raw)


def positive_map(raw: Tensor, minimum: float = 0.0) -> Tensor:
    """Map an unconstrained tensor to ``(minimum, inf)`` with a softplus (smooth, never 0 gradient).

    Examples:
        >>> positive_map(torch.tensor([0.0]))
        tensor([0.6931])
    """
    return minimum + torch.nn.functional.softplus(raw)


def inverse_positive_map(value: Tensor, minimum: float = 0.0) -> Tensor:
    """Inverse of :func:`positive_map` (``log(expm1(v - minimum))``, stable for large values).

    Examples:
        >>> inverse_positive_map(positive_map(torch.tensor([1.5])))
        tensor([1.5000])
    """
    v = (value - minimum).clamp_min(1e-12)
    return torch.where(v > 20.0, v, torch.log(torch.expm1(v.clamp_max(20.0))))


def exp_sigmoid(
    raw: Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7
) -> Tensor:
    """DDSP's scaled sigmoid ``max_value * sigmoid(raw)^log(exponent) + threshold``.

    Maps network outputs to positive amplitudes with a large dynamic range (Engel et al. 2020).

    Examples:
        >>> exp_sigmoid(torch.tensor([100.0]))
        tensor([2.0000])
    """
    return max_value * torch.sigmoid(raw) ** math.log(exponent) + threshold


def orthogonal_map(raw: Tensor) -> Tensor:
    """Map an unconstrained square matrix ``(..., N, N)`` to an orthogonal one.

    Uses the matrix exponential of the skew-symmetric part, ``expm(triu(W) - triu(W)^T)``, which
    covers the rotations (det = +1) and is differentiable everywhere (FLAMO's ``orthogonal`` map).

    Examples:
        >>> q = orthogonal_map(torch.randn(4, 4, dtype=torch.float64))
        >>> torch.allclose(q @ q.T, torch.eye(4, dtype=torch.float64))
        True
    """
    if raw.ndim < 2 or raw.shape[-1] != raw.shape[-2]:
        raise InputError(
            f"orthogonal_map needs square matrices (..., N, N), got {tuple(raw.shape)}"
        )
    upper = torch.triu(raw, diagonal=1)
    return torch.linalg.matrix_exp(upper - upper.transpose(-1, -2))
