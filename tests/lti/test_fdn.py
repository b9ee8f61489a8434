"""lti.FDN: invariants, frequency-sampled vs time-domain rendering, stability, JSON round trip."""

from __future__ import annotations

import math

import pytest
import torch

from diffdsp.lti import FDN, FrequencyGrid, build_fdn
from diffdsp.lti.systems import octave_centers_hz
from tests.helpers import Tol, assert_close, assert_finite, gradcheck64


def _edc_t60(h: torch.Tensor, sample_rate: int) -> float:
    """Broadband T30 of a noise-free impulse response (Schroeder, -5 to -35 dB)."""
    e = torch.flip(torch.cumsum(torch.flip(h.double() ** 2, [0]), 0), [0])
    db = 10 * torch.log10(e / e[0])
    sel = (db <= -5) & (db >= -35)
    t = torch.nonzero(sel).squeeze(-1).double() / sample_rate
    a = torch.stack([t, torch.ones_like(t)], -1)
    slope = torch.linalg.lstsq(a, db[sel].unsqueeze(-1)).solution[0, 0]
    return float(-60.0 / slope)


def test_homogeneous_decay_hits_requested_t60_within_2_percent() -> None:
    sr = 16000
    fdn = build_fdn(sr, n_lines=8, nfft=2**14, attenuation="homogeneous", t60_s=0.6,
                    dtype=torch.float64, seed=3)
    h = fdn.impulse_response(int(1.5 * sr), method="time", reverberant_only=True)
    assert abs(_edc_t60(h, sr) / 0.6 - 1.0) < 0.02


def test_lowpass_attenuation_dc_gain_and_decay() -> None:
    grid = FrequencyGrid(2**12, 8000, dtype=torch.float64)
    fdn = FDN(grid, [101, 131, 151, 173], attenuation="lowpass", t60_s=0.3, cutoff_hz=1500.0)
    g = fdn.attenuation.diagonal_response()
    m = fdn.delays.samples
    assert torch.allclose(g[0].real.detach(), 10 ** (-3 * m / (8000 * 0.3)), rtol=1e-6)
    assert bool((g.abs()[-1] < g.abs()[0]).all())  # low-pass: less gain at Nyquist


@pytest.mark.parametrize("attenuation", ["homogeneous", "geq"])
def test_frequency_sampled_ir_equals_time_domain_ir_float32(attenuation: str) -> None:
    sr = 16000
    centers = octave_centers_hz(sr)
    t60 = [0.5] * len(centers) if attenuation == "homogeneous" else \
        list(torch.linspace(0.8, 0.2, len(centers)).tolist())
    fdn = build_fdn(sr, n_lines=8, nfft=2**15, alias_decay_db=30.0, attenuation=attenuation,
                    t60_s=t60 if attenuation == "geq" else 0.5, center_hz=centers,
                    tone_gain_db=torch.linspace(-3, 3, len(centers)).tolist(), direct_gain=0.5,
                    seed=1)
    with torch.no_grad():
        h_f = fdn.impulse_response(method="freq")
    h_t = fdn.impulse_response(method="time")
    err_db = 20 * math.log10(float((h_f - h_t).abs().max()) / float(h_t.abs().max()))
    assert err_db < -60.0, err_db


def test_geq_attenuation_is_stable_by_construction() -> None:
    sr = 48000
    centers = octave_centers_hz(sr)
    fdn = build_fdn(sr, n_lines=4, nfft=2**12, attenuation="geq", t60_s=[1.0] * len(centers),
                    center_hz=centers, seed=0)
    att = fdn.attenuation
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):  # wild per-band T60s, including very long next to very short ones
        with torch.no_grad():
            att.raw_t60.copy_(torch.randn(len(centers), generator=gen) * 20.0)
        assert float(att.peak_gain_db().detach().max()) <= 1e-4
        assert float(att.diagonal_response().detach().abs().max()) <= 1.0 + 1e-5
    h = fdn.render_time(48000)
    assert_finite(h)
    assert float(h[-4800:].abs().max()) <= float(h.abs().max())


def test_fdn_json_round_trip_is_exact() -> None:
    sr = 16000
    centers = octave_centers_hz(sr)
    fdn = build_fdn(sr, n_lines=6, nfft=2**12, attenuation="geq",
                    t60_s=torch.linspace(1.0, 0.3, len(centers)).tolist(), center_hz=centers,
                    tone_gain_db=[1.0] * len(centers), matrix_kind="householder", seed=5)
    with torch.no_grad():
        for p in fdn.parameters():
            p.add_(0.01 * torch.randn_like(p))
        again = FDN.from_dict(fdn.to_dict())
        assert torch.equal(fdn.transfer(), again.transfer())
    assert torch.equal(fdn.render_time(2000), again.render_time(2000))


def test_fdn_gradcheck_and_finite_gradients() -> None:
    grid = FrequencyGrid(32, 8000, alias_decay_db=20.0, dtype=torch.float64)
    fdn = FDN(grid, [3, 5, 7], attenuation="homogeneous", t60_s=0.05)
    names = ["input_gains", "output_gains", "matrix.raw", "attenuation.raw_t60"]
    params = [dict(fdn.named_parameters())[n].detach().clone().requires_grad_() for n in names]

    def fn(*ps: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(fdn, dict(zip(names, ps, strict=True)), ())
        return torch.view_as_real(out)

    gradcheck64(fn, params)
    grid32 = FrequencyGrid(256, 16000, alias_decay_db=30.0)
    centers = octave_centers_hz(16000)
    big = FDN(grid32, [31, 37, 41, 43], attenuation="geq", t60_s=[0.3] * len(centers),
              center_hz=centers, tone_gain_db=[0.0] * len(centers))
    big.impulse_response().pow(2).sum().backward()
    for n, p in big.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, n
            assert_finite(p.grad, n)


def test_time_rendering_gradients_match_frequency_sampling() -> None:
    """render_time(differentiable=True) backpropagates through fdn_time's adjoint: its gradients
    w.r.t. matrix, gains, T60s and tone equal those of the frequency-sampled response (whose
    time aliasing is below -100 dB here)."""
    sr = 8000
    centers = octave_centers_hz(sr)
    grid = FrequencyGrid(2**13, sr, alias_decay_db=120.0, dtype=torch.float64)
    w = torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grads = []
    for method in ("time", "freq"):
        fdn = FDN(grid, [31, 37, 41, 43], attenuation="geq", t60_s=[0.2] * len(centers),
                  center_hz=centers, tone_gain_db=[1.0] * len(centers), seed=2)
        h = (fdn.render_time(2000, differentiable=True) if method == "time"
             else fdn.impulse_response(2000))
        (h * w).sum().backward()
        grads.append({n: p.grad for n, p in fdn.named_parameters() if p.grad is not None})
    assert set(grads[0]) == set(grads[1]) and "matrix.raw" in grads[0]
    for n, g in grads[0].items():
        assert_close(g, grads[1][n], Tol(rtol=1e-5, atol=1e-7 * float(grads[1][n].abs().max())))
    with torch.enable_grad():
        assert not fdn.render_time(100).requires_grad  # no graph (nor stored lines) by default
