"""evals/colourless.py: its metric, its comb reference and its verdict rule (fast, no fitting)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    path = ROOT / "evals" / "colourless.py"
    spec = importlib.util.spec_from_file_location("eval_colourless", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ev = _load()


@pytest.mark.parametrize("nfft", [2**12, 2**13])
def test_comb_reference_is_a_cyclic_permutation_network(nfft: int) -> None:
    # one input line, one output line and a cyclic permutation: a single comb of delay sum(m),
    # whose damped flatness is 1 - gamma^(2 sum m) over the continuous band; the nfft/2 + 1 bins
    # see its time aliasing (gamma^nfft = -30 dB), hence a few 1e-3 between the two
    d = [101, 131, 151, 173]
    perm = torch.roll(torch.eye(4, dtype=torch.float64), 1, 0)
    b = [1.0, 0.0, 0.0, 0.0]
    c = [0.0, 0.0, 1.0, 0.0]
    got = ev.flatness(d, perm, b, c, nfft)
    assert got == pytest.approx(ev.comb(d, nfft), rel=5e-3)
    assert got == pytest.approx(ev.flatness([sum(d)], [[1.0]], [1.0], [1.0], nfft), rel=1e-9)


def test_flatness_is_scale_free_and_below_one() -> None:
    d = [101, 131, 151]
    a = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(0)))[0]
    f1 = ev.flatness(d, a, [0.3, -0.2, 0.5], [1.0, 1.0, -1.0], 2**12)
    f2 = ev.flatness(d, a, [3.0, -2.0, 5.0], [0.1, 0.1, -0.1], 2**12)
    assert f1 == pytest.approx(f2, rel=1e-9)
    assert 0.0 < f1 < 1.0


def _case(before: float, flamo: float, ours: float, sp_flamo: float, sp_ours: float
          ) -> dict[str, Any]:
    def m(f: float, s: float) -> dict[str, Any]:
        return {"flatness": {str(n): f for n in ev.GRIDS}, "sparsity": s}

    return {"before": m(before, 0.4), "FLAMO": m(flamo, sp_flamo), "ours": m(ours, sp_ours)}


def test_verdict_rule() -> None:
    ok = _case(0.10, 0.20, 0.26, 0.30, 0.30)
    assert ev.dominates(ok, "ours")
    assert not ev.dominates(_case(0.10, 0.20, 0.40, 0.30, 0.31), "ours")  # sparser than FLAMO's
    assert not ev.dominates(_case(0.10, 0.20, 0.19, 0.30, 0.20), "ours")  # less flat
    one_grid = copy.deepcopy(ok)
    one_grid["ours"]["flatness"][str(ev.GRIDS[1])] = 0.2
    assert not ev.dominates(one_grid, "ours")  # must hold at both grids
    # the mean gain over the seeds, not each seed's, must reach 1.5 x FLAMO's
    rows = [_case(0.10, 0.20, 0.21, 0.30, 0.30), _case(0.10, 0.20, 0.40, 0.30, 0.30)]
    assert ev.mean_gain_ratio(rows, "ours", str(ev.GRIDS[0])) == pytest.approx(0.41 / 0.20)
    assert ev.verdict(None, rows, "ours")
    assert ev.verdict(ok, rows, "ours")                                   # example: 1.6x
    assert not ev.verdict(_case(0.10, 0.20, 0.24, 0.30, 0.30), rows, "ours")  # example: 1.4x
    assert not ev.verdict(None, [*rows, _case(0.10, 0.20, 0.19, 0.3, 0.3)], "ours")  # one worse
    assert not ev.verdict(None, [_case(0.10, 0.20, 0.24, 0.30, 0.30)] * 3, "ours")   # mean 1.4x


def test_plot_example_writes_a_png(tmp_path: Path) -> None:
    d = [101, 131, 151]
    a = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(1)))[0].tolist()
    st = {"A": a, "B": [0.5, -0.5, 0.5], "C": [1.0, 1.0, -1.0],
          "flatness": {str(2**12): 0.2}, "sparsity": 0.3}
    e8 = {"delays": d, "before": st, "FLAMO": st, ev.MATCHED: st}
    out = tmp_path / "x.png"
    ev.plot_example(e8, out, nfft=2**12)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
