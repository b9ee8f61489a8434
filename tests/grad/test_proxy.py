"""Tests for diffdsp.grad.proxy: the FiLM TCN proxy, its training, and the five strategies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.effects.gain import Gain
from diffdsp.grad import STRATEGIES, make_strategy
from diffdsp.grad.proxy import ProxyConfig, ProxyTCN, full_hybrid, proxy_loss, train_proxy
from tests.helpers import noise

SR = 16000


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny networks: one thread avoids oversubscription on the shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
SMALL = ProxyConfig(n_params=2, channels=6, n_blocks=3, kernel_size=3, dilation_growth=2)


def _trained_like(seed: int = 0) -> ProxyTCN:
    """A proxy with random (non-identity) weights, float64."""
    torch.manual_seed(seed)
    proxy = ProxyTCN(SMALL).double()
    with torch.no_grad():
        for p in proxy.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return proxy.eval()


def _processor(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """A differentiable two-parameter processor: gain and soft clipping drive."""
    return torch.tanh(x * (1 + 4 * p[:, 1:2, None])) * (0.5 + p[:, :1, None])


def test_proxy_shapes_identity_batch_and_causality() -> None:
    proxy = ProxyTCN(SMALL).double()
    x = noise((3, 2, 64), seed=0, dtype=torch.float64)
    p = torch.rand(3, 2, dtype=torch.float64)
    torch.testing.assert_close(proxy(x, p), x)  # identity at initialisation (zero output layer)
    assert SMALL.receptive_field() == 1 + 2 * (1 + 2 + 4)
    net = _trained_like()
    y = net(x, p)
    assert y.shape == x.shape and not torch.allclose(y, x)
    # a batch of 1 equals the item inside the batch; channels are independent
    torch.testing.assert_close(net(x[1:2], p[1:2]), y[1:2])
    torch.testing.assert_close(net(x[:, 1:], p), y[:, 1:])
    # causal: changing the future does not change the past
    x2 = x.clone()
    x2[..., 40:] += 1.0
    torch.testing.assert_close(net(x2, p)[..., :40], y[..., :40])
    assert not torch.allclose(net(x2, p)[..., 40:], y[..., 40:])
    with pytest.raises(InputError, match="params"):
        net(x, torch.rand(3, 5, dtype=torch.float64))


def test_proxy_gradcheck_and_silence() -> None:
    net = _trained_like(1)
    x = noise((1, 1, 12), seed=1, dtype=torch.float64).requires_grad_(True)
    p = torch.rand(1, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: net(a, b), (x, p))
    z = torch.zeros(2, 1, 32, dtype=torch.float64)
    q = torch.rand(2, 2, dtype=torch.float64, requires_grad=True)
    y = net(z, q)
    y.square().sum().backward()
    assert torch.isfinite(y).all() and q.grad is not None and torch.isfinite(q.grad).all()


def test_full_hybrid_forward_is_processor_backward_is_proxy() -> None:
    net = _trained_like(2)
    x = noise((2, 1, 50), seed=2, dtype=torch.float64).requires_grad_(True)
    p = torch.rand(2, 2, dtype=torch.float64, requires_grad=True)
    w = noise((2, 1, 50), seed=3, dtype=torch.float64)

    def black_box(xx: torch.Tensor, pp: torch.Tensor) -> torch.Tensor:
        return torch.round(_processor(xx, pp) * 64) / 64  # piecewise constant: no gradient

    y = full_hybrid(black_box, net, x, p)
    torch.testing.assert_close(y, black_box(x, p).detach(), rtol=0, atol=0)
    gx, gp = torch.autograd.grad((y * w).sum(), (x, p))
    ref_x, ref_p = torch.autograd.grad((net(x, p) * w).sum(), (x, p))
    torch.testing.assert_close(gx, ref_x)
    torch.testing.assert_close(gp, ref_p)


def test_strategies_forward_and_backward_paths() -> None:
    net = _trained_like(3)
    gen = torch.Generator().manual_seed(0)
    x = noise((2, 1, 40), seed=4, dtype=torch.float64)
    p0 = torch.rand(2, 2, dtype=torch.float64)
    w = noise((2, 1, 40), seed=5, dtype=torch.float64)
    true_y = _processor(x, p0)
    pr = p0.clone().requires_grad_(True)
    true_g = torch.autograd.grad((_processor(x, pr) * w).sum(), pr)[0]
    proxy_y = net(x, p0)
    pr2 = p0.clone().requires_grad_(True)
    proxy_g = torch.autograd.grad((net(x, pr2) * w).sum(), pr2)[0]
    expected_out = {"autodiff": true_y, "spsa": true_y, "proxy": proxy_y,
                    "half_hybrid": proxy_y, "full_hybrid": true_y}
    expected_grad = {"autodiff": true_g, "proxy": proxy_g, "half_hybrid": proxy_g,
                     "full_hybrid": proxy_g}
    for name in STRATEGIES:
        fx = make_strategy(name, _processor, proxy=net if name not in ("autodiff", "spsa")
                           else None, epsilon=1e-4, n_samples=64, generator=gen)
        fx.train()
        p = p0.clone().requires_grad_(True)
        y = fx(x, p)
        torch.testing.assert_close(y.detach(), expected_out[name], msg=name)
        (y * w).sum().backward()
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name in expected_grad:
            torch.testing.assert_close(p.grad, expected_grad[name], msg=name)
        else:  # SPSA: an estimate of the true gradient, same direction
            cos = torch.nn.functional.cosine_similarity(p.grad.flatten(), true_g.flatten(),
                                                        dim=0)
            assert float(cos) > 0.9, float(cos)
        # inference (eval mode): the proxy only for "proxy"
        fx.eval()
        with torch.no_grad():
            y_eval = fx(x, p0)
        ref = proxy_y if name == "proxy" else true_y
        torch.testing.assert_close(y_eval, ref, msg=f"{name} eval")


def test_make_strategy_errors() -> None:
    with pytest.raises(InputError, match="strategy"):
        make_strategy("magic", _processor)
    for name in ("proxy", "half_hybrid", "full_hybrid"):
        with pytest.raises(InputError, match="proxy"):
            make_strategy(name, _processor)
    with pytest.raises(InputError, match="epsilon"):
        make_strategy("spsa", _processor, epsilon=0.0)


def test_train_proxy_learns_a_gain_and_its_gradient() -> None:
    """A proxy of Gain(-12..12 dB) trained briefly: loss falls and its parameter gradient
    agrees in direction with the exact one (the property the hybrids rely on)."""
    gain = Gain(SR, min_db=-12.0, max_db=12.0)
    audio = noise((4, 4000), seed=6) * 0.3
    cfg = ProxyConfig(n_params=1, channels=8, n_blocks=2, kernel_size=3, cond_dim=16)
    res = train_proxy(gain, audio, n_params=1, config=cfg, steps=200, batch_size=8,
                      n_samples=256, lr=5e-3, seed=0)
    first, last = sum(res.losses[:10]) / 10, sum(res.losses[-10:]) / 10
    print("proxy loss", first, "->", last)
    assert last < 0.4 * first
    assert not any(p.requires_grad for p in res.proxy.parameters())
    x = noise((8, 1, 256), seed=7) * 0.25
    target = gain(x, torch.full((8, 1), 0.5))  # 0 dB
    p = torch.rand(8, 1, generator=torch.Generator().manual_seed(8))
    pa = p.clone().requires_grad_(True)
    exact = torch.autograd.grad((gain(x, pa) - target).square().sum(), pa)[0]
    pp = p.clone().requires_grad_(True)
    est = torch.autograd.grad((res.proxy(x, pp) - target).square().sum(), pp)[0]
    agree = (torch.sign(est) == torch.sign(exact)).float().mean()
    cos = torch.nn.functional.cosine_similarity(est.flatten(), exact.flatten(), dim=0)
    print("sign agreement", float(agree), "cosine", float(cos))
    assert float(agree) >= 0.875 and float(cos) > 0.9
    assert res.to_dict()["steps"] == 200


def test_proxy_loss_and_train_errors() -> None:
    x = noise((2, 1, 1000), seed=9)
    assert float(proxy_loss(x, x)) == 0.0
    assert float(proxy_loss(x, 0.5 * x)) > 0.0
    with pytest.raises(InputError, match="32 samples"):
        proxy_loss(x[..., :16], x[..., :16])
    with pytest.raises(InputError, match="n_samples"):
        train_proxy(_processor, torch.zeros(2, 100), n_params=2, n_samples=200, steps=1)
    with pytest.raises(InputError, match="n_params"):
        train_proxy(_processor, torch.zeros(2, 100), n_params=2, n_samples=64, steps=1,
                    config=ProxyConfig(n_params=3))
