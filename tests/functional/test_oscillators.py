"""Oscillators: drift-free phase, band-limiting, banks, wavetables, gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.functional import oscillators as O
from tests.helpers import REF_TOL, assert_close, assert_finite, gradcheck64


def test_phase_does_not_drift_after_60_s_at_48k() -> None:
    sr, n, f = 48000, 60 * 48000, 1234.567
    idx = torch.arange(n, dtype=torch.float64)
    exact = torch.remainder(f * idx / sr, 1.0)
    for freq, ns in ((torch.tensor(f, dtype=torch.float32), n),
                     (torch.full((n,), f, dtype=torch.float32), None)):
        ph = O.accumulate_phase(freq, sample_rate=sr, n_samples=ns)
        assert ph.dtype == torch.float32
        # float32 input rounds f itself: compare against the closed form at the rounded f
        f32 = float(torch.tensor(f, dtype=torch.float32))
        exact32 = torch.remainder(f32 * idx / sr, 1.0)
        err = (ph.double() - exact32).abs()
        err = torch.minimum(err, 1.0 - err) * 2 * math.pi
        assert float(err.max()) < 1e-3
    assert float((exact - exact).abs().max()) == 0.0


def test_sine_matches_closed_form(dtype: torch.dtype) -> None:
    sr = 16000
    t = torch.arange(800, dtype=torch.float64) / sr
    ref = torch.sin(2 * math.pi * 440.0 * t + 0.3)
    out = O.sine(torch.tensor(440.0, dtype=dtype), sample_rate=sr, n_samples=800,
                 initial_phase=0.3)
    assert out.dtype == dtype
    assert_close(out, ref, REF_TOL[dtype] if dtype == torch.float64 else type(REF_TOL[dtype])(
        rtol=1e-4, atol=2e-5))


@pytest.mark.parametrize("wave", ["saw", "square", "triangle", "pulse"])
def test_polyblep_reduces_aliasing_and_additive_is_alias_free(wave: str) -> None:
    sr, n, f0 = 44100, 22050, 2500.0

    def alias_db(x: torch.Tensor) -> float:
        spec = torch.fft.rfft(x.double() * torch.hann_window(n, dtype=torch.float64)).abs() ** 2
        fr = torch.arange(spec.shape[0], dtype=torch.float64) * sr / n
        k = fr / f0
        near = (k - k.round()).abs() * f0 < 15
        return 10 * math.log10(float(spec[~near].sum() / spec[near].sum()))

    res = {m: alias_db(O.oscillator(f0, waveform=wave, sample_rate=sr, n_samples=n, method=m))
           for m in O.METHODS}
    assert res["polyblep"] < res["naive"] - 9.0, res
    assert res["additive"] < -100.0, res


@pytest.mark.parametrize("wave", ["saw", "square", "triangle"])
def test_polyblep_close_to_additive_at_low_frequency(wave: str) -> None:
    x = O.oscillator(55.0, waveform=wave, sample_rate=16000, n_samples=4000)
    y = O.oscillator(55.0, waveform=wave, sample_rate=16000, n_samples=4000, method="additive")
    assert float((x - y).pow(2).mean().sqrt()) < 0.06
    assert abs(float(x.pow(2).mean()) - float(y.pow(2).mean())) < 0.02


def test_pulse_width_and_morph() -> None:
    p = O.pulse(50.0, sample_rate=8000, n_samples=8000, width=0.2)
    assert abs(float(p.mean()) - (2 * 0.2 - 1)) < 0.01
    a = O.morph_saw_square(100.0, shape=torch.tensor([0.0, 1.0]), sample_rate=8000, n_samples=64)
    assert_close(a[0], O.saw(100.0, sample_rate=8000, n_samples=64), REF_TOL[torch.float32])
    assert_close(a[1], O.square(100.0, sample_rate=8000, n_samples=64), REF_TOL[torch.float32])


@pytest.mark.parametrize("wave", ["sine", "saw", "square", "triangle"])
def test_gradcheck_wrt_time_varying_frequency(wave: str) -> None:
    f = (300.0 + 50 * torch.rand(1, 24, dtype=torch.float64)).requires_grad_(True)

    def fn(freq: torch.Tensor) -> torch.Tensor:
        return O.oscillator(freq, waveform=wave, sample_rate=8000)

    gradcheck64(fn, [f], atol=1e-4)


def test_batch_equals_stacked_items() -> None:
    f = torch.tensor([110.0, 220.0, 330.0])
    batch = O.saw(f, sample_rate=16000, n_samples=500)
    for i in range(3):
        assert torch.equal(batch[i], O.saw(f[i], sample_rate=16000, n_samples=500))


def test_harmonic_bank_equals_sinusoid_bank_and_masks_nyquist(dtype: torch.dtype) -> None:
    sr, n = 8000, 400
    f0 = torch.linspace(300, 900, n, dtype=dtype)[None]
    amps = torch.rand(1, n, 6, dtype=dtype)
    h = O.harmonic_bank(f0, amps, sample_rate=sr)
    k = torch.arange(1, 7, dtype=dtype)
    s = O.sinusoid_bank(f0[..., None] * k, amps, sample_rate=sr)
    tol = REF_TOL[dtype] if dtype == torch.float64 else type(REF_TOL[dtype])(1e-3, 1e-3)
    assert_close(h, s, tol)
    # harmonics at or above Nyquist are removed
    g = O.harmonic_bank(torch.full((1, n), 1000.0, dtype=dtype), torch.ones(1, n, 6, dtype=dtype),
                        sample_rate=sr)
    ref = O.harmonic_bank(torch.full((1, n), 1000.0, dtype=dtype),
                          torch.ones(1, n, 3, dtype=dtype), sample_rate=sr)
    assert_close(g, ref, tol)


def test_upsample_frames_linear_endpoints() -> None:
    c = torch.tensor([[[0.0], [2.0], [4.0]]])
    up = O.upsample_frames(c, 9)
    assert_close(up[0, :, 0], torch.linspace(0, 4, 9), REF_TOL[torch.float32])


def test_wavetable_values_and_gradcheck() -> None:
    table = torch.sin(2 * math.pi * torch.arange(64, dtype=torch.float64) / 64)
    phase = O.accumulate_phase(torch.tensor(100.0, dtype=torch.float64), sample_rate=8000,
                               n_samples=200)
    y = O.wavetable(phase, table)
    assert float((y - torch.sin(2 * math.pi * phase)).abs().max()) < 2e-3
    gradcheck64(lambda t, p: O.wavetable(p, t),
                [torch.randn(8, dtype=torch.float64).requires_grad_(True),
                 (torch.rand(10, dtype=torch.float64) * 0.9 + 0.01).requires_grad_(True)])


def test_damped_sinusoid_closed_form_and_gradient() -> None:
    r, w = 0.99, 0.3
    re = torch.tensor(r * math.cos(w), dtype=torch.float64, requires_grad=True)
    im = torch.tensor(r * math.sin(w), dtype=torch.float64, requires_grad=True)
    x = O.damped_sinusoid(re, im, n_samples=50)
    n = torch.arange(50, dtype=torch.float64)
    assert_close(x, r**n * torch.cos(w * n), REF_TOL[torch.float64])
    gradcheck64(lambda a, b: O.damped_sinusoid(a, b, n_samples=20), [re, im])


def test_fm_operator_index_zero_is_sine_and_gradient() -> None:
    m = O.sine(30.0, sample_rate=8000, n_samples=100)
    a = O.fm_operator(200.0, sample_rate=8000, n_samples=100, modulator=m, index=0.0)
    assert_close(a, O.sine(200.0, sample_rate=8000, n_samples=100), REF_TOL[torch.float32])
    idx = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    gradcheck64(lambda i: O.fm_operator(200.0, sample_rate=8000, n_samples=50,
                                        modulator=m.double()[:50], index=i), [idx])


def test_noise_is_seeded_and_pink_has_unit_rms() -> None:
    a = O.white_noise((2, 100), generator=torch.Generator().manual_seed(3))
    b = O.white_noise((2, 100), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and float(a.abs().max()) <= 1.0
    p = O.pink_noise((2, 4096), generator=torch.Generator().manual_seed(1))
    assert_finite(p)
    assert_close(p.pow(2).mean(-1), torch.ones(2), REF_TOL[torch.float32])


def test_errors() -> None:
    with pytest.raises(InputError, match="n_samples"):
        O.sine(torch.tensor(100.0), sample_rate=8000)
    with pytest.raises(InputError, match="waveform"):
        O.oscillator(100.0, waveform="noise", sample_rate=8000, n_samples=4)
    with pytest.raises(InputError, match="sample_rate"):
        O.saw(100.0, sample_rate=10, n_samples=4)
    with pytest.raises(InputError, match="amplitudes"):
        O.harmonic_bank(torch.ones(1, 10), torch.ones(1, 9, 2), sample_rate=8000)


@pytest.fixture
def torch_backend():  # type: ignore[no-untyped-def]
    """Run the reference torch path instead of the compiled kernels."""
    old = O._backend
    O._backend = "torch"
    yield
    O._backend = old


def _both(fn):  # type: ignore[no-untyped-def]
    old = O._backend
    try:
        O._backend = "auto"
        a = fn()
        O._backend = "torch"
        b = fn()
    finally:
        O._backend = old
    return a, b


@pytest.mark.skipif(not O._HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("wave", ["sine", "saw", "square", "triangle", "pulse", "morph"])
def test_compiled_oscillator_matches_torch_path_values_and_gradients(wave: str) -> None:
    g = torch.Generator().manual_seed(5)
    d = torch.float64
    fv = (200 + 3000 * torch.rand(2, 300, generator=g, dtype=d)).requires_grad_(True)
    fc = torch.tensor([110.0, 2500.0], dtype=d, requires_grad=True)
    ph = torch.tensor([0.3, 2.0], dtype=d, requires_grad=True)
    prm = torch.tensor([0.3, 0.6], dtype=d, requires_grad=True)

    def run(freq: torch.Tensor, n: int | None, method: str, ph: torch.Tensor = ph,
            prm: torch.Tensor = prm) -> torch.Tensor:
        if wave == "morph":
            return O.morph_saw_square(freq, shape=prm if n else prm[:, None], sample_rate=16000,
                                      n_samples=n, initial_phase=ph if n else 0.0)
        if wave == "pulse":
            return O.pulse(freq, width=prm if n else prm[:, None], sample_rate=16000,
                           n_samples=n, initial_phase=ph if n else 0.0, method=method)
        return O.oscillator(freq, waveform=wave, sample_rate=16000, n_samples=n,
                            initial_phase=ph if n else 0.0, method=method)

    for freq, n in ((fv, None), (fc, 300)):
        for method in ("polyblep", "naive"):
            a, b = _both(lambda: run(freq, n, method))  # noqa: B023
            assert_close(a, b, type(REF_TOL[d])(1e-10, 1e-10))
            w = torch.randn(a.shape, generator=g, dtype=d)
            ins = [t for t in (freq, ph, prm) if t is freq or n is not None or t is prm]
            ga = torch.autograd.grad((a * w).sum(), ins, allow_unused=True)
            if not b.requires_grad:  # naive steps: piecewise constant, zero gradient
                assert all(x is None or float(x.abs().max()) == 0.0 for x in ga)
                continue
            gb = torch.autograd.grad((b * w).sum(), ins, allow_unused=True)
            for x, y in zip(ga, gb, strict=True):
                if x is not None and y is not None:
                    assert_close(x, y, type(REF_TOL[d])(1e-7, 1e-9))
    gradcheck64(lambda f, p, s: run(f, 40, "polyblep", p, s), [fc, ph, prm], atol=1e-4)


@pytest.mark.skipif(not O._HAVE_NUMBA, reason="numba not installed")
def test_compiled_phase_accumulation_is_wrapped_and_float32_accurate() -> None:
    f = torch.full((2, 48000), 1234.567)
    ph, ref = _both(lambda: O.accumulate_phase(f, sample_rate=48000, initial_phase=-0.5))
    err = (ph - ref).abs()
    assert float(torch.minimum(err, 1 - err).max()) < 1e-6
    assert float(ph.min()) >= 0.0 and float(ph.max()) <= 1.0


def test_torch_path_still_tested(torch_backend: None) -> None:
    f = (300.0 + 50 * torch.rand(1, 24, dtype=torch.float64)).requires_grad_(True)
    gradcheck64(lambda x: O.oscillator(x, waveform="saw", sample_rate=8000), [f], atol=1e-4)
