"""All-pass filter design: first order, second order from (pole radius, frequency), warped second
order (Bargum et al. 2023, eq. 5), Thiran fractional delay, cascades as SOS, and closed-form phase
and group delay.

Every design function is differentiable with respect to its design parameters, broadcasts them
against each other and returns second-order sections in scipy's layout ``(..., 6)`` =
``[b0, b1, b2, 1, a1, a2]`` (a first-order section has ``b2 = a2 = 0``), so that a cascade is
``(..., n_sections, 6)`` and runs through ``diffdsp.functional.iir.sosfilt`` or
``scipy.signal.sosfilt`` unchanged. Every section is stable by construction for parameters inside
their documented ranges (pole radius in [0, 1), warping factor in (-1, 1)), and its magnitude
response is exactly 1 (the numerator is the reversed denominator).

References:
    A. R. Bargum, S. Serafin, C. Erkut, J. D. Parker, "Differentiable all-pass filters for phase
    response estimation and automatic signal alignment", DAFx 2023, eqs. (2), (4), (5).
    U. Zoelzer (ed.), DAFX - Digital Audio Effects, Wiley 2002, ch. 2 (first/second-order
    all-pass). J.-P. Thiran, "Recursive digital filters with maximally flat group delay", 1971.
    M. Karjalainen et al., "Warped filters and their audio applications", WASPAA 1997.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from diffdsp._validation import InputError, check_frequency, check_in_range, check_sample_rate

__all__ = [
    "allpass1_coefficient",
    "allpass1_sos",
    "allpass2_sos",
    "allpass_cascade_sos",
    "allpass_group_delay",
    "allpass_phase",
    "thiran1_sos",
    "warp_coefficient",
    "warped_allpass1_sos",
    "warped_allpass2_sos",
]


def _float(*xs: float | Tensor) -> list[Tensor]:
    """Convert numbers and tensors to tensors of one common floating dtype and device."""
    ref = next((x for x in xs if isinstance(x, Tensor)), None)
    if ref is not None and ref.is_floating_point():
        dtype, device = ref.dtype, ref.device
    else:
        dtype = torch.get_default_dtype()
        device = ref.device if ref is not None else torch.device("cpu")
    out = []
    for x in xs:
        t = torch.as_tensor(x, device=device)
        out.append(t.to(dtype) if t.dtype != dtype else t)
    return out


def allpass1_coefficient(cutoff_hz: float | Tensor, *, sample_rate: int) -> Tensor:
    """Coefficient ``k`` of the first-order all-pass ``(k + z^-1) / (1 + k z^-1)``.

    ``k = (tan(pi f_c / f_s) - 1) / (tan(pi f_c / f_s) + 1)``; the phase is -90 degrees at
    ``cutoff_hz``, 0 at DC and -180 degrees at Nyquist.

    Args:
        cutoff_hz: -90 degree frequency in Hz, in (0, sample_rate / 2), any shape.
        sample_rate: sample rate in Hz.

    Returns:
        ``k`` in (-1, 1), shape of ``cutoff_hz``.

    Examples:
        >>> round(float(allpass1_coefficient(12000.0, sample_rate=48000)), 6)
        0.0

    References:
        Zoelzer (ed.), DAFX, 2002, sec. 2.2 (first-order all-pass).
    """
    sample_rate = check_sample_rate(sample_rate)
    check_frequency(cutoff_hz, "cutoff_hz", sample_rate)
    (fc,) = _float(cutoff_hz)
    t = torch.tan(math.pi * fc / sample_rate)
    return (t - 1.0) / (t + 1.0)


def _first_order_sos(k: Tensor) -> Tensor:
    zero = torch.zeros_like(k)
    one = torch.ones_like(k)
    return torch.stack([k, one, zero, one, k, zero], dim=-1)


def allpass1_sos(cutoff_hz: float | Tensor, *, sample_rate: int) -> Tensor:
    """First-order all-pass as one second-order section ``[k, 1, 0, 1, k, 0]``.

    Args:
        cutoff_hz: -90 degree frequency in Hz, in (0, sample_rate / 2), shape ``(...)``.
        sample_rate: sample rate in Hz.

    Returns:
        SOS row ``(..., 6)``.

    Shape:
        ``cutoff_hz (...)`` -> ``(..., 6)``.

    Examples:
        >>> allpass1_sos(12000.0, sample_rate=48000).abs().round(decimals=4)
        tensor([0., 1., 0., 1., 0., 0.])

    References:
        Zoelzer (ed.), DAFX, 2002, sec. 2.2.
    """
    return _first_order_sos(allpass1_coefficient(cutoff_hz, sample_rate=sample_rate))


def warp_coefficient(k: Tensor, warp: Tensor) -> Tensor:
    """Coefficient of a first-order all-pass ``k`` after warping, ``(k + a) / (1 + k a)``.

    Substituting ``z^-1 -> D(z) = (a + z^-1) / (1 + a z^-1)`` in ``(k + z^-1) / (1 + k z^-1)``
    gives another first-order all-pass with this coefficient (a Moebius map of the unit disc,
    so ``|k|, |a| < 1`` keeps it in (-1, 1)).

    Examples:
        >>> warp_coefficient(torch.tensor(0.5), torch.tensor(0.0))
        tensor(0.5000)
    """
    return (k + warp) / (1.0 + k * warp)


def warped_allpass1_sos(
    cutoff_hz: float | Tensor, warp: float | Tensor, *, sample_rate: int
) -> Tensor:
    """First-order all-pass designed on a warped frequency axis (warping factor ``warp``).

    Args:
        cutoff_hz: -90 degree frequency in Hz of the unwarped prototype, in (0, sample_rate / 2).
        warp: warping factor ``a`` in (-1, 1) (0: no warping; < 0 stretches low frequencies).
        sample_rate: sample rate in Hz.

    Returns:
        SOS row ``(..., 6)`` (parameters broadcast).

    Examples:
        >>> sos = warped_allpass1_sos(1000.0, 0.0, sample_rate=48000)
        >>> bool(torch.allclose(sos, allpass1_sos(1000.0, sample_rate=48000)))
        True

    References:
        Bargum et al., DAFx 2023, sec. 3; Karjalainen et al., WASPAA 1997.
    """
    check_in_range(warp, "warp", -1.0, 1.0, low_inclusive=False, high_inclusive=False)
    k = allpass1_coefficient(cutoff_hz, sample_rate=sample_rate)
    k, a = _float(k, warp)
    k, a = torch.broadcast_tensors(k, a)
    return _first_order_sos(warp_coefficient(k, a))


def allpass2_sos(
    radius: float | Tensor, cutoff_hz: float | Tensor, *, sample_rate: int
) -> Tensor:
    """Second-order all-pass from its pole radius and pole frequency (Bargum et al. eqs. 2, 4).

    ``A(z) = (c + d z^-1 + z^-2) / (1 + d z^-1 + c z^-2)`` with ``c = R^2`` and
    ``d = -2 R cos(2 pi f_c / f_s)``: poles at ``R exp(+-j 2 pi f_c / f_s)``, stable for
    ``R < 1``; the phase passes -180 degrees at ``f_c`` and ``R`` sets how steeply.

    Args:
        radius: pole radius ``R`` in [0, 1), shape ``(...)``.
        cutoff_hz: pole frequency ``f_c`` in Hz, in (0, sample_rate / 2), shape ``(...)``.
        sample_rate: sample rate in Hz.

    Returns:
        SOS row ``(..., 6)`` = ``[c, d, 1, 1, d, c]``.

    Shape:
        ``radius (...)``, ``cutoff_hz (...)`` (broadcast) -> ``(..., 6)``.

    Examples:
        >>> allpass2_sos(0.5, 8000.0, sample_rate=48000).round(decimals=4)
        tensor([ 0.2500, -0.5000,  1.0000,  1.0000, -0.5000,  0.2500])

    References:
        Bargum et al., DAFx 2023, eqs. (2)-(4); J. O. Smith, Physical Audio Signal Processing.
    """
    sample_rate = check_sample_rate(sample_rate)
    check_in_range(radius, "radius", 0.0, 1.0, high_inclusive=False)
    check_frequency(cutoff_hz, "cutoff_hz", sample_rate)
    r, fc = _float(radius, cutoff_hz)
    r, fc = torch.broadcast_tensors(r, fc)
    c = r * r
    d = -2.0 * r * torch.cos(2.0 * math.pi * fc / sample_rate)
    one = torch.ones_like(c)
    return torch.stack([c, d, one, one, d, c], dim=-1)


def warped_allpass2_sos(
    radius: float | Tensor,
    cutoff_hz: float | Tensor,
    warp: float | Tensor,
    *,
    sample_rate: int,
) -> Tensor:
    """Warped second-order all-pass of Bargum et al. (eq. 5) as one normalised SOS row.

    The unit delays of :func:`allpass2_sos` are replaced by first-order all-passes
    ``D(z) = (a + z^-1) / (1 + a z^-1)`` with one shared, learnable warping factor ``a``. With
    ``c = R^2`` and ``d = -2 R cos(2 pi f_c / f_s)`` the result is the second-order all-pass

    ``b = [c + a d + a^2, 2a + d(1 + a^2) + 2ac, 1 + a d + a^2 c] / (1 + a d + a^2 c)``

    and ``a_coef = reversed(b)``: its leading coefficient ``(c + a^2 + a d) / (1 + a^2 c + a d)``
    is eq. (5)'s. ``a < 0`` moves resolution towards low frequencies (the usual warping factor
    ``lambda`` of Karjalainen et al. is ``-a``). Poles stay inside the unit
    circle for ``R < 1`` and ``|a| < 1`` (``D`` maps the unit disc onto itself).

    Args:
        radius: pole radius ``R`` of the unwarped prototype, in [0, 1).
        cutoff_hz: pole frequency of the unwarped prototype in Hz, in (0, sample_rate / 2).
        warp: warping factor ``a`` in (-1, 1).
        sample_rate: sample rate in Hz.

    Returns:
        SOS row ``(..., 6)`` (parameters broadcast).

    Examples:
        >>> w = warped_allpass2_sos(0.9, 500.0, 0.0, sample_rate=48000)
        >>> bool(torch.allclose(w, allpass2_sos(0.9, 500.0, sample_rate=48000)))
        True

    References:
        Bargum et al., DAFx 2023, eq. (5); Karjalainen et al., WASPAA 1997.
    """
    sample_rate = check_sample_rate(sample_rate)
    check_in_range(warp, "warp", -1.0, 1.0, low_inclusive=False, high_inclusive=False)
    proto = allpass2_sos(radius, cutoff_hz, sample_rate=sample_rate)
    c, d = proto[..., 0], proto[..., 1]
    c, d, a = _float(c, d, warp)
    c, d, a = torch.broadcast_tensors(c, d, a)
    n0 = c + a * d + a * a
    n1 = 2.0 * a + d * (1.0 + a * a) + 2.0 * a * c
    n2 = 1.0 + a * d + a * a * c
    c2 = n0 / n2
    d2 = n1 / n2
    one = torch.ones_like(c2)
    return torch.stack([c2, d2, one, one, d2, c2], dim=-1)


def thiran1_sos(delay_samples: float | Tensor) -> Tensor:
    """First-order Thiran all-pass: a fractional delay of ``delay_samples`` at low frequencies.

    ``k = (1 - D) / (1 + D)``; the group delay at DC is exactly ``D`` and stays maximally flat
    around it (most accurate for ``D`` in [0.5, 1.5]).

    Args:
        delay_samples: delay ``D`` in samples, > 0.

    Returns:
        SOS row ``(..., 6)``.

    Examples:
        >>> thiran1_sos(1.0)
        tensor([0., 1., 0., 1., 0., 0.])

    References:
        J.-P. Thiran, IEEE Trans. Circuit Theory 18(6), 1971; Laakso et al., "Splitting the unit
        delay", IEEE SP Magazine 1996.
    """
    check_in_range(delay_samples, "delay_samples", 0.0, math.inf, low_inclusive=False)
    (dl,) = _float(delay_samples)
    return _first_order_sos((1.0 - dl) / (1.0 + dl))


def allpass_cascade_sos(
    cutoff_hz: Tensor,
    radius: Tensor,
    *,
    sample_rate: int,
    warp: Tensor | None = None,
    first_order_cutoff_hz: Tensor | None = None,
    first_order_warp: Tensor | None = None,
) -> Tensor:
    """A cascade of (optionally warped) second-order all-passes followed by first-order ones.

    The default 7th-order structure of Bargum et al. is three second-order sections and one
    first-order section: ``cutoff_hz``/``radius``/``warp`` of shape ``(..., 3)`` and
    ``first_order_cutoff_hz``/``first_order_warp`` of shape ``(..., 1)``.

    Args:
        cutoff_hz: pole frequencies of the second-order sections in Hz, ``(..., n2)``.
        radius: pole radii in [0, 1), ``(..., n2)``.
        sample_rate: sample rate in Hz.
        warp: warping factors in (-1, 1), ``(..., n2)``; ``None`` for unwarped sections.
        first_order_cutoff_hz: -90 degree frequencies of the first-order sections, ``(..., n1)``;
            ``None`` for none.
        first_order_warp: their warping factors, ``(..., n1)``; ``None`` for unwarped.

    Returns:
        SOS ``(..., n2 + n1, 6)``: the second-order sections first.

    Shape:
        ``(..., n2)`` and ``(..., n1)`` -> ``(..., n2 + n1, 6)``.

    Examples:
        >>> sos = allpass_cascade_sos(torch.tensor([100.0, 1e3, 1e4]), torch.tensor([0.9] * 3),
        ...     sample_rate=48000, first_order_cutoff_hz=torch.tensor([5e3]))
        >>> tuple(sos.shape)
        (4, 6)

    References:
        Bargum et al., DAFx 2023, eq. (1) and sec. 5 (order 7 = 3 x 2nd + 1 x 1st).
    """
    if cutoff_hz.shape[-1:] != radius.shape[-1:]:
        raise InputError(
            f"cutoff_hz and radius must have the same number of sections, got shapes "
            f"{tuple(cutoff_hz.shape)} and {tuple(radius.shape)}"
        )
    if warp is None:
        second = allpass2_sos(radius, cutoff_hz, sample_rate=sample_rate)
    else:
        second = warped_allpass2_sos(radius, cutoff_hz, warp, sample_rate=sample_rate)
    if first_order_cutoff_hz is None:
        if first_order_warp is not None:
            raise InputError("first_order_warp given without first_order_cutoff_hz")
        return second
    if first_order_warp is None:
        first = allpass1_sos(first_order_cutoff_hz, sample_rate=sample_rate)
    else:
        first = warped_allpass1_sos(
            first_order_cutoff_hz, first_order_warp, sample_rate=sample_rate
        )
    second, first = _float(second, first)
    lead = torch.broadcast_shapes(second.shape[:-2], first.shape[:-2])
    second = second.expand(*lead, *second.shape[-2:])
    first = first.expand(*lead, *first.shape[-2:])
    return torch.cat([second, first], dim=-2)


def _section_terms(sos: Tensor, freqs_hz: Tensor, sample_rate: int) -> tuple[Tensor, ...]:
    if sos.shape[-1] != 6:
        raise InputError(f"sos must have shape (..., n_sections, 6), got {tuple(sos.shape)}")
    sample_rate = check_sample_rate(sample_rate)
    (freqs,) = _float(freqs_hz)
    freqs = freqs.to(dtype=sos.dtype, device=sos.device)
    w = 2.0 * math.pi * freqs / sample_rate  # (K,)
    a1 = sos[..., 4].unsqueeze(-1)  # (..., n, 1)
    a2 = sos[..., 5].unsqueeze(-1)
    # order of each section: index of the last non-zero numerator coefficient (all-pass: b = z^-m
    # times the reversed denominator)
    order = torch.where(
        sos[..., 2] != 0, 2.0, torch.where(sos[..., 1] != 0, 1.0, 0.0)
    ).to(sos.dtype).unsqueeze(-1)
    return w, a1, a2, order


def allpass_phase(sos: Tensor, freqs_hz: Tensor, *, sample_rate: int) -> Tensor:
    """Unwrapped phase (radians) of an all-pass SOS cascade at arbitrary frequencies.

    For an all-pass section of order ``m`` with denominator ``A``, ``phase = -m w - 2 arg A(e^jw)``;
    ``arg A`` needs no unwrapping because a stable denominator's factors all have a positive real
    part on the unit circle. Summed over sections this is the continuous phase, differentiable in
    the coefficients. Only valid for all-pass sections (numerator = reversed denominator), such as
    those built in this module.

    Args:
        sos: all-pass sections ``(..., n_sections, 6)``.
        freqs_hz: frequencies in Hz, ``(K,)``.
        sample_rate: sample rate in Hz.

    Returns:
        phase in radians, ``(..., K)`` (0 at DC for ``k < 1``; ``-pi * order`` at Nyquist).

    Examples:
        >>> sos = allpass1_sos(1000.0, sample_rate=48000)[None]
        >>> round(float(allpass_phase(sos, torch.tensor([1000.0]), sample_rate=48000)), 4)
        -1.5708

    References:
        J. O. Smith, Introduction to Digital Filters (all-pass phase and group delay).
    """
    w, a1, a2, order = _section_terms(sos, freqs_hz, sample_rate)
    re = 1.0 + a1 * torch.cos(w) + a2 * torch.cos(2.0 * w)
    im = -(a1 * torch.sin(w) + a2 * torch.sin(2.0 * w))
    phase = -order * w - 2.0 * torch.atan2(im, re)
    return phase.sum(dim=-2)


def allpass_group_delay(sos: Tensor, freqs_hz: Tensor, *, sample_rate: int) -> Tensor:
    """Group delay in samples of an all-pass SOS cascade at arbitrary frequencies (closed form).

    ``tau = sum_sections m + 2 d/dw arg A(e^jw)``; positive everywhere for a stable all-pass.

    Args:
        sos: all-pass sections ``(..., n_sections, 6)``.
        freqs_hz: frequencies in Hz, ``(K,)``.
        sample_rate: sample rate in Hz.

    Returns:
        group delay in samples, ``(..., K)``.

    Examples:
        >>> sos = thiran1_sos(0.7)[None]
        >>> round(float(allpass_group_delay(sos, torch.tensor([0.0]), sample_rate=48000)), 4)
        0.7

    References:
        J. O. Smith, Introduction to Digital Filters (group delay of all-pass filters).
    """
    w, a1, a2, order = _section_terms(sos, freqs_hz, sample_rate)
    c1, s1 = torch.cos(w), torch.sin(w)
    c2, s2 = torch.cos(2.0 * w), torch.sin(2.0 * w)
    re = 1.0 + a1 * c1 + a2 * c2
    im = -(a1 * s1 + a2 * s2)
    dre = -(a1 * s1 + 2.0 * a2 * s2)
    dim_ = -(a1 * c1 + 2.0 * a2 * c2)
    darg = (re * dim_ - im * dre) / (re * re + im * im)
    return (order + 2.0 * darg).sum(dim=-2)
