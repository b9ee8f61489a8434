"""All-pass design: closed forms, scipy references, invariants, gradients, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch

from diffdsp._validation import InputError
from diffdsp.functional import allpass as ap
from tests.helpers import REF_TOL, Tol, assert_close, assert_finite, gradcheck64

SR = 48000


def _rand_params(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = 0.999 * torch.rand(n, generator=g, dtype=torch.float64)
    fc = 20.0 * torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * math.log(1000.0))
    a = 1.98 * torch.rand(n, generator=g, dtype=torch.float64) - 0.99
    return r, fc, a


def _freqz(sos: torch.Tensor, n: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    return ss.sosfreqz(sos.detach().double().numpy().reshape(-1, 6), worN=n, fs=SR)


def test_first_order_phase_is_minus_90_deg_at_cutoff(dtype: torch.dtype) -> None:
    for fc in (30.0, 1000.0, 15000.0):
        sos = ap.allpass1_sos(torch.tensor(fc, dtype=dtype), sample_rate=SR)
        assert sos.dtype == dtype
        _, h = ss.sosfreqz(sos.double().numpy()[None], worN=[fc], fs=SR)
        assert abs(np.angle(h[0]) + math.pi / 2) < (1e-5 if dtype == torch.float32 else 1e-10)


def test_second_order_coefficients_and_poles(dtype: torch.dtype) -> None:
    r, fc, _ = _rand_params(16)
    sos = ap.allpass2_sos(r.to(dtype), fc.to(dtype), sample_rate=SR)
    assert sos.shape == (16, 6) and sos.dtype == dtype
    c = r**2
    d = -2 * r * torch.cos(2 * math.pi * fc / SR)
    expected = torch.stack([c, d, torch.ones_like(c), torch.ones_like(c), d, c], -1)
    assert_close(sos, expected, REF_TOL[dtype])
    for i in range(4):
        poles = np.roots(sos[i, 3:].double().numpy())
        assert_close(np.abs(poles), np.full(2, float(r[i])), Tol(1e-3, 1e-6))
        assert_close(
            np.abs(np.angle(poles)), np.full(2, 2 * math.pi * float(fc[i]) / SR), Tol(1e-3, 1e-6)
        )


@pytest.mark.parametrize("kind", ["first", "second", "warped2", "warped1", "thiran"])
def test_magnitude_is_exactly_one(kind: str, dtype: torch.dtype) -> None:
    r, fc, a = (t.to(dtype) for t in _rand_params(64, seed=3))
    if kind == "first":
        sos = ap.allpass1_sos(fc, sample_rate=SR)
    elif kind == "second":
        sos = ap.allpass2_sos(r, fc, sample_rate=SR)
    elif kind == "warped2":
        sos = ap.warped_allpass2_sos(r, fc, a, sample_rate=SR)
    elif kind == "warped1":
        sos = ap.warped_allpass1_sos(fc, a, sample_rate=SR)
    else:
        sos = ap.thiran1_sos(0.1 + 3 * r)
    # exact all-pass structure: numerator = z^-m times the reversed denominator
    second = sos[..., 2] != 0
    assert bool((sos[..., 3] == 1).all())
    if kind in ("second", "warped2"):
        assert bool(second.all())
        torch.testing.assert_close(sos[..., :3], sos[..., 3:].flip(-1), rtol=0, atol=0)
    else:
        assert not bool(second.any())
        torch.testing.assert_close(sos[..., :2], sos[..., 3:5].flip(-1), rtol=0, atol=0)
    for i in range(sos.shape[0]):
        _, h = _freqz(sos[i : i + 1])
        assert np.abs(np.abs(h) - 1.0).max() < (1e-5 if dtype == torch.float32 else 1e-12)
        # stable
        assert np.abs(np.roots(sos[i, 3:].double().numpy())).max() < 1.0


def test_impulse_response_energy_is_one() -> None:
    r, fc, a = _rand_params(3, seed=5)
    sos = ap.allpass_cascade_sos(
        fc, r.clamp_max(0.99), sample_rate=SR, warp=a * 0.5,
        first_order_cutoff_hz=torch.tensor([2000.0], dtype=torch.float64),
    )
    imp = np.zeros(1 << 16)
    imp[0] = 1.0
    h = ss.sosfilt(sos.numpy(), imp)
    assert abs(float(np.sum(h**2)) - 1.0) < 1e-9


def test_warped_equals_substitution_of_warped_delay(dtype: torch.dtype) -> None:
    r, fc, a = _rand_params(8, seed=7)
    sos = ap.warped_allpass2_sos(r.to(dtype), fc.to(dtype), a.to(dtype), sample_rate=SR)
    w = np.linspace(0.01, math.pi - 0.01, 257)
    zinv = np.exp(-1j * w)
    for i in range(8):
        c = float(r[i]) ** 2
        d = -2 * float(r[i]) * math.cos(2 * math.pi * float(fc[i]) / SR)
        ai = float(a[i])
        dz = (ai + zinv) / (1 + ai * zinv)  # the auxiliary first-order all-pass replacing z^-1
        expected = (c + d * dz + dz**2) / (1 + d * dz + c * dz**2)
        _, h = ss.sosfreqz(sos[i : i + 1].double().numpy(), worN=w)
        assert_close(h, expected, Tol(1e-3, 1e-4) if dtype == torch.float32 else Tol(1e-8, 1e-9))
    # leading coefficient is the one of Bargum et al. eq. (5)
    c = r**2
    d = -2 * r * torch.cos(2 * math.pi * fc / SR)
    lead = (c + a**2 + a * d) / (1 + a**2 * c + a * d)
    assert_close(sos[:, 0], lead, REF_TOL[dtype])


def test_warp_zero_is_unwarped_and_warp_moves_low_frequency_resolution() -> None:
    sos0 = ap.warped_allpass2_sos(0.9, 200.0, 0.0, sample_rate=SR)
    assert_close(sos0, ap.allpass2_sos(0.9, 200.0, sample_rate=SR), REF_TOL[torch.float32])
    # with D(z) = (a + z^-1) / (1 + a z^-1), a < 0 stretches the low frequencies (the usual
    # warping factor lambda = -a): the -180 degree point of the prototype moves down
    f = torch.linspace(5.0, 23000.0, 20000, dtype=torch.float64)
    for warp, lower in ((-0.5, True), (0.5, False)):
        sos_w = ap.warped_allpass2_sos(0.9, 2000.0, warp, sample_rate=SR).double()[None]
        ph = ap.allpass_phase(sos_w, f, sample_rate=SR)
        f180 = float(f[torch.argmin((ph + math.pi).abs())])
        assert (f180 < 2000.0) == lower


def test_thiran_low_frequency_delay() -> None:
    for dl in (0.5, 1.0, 1.3):
        sos = ap.thiran1_sos(torch.tensor(dl, dtype=torch.float64))
        _, gd = ss.group_delay((sos[:3].numpy(), sos[3:].numpy()), w=[1e-4])
        assert abs(gd[0] - dl) < 1e-6


def test_phase_and_group_delay_match_scipy(dtype: torch.dtype) -> None:
    r, fc, a = _rand_params(3, seed=11)
    sos = ap.allpass_cascade_sos(
        fc, r.clamp_max(0.95), sample_rate=SR, warp=0.7 * a,
        first_order_cutoff_hz=torch.tensor([300.0, 9000.0], dtype=torch.float64),
    ).to(dtype)
    f = torch.linspace(0.0, SR / 2 - 1.0, 2049, dtype=torch.float64)
    _, h = ss.sosfreqz(sos.double().numpy(), worN=f.numpy(), fs=SR)
    phase = ap.allpass_phase(sos, f.to(dtype), sample_rate=SR)
    tol = Tol(1e-4, 2e-4) if dtype == torch.float32 else Tol(1e-9, 1e-9)
    assert_close(phase, np.unwrap(np.angle(h)), tol)
    gd_ref = np.zeros(f.numel())
    for s in sos.double().numpy():
        gd_ref += ss.group_delay((s[:3], s[3:]), w=f.numpy(), fs=SR)[1]
    gd = ap.allpass_group_delay(sos, f.to(dtype), sample_rate=SR)
    assert_close(gd, gd_ref, Tol(1e-3, 1e-3) if dtype == torch.float32 else Tol(1e-7, 1e-7))
    assert bool((gd > 0).all())


def test_cascade_layout_and_broadcast() -> None:
    fc = torch.tensor([[100.0, 1e3, 1e4], [50.0, 500.0, 5e3]])
    r = torch.tensor([0.9, 0.8, 0.7])  # broadcast over the batch
    w = torch.zeros(2, 3)
    f1 = torch.tensor([[2000.0], [300.0]])
    sos = ap.allpass_cascade_sos(fc, r, sample_rate=SR, warp=w, first_order_cutoff_hz=f1,
                                 first_order_warp=torch.zeros(2, 1))
    assert sos.shape == (2, 4, 6)
    assert_close(sos[1, 1], ap.allpass2_sos(0.8, 500.0, sample_rate=SR), REF_TOL[torch.float32])
    assert_close(sos[1, 3], ap.allpass1_sos(300.0, sample_rate=SR), REF_TOL[torch.float32])
    single = ap.allpass_cascade_sos(fc[1:], r, sample_rate=SR, warp=w[1:],
                                    first_order_cutoff_hz=f1[1:],
                                    first_order_warp=torch.zeros(1, 1))
    torch.testing.assert_close(single[0], sos[1], rtol=0, atol=0)
    only2 = ap.allpass_cascade_sos(fc, r, sample_rate=SR)
    assert only2.shape == (2, 3, 6)


def test_gradcheck_design_parameters() -> None:
    r = torch.tensor([0.3, 0.95], dtype=torch.float64, requires_grad=True)
    fc = torch.tensor([150.0, 7000.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.4, -0.2], dtype=torch.float64, requires_grad=True)
    f1 = torch.tensor([800.0], dtype=torch.float64, requires_grad=True)
    a1 = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    gradcheck64(lambda r_, f_: ap.allpass2_sos(r_, f_, sample_rate=SR), [r, fc])
    gradcheck64(
        lambda r_, f_, a_: ap.warped_allpass2_sos(r_, f_, a_, sample_rate=SR), [r, fc, a],
        gradgrad=True,
    )
    gradcheck64(lambda f_, a_: ap.warped_allpass1_sos(f_, a_, sample_rate=SR), [f1, a1])
    gradcheck64(lambda d_: ap.thiran1_sos(d_), [torch.tensor([0.7, 1.4], requires_grad=True)])
    freqs = torch.tensor([10.0, 150.0, 1000.0, 7000.0, 20000.0], dtype=torch.float64)

    def phase_of(r_: torch.Tensor, f_: torch.Tensor, a_: torch.Tensor, f1_: torch.Tensor,
                 a1_: torch.Tensor) -> torch.Tensor:
        sos = ap.allpass_cascade_sos(f_, r_, sample_rate=SR, warp=a_, first_order_cutoff_hz=f1_,
                                     first_order_warp=a1_)
        return torch.cat([ap.allpass_phase(sos, freqs, sample_rate=SR),
                          ap.allpass_group_delay(sos, freqs, sample_rate=SR)])

    gradcheck64(phase_of, [r, fc, a, f1, a1])


def test_filtering_gradient_through_exact_filter() -> None:
    """Gradient of a loss of the filtered signal with respect to (R, fc, warp), via diffdsp's
    exact sosfilt when it is available."""
    iir = pytest.importorskip("diffdsp.functional.iir")
    x = torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    r = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    fc = torch.tensor([3000.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)

    def run(r_: torch.Tensor, f_: torch.Tensor, a_: torch.Tensor) -> torch.Tensor:
        return iir.sosfilt(ap.warped_allpass2_sos(r_, f_, a_, sample_rate=SR), x)

    y = run(r, fc, a)
    sos = ap.warped_allpass2_sos(r, fc, a, sample_rate=SR).detach().numpy()
    assert_close(y, ss.sosfilt(sos, x.numpy()), REF_TOL[torch.float64])
    gradcheck64(run, [r, fc, a])


def test_degenerate_values_are_finite() -> None:
    sos = ap.allpass2_sos(torch.tensor([0.0, 0.999999]), torch.tensor([1e-3, 23999.0]),
                          sample_rate=SR)
    assert_finite(sos)
    f = torch.tensor([0.0, 1e-3, 24000.0])
    assert_finite(ap.allpass_phase(sos, f, sample_rate=SR))
    assert_finite(ap.allpass_group_delay(sos, f, sample_rate=SR))
    r = torch.tensor([0.0], requires_grad=True)
    ap.allpass_group_delay(
        ap.allpass2_sos(r, torch.tensor([100.0]), sample_rate=SR)[None], f, sample_rate=SR
    ).sum().backward()
    assert r.grad is not None
    assert_finite(r.grad)


def test_rates_44k_to_192k() -> None:
    for sr in (44100, 96000, 192000):
        sos = ap.warped_allpass2_sos(0.99, 40.0, 0.6, sample_rate=sr)
        _, h = ss.sosfreqz(sos.double().numpy()[None], worN=256, fs=sr)
        assert np.abs(np.abs(h) - 1).max() < 1e-5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ap.allpass1_sos(30000.0, sample_rate=SR), "cutoff_hz must be in (0.0, 24000.0)"),
        (lambda: ap.allpass1_sos(0.0, sample_rate=SR), "cutoff_hz"),
        (lambda: ap.allpass2_sos(1.0, 100.0, sample_rate=SR), "radius must be in [0.0, 1.0)"),
        (lambda: ap.allpass2_sos(-0.1, 100.0, sample_rate=SR), "radius"),
        (lambda: ap.warped_allpass2_sos(0.5, 100.0, 1.0, sample_rate=SR), "warp must be in"),
        (lambda: ap.thiran1_sos(0.0), "delay_samples"),
        (lambda: ap.allpass2_sos(0.5, 100.0, sample_rate=10), "sample_rate"),
        (lambda: ap.allpass_phase(torch.zeros(2, 5), torch.zeros(3), sample_rate=SR), "sos"),
        (
            lambda: ap.allpass_cascade_sos(torch.ones(3) * 100, torch.ones(2) * 0.5,
                                           sample_rate=SR),
            "same number of sections",
        ),
    ],
)
def test_bad_input(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        call()  # type: ignore[operator]
