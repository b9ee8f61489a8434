"""Tests for the effect modules (gain, dynamics, distortion, delay, reverb, stereo) and chains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

from diffdsp._validation import InputError
from diffdsp.effects.base import Effect, EffectChain
from diffdsp.effects.delay import Delay, feedback_delay
from diffdsp.effects.distortion import Distortion
from diffdsp.effects.dynamics import Compressor, Expander, Limiter, NoiseGate
from diffdsp.effects.gain import Gain
from diffdsp.effects.reverb import NoiseReverb
from diffdsp.effects.stereo import Pan, StereoWidth
from diffdsp.functional import dynamics as FD
from tests.helpers import REF_TOL, Tol, assert_close, assert_finite, noise

SR = 8000


def all_effects() -> dict[str, Effect]:
    return {
        "gain": Gain(SR),
        "compressor": Compressor(SR),
        "compressor_fir": Compressor(SR, smoothing="fir"),
        "expander": Expander(SR),
        "gate": NoiseGate(SR),
        "limiter": Limiter(SR),
        "distortion": Distortion(SR),
        "distortion_soft": Distortion(SR, shape="soft"),
        "delay": Delay(SR),
        "reverb": NoiseReverb(SR, max_seconds=0.25),
        "width": StereoWidth(SR),
        "pan": Pan(SR),
    }


@pytest.mark.parametrize("name", list(all_effects()))
def test_normalised_equals_physical_and_batch_item(name: str) -> None:
    fx = all_effects()[name]
    x = noise((3, 2, 600), seed=1, dtype=torch.float64) * 0.3
    p = torch.rand(3, fx.n_params, dtype=torch.float64)
    y = fx(x, p)
    assert y.shape == (3, 2, 600)
    phys = fx.denormalise(p)
    y2 = fx(x, **phys)
    assert_close(y, y2, REF_TOL[torch.float64])
    y1 = fx(x[1:2], p[1:2])
    assert_close(y1[0], y[1], Tol(1e-9, 1e-10))
    # round trip of the normalised interface
    back = fx.normalise({k: v for k, v in phys.items()}, batch=3).double()
    assert_close(back, p, Tol(1e-5, 1e-6))


@pytest.mark.parametrize("name", list(all_effects()))
def test_finite_gradients_on_silence_and_extremes(name: str) -> None:
    fx = all_effects()[name]
    for x in (torch.zeros(2, 2, 400), noise((2, 2, 400), seed=2) * 3.0):
        for corner in (0.0, 1.0, 0.5):
            p = torch.full((2, fx.n_params), corner, requires_grad=True)
            xx = x.clone().requires_grad_()
            y = fx(xx, p)
            assert_finite(y, f"{name} output")
            (y.square().mean() + y.mean()).backward()
            assert p.grad is not None and xx.grad is not None
            assert_finite(p.grad, f"{name} param grad")
            assert_finite(xx.grad, f"{name} input grad")


def test_gain_and_compressor_match_functionals() -> None:
    x = noise((2, 1, 800), seed=3, dtype=torch.float64) * 0.5
    assert_close(Gain(SR)(x, gain_db=6.0), x * 10 ** (6 / 20), REF_TOL[torch.float64])
    comp = Compressor(SR, stereo_link=False)
    kw = dict(threshold_db=-25.0, ratio=5.0, attack_ms=3.0, release_ms=80.0, knee_db=4.0,
              makeup_db=2.0)
    assert_close(comp(x, **kw), FD.compressor(x, sample_rate=SR, **kw),  # type: ignore[arg-type]
                 REF_TOL[torch.float64])
    g = comp.gain_db(x, **{k: torch.tensor([[v]], dtype=torch.float64) for k, v in kw.items()})
    assert g.shape == (2, 1, 800) and float(g.max()) <= 2.0 + 1e-12


def test_stereo_link_shares_gain() -> None:
    x = noise((1, 2, 800), seed=4, dtype=torch.float64)
    x[:, 1] *= 0.01
    y = Compressor(SR)(x, threshold_db=-30.0, ratio=10.0)
    ratio = y / x
    assert_close(ratio[:, 0], ratio[:, 1], Tol(1e-9, 1e-9))


def test_compressor_gradcheck_through_module() -> None:
    comp = Compressor(SR)
    x = noise((2, 1, 32), seed=5, dtype=torch.float64) * 0.5
    p = torch.tensor([[0.6, 0.3, 0.4, 0.5, 0.5, 0.2], [0.8, 0.7, 0.2, 0.3, 0.1, 0.6]],
                     dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q: comp(x, q), (p,), atol=1e-6)


@pytest.mark.parametrize("delay", [3, 17])
def test_feedback_delay_matches_recursion(delay: int) -> None:
    x = noise((400,), seed=6, dtype=torch.float64)
    g = 0.7
    b = np.zeros(delay + 1)
    b[delay] = 1.0
    a = np.zeros(delay + 1)
    a[0], a[delay] = 1.0, -g
    want = scipy.signal.lfilter(b, a, x.numpy())
    got = feedback_delay(x, delay_samples=torch.tensor(float(delay), dtype=torch.float64),
                         feedback=torch.tensor(g, dtype=torch.float64))
    assert_close(got, want, Tol(1e-7, 1e-8))


def test_delay_time_gradient_is_finite_and_nonzero() -> None:
    x = torch.zeros(1, 1, 256, dtype=torch.float64)
    x[..., 10] = 1.0
    d = torch.tensor(20.3, dtype=torch.float64, requires_grad=True)
    y = Delay(1000)(x, delay_ms=d, feedback=0.4, mix=1.0)
    target = torch.zeros_like(y)
    target[..., 40] = 1.0
    (y - target).square().sum().backward()
    assert d.grad is not None and torch.isfinite(d.grad) and float(d.grad.abs()) > 0


def test_reverb_decay_matches_t60() -> None:
    rv = NoiseReverb(SR, max_seconds=1.5, seed=3)
    t60 = torch.tensor([[0.5]], dtype=torch.float64)
    h = rv.impulse_response(t60_s=t60, damping=torch.zeros_like(t60))[0, 0]
    assert float(h.square().sum()) == pytest.approx(1.0, rel=1e-6)
    env = h.square().reshape(-1, 400).sum(-1)  # 50 ms frames
    slope = np.polyfit(np.arange(8) * 0.05, 10 * np.log10(env[1:9].numpy()), 1)[0]
    assert -60.0 / slope == pytest.approx(0.5, rel=0.15)
    h_damped = rv.impulse_response(t60_s=t60, damping=torch.ones_like(t60))[0, 0]

    def hf_share(ir: torch.Tensor) -> float:
        spec = torch.fft.rfft(ir[2000:]).abs().square()
        f = torch.fft.rfftfreq(ir[2000:].numel(), 1 / SR)
        return float(spec[f > 3000].sum() / spec.sum())

    assert hf_share(h_damped) < 0.2 * hf_share(h)  # the damped tail has lost its highs


def test_stereo_width_and_pan() -> None:
    x = noise((2, 2, 100), seed=7, dtype=torch.float64)
    assert_close(StereoWidth(SR)(x, width=1.0), x, REF_TOL[torch.float64])
    mono = StereoWidth(SR)(x, width=0.0)
    assert_close(mono[:, 0], mono[:, 1], REF_TOL[torch.float64])
    m = noise((1, 1, 100), seed=8, dtype=torch.float64)
    for pan in (-1.0, -0.3, 0.0, 0.8):
        y = Pan(SR)(m, pan=pan)
        assert_close(y.square().sum(1), m.square().sum(1), Tol(1e-9, 1e-12))  # constant power
    assert_close(Pan(SR)(x, pan=0.0), x, REF_TOL[torch.float64])
    with pytest.raises(InputError, match="2 channels"):
        StereoWidth(SR)(m)


def test_distortion_identities() -> None:
    x = noise((1, 1, 200), seed=9, dtype=torch.float64) * 0.5
    assert_close(Distortion(SR)(x, mix=0.0), x, REF_TOL[torch.float64])
    y = Distortion(SR)(x, drive_db=40.0, mix=1.0, tone_hz=3000.0)
    assert float(y.abs().max()) <= 1.0


def test_chain_concatenates_and_describes() -> None:
    chain = EffectChain({"comp": Compressor(SR), "gain": Gain(SR), "dist": Distortion(SR)})
    assert chain.n_params == 6 + 1 + 3
    assert chain.param_names[6] == "gain.gain_db"
    x = noise((2, 1, 500), seed=10, dtype=torch.float64) * 0.3
    p = torch.rand(2, chain.n_params, dtype=torch.float64)
    y = chain(x, p)
    manual = Distortion(SR)(Gain(SR)(Compressor(SR)(x, p[:, :6]), p[:, 6:7]), p[:, 7:])
    assert_close(y, manual, REF_TOL[torch.float64])
    y2 = chain(x, settings={"gain": {"gain_db": -6.0}})
    assert y2.shape == x.shape
    desc = chain.describe_chain(p)
    assert len(desc) == 2 and set(desc[0]) == {"comp", "gain", "dist"}
    assert desc[1]["gain"]["gain_db"] == pytest.approx(float(-24 + 48 * p[1, 6]))
    with pytest.raises(InputError, match="unknown effect"):
        chain(x, settings={"eq": {}})
    with pytest.raises(InputError, match="chain params"):
        chain(x, torch.rand(2, 3))


def test_bad_parameters() -> None:
    comp = Compressor(SR)
    x = torch.zeros(2, 1, 10)
    with pytest.raises(InputError, match="no parameter"):
        comp(x, tresh_db=1.0)
    with pytest.raises(InputError, match="shape"):
        comp(x, torch.rand(2, 5))
    with pytest.raises(InputError, match="batch"):
        comp(x, torch.rand(3, 6))
    with pytest.raises(InputError, match="dimensions"):
        comp(torch.zeros(10))
    with pytest.raises(InputError):
        Compressor(SR, smoothing="iir")  # type: ignore[arg-type]
    assert math.isfinite(float(comp(x).sum()))
