"""Built-in patches: DiffMoog's chains, a DX7-like 4-operator FM patch and torchsynth's Voice.

=================  =====================================================================
name               chain
=================  =====================================================================
subtractive        note -> (saw, square) -> mixer -> VCA(amp ADSR) -> low-pass
filter_envelope    subtractive with a second ADSR sweeping the low-pass cutoff
fm                 note -> sine modulator -> sine carrier (PM), LFO vibrato, amp ADSR
tremolo            note -> square -> tremolo -> VCA(amp ADSR)
dx7_4op            two 2-operator stacks (DX7 algorithm 5 reduced to 4 operators)
voice              torchsynth Voice: LFO + pitch ADSR -> 2 VCOs, noise, mixer, VCA(amp ADSR)
fm_feedback        DX7-style 2 operators: modulator with self-feedback -> carrier, amp ADSR
dx7_stack          DX7 algorithm 1's right stack: op4 (feedback) -> op3 -> op2 -> op1, ADSR
wavetable          note -> scanning wavetable oscillator (sine/tri/saw/square) -> VCA(ADSR)
waveshaping        note -> sine -> Chebyshev shaper (index ADSR) -> VCA(amp ADSR)
=================  =====================================================================

References:
    Uzrad et al. 2024 (DiffMoog chains, Fig. 5); Caspe et al. 2022 (DDX7);
    Turian et al. 2021 (torchsynth ``Voice``).
"""

from __future__ import annotations

from collections.abc import Callable

from diffdsp._validation import InputError
from diffdsp.synth.modules import (
    ADSR,
    LFO,
    VCA,
    VCO,
    Chebyshev,
    Filter,
    FMOperator,
    Mixer,
    Noise,
    Note,
    Tremolo,
    Wavetable,
)
from diffdsp.synth.patch import Patch

__all__ = ["PRESETS", "get_preset"]

_ENV_SAMPLING = {
    "attack_s": (0.001, 0.2),
    "decay_s": (0.01, 0.5),
    "sustain": (0.2, 1.0),
    "release_s": (0.01, 0.4),
}


def _env_sampling(name: str) -> dict[str, tuple[float, float]]:
    return {f"{name}.{k}": v for k, v in _ENV_SAMPLING.items()}


def _osc_fixed(name: str, **extra: float) -> dict[str, float]:
    out = {f"{name}.ratio": 1.0, f"{name}.detune_cents": 0.0, f"{name}.level": 1.0}
    out.update({f"{name}.{k}": v for k, v in extra.items()})
    return out


def subtractive(sample_rate: int = 44100, *, filter_envelope: bool = False) -> Patch:
    """DiffMoog's subtractive chain: saw + square -> amp ADSR -> resonant low-pass.

    Examples:
        >>> subtractive().param_names[:3]
        ['note.f0_hz', 'mix.gain0', 'mix.gain1']
    """
    modules = {
        "note": Note(),
        "saw": VCO("saw"),
        "square": VCO("square"),
        "mix": Mixer(2),
        "env": ADSR(),
        "amp": VCA(),
        "lpf": Filter("lowpass"),
    }
    conns = [("note", "saw.freq"), ("note", "square.freq"), ("saw", "mix.in0"),
             ("square", "mix.in1"), ("mix", "amp.in"), ("env", "amp.gain"), ("amp", "lpf.in")]
    fixed = {**_osc_fixed("saw"), **_osc_fixed("square"), "amp.level": 1.0}
    sampling: dict[str, tuple[float, float]] = {
        "note.f0_hz": (55.0, 880.0), "mix.gain0": (0.1, 1.0), "mix.gain1": (0.1, 1.0),
        "lpf.cutoff_hz": (300.0, 8000.0), "lpf.q": (0.5, 4.0), **_env_sampling("env"),
    }
    if filter_envelope:
        modules["fenv"] = ADSR()
        conns.append(("fenv", "lpf.mod"))
        sampling.update(_env_sampling("fenv"))
        sampling["lpf.mod_depth_oct"] = (0.0, 4.0)
        sampling["lpf.cutoff_hz"] = (200.0, 2000.0)
    else:
        fixed["lpf.mod_depth_oct"] = 0.0
    return Patch(modules, conns, "lpf", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="filter_envelope" if filter_envelope else "subtractive")


def fm(sample_rate: int = 44100) -> Patch:
    """Two-operator FM (phase modulation) with LFO vibrato and an amp ADSR (DiffMoog's FM chain).

    Examples:
        >>> "car.fm_index" in fm().param_names
        True
    """
    modules = {"note": Note(), "mod": VCO("sine"), "car": VCO("sine", fm=True, pitch_mod=True),
               "lfo": LFO("sine"), "env": ADSR(), "amp": VCA()}
    conns = [("note", "mod.freq"), ("note", "car.freq"), ("mod", "car.fm"), ("lfo", "car.pitch"),
             ("car", "amp.in"), ("env", "amp.gain")]
    fixed = {"mod.detune_cents": 0.0, "mod.level": 1.0, **_osc_fixed("car"), "amp.level": 1.0,
             "lfo.depth": 1.0}
    sampling = {"note.f0_hz": (55.0, 880.0), "mod.ratio": (0.5, 8.0), "car.fm_index": (0.0, 6.0),
                "car.pitch_depth_st": (-0.5, 0.5), "lfo.rate_hz": (0.5, 8.0),
                **_env_sampling("env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="fm")


def tremolo(sample_rate: int = 44100) -> Patch:
    """Square wave -> tremolo -> amp ADSR (DiffMoog's AM example).

    Examples:
        >>> tremolo().param_names[1:3]
        ['trem.rate_hz', 'trem.depth']
    """
    modules = {"note": Note(), "osc": VCO("square"), "trem": Tremolo(), "env": ADSR(),
               "amp": VCA()}
    conns = [("note", "osc.freq"), ("osc", "trem.in"), ("trem", "amp.in"), ("env", "amp.gain")]
    fixed = {**_osc_fixed("osc"), "amp.level": 1.0}
    sampling = {"note.f0_hz": (55.0, 880.0), **_env_sampling("env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="tremolo")


def dx7_4op(sample_rate: int = 44100) -> Patch:
    """Four sine operators as two modulator->carrier stacks, carriers mixed, amp ADSR.

    Examples:
        >>> len(dx7_4op().param_names)
        12
    """
    modules = {"note": Note(), "op1": VCO("sine", fm=True), "op2": VCO("sine"),
               "op3": VCO("sine", fm=True), "op4": VCO("sine"), "mix": Mixer(2), "env": ADSR(),
               "amp": VCA()}
    conns = [("note", f"op{i}.freq") for i in range(1, 5)]
    conns += [("op2", "op1.fm"), ("op4", "op3.fm"), ("op1", "mix.in0"), ("op3", "mix.in1"),
              ("mix", "amp.in"), ("env", "amp.gain")]
    fixed = {"op1.ratio": 1.0, **{f"op{i}.detune_cents": 0.0 for i in range(1, 5)},
             **{f"op{i}.level": 1.0 for i in range(1, 5)}, "amp.level": 1.0}
    sampling = {"note.f0_hz": (55.0, 880.0), "op2.ratio": (0.5, 8.0), "op3.ratio": (0.5, 4.0),
                "op4.ratio": (0.5, 8.0), "op1.fm_index": (0.0, 4.0), "op3.fm_index": (0.0, 4.0),
                **_env_sampling("env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="dx7_4op")


def voice(sample_rate: int = 44100) -> Patch:
    """torchsynth ``Voice`` structure: LFO and pitch ADSR modulate two VCOs, + noise, mixer, VCA.

    Examples:
        >>> sorted({k.split(".")[0] for k in voice().param_names})[:4]
        ['amp_env', 'lfo', 'mix', 'note']
    """
    modules = {"note": Note(), "lfo": LFO("sine"), "pitch_env": ADSR(), "amp_env": ADSR(),
               "vco1": VCO("sine", pitch_mod=True), "vco2": VCO("morph", pitch_mod=True),
               "noise": Noise(), "mix": Mixer(3), "amp": VCA()}
    conns = [("note", "vco1.freq"), ("note", "vco2.freq"), ("lfo", "vco1.pitch"),
             ("pitch_env", "vco1.pitch"), ("lfo", "vco2.pitch"), ("pitch_env", "vco2.pitch"),
             ("vco1", "mix.in0"), ("vco2", "mix.in1"), ("noise", "mix.in2"), ("mix", "amp.in"),
             ("amp_env", "amp.gain")]
    fixed = {"vco1.level": 1.0, "vco2.level": 1.0, "noise.level": 1.0, "amp.level": 1.0}
    sampling = {"note.f0_hz": (55.0, 880.0), "vco1.pitch_depth_st": (-2.0, 2.0),
                "vco2.pitch_depth_st": (-2.0, 2.0), **_env_sampling("amp_env"),
                **_env_sampling("pitch_env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="voice")


def filter_envelope(sample_rate: int = 44100) -> Patch:
    """The subtractive chain with a filter ADSR sweeping the cutoff (DiffMoog's filter envelope).

    Examples:
        >>> "lpf.mod_depth_oct" in filter_envelope().param_names
        True
    """
    return subtractive(sample_rate, filter_envelope=True)


def fm_feedback(sample_rate: int = 44100) -> Patch:
    """Two DX7 operators: a self-feedback modulator into a carrier, with an amp ADSR.

    Examples:
        >>> [k for k in fm_feedback().param_names if "feedback" in k or "index" in k]
        ['mod.feedback', 'car.fm_index']
    """
    modules = {"note": Note(), "mod": FMOperator(), "car": FMOperator(), "env": ADSR(),
               "amp": VCA()}
    conns = [("note", "mod.freq"), ("note", "car.freq"), ("mod", "car.fm"), ("car", "amp.in"),
             ("env", "amp.gain")]
    fixed = {"mod.detune_cents": 0.0, "mod.level": 1.0, "mod.fm_index": 0.0,
             "car.ratio": 1.0, "car.detune_cents": 0.0, "car.level": 1.0, "car.feedback": 0.0,
             "amp.level": 1.0}
    sampling = {"note.f0_hz": (55.0, 880.0), "mod.ratio": (0.5, 8.0), "mod.feedback": (0.0, 1.2),
                "car.fm_index": (0.0, 4.0), **_env_sampling("env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="fm_feedback")


def dx7_stack(sample_rate: int = 44100) -> Patch:
    """Four operators in series with feedback on the top one (DX7 algorithm 1, one stack).

    Examples:
        >>> [k for k in dx7_stack().param_names if k.endswith("feedback")]
        ['op4.feedback']
    """
    modules = {"note": Note(), **{f"op{i}": FMOperator() for i in range(1, 5)}, "env": ADSR(),
               "amp": VCA()}
    conns = [("note", f"op{i}.freq") for i in range(1, 5)]
    conns += [("op4", "op3.fm"), ("op3", "op2.fm"), ("op2", "op1.fm"), ("op1", "amp.in"),
              ("env", "amp.gain")]
    fixed = {"op1.ratio": 1.0, "op4.fm_index": 0.0, "amp.level": 1.0,
             **{f"op{i}.detune_cents": 0.0 for i in range(1, 5)},
             **{f"op{i}.level": 1.0 for i in range(1, 5)},
             **{f"op{i}.feedback": 0.0 for i in range(1, 4)}}
    sampling = {"note.f0_hz": (55.0, 880.0), "op4.feedback": (0.0, 1.0),
                **{f"op{i}.ratio": (0.5, 4.0) for i in range(2, 5)},
                **{f"op{i}.fm_index": (0.0, 3.0) for i in range(1, 4)}, **_env_sampling("env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="dx7_stack")


def wavetable(sample_rate: int = 44100) -> Patch:
    """A scanning wavetable oscillator (sine, triangle, saw, square tables) and an amp ADSR.

    Examples:
        >>> wavetable().param_names[:2]
        ['note.f0_hz', 'osc.position']
    """
    modules = {"note": Note(), "osc": Wavetable(), "env": ADSR(), "amp": VCA()}
    conns = [("note", "osc.freq"), ("osc", "amp.in"), ("env", "amp.gain")]
    fixed = {**_osc_fixed("osc"), "amp.level": 1.0}
    sampling = {"note.f0_hz": (55.0, 880.0), **_env_sampling("env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="wavetable")


def waveshaping(sample_rate: int = 44100) -> Patch:
    """Sine -> Chebyshev waveshaper whose index follows an ADSR -> VCA with an amp ADSR.

    Examples:
        >>> sum(k.startswith("shaper.h") for k in waveshaping().param_names)
        6
    """
    modules = {"note": Note(), "osc": VCO("sine"), "index": ADSR(), "shaper": Chebyshev(6),
               "env": ADSR(), "amp": VCA()}
    conns = [("note", "osc.freq"), ("osc", "shaper.in"), ("index", "shaper.mod"),
             ("shaper", "amp.in"), ("env", "amp.gain")]
    fixed = {**_osc_fixed("osc"), "amp.level": 1.0}
    sampling = {"note.f0_hz": (55.0, 880.0), "shaper.drive": (0.3, 1.0),
                **_env_sampling("index"), **_env_sampling("env")}
    return Patch(modules, conns, "amp", sample_rate=sample_rate, fixed=fixed, sampling=sampling,
                 name="waveshaping")


PRESETS: dict[str, Callable[[int], Patch]] = {
    "subtractive": subtractive,
    "filter_envelope": filter_envelope,
    "fm": fm,
    "tremolo": tremolo,
    "dx7_4op": dx7_4op,
    "voice": voice,
    "fm_feedback": fm_feedback,
    "dx7_stack": dx7_stack,
    "wavetable": wavetable,
    "waveshaping": waveshaping,
}


def get_preset(name: str, sample_rate: int = 44100) -> Patch:
    """Build a built-in patch by name (see :data:`PRESETS`).

    Examples:
        >>> get_preset("fm", 16000).sample_rate
        16000
    """
    if name not in PRESETS:
        raise InputError(f"unknown patch preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name](sample_rate)
