"""Differentiable filter design: RBJ biquads, SOS helpers, stable biquad maps, parametric EQ.

All design functions are pure tensor functions of their physical parameters (``cutoff_hz``, ``q``,
``gain_db``), batched over any leading dimensions (parameters broadcast against each other), and
return coefficients normalised so that ``a[..., 0] = 1``. A batch of biquads ``b, a (..., 3)``
becomes second-order sections ``(..., 6)`` with :func:`to_sos`; the last leading dimension then
plays the role of the section axis for :func:`diffdsp.functional.iir.sosfilt` and
:func:`diffdsp.functional.freq.sosfreqz`.

References:
    R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients" (Audio EQ
    Cookbook). Nercessian, Sarroff & Werner, "Lightweight and interpretable neural modeling of an
    audio distortion effect using hyperconditioned differentiable biquads", ICASSP 2021, sec. 2.2
    (stable coefficient maps). Steinmetz, Bryan & Reiss, "Style transfer of audio effects with
    differentiable signal processing", JAES 2022 (6-band parametric EQ).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from diffdsp._validation import (
    InputError,
    as_tensor,
    check_frequency,
    check_sample_rate,
    check_tensor,
)
from diffdsp.params import pole_radius_map

__all__ = [
    "BIQUAD_KINDS",
    "biquad",
    "biquad_from_poles_zeros",
    "nercessian_biquad",
    "parametric_eq_sos",
    "pole_zero_biquad",
    "sos_is_stable",
    "sos_pole_radius",
    "sos_to_tf",
    "stable_denominator",
    "to_sos",
]

_ALIASES = {
    "lowpass": "lowpass",
    "lpf": "lowpass",
    "highpass": "highpass",
    "hpf": "highpass",
    "bandpass": "bandpass",
    "bpf": "bandpass",
    "notch": "notch",
    "bandstop": "notch",
    "allpass": "allpass",
    "apf": "allpass",
    "peaking": "peaking",
    "peak": "peaking",
    "bell": "peaking",
    "lowshelf": "lowshelf",
    "low_shelf": "lowshelf",
    "highshelf": "highshelf",
    "high_shelf": "highshelf",
}

#: Canonical biquad kinds accepted by :func:`biquad` (aliases: lpf, hpf, bpf, bandstop, apf,
#: peak, bell, low_shelf, high_shelf).
BIQUAD_KINDS: tuple[str, ...] = (
    "lowpass",
    "highpass",
    "bandpass",
    "notch",
    "allpass",
    "peaking",
    "lowshelf",
    "highshelf",
)


def _like(*values: float | Tensor) -> Tensor:
    """A tensor whose dtype/device the float parameters should follow."""
    for v in values:
        if isinstance(v, Tensor) and v.is_floating_point():
            return v
    return torch.zeros((), dtype=torch.get_default_dtype())


def biquad(
    kind: str,
    *,
    cutoff_hz: float | Tensor,
    q: float | Tensor,
    gain_db: float | Tensor = 0.0,
    sample_rate: int,
) -> tuple[Tensor, Tensor]:
    """RBJ Audio-EQ-Cookbook biquad coefficients, differentiable in every parameter.

    Args:
        kind: ``"lowpass"``, ``"highpass"``, ``"bandpass"`` (0 dB peak), ``"notch"``,
            ``"allpass"``, ``"peaking"``, ``"lowshelf"`` or ``"highshelf"`` (or an alias).
        cutoff_hz: cutoff / centre / shelf-midpoint frequency in Hz, in ``(0, sample_rate/2)``.
        q: quality factor (> 0); ``1/sqrt(2)`` gives Butterworth low/high-pass responses. For the
            shelves it is the cookbook's ``Q`` (``1/sqrt(2)`` is the steepest monotonic shelf).
        gain_db: gain in dB for ``peaking`` (at the centre) and the shelves (far from the
            cutoff; the shelf midpoint has half of it); ignored by the other kinds.
        sample_rate: sample rate in Hz.

    Returns:
        ``(b, a)``, each ``(..., 3)`` with ``a[..., 0] = 1``; ``...`` is the broadcast shape of
        the parameters.

    Shape:
        cutoff_hz, q, gain_db: ``(...)`` broadcastable -> b, a: ``(..., 3)``.

    Examples:
        >>> b, a = biquad("lowpass", cutoff_hz=1000.0, q=0.7071, sample_rate=48000)
        >>> [round(v, 5) for v in a.tolist()]
        [1.0, -1.81534, 0.831]

    References:
        R. Bristow-Johnson, Audio EQ Cookbook (all eight formulas).
    """
    canon = _ALIASES.get(kind) if isinstance(kind, str) else None
    if canon is None:
        raise InputError(
            f"kind must be one of {', '.join(repr(k) for k in BIQUAD_KINDS)}, got {kind!r}"
        )
    sample_rate = check_sample_rate(sample_rate)
    check_frequency(cutoff_hz, "cutoff_hz", sample_rate)
    if isinstance(q, Tensor):
        if q.numel() and not bool((q.detach() > 0).all()):
            bad = float(q.detach()[~(q.detach() > 0)].flatten()[0])
            raise InputError(f"q must be > 0, got {bad!r}")
    elif not (isinstance(q, (int, float)) and q > 0):
        raise InputError(f"q must be > 0, got {q!r}")
    like = _like(cutoff_hz, q, gain_db)
    fc = as_tensor(cutoff_hz, like)
    qq = as_tensor(q, like)
    gdb = as_tensor(gain_db, like)
    w0 = 2.0 * math.pi * fc / sample_rate
    cw = torch.cos(w0)
    alpha = torch.sin(w0) / (2.0 * qq)
    one = torch.ones_like(cw)
    if canon == "lowpass":
        bb = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        aa = [1 + alpha, -2 * cw, 1 - alpha]
    elif canon == "highpass":
        bb = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        aa = [1 + alpha, -2 * cw, 1 - alpha]
    elif canon == "bandpass":
        bb = [alpha, 0 * alpha, -alpha]
        aa = [1 + alpha, -2 * cw, 1 - alpha]
    elif canon == "notch":
        bb = [one, -2 * cw, one]
        aa = [1 + alpha, -2 * cw, 1 - alpha]
    elif canon == "allpass":
        bb = [1 - alpha, -2 * cw, 1 + alpha]
        aa = [1 + alpha, -2 * cw, 1 - alpha]
    elif canon == "peaking":
        amp = torch.pow(10.0, gdb / 40.0)
        bb = [1 + alpha * amp, -2 * cw, 1 - alpha * amp]
        aa = [1 + alpha / amp, -2 * cw, 1 - alpha / amp]
    else:
        amp = torch.pow(10.0, gdb / 40.0)
        k = 2 * torch.sqrt(amp) * alpha
        ap, am = amp + 1, amp - 1
        if canon == "lowshelf":
            bb = [amp * (ap - am * cw + k), 2 * amp * (am - ap * cw), amp * (ap - am * cw - k)]
            aa = [ap + am * cw + k, -2 * (am + ap * cw), ap + am * cw - k]
        else:
            bb = [amp * (ap + am * cw + k), -2 * amp * (am + ap * cw), amp * (ap + am * cw - k)]
            aa = [ap - am * cw + k, 2 * (am - ap * cw), ap - am * cw - k]
    coeffs = torch.broadcast_tensors(*bb, *aa, gdb, qq)
    bt = torch.stack(coeffs[:3], dim=-1)
    at = torch.stack(coeffs[3:6], dim=-1)
    a0 = at[..., :1]
    return bt / a0, at / a0


def to_sos(b: Tensor, a: Tensor) -> Tensor:
    """Second-order sections ``(..., 6)`` from biquad (or lower-order) coefficients.

    ``b`` and ``a`` of length <= 3 are zero-padded to 3 and divided by ``a[..., 0]``. Batches of
    biquads ``(..., n_sections, 3)`` give the cascade ``(..., n_sections, 6)`` directly.

    Args:
        b: numerator ``(..., nb)``, ``nb <= 3``.
        a: denominator ``(..., na)``, ``na <= 3``, ``a[..., 0] != 0``.

    Returns:
        ``sos`` ``(..., 6)`` with the leading dimensions of ``b`` and ``a`` broadcast.

    Examples:
        >>> to_sos(torch.tensor([1.0, 1.0]), torch.tensor([2.0, -1.0]))
        tensor([ 0.5000,  0.5000,  0.0000,  1.0000, -0.5000,  0.0000])
    """
    check_tensor(b, "b", min_ndim=1)
    check_tensor(a, "a", min_ndim=1)
    if not (1 <= b.shape[-1] <= 3 and 1 <= a.shape[-1] <= 3):
        raise InputError(
            f"to_sos needs b and a with at most 3 coefficients, got {tuple(b.shape)} and "
            f"{tuple(a.shape)} (factor higher orders into sections first)"
        )
    b3 = F.pad(b, (0, 3 - b.shape[-1]))
    a3 = F.pad(a, (0, 3 - a.shape[-1]))
    b3, a3 = torch.broadcast_tensors(b3, a3)
    a0 = a3[..., :1]
    return torch.cat([b3 / a0, a3 / a0], dim=-1)


def _polymul(p: Tensor, q: Tensor) -> Tensor:
    """Product of polynomials in ``z^-1`` along the last dimension (batched)."""
    n = p.shape[-1] + q.shape[-1] - 1
    out: Tensor | None = None
    for k in range(q.shape[-1]):
        term = F.pad(p * q[..., k : k + 1], (k, n - p.shape[-1] - k))
        out = term if out is None else out + term
    assert out is not None
    return out


def sos_to_tf(sos: Tensor) -> tuple[Tensor, Tensor]:
    """Direct-form ``(b, a)`` ``(..., 2 S + 1)`` of a cascade ``(..., S, 6)`` (like scipy's sos2tf).

    Multiplying sections out is exact in float64; in float32 the direct form of a high-order
    cascade with poles near the unit circle is numerically fragile (filter with the sections).

    Examples:
        >>> sos = torch.tensor([[1.0, 1.0, 0.0, 1.0, -0.5, 0.0], [1.0, -1.0, 0.0, 1.0, 0.5, 0.0]])
        >>> sos_to_tf(sos)
        (tensor([ 1.,  0., -1.,  0.,  0.]), tensor([ 1.0000,  0.0000, -0.2500,  0.0000,  0.0000]))
    """
    check_tensor(sos, "sos", min_ndim=2)
    if sos.shape[-1] != 6:
        raise InputError(f"sos must have shape (..., n_sections, 6), got {tuple(sos.shape)}")
    a0 = sos[..., 3:4]
    b = sos[..., 0, :3] / a0[..., 0, :]
    a = sos[..., 0, 3:] / a0[..., 0, :]
    for s in range(1, sos.shape[-2]):
        b = _polymul(b, sos[..., s, :3] / a0[..., s, :])
        a = _polymul(a, sos[..., s, 3:] / a0[..., s, :])
    return b, a


def sos_pole_radius(sos: Tensor) -> Tensor:
    """Largest pole radius of each section ``(..., S, 6) -> (..., S)`` (< 1 means stable).

    Examples:
        >>> sos_pole_radius(torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0, 0.81]]))
        tensor([0.9000])
    """
    check_tensor(sos, "sos", min_ndim=1)
    a0 = sos[..., 3]
    a1 = sos[..., 4] / a0
    a2 = sos[..., 5] / a0
    disc = a1 * a1 - 4 * a2
    sq = torch.sqrt(disc.abs())
    real_r = torch.maximum((-a1 + sq).abs(), (-a1 - sq).abs()) / 2
    cplx_r = torch.sqrt(a2.abs())
    return torch.where(disc >= 0, real_r, cplx_r)


def sos_is_stable(sos: Tensor) -> Tensor:
    """Whether every pole of each section lies strictly inside the unit circle.

    Uses the stability triangle ``|a2| < 1, |a1| < 1 + a2`` (after dividing by ``a0``).

    Returns:
        bool tensor ``(..., S)``.

    Examples:
        >>> sos_is_stable(torch.tensor([[1.0, 0, 0, 1.0, -1.9, 0.95], [1.0, 0, 0, 1.0, -2.0, 1.0]]))
        tensor([ True, False])
    """
    check_tensor(sos, "sos", min_ndim=1)
    a1 = sos[..., 4] / sos[..., 3]
    a2 = sos[..., 5] / sos[..., 3]
    return (a2.abs() < 1) & (a1.abs() < 1 + a2)


def parametric_eq_sos(controls: Tensor, *, sample_rate: int) -> Tensor:
    """Second-order sections of a parametric EQ: low shelf, peaking bands, high shelf.

    Band 0 is a low shelf, the last band a high shelf and every band in between a peaking filter
    (DeepAFx-ST's EQ has 6 bands: low shelf, 4 peaking, high shelf).

    Args:
        controls: ``(..., bands, 3)`` with columns ``(cutoff_hz, q, gain_db)`` per band,
            ``bands >= 2``; cutoffs in ``(0, sample_rate/2)``, ``q > 0``.
        sample_rate: sample rate in Hz.

    Returns:
        ``sos`` ``(..., bands, 6)`` for :func:`diffdsp.functional.iir.sosfilt` or
        :func:`diffdsp.functional.freq.sosfreqz`.

    Shape:
        ``(..., bands, 3) -> (..., bands, 6)``.

    Examples:
        >>> c = torch.tensor([[100.0, 0.7, 3.0], [1000.0, 1.0, -6.0], [8000.0, 0.7, 2.0]])
        >>> parametric_eq_sos(c, sample_rate=44100).shape
        torch.Size([3, 6])

    References:
        Steinmetz et al., JAES 2022, sec. 3.2 (parametric EQ); RBJ Audio EQ Cookbook.
    """
    check_tensor(controls, "controls", min_ndim=2)
    if controls.shape[-1] != 3 or controls.shape[-2] < 2:
        raise InputError(
            "controls must have shape (..., bands >= 2, 3) with columns (cutoff_hz, q, gain_db), "
            f"got {tuple(controls.shape)}"
        )
    fc, q, g = controls.unbind(-1)
    lo = to_sos(*biquad("lowshelf", cutoff_hz=fc[..., :1], q=q[..., :1], gain_db=g[..., :1],
                        sample_rate=sample_rate))
    parts = [lo]
    if controls.shape[-2] > 2:
        parts.append(
            to_sos(*biquad("peaking", cutoff_hz=fc[..., 1:-1], q=q[..., 1:-1],
                           gain_db=g[..., 1:-1], sample_rate=sample_rate))
        )
    parts.append(
        to_sos(*biquad("highshelf", cutoff_hz=fc[..., -1:], q=q[..., -1:], gain_db=g[..., -1:],
                       sample_rate=sample_rate))
    )
    return torch.cat(parts, dim=-2)


def stable_denominator(raw: Tensor, *, margin: float = 1e-3) -> Tensor:
    """Map unconstrained ``(..., 2)`` to a stable biquad denominator ``[1, a1, a2]`` ``(..., 3)``.

    Nercessian's map ``a1 = 2 tanh(r1)``, ``a2 = ((2 - |a1|) tanh(r2) + |a1|) / 2`` covers the
    stability triangle ``|a1| - 1 < a2 < 1``; the poles are then scaled by ``rho = 1 - margin``
    (``a1 <- rho a1``, ``a2 <- rho^2 a2``) so that saturated ``tanh`` values (exactly 1 in float32
    beyond ``|r| ~ 9``) still give poles of radius ``<= rho < 1``: every raw value is stable.

    Args:
        raw: unconstrained ``(..., 2)``.
        margin: ``1 - `` the largest reachable pole radius, in [0, 1) (0 is Nercessian's map).

    Returns:
        ``(..., 3)`` denominators with ``a0 = 1``.

    Examples:
        >>> a = stable_denominator(torch.tensor([[10.0, -10.0], [0.0, 0.0], [-30.0, 30.0]]))
        >>> bool(sos_is_stable(torch.cat([torch.ones(3, 3), a], -1)).all())
        True

    References:
        Nercessian et al., ICASSP 2021, eq. (4)-(5).
    """
    check_tensor(raw, "raw", min_ndim=1)
    if raw.shape[-1] != 2:
        raise InputError(f"raw must have shape (..., 2), got {tuple(raw.shape)}")
    if not 0.0 <= margin < 1.0:
        raise InputError(f"margin must be in [0, 1), got {margin!r}")
    rho = 1.0 - margin
    a1 = 2.0 * torch.tanh(raw[..., 0])
    a1_abs = a1.abs()
    a2 = ((2.0 - a1_abs) * torch.tanh(raw[..., 1]) + a1_abs) / 2.0
    return torch.stack([torch.ones_like(a1), rho * a1, (rho * rho) * a2], dim=-1)


def nercessian_biquad(raw: Tensor) -> tuple[Tensor, Tensor]:
    """Stable biquad ``(b, a)`` from 5 unconstrained values ``(..., 5)``.

    The first three are the numerator (unconstrained), the last two go through
    :func:`stable_denominator`.

    Examples:
        >>> b, a = nercessian_biquad(torch.zeros(5))
        >>> b.tolist(), a.tolist()
        ([0.0, 0.0, 0.0], [1.0, 0.0, 0.0])

    References:
        Nercessian et al., ICASSP 2021, sec. 2.2.
    """
    check_tensor(raw, "raw", min_ndim=1)
    if raw.shape[-1] != 5:
        raise InputError(f"raw must have shape (..., 5), got {tuple(raw.shape)}")
    return raw[..., :3], stable_denominator(raw[..., 3:])


def biquad_from_poles_zeros(
    pole_radius: Tensor | float,
    pole_angle: Tensor | float,
    zero_radius: Tensor | float,
    zero_angle: Tensor | float,
    gain: Tensor | float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Biquad with a conjugate pole pair and a conjugate zero pair.

    ``a = [1, -2 r_p cos(theta_p), r_p^2]``, ``b = gain * [1, -2 r_z cos(theta_z), r_z^2]``;
    stable iff ``pole_radius < 1``. Angles in radians per sample.

    Examples:
        >>> b, a = biquad_from_poles_zeros(0.5, 0.0, 1.0, math.pi)
        >>> b.tolist(), a.tolist()
        ([1.0, 2.0, 1.0], [1.0, -1.0, 0.25])
    """
    like = _like(pole_radius, pole_angle, zero_radius, zero_angle, gain)
    rp, tp = as_tensor(pole_radius, like), as_tensor(pole_angle, like)
    rz, tz = as_tensor(zero_radius, like), as_tensor(zero_angle, like)
    g = as_tensor(gain, like)
    a = torch.stack(torch.broadcast_tensors(torch.ones_like(rp), -2 * rp * torch.cos(tp), rp * rp),
                    dim=-1)
    b = torch.stack(torch.broadcast_tensors(g, -2 * g * rz * torch.cos(tz), g * rz * rz), dim=-1)
    b, a = torch.broadcast_tensors(b, a)
    return b, a


def pole_zero_biquad(raw: Tensor, *, max_radius: float = 0.9999) -> tuple[Tensor, Tensor]:
    """Stable biquad from unconstrained ``(..., 5)``: pole radius/angle, zero radius/angle, gain.

    Pole radius ``max_radius * sigmoid(r0)`` (always stable), pole angle ``pi * sigmoid(r1)``,
    zero radius ``2 sigmoid(r2)`` (zeros may lie outside the circle), zero angle
    ``pi * sigmoid(r3)``, linear gain ``r4``.

    Examples:
        >>> b, a = pole_zero_biquad(torch.zeros(5))
        >>> [round(v, 4) for v in a.tolist()]
        [1.0, -0.0, 0.25]
    """
    check_tensor(raw, "raw", min_ndim=1)
    if raw.shape[-1] != 5:
        raise InputError(f"raw must have shape (..., 5), got {tuple(raw.shape)}")
    rp = pole_radius_map(raw[..., 0], max_radius)
    tp = math.pi * torch.sigmoid(raw[..., 1])
    rz = 2.0 * torch.sigmoid(raw[..., 2])
    tz = math.pi * torch.sigmoid(raw[..., 3])
    return biquad_from_poles_zeros(rp, tp, rz, tz, raw[..., 4])
