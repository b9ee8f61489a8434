"""functional.fdn: compiled closed-loop transfer, exact time recursion, co-prime delays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.functional.fdn import coprime_delays, fdn_time, fdn_transfer
from tests.helpers import REF_TOL, assert_close, assert_finite, gradcheck64


def _net(n: int = 4, seed: int = 0, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))[0]
    b = torch.randn(n, generator=g, dtype=torch.float64)
    c = torch.randn(n, generator=g, dtype=torch.float64)
    return a.to(dtype), b.to(dtype), c.to(dtype)


def _lines(m: list[int], n_bins: int, radius: float, dtype: torch.dtype) -> torch.Tensor:
    w = torch.linspace(0, math.pi, n_bins, dtype=torch.float64)
    d = torch.tensor(m, dtype=torch.float64)
    resp = radius**d * torch.exp(-1j * w.unsqueeze(-1) * d)
    return resp.to(torch.complex64 if dtype == torch.float32 else torch.complex128)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_equals_batched_solve(dtype: torch.dtype) -> None:
    a, b, c = _net(6, dtype=dtype)
    g = _lines([31, 37, 41, 43, 47, 53], 513, 0.999, dtype)
    y_k = fdn_transfer(g, feedback_matrix=a, input_gains=b, output_gains=c, method="kernel")
    y_s = fdn_transfer(g.to(torch.complex128), feedback_matrix=a.double(), input_gains=b.double(),
                       output_gains=c.double(), method="solve")
    scale = float(y_s.abs().max())
    tol = REF_TOL[dtype]
    assert_close(y_k / scale, y_s / scale, tol)


def test_kernel_equals_direct_inverse_formula() -> None:
    a, b, c = _net(3)
    g = _lines([5, 7, 11], 17, 0.99, torch.float64)
    y = fdn_transfer(g, feedback_matrix=a, input_gains=b, output_gains=c)
    ref = []
    for k in range(g.shape[0]):
        gd = torch.diag(g[k])
        h = torch.linalg.inv(torch.eye(3, dtype=g.dtype) - gd @ a.to(g.dtype)) @ gd
        ref.append(c.to(g.dtype) @ h @ b.to(g.dtype))
    assert_close(y, torch.stack(ref), REF_TOL[torch.float64])


def test_kernel_gradcheck_all_inputs() -> None:
    a, b, c = _net(4, seed=3)
    g = _lines([3, 5, 7, 11], 9, 0.95, torch.float64)

    def fn(g: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return fdn_transfer(g, feedback_matrix=a, input_gains=b, output_gains=c, method="kernel")

    gradcheck64(fn, [g.requires_grad_(), a.requires_grad_(), b.requires_grad_(),
                     c.requires_grad_()])


def test_kernel_grads_match_solve_grads() -> None:
    a, b, c = _net(5, seed=4)
    g = _lines([7, 11, 13, 17, 19], 65, 0.97, torch.float64)
    grads = []
    for method in ("kernel", "solve"):
        ins = [t.clone().requires_grad_() for t in (g, a, b, c)]
        y = fdn_transfer(ins[0], feedback_matrix=ins[1], input_gains=ins[2], output_gains=ins[3],
                         method=method)
        (y.abs().pow(2).sum() + y.real.sum()).backward()
        grads.append([t.grad for t in ins])
    for gk, gs in zip(*grads, strict=True):
        assert_close(gk, gs, REF_TOL[torch.float64])


def test_batch_of_one_equals_item_in_batch() -> None:
    a0, b0, c0 = _net(4, seed=1)
    a1, b1, c1 = _net(4, seed=2)
    g = _lines([3, 5, 7, 11], 33, 0.99, torch.float64)
    y = fdn_transfer(g, feedback_matrix=torch.stack([a0, a1]), input_gains=torch.stack([b0, b1]),
                     output_gains=torch.stack([c0, c1]))
    y1 = fdn_transfer(g, feedback_matrix=a1, input_gains=b1, output_gains=c1)
    assert y.shape == (2, 33)
    assert_close(y[1], y1, REF_TOL[torch.float64])


def test_transfer_rejects_bad_shapes() -> None:
    a, b, c = _net(3)
    g = _lines([3, 5, 7], 9, 1.0, torch.float64)
    with pytest.raises(InputError, match="feedback_matrix"):
        fdn_transfer(g, feedback_matrix=a[:2, :2], input_gains=b, output_gains=c)
    with pytest.raises(InputError, match="complex"):
        fdn_transfer(g.real, feedback_matrix=a, input_gains=b, output_gains=c)


def test_time_numba_equals_block_torch_with_filters() -> None:
    a, b, c = _net(4, seed=5)
    sos = torch.tensor([[0.4, 0.3, 0.1, 1.0, -0.5, 0.2], [0.9, 0.0, 0.0, 1.0, -0.1, 0.0]],
                       dtype=torch.float64).expand(4, 2, 6)
    x = torch.randn(2, 700, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kw = dict(delay_samples=[13, 17, 19, 23], feedback_matrix=a, input_gains=b, output_gains=c,
              direct_gain=0.3, attenuation_sos=sos)
    y_n = fdn_time(x, method="numba", **kw)
    y_t = fdn_time(x, method="torch", **kw)
    assert y_n.shape == (2, 700)
    assert_close(y_n, y_t, REF_TOL[torch.float64])


def _time_inputs(n: int = 3, t_len: int = 30) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    a = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))[0] * 0.9
    b = torch.randn(n, generator=g, dtype=torch.float64)
    c = torch.randn(n, generator=g, dtype=torch.float64)
    x = torch.randn(2, t_len, generator=g, dtype=torch.float64)
    sos = torch.tensor([[0.5, 0.2, 0.1, 1.0, -0.3, 0.1], [0.9, -0.1, 0.05, 1.0, 0.2, 0.0]],
                       dtype=torch.float64).expand(n, 2, 6).clone()
    sos[..., :3] += 0.01 * torch.randn(n, 2, 3, generator=g, dtype=torch.float64)
    d = torch.tensor(0.3, dtype=torch.float64)
    return [x, a, b, c, d, sos]


@pytest.mark.parametrize("method", ["numba", "torch"])
def test_time_gradcheck_all_inputs(method: str) -> None:
    """The adjoint backward (transposed network run backwards in time) against finite
    differences, w.r.t. the input, matrix, gains, direct gain and every SOS coefficient."""

    def fn(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor,
           sos: torch.Tensor) -> torch.Tensor:
        return fdn_time(x, delay_samples=[2, 3, 5], feedback_matrix=a, input_gains=b,
                        output_gains=c, direct_gain=d, attenuation_sos=sos, method=method)

    ins = [t.requires_grad_() for t in _time_inputs(t_len=30 if method == "numba" else 16)]
    if method == "numba":
        gradcheck64(fn, ins)
    else:  # the block recursion is slower per call: random-projection check of the same Jacobian
        assert torch.autograd.gradcheck(fn, tuple(ins), fast_mode=True, atol=1e-5, rtol=1e-3)


def test_time_backward_is_one_node_and_methods_agree() -> None:
    """No graph over samples: the output's grad_fn is the custom Function; the numba and the
    block-recursion backward give the same gradients on a longer signal."""
    grads = []
    for method in ("numba", "torch"):
        ins = [t.requires_grad_() for t in _time_inputs(t_len=600)]
        y = fdn_time(ins[0], delay_samples=[7, 11, 13], feedback_matrix=ins[1],
                     input_gains=ins[2], output_gains=ins[3], direct_gain=ins[4],
                     attenuation_sos=ins[5], method=method)
        seen, stack = set(), [y.grad_fn]
        while stack:
            node = stack.pop()
            if node is not None and node not in seen:
                seen.add(node)
                stack.extend(nxt for nxt, _ in node.next_functions)
        names = {type(nd).__name__ for nd in seen}
        assert any(nm.startswith("_FDNTime") for nm in names), names
        assert len(seen) < 40, len(seen)  # a graph unrolled over 600 samples would be thousands
        (y.pow(2).sum() + y[..., ::7].sum()).backward()
        grads.append([t.grad for t in ins])
    for gn, gt in zip(*grads, strict=True):
        assert gn is not None and gt is not None
        assert_finite(gn)
        assert_close(gn, gt, REF_TOL[torch.float64])


def test_time_input_gradient_is_transposed_network() -> None:
    """dL/dx of <w, y> is the transposed FDN (A^T, b <-> c) applied to w reversed in time."""
    x, a, b, c, d, _ = _time_inputs(t_len=200)
    x = x[0].clone().requires_grad_()
    w = torch.randn(200, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = fdn_time(x, delay_samples=[2, 3, 5], feedback_matrix=a, input_gains=b, output_gains=c,
                 direct_gain=d)
    (y * w).sum().backward()
    ref = fdn_time(w.flip(-1), delay_samples=[2, 3, 5], feedback_matrix=a.T, input_gains=c,
                   output_gains=b, direct_gain=d).flip(-1)
    assert x.grad is not None
    assert_close(x.grad, ref, REF_TOL[torch.float64])


def test_time_lossless_energy_is_preserved() -> None:
    """Orthogonal matrix, no attenuation: the energy stored in the delay lines never changes."""
    n = 4
    a, b, _ = _net(n, seed=6)
    m = [7, 11, 13, 17]
    x = torch.zeros(4000, dtype=torch.float64)
    x[0] = 1.0
    # observe every line output: line i's buffer holds the next m_i outputs of line i
    outs = fdn_time(x, delay_samples=m, feedback_matrix=a, input_gains=b,
                    output_gains=torch.eye(n, dtype=torch.float64))  # (N, T)
    energy = torch.zeros(4000 - 20, dtype=torch.float64)
    for i in range(n):
        sq = outs[i].pow(2)
        c = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(sq, 0)])
        t = torch.arange(1, 4000 - 20 + 1)
        energy += c[t + m[i]] - c[t]
    assert_close(energy, torch.full_like(energy, float(b.pow(2).sum())), REF_TOL[torch.float64])


def test_time_degenerate_inputs() -> None:
    a, b, c = _net(2)
    for x in (torch.zeros(50), torch.ones(1), torch.ones(50)):
        y = fdn_time(x, delay_samples=[3, 5], feedback_matrix=a.float() * 0.9,
                     input_gains=b.float(), output_gains=c.float())
        assert y.shape == x.shape
        assert_finite(y)
    assert float(fdn_time(torch.zeros(50), delay_samples=[3, 5], feedback_matrix=a.float(),
                          input_gains=b.float(), output_gains=c.float()).abs().max()) == 0.0


def test_time_rejects_fractional_delays() -> None:
    a, b, c = _net(2)
    with pytest.raises(InputError, match="integer"):
        fdn_time(torch.zeros(8), delay_samples=torch.tensor([2.5, 3.0]), feedback_matrix=a,
                 input_gains=b, output_gains=c)
    with pytest.raises(InputError, match=">= 1"):
        fdn_time(torch.zeros(8), delay_samples=[0, 3], feedback_matrix=a, input_gains=b,
                 output_gains=c)


@pytest.mark.parametrize("n,low,high", [(8, 441, 1764), (4, 10, 60), (16, 100, 2000)])
def test_coprime_delays(n: int, low: int, high: int) -> None:
    d = coprime_delays(n, low=low, high=high, seed=3)
    assert len(d) == n and d == sorted(d) and len(set(d)) == n
    assert all(low <= v <= high for v in d)
    assert all(math.gcd(p, q) == 1 for i, p in enumerate(d) for q in d[i + 1:])
    assert coprime_delays(n, low=low, high=high, seed=3) == d
    assert np.all(np.diff(d) > 0)


def test_coprime_delays_range_too_narrow() -> None:
    with pytest.raises(InputError, match="too narrow"):
        coprime_delays(8, low=10, high=20)
