"""Feedback FM, wavetable, waveshaping and harmonic-plus-noise synths: references, gradients."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from diffdsp.functional import oscillators as O
from diffdsp.synth import modules as M
from diffdsp.synth.harmonic import HarmonicNoiseSynth
from diffdsp.synth.patch import Patch
from diffdsp.synth.presets import PRESETS, get_preset
from tests.helpers import REF_TOL, Tol, assert_close, assert_finite, gradcheck64

SR = 8000
D = torch.float64


def test_feedback_fm_matches_reference_recursion_and_zero_feedback_is_sine() -> None:
    f = torch.tensor([200.0, 700.0], dtype=D)
    fb = torch.tensor([0.7, 1.2], dtype=D)
    m = torch.randn(2, 120, generator=torch.Generator().manual_seed(0), dtype=D)
    y = O.feedback_fm_operator(f, sample_rate=SR, n_samples=120, feedback=fb, modulator=m,
                               index=0.8)
    ph = O.accumulate_phase(f, sample_rate=SR, n_samples=120)
    ref = torch.zeros(2, 120, dtype=D)
    for b in range(2):  # the DX7 recursion, written out sample by sample (reference only)
        y1 = y2 = 0.0
        for n in range(120):
            u = 2 * math.pi * float(ph[b, n]) + 0.8 * float(m[b, n]) + float(fb[b]) * (y1 + y2) / 2
            ref[b, n] = math.sin(u)
            y1, y2 = float(ref[b, n]), y1
    assert_close(y, ref, REF_TOL[D])
    s = O.feedback_fm_operator(f, sample_rate=SR, n_samples=120, feedback=0.0)
    assert_close(s, O.sine(f, sample_rate=SR, n_samples=120), REF_TOL[D])
    # feedback adds harmonics (towards a saw): the second harmonic grows
    k2 = [float(torch.fft.rfft(O.feedback_fm_operator(
        200.0, sample_rate=SR, n_samples=SR, feedback=b)).abs()[400]) for b in (0.0, 0.8)]
    assert k2[1] > 100 * max(k2[0], 1e-3)


def test_feedback_fm_gradcheck_per_row_and_per_sample() -> None:
    g = torch.Generator().manual_seed(1)
    f = torch.tensor([310.0, 900.0], dtype=D, requires_grad=True)
    fb = torch.tensor([0.6, 1.1], dtype=D, requires_grad=True)
    gradcheck64(lambda a, b: O.feedback_fm_operator(a, sample_rate=SR, n_samples=40, feedback=b),
                [f, fb])
    fv = (300 + 100 * torch.rand(2, 40, generator=g, dtype=D)).requires_grad_(True)
    fbv = torch.rand(2, 40, generator=g, dtype=D).requires_grad_(True)
    m = torch.randn(2, 40, generator=g, dtype=D)
    idx = torch.tensor([0.5, 1.0], dtype=D, requires_grad=True)
    gradcheck64(lambda a, b, i: O.feedback_fm_operator(a, sample_rate=SR, feedback=b,
                                                       modulator=m, index=i), [fv, fbv, idx])


def test_chebyshev_shaper_gives_the_harmonic_weights() -> None:
    n = 800
    x = torch.cos(2 * math.pi * 10 * torch.arange(n, dtype=D) / n)  # 10 cycles
    c = torch.tensor([0.5, -0.25, 0.0, 0.125], dtype=D)
    spec = torch.fft.rfft(O.chebyshev_shaper(x, c)) * 2 / n
    assert_close(spec[[10, 20, 30, 40]].real, c, Tol(rtol=0, atol=1e-10))
    assert float(spec.abs().sum() - spec[[10, 20, 30, 40]].abs().sum()) < 1e-9
    cc = torch.randn(2, 5, dtype=D, requires_grad=True)
    xx = torch.rand(2, 30, dtype=D, requires_grad=True)
    gradcheck64(O.chebyshev_shaper, [xx, cc])


def test_wavetable_scan_interpolates_tables_and_gradcheck() -> None:
    tabs = M.default_wavetables(256).to(D)
    ph = O.accumulate_phase(torch.tensor(50.0, dtype=D), sample_rate=SR, n_samples=400)
    a = O.wavetable_scan(ph, tabs, torch.tensor(0.0, dtype=D))
    assert_close(a, torch.sin(2 * math.pi * ph), Tol(rtol=0, atol=1e-3))
    mid = O.wavetable_scan(ph, tabs, torch.tensor(0.5, dtype=D))  # halfway triangle -> saw
    ref = 0.5 * (O.wavetable(ph, tabs[1]) + O.wavetable(ph, tabs[2]))
    assert_close(mid, ref, REF_TOL[D])
    t = torch.randn(3, 16, dtype=D, requires_grad=True)
    pos = torch.tensor([0.3, 0.8], dtype=D, requires_grad=True)
    phs = torch.rand(2, 20, generator=torch.Generator().manual_seed(2), dtype=D)
    gradcheck64(lambda tt, pp: O.wavetable_scan(phs, tt, pp), [t, pos])


NEW_SPECS = [
    {"type": "fm_operator", "config": {"pitch_mod": True}},
    {"type": "wavetable", "config": {"learnable": True}},
    {"type": "chebyshev", "config": {"n_harmonics": 4}},
]


@pytest.mark.parametrize("spec", NEW_SPECS, ids=lambda s: s["type"])
def test_new_module_gradcheck(spec: dict) -> None:
    module = M.build_module(spec)
    batch, n = 2, 48
    names = list(module.param_ranges)
    u = torch.linspace(0.31, 0.69, len(names), dtype=D)[None].repeat(batch, 1)
    u[1] = u[1] * 0.9 + 0.05
    g = torch.Generator().manual_seed(1)
    inputs = {}
    for port in M.module_ports(module):
        kind = module.port_kinds.get(port, "audio")
        # 303.7 Hz: no sample falls exactly on a wavetable knot (a kink of linear interpolation)
        inputs[port] = (torch.full((batch, 1), 303.7, dtype=D) if kind == "pitch"
                        else torch.rand(batch, n, generator=g, dtype=D) * 2 - 1)
    ctx = M.RenderContext(sample_rate=SR, n_samples=n, batch=batch,
                          note_s=torch.full((batch,), 0.004, dtype=D), dtype=D,
                          device=torch.device("cpu"))

    def fn(uu: torch.Tensor) -> torch.Tensor:
        params = {k: module.param_ranges[k].denormalise(uu[:, i]) for i, k in enumerate(names)}
        return module(inputs, params, ctx).expand(batch, n)

    gradcheck64(fn, [u.requires_grad_(True)], atol=1e-4, rtol=1e-3)


def test_learnable_wavetable_gets_gradients_and_round_trips(tmp_path: Path) -> None:
    patch = get_preset("wavetable", SR)
    patch.synth_modules["osc"] = M.Wavetable(M.default_wavetables(64) * 0.9, learnable=True)
    u = patch.sample(2, generator=torch.Generator().manual_seed(0))
    y = patch(u, n_samples=200)
    assert isinstance(y, torch.Tensor)
    y.square().sum().backward()
    tables = patch.synth_modules["osc"].tables
    assert tables.grad is not None and float(tables.grad.abs().sum()) > 0
    params = {k: float(v[0]) for k, v in patch.denormalise(u).items()}
    loaded, stored = Patch.load(patch.save(tmp_path / "wt.json", params))
    assert stored is not None
    a, b = patch.render(params, n_samples=300), loaded.render(stored, n_samples=300)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    assert_close(a, b, Tol(rtol=0, atol=1e-6))


@pytest.mark.parametrize("name", ["fm_feedback", "wavetable", "waveshaping"])
def test_new_presets_batch_equals_stacked_items(name: str) -> None:
    patch = get_preset(name, SR)
    u = patch.sample(3, generator=torch.Generator().manual_seed(2))
    y = patch(u, n_samples=400)
    assert isinstance(y, torch.Tensor)
    for i in range(3):
        yi = patch(u[i : i + 1], n_samples=400)
        assert isinstance(yi, torch.Tensor)
        assert_close(yi[0], y[i], Tol(rtol=1e-5, atol=1e-6))


def test_waveshaping_preset_pitch_is_the_note() -> None:
    patch = get_preset("waveshaping", 16000)
    y = patch.render({"note.f0_hz": 250.0, "shaper.h2": 0.8, "shaper.drive": 1.0,
                      "index.sustain": 1.0, "env.sustain": 1.0}, n_samples=16000)
    assert isinstance(y, torch.Tensor)
    spec = torch.fft.rfft(y[0, 0] * torch.hann_window(16000)).abs()
    peaks = torch.topk(spec, 2).indices.sort().values.tolist()
    assert peaks == [250, 500]


# --- harmonic-plus-noise (DDSP) -----------------------------------------------------------------


def _hn_controls(batch: int, frames: int, k: int, bands: int,
                 generator: torch.Generator) -> torch.Tensor:
    return torch.rand(batch, frames, 2 + k + bands, generator=generator, dtype=D)


def test_harmonic_noise_from_normalised_matches_physical_controls() -> None:
    synth = HarmonicNoiseSynth(SR, 32)
    u = _hn_controls(2, 6, 5, 9, torch.Generator().manual_seed(0))
    noise_gen = torch.Generator().manual_seed(3)
    y = synth.from_normalised(u, n_harmonics=5, n_samples=160, generator=noise_gen)
    r = synth.param_ranges
    f0 = r["f0_hz"].denormalise(u[..., 0])
    amps = synth.harmonic_amplitudes(f0, r["amplitude"].denormalise(u[..., 1]),
                                     r["harmonic_distribution"].denormalise(u[..., 2:7]))
    # the distribution is normalised over the harmonics below Nyquist
    k = torch.arange(1, 6, dtype=D)
    below = f0.unsqueeze(-1) * k < SR / 2
    assert_close(amps.sum(-1), r["amplitude"].denormalise(u[..., 1]) * below.any(-1),
                 REF_TOL[D])
    assert float(amps[~below].abs().sum()) == 0.0
    ref = synth(f0, amps, u[..., 7:], n_samples=160, generator=torch.Generator().manual_seed(3))
    assert_close(y, ref, REF_TOL[D])


def test_harmonic_noise_gradcheck_batch_and_1000_random_sets() -> None:
    synth = HarmonicNoiseSynth(SR, 8)
    src = torch.Generator().manual_seed(0)
    u = _hn_controls(2, 3, 3, 3, src)
    u[..., 0] = 0.3  # f0 is not differentiated (DDSP: an analysed input)

    def fn(amp_dist_noise: torch.Tensor) -> torch.Tensor:
        full = torch.cat([u[..., :1], amp_dist_noise], -1)
        return synth.from_normalised(full, n_harmonics=3, n_samples=16,
                                     generator=torch.Generator().manual_seed(1))

    # fast mode (random directions): the parts have full Jacobian checks in tests/train
    assert torch.autograd.gradcheck(fn, (u[..., 1:].clone().requires_grad_(True),), atol=1e-5,
                                    fast_mode=True)
    # batch equals stacked items (same noise per item: one generator state per call)
    many = _hn_controls(3, 5, 4, 6, src)
    yb = synth.from_normalised(many, n_harmonics=4, n_samples=64,
                               generator=torch.Generator().manual_seed(2))
    noise_free = many.clone()
    noise_free[..., 6:] = 0.0
    yb0 = synth.from_normalised(noise_free, n_harmonics=4, n_samples=64)
    for i in range(3):
        yi = synth.from_normalised(noise_free[i : i + 1], n_harmonics=4, n_samples=64)
        assert_close(yi[0], yb0[i], REF_TOL[D])
    assert yb.shape == (3, 64)
    # 1000 random valid control sets in one batch: finite, non-zero gradients for each
    big = _hn_controls(1000, 2, 4, 3, src).to(torch.float32).requires_grad_(True)
    y = synth.from_normalised(big, n_harmonics=4, n_samples=16,
                              generator=torch.Generator().manual_seed(4))
    assert_finite(y)
    (y.square().mean(-1) + y.mean(-1)).sum().backward()
    assert big.grad is not None
    assert_finite(big.grad)
    assert bool((big.grad[..., 1:].abs() > 0).flatten(1).any(-1).all())


def test_every_preset_renders_and_differentiates_the_same_on_both_paths() -> None:
    """The compiled CPU kernels and the torch reference path give the same audio and gradients."""
    for name in PRESETS:
        patch = get_preset(name, SR)
        u = patch.sample(1, generator=torch.Generator().manual_seed(1), dtype=D)
        u.requires_grad_(True)
        res = []
        old = O._backend
        try:
            for backend in ("auto", "torch"):
                O._backend = backend
                y = patch(u, n_samples=200, generator=torch.Generator().manual_seed(0))
                assert isinstance(y, torch.Tensor)
                (grad,) = torch.autograd.grad(y.square().sum() + y.sum(), u)
                res.append((y.detach(), grad))
        finally:
            O._backend = old
        assert_close(res[0][0], res[1][0], Tol(rtol=0, atol=1e-10))
        assert_close(res[0][1], res[1][1], Tol(rtol=1e-8, atol=1e-8 * float(res[1][1].abs().max())))
