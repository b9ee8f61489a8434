"""Envelopes and modulation: ADSR closed forms, no NaN on short notes, gradients, LFOs."""

from __future__ import annotations

import math

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.functional import envelopes as E
from diffdsp.functional import oscillators as O
from tests.helpers import REF_TOL, assert_close, assert_finite, gradcheck64


def test_adsr_closed_form(dtype: torch.dtype) -> None:
    sr = 1000
    env = E.adsr(attack_s=torch.tensor(0.010, dtype=dtype), decay_s=0.020, sustain=0.5,
                 release_s=0.030, note_s=0.050, sample_rate=sr, n_samples=100)
    t = torch.arange(100, dtype=torch.float64) / sr
    ref = torch.where(t < 0.01, t / 0.01, torch.where(t < 0.03, 1 - 0.5 * (t - 0.01) / 0.02, 0.5))
    ref = torch.where(t > 0.05, 0.5 * (1 - ((t - 0.05) / 0.03).clamp(0, 1)), ref)
    tol = REF_TOL[dtype] if dtype == torch.float64 else type(REF_TOL[dtype])(1e-5, 1e-6)
    assert_close(env, ref, tol)


def test_note_shorter_than_attack_has_no_nan_and_finite_gradients() -> None:
    params = {k: torch.tensor(v, requires_grad=True) for k, v in
              {"attack_s": 0.5, "decay_s": 0.1, "sustain": 0.7, "release_s": 0.05,
               "note_s": 0.01}.items()}
    env = E.adsr(**params, sample_rate=8000, n_samples=1000)
    assert_finite(env)
    # releases from the level reached at note-off (0.01 / 0.5 = 0.02)
    assert abs(float(env.detach()[80]) - 0.02) < 1e-3
    env.sum().backward()
    for name, p in params.items():
        assert p.grad is not None and math.isfinite(float(p.grad)), name
    assert float(params["attack_s"].grad) != 0.0


def test_zero_times_are_finite() -> None:
    env = E.adsr(attack_s=0.0, decay_s=0.0, sustain=0.3, release_s=0.0, note_s=0.0,
                 sample_rate=8000, n_samples=64)
    assert_finite(env)
    assert float(env.max()) <= 1.0


def test_adsr_gradcheck_all_parameters() -> None:
    vals = [0.004, 0.006, 0.5, 0.005, 0.012]
    ps = [torch.tensor([v, v * 1.3], dtype=torch.float64, requires_grad=True) for v in vals]

    def fn(a: torch.Tensor, d: torch.Tensor, s: torch.Tensor, r: torch.Tensor,
           n: torch.Tensor) -> torch.Tensor:
        return E.adsr(attack_s=a, decay_s=d, sustain=s, release_s=r, note_s=n,
                      sample_rate=1000, n_samples=40)

    # kinks sit exactly on samples only for special values; these are off-grid
    ps = [p + 0.00037 for p in ps]
    gradcheck64(fn, [p.detach().requires_grad_(True) for p in ps])


def test_adsr_batch_equals_items() -> None:
    a = torch.tensor([0.01, 0.2, 0.05])
    env = E.adsr(attack_s=a, decay_s=0.1, sustain=0.5, release_s=0.1, note_s=0.15,
                 sample_rate=8000, n_samples=3000)
    for i in range(3):
        one = E.adsr(attack_s=a[i], decay_s=0.1, sustain=0.5, release_s=0.1, note_s=0.15,
                     sample_rate=8000, n_samples=3000)
        assert torch.equal(env[i], one)


def test_adsr_errors() -> None:
    with pytest.raises(InputError, match="attack_s"):
        E.adsr(attack_s=-1.0, decay_s=0.1, sustain=0.5, release_s=0.1, note_s=0.1,
               sample_rate=8000, n_samples=10)
    with pytest.raises(InputError, match="sustain"):
        E.adsr(attack_s=0.1, decay_s=0.1, sustain=1.5, release_s=0.1, note_s=0.1,
               sample_rate=8000, n_samples=10)


@pytest.mark.parametrize("shape", E.LFO_SHAPES)
def test_lfo_shapes_bounded_and_periodic(shape: str) -> None:
    g = torch.Generator().manual_seed(0)
    y = E.lfo(torch.tensor([2.0, 5.0]), sample_rate=1000, n_samples=2000, shape=shape,
              depth=torch.tensor([0.5, 1.0]), generator=g)
    assert y.shape == (2, 2000)
    assert float(y[0].abs().max()) <= 0.5 + 1e-6 and float(y[1].abs().max()) <= 1.0 + 1e-6
    if shape != "sample_and_hold":
        assert_close(y[:, :500], y[:, 1000:1500], type(REF_TOL[torch.float32])(1e-4, 1e-4))
    else:  # constant within each cycle
        assert len(torch.unique(y[0, :500])) == 1


def test_lfo_depth_gradient_and_tremolo_ring_am_mix() -> None:
    d = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    gradcheck64(lambda dd: E.lfo(torch.tensor(3.0, dtype=torch.float64), sample_rate=1000,
                                 n_samples=30, depth=dd), [d])
    x = torch.ones(8)
    assert_close(E.tremolo(x, rate_hz=125.0, depth=0.0, sample_rate=1000), x,
                 REF_TOL[torch.float32])
    assert_close(E.ring_mod(x, -x), -x, REF_TOL[torch.float32])
    assert_close(E.amplitude_mod(x, torch.zeros(8), depth=0.7), x / 1.7, REF_TOL[torch.float32])
    assert_close(E.mix([x, 2 * x], torch.tensor([0.5, 0.25])), x, REF_TOL[torch.float32])
    assert_close(E.vca(x, 0.5), 0.5 * x, REF_TOL[torch.float32])
    with pytest.raises(InputError):
        E.mix([])


@pytest.mark.skipif(not O._HAVE_NUMBA, reason="numba not installed")
def test_compiled_adsr_and_lfo_match_torch_path() -> None:
    g = torch.Generator().manual_seed(0)
    d = torch.float64
    ps = [torch.rand(6, generator=g, dtype=d) * 0.01 for _ in range(5)] + [
        torch.rand(6, generator=g, dtype=d) + 0.5]
    ps[2] = ps[2] * 100  # sustain in [0, 1]
    ps[0][0] = 0.0  # attack on the half-sample floor
    ps[4][1] = 0.004  # note-off exactly on a sample (gradient split as torch.minimum does)
    ps = [p.requires_grad_(True) for p in ps]

    def run() -> torch.Tensor:
        return E.adsr(attack_s=ps[0], decay_s=ps[1], sustain=ps[2], release_s=ps[3],
                      note_s=ps[4], peak=ps[5], sample_rate=8000, n_samples=200)

    old = O._backend
    try:
        outs, grads = [], []
        for backend in ("auto", "torch"):
            O._backend = backend
            y = run()
            outs.append(y)
            grads.append(torch.autograd.grad(y.pow(2).sum(), ps))
            for shape in E.LFO_SHAPES[:4]:
                rate = torch.tensor([3.0, 7.0], dtype=d)
                outs.append(E.lfo(rate, sample_rate=1000, n_samples=500, shape=shape,
                                  depth=torch.tensor([0.5, 1.0], dtype=d)))
    finally:
        O._backend = old
    for a, b in zip(outs[:5], outs[5:], strict=True):
        assert_close(a, b, type(REF_TOL[d])(1e-12, 1e-12))
    for a, b in zip(*grads, strict=True):
        assert_close(a, b, type(REF_TOL[d])(1e-9, 1e-9))
