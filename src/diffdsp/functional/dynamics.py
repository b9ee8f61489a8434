"""Dynamic range processing: gain computers, exact attack/release ballistics, compressors.

The feed-forward design of Giannoulis, Massberg & Reiss (2012) as used by DeepAFx-ST: the level
of the (side-chain) signal in dB goes through a static *gain computer* with a soft knee, the
resulting gain reduction is smoothed by *ballistics* with separate attack and release time
constants (DeepAFx-ST eq. 3, computed exactly by a switching one-pole recursion), and the smoothed
gain plus makeup is applied to the signal.

The ballistics recursion ``y[n] = a[n] y[n-1] + (1 - a[n]) x[n]`` with ``a[n] = alpha_A`` when
``x[n] > y[n-1]`` and ``alpha_R`` otherwise is nonlinear only through the switch. Given the recorded
switch pattern it is a time-varying one-pole, so its gradient is the same one-pole run backwards in
time (the adjoint). Both run in a compiled numba kernel on CPU (parallel over the batch) and in a
log-depth parallel scan in torch on other devices; neither unrolls an autograd graph over samples.
On CPU, :func:`dynamics` with exact ballistics and no look-ahead fuses the gain computer and the
ballistics into one compiled recursion (and its adjoint into one reverse pass), with the level's
logarithm and the gain's exponential as vectorised torch ops; the result equals the composition
of :func:`gain_computer` and :func:`ballistics` to rounding.

References:
    Giannoulis, Massberg & Reiss, "Digital dynamic range compressor design - a tutorial and
    analysis", JAES 60(6), 2012 (gain computer eqs. 4 and 7; smooth branching peak detector).
    Steinmetz, Bryan & Reiss, "Style transfer of audio effects with differentiable signal
    processing", JAES 2022 (DeepAFx-ST, eqs. 3 and 4).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from diffdsp._numerics import amp_to_db, db_to_amp, next_pow2
from diffdsp._validation import (
    InputError,
    as_tensor,
    check_choice,
    check_in_range,
    check_positive,
    check_sample_rate,
    check_tensor,
)

__all__ = [
    "Mode",
    "ballistics",
    "compressor",
    "dynamics",
    "expander",
    "gain_computer",
    "limiter",
    "noise_gate",
    "one_pole",
    "one_pole_fir",
    "time_constant_to_coef",
]

Mode = Literal["compressor", "expander", "limiter", "gate"]
_MODES = ("compressor", "expander", "limiter", "gate")

# ---------------------------------------------------------------------------------------------
# compiled kernels (numba, CPU) and their torch counterparts
# ---------------------------------------------------------------------------------------------

_NUMBA: dict[str, Any] = {}


def _kernels() -> dict[str, Any]:
    """Compile (once, lazily, cached on disk) the numba kernels; empty dict without numba."""
    if _NUMBA:
        return _NUMBA
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency here
        _NUMBA["missing"] = True
        return _NUMBA

    def switching_one_pole(x, alpha_up, alpha_down, zi, y, up):  # type: ignore[no-untyped-def]
        batch, n = x.shape
        for b in numba.prange(batch):
            au = alpha_up[b]
            ad = alpha_down[b]
            prev = zi[b]
            for t in range(n):
                xt = x[b, t]
                if xt > prev:
                    prev = au * prev + (1.0 - au) * xt
                    up[b, t] = True
                else:
                    prev = ad * prev + (1.0 - ad) * xt
                    up[b, t] = False
                y[b, t] = prev

    def linear_one_pole(u, a, zi, y):  # type: ignore[no-untyped-def]
        batch, n = u.shape
        stride = 1 if a.shape[1] > 1 else 0
        for b in numba.prange(batch):
            prev = zi[b]
            for t in range(n):
                prev = a[b, t * stride] * prev + u[b, t]
                y[b, t] = prev

    def gain_smooth_forward(level, thr, slope, knee, rng, au, ad, makeup, sign,  # type: ignore[no-untyped-def]
                            has_range, smooth, gain_exponent):
        # log10|s| -> level (dB, floored at -140, in place) -> gain computer (soft knee, range)
        # -> switching ballistics; writes the smoothed reduction and the exponent of the linear
        # gain (exp'd by the caller). Branch-free selects: an erratic attack/release switch
        # costs no mispredictions.
        batch, n = level.shape
        k = math.log(10.0) / 20.0
        for b in numba.prange(batch):
            th = thr[b]
            sl = slope[b]
            w = knee[b]
            half = 0.5 * w
            inv2w = 0.5 / max(w, 1e-12)
            rg = rng[b] if has_range else np.inf
            a_up = au[b]
            a_dn = ad[b]
            mk = makeup[b]
            prev = 0.0
            for t in range(n):
                level[b, t] = max(20.0 * level[b, t], -140.0)
                o = sign * (level[b, t] - th)
                c = min(max(o + half, 0.0), w)
                r = min(sl * (c * c * inv2w + max(o - half, 0.0)), rg)
                a = a_up if r > prev else a_dn
                # the state is carried as stored, so the backward pass replays the same switches
                smooth[b, t] = a * prev + (1.0 - a) * r
                prev = smooth[b, t]
                gain_exponent[b, t] = k * (mk - prev)

    def gain_smooth_backward(grad_x, grad_s, x, s, level, smooth, thr, slope, knee,  # type: ignore[no-untyped-def]
                             rng, au, ad, sign, has_range, same_side, grads):
        # the adjoint of the level, gain_smooth_forward and the gain application, backwards in
        # time. In: grad_x holds the output gradient, grad_s the linear gain; out: grad_x = d/dx
        # (through the applied gain, plus through the level when the side chain is x itself),
        # grad_s = d/d side chain, grads[b] = d/d(thr, slope, knee, range, makeup, a_up, a_down)
        # summed over time
        batch, n = x.shape
        k = math.log(10.0) / 20.0
        db = 20.0 / math.log(10.0)
        for b in numba.prange(batch):
            th = thr[b]
            sl = slope[b]
            w = knee[b]
            half = 0.5 * w
            ws = max(w, 1e-12)
            inv_ws = 1.0 / ws
            inv2w = 0.5 * inv_ws
            rg = rng[b] if has_range else np.inf
            a_up = au[b]
            a_dn = ad[b]
            g_thr = 0.0
            g_sl = 0.0
            g_w = 0.0
            g_rg = 0.0
            g_mk = 0.0
            g_au = 0.0
            g_ad = 0.0
            carry = 0.0
            for t in range(n - 1, -1, -1):
                prev = smooth[b, t - 1] if t > 0 else 0.0
                o = sign * (level[b, t] - th)
                c = min(max(o + half, 0.0), w)
                hinge = c * c * inv2w + max(o - half, 0.0)
                r_raw = sl * hinge
                r = min(r_raw, rg)
                go = grad_x[b, t]
                g = grad_s[b, t]
                gdb = go * x[b, t] * g * k
                g_mk += gdb
                lam = carry - gdb
                up = r > prev
                a = a_up if up else a_dn
                ga = lam * (prev - r)
                g_au += ga if up else 0.0
                g_ad += 0.0 if up else ga
                carry = a * lam
                g_r = lam * (1.0 - a)
                clipped = r_raw > rg
                g_rg += g_r if clipped else 0.0
                g_hr = 0.0 if clipped else g_r
                g_sl += g_hr * hinge
                g_h = g_hr * sl
                in_knee = (o + half > 0.0) and (o + half < w)
                dh_do = c * inv_ws if in_knee else (1.0 if o + half >= w else 0.0)
                g_w += g_h * (c * inv2w - c * c * inv2w * inv_ws) if in_knee else 0.0
                g_lv = sign * g_h * dh_do
                g_thr -= g_lv
                grad_s[b, t] = g_lv
                grad_x[b, t] = go * g
            # level -> side chain: d(20 log10 |s|)/ds = 20 / (ln 10 s), 0 below the floor
            for t in range(n):
                st = s[b, t]
                gs = grad_s[b, t] * db / st if abs(st) >= 1e-7 else 0.0
                if same_side:
                    grad_x[b, t] += gs
                else:
                    grad_s[b, t] = gs
            grads[b, 0] = g_thr
            grads[b, 1] = g_sl
            grads[b, 2] = g_w
            grads[b, 3] = g_rg
            grads[b, 4] = g_mk
            grads[b, 5] = g_au
            grads[b, 6] = g_ad

    for name, fn in (("fused_fwd", gain_smooth_forward), ("fused_bwd", gain_smooth_backward)):
        _NUMBA[name] = numba.njit(cache=True)(fn)
        _NUMBA[name + "_par"] = numba.njit(cache=True, parallel=True)(fn)
    _NUMBA["switching"] = numba.njit(cache=True)(switching_one_pole)
    _NUMBA["linear"] = numba.njit(cache=True)(linear_one_pole)
    _NUMBA["switching_par"] = numba.njit(cache=True, parallel=True)(switching_one_pole)
    _NUMBA["linear_par"] = numba.njit(cache=True, parallel=True)(linear_one_pole)
    return _NUMBA


def _kernel(name: str, x: Tensor) -> Any:
    parallel = x.shape[0] > 1 and x.numel() >= 1 << 16
    return _kernels()[name + "_par" if parallel else name]


def _use_numba(x: Tensor) -> bool:
    return x.device.type == "cpu" and "missing" not in _kernels()


def _np(x: Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


def _linear_one_pole_torch(u: Tensor, a: Tensor, zi: Tensor) -> Tensor:
    """``y[n] = a[n] y[n-1] + u[n]`` by a Hillis-Steele scan: log2(T) vectorised steps."""
    n = u.shape[-1]
    acc_a = a.expand_as(u).clone()
    acc_u = u.clone()
    acc_u[:, 0] = acc_u[:, 0] + acc_a[:, 0] * zi
    d = 1
    while d < n:
        new_u = acc_u.clone()
        new_u[:, d:] = acc_u[:, d:] + acc_a[:, d:] * acc_u[:, :-d]
        new_a = acc_a.clone()
        new_a[:, d:] = acc_a[:, d:] * acc_a[:, :-d]
        acc_u, acc_a = new_u, new_a
        d *= 2
    return acc_u


def _linear_one_pole_raw(u: Tensor, a: Tensor, zi: Tensor) -> Tensor:
    """Forward of the time-varying one-pole on ``(B, T)``, ``a`` ``(B, T)`` or ``(B, 1)``."""
    if _use_numba(u):
        y = np.empty(u.shape, dtype=_np(u).dtype)
        _kernel("linear", u)(_np(u), _np(a), _np(zi), y)
        return torch.from_numpy(y)
    return _linear_one_pole_torch(u, a, zi)


def _switching_raw(x: Tensor, au: Tensor, ad: Tensor, zi: Tensor) -> tuple[Tensor, Tensor]:
    """Forward of the switching recursion on ``(B, T)``: returns ``(y, up)``.

    On non-CPU devices the switch pattern is computed by the CPU kernel on a detached copy (a
    documented device round trip: a data-dependent switch cannot be parallelised), then the
    output is recomputed on the device by the linear scan.
    """
    xc = x.detach().cpu()
    y = np.empty(xc.shape, dtype=_np(xc).dtype)
    up = np.empty(xc.shape, dtype=np.bool_)
    if "missing" in _kernels():  # pragma: no cover
        raise ImportError("the exact ballistics need numba (pip install numba)")
    _kernel("switching", xc)(_np(xc), _np(au.cpu()), _np(ad.cpu()), _np(zi.cpu()), y, up)
    up_t = torch.from_numpy(up)
    if x.device.type == "cpu":
        return torch.from_numpy(y), up_t
    up_t = up_t.to(x.device)
    a = torch.where(up_t, au[:, None], ad[:, None])
    return _linear_one_pole_torch((1 - a) * x, a, zi), up_t


def _shift_left(a: Tensor) -> Tensor:
    """``a[n+1]`` with a zero at the end (the adjoint's coefficient sequence)."""
    if a.shape[-1] == 1:
        return a
    return torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], dim=-1)


def _adjoint(grad_y: Tensor, a: Tensor) -> Tensor:
    """Backward of ``y[n] = a[n] y[n-1] + u[n]``: ``lam[n] = grad_y[n] + a[n+1] lam[n+1]``.

    For a constant ``a`` of shape ``(B, 1)`` the last-step coefficient does not matter (the
    reversed recursion starts from a zero state), so no shift is needed.
    """
    a_next = _shift_left(a)
    zero = torch.zeros(grad_y.shape[0], dtype=grad_y.dtype, device=grad_y.device)
    lam_rev = _LinearOnePole.apply(grad_y.flip(-1), a_next.flip(-1), zero)
    return lam_rev.flip(-1)


class _LinearOnePole(torch.autograd.Function):
    """Time-varying linear one-pole ``y[n] = a[n] y[n-1] + u[n]`` with an adjoint backward."""

    @staticmethod
    def forward(u: Tensor, a: Tensor, zi: Tensor) -> Tensor:
        return _linear_one_pole_raw(u, a, zi).to(u.device)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        _u, a, zi = inputs
        ctx.save_for_backward(a, zi, output)

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        a, zi, y = ctx.saved_tensors
        lam = _adjoint(grad_y, a)
        grad_u = lam if ctx.needs_input_grad[0] else None
        grad_a = grad_zi = None
        if ctx.needs_input_grad[1]:
            y_prev = torch.cat([zi[:, None], y[:, :-1]], dim=-1)
            ga = lam * y_prev
            grad_a = ga.sum(-1, keepdim=True) if a.shape[-1] == 1 and y.shape[-1] > 1 else ga
        if ctx.needs_input_grad[2]:
            grad_zi = lam[:, 0] * a[:, 0]
        return grad_u, grad_a, grad_zi


class _Ballistics(torch.autograd.Function):
    """DeepAFx-ST eq. 3 exactly; backward = the recorded time-varying one-pole run backwards."""

    @staticmethod
    def forward(x: Tensor, au: Tensor, ad: Tensor, zi: Tensor) -> tuple[Tensor, Tensor]:
        y, up = _switching_raw(x, au, ad, zi)
        return y.to(x.device), up

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ...], output: tuple[Tensor, Tensor]) -> None:
        x, au, ad, zi = inputs
        y, up = output
        ctx.mark_non_differentiable(up)
        ctx.save_for_backward(x, au, ad, zi, y, up)

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor, _grad_up: Tensor | None) -> tuple[Tensor | None, ...]:
        x, au, ad, zi, y, up = ctx.saved_tensors
        a = torch.where(up, au[:, None], ad[:, None])
        lam = _adjoint(grad_y, a)
        grad_x = lam * (1 - a) if ctx.needs_input_grad[0] else None
        grad_au = grad_ad = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            y_prev = torch.cat([zi[:, None], y[:, :-1]], dim=-1)
            ga = lam * (y_prev - x)
            grad_au = (ga * up).sum(-1)
            grad_ad = ga.sum(-1) - grad_au
        grad_zi = lam[:, 0] * a[:, 0] if ctx.needs_input_grad[3] else None
        return grad_x, grad_au, grad_ad, grad_zi


class _FusedDynamics(torch.autograd.Function):
    """Level, gain computer, exact ballistics and gain application with one compiled recursion.

    Inputs are ``(B, T)`` signals and ``(B,)`` per-row parameters; ``slope`` is the gain
    computer's dB-per-dB factor (``1 - 1/ratio``, ``1`` or ``ratio - 1``, formed in torch so its
    own derivative is autograd's). The transcendental parts (log of the level, exp of the gain)
    are vectorised torch ops done in place; the gain computer and the switching recursion are
    one compiled pass, and the backward is one reverse-time compiled pass that replays the
    recorded switches (the adjoint of the time-varying one-pole) and accumulates every
    parameter gradient. Saved: the level and the smoothed gain reduction (three full-size
    buffers in the forward pass, two in the backward pass).
    """

    @staticmethod
    def forward(x: Tensor, side: Tensor | None, thr: Tensor, slope: Tensor, knee: Tensor,
                rng: Tensor, makeup: Tensor, au: Tensor, ad: Tensor, sign: float,
                has_range: bool) -> tuple[Tensor, Tensor, Tensor]:
        s = (x if side is None else side).detach()
        level = s.abs().contiguous()
        torch.log10(level, out=level)
        smooth = torch.empty_like(level)
        out = torch.empty_like(level)
        _kernel("fused_fwd", x)(level.numpy(), _np(thr), _np(slope), _np(knee), _np(rng),
                                _np(au), _np(ad), _np(makeup), sign, has_range, smooth.numpy(),
                                out.numpy())
        out.exp_().mul_(x.detach())
        return out, level, smooth

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...],
                      output: tuple[Tensor, Tensor, Tensor]) -> None:
        x, side, thr, slope, knee, rng, makeup, au, ad, sign, has_range = inputs
        _out, level, smooth = output
        ctx.sign, ctx.has_range = float(sign), bool(has_range)
        ctx.mark_non_differentiable(level, smooth)
        ctx.save_for_backward(x, side, level, smooth, thr, slope, knee, rng, makeup, au, ad)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor, *_unused: Tensor | None) -> tuple[Any, ...]:
        x, side, level, smooth, thr, slope, knee, rng, makeup, au, ad = ctx.saved_tensors
        grad_x = torch.empty(x.shape, dtype=x.dtype).copy_(grad_out)
        # the linear gain, recomputed (vectorised) into the buffer that returns grad_side
        grad_s = torch.sub(makeup.detach()[:, None], smooth).mul_(math.log(10.0) / 20.0).exp_()
        grads = np.empty((x.shape[0], 7), dtype=_np(x).dtype)
        xn = _np(x)
        _kernel("fused_bwd", x)(grad_x.numpy(), grad_s.numpy(), xn,
                                xn if side is None else _np(side), level.numpy(), smooth.numpy(),
                                _np(thr), _np(slope), _np(knee), _np(rng), _np(au), _np(ad),
                                ctx.sign, ctx.has_range, side is None, grads)
        g = torch.from_numpy(grads)
        return (grad_x, None if side is None else grad_s, g[:, 0], g[:, 1], g[:, 2], g[:, 3],
                g[:, 4], g[:, 5], g[:, 6], None, None)


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------


def _flatten(x: Tensor, *params: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Flatten ``x`` to ``(B, T)`` and broadcast each parameter to ``x.shape[:-1]``, flattened."""
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    out = []
    for p in params:
        try:
            pb = torch.broadcast_to(p, lead)
        except RuntimeError as exc:
            raise InputError(
                f"parameter of shape {tuple(p.shape)} does not broadcast against the leading "
                f"dimensions {tuple(lead)} of the signal"
            ) from exc
        out.append(pb.reshape(-1))
    return flat, out


def time_constant_to_coef(time_ms: Tensor | float, sample_rate: int) -> Tensor:
    """One-pole coefficient ``alpha = exp(-1 / (tau * sample_rate))`` for a time constant.

    After ``time_ms`` a one-pole smoother has covered ``1 - 1/e`` (63.2 %) of a step.

    Args:
        time_ms: time constant in milliseconds (> 0).
        sample_rate: sample rate in Hz.

    Returns:
        ``alpha`` in (0, 1), same shape as ``time_ms``.

    Examples:
        >>> round(float(time_constant_to_coef(10.0, 48000)), 6)
        0.997919

    References:
        Giannoulis et al. 2012, eq. 10.
    """
    t = torch.as_tensor(time_ms)
    return torch.exp(-1000.0 / (t * sample_rate))


def ballistics(
    x: Tensor,
    *,
    alpha_attack: Tensor | float,
    alpha_release: Tensor | float,
    zi: Tensor | float = 0.0,
) -> Tensor:
    """Exact switching attack/release one-pole smoother (DeepAFx-ST eq. 3).

    ``y[n] = alpha_A y[n-1] + (1 - alpha_A) x[n]`` while ``x[n] > y[n-1]`` (attack), else the same
    with ``alpha_R`` (release). Differentiable with respect to ``x``, both coefficients and ``zi``
    through a custom adjoint backward (compiled, not unrolled).

    Args:
        x: signal to smooth, e.g. the gain reduction in dB.
        alpha_attack: attack coefficient in [0, 1), broadcast against ``x.shape[:-1]``.
        alpha_release: release coefficient in [0, 1), same broadcasting.
        zi: state before the first sample (default 0), same broadcasting.

    Returns:
        The smoothed signal, same shape as ``x``.

    Shape:
        ``x``: ``(..., T)``; coefficients: scalar or ``(...)``; output ``(..., T)``.

    Examples:
        >>> y = ballistics(torch.tensor([0.0, 1.0, 1.0, 0.0]), alpha_attack=0.5, alpha_release=0.9)
        >>> [round(v, 4) for v in y.tolist()]
        [0.0, 0.5, 0.75, 0.675]

    References:
        Steinmetz et al., JAES 2022, eq. 3; Giannoulis et al. 2012, eq. 17.
    """
    check_tensor(x, "x", min_ndim=1)
    au = as_tensor(alpha_attack, x)
    ad = as_tensor(alpha_release, x)
    z = as_tensor(zi, x)
    check_in_range(au, "alpha_attack", 0.0, 1.0, high_inclusive=False)
    check_in_range(ad, "alpha_release", 0.0, 1.0, high_inclusive=False)
    if x.shape[-1] == 0:
        return x.clone()
    flat, (au_f, ad_f, z_f) = _flatten(x, au, ad, z)
    y, _ = _Ballistics.apply(flat, au_f, ad_f, z_f)
    return y.reshape(x.shape)


def one_pole(x: Tensor, *, alpha: Tensor | float, zi: Tensor | float = 0.0) -> Tensor:
    """Exact one-pole smoother ``y[n] = alpha y[n-1] + (1 - alpha) x[n]`` (DeepAFx-ST eq. 4).

    Computed recursively (compiled kernel, adjoint backward), one constant pole per signal.

    Args:
        x: input signal.
        alpha: pole in [0, 1), broadcast against ``x.shape[:-1]``.
        zi: initial state.

    Returns:
        Smoothed signal, same shape as ``x``.

    Shape:
        ``x``: ``(..., T)``; ``alpha``: scalar or ``(...)``.

    Examples:
        >>> one_pole(torch.ones(3), alpha=0.5)
        tensor([0.5000, 0.7500, 0.8750])

    References:
        Steinmetz et al., JAES 2022, eq. 4.
    """
    check_tensor(x, "x", min_ndim=1)
    a = as_tensor(alpha, x)
    check_in_range(a, "alpha", 0.0, 1.0, high_inclusive=False)
    if x.shape[-1] == 0:
        return x.clone()
    flat, (a_f, z_f) = _flatten(x, a, as_tensor(zi, x))
    a2 = a_f[:, None]
    y = _LinearOnePole.apply((1 - a2) * flat, a2, z_f)
    return y.reshape(x.shape)


def one_pole_fir(x: Tensor, *, alpha: Tensor | float) -> Tensor:
    """DeepAFx-ST's FIR approximation of the one-pole smoother by frequency sampling.

    The response ``(1 - alpha) / (1 - alpha e^{-jw})`` is sampled on an FFT grid of
    ``2^ceil(log2(2T - 1))`` points and multiplied with the zero-padded input's spectrum; the IIR
    tail beyond that length aliases (negligible when the time constant is short against ``T``).

    Args:
        x: input signal.
        alpha: pole in [0, 1), broadcast against ``x.shape[:-1]``.

    Returns:
        Smoothed signal, same shape as ``x``.

    Shape:
        ``x``: ``(..., T)``; ``alpha``: scalar or ``(...)``.

    Examples:
        >>> y = one_pole_fir(torch.ones(64), alpha=0.5)
        >>> [round(v, 3) for v in y[:4].tolist()]
        [0.5, 0.75, 0.875, 0.938]

    References:
        Steinmetz et al., JAES 2022, eq. 4 and Sec. 1.2.
    """
    check_tensor(x, "x", min_ndim=1)
    a = as_tensor(alpha, x)
    check_in_range(a, "alpha", 0.0, 1.0, high_inclusive=False)
    n = x.shape[-1]
    if n == 0:
        return x.clone()
    n_fft = next_pow2(max(2 * n - 1, 2))
    a = torch.broadcast_to(a, x.shape[:-1])[..., None]
    w = torch.arange(n_fft // 2 + 1, dtype=x.dtype, device=x.device) * (2 * math.pi / n_fft)
    z1 = torch.polar(torch.ones_like(w), -w)
    h = (1 - a) / (1 - a * z1)
    y = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * h, n=n_fft)
    return y[..., :n]


def _smooth_hinge(o: Tensor, knee_db: Tensor) -> Tensor:
    """0 below ``-W/2``, quadratic ``(o + W/2)^2 / (2W)`` inside the knee, ``o`` above ``W/2``.

    Written as ``c^2 / (2W) + relu(o - W/2)`` with ``c = clamp(o + W/2, 0, W)`` (the same
    piecewise function with fewer full-size temporaries; ``W = 0`` is the hard knee).
    """
    half = knee_db / 2
    c = torch.minimum((o + half).clamp_min(0.0), knee_db)
    safe_w = knee_db.clamp_min(1e-12)
    return c.square() / (2 * safe_w) + torch.relu(o - half)


def gain_computer(
    level_db: Tensor,
    *,
    threshold_db: Tensor | float,
    ratio: Tensor | float = 4.0,
    knee_db: Tensor | float = 0.0,
    mode: Mode = "compressor",
    range_db: Tensor | float | None = None,
) -> Tensor:
    """Static gain computer with a quadratic soft knee: input level -> gain in dB (<= 0).

    - ``compressor``: above the threshold the output rises ``1/ratio`` dB per dB.
    - ``limiter``: compressor with an infinite ratio (``ratio`` unused).
    - ``expander`` (downward): below the threshold the output falls ``ratio`` dB per dB.
    - ``gate``: an expander whose attenuation is floored at ``-range_db`` (default 80 dB).

    Args:
        level_db: input level in dB.
        threshold_db: threshold in dB.
        ratio: ratio >= 1 (1 = no processing).
        knee_db: knee width in dB (>= 0; 0 = hard knee).
        mode: ``"compressor"``, ``"expander"``, ``"limiter"`` or ``"gate"``.
        range_db: maximum attenuation in dB (> 0) for the expander and gate.

    Returns:
        Gain in dB (<= 0), same shape as the broadcast inputs.

    Shape:
        any broadcastable shapes.

    Examples:
        >>> g = gain_computer(torch.tensor([-30.0, -10.0, 0.0]), threshold_db=-20.0, ratio=4.0)
        >>> g.tolist()
        [0.0, -7.5, -15.0]

    References:
        Giannoulis et al., JAES 2012, eqs. 4 (compressor) and 7 (expander, knee).
    """
    check_choice(mode, "mode", _MODES)
    lvl = level_db
    thr = as_tensor(threshold_db, lvl)
    r = as_tensor(ratio, lvl)
    w = as_tensor(knee_db, lvl)
    check_in_range(r, "ratio", 1.0, math.inf)
    check_in_range(w, "knee_db", 0.0, math.inf)
    over = lvl - thr
    if mode == "compressor":
        return -(1 - 1 / r) * _smooth_hinge(over, w)
    if mode == "limiter":
        return -_smooth_hinge(over, w)
    gain = -(r - 1) * _smooth_hinge(-over, w)
    if mode == "gate" and range_db is None:
        range_db = 80.0
    if range_db is not None:
        rng = as_tensor(range_db, lvl)
        check_positive(rng, "range_db")
        gain = torch.maximum(gain, -rng)
    return gain


def dynamics(
    x: Tensor,
    *,
    sample_rate: int,
    mode: Mode = "compressor",
    threshold_db: Tensor | float = -20.0,
    ratio: Tensor | float = 4.0,
    attack_ms: Tensor | float = 10.0,
    release_ms: Tensor | float = 100.0,
    knee_db: Tensor | float = 6.0,
    makeup_db: Tensor | float = 0.0,
    range_db: Tensor | float | None = None,
    lookahead_ms: float = 0.0,
    smoothing: Literal["exact", "fir"] = "exact",
    sidechain: Tensor | None = None,
    return_gain_db: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Feed-forward dynamics processor (compressor, expander, limiter, gate).

    Level ``20 log10 |s[n]|`` of the side chain ``s`` (``x`` itself by default, floored at
    -140 dB so silence is finite) -> :func:`gain_computer` -> gain reduction ``r = -gain_db`` ->
    ballistics -> ``y = x * 10^((makeup_db - r_smooth) / 20)``.

    Ballistics: ``"exact"`` runs DeepAFx-ST eq. 3 with *separate* attack and release
    (:func:`ballistics`). For compressors and limiters the attack coefficient acts while the
    gain reduction grows; for expanders and gates while it shrinks (the gate opens).
    ``"fir"`` is DeepAFx-ST's approximation (eq. 4 by frequency sampling) with one shared time
    constant, here the mean ``(attack_ms + release_ms) / 2`` so both parameters act on it.

    Look-ahead advances the gain by ``round(lookahead_ms * sample_rate / 1000)`` samples (the gain
    at ``n`` is the one computed at ``n + L``; the last value is held), so the output stays aligned
    with the input and the gain reacts before a transient.

    Args:
        x: audio.
        sample_rate: sample rate in Hz.
        mode: ``"compressor"``, ``"expander"``, ``"limiter"`` or ``"gate"``.
        threshold_db: threshold in dB, broadcast against ``x.shape[:-1]``.
        ratio: ratio >= 1 (unused by the limiter).
        attack_ms: attack time constant in ms (> 0).
        release_ms: release time constant in ms (> 0).
        knee_db: soft knee width in dB (>= 0).
        makeup_db: makeup gain in dB.
        range_db: maximum attenuation of the expander/gate in dB (gate default 80).
        lookahead_ms: look-ahead in ms (>= 0, a configuration, not differentiable).
        smoothing: ``"exact"`` or ``"fir"``.
        sidechain: optional detector signal, broadcast against ``x``.
        return_gain_db: also return the applied gain in dB (including makeup).

    Returns:
        The processed signal (and the gain in dB, same shape as ``x``, when asked).

    Shape:
        ``x``: ``(..., T)``; parameters: scalar or ``(...)``.

    Examples:
        >>> x = 0.5 * torch.ones(1, 4800)
        >>> y = dynamics(x, sample_rate=48000, threshold_db=-20.0, ratio=4.0, knee_db=0.0,
        ...              attack_ms=1.0, release_ms=50.0)
        >>> round(float(20 * torch.log10(y[0, -1])), 2)  # -6.02 dB in -> -20 + 13.98/4
        -16.51

    References:
        Giannoulis et al., JAES 2012; Steinmetz et al., JAES 2022, Sec. 3.1.
    """
    check_tensor(x, "x", min_ndim=1)
    sample_rate = check_sample_rate(sample_rate)
    check_choice(mode, "mode", _MODES)
    check_choice(smoothing, "smoothing", ("exact", "fir"))
    at = as_tensor(attack_ms, x)
    rt = as_tensor(release_ms, x)
    check_positive(at, "attack_ms")
    check_positive(rt, "release_ms")
    check_in_range(lookahead_ms, "lookahead_ms", 0.0, math.inf)
    side = x if sidechain is None else torch.broadcast_to(sidechain, x.shape)
    lead = x.shape[:-1]

    def per_signal(p: Tensor | float) -> Tensor:
        pt = as_tensor(p, x)
        try:
            return torch.broadcast_to(pt, lead)[..., None]
        except RuntimeError as exc:
            raise InputError(
                f"parameter of shape {tuple(pt.shape)} does not broadcast against the leading "
                f"dimensions {tuple(lead)} of the signal"
            ) from exc

    lookahead = round(lookahead_ms * sample_rate / 1000.0)
    fused = (smoothing == "exact" and not return_gain_db and x.shape[-1] > 0
             and (lookahead == 0 or x.shape[-1] == 1) and _use_numba(x)
             and x.dtype in (torch.float32, torch.float64))
    if fused:
        return _dynamics_fused(x, None if sidechain is None or sidechain is x else side,
                               mode=mode, threshold_db=per_signal(threshold_db)[..., 0],
                               ratio=per_signal(ratio)[..., 0], knee_db=per_signal(knee_db)[..., 0],
                               makeup_db=per_signal(makeup_db)[..., 0],
                               range_db=None if range_db is None else per_signal(range_db)[..., 0],
                               alpha_a=time_constant_to_coef(at, sample_rate),
                               alpha_r=time_constant_to_coef(rt, sample_rate))
    level = amp_to_db(side)
    gain = gain_computer(
        level,
        threshold_db=per_signal(threshold_db),
        ratio=per_signal(ratio),
        knee_db=per_signal(knee_db),
        mode=mode,
        range_db=None if range_db is None else per_signal(range_db),
    )
    reduction = -gain
    alpha_a = time_constant_to_coef(at, sample_rate)
    alpha_r = time_constant_to_coef(rt, sample_rate)
    if smoothing == "exact":
        up, down = (alpha_a, alpha_r) if mode in ("compressor", "limiter") else (alpha_r, alpha_a)
        smooth = ballistics(reduction, alpha_attack=up, alpha_release=down)
    else:
        alpha = time_constant_to_coef((at + rt) / 2, sample_rate)
        smooth = one_pole_fir(reduction, alpha=alpha)
    if lookahead > 0 and x.shape[-1] > 0:
        lookahead = min(lookahead, x.shape[-1] - 1)
        tail = smooth[..., -1:].expand(*smooth.shape[:-1], lookahead)
        smooth = torch.cat([smooth[..., lookahead:], tail], dim=-1)
    gain_db = per_signal(makeup_db) - smooth
    y = x * db_to_amp(gain_db)
    if return_gain_db:
        return y, gain_db
    return y


def _dynamics_fused(x: Tensor, side: Tensor | None, *, mode: Mode, threshold_db: Tensor,
                    ratio: Tensor, knee_db: Tensor, makeup_db: Tensor, range_db: Tensor | None,
                    alpha_a: Tensor, alpha_r: Tensor) -> Tensor:
    """:func:`dynamics` with exact ballistics and no look-ahead as one compiled pass (CPU).

    Same function as the unfused path (level -> :func:`gain_computer` -> :func:`ballistics` ->
    gain); parameters arrive broadcast to ``x.shape[:-1]``.
    """
    check_in_range(ratio, "ratio", 1.0, math.inf)
    check_in_range(knee_db, "knee_db", 0.0, math.inf)
    if mode == "compressor":
        slope = 1 - 1 / ratio
    elif mode == "limiter":
        slope = torch.ones_like(ratio)
    else:
        slope = ratio - 1
    if mode in ("compressor", "limiter"):
        range_db = None  # as in gain_computer: the range only floors expanders and gates
    elif mode == "gate" and range_db is None:
        range_db = torch.full_like(ratio, 80.0)
    if range_db is not None:
        check_positive(range_db, "range_db")
    up, down = (alpha_a, alpha_r) if mode in ("compressor", "limiter") else (alpha_r, alpha_a)
    has_range = range_db is not None
    rng = range_db if range_db is not None else torch.zeros_like(ratio)
    flat, params = _flatten(x, threshold_db, slope, knee_db, rng, makeup_db, up, down)
    side_f = None if side is None else side.reshape(flat.shape)
    y, *_ = _FusedDynamics.apply(flat, side_f, *params,
                                 1.0 if mode in ("compressor", "limiter") else -1.0, has_range)
    return y.reshape(x.shape)


def _no_gain_output(kwargs: dict[str, Any]) -> None:
    if kwargs.get("return_gain_db"):
        raise InputError("return_gain_db is only available from dynamics(); got it in a wrapper")


def compressor(x: Tensor, *, sample_rate: int, threshold_db: Tensor | float = -20.0,
               ratio: Tensor | float = 4.0, attack_ms: Tensor | float = 10.0,
               release_ms: Tensor | float = 100.0, knee_db: Tensor | float = 6.0,
               makeup_db: Tensor | float = 0.0, **kwargs: Any) -> Tensor:
    """Feed-forward compressor with exact attack/release ballistics (see :func:`dynamics`).

    Args:
        x: audio ``(..., T)``.
        sample_rate: sample rate in Hz.
        threshold_db: threshold in dB.
        ratio: compression ratio >= 1.
        attack_ms: attack time constant in ms.
        release_ms: release time constant in ms.
        knee_db: knee width in dB.
        makeup_db: makeup gain in dB.
        **kwargs: ``lookahead_ms``, ``smoothing``, ``sidechain`` (see :func:`dynamics`).

    Returns:
        The compressed signal, same shape as ``x``.

    Shape:
        ``x``: ``(..., T)``; parameters: scalar or ``(...)``.

    Examples:
        >>> y = compressor(torch.zeros(2, 100), sample_rate=44100)
        >>> bool(torch.isfinite(y).all())
        True

    References:
        Giannoulis et al., JAES 2012; Steinmetz et al., JAES 2022, eq. 3.
    """
    _no_gain_output(kwargs)
    out = dynamics(x, sample_rate=sample_rate, mode="compressor", threshold_db=threshold_db,
                   ratio=ratio, attack_ms=attack_ms, release_ms=release_ms, knee_db=knee_db,
                   makeup_db=makeup_db, **kwargs)
    assert isinstance(out, Tensor)
    return out


def limiter(x: Tensor, *, sample_rate: int, threshold_db: Tensor | float = -1.0,
            attack_ms: Tensor | float = 0.5, release_ms: Tensor | float = 50.0,
            knee_db: Tensor | float = 0.0, makeup_db: Tensor | float = 0.0,
            lookahead_ms: float = 1.5, **kwargs: Any) -> Tensor:
    """Limiter: compressor with an infinite ratio and look-ahead (see :func:`dynamics`).

    Args:
        x: audio ``(..., T)``.
        sample_rate: sample rate in Hz.
        threshold_db: ceiling in dB.
        attack_ms: attack time constant in ms.
        release_ms: release time constant in ms.
        knee_db: knee width in dB.
        makeup_db: makeup gain in dB.
        lookahead_ms: look-ahead in ms.
        **kwargs: see :func:`dynamics`.

    Returns:
        The limited signal.

    Shape:
        ``x``: ``(..., T)``.

    Examples:
        >>> y = limiter(torch.ones(1, 4410), sample_rate=44100, threshold_db=-6.0)
        >>> round(float(20 * torch.log10(y[0, -1])), 2)
        -6.0

    References:
        Giannoulis et al., JAES 2012, Sec. 2.
    """
    _no_gain_output(kwargs)
    out = dynamics(x, sample_rate=sample_rate, mode="limiter", threshold_db=threshold_db,
                   attack_ms=attack_ms, release_ms=release_ms, knee_db=knee_db,
                   makeup_db=makeup_db, lookahead_ms=lookahead_ms, **kwargs)
    assert isinstance(out, Tensor)
    return out


def expander(x: Tensor, *, sample_rate: int, threshold_db: Tensor | float = -40.0,
             ratio: Tensor | float = 2.0, attack_ms: Tensor | float = 5.0,
             release_ms: Tensor | float = 100.0, knee_db: Tensor | float = 6.0,
             makeup_db: Tensor | float = 0.0, range_db: Tensor | float | None = None,
             **kwargs: Any) -> Tensor:
    """Downward expander (see :func:`dynamics`).

    Args:
        x: audio ``(..., T)``.
        sample_rate: sample rate in Hz.
        threshold_db: threshold in dB.
        ratio: expansion ratio >= 1.
        attack_ms: opening time constant in ms.
        release_ms: closing time constant in ms.
        knee_db: knee width in dB.
        makeup_db: makeup gain in dB.
        range_db: maximum attenuation in dB (None = unlimited).
        **kwargs: see :func:`dynamics`.

    Returns:
        The expanded signal.

    Shape:
        ``x``: ``(..., T)``.

    Examples:
        >>> y = expander(0.001 * torch.ones(1, 4410), sample_rate=44100, knee_db=0.0,
        ...              release_ms=5.0)
        >>> round(float(20 * torch.log10(y[0, -1])), 1)  # -60 dB in, 20 dB under -40 -> -80
        -80.0

    References:
        Giannoulis et al., JAES 2012, eq. 7.
    """
    _no_gain_output(kwargs)
    out = dynamics(x, sample_rate=sample_rate, mode="expander", threshold_db=threshold_db,
                   ratio=ratio, attack_ms=attack_ms, release_ms=release_ms, knee_db=knee_db,
                   makeup_db=makeup_db, range_db=range_db, **kwargs)
    assert isinstance(out, Tensor)
    return out


def noise_gate(x: Tensor, *, sample_rate: int, threshold_db: Tensor | float = -50.0,
               ratio: Tensor | float = 20.0, attack_ms: Tensor | float = 1.0,
               release_ms: Tensor | float = 50.0, knee_db: Tensor | float = 3.0,
               range_db: Tensor | float = 60.0, **kwargs: Any) -> Tensor:
    """Noise gate: a steep expander whose attenuation stops at ``-range_db``.

    Args:
        x: audio ``(..., T)``.
        sample_rate: sample rate in Hz.
        threshold_db: threshold in dB.
        ratio: expansion ratio below the threshold (steep: 10-100).
        attack_ms: opening time constant in ms.
        release_ms: closing time constant in ms.
        knee_db: knee width in dB.
        range_db: maximum attenuation in dB.
        **kwargs: see :func:`dynamics`.

    Returns:
        The gated signal.

    Shape:
        ``x``: ``(..., T)``.

    Examples:
        >>> y = noise_gate(1e-4 * torch.ones(1, 4410), sample_rate=44100, range_db=40.0,
        ...                release_ms=5.0)
        >>> round(float(20 * torch.log10(y[0, -1])), 1)  # -80 dB in, floored 40 dB lower
        -120.0

    References:
        Giannoulis et al., JAES 2012; Reiss & McPherson, "Audio Effects", 2014, ch. 6.
    """
    _no_gain_output(kwargs)
    out = dynamics(x, sample_rate=sample_rate, mode="gate", threshold_db=threshold_db,
                   ratio=ratio, attack_ms=attack_ms, release_ms=release_ms, knee_db=knee_db,
                   range_db=range_db, **kwargs)
    assert isinstance(out, Tensor)
    return out
