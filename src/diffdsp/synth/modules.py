"""Synth modules with named, typed ports for the modular patch (:mod:`diffdsp.synth.patch`).

A module is a thin ``nn.Module`` around functionals from :mod:`diffdsp.functional.oscillators` and
:mod:`diffdsp.functional.envelopes`. It declares

* ``input_ports`` / ``required_ports``: names of its inputs (several connections into one port are
  summed);
* ``param_ranges``: ``dict[str, ParamRange]`` of its parameters in physical units (which ones exist
  depends on the module's JSON ``config``);
* ``port_kinds``: ``"audio"`` (bipolar signal), ``"control"`` (modulation, e.g. envelope or LFO,
  unitless) or ``"pitch"`` (a frequency in Hz).

Signals are ``(batch, time)`` tensors, or ``(batch, 1)`` for constants (a note's frequency), which
broadcast. ``forward(inputs, params, ctx)`` returns the module's output signal.

References:
    Uzrad et al., "DiffMoog: a differentiable modular synthesizer", 2024 (modules, chains).
    torchsynth (Turian et al. 2021): VCO, LFO, ADSR, VCA, mixer and ``Voice`` structure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_int
from diffdsp.functional import envelopes as E
from diffdsp.functional import filters as _filters
from diffdsp.functional import iir as _iir
from diffdsp.functional import oscillators as O
from diffdsp.params import ParamRange, soft_clamp

#: Filter responses the subtractive voice offers (RBJ cookbook).
FILTER_KINDS = ("lowpass", "highpass", "bandpass")

__all__ = [
    "ADSR",
    "LFO",
    "MODULE_TYPES",
    "VCA",
    "VCO",
    "Chebyshev",
    "FMOperator",
    "Filter",
    "Mixer",
    "Noise",
    "Note",
    "RenderContext",
    "SynthModule",
    "Tremolo",
    "Waveshaper",
    "Wavetable",
    "build_module",
    "default_wavetables",
    "effective_cutoff_hz",
]


def _oscillator_ranges() -> dict[str, ParamRange]:
    """Ranges every oscillator module shares: frequency ratio, detune and output level."""
    return {
        "ratio": ParamRange(0.25, 16.0, "log", default=1.0, description="frequency ratio"),
        "detune_cents": ParamRange(-100.0, 100.0, unit="cents", default=0.0),
        "level": ParamRange(0.0, 1.0, default=1.0, description="output level"),
    }


@dataclass
class RenderContext:
    """Everything a module needs besides its inputs and parameters.

    Attributes:
        sample_rate: sample rate in Hz.
        n_samples: output length.
        batch: batch size.
        note_s: note-off time in seconds ``(batch,)`` (the gate the envelopes follow).
        dtype: working dtype.
        device: working device.
        generator: random generator for noise / sample-and-hold (seeded renders).
        writable: input ports of the module being run whose tensors nothing else reads (the
            patch sets it per module); a module may overwrite them when it builds no graph.
    """

    sample_rate: int
    n_samples: int
    batch: int
    note_s: Tensor
    dtype: torch.dtype
    device: torch.device
    generator: torch.Generator | None = None
    writable: frozenset[str] = frozenset()


class SynthModule(nn.Module):
    """Base class: ports, parameter ranges and JSON config of one patch module."""

    type_name: ClassVar[str] = ""
    input_ports: ClassVar[tuple[str, ...]] = ()
    required_ports: ClassVar[tuple[str, ...]] = ()
    port_kinds: ClassVar[dict[str, str]] = {}
    output_kind: ClassVar[str] = "audio"

    def __init__(self, ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        self.param_ranges: dict[str, ParamRange] = self.default_ranges()
        self._range_overrides: dict[str, dict[str, Any]] = {}
        for name, r in (ranges or {}).items():
            if name not in self.param_ranges:
                raise InputError(
                    f"{self.type_name} has no parameter {name!r}; expected one of "
                    f"{list(self.param_ranges)}"
                )
            if isinstance(r, ParamRange):
                pr = r
            else:
                base = self.param_ranges[name]
                spec = {"min": base.min, "max": base.max, "scale": base.scale, "unit": base.unit,
                        "exponent": base.exponent, "description": base.description}
                spec.update({k: v for k, v in r.items() if k != "default"})
                pr = ParamRange(**spec)  # type: ignore[arg-type]
            self.param_ranges[name] = pr
            self._range_overrides[name] = {"min": pr.min, "max": pr.max, "scale": pr.scale}

    def default_ranges(self) -> dict[str, ParamRange]:
        """The parameter ranges for this module's config (overridable per instance)."""
        return {}

    def get_config(self) -> dict[str, Any]:
        """The JSON config that rebuilds this module (see :func:`build_module`)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """``{"type", "config", "ranges"}`` for JSON."""
        out: dict[str, Any] = {"type": self.type_name, "config": self.get_config()}
        if self._range_overrides:
            out["ranges"] = dict(self._range_overrides)
        return out

    def forward(  # pragma: no cover - abstract
        self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor], ctx: RenderContext
    ) -> Tensor:
        raise NotImplementedError


def _col(p: Tensor) -> Tensor:
    """``(batch,)`` parameter as a ``(batch, 1)`` column broadcasting against time."""
    return p.unsqueeze(-1)


def _scale_(x: Tensor, gain: Tensor) -> Tensor:
    """``x * gain`` written into ``x`` (a buffer the caller owns) when the shapes allow it."""
    if x.shape == torch.broadcast_shapes(x.shape, gain.shape):
        return x.mul_(gain)
    return x * gain


def _may_write(x: Tensor, other: Tensor, port: str, ctx: RenderContext) -> bool:
    """Whether ``x.mul_(other)`` may replace ``x * other`` for input ``port``: nothing else
    reads ``x``, no graph is built and the result keeps ``x``'s shape and dtype."""
    return (port in ctx.writable and x._base is None  # not a view (e.g. of a parameter)
            and not (x.requires_grad or other.requires_grad)
            and x.dtype == torch.promote_types(x.dtype, other.dtype)
            and x.shape == torch.broadcast_shapes(x.shape, other.shape))


def _scale_nograd_(x: Tensor, gain: Tensor) -> Tensor:
    """``gain * x``, written into ``x`` (a fresh buffer the caller owns) when no graph is built."""
    if not (x.requires_grad or gain.requires_grad) and (
            x.shape == torch.broadcast_shapes(x.shape, gain.shape)):
        return x.mul_(gain)
    return gain * x


class Note(SynthModule):
    """The played note: outputs its fundamental ``f0_hz`` as a ``(batch, 1)`` pitch signal."""

    type_name = "note"
    output_kind = "pitch"

    def default_ranges(self) -> dict[str, ParamRange]:
        return {"f0_hz": ParamRange(27.5, 4186.0, "log", unit="Hz", default=220.0,
                                    description="fundamental frequency")}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        return _col(params["f0_hz"])


WAVES = ("sine", "saw", "square", "triangle", "pulse", "morph")


class VCO(SynthModule):
    """Voltage-controlled oscillator driven by a pitch input.

    Frequency = ``freq * ratio * 2^(detune_cents/1200) * 2^(pitch_depth_st * pitch / 12)``; output
    ``level * waveform(phase + fm_index * fm)``.

    Config:
        waveform: one of ``sine, saw, square, triangle, pulse, morph`` (morph: saw->square,
            parameter ``shape``; pulse: parameter ``width``).
        fm: whether the ``fm`` port (phase modulation, radians per unit) and ``fm_index`` exist.
        pitch_mod: whether the ``pitch`` port and ``pitch_depth_st`` exist.
        method: band-limiting method (``polyblep``, ``additive``, ``naive``).
    """

    type_name = "vco"
    input_ports = ("freq", "fm", "pitch")
    required_ports = ("freq",)
    port_kinds: ClassVar[dict[str, str]] = {"freq": "pitch", "fm": "audio", "pitch": "control"}

    def __init__(self, waveform: str = "saw", *, fm: bool = False, pitch_mod: bool = False,
                 method: str = "polyblep",
                 ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        self.waveform = check_choice(waveform, "waveform", WAVES)
        self.fm = bool(fm)
        self.pitch_mod = bool(pitch_mod)
        self.method = check_choice(method, "method", O.METHODS)
        super().__init__(ranges)

    def default_ranges(self) -> dict[str, ParamRange]:
        r = _oscillator_ranges()
        if self.waveform == "morph":
            r["shape"] = ParamRange(0.0, 1.0, default=0.0, description="saw (0) to square (1)")
        if self.waveform == "pulse":
            r["width"] = ParamRange(0.05, 0.95, default=0.5, description="duty cycle")
        if self.fm:
            r["fm_index"] = ParamRange(0.0, 10.0, default=1.0, unit="rad",
                                       description="phase-modulation index")
        if self.pitch_mod:
            r["pitch_depth_st"] = ParamRange(-24.0, 24.0, unit="semitones", default=0.0)
        return r

    def get_config(self) -> dict[str, Any]:
        return {"waveform": self.waveform, "fm": self.fm, "pitch_mod": self.pitch_mod,
                "method": self.method}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        freq = inputs["freq"] * _col(params["ratio"]) * torch.exp2(
            _col(params["detune_cents"]) / 1200.0)
        if self.pitch_mod and "pitch" in inputs:
            mod = inputs["pitch"] * (_col(params["pitch_depth_st"]) / 12.0)
            # without a graph, reuse the product's buffer (one full-size allocation less)
            mod = mod.exp2_() if not mod.requires_grad else torch.exp2(mod)
            # exp2 saves its output for the backward pass: scale in place only without a graph
            in_place = not mod.requires_grad and mod.shape == torch.broadcast_shapes(
                mod.shape, freq.shape)
            freq = mod.mul_(freq) if in_place else freq * mod
        n = ctx.n_samples
        const = freq.shape[-1] == 1
        f = freq[..., 0] if const else freq.expand(ctx.batch, n)
        ns = n if const else None
        sr = ctx.sample_rate
        if self.fm and "fm" in inputs:
            phase = O.accumulate_phase(f, sample_rate=sr, n_samples=ns)
            mod = _col(params["fm_index"]) * inputs["fm"]
            if self.waveform != "sine":
                raise InputError("the fm port is only available on sine VCOs (PM operators)")
            wave = torch.sin(2.0 * math.pi * phase + mod)
        elif (self.waveform in ("sine", "morph") and not const and freq.shape == (ctx.batch, n)
              and freq is not inputs["freq"] and (wave_ := O._osc_over_freq_(
                  freq, wave=O._WAVE_CODE[self.waveform], sample_rate=sr,
                  shape=_col(params["shape"]) if self.waveform == "morph" else None)) is not None):
            wave = wave_  # no graph: the oscillator overwrites our own frequency buffer
        elif self.waveform == "morph":
            wave = O.morph_saw_square(f, shape=params["shape"] if const else _col(params["shape"]),
                                      sample_rate=sr, n_samples=ns)
        elif self.waveform == "pulse":
            width = params["width"] if const else _col(params["width"])
            wave = O.pulse(f, width=width, sample_rate=sr, n_samples=ns, method=self.method)
        else:
            wave = O.oscillator(f, waveform=self.waveform, sample_rate=sr, n_samples=ns,
                                method=self.method)
        return _scale_nograd_(wave, _col(params["level"]))


class LFO(SynthModule):
    """Low-frequency oscillator (bipolar control in ``[-depth, depth]``). Config: ``shape``."""

    type_name = "lfo"
    output_kind = "control"

    def __init__(self, shape: str = "sine",
                 ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        self.shape = check_choice(shape, "shape", E.LFO_SHAPES)
        super().__init__(ranges)

    def default_ranges(self) -> dict[str, ParamRange]:
        return {"rate_hz": ParamRange(0.1, 20.0, "log", unit="Hz", default=4.0),
                "depth": ParamRange(0.0, 1.0, default=0.5)}

    def get_config(self) -> dict[str, Any]:
        return {"shape": self.shape}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        return E.lfo(params["rate_hz"], sample_rate=ctx.sample_rate, n_samples=ctx.n_samples,
                     shape=self.shape, depth=params["depth"], generator=ctx.generator)


class ADSR(SynthModule):
    """ADSR envelope (unipolar control in ``[0, 1]``) gated by the render's ``note_s``."""

    type_name = "adsr"
    output_kind = "control"

    def default_ranges(self) -> dict[str, ParamRange]:
        return {
            "attack_s": ParamRange(0.001, 2.0, "log", unit="s", default=0.01),
            "decay_s": ParamRange(0.001, 2.0, "log", unit="s", default=0.1),
            "sustain": ParamRange(0.0, 1.0, default=0.7),
            "release_s": ParamRange(0.001, 2.0, "log", unit="s", default=0.2),
        }

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        return E.adsr(attack_s=params["attack_s"], decay_s=params["decay_s"],
                      sustain=params["sustain"], release_s=params["release_s"],
                      note_s=ctx.note_s, sample_rate=ctx.sample_rate, n_samples=ctx.n_samples)


class VCA(SynthModule):
    """Amplifier: ``in * gain * level`` (``gain`` port optional, e.g. an ADSR)."""

    type_name = "vca"
    input_ports = ("in", "gain")
    required_ports = ("in",)
    port_kinds: ClassVar[dict[str, str]] = {"in": "audio", "gain": "control"}

    def default_ranges(self) -> dict[str, ParamRange]:
        return {"level": ParamRange(0.0, 1.0, default=1.0)}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        if "gain" not in inputs:
            return inputs["in"] * _col(params["level"])
        x, g = inputs["in"], inputs["gain"]
        out = x.mul_(g) if _may_write(x, g, "in", ctx) else x * g
        return _scale_(out, _col(params["level"]))


class Mixer(SynthModule):
    """Weighted sum of ``n_inputs`` audio ports ``in0 .. in{n-1}`` with gains ``gain0 ..``."""

    type_name = "mixer"
    port_kinds: ClassVar[dict[str, str]] = {}

    def __init__(self, n_inputs: int = 2,
                 ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        self.n_inputs = check_int(n_inputs, "n_inputs", minimum=1, maximum=64)
        super().__init__(ranges)

    @property
    def ports(self) -> tuple[str, ...]:
        """The input port names."""
        return tuple(f"in{i}" for i in range(self.n_inputs))

    def default_ranges(self) -> dict[str, ParamRange]:
        return {f"gain{i}": ParamRange(0.0, 1.0, default=0.5) for i in range(self.n_inputs)}

    def get_config(self) -> dict[str, Any]:
        return {"n_inputs": self.n_inputs}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        out: Tensor | None = None
        for i in range(self.n_inputs):
            key = f"in{i}"
            if key in inputs:
                x, g = inputs[key], _col(params[f"gain{i}"])
                if out is None:
                    out = (x.mul_(g) if _may_write(x, g, key, ctx) else x * g)
                elif out.shape == torch.broadcast_shapes(out.shape, x.shape, g.shape):
                    out = out.addcmul_(x, g)  # accumulate into our own buffer
                else:
                    out = out + x * g
        if out is None:
            return torch.zeros(ctx.batch, ctx.n_samples, dtype=ctx.dtype, device=ctx.device)
        return out


def effective_cutoff_hz(cutoff_hz: Tensor, sample_rate: int) -> Tensor:
    """The cutoff the synth :class:`Filter` runs: ``cutoff_hz`` smoothly kept in (10, 0.45 fs) Hz.

    A :func:`diffdsp.params.soft_clamp` on log-frequency: the identity (to 0.05 %) more than an
    octave inside the limits, saturating smoothly near them, with a gradient that never vanishes
    inside (a hard clamp would stop a fit whose cutoff wanders past Nyquist).

    Args:
        cutoff_hz: requested cutoff(s) in Hz, > 0 (any shape).
        sample_rate: sample rate in Hz.

    Returns:
        The running cutoff(s) in Hz, same shape.

    Examples:
        >>> effective_cutoff_hz(torch.tensor([2000.0, 1e6]), 44100).round().tolist()
        [2000.0, 19845.0]
    """
    lo, hi = math.log(10.0), math.log(0.45 * sample_rate)
    return torch.exp(soft_clamp(torch.log(cutoff_hz), lo, hi))


class Filter(SynthModule):
    """Resonant biquad (RBJ) with time-varying cutoff ``cutoff_hz * 2^(mod_depth_oct * mod)``.

    Config: ``kind`` (``lowpass``, ``highpass``, ``bandpass``); ``mod`` port optional (an ADSR or
    LFO). The modulated cutoff is kept inside (10 Hz, 0.45 sample_rate) by
    :func:`effective_cutoff_hz`, a smooth clamp that leaves cutoffs more than an octave inside
    those limits unchanged (to 0.05 %), so the ``cutoff_hz`` a patch stores is the one that runs.
    """

    type_name = "filter"
    input_ports = ("in", "mod")
    required_ports = ("in",)
    port_kinds: ClassVar[dict[str, str]] = {"in": "audio", "mod": "control"}

    def __init__(self, kind: str = "lowpass",
                 ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        self.kind = check_choice(kind, "kind", FILTER_KINDS)
        super().__init__(ranges)

    def default_ranges(self) -> dict[str, ParamRange]:
        return {
            "cutoff_hz": ParamRange(20.0, 16000.0, "log", unit="Hz", default=2000.0),
            "q": ParamRange(0.5, 10.0, "log", default=0.7071),
            "mod_depth_oct": ParamRange(-4.0, 6.0, unit="octaves", default=0.0),
        }

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        x = inputs["in"].expand(ctx.batch, ctx.n_samples)
        log_fc = torch.log(_col(params["cutoff_hz"]))
        if "mod" in inputs:
            log_fc = log_fc + math.log(2.0) * _col(params["mod_depth_oct"]) * inputs["mod"]
        fc = effective_cutoff_hz(torch.exp(log_fc), ctx.sample_rate).expand(ctx.batch,
                                                                             ctx.n_samples)
        q = _col(params["q"]).expand(ctx.batch, ctx.n_samples)
        # Per-sample RBJ coefficients through the exact time-varying recursion (custom backward).
        b, a = _filters.biquad(self.kind, cutoff_hz=fc, q=q, sample_rate=ctx.sample_rate)
        return _iir.lfilter(b, a, x)


class Noise(SynthModule):
    """Uniform white noise scaled by ``level`` (seeded by the render's generator)."""

    type_name = "noise"

    def default_ranges(self) -> dict[str, ParamRange]:
        return {"level": ParamRange(0.0, 1.0, default=0.1)}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        w = O.white_noise((ctx.batch, ctx.n_samples), generator=ctx.generator, dtype=ctx.dtype,
                          device=ctx.device)
        return _scale_(w, _col(params["level"]))


class Tremolo(SynthModule):
    """Tremolo (sine amplitude modulation) with ``rate_hz`` and ``depth``."""

    type_name = "tremolo"
    input_ports = ("in",)
    required_ports = ("in",)
    port_kinds: ClassVar[dict[str, str]] = {"in": "audio"}

    def default_ranges(self) -> dict[str, ParamRange]:
        return {"rate_hz": ParamRange(0.5, 20.0, "log", unit="Hz", default=5.0),
                "depth": ParamRange(0.0, 1.0, default=0.5)}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        x = inputs["in"].expand(ctx.batch, ctx.n_samples)
        return E.tremolo(x, rate_hz=params["rate_hz"], depth=params["depth"],
                         sample_rate=ctx.sample_rate)


class Waveshaper(SynthModule):
    """Memoryless ``tanh`` waveshaper with ``drive_db`` and make-up ``level`` (soft clipping)."""

    type_name = "waveshaper"
    input_ports = ("in",)
    required_ports = ("in",)
    port_kinds: ClassVar[dict[str, str]] = {"in": "audio"}

    def default_ranges(self) -> dict[str, ParamRange]:
        return {"drive_db": ParamRange(-12.0, 36.0, unit="dB", default=0.0),
                "level": ParamRange(0.0, 1.0, default=1.0)}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        drive = torch.pow(10.0, _col(params["drive_db"]) / 20.0)
        return torch.tanh(drive * inputs["in"]) * _col(params["level"])


def _vco_freq(inputs: Mapping[str, Tensor], params: Mapping[str, Tensor]) -> Tensor:
    """``freq * ratio * 2^(detune/1200) [* 2^(pitch_depth_st * pitch / 12)]``."""
    detune = torch.exp2(_col(params["detune_cents"]) / 1200.0)
    freq = inputs["freq"] * _col(params["ratio"]) * detune
    if "pitch" in inputs and "pitch_depth_st" in params:
        freq = freq * torch.exp2(inputs["pitch"] * (_col(params["pitch_depth_st"]) / 12.0))
    return freq


def _freq_args(freq: Tensor, ctx: RenderContext) -> tuple[Tensor, int | None]:
    """A ``(batch, 1)`` frequency as a constant ``(batch,)`` + length, else ``(batch, time)``."""
    if freq.shape[-1] == 1:
        return freq[..., 0].expand(ctx.batch), ctx.n_samples
    return freq.expand(ctx.batch, ctx.n_samples), None


class FMOperator(SynthModule):
    """DX7-style FM operator: sine with phase-modulation input and self-feedback.

    Output ``level * sin(2 pi phase + fm_index * fm + feedback * (y[n-1] + y[n-2]) / 2)``
    (:func:`~diffdsp.functional.oscillators.feedback_fm_operator`). Operators wired into each
    other's ``fm`` port form DX7 algorithms; the feedback loop lives inside the module (a patch
    is a DAG).

    Config:
        pitch_mod: whether the ``pitch`` port and ``pitch_depth_st`` exist.
    """

    type_name = "fm_operator"
    input_ports = ("freq", "fm", "pitch")
    required_ports = ("freq",)
    port_kinds: ClassVar[dict[str, str]] = {"freq": "pitch", "fm": "audio", "pitch": "control"}

    def __init__(self, *, pitch_mod: bool = False,
                 ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        self.pitch_mod = bool(pitch_mod)
        super().__init__(ranges)

    def default_ranges(self) -> dict[str, ParamRange]:
        r = {
            **_oscillator_ranges(),
            "fm_index": ParamRange(0.0, 10.0, default=1.0, unit="rad",
                                   description="phase-modulation index of the fm input"),
            "feedback": ParamRange(0.0, 1.5, default=0.0, unit="rad",
                                   description="self-feedback (chaotic above ~1.5 rad)"),
        }
        if self.pitch_mod:
            r["pitch_depth_st"] = ParamRange(-24.0, 24.0, unit="semitones", default=0.0)
        return r

    def get_config(self) -> dict[str, Any]:
        return {"pitch_mod": self.pitch_mod}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        f, ns = _freq_args(_vco_freq(inputs, params), ctx)
        mod = inputs.get("fm")
        if mod is not None:
            mod = mod.expand(ctx.batch, ctx.n_samples)
        y = O.feedback_fm_operator(f, sample_rate=ctx.sample_rate, n_samples=ns,
                                   feedback=params["feedback"], modulator=mod,
                                   index=params["fm_index"])
        return _col(params["level"]) * y


def default_wavetables(length: int = 256, n_harmonics: int = 32) -> Tensor:
    """Four band-limited single-cycle tables: sine, triangle, saw, square ``(4, length)``.

    Examples:
        >>> default_wavetables(64).shape
        torch.Size([4, 64])
    """
    n = check_int(length, "length", minimum=8)
    kmax = max(1, min(n_harmonics, n // 2 - 1))
    ph = torch.arange(n, dtype=torch.float64) / n
    k = torch.arange(1, kmax + 1, dtype=torch.float64)
    s = torch.sin(2 * math.pi * ph[:, None] * k)
    odd = (k % 2 == 1).to(torch.float64)
    sign = torch.where(((k - 1) / 2) % 2 == 0, 1.0, -1.0)
    tri = (s * odd * sign * 8 / (math.pi**2 * k * k)).sum(-1)
    saw = (s * (-2 / (math.pi * k))).sum(-1)  # rising saw (as oscillators.saw)
    sq = (s * odd * 4 / (math.pi * k)).sum(-1)
    tabs = torch.stack([s[:, 0], tri, saw, sq])
    return (tabs / tabs.abs().amax(-1, keepdim=True)).to(torch.get_default_dtype())


class Wavetable(SynthModule):
    """Wavetable oscillator with table scanning (``position``) and optionally learnable tables.

    Config:
        tables: ``(n_tables, length)`` values (default :func:`default_wavetables`: sine,
            triangle, saw, square, 32 harmonics, so aliasing starts above ``sample_rate / 64``).
        learnable: store the tables as an ``nn.Parameter`` (Shan et al.); saved in the JSON.
        pitch_mod: whether the ``pitch`` port and ``pitch_depth_st`` exist.
    """

    type_name = "wavetable"
    input_ports = ("freq", "pitch")
    required_ports = ("freq",)
    port_kinds: ClassVar[dict[str, str]] = {"freq": "pitch", "pitch": "control"}
    tables: Tensor

    def __init__(self, tables: Any = None, *, learnable: bool = False, pitch_mod: bool = False,
                 ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        self.pitch_mod = bool(pitch_mod)
        super().__init__(ranges)
        t = default_wavetables() if tables is None else torch.as_tensor(
            tables, dtype=torch.get_default_dtype())
        if t.ndim != 2 or t.shape[1] < 2 or not bool(torch.isfinite(t).all()):
            raise InputError(f"tables must be a finite (n_tables, length >= 2) array, got shape "
                             f"{tuple(t.shape)}")
        self.learnable = bool(learnable)
        self._custom = tables is not None or self.learnable
        if self.learnable:
            self.tables = nn.Parameter(t.clone())
        else:
            self.register_buffer("tables", t, persistent=False)

    def default_ranges(self) -> dict[str, ParamRange]:
        r = {
            **_oscillator_ranges(),
            "position": ParamRange(0.0, 1.0, default=0.0, description="table scan position"),
        }
        if self.pitch_mod:
            r["pitch_depth_st"] = ParamRange(-24.0, 24.0, unit="semitones", default=0.0)
        return r

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"learnable": self.learnable, "pitch_mod": self.pitch_mod}
        if self._custom:
            cfg["tables"] = self.tables.detach().cpu().tolist()
        return cfg

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        f, ns = _freq_args(_vco_freq(inputs, params), ctx)
        phase = O.accumulate_phase(f, sample_rate=ctx.sample_rate, n_samples=ns)
        tabs = self.tables.to(phase.dtype)
        return _col(params["level"]) * O.wavetable_scan(phase, tabs, params["position"])


class Chebyshev(SynthModule):
    """Chebyshev waveshaper: ``sum_k h_k T_k(drive * mod * in)`` normalised by ``max(1, sum|h|)``.

    A unit sine in gives harmonic ``k`` at weight ``h_k``; ``drive`` (and the optional ``mod``
    control, e.g. an ADSR as the distortion-index envelope) scales the input amplitude and so
    the brightness. Config: ``n_harmonics`` (``K``).
    """

    type_name = "chebyshev"
    input_ports = ("in", "mod")
    required_ports = ("in",)
    port_kinds: ClassVar[dict[str, str]] = {"in": "audio", "mod": "control"}

    def __init__(self, n_harmonics: int = 6,
                 ranges: Mapping[str, ParamRange | Mapping[str, Any]] | None = None) -> None:
        self.n_harmonics = check_int(n_harmonics, "n_harmonics", minimum=1, maximum=64)
        super().__init__(ranges)

    def default_ranges(self) -> dict[str, ParamRange]:
        r = {"drive": ParamRange(0.0, 1.0, default=1.0, description="input amplitude (index)")}
        for k in range(1, self.n_harmonics + 1):
            r[f"h{k}"] = ParamRange(-1.0, 1.0, default=1.0 if k == 1 else 0.0,
                                    description=f"weight of harmonic {k}")
        return r

    def get_config(self) -> dict[str, Any]:
        return {"n_harmonics": self.n_harmonics}

    def forward(self, inputs: Mapping[str, Tensor], params: Mapping[str, Tensor],
                ctx: RenderContext) -> Tensor:
        x = inputs["in"] * _col(params["drive"])
        if "mod" in inputs:
            x = x * inputs["mod"]
        h = torch.stack([params[f"h{k}"] for k in range(1, self.n_harmonics + 1)], -1)
        norm = h.abs().sum(-1, keepdim=True).clamp_min(1.0)
        return O.chebyshev_shaper(x.expand(ctx.batch, ctx.n_samples), h / norm)


MODULE_TYPES: dict[str, type[SynthModule]] = {
    cls.type_name: cls
    for cls in (Note, VCO, LFO, ADSR, VCA, Mixer, Filter, Noise, Tremolo, Waveshaper, FMOperator,
                Wavetable, Chebyshev)
}


def module_ports(module: SynthModule) -> tuple[str, ...]:
    """Input port names of a module instance (mixers have ``in0..``)."""
    if isinstance(module, Mixer):
        return module.ports
    return module.input_ports


def build_module(spec: Mapping[str, Any]) -> SynthModule:
    """Build a module from ``{"type": ..., "config": {...}, "ranges": {...}}``.

    Examples:
        >>> m = build_module({"type": "vco", "config": {"waveform": "square"}})
        >>> sorted(m.param_ranges)
        ['detune_cents', 'level', 'ratio']
    """
    kind = spec.get("type")
    if kind not in MODULE_TYPES:
        raise InputError(f"unknown module type {kind!r}; expected one of {sorted(MODULE_TYPES)}")
    cls = MODULE_TYPES[str(kind)]
    config = dict(spec.get("config", {}) or {})
    ranges = spec.get("ranges")
    try:
        return cls(**config, ranges=ranges)
    except TypeError as exc:
        raise InputError(f"invalid config for module type {kind!r}: {exc}") from None
