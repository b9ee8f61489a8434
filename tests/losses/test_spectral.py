"""Spectral losses: auraloss equality, per-item reduction, gradients, degenerate inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffdsp._validation import InputError
from diffdsp.functional.analysis import a_weighting_db
from diffdsp.losses import _stft_kernels
from diffdsp.losses.spectral import (
    MelSTFTLoss,
    MultiResolutionSTFTLoss,
    RandomResolutionSTFTLoss,
    STFTLoss,
    SumAndDifferenceSTFTLoss,
    WassersteinSpectralLoss,
    a_weighting_fir,
    apply_prefilter,
    multi_resolution_stft_loss,
    spectral_wasserstein_loss,
    stft_loss_terms,
)
from tests.helpers import assert_finite, degenerate_signals, gradcheck64, noise, sine

auraloss = pytest.importorskip("auraloss")

AURALOSS_RTOL = 1e-5  # the bar: equal to auraloss to 1e-5 relative

CONFIGS = [
    {},
    {"w_lin_mag": 1.0},
    {"w_sc": 0.0, "w_log_mag": 1.0, "w_lin_mag": 1.0, "mag_distance": "L2"},
    {"fft_sizes": [256, 64], "hop_sizes": [64, 16], "win_lengths": [256, 48]},
]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_equals_auraloss_per_item_and_batch(cfg: dict) -> None:
    x = noise((3, 1, 6000), seed=1)
    y = noise((3, 1, 6000), seed=2) * 0.5 + 0.5 * x
    ref_batch = auraloss.freq.MultiResolutionSTFTLoss(**cfg)(x, y)
    ours_batch = MultiResolutionSTFTLoss(sc_over_batch=True, **cfg)(x, y)
    assert _rel(ours_batch, ref_batch) < AURALOSS_RTOL
    refs = torch.stack(
        [auraloss.freq.MultiResolutionSTFTLoss(**cfg)(x[i : i + 1], y[i : i + 1]) for i in range(3)]
    )
    per = MultiResolutionSTFTLoss(reduction="none", **cfg)(x, y)
    assert per.shape == (3, 1)
    assert _rel(per[:, 0], refs) < AURALOSS_RTOL


@pytest.mark.parametrize("min_bins", [0, 1 << 40])  # numba kernel / torch path
def test_gradient_equals_auraloss(monkeypatch: pytest.MonkeyPatch, min_bins: int) -> None:
    monkeypatch.setattr(_stft_kernels, "NUMBA_MIN_BINS", min_bins)
    x = noise((2, 1, 5000), seed=3).requires_grad_(True)
    y = noise((2, 1, 5000), seed=4)
    auraloss.freq.MultiResolutionSTFTLoss(w_lin_mag=1.0)(x, y).backward()
    g_ref = x.grad.clone()
    x.grad = None
    MultiResolutionSTFTLoss(w_lin_mag=1.0, sc_over_batch=True)(x, y).backward()
    assert _rel(x.grad, g_ref) < 1e-4


def test_presets() -> None:
    a = MultiResolutionSTFTLoss.auraloss_default()
    assert a.fft_sizes == [1024, 2048, 512] and a.hop_sizes == [120, 240, 50]
    d = MultiResolutionSTFTLoss.ddsp()
    assert d.fft_sizes == [2048, 1024, 512, 256, 128, 64] and d.hop_sizes[0] == 512
    assert d.w_sc == 0.0 and d.w_lin_mag == 1.0
    s = MultiResolutionSTFTLoss.deepafx_st()
    assert s.fft_sizes[-1] == 32768 and s.hop_sizes == [w // 2 for w in s.win_lengths]
    x = noise((1, 40000), seed=5)
    assert float(s(x, x)) == 0.0
    assert float(s(x, 0.5 * x)) > 0.0


def test_reductions_and_terms() -> None:
    x, y = noise((2, 3, 4000), seed=6), noise((2, 3, 4000), seed=7)
    loss = MultiResolutionSTFTLoss(reduction="none", return_terms=True, w_lin_mag=0.5)
    per, terms = loss(x, y)
    assert per.shape == (2, 3) and set(terms) == {"sc", "log_mag", "lin_mag"}
    torch.testing.assert_close(per, terms["sc"] + terms["log_mag"] + 0.5 * terms["lin_mag"])
    mean = MultiResolutionSTFTLoss(w_lin_mag=0.5)(x, y)
    total = MultiResolutionSTFTLoss(w_lin_mag=0.5, reduction="sum")(x, y)
    torch.testing.assert_close(mean, per.mean())
    torch.testing.assert_close(total, per.sum())


def test_batch_of_one_equals_item(dtype: torch.dtype) -> None:
    x, y = noise((4, 3000), seed=8, dtype=dtype), noise((4, 3000), seed=9, dtype=dtype)
    full = multi_resolution_stft_loss(x, y, reduction="none")
    one = multi_resolution_stft_loss(x[2:3], y[2:3], reduction="none")
    torch.testing.assert_close(full[2:3], one)


# the torch path's L1 terms are also covered by test_torch_fallback_equals_numba
@pytest.mark.parametrize(("use_numba", "mag_distance"), [(True, "L1"), (True, "L2"), (False, "L2")])
def test_gradcheck(monkeypatch: pytest.MonkeyPatch, use_numba: bool, mag_distance: str) -> None:
    if use_numba:
        monkeypatch.setattr(_stft_kernels, "NUMBA_MIN_BINS", 0)
    else:
        monkeypatch.setattr(_stft_kernels, "_HAVE_NUMBA", False)
    x = noise((1, 40), seed=10, dtype=torch.float64).requires_grad_(True)
    y = noise((1, 40), seed=11, dtype=torch.float64).requires_grad_(True)

    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return multi_resolution_stft_loss(
            a, b, fft_sizes=[16, 8], hop_sizes=[4, 2], win_lengths=[12, 8], w_lin_mag=1.0,
            mag_distance=mag_distance, reduction="none",
        )

    gradcheck64(f, (x, y))


def test_torch_fallback_equals_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stft_kernels, "NUMBA_MIN_BINS", 0)
    x = noise((2, 5000), seed=12).requires_grad_(True)
    y = noise((2, 5000), seed=13)
    v1 = multi_resolution_stft_loss(x, y, w_lin_mag=1.0)
    (g1,) = torch.autograd.grad(v1, x)
    monkeypatch.setattr(_stft_kernels, "_HAVE_NUMBA", False)
    v2 = multi_resolution_stft_loss(x, y, w_lin_mag=1.0)
    (g2,) = torch.autograd.grad(v2, x)
    torch.testing.assert_close(v1, v2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("name", list(degenerate_signals()))
def test_degenerate_inputs_finite(name: str) -> None:
    sig = degenerate_signals(4096)
    bad = sig[name]
    other = noise((4096,), seed=14) * 0.1
    loss = MultiResolutionSTFTLoss(w_lin_mag=1.0)
    for a, b in ((bad, other), (other, bad), (bad, bad.clone())):
        a = a.clone().requires_grad_(True)
        b = b.clone().requires_grad_(True)
        v = loss(a[None], b[None])
        v.backward()
        assert_finite(v, f"{name} value")
        assert_finite(a.grad, f"{name} input grad")
        assert_finite(b.grad, f"{name} target grad")


@settings(max_examples=8, deadline=None)
@given(
    scale=st.sampled_from([0.0, 1e-30, 1e-8, 1.0, 1e4]),
    seed=st.integers(0, 1000),
    kind=st.sampled_from(["noise", "dc", "click", "clip", "sparse"]),
)
def test_property_finite_values_and_grads(scale: float, seed: int, kind: str) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 2048
    if kind == "noise":
        x = torch.randn(n, generator=g)
    elif kind == "dc":
        x = torch.full((n,), float(torch.randn(1, generator=g)))
    elif kind == "click":
        x = torch.zeros(n)
        x[int(torch.randint(0, n, (1,), generator=g))] = 1.0
    elif kind == "clip":
        x = (torch.randn(n, generator=g) * 10).clamp(-1, 1)
    else:
        x = torch.randn(n, generator=g) * (torch.rand(n, generator=g) > 0.99)
    x = (x * scale).requires_grad_(True)
    y = torch.randn(n, generator=g) * 0.3
    for loss in (multi_resolution_stft_loss, spectral_wasserstein_loss):
        v = loss(x[None], y[None])
        (gx,) = torch.autograd.grad(v, x)
        assert_finite(v)
        assert_finite(gx)


def test_stft_loss_terms_and_single_resolution() -> None:
    x, y = noise((1, 4096), seed=15), noise((1, 4096), seed=16)
    t = stft_loss_terms(x, y, n_fft=512, hop_length=128)
    v = STFTLoss(512, 128, reduction="none")(x, y)
    torch.testing.assert_close(v, t["sc"] + t["log_mag"])
    ref = auraloss.freq.STFTLoss(512, 128, 512)(x[:, None], y[:, None])
    assert _rel(v[0], ref) < AURALOSS_RTOL


def test_errors() -> None:
    x = torch.zeros(1, 100)
    with pytest.raises(InputError, match="same shape"):
        multi_resolution_stft_loss(x, torch.zeros(1, 101))
    with pytest.raises(InputError, match="signal length"):
        multi_resolution_stft_loss(x, x)
    with pytest.raises(InputError, match="reduction"):
        MultiResolutionSTFTLoss(reduction="avg")
    with pytest.raises(InputError, match="equal length"):
        MultiResolutionSTFTLoss(fft_sizes=[512], hop_sizes=[128, 64], win_lengths=[512])
    with pytest.raises(InputError, match="sample_rate"):
        MultiResolutionSTFTLoss(prefilter="a_weighting")


def test_module_follows_dtype_and_has_buffers() -> None:
    loss = MultiResolutionSTFTLoss().double()
    assert loss.window_0.dtype == torch.float64
    assert "window_0" not in loss.state_dict()
    x = noise((1, 8000), seed=17, dtype=torch.float64)
    assert loss(x, x).dtype == torch.float64


def test_a_weighting_fir_response() -> None:
    taps = a_weighting_fir(sample_rate=44100, n_taps=255, dtype=torch.float64)
    h = torch.fft.rfft(taps, n=8192).abs()
    f = torch.linspace(0, 22050, 4097, dtype=torch.float64)
    sel = (f > 200) & (f < 15000)
    err = 20 * torch.log10(h[sel]) - a_weighting_db(f[sel])
    assert float(err.abs().max()) < 1.0
    x = noise((1, 44100), seed=18)
    assert apply_prefilter(x, kind="a_weighting", sample_rate=44100).shape == x.shape
    loss = MultiResolutionSTFTLoss(prefilter="a_weighting", sample_rate=44100)
    assert float(loss(x, x)) < 1e-9
    low = sine(300, 1.0, 44100)[None]
    # A-weighting is -6.6 dB at 300 Hz: the linear-magnitude loss against silence scales by it
    plain = MultiResolutionSTFTLoss(w_sc=0.0, w_log_mag=0.0, w_lin_mag=1.0)
    weighted = MultiResolutionSTFTLoss(w_sc=0.0, w_log_mag=0.0, w_lin_mag=1.0,
                                       prefilter="a_weighting", sample_rate=44100)
    z = torch.zeros_like(low)
    ratio = float(weighted(low, z)) / float(plain(low, z))
    assert abs(ratio - 10 ** (float(a_weighting_db(torch.tensor(300.0))) / 20)) < 0.03
    assert float(weighted(x, 0.5 * x)) > 0.0
    pe = MultiResolutionSTFTLoss(prefilter="pre_emphasis")
    assert float(pe(x, x)) < 1e-9


def test_wasserstein_frequency_is_monotone_in_frequency_distance() -> None:
    sr = 16000
    target = sine(1000, 0.5, sr)[None]
    dists_w, dists_l1 = [], []
    for f in (1100, 1500, 2500, 4000):
        x = sine(f, 0.5, sr)[None]
        dists_w.append(float(spectral_wasserstein_loss(x, target, n_fft=1024, hop_length=256,
                                                       axis="frequency")))
        dists_l1.append(float(multi_resolution_stft_loss(
            x, target, fft_sizes=[1024], hop_sizes=[256], win_lengths=[1024], w_sc=0.0,
            w_log_mag=0.0, w_lin_mag=1.0)))
    assert all(a < b for a, b in itertools.pairwise(dists_w))
    # the plain magnitude distance saturates once partials no longer overlap
    assert abs(dists_l1[-1] - dists_l1[-2]) / dists_l1[-1] < 0.05
    # W1 in units of the axis: 3000 Hz apart over 8000 Hz -> ~0.375
    assert abs(dists_w[-1] - 3000 / 8000) < 0.02


def test_wasserstein_time_and_gradcheck() -> None:
    x = noise((1, 2048), seed=19)
    click_a = torch.zeros(1, 2048)
    click_a[0, 500] = 1.0
    click_b = torch.zeros(1, 2048)
    click_b[0, 1500] = 1.0
    noise_a = x * (torch.arange(2048) < 700)
    noise_b = x * (torch.arange(2048) > 1300)
    d_far = spectral_wasserstein_loss(noise_a, noise_b, n_fft=128, hop_length=32, axis="time")
    d_self = spectral_wasserstein_loss(noise_a, noise_a, n_fft=128, hop_length=32, axis="time")
    assert float(d_self) == 0.0 and float(d_far) > 0.3
    a = noise((1, 32), seed=20, dtype=torch.float64).requires_grad_(True)
    b = noise((1, 32), seed=21, dtype=torch.float64)

    def f(u: torch.Tensor) -> torch.Tensor:
        return spectral_wasserstein_loss(u, b, n_fft=8, hop_length=4, axis="time", p=2)

    gradcheck64(f, (a,))
    mod = WassersteinSpectralLoss(axis="frequency", fft_sizes=(128, 64), hop_sizes=(32, 16))
    assert float(mod(click_a, click_a)) == 0.0


def test_mel_random_and_stereo() -> None:
    x, y = noise((2, 8000), seed=22), noise((2, 8000), seed=23)
    mel = MelSTFTLoss(16000, fft_sizes=(512, 256), hop_sizes=(128, 64), win_lengths=(512, 256),
                      n_mels=40, reduction="none")
    v = mel(x, y)
    assert v.shape == (2,) and bool((v > 0).all())
    assert float(mel(x, x).abs().max()) == 0.0
    r1 = RandomResolutionSTFTLoss(resolutions=2, max_fft_size=1024, seed=3)
    r2 = RandomResolutionSTFTLoss(resolutions=2, max_fft_size=1024, seed=3)
    assert r1.current.fft_sizes == r2.current.fft_sizes
    assert math.isfinite(float(r1(x, y)))
    sd = SumAndDifferenceSTFTLoss(fft_sizes=(512,), hop_sizes=(128,), win_lengths=(512,),
                                  reduction="none")
    st_x = noise((2, 2, 4000), seed=24)
    assert sd(st_x, st_x).shape == (2,)
    swapped = st_x.flip(-2)  # L/R swap: same mid, negated side -> identical magnitudes
    assert float(sd(swapped, st_x).abs().max()) < 1e-5
    with pytest.raises(InputError, match="stereo"):
        sd(noise((3, 4000)), noise((3, 4000)))


def test_mel_gradcheck() -> None:
    mel = MelSTFTLoss(8000, fft_sizes=(16,), hop_sizes=(4,), win_lengths=(16,), n_mels=4,
                      w_lin_mag=1.0).double()
    a = noise((1, 32), seed=25, dtype=torch.float64).requires_grad_(True)
    b = noise((1, 32), seed=26, dtype=torch.float64)
    gradcheck64(lambda u: mel(u, b), (a,))


def test_equals_auraloss_float64() -> None:
    x = noise((2, 1, 6000), seed=27, dtype=torch.float64)
    y = noise((2, 1, 6000), seed=28, dtype=torch.float64)
    ref = auraloss.freq.MultiResolutionSTFTLoss(w_lin_mag=1.0)
    for f in ref.stft_losses:
        f.window = f.window.double()
    ours = MultiResolutionSTFTLoss(w_lin_mag=1.0, sc_over_batch=True).double()
    assert _rel(ours(x, y), ref(x, y)) < 1e-10
