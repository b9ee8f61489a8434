"""ParametricEQ: ranges, the three interfaces, exact vs frequency sampling, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch

from diffdsp._validation import InputError
from diffdsp.effects.eq import ParametricEQ
from diffdsp.functional.filters import parametric_eq_sos
from tests.helpers import REF_TOL, Tol, assert_close, assert_finite, degenerate_signals, noise

SR = 44100


def test_param_ranges_cover_every_control() -> None:
    eq = ParametricEQ(SR)
    assert eq.n_bands == 6 and eq.n_params == 18
    assert eq.band_names == ["low_shelf", "band1", "band2", "band3", "band4", "high_shelf"]
    for band in eq.band_names:
        for suffix, unit in (("cutoff_hz", "Hz"), ("q", ""), ("gain_db", "dB")):
            r = eq.param_ranges[f"{band}_{suffix}"]
            assert r.unit == unit
            if suffix == "cutoff_hz":
                assert 0 < r.min < r.max < SR / 2
    assert ParametricEQ(SR, n_bands=3).n_params == 9


@pytest.mark.parametrize("method", ["exact", "freq"])
def test_zero_gain_is_identity(method: str, dtype: torch.dtype) -> None:
    eq = ParametricEQ(SR, method=method)
    x = noise((2, 2, 3000), seed=1, dtype=dtype)
    assert_close(eq(x), x, REF_TOL[dtype])


def test_matches_scipy_sosfilt_of_the_designed_sections() -> None:
    eq = ParametricEQ(SR)
    kwargs = {"low_shelf_gain_db": 6.0, "band2_gain_db": -9.0, "band2_q": 3.0,
              "band4_gain_db": 4.0, "high_shelf_gain_db": -3.0, "high_shelf_cutoff_hz": 9000.0}
    x = noise((1, 1, 4000), seed=2, dtype=torch.float64)
    y = eq(x, **kwargs)
    controls = eq.controls(x, **kwargs)
    sos = parametric_eq_sos(controls, sample_rate=SR)[0].numpy()
    assert_close(y[0, 0], ss.sosfilt(sos, x[0, 0].numpy()), REF_TOL[torch.float64])
    # the band gains are where they should be
    _, h = ss.sosfreqz(sos, [float(controls[0, 2, 0])], fs=SR)
    assert abs(20 * np.log10(abs(h[0])) - (-9.0)) < 0.5


def test_exact_and_freq_methods_agree() -> None:
    x = noise((2, 1, 5000), seed=3, dtype=torch.float64)
    params = torch.rand(2, 18, dtype=torch.float64)
    y_exact = ParametricEQ(SR, method="exact")(x, params)
    y_freq = ParametricEQ(SR, method="freq")(x, params)
    assert_close(y_freq, y_exact, Tol(rtol=1e-7, atol=1e-9))  # fft_filter's tail_tol


def test_interfaces_agree_and_batch_equals_items() -> None:
    eq = ParametricEQ(SR)
    x = noise((3, 2, 2000), seed=4)
    params = torch.rand(3, eq.n_params)
    y = eq(x, params)
    for i in range(3):
        torch.testing.assert_close(eq(x[i : i + 1], params[i : i + 1]), y[i : i + 1],
                                   rtol=0, atol=0)
    phys = eq.denormalise(params[:1])
    y_kw = eq(x[:1], **{k: v for k, v in phys.items()})
    torch.testing.assert_close(y_kw, y[:1], rtol=1e-5, atol=1e-6)
    y_c = eq(x, controls=eq.controls(x, params))
    torch.testing.assert_close(y_c, y, rtol=0, atol=0)


def test_gradients_wrt_normalised_params_and_signal() -> None:
    eq = ParametricEQ(SR)
    x = noise((1, 1, 64), seed=5, dtype=torch.float64).requires_grad_()
    params = torch.rand(1, 18, dtype=torch.float64).mul(0.8).add(0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda xx, p: eq(xx, p), (x, params), eps=1e-6, atol=1e-5,
                                    rtol=1e-3)


@pytest.mark.parametrize("method", ["exact", "freq"])
def test_degenerate_signals_finite_gradients(method: str) -> None:
    eq = ParametricEQ(SR, method=method)
    for name, sig in degenerate_signals(2048).items():
        params = torch.rand(1, 18).requires_grad_()
        y = eq(sig[None, None], params)
        y.square().mean().backward()
        assert_finite(y, name)
        assert params.grad is not None
        assert_finite(params.grad, name)


def test_bad_inputs() -> None:
    eq = ParametricEQ(SR)
    x = torch.zeros(1, 1, 100)
    with pytest.raises(InputError, match=r"params must have shape \(batch, 18\)"):
        eq(x, torch.rand(1, 5))
    with pytest.raises(InputError, match="no parameter"):
        eq(x, band9_gain_db=3.0)
    with pytest.raises(InputError, match="either controls"):
        eq(x, torch.rand(1, 18), controls=torch.ones(1, 6, 3))
    with pytest.raises(InputError, match=r"controls must have shape \(batch, 6, 3\)"):
        eq(x, controls=torch.ones(1, 5, 3))
    with pytest.raises(InputError, match="cutoff_hz"):
        eq(x, band1_cutoff_hz=30000.0)
    with pytest.raises(InputError, match="n_bands"):
        ParametricEQ(SR, n_bands=1)
    with pytest.raises(InputError, match="method"):
        ParametricEQ(SR, method="fast")
