"""Tests for diffdsp.grad.spsa: SPSA gradients agree with autodiff; black-box (numpy) processors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from diffdsp._validation import InputError
from diffdsp.effects.eq import ParametricEQ
from diffdsp.grad.spsa import numpy_processor, spsa, spsa_gradient
from tests.helpers import noise

SR = 16000


def test_linear_single_parameter_is_exact() -> None:
    x = noise((3, 50), seed=0, dtype=torch.float64)
    p = torch.rand(3, 1, dtype=torch.float64, requires_grad=True)
    y = spsa(lambda xx, q: xx * q, x, p, epsilon=1e-3)
    w = noise((3, 50), seed=1, dtype=torch.float64)
    (y * w).sum().backward()
    assert p.grad is not None
    torch.testing.assert_close(p.grad[:, 0], (x * w).sum(-1))


def test_spsa_direction_agrees_with_autodiff_on_eq() -> None:
    """Quality bar: cosine(SPSA, autodiff) > 0.9 averaged over random EQ settings."""
    eq = ParametricEQ(SR)
    x = noise((1, 1, 2048), seed=2, dtype=torch.float64) * 0.3
    gen = torch.Generator().manual_seed(3)
    target = eq(x, torch.rand(1, 18, generator=gen, dtype=torch.float64))
    cosines = []
    for _ in range(4):
        p = (0.2 + 0.6 * torch.rand(1, 18, generator=gen, dtype=torch.float64)).requires_grad_()
        y = eq(x, p)
        grad_y = torch.autograd.grad((y - target).square().sum(), y, retain_graph=True)[0]
        auto = torch.autograd.grad(y, p, grad_y)[0]

        def proc(xx: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
            return eq(xx, q)

        est = spsa_gradient(proc, x, p.detach(), grad_y, epsilon=1e-3, n_samples=256,
                            generator=gen)
        cosines.append(float(torch.nn.functional.cosine_similarity(est, auto)))
    print("SPSA-vs-autodiff cosines", cosines, "mean", float(np.mean(cosines)))
    assert float(np.mean(cosines)) > 0.9, cosines


def test_numpy_black_box_filter() -> None:
    """A scipy filter as a black box: SPSA gradient of the gain of a one-pole matches autodiff."""

    def fn(x: np.ndarray, p: np.ndarray) -> np.ndarray:
        pole = 0.5 + 0.4 * p[0]
        return p[1] * scipy.signal.lfilter([1 - pole], [1, -pole], x)

    proc = numpy_processor(fn, per_item=True)
    x = noise((2, 200), seed=4, dtype=torch.float64)
    p = torch.tensor([[0.3, 0.7], [0.6, 0.2]], dtype=torch.float64, requires_grad=True)
    y = spsa(proc, x, p, epsilon=1e-4, n_samples=64, generator=torch.Generator().manual_seed(5))
    w = noise((2, 200), seed=6, dtype=torch.float64)
    (y * w).sum().backward()
    pole = 0.5 + 0.4 * p.detach()[:, 0]
    ref = torch.stack([torch.from_numpy(fn(x[b].numpy(), p.detach()[b].numpy()))
                       for b in range(2)])
    torch.testing.assert_close(y.detach(), ref)
    # d/d gain exactly: <w, y / gain>; estimated with 64 perturbations, 2 parameters
    exact_gain = (w * ref).sum(-1) / p.detach()[:, 1]
    assert p.grad is not None
    torch.testing.assert_close(p.grad[:, 1], exact_gain, rtol=0.25, atol=0.05 * float(
        exact_gain.abs().max()))
    assert torch.isfinite(pole).all()


def test_bounds_and_errors() -> None:
    x = torch.ones(1, 4)
    g = spsa_gradient(lambda xx, q: xx * q[:, :1], x, torch.tensor([[1.0, 0.0]]),
                      torch.ones(1, 4), epsilon=0.1, bounds=(0.0, 1.0), n_samples=8,
                      generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(g).all() and float(g[0, 0]) == pytest.approx(4.0)
    with pytest.raises(InputError, match="epsilon"):
        spsa(lambda xx, q: xx, x, torch.zeros(1, 1), epsilon=0.0)
    with pytest.raises(InputError, match="batch"):
        spsa(lambda xx, q: xx, x, torch.zeros(2, 1))
