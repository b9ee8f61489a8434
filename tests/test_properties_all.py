"""Property sweep: every processor and loss gives finite values and finite gradients.

Processors are enumerated from the package (every :class:`~diffdsp.effects.base.Effect` in
``diffdsp.effects``, every preset patch in ``diffdsp.synth.presets.PRESETS``, every LTI system in
``diffdsp.lti``, the RBJ designs of ``diffdsp.functional.filters.biquad``) and losses from
``diffdsp.losses``, so a new one is swept without editing this file (a new class whose
constructor needs arguments fails :func:`test_every_class_is_swept` until it is added to
``BUILD``). Parameter sets are drawn seeded and vectorised: 1000 normalised rows in [0, 1]
(corners included) as one ``(1000, n_params)`` batch, mapped through the ParamRanges; LTI systems
hold raw (unconstrained) parameters behind stability maps and get draws of N(0, 3^2) raw
values (one response per draw), and the heavier losses get signal pairs: 100 each in
``make test``, 1000 with ``DIFFDSP_FULL_SWEEP=1``. Invalid values
(NaN, far out of range in physical units) must be rejected with a ValueError naming the
parameter or give finite output.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import pkgutil
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import diffdsp.effects
import diffdsp.losses
from diffdsp._validation import set_finite_checks
from diffdsp.effects.base import Effect, EffectChain

SR = 16000
N_SETS = 1000
T = 256


def _classes(package: Any, base: type) -> dict[str, type]:
    out = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if (issubclass(cls, base) and cls.__module__ == mod.__name__
                    and not name.startswith("_")):
                out[name] = cls
    return out


def _finite(t: Tensor | None) -> bool:
    return t is not None and bool(torch.isfinite(t).all())


def _unit_rows(n_params: int, seed: int) -> Tensor:
    """``(N_SETS, n_params)`` uniform in [0, 1], first rows at the corners 0, 1 and 0.5."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(N_SETS, n_params, generator=g)
    u[:4] = 0.0
    u[4:8] = 1.0
    u[8:12] = 0.5
    return u


def _signals(batch: int, channels: int, n: int, seed: int) -> Tensor:
    """Noise at levels from -80 dB to +10 dBFS, with silence, DC and a click among the rows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, n, generator=g)
    x = x * torch.logspace(-4, 0.5, batch)[:, None, None]
    x[0] = 0.0
    x[1] = 0.5
    x[2] = 0.0
    x[2, :, n // 3] = 1.0
    return x


# ---------------------------------------------------------------------------------------------
# Effects

EFFECTS = {k: v for k, v in _classes(diffdsp.effects, Effect).items()
           if v not in (Effect, EffectChain)}
EFFECT_BUILD: dict[str, Callable[[], Effect]] = {
    "NoiseReverb": lambda: EFFECTS["NoiseReverb"](SR, max_seconds=0.1),
}


def _effect(name: str) -> Effect:
    return EFFECT_BUILD.get(name, lambda: EFFECTS[name](SR))()


def _channels(name: str) -> int:
    return 2 if name == "StereoWidth" else 1


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_effects_finite_over_random_settings(name: str) -> None:
    fx = _effect(name)
    u = _unit_rows(fx.n_params, seed=1).requires_grad_(True)
    x = _signals(N_SETS, _channels(name), T, seed=2).requires_grad_(True)
    y = fx(x, u)
    assert _finite(y), f"{name}: non-finite output"
    y.square().mean().backward()
    assert _finite(u.grad), f"{name}: non-finite parameter gradient"
    assert _finite(x.grad), f"{name}: non-finite input gradient"


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_effects_refuse_nan_and_survive_out_of_range(name: str) -> None:
    fx = _effect(name)
    x = _signals(3, _channels(name), T, seed=3)
    for k, r in fx.param_ranges.items():
        with pytest.raises(ValueError, match=k):
            fx(x, **{k: float("nan")})
        span = r.max - r.min
        for bad in (r.max + 10 * span, r.min - 10 * span):
            try:
                y = fx(x, **{k: bad})
            except ValueError as exc:  # rejected: the message names the parameter (or its role)
                assert k.rsplit("_", 2)[-1] in str(exc) or k in str(exc), str(exc)
            else:
                assert _finite(y), f"{name}: {k}={bad} gives non-finite output"
    bad_u = fx.default_params(3)
    bad_u[1, -1] = float("nan")
    set_finite_checks(True)
    try:
        with pytest.raises(ValueError, match=list(fx.param_ranges)[-1]):
            fx(x, bad_u)
    finally:
        set_finite_checks(False)


# ---------------------------------------------------------------------------------------------
# Synth presets


def _presets() -> list[str]:
    from diffdsp.synth.presets import PRESETS

    return sorted(PRESETS)


@pytest.mark.parametrize("name", _presets())
def test_synth_presets_finite_over_random_patches(name: str) -> None:
    from diffdsp.synth.presets import get_preset

    patch = get_preset(name, 8000)
    u = _unit_rows(patch.n_params, seed=4).requires_grad_(True)
    y = patch(u, n_samples=T, generator=torch.Generator().manual_seed(0))
    assert isinstance(y, Tensor)
    assert y.shape == (N_SETS, 1, T)
    assert _finite(y), f"{name}: non-finite render"
    y.square().mean().backward()
    assert _finite(u.grad), f"{name}: non-finite gradient"


# ---------------------------------------------------------------------------------------------
# LTI systems (raw parameters behind stability maps)


def _lti_builders() -> dict[str, Callable[[], nn.Module]]:
    from diffdsp.lti import core, fdn, systems

    grid = core.FrequencyGrid(512, 8000, dtype=torch.float64)
    d = systems.Delay(grid, [31.0, 37.0, 41.0])
    return {
        "Gain": lambda: systems.Gain(grid, torch.ones(2, 2)),
        "Matrix": lambda: systems.Matrix(grid, 4),
        "Delay": lambda: systems.Delay(grid, [3.5, 7.0], learnable=True),
        "FIR": lambda: systems.FIR(grid, torch.randn(2, 8)),
        "Biquad": lambda: systems.Biquad(grid, "lowpass", 2, cutoff_hz=1000.0),
        "PEQ": lambda: systems.PEQ(grid, 2, cutoff_hz=[200.0, 1000.0, 3000.0]),
        "GEQ": lambda: systems.GEQ(grid, 2),
        "SVF": lambda: systems.SVF(grid, 2),
        "HomogeneousAttenuation": lambda: fdn.HomogeneousAttenuation(grid, d),
        "LowpassAttenuation": lambda: fdn.LowpassAttenuation(grid, d, cutoff_hz=2000.0),
        "GEQAttenuation": lambda: fdn.GEQAttenuation(grid, d),
        "FDN": lambda: fdn.FDN(grid, [31, 37, 41, 43], attenuation="geq", t60_s=0.5),
        "Series": lambda: core.Series(systems.Biquad(grid, "peaking", 1, cutoff_hz=500.0),
                                      systems.SVF(grid, 1)),
        "Parallel": lambda: core.Parallel(systems.Biquad(grid, "lowpass", 1, cutoff_hz=500.0),
                                          systems.Biquad(grid, "highpass", 1, cutoff_hz=2e3)),
        "Feedback": lambda: core.Feedback(systems.Gain(grid, torch.tensor([[0.5]])),
                                          systems.Delay(grid, [5.0])),
    }


LTI = sorted(_lti_builders())
# The 1000 sets for every LTI system and heavy loss take ~6 min; make test runs 100 and
# DIFFDSP_FULL_SWEEP=1 runs all 1000 (as for the unusual-file cells of test_robustness.py).
FULL_SWEEP = os.environ.get("DIFFDSP_FULL_SWEEP", "0") not in ("", "0")
LTI_DRAWS = 1000 if FULL_SWEEP else 100  # one response (all frequencies) and its backward per draw
# PEQ once returned NaN at DC here (seed 5: three learned sections at 3-5 Hz expanded into one
# polynomial); learned frequencies are now evaluated section by section.


@pytest.mark.parametrize("name", LTI)
def test_lti_systems_finite_over_random_raw_parameters(name: str) -> None:
    system = _lti_builders()[name]()
    params = [p for p in system.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(5)
    for draw in range(LTI_DRAWS):
        with torch.no_grad():
            for p in params:
                p.copy_(3.0 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        system.zero_grad()
        h = system.response()
        assert _finite(torch.view_as_real(h)), f"{name}: non-finite response (draw {draw})"
        if params:
            h.abs().square().mean().backward()
            for p in params:
                assert p.grad is None or _finite(p.grad), f"{name}: non-finite gradient"


def test_every_class_is_swept() -> None:
    import diffdsp.lti
    from diffdsp.lti.core import FrequencyGrid, LTISystem, Shell

    found = set(_classes(diffdsp.lti, LTISystem)) - {"LTISystem", "FrequencyGrid", "Shell"}
    assert found <= set(LTI), f"LTI systems not swept: {sorted(found - set(LTI))}"
    assert FrequencyGrid and Shell  # grid and time-domain shell are not systems
    for name in EFFECTS:
        _effect(name)  # every effect builds with the sweep's arguments
    assert set(LOSSES) >= set(_classes(diffdsp.losses, nn.Module)) - {"ParameterLoss"}


# ---------------------------------------------------------------------------------------------
# Filters: RBJ designs


@pytest.mark.parametrize("kind", ["lowpass", "highpass", "bandpass", "notch", "allpass",
                                  "peaking", "lowshelf", "highshelf"])
def test_biquad_designs_finite_and_stable(kind: str) -> None:
    from diffdsp.functional.filters import biquad, sos_pole_radius, to_sos
    from diffdsp.params import ParamRange

    u = _unit_rows(3, seed=6).to(torch.float64).requires_grad_(True)
    cutoff = ParamRange(1.0, 0.999 * SR / 2, "log").denormalise(u[:, 0])
    q = ParamRange(0.05, 50.0, "log").denormalise(u[:, 1])
    gain = ParamRange(-24.0, 24.0).denormalise(u[:, 2])
    b, a = biquad(kind, cutoff_hz=cutoff, q=q, gain_db=gain, sample_rate=SR)
    assert _finite(b) and _finite(a)
    assert bool((sos_pole_radius(to_sos(b, a)) < 1.0).all()), f"{kind}: unstable design"
    (b.sum() + a.sum()).backward()
    assert _finite(u.grad)
    for bad in ({"cutoff_hz": float("nan")}, {"cutoff_hz": SR}, {"q": -1.0}, {"q": float("nan")}):
        kw: dict[str, Any] = {"cutoff_hz": 1000.0, "q": 0.7, "gain_db": 3.0, **bad}
        with pytest.raises(ValueError, match=next(iter(bad))):
            biquad(kind, sample_rate=SR, **kw)


# ---------------------------------------------------------------------------------------------
# Losses


def _loss_builders() -> dict[str, Callable[[], nn.Module]]:
    from diffdsp.losses import acoustic, phase, spectral, time

    return {
        "EDCLoss": lambda: acoustic.EDCLoss(SR),
        "EDRLoss": lambda: acoustic.EDRLoss(n_fft=256, hop_length=64),
        "PowerConvergenceLoss": lambda: acoustic.PowerConvergenceLoss(n_fft=256, hop_length=64),
        "InterferenceLoss": lambda: phase.InterferenceLoss(),
        "MelSTFTLoss": lambda: spectral.MelSTFTLoss(SR, fft_sizes=(256,), hop_sizes=(64,),
                                                      win_lengths=(256,), n_mels=32),
        "MultiResolutionSTFTLoss": lambda: spectral.MultiResolutionSTFTLoss(),
        "RandomResolutionSTFTLoss": lambda: spectral.RandomResolutionSTFTLoss(max_fft_size=512),
        "STFTLoss": lambda: spectral.STFTLoss(fft_size=256, hop_size=64),
        "SumAndDifferenceSTFTLoss": lambda: spectral.SumAndDifferenceSTFTLoss(),
        "WassersteinSpectralLoss": lambda: spectral.WassersteinSpectralLoss(fft_sizes=(256,)),
        "DCLoss": lambda: time.DCLoss(),
        "DelayInvariantLoss": lambda: time.DelayInvariantLoss(time.ESRLoss()),
        "ESRLoss": lambda: time.ESRLoss(),
        "L1Loss": lambda: time.L1Loss(),
        "MSELoss": lambda: time.MSELoss(),
        "SISDRLoss": lambda: time.SISDRLoss(),
    }


LOSSES = sorted(_loss_builders())
HEAVY_LOSSES = {"EDCLoss", "InterferenceLoss", "SumAndDifferenceSTFTLoss",
                "MultiResolutionSTFTLoss", "EDRLoss", "PowerConvergenceLoss"}


@pytest.mark.parametrize("name", LOSSES)
def test_losses_finite_over_random_pairs(name: str) -> None:
    loss = _loss_builders()[name]()
    channels = 2 if name == "SumAndDifferenceSTFTLoss" else 1
    n, batch = 2048, N_SETS if FULL_SWEEP or name not in HEAVY_LOSSES else 100
    pred = _signals(batch, channels, n, seed=7).requires_grad_(True)
    target = _signals(batch, channels, n, seed=8).flip(0)  # silence meets noise, and so on
    value = loss(pred, target)
    assert _finite(value), f"{name}: non-finite loss"
    value.sum().backward() if value.ndim else value.backward()
    assert _finite(pred.grad), f"{name}: non-finite gradient"
    assert math.isfinite(float(loss(target, target).detach().sum()))


def test_parameter_loss_finite_over_random_parameters() -> None:
    from diffdsp.losses.params import ParameterLoss

    pred = _unit_rows(12, seed=9).requires_grad_(True)
    value = ParameterLoss()(pred, _unit_rows(12, seed=10))
    assert _finite(value)
    value.backward()
    assert _finite(pred.grad)
