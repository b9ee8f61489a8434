"""LPC: step-up/step-down recursions, Levinson against a Toeplitz solve, stability, gradients."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl
import scipy.signal as ss
import torch

from diffdsp.functional import iir, lpc
from tests.helpers import REF_TOL, assert_close, assert_finite, gradcheck64, noise


def step_up_reference(k: np.ndarray) -> np.ndarray:
    """Textbook Levinson step-up in float64 loops (Makhoul 1975 eq. 41)."""
    a = np.zeros(0)
    for m, km in enumerate(k, start=1):
        new = np.zeros(m)
        for i in range(m - 1):
            new[i] = a[i] + km * a[m - 2 - i]
        new[m - 1] = km
        a = new
    return a


def test_reflection_to_lpc_matches_reference(dtype: torch.dtype) -> None:
    k = np.random.default_rng(0).uniform(-0.95, 0.95, (4, 12))
    a = lpc.reflection_to_lpc(torch.tensor(k, dtype=dtype))
    for i in range(4):
        assert_close(a[i], step_up_reference(k[i]), REF_TOL[dtype])


def test_reflection_gives_stable_filters_and_round_trips() -> None:
    k = torch.rand(200, 16, dtype=torch.float64) * 1.8 - 0.9  # |k| < 0.9: np.roots stays exact
    a = lpc.reflection_to_lpc(k)
    radii = [np.abs(np.roots(np.r_[1.0, row])).max() for row in a.numpy()]
    assert max(radii) < 1.0
    assert_close(lpc.lpc_to_reflection(a), k, REF_TOL[torch.float64])
    unstable = torch.tensor([-2.5, 1.0], dtype=torch.float64)  # poles at 2 and 0.5
    assert float(lpc.lpc_to_reflection(unstable).abs().max()) >= 1.0


def test_levinson_matches_toeplitz_solve(dtype: torch.dtype) -> None:
    x = noise((3, 2000), seed=1, dtype=torch.float64)
    x = torch.tensor(ss.lfilter([1.0], [1.0, -0.9, 0.4], x.numpy()))
    r = lpc.autocorrelation(x, 8)
    ref_r = np.stack([np.correlate(row, row, "full")[1999 : 1999 + 9] for row in x.numpy()])
    assert_close(r, ref_r, REF_TOL[torch.float64])
    a, k, err = lpc.levinson(r.to(dtype), 8)
    for i in range(3):
        ref = sl.solve_toeplitz(ref_r[i, :8], -ref_r[i, 1:9])
        assert_close(a[i], ref, REF_TOL[dtype])
        assert_close(err[i : i + 1], [ref_r[i, 0] + ref_r[i, 1:9] @ ref], REF_TOL[dtype])
    assert_close(lpc.reflection_to_lpc(k), a, REF_TOL[dtype])


def test_lpc_analysis_recovers_ar_process() -> None:
    x = noise((1, 40000), seed=2, dtype=torch.float64)
    true_a = torch.tensor([-1.2, 0.6], dtype=torch.float64)
    y = iir.allpole(x, true_a)
    a, g = lpc.lpc_analysis(y, 2)
    assert float((a[0] - true_a).abs().max()) < 0.02
    assert abs(float(g[0]) ** 2 / 40000 - 1.0) < 0.05  # residual power = unit input variance
    silent_a, silent_g = lpc.lpc_analysis(torch.zeros(2, 256), 4)
    assert_finite(silent_a)
    assert_finite(silent_g)


def test_lpc_gradients() -> None:
    gradcheck64(lpc.reflection_to_lpc, (torch.rand(2, 5, dtype=torch.float64, requires_grad=True)
                                        * 1.8 - 0.9,), gradgrad=True)
    r = torch.tensor([[2.0, 0.9, 0.3, -0.1]], dtype=torch.float64, requires_grad=True)
    gradcheck64(lambda rr: lpc.levinson(rr)[0], (r,))
    gradcheck64(lpc.stable_lpc, (torch.randn(3, 4, dtype=torch.float64, requires_grad=True),))


def test_time_varying_reflection_all_pole_gradcheck() -> None:
    """Per-sample reflection coefficients through the time-varying all-pole filter."""
    raw = torch.randn(1, 12, 3, dtype=torch.float64, requires_grad=True)
    x = noise((1, 12), seed=3, dtype=torch.float64).requires_grad_()
    gradcheck64(lambda r, xx: iir.allpole(xx, lpc.stable_lpc(r)), (raw, x))
