"""Differentiable envelopes and modulation: ADSR, LFOs, AM/ring modulation, tremolo, VCA, mixer.

The ADSR is Masuda & Saito's clipped-ramp form, rewritten so that no term divides by a difference
of times: every segment is ``clamp((t - start) / duration, 0, 1)`` with ``duration`` floored at half
a sample. It is differentiable w.r.t. every time and level, and a note shorter than its attack
releases from the level reached so far (torchsynth's ADSR returns NaN there).

References:
    Masuda & Saito, "Synthesizer sound matching with differentiable DSP", ISMIR 2021, Sec. 3.2.
    Uzrad et al., "DiffMoog: a differentiable modular synthesizer", 2024 (LFO, tremolo, VCA).
    Hayes et al., "A review of differentiable digital signal processing", 2023, Sec. 3.4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffdsp._validation import InputError, check_choice, check_int, check_sample_rate
from diffdsp.functional.oscillators import (
    _HAVE_NUMBA,
    _W_BITRI,
    _W_SAW,
    _W_SINE,
    _W_SQUARE,
    _kernel_ok,
    _osc_kernel,
    _run_rows,
    accumulate_phase,
)

if _HAVE_NUMBA:
    import numba

__all__ = [
    "LFO_SHAPES",
    "adsr",
    "amplitude_mod",
    "lfo",
    "mix",
    "ring_mod",
    "tremolo",
    "vca",
]

LFO_SHAPES = ("sine", "triangle", "saw", "square", "sample_and_hold")


def _col(value: float | Tensor, like: Tensor) -> Tensor:
    """A parameter broadcast as ``(..., 1)`` against a ``(time,)`` axis."""
    v = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return v.unsqueeze(-1)


# --------------------------------------------------------------------------------------------
# Compiled ADSR (CPU): one pass per row writes the envelope; the backward pass sums the
# closed-form partials over time. Same formula as the torch path below (tested against it).
# --------------------------------------------------------------------------------------------

if _HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _nb_adsr_fwd(prm, out, sr):  # type: ignore[no-untyped-def]  # pragma: no cover
        # prm: (B, 6) = attack, decay, sustain, release, note-off, peak (floors applied)
        B, N = out.shape
        for b in range(B):
            a, d, s, r, off, pk = prm[b, 0], prm[b, 1], prm[b, 2], prm[b, 3], prm[b, 4], prm[b, 5]
            for n in range(N):
                t = n / sr
                tg = t if t < off else off
                up = min(max(tg / a, 0.0), 1.0)
                down = min(max((tg - a) / d, 0.0), 1.0)
                rel = min(max((t - off) / r, 0.0), 1.0)
                out[b, n] = pk * (up - (1.0 - s) * down) * (1.0 - rel)

    @numba.njit(cache=True, nogil=True)
    def _nb_adsr_bwd(prm, gout, grad, sr):  # type: ignore[no-untyped-def]  # pragma: no cover
        # grad: (B, 6) partial sums w.r.t. the floored parameters; clamp kinks pass the
        # gradient on their closed interval, a note-off exactly on a sample splits it (as torch)
        B, N = gout.shape
        for b in range(B):
            a, d, s, r, off, pk = prm[b, 0], prm[b, 1], prm[b, 2], prm[b, 3], prm[b, 4], prm[b, 5]
            ga = gd = gs = gr = goff = gpk = 0.0
            for n in range(N):
                g = np.float64(gout[b, n])
                if g == 0.0:
                    continue
                t = n / sr
                if t < off:
                    tg, dtg = t, 0.0
                elif t > off:
                    tg, dtg = off, 1.0
                else:
                    tg, dtg = t, 0.5
                ux = tg / a
                up = min(max(ux, 0.0), 1.0)
                kup = 1.0 if 0.0 <= ux <= 1.0 else 0.0
                dx = (tg - a) / d
                down = min(max(dx, 0.0), 1.0)
                kdn = 1.0 if 0.0 <= dx <= 1.0 else 0.0
                rx = (t - off) / r
                rel = min(max(rx, 0.0), 1.0)
                krl = 1.0 if 0.0 <= rx <= 1.0 else 0.0
                level = up - (1.0 - s) * down
                gpk += g * level * (1.0 - rel)
                gl = g * pk * (1.0 - rel)
                grl = -g * pk * level
                ga += gl * (-kup * tg / (a * a) + (1.0 - s) * kdn / d)
                gd += gl * (1.0 - s) * kdn * (tg - a) / (d * d)
                gs += gl * down
                goff += gl * (kup / a - (1.0 - s) * kdn / d) * dtg - grl * krl / r
                gr += -grl * krl * (t - off) / (r * r)
            grad[b, 0] = ga
            grad[b, 1] = gd
            grad[b, 2] = gs
            grad[b, 3] = gr
            grad[b, 4] = goff
            grad[b, 5] = gpk


class _ADSRFn(torch.autograd.Function):
    """ADSR from ``(rows, 6)`` parameters in one compiled pass; backward sums over time."""

    @staticmethod
    def forward(prm: Tensor, n: int, sr: int, dtype: torch.dtype) -> Tensor:
        out = torch.empty(prm.shape[0], n, dtype=dtype)
        _run_rows(_nb_adsr_fwd, [prm.detach().contiguous().numpy(), out.numpy()], float(sr))
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.sr = inputs[2]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gout: Tensor) -> tuple[Tensor | None, ...]:
        (prm,) = ctx.saved_tensors
        grad = torch.empty_like(prm)
        _run_rows(_nb_adsr_bwd, [prm.numpy(), gout.contiguous().numpy(), grad.numpy()],
                  float(ctx.sr))
        return grad, None, None, None


def adsr(
    *,
    attack_s: float | Tensor,
    decay_s: float | Tensor,
    sustain: float | Tensor,
    release_s: float | Tensor,
    note_s: float | Tensor,
    sample_rate: int,
    n_samples: int,
    peak: float | Tensor = 1.0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Piecewise-linear ADSR envelope, differentiable w.r.t. all times and levels.

    ``attack`` rises from 0 to ``peak`` in ``attack_s``, ``decay`` falls to ``sustain * peak`` in
    ``decay_s``, the level holds until the note-off at ``note_s``, then ``release`` falls linearly
    from *the level reached at note-off* to 0 in ``release_s``. A note-off during the attack or the
    decay releases from the partial level (never NaN).

    Args:
        attack_s: attack time in seconds (>= 0; floored at half a sample), ``(...)``.
        decay_s: decay time in seconds, ``(...)``.
        sustain: sustain level as a fraction of ``peak`` in [0, 1], ``(...)``.
        release_s: release time in seconds, ``(...)``.
        note_s: note-off time (gate length) in seconds, ``(...)``.
        sample_rate: sample rate in Hz.
        n_samples: output length.
        peak: attack peak level, ``(...)``.
        dtype: dtype when every parameter is a number (default float dtype otherwise theirs).
        device: device when every parameter is a number.

    Returns:
        The envelope.

    Shape:
        ``(...) -> (..., n_samples)`` with the parameters' broadcast leading shape.

    Examples:
        >>> env = adsr(attack_s=0.002, decay_s=0.002, sustain=0.5, release_s=0.002, note_s=0.006,
        ...            sample_rate=1000, n_samples=10)
        >>> [round(v, 4) for v in env.tolist()]
        [0.0, 0.5, 1.0, 0.75, 0.5, 0.5, 0.5, 0.25, 0.0, 0.0]
        >>> short = adsr(attack_s=0.004, decay_s=0.1, sustain=1.0, release_s=0.002, note_s=0.002,
        ...              sample_rate=1000, n_samples=6)
        >>> [round(v, 4) for v in short.tolist()]  # note-off halfway through the attack
        [0.0, 0.25, 0.5, 0.25, 0.0, 0.0]

    References:
        Masuda & Saito, ISMIR 2021, Eq. 3 (clipped ramps); torchsynth ``ADSR`` (the NaN it avoids).
    """
    sr = check_sample_rate(sample_rate)
    n = check_int(n_samples, "n_samples", minimum=1)
    tensors = [v for v in (attack_s, decay_s, sustain, release_s, note_s, peak)
               if isinstance(v, Tensor)]
    if tensors:
        ref = tensors[0]
        dt = dtype or (ref.dtype if ref.is_floating_point() else torch.get_default_dtype())
        dev = ref.device
    else:
        dt = dtype or torch.get_default_dtype()
        dev = torch.device(device) if device is not None else torch.device("cpu")
    like = torch.empty((), dtype=dt, device=dev)
    for name, v in (("attack_s", attack_s), ("decay_s", decay_s), ("release_s", release_s),
                    ("note_s", note_s)):
        if not isinstance(v, Tensor) and not (float(v) >= 0.0 and math.isfinite(float(v))):
            raise InputError(f"{name} must be a finite time >= 0 s, got {v!r}")
    if not isinstance(sustain, Tensor) and not 0.0 <= float(sustain) <= 1.0:
        raise InputError(f"sustain must be in [0, 1], got {sustain!r}")
    floor = 0.5 / sr
    a = _col(attack_s, like).clamp_min(floor)
    d = _col(decay_s, like).clamp_min(floor)
    r = _col(release_s, like).clamp_min(floor)
    s = _col(sustain, like)
    off = _col(note_s, like)
    pk = _col(peak, like)
    if _kernel_ok(like):
        cols = (a, d, s, r, off, pk)
        lead = torch.broadcast_shapes(*(c.shape[:-1] for c in cols))
        prm = torch.stack([c.squeeze(-1).expand(lead).reshape(-1).to(torch.float64)
                           for c in cols], -1)
        return _ADSRFn.apply(prm, n, sr, dt).reshape(*lead, n)
    t = torch.arange(n, dtype=dt, device=dev) / sr

    def held(tt: Tensor) -> Tensor:
        up = (tt / a).clamp(0.0, 1.0)
        down = ((tt - a) / d).clamp(0.0, 1.0)
        return up - (1.0 - s) * down

    # level before the note-off follows the AD(S) curve frozen at the note-off time
    t_gate = torch.minimum(t, off)
    level = held(t_gate)
    rel = ((t - off) / r).clamp(0.0, 1.0)
    return pk * level * (1.0 - rel)


def lfo(
    rate_hz: float | Tensor,
    *,
    sample_rate: int,
    n_samples: int,
    shape: str = "sine",
    depth: float | Tensor = 1.0,
    initial_phase: float | Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Low-frequency oscillator (naive waveforms, no band-limiting needed at sub-audio rates).

    Args:
        rate_hz: rate in Hz, broadcastable to ``(...)``.
        sample_rate: sample rate in Hz.
        n_samples: output length.
        shape: one of :data:`LFO_SHAPES` (``"sample_and_hold"`` draws one uniform value in
            ``[-1, 1]`` per cycle from ``generator``).
        depth: output scale, ``(...)``.
        initial_phase: phase at sample 0 in radians.
        generator: random generator for sample-and-hold.

    Returns:
        ``depth * waveform`` in ``[-depth, depth]``, bipolar.

    Shape:
        ``(...) -> (..., n_samples)``.

    Examples:
        >>> lfo(250.0, sample_rate=1000, n_samples=4, shape="square").tolist()
        [1.0, 1.0, -1.0, -1.0]

    References:
        Uzrad et al. 2024 (DiffMoog LFO module); torchsynth ``LFO``.
    """
    check_choice(shape, "shape", LFO_SHAPES)
    sr = check_sample_rate(sample_rate)
    n = check_int(n_samples, "n_samples", minimum=1)
    rate = rate_hz if isinstance(rate_hz, Tensor) else torch.tensor(float(rate_hz))
    code = {"sine": _W_SINE, "triangle": _W_BITRI, "saw": _W_SAW, "square": _W_SQUARE}.get(shape)
    if code is not None:
        wave = _osc_kernel(rate, wave=code, sample_rate=sr, n_samples=n,
                           initial_phase=initial_phase, blep=False)
        if wave is not None:
            dep = torch.as_tensor(depth, dtype=wave.dtype, device=wave.device).unsqueeze(-1)
            if not (wave.requires_grad or dep.requires_grad) and (
                    wave.shape == torch.broadcast_shapes(wave.shape, dep.shape)):
                return wave.mul_(dep)  # no graph: scale the kernel's fresh output in place
            return dep * wave
    phase = accumulate_phase(rate, sample_rate=sr, n_samples=n, initial_phase=initial_phase)
    if shape == "sine":
        wave = torch.sin(2.0 * math.pi * phase)
    elif shape == "triangle":
        wave = 1.0 - 4.0 * (phase - 0.5).abs()
    elif shape == "saw":
        wave = 2.0 * phase - 1.0
    elif shape == "square":
        wave = torch.where(phase < 0.5, 1.0, -1.0).to(phase.dtype)
    else:
        idx = torch.arange(n, dtype=torch.float64, device=phase.device)
        phi0 = torch.as_tensor(initial_phase, device=phase.device).to(torch.float64)
        cycles = torch.floor(
            rate.detach().to(torch.float64).unsqueeze(-1) * idx / sr + phi0.unsqueeze(-1)
            / (2 * math.pi)
        ).long()
        cycles = cycles - cycles.min()
        n_cycles = int(cycles.max()) + 1
        lead = cycles.shape[:-1]
        values = torch.rand(
            (*lead, n_cycles), generator=generator, dtype=torch.float64,
            device=generator.device if generator is not None else phase.device,
        ).to(device=phase.device, dtype=phase.dtype)
        wave = 2.0 * torch.gather(values, -1, cycles) - 1.0
    dep = torch.as_tensor(depth, dtype=wave.dtype, device=wave.device)
    return dep.unsqueeze(-1) * wave


def vca(x: Tensor, gain: Tensor | float) -> Tensor:
    """Voltage-controlled amplifier: ``x * gain`` (a number, ``(...)`` or ``(..., time)``).

    Examples:
        >>> vca(torch.ones(3), torch.tensor([0.0, 0.5, 1.0]))
        tensor([0.0000, 0.5000, 1.0000])

    References:
        Hayes et al. 2023 review, Sec. 3.4 (amplitude control).
    """
    g = torch.as_tensor(gain, dtype=x.dtype, device=x.device)
    return x * g


def ring_mod(x: Tensor, modulator: Tensor) -> Tensor:
    """Ring modulation: the product of two signals ``(..., time)``.

    Examples:
        >>> ring_mod(torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.5]))
        tensor([ 0.5000, -0.5000])

    References:
        Hayes et al. 2023 review, Sec. 3.4.
    """
    return x * modulator


def amplitude_mod(x: Tensor, modulator: Tensor, *, depth: float | Tensor) -> Tensor:
    """Amplitude modulation ``x (1 + depth m) / (1 + depth)`` for a bipolar modulator in [-1, 1].

    The normalisation keeps the peak gain at 1 for any depth in [0, 1].

    Args:
        x: carrier ``(..., time)``.
        modulator: modulator in [-1, 1], ``(..., time)``.
        depth: modulation depth in [0, 1], ``(...)``.

    Returns:
        Modulated signal ``(..., time)``.

    Examples:
        >>> amplitude_mod(torch.ones(2), torch.tensor([1.0, -1.0]), depth=1.0)
        tensor([1., 0.])

    References:
        Uzrad et al. 2024 (DiffMoog AM / tremolo).
    """
    dep = torch.as_tensor(depth, dtype=x.dtype, device=x.device)
    if dep.ndim > 0:
        dep = dep.unsqueeze(-1)
    return x * (1.0 + dep * modulator) / (1.0 + dep)


def tremolo(
    x: Tensor, *, rate_hz: float | Tensor, depth: float | Tensor, sample_rate: int
) -> Tensor:
    """Tremolo: a sine-LFO amplitude modulation ``x * (1 - depth * (1 - cos) / 2)``.

    Args:
        x: input ``(..., time)``.
        rate_hz: LFO rate in Hz, ``(...)``.
        depth: depth in [0, 1] (0: unchanged, 1: gain swings between 0 and 1), ``(...)``.
        sample_rate: sample rate in Hz.

    Returns:
        ``(..., time)``.

    Examples:
        >>> tremolo(torch.ones(4), rate_hz=250.0, depth=1.0, sample_rate=1000).round(decimals=3)
        tensor([1.0000, 0.5000, 0.0000, 0.5000])

    References:
        Uzrad et al. 2024 (DiffMoog tremolo module).
    """
    rate = rate_hz if isinstance(rate_hz, Tensor) else torch.tensor(float(rate_hz), dtype=x.dtype)
    phase = accumulate_phase(rate, sample_rate=sample_rate, n_samples=x.shape[-1])
    dep = torch.as_tensor(depth, dtype=x.dtype, device=x.device)
    if dep.ndim > 0:
        dep = dep.unsqueeze(-1)
    gain = 1.0 - dep * 0.5 * (1.0 - torch.cos(2.0 * math.pi * phase.to(x.dtype)))
    return x * gain


def mix(signals: Sequence[Tensor], gains: Tensor | Sequence[float] | None = None) -> Tensor:
    """Mixer: the weighted sum of signals ``(..., time)``.

    Args:
        signals: the inputs, broadcastable to a common shape.
        gains: one gain per signal: a sequence, or a tensor ``(..., n_signals)``; default all 1.

    Returns:
        ``sum_i gains[i] * signals[i]``.

    Examples:
        >>> mix([torch.ones(2), 2 * torch.ones(2)], [0.5, 0.25])
        tensor([1., 1.])

    References:
        torchsynth ``AudioMixer``; Uzrad et al. 2024 (Mix module).
    """
    if len(signals) == 0:
        raise InputError("mix needs at least one signal, got none")
    out: Tensor | None = None
    for i, sig in enumerate(signals):
        if gains is None:
            term = sig
        elif isinstance(gains, Tensor):
            g = gains[..., i]
            term = sig * (g.unsqueeze(-1) if g.ndim > 0 else g)
        else:
            term = sig * float(gains[i])
        out = term if out is None else out + term
    assert out is not None
    return out
