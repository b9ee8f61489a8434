"""Time-domain losses: auraloss equality, ESR from a start index, delay invariance, gradients."""

from __future__ import annotations

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.losses.time import (
    DCLoss,
    DelayInvariantLoss,
    ESRLoss,
    L1Loss,
    MSELoss,
    SISDRLoss,
    align_by_xcorr,
    dc_loss,
    esr_loss,
    l1_loss,
    mse_loss,
    si_sdr_loss,
)
from tests.helpers import assert_finite, degenerate_signals, gradcheck64, noise

auraloss = pytest.importorskip("auraloss")


def test_equal_auraloss() -> None:
    x, y = noise((3, 2, 1000), seed=1), noise((3, 2, 1000), seed=2)
    pairs = [
        (ESRLoss(), auraloss.time.ESRLoss()),
        (DCLoss(), auraloss.time.DCLoss()),
        (SISDRLoss(), auraloss.time.SISDRLoss()),
    ]
    for ours, ref in pairs:
        torch.testing.assert_close(ours(x, y), ref(x, y), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(L1Loss()(x, y), torch.nn.functional.l1_loss(x, y))
    torch.testing.assert_close(MSELoss()(x, y), torch.nn.functional.mse_loss(x, y))


def test_reductions_per_item() -> None:
    x, y = noise((4, 500), seed=3), noise((4, 500), seed=4)
    for fn in (l1_loss, mse_loss, esr_loss, dc_loss, si_sdr_loss):
        per = fn(x, y, reduction="none")
        assert per.shape == (4,)
        torch.testing.assert_close(fn(x, y), per.mean())
        torch.testing.assert_close(fn(x, y, reduction="sum"), per.sum())
        torch.testing.assert_close(fn(x[1:2], y[1:2], reduction="none"), per[1:2])


def test_esr_start() -> None:
    y = noise((1, 100), seed=5)
    x = y.clone()
    x[:, :50] = 0.0  # errors only before the start index
    assert float(esr_loss(x, y, start=50)) == 0.0
    assert float(esr_loss(x, y)) > 0.3
    with pytest.raises(InputError, match="start"):
        esr_loss(x, y, start=100)


def test_si_sdr_scale_invariance() -> None:
    y = noise((2, 800), seed=6)
    e = noise((2, 800), seed=7) * 0.1
    torch.testing.assert_close(si_sdr_loss(y + e, y), si_sdr_loss(3.0 * (y + e), y), rtol=1e-4,
                               atol=1e-4)


def test_align_and_delay_invariant() -> None:
    y = noise((3, 400), seed=8)
    lags = [0, 7, -5]
    x = torch.stack([torch.roll(y[i], -lag) for i, lag in enumerate(lags)])
    x[1, -7:] = 0.0
    x[2, :5] = 0.0
    _aligned, lag = align_by_xcorr(x, y)
    assert lag.tolist() == lags
    loss = DelayInvariantLoss(ESRLoss(), max_lag=20)
    assert float(loss(x, y)) < 0.05
    assert float(ESRLoss()(x, y)) > 1.0
    xg = x.clone().requires_grad_(True)
    loss(xg, y).backward()
    assert_finite(xg.grad)


def test_gradcheck() -> None:
    x = noise((2, 16), seed=9, dtype=torch.float64).requires_grad_(True)
    y = noise((2, 16), seed=10, dtype=torch.float64).requires_grad_(True)
    for fn in (l1_loss, mse_loss, esr_loss, dc_loss, si_sdr_loss):
        gradcheck64(lambda a, b, fn=fn: fn(a, b, reduction="none"), (x, y))  # type: ignore[misc]


@pytest.mark.parametrize("name", list(degenerate_signals()))
def test_degenerate_finite(name: str) -> None:
    bad = degenerate_signals(512)[name]
    for fn in (l1_loss, mse_loss, esr_loss, dc_loss, si_sdr_loss):
        for a, b in ((bad, bad.clone()), (bad, noise((512,), seed=11)), (noise((512,)), bad)):
            a = a.clone().requires_grad_(True)
            v = fn(a[None], b[None])
            (g,) = torch.autograd.grad(v, a)
            assert_finite(v, f"{fn.__name__} on {name}")
            assert_finite(g, f"{fn.__name__} grad on {name}")
