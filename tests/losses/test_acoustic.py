"""Acoustic losses: EDC (bands), EDR, power convergence, colourless-FDN losses."""

from __future__ import annotations

import math

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.losses.acoustic import (
    EDCLoss,
    EDRLoss,
    PowerConvergenceLoss,
    edc_loss,
    edr_loss,
    power_convergence_loss,
    sparsity_loss,
    spectral_flatness_loss,
)
from tests.helpers import assert_finite, degenerate_signals, gradcheck64, noise

SR = 16000


def _rir(t60_s: float, n: int = 8000, seed: int = 0, dtype: torch.dtype = torch.float32
         ) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / SR
    return (noise((n,), seed=seed, dtype=torch.float64)
            * torch.exp(-3 * math.log(10) * t / t60_s)).to(dtype)


def test_edc_loss_closed_form_broadband() -> None:
    # two pure exponential decays: EDC_dB(t) = -60 t / T60 exactly (no truncation for long n)
    n = 48000
    t = torch.arange(n, dtype=torch.float64) / SR
    h1 = torch.exp(-3 * math.log(10) * t / 0.4)
    h2 = torch.exp(-3 * math.log(10) * t / 0.5)
    e1, e2 = -60 * t / 0.4, -60 * t / 0.5
    floor = -140.0
    e1c, e2c = e1.clamp_min(floor), e2.clamp_min(floor)
    want = ((e2c - e1c).square().sum() / e1c.square().sum()).item()
    got = edc_loss(h2[None], h1[None], bands="broadband").item()
    assert abs(got - want) / want < 0.02


@pytest.mark.parametrize("bands", ["broadband", "octave", "third_octave"])
def test_edc_loss_zero_self_positive_other_and_shapes(bands: str) -> None:
    a = torch.stack([_rir(0.3, seed=1), _rir(0.3, seed=2)])
    b = torch.stack([_rir(0.3, seed=3), _rir(0.15, seed=4)])
    loss = EDCLoss(SR, bands=bands, reduction="none")
    assert float(loss(a, a).abs().max()) == 0.0
    v = loss(b, a)
    assert v.shape == (2,)
    assert float(v[1]) > 5 * float(v[0])  # a different decay costs far more than another noise


def test_edc_loss_trailing_zeros_and_silence_finite() -> None:
    h = _rir(0.2)
    padded = torch.cat([h, torch.zeros(4000)])
    zero = torch.zeros(12000)
    for a, b in ((padded, padded.clone()), (zero, padded), (padded, zero)):
        a = a.clone().requires_grad_(True)
        v = edc_loss(a[None], b[None], sample_rate=SR, bands="octave")
        (g,) = torch.autograd.grad(v, a)
        assert_finite(v)
        assert_finite(g)


@pytest.mark.parametrize("name", list(degenerate_signals()))
def test_acoustic_losses_degenerate(name: str) -> None:
    bad = degenerate_signals(2048)[name]
    other = _rir(0.1, n=2048)
    for fn in (
        lambda a, b: edc_loss(a, b, sample_rate=SR, bands="octave"),
        lambda a, b: edr_loss(a, b, n_fft=256, hop_length=64),
        lambda a, b: power_convergence_loss(a, b, n_fft=256, hop_length=64),
    ):
        for a, b in ((bad, other), (other, bad), (bad, bad.clone())):
            a = a.clone().requires_grad_(True)
            v = fn(a[None], b[None])
            (g,) = torch.autograd.grad(v, a)
            assert_finite(v, name)
            assert_finite(g, name)


def test_gradcheck_acoustic() -> None:
    a = _rir(0.005, n=32, seed=5, dtype=torch.float64).requires_grad_(True)
    b = _rir(0.01, n=32, seed=6, dtype=torch.float64)
    gradcheck64(lambda u: edc_loss(u[None], b[None], bands="broadband"), (a,))
    assert torch.autograd.gradcheck(
        lambda u: edc_loss(u[None], b[None], sample_rate=SR, bands="octave"), (a,),
        fast_mode=True)
    gradcheck64(lambda u: edr_loss(u[None], b[None], n_fft=8, hop_length=4), (a,))
    gradcheck64(lambda u: power_convergence_loss(u[None], b[None], n_fft=8, hop_length=4,
                                                 smooth_frames=3, smooth_bins=3), (a,))
    m = torch.randn(3, 3, dtype=torch.float64).requires_grad_(True)
    gradcheck64(lambda u: sparsity_loss(u), (m,))
    h = torch.rand(10, dtype=torch.float64).requires_grad_(True)
    gradcheck64(lambda u: spectral_flatness_loss(u), (h,))


def test_power_convergence_and_edr_modules() -> None:
    a, b = _rir(0.3)[None], _rir(0.1)[None]
    assert float(PowerConvergenceLoss(n_fft=256, hop_length=64)(a, a)) == 0.0
    assert float(PowerConvergenceLoss(n_fft=256, hop_length=64)(b, a)) > 0.1
    assert float(EDRLoss(n_fft=256, hop_length=64)(a, a)) == 0.0
    assert float(EDRLoss(n_fft=256, hop_length=64)(b, a)) > 1.0
    with pytest.raises(InputError, match="odd"):
        power_convergence_loss(a, a, smooth_frames=4)


def test_fdn_losses() -> None:
    assert float(spectral_flatness_loss(torch.ones(2, 8))) == 0.0
    assert abs(float(spectral_flatness_loss(torch.full((8,), 2.0))) - 1.0) < 1e-7
    z = torch.polar(torch.ones(8), torch.linspace(0, 3, 8))
    assert float(spectral_flatness_loss(z)) < 1e-6  # complex all-pass response: |H| = 1
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    v = float(sparsity_loss(q))
    assert 0.0 < v < 1.0
    assert abs(float(sparsity_loss(torch.eye(8))) - 1.0) < 1e-9
    with pytest.raises(InputError, match="square"):
        sparsity_loss(torch.zeros(2, 3))
