"""Tests for diffdsp.functional.dynamics: gain computer, exact ballistics, compressor family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.functional import dynamics as D
from tests.helpers import REF_TOL, Tol, assert_close, assert_finite, degenerate_signals, noise, sine

SR = 8000


# ----------------------------------------------------------------------------- references
def textbook_gain(x: np.ndarray, t: float, r: float, w: float, mode: str) -> np.ndarray:
    """Giannoulis et al. 2012, eqs. 4 and 7, written branch by branch (output level - input)."""
    y = np.empty_like(x)
    for i, xi in enumerate(x):
        if mode in ("compressor", "limiter"):
            rr = math.inf if mode == "limiter" else r
            if 2 * (xi - t) < -w:
                yi = xi
            elif 2 * abs(xi - t) <= w and w > 0:
                yi = xi + (1 / rr - 1) * (xi - t + w / 2) ** 2 / (2 * w)
            else:
                yi = t + (xi - t) / rr
        else:
            if 2 * (xi - t) > w:
                yi = xi
            elif 2 * abs(xi - t) <= w and w > 0:
                yi = xi + (1 - r) * (xi - t - w / 2) ** 2 / (2 * w)
            else:
                yi = t + (xi - t) * r
        y[i] = yi - xi
    return y


def loop_ballistics(x: np.ndarray, aa: float, ar: float, zi: float = 0.0) -> np.ndarray:
    """DeepAFx-ST eq. 3 as a plain sample loop (test-only reference)."""
    y = np.empty_like(x)
    prev = zi
    for n, xn in enumerate(x):
        a = aa if xn > prev else ar
        prev = a * prev + (1 - a) * xn
        y[n] = prev
    return y


# ----------------------------------------------------------------------------- gain computer
@pytest.mark.parametrize("mode", ["compressor", "limiter", "expander"])
@pytest.mark.parametrize("knee", [0.0, 6.0, 12.0])
def test_gain_computer_matches_textbook(mode: str, knee: float, dtype: torch.dtype) -> None:
    lv = np.linspace(-90.0, 6.0, 1001)
    got = D.gain_computer(torch.tensor(lv, dtype=dtype), threshold_db=-24.0, ratio=3.0,
                          knee_db=knee, mode=mode)  # type: ignore[arg-type]
    want = textbook_gain(lv, -24.0, 3.0, knee, mode)
    assert_close(got, want, Tol(rtol=REF_TOL[dtype].rtol, atol=1e-4 if dtype == torch.float32
                                else 1e-10))


def test_gain_computer_gate_floor_and_ratio_one() -> None:
    lv = torch.linspace(-120.0, 0.0, 241, dtype=torch.float64)
    g = D.gain_computer(lv, threshold_db=-40.0, ratio=50.0, mode="gate", range_db=30.0)
    assert float(g.min()) == pytest.approx(-30.0)
    assert float(g[lv > -39.0].abs().max()) == 0.0
    for mode in ("compressor", "expander"):
        g1 = D.gain_computer(lv, threshold_db=-40.0, ratio=1.0, knee_db=6.0, mode=mode)  # type: ignore[arg-type]
        assert float(g1.abs().max()) == 0.0


# ----------------------------------------------------------------------------- ballistics
@pytest.mark.parametrize("seed", [0, 1])
def test_ballistics_equals_sample_loop(seed: int, dtype: torch.dtype) -> None:
    x = (noise((3, 500), seed=seed, dtype=torch.float64).abs() * 10).to(dtype)
    aa = torch.tensor([0.3, 0.9, 0.99], dtype=dtype)
    ar = torch.tensor([0.95, 0.5, 0.999], dtype=dtype)
    y = D.ballistics(x, alpha_attack=aa, alpha_release=ar, zi=1.0)
    for b in range(3):
        want = loop_ballistics(x[b].double().numpy(), float(aa[b]), float(ar[b]), 1.0)
        assert_close(y[b], want, REF_TOL[dtype])


def test_torch_scan_equals_numba_kernel(dtype: torch.dtype) -> None:
    u = noise((2, 777), seed=3, dtype=dtype)
    a = torch.rand(2, 777, dtype=dtype) * 0.99
    zi = torch.tensor([0.5, -1.0], dtype=dtype)
    want = D._linear_one_pole_raw(u, a, zi)
    got = D._linear_one_pole_torch(u, a, zi)
    tol = Tol(1e-4, 1e-4) if dtype == torch.float32 else REF_TOL[dtype]
    assert_close(got, want, tol)
    const = D._linear_one_pole_torch(u, a[:, :1], zi)
    assert_close(const, D._linear_one_pole_raw(u, a[:, :1].contiguous(), zi), tol)


def test_one_pole_fir_approximates_exact() -> None:
    x = noise((2, 4000), seed=4, dtype=torch.float64).abs()
    exact = D.one_pole(x, alpha=0.99)
    fir = D.one_pole_fir(x, alpha=0.99)
    assert float((exact - fir).abs().max()) < 1e-6  # tail of 0.99^8192 aliases
    y = D.ballistics(x, alpha_attack=0.99, alpha_release=0.99)
    assert_close(y, exact, REF_TOL[torch.float64])


def test_ballistics_gradcheck_and_gradgradcheck() -> None:
    x = (noise((2, 16), seed=5, dtype=torch.float64).abs() * 5).requires_grad_()
    aa = torch.tensor([0.6, 0.8], dtype=torch.float64, requires_grad=True)
    ar = torch.tensor([0.9, 0.7], dtype=torch.float64, requires_grad=True)
    zi = torch.tensor([0.3, 2.0], dtype=torch.float64, requires_grad=True)

    def fn(x: torch.Tensor, aa: torch.Tensor, ar: torch.Tensor, zi: torch.Tensor) -> torch.Tensor:
        return D.ballistics(x, alpha_attack=aa, alpha_release=ar, zi=zi)

    assert torch.autograd.gradcheck(fn, (x, aa, ar, zi))
    assert torch.autograd.gradgradcheck(fn, (x, aa, ar, zi))

    def fn1(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return D.one_pole(x, alpha=a)

    assert torch.autograd.gradcheck(fn1, (x, aa))
    assert torch.autograd.gradgradcheck(fn1, (x, aa))


# ----------------------------------------------------------------------------- time constants
@pytest.mark.parametrize(("attack_ms", "release_ms"), [(5.0, 80.0), (20.0, 250.0)])
def test_attack_and_release_time_constants_on_steps(attack_ms: float, release_ms: float) -> None:
    n0, n1, n = 2000, 12000, 24000
    x = torch.full((n,), 0.001, dtype=torch.float64)
    x[n0:n1] = 1.0
    _, gain = D.dynamics(x, sample_rate=SR, threshold_db=-30.0, ratio=4.0, knee_db=0.0,
                         attack_ms=attack_ms, release_ms=release_ms, return_gain_db=True)
    red = -gain
    final = 30.0 * 0.75  # 0 dB in, 30 dB over, ratio 4
    at = round(attack_ms * SR / 1000)
    rt = round(release_ms * SR / 1000)
    # one-pole: 1 - 1/e of the step after one time constant
    assert float(red[n0 + at - 1]) == pytest.approx(final * (1 - math.exp(-1)), rel=2e-3)
    assert float(red[n1 - 1]) == pytest.approx(final, rel=1e-6)
    assert float(red[n1 + rt - 1]) == pytest.approx(final * math.exp(-1), rel=2e-3)


def test_gate_attack_opens_release_closes() -> None:
    n = 8000
    x = torch.full((n,), 1.0, dtype=torch.float64)
    x[:4000] = 1e-4
    _, gain = D.dynamics(x, sample_rate=SR, mode="gate", threshold_db=-40.0, ratio=10.0,
                         knee_db=0.0, attack_ms=2.0, release_ms=100.0, range_db=40.0,
                         return_gain_db=True)
    red = -gain
    rt = round(100.0 * SR / 1000)
    at = round(2.0 * SR / 1000)
    assert float(red[rt - 1]) == pytest.approx(40.0 * (1 - math.exp(-1)), rel=2e-3)
    top = float(red[3999])
    assert float(red[4000 + at - 1]) == pytest.approx(top * math.exp(-1), rel=2e-3)


def test_lookahead_advances_gain() -> None:
    x = torch.full((4000,), 0.01, dtype=torch.float64)
    x[2000:] = 1.0
    kw = dict(sample_rate=SR, threshold_db=-20.0, ratio=8.0, attack_ms=1.0, release_ms=50.0,
              return_gain_db=True)
    _, g0 = D.dynamics(x, **kw)  # type: ignore[arg-type]
    _, g1 = D.dynamics(x, lookahead_ms=5.0, **kw)  # type: ignore[arg-type]
    L = 40
    assert_close(g1[:-L], g0[L:], REF_TOL[torch.float64])
    assert float(g1[1999]) < -1.0 and float(g0[1999]) == 0.0


def test_fir_smoothing_option_shares_time_constant() -> None:
    x = sine(200.0, 1.0, SR, amp=0.8, dtype=torch.float64)
    kw = dict(sample_rate=SR, threshold_db=-20.0, ratio=4.0)
    ex = D.compressor(x, attack_ms=30.0, release_ms=30.0, **kw)  # type: ignore[arg-type]
    fir = D.compressor(x, attack_ms=10.0, release_ms=50.0, smoothing="fir", **kw)  # type: ignore[arg-type]
    assert float((ex - fir).abs().max()) < 1e-6
    ex2 = D.compressor(x, attack_ms=10.0, release_ms=50.0, **kw)  # type: ignore[arg-type]
    assert float((ex2 - fir).abs().max()) > 1e-2  # separate constants really differ


# ----------------------------------------------------------------------------- compressor
def test_static_compression_of_steady_tone() -> None:
    x = torch.full((2, SR), 0.5, dtype=torch.float64)
    y = D.compressor(x, sample_rate=SR, threshold_db=torch.tensor([-20.0, -10.0]), ratio=4.0,
                     knee_db=0.0, attack_ms=1.0, release_ms=10.0, makeup_db=3.0)
    lvl = 20 * math.log10(0.5)
    want = [t + (lvl - t) / 4 + 3.0 for t in (-20.0, -10.0)]
    assert_close(20 * torch.log10(y[:, -1]), np.array(want), Tol(1e-9, 1e-9))


def test_batch_of_one_equals_item(dtype: torch.dtype) -> None:
    x = noise((3, 2, 800), seed=6, dtype=dtype) * 0.5
    thr = torch.tensor([-30.0, -20.0, -10.0], dtype=dtype)[:, None]
    at = torch.tensor([1.0, 5.0, 20.0], dtype=dtype)[:, None]
    y = D.compressor(x, sample_rate=SR, threshold_db=thr, attack_ms=at, release_ms=60.0)
    for b in range(3):
        yb = D.compressor(x[b:b + 1], sample_rate=SR, threshold_db=thr[b:b + 1],
                          attack_ms=at[b:b + 1], release_ms=60.0)
        assert_close(yb[0], y[b], REF_TOL[dtype])


@pytest.mark.parametrize("smoothing", ["exact", "fir"])
def test_compressor_gradcheck_all_parameters(smoothing: str) -> None:
    x = noise((2, 24), seed=7, dtype=torch.float64) * 0.5
    p = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in
         ([-20.0, -12.0], [3.0, 6.0], [0.8, 2.0], [5.0, 12.0], [4.0, 7.0], [1.0, -2.0])]

    def fn(x: torch.Tensor, thr: torch.Tensor, ratio: torch.Tensor, at: torch.Tensor,
           rt: torch.Tensor, knee: torch.Tensor, mk: torch.Tensor) -> torch.Tensor:
        return D.compressor(x, sample_rate=SR, threshold_db=thr, ratio=ratio, attack_ms=at,
                            release_ms=rt, knee_db=knee, makeup_db=mk, smoothing=smoothing)

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(), *p), atol=1e-6)


@pytest.mark.parametrize("mode", ["expander", "gate", "limiter"])
def test_other_modes_gradcheck(mode: str) -> None:
    x = noise((1, 24), seed=8, dtype=torch.float64) * 0.1
    thr = torch.tensor([-25.0], dtype=torch.float64, requires_grad=True)
    at = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    rt = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)

    def fn(x: torch.Tensor, thr: torch.Tensor, at: torch.Tensor, rt: torch.Tensor) -> torch.Tensor:
        return D.dynamics(x, sample_rate=SR, mode=mode, threshold_db=thr, ratio=3.0,  # type: ignore[return-value,arg-type]
                          attack_ms=at, release_ms=rt, knee_db=5.0, range_db=20.0)

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(), thr, at, rt), atol=1e-6)


@pytest.mark.parametrize("mode", ["compressor", "expander", "limiter", "gate"])
def test_finite_on_degenerate_inputs_and_extremes(mode: str) -> None:
    sigs = degenerate_signals(512, dtype=torch.float32)
    settings = [
        dict(threshold_db=-20.0, ratio=1.0, attack_ms=5.0, release_ms=50.0, knee_db=6.0),
        dict(threshold_db=-100.0, ratio=1000.0, attack_ms=0.01, release_ms=1e4, knee_db=0.0),
        dict(threshold_db=0.0, ratio=1.0 + 1e-6, attack_ms=1e3, release_ms=0.01, knee_db=48.0),
    ]
    for name, x in sigs.items():
        for s in settings:
            params = {k: torch.tensor(v, requires_grad=True) for k, v in s.items()
                      if not (mode == "limiter" and k == "ratio")}
            xx = x.clone().requires_grad_()
            y = D.dynamics(xx, sample_rate=SR, mode=mode, makeup_db=0.0, **params)  # type: ignore[arg-type]
            assert isinstance(y, torch.Tensor)
            assert_finite(y, f"{mode}/{name} output")
            (y.square().sum() + y.sum()).backward()
            assert xx.grad is not None
            assert_finite(xx.grad, f"{mode}/{name} grad x")
            for k, p in params.items():
                assert p.grad is not None and torch.isfinite(p.grad).all(), (mode, name, k)


def test_single_sample_and_empty() -> None:
    y = D.compressor(torch.tensor([0.9]), sample_rate=SR)
    assert y.shape == (1,) and torch.isfinite(y).all()
    assert D.ballistics(torch.zeros(2, 0), alpha_attack=0.5, alpha_release=0.5).shape == (2, 0)


def test_bad_inputs() -> None:
    x = torch.zeros(2, 100)
    with pytest.raises(InputError, match="ratio"):
        D.compressor(x, sample_rate=SR, ratio=0.5)
    with pytest.raises(InputError, match="attack_ms"):
        D.compressor(x, sample_rate=SR, attack_ms=0.0)
    with pytest.raises(InputError, match="knee_db"):
        D.compressor(x, sample_rate=SR, knee_db=-1.0)
    with pytest.raises(InputError, match="alpha_attack"):
        D.ballistics(x, alpha_attack=1.0, alpha_release=0.5)
    with pytest.raises(InputError, match="broadcast"):
        D.compressor(x, sample_rate=SR, threshold_db=torch.zeros(3))
    with pytest.raises(InputError, match="mode"):
        D.dynamics(x, sample_rate=SR, mode="ducker")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        D.compressor(np.zeros(10), sample_rate=SR)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["compressor", "expander", "limiter", "gate"])
@pytest.mark.parametrize("with_side", [False, True])
def test_fused_path_equals_composition(mode: str, with_side: bool, dtype: torch.dtype) -> None:
    # dynamics() on CPU runs one fused kernel; it must equal level -> gain_computer ->
    # ballistics -> gain written with the public pieces, in value and in every gradient
    from diffdsp._numerics import amp_to_db

    g = torch.Generator().manual_seed(9)
    x = torch.randn(3, 700, generator=g, dtype=dtype) * 0.3
    x[0, 100:200] = 0.0  # silence: level floor, no gradient through the level
    side = torch.randn(3, 700, generator=g, dtype=dtype) * 0.3 if with_side else None
    vals = {"threshold_db": [-20.0, -30.0, -8.0], "ratio": [3.0, 1.0, 8.0],
            "attack_ms": [1.0, 5.0, 20.0], "release_ms": [30.0, 100.0, 5.0],
            "knee_db": [6.0, 0.0, 12.0], "makeup_db": [1.0, 2.0, -3.0],
            "range_db": [10.0, 30.0, 40.0]}

    def leaves() -> dict[str, torch.Tensor]:
        return {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in vals.items()}

    def grads(fused: bool) -> list[torch.Tensor]:
        xx = x.clone().requires_grad_()
        ss = None if side is None else side.clone().requires_grad_()
        p = leaves()
        if fused:
            y = D.dynamics(xx, sample_rate=SR, mode=mode, sidechain=ss,  # type: ignore[arg-type]
                           **{k: v[:, None][:, 0] for k, v in p.items()})
        else:
            lvl = amp_to_db(xx if ss is None else ss)
            gain = D.gain_computer(lvl, threshold_db=p["threshold_db"][:, None],
                                   ratio=p["ratio"][:, None], knee_db=p["knee_db"][:, None],
                                   mode=mode, range_db=p["range_db"][:, None])  # type: ignore[arg-type]
            aa = D.time_constant_to_coef(p["attack_ms"], SR)
            ar = D.time_constant_to_coef(p["release_ms"], SR)
            up, down = (aa, ar) if mode in ("compressor", "limiter") else (ar, aa)
            sm = D.ballistics(-gain, alpha_attack=up, alpha_release=down)
            y = xx * 10 ** ((p["makeup_db"][:, None] - sm) / 20)
        assert isinstance(y, torch.Tensor)
        w = torch.linspace(-1.0, 1.0, 700, dtype=dtype)
        (y * w).sum().backward()
        out = [y.detach(), xx.grad] + ([] if ss is None else [ss.grad])
        unused = {"limiter": ("ratio", "range_db"), "compressor": ("range_db",)}.get(mode, ())
        # the limiter's knee gradient at knee_db = 0 differs: the composition's clamped knee
        # width gives -slope/2 per sample there, the fused kernel the true one-sided value 0
        unused += ("knee_db",) if mode == "limiter" else ()
        names = [k for k in p if k not in unused]
        return out + [p[k].grad for k in names]  # type: ignore[misc]

    tol = Tol(1e-10, 1e-10) if dtype == torch.float64 else Tol(2e-5, 2e-5)
    for got, want in zip(grads(True), grads(False), strict=True):
        assert got is not None and want is not None
        assert_close(got, want, tol)
