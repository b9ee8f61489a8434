"""Interference loss (Bargum et al.): minimum at alignment, gradients, degenerate inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.losses.phase import (
    BARGUM_FFT,
    BARGUM_HOP,
    BARGUM_WIN,
    InterferenceLoss,
    interference_loss,
)
from tests.helpers import assert_finite, degenerate_signals, gradcheck64, noise

SR = 16000


def _phase_shifted(phi: float, n: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(n, dtype=torch.float64) / SR
    y = sum(torch.sin(2 * math.pi * f * t + k) for k, f in enumerate((220.0, 660.0, 1500.0)))
    yh = sum(torch.sin(2 * math.pi * f * t + k + phi) for k, f in enumerate((220.0, 660.0, 1500.0)))
    return yh[None], y[None]  # type: ignore[index]


def test_paper_settings() -> None:
    assert BARGUM_FFT == (512, 1024, 2048)
    assert BARGUM_HOP == (50, 120, 240)
    assert BARGUM_WIN == (240, 600, 1200)


def test_magnitude_version_minimised_at_alignment() -> None:
    phis = [0.0, math.pi / 8, math.pi / 4, math.pi / 2, math.pi]
    vals = [float(interference_loss(*_phase_shifted(p))) for p in phis]
    assert vals[0] < 1e-6 * max(vals)
    assert all(a < b for a, b in itertools.pairwise(vals))


def test_power_version_is_minimised_in_quadrature() -> None:
    """Eq. (8) taken literally (S = |STFT|^2): the gap is -2 Re(Y conj(Y_hat)), zero at 90 deg."""
    phis = [0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, math.pi]
    vals = [float(interference_loss(*_phase_shifted(p), power=2.0)) for p in phis]
    assert min(range(5), key=lambda i: vals[i]) == 2  # minimum in quadrature
    assert vals[2] < 0.05 * vals[0]
    assert vals[0] >= max(vals[1:4])  # aligned is (one of) the worst


def test_ignores_magnitude_when_in_phase() -> None:
    y = noise((1, 8000), seed=1)
    assert float(interference_loss(3.0 * y, y)) < 1e-6 * float(interference_loss(-y, y))


def test_gradcheck_and_module() -> None:
    a = noise((1, 24), seed=2, dtype=torch.float64).requires_grad_(True)
    b = noise((1, 24), seed=3, dtype=torch.float64).requires_grad_(True)
    cfg = {"fft_sizes": (16, 8), "hop_sizes": (4, 2), "win_lengths": (12, 8)}
    gradcheck64(lambda u, v: interference_loss(u, v, **cfg), (a, b))
    assert torch.autograd.gradcheck(
        lambda u, v: interference_loss(u, v, power=2.0, normalize=True, **cfg), (a, b),
        fast_mode=True)
    x = noise((2, 8000), seed=4)
    assert InterferenceLoss(reduction="none")(x, x).shape == (2,)
    with pytest.raises(InputError, match="power"):
        InterferenceLoss(power=3.0)


@pytest.mark.parametrize("name", list(degenerate_signals()))
def test_degenerate_finite(name: str) -> None:
    bad = degenerate_signals(4096)[name]
    for a, b in ((bad, bad.clone()), (bad, noise((4096,), seed=5)), (noise((4096,)), bad)):
        a = a.clone().requires_grad_(True)
        v = interference_loss(a[None], b[None])
        (g,) = torch.autograd.grad(v, a)
        assert_finite(v, name)
        assert_finite(g, name)
