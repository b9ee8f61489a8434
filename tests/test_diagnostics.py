"""Tests of diffdsp.diagnostics: landscapes, local minima, gradient direction, sensitivity."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.diagnostics import (
    count_local_minima,
    count_significant_minima,
    gradient_direction,
    grid_values,
    landscape,
    landscapes,
    minima_depths,
    roughness,
    sensitivity,
)
from diffdsp.params import ParamRange

GAIN = {"gain": ParamRange(0.0, 2.0, unit="")}


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).mean(-1)


def _gain_render(x: torch.Tensor):  # type: ignore[no-untyped-def]
    return lambda p: p["gain"][:, None] * x


# --------------------------------------------------------------------------- grids


def test_grid_values_log_and_linear() -> None:
    r = ParamRange(100.0, 10000.0, "log")
    v = grid_values(r, 5)
    assert v.dtype == torch.float64
    ratios = v[1:] / v[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, 10 ** 0.5), rtol=1e-12)
    assert (float(v[0]), float(v[-1])) == (100.0, 10000.0)
    lin = grid_values(ParamRange(-1.0, 1.0), 5, low=-0.5, high=0.5)
    assert lin.tolist() == [-0.5, -0.25, 0.0, 0.25, 0.5]


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 1}, "at least 2|>= 2"),
    ({"n": 4, "low": -3.0}, "range"),
    ({"n": 4, "high": 3.0}, "range"),
    ({"n": 4, "low": 1.0, "high": 0.5}, "low < high"),
])
def test_grid_values_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        grid_values(ParamRange(-1.0, 2.0), **kwargs)


# --------------------------------------------------------------------------- local minima


def test_count_local_minima_cases() -> None:
    assert count_local_minima(torch.tensor([1.0, 2.0, 3.0])) == 1  # border minimum
    assert count_local_minima(torch.tensor([3.0, 1.0, 2.0, 0.5, 4.0])) == 2
    assert count_local_minima(torch.tensor([2.0, 1.0, 1.0, 1.0, 2.0])) == 1  # plateau once
    # a shelf that is not a minimum: 3 3 3 2 1 -> one minimum (the end)
    assert count_local_minima(torch.tensor([3.0, 3.0, 3.0, 2.0, 1.0])) == 1
    # NaN is +inf: does not create a minimum, its neighbours can be minima
    assert count_local_minima(torch.tensor([1.0, float("nan"), 1.0])) == 2
    assert count_local_minima(torch.full((3,), float("nan"))) == 0
    # 2-D: two wells
    yy, xx = torch.meshgrid(torch.linspace(-2, 2, 41), torch.linspace(-2, 2, 41), indexing="ij")
    wells = (xx ** 2 - 1) ** 2 + yy ** 2
    assert count_local_minima(wells) == 2
    assert count_local_minima(xx ** 2 + yy ** 2) == 1


def test_count_local_minima_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.standard_normal((7, 9))
        brute = 0
        for i, j in itertools.product(range(7), range(9)):
            nbs = [v[i + a, j + b] for a in (-1, 0, 1) for b in (-1, 0, 1)
                   if (a, b) != (0, 0) and 0 <= i + a < 7 and 0 <= j + b < 9]
            brute += all(v[i, j] < x for x in nbs)
        assert count_local_minima(v) == brute


def test_count_local_minima_tolerance_merges_noise() -> None:
    flat = 1.0 + 1e-9 * torch.randn(50, generator=torch.Generator().manual_seed(0),
                                    dtype=torch.float64)
    flat[25] = 0.0
    assert count_local_minima(flat, tol=1e-6) == 1
    assert count_local_minima(flat, tol=0.0) > 1


def test_count_local_minima_chains_sub_tolerance_steps() -> None:
    """A ramp whose steps are each below tol is one plateau (one minimum), as for
    minima_depths; counting from each start level gave one minimum per tol of ramp."""
    t = 1e-3
    ramp = torch.tensor([10.0] + [0.9 * t * i for i in range(8)] + [10.0], dtype=torch.float64)
    assert count_local_minima(ramp, tol=t) == 1
    assert len(minima_depths(ramp, tol=t)) == 1
    # a sub-tol ramp that leads down to a lower point is no minimum at all
    down = torch.tensor([5.0, 3.0 * t, 2.1 * t, 1.2 * t, 0.3 * t, -1.0, 5.0],
                        dtype=torch.float64)
    assert count_local_minima(down, tol=t) == 1
    # 2-D: a tilted sub-tol plateau inside a wall, plus one separate well
    v = torch.full((6, 8), 10.0, dtype=torch.float64)
    v[1:5, 1:4] = 0.4 * t * torch.arange(3, dtype=torch.float64)[None, :] \
        + 0.4 * t * torch.arange(4, dtype=torch.float64)[:, None]
    v[3, 6] = -2.0
    assert count_local_minima(v, tol=t) == 2


def test_minima_depths_is_persistence_relative_to_the_range() -> None:
    # 1-D: minima 1 (depth: climb to 2, then down to 0) and 0 (global); range 4
    assert minima_depths(torch.tensor([3.0, 1.0, 2.0, 0.0, 4.0])) == [1.0, 0.25]
    # two wells of (x^2 - 1)^2 + y^2 on [-2, 2]^2: saddle 1 at the origin, range 9 + 4
    yy, xx = torch.meshgrid(torch.linspace(-2, 2, 41, dtype=torch.float64),
                            torch.linspace(-2, 2, 41, dtype=torch.float64), indexing="ij")
    d = minima_depths((xx ** 2 - 1) ** 2 + yy ** 2)
    assert d[0] == 1.0 and len(d) == 2 and d[1] == pytest.approx(1.0 / 13.0, rel=1e-9)
    # scale- and offset-free
    v = torch.tensor([5.0, 2.0, 3.0, 1.0, 2.5, 0.0, 6.0], dtype=torch.float64)
    assert minima_depths(v) == pytest.approx(minima_depths(7.0 * v - 3.0))
    # plateaus are one basin; non-finite points are walls; all non-finite: none; flat: one
    assert minima_depths(torch.tensor([2.0, 1.0, 1.0, 1.0, 2.0])) == [1.0]
    assert len(minima_depths(torch.tensor([1.0, 0.0, float("inf"), 0.5, 1.0]))) == 2
    assert minima_depths(torch.full((4,), float("nan"))) == []
    assert minima_depths(torch.ones(3, 3)) == [1.0]
    with pytest.raises(InputError, match="1-D or 2-D"):
        minima_depths(torch.ones(2, 2, 2))


def test_minima_depths_counts_every_strict_minimum_of_generic_data() -> None:
    rng = np.random.default_rng(1)
    for shape in ((40,), (7, 9), (12, 5)):
        for _ in range(10):
            v = rng.standard_normal(shape)
            assert len(minima_depths(v, tol=0.0)) == count_local_minima(v, tol=0.0)


def test_count_significant_minima_ignores_shallow_ripples_only() -> None:
    x = torch.linspace(-1, 1, 201, dtype=torch.float64)
    bowl = x ** 2
    ripple = bowl + 0.004 * torch.sin(200 * x)  # ripples < 0.8 % of the range deep
    assert count_local_minima(ripple) > 5
    assert count_significant_minima(ripple, min_depth=0.01) == 1
    assert count_significant_minima(ripple, min_depth=0.0) == count_local_minima(ripple)
    two = (x ** 2 - 0.25) ** 2  # two wells, each 0.0625 / 0.5625 = 11 % deep
    assert count_significant_minima(two, min_depth=0.05) == 2
    assert count_significant_minima(two, min_depth=0.2) == 1
    with pytest.raises(InputError, match="min_depth"):
        count_significant_minima(two, min_depth=1.0)


def test_roughness() -> None:
    assert roughness(torch.tensor([4.0, 1.0, 0.0, 1.0, 4.0])) == 0.0
    assert roughness(torch.tensor([0.0, 1.0, 0.0, 1.0])) == pytest.approx(2.0)
    v = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert roughness(v, axis=1) == pytest.approx(1.0)  # one line with a bump of 1, two lines
    assert roughness(v, axis=0) == 0.0


# --------------------------------------------------------------------------- landscape


def test_landscape_convex_gain_l2_has_one_minimum_at_truth() -> None:
    x = torch.randn(512, generator=torch.Generator().manual_seed(1))
    res = landscape(_gain_render(x), _mse, 0.7 * x, {"gain": grid_values(GAIN["gain"], 41)},
                    ranges=GAIN, truth={"gain": 0.7})
    assert res.local_minima == 1
    assert res.argmin == {"gain": pytest.approx(0.7)}
    assert res.argmin_steps == {"gain": pytest.approx(0.0, abs=1e-9)}
    assert res.argmin_within_one_step is True
    assert res.roughness["gain"] == 0.0
    # exact values: mean((g - 0.7)^2 x^2)
    gains = torch.tensor(res.axes[0], dtype=torch.float64)
    expected = (gains - 0.7) ** 2 * float((x.double() ** 2).mean())
    torch.testing.assert_close(res.loss, expected, rtol=1e-5, atol=1e-7)


def test_landscape_reports_significant_minima_with_one_definition_for_every_loss() -> None:
    r = {"x": ParamRange(-1.0, 1.0)}
    render = lambda p: p["x"][:, None].double()  # noqa: E731
    losses = {"bowl": lambda a, b: ((a - b) ** 2).mean(-1),
              "rippled": lambda a, b: ((a - b) ** 2 + 0.02 * torch.sin(60 * a)).mean(-1)}
    res = landscapes(render, losses, torch.zeros(1), {"x": 101}, ranges=r, min_depth=0.02)
    assert res["bowl"].local_minima == 1 and res["bowl"].significant_minima == 1
    rip = res["rippled"]
    assert rip.local_minima > 3 and rip.min_depth == 0.02
    assert rip.significant_minima == sum(d > 0.02 for d in rip.minima_depths)
    assert rip.minima_depths[0] == 1.0 and len(rip.minima_depths) == rip.local_minima
    assert rip.significant_minima_runs == [rip.significant_minima]
    assert json.loads(json.dumps(rip.to_dict()))["significant_minima"] == rip.significant_minima
    with pytest.raises(InputError, match="min_depth"):
        landscape(render, losses["bowl"], torch.zeros(1), {"x": 5}, ranges=r, min_depth=-0.1)


def test_landscape_2d_argmin_steps_and_log_axis() -> None:
    ranges = {"a": ParamRange(0.0, 1.0), "f": ParamRange(10.0, 1000.0, "log", unit="Hz")}
    af = torch.linspace(0, 1, 11)
    ff = grid_values(ranges["f"], 9)  # 10 * 10^(0.25 k)

    def render(p: dict) -> torch.Tensor:
        return torch.stack([p["a"], torch.log10(p["f"])], -1)

    target = torch.tensor([0.3, math.log10(100.0)])
    res = landscape(render, _mse, target, {"a": af, "f": ff}, ranges=ranges,
                    truth={"a": 0.3, "f": 100.0 * 10 ** 0.25 * 0.999})
    assert res.loss.shape == (11, 9)
    assert res.argmin == {"a": pytest.approx(0.3), "f": pytest.approx(100.0)}
    assert res.scales == ["linear", "log"]
    # truth sits almost one log-step above the argmin: -0.99.. steps
    assert res.argmin_steps is not None
    assert res.argmin_steps["a"] == pytest.approx(0.0, abs=1e-6)
    assert -1.0 < res.argmin_steps["f"] < -0.99
    assert res.argmin_within_one_step is True
    assert res.local_minima == 1
    assert res.units == ["", "Hz"]


def test_landscape_is_batched_and_batch_size_does_not_change_values() -> None:
    calls = []
    x = torch.randn(64)

    def render(p: dict) -> torch.Tensor:
        calls.append(p["gain"].shape[0])
        return p["gain"][:, None] * x

    grid = {"gain": grid_values(GAIN["gain"], 50)}
    a = landscape(render, _mse, x, grid, ranges=GAIN, batch_size=1000)
    assert calls == [50]
    calls.clear()
    b = landscape(render, _mse, x, grid, ranges=GAIN, batch_size=7)
    assert calls == [7] * 7 + [1]
    assert torch.equal(a.loss, b.loss)


def test_landscape_reference_and_defaults_reach_render() -> None:
    ranges = {"a": ParamRange(0.0, 1.0), "b": ParamRange(1.0, 3.0, default=2.5),
              "c": ParamRange(0.0, 4.0)}
    seen = {}

    def render(p: dict) -> torch.Tensor:
        seen.update({k: v.clone() for k, v in p.items()})
        return (p["a"] + p["b"] + p["c"])[:, None]

    landscape(render, _mse, torch.zeros(1), {"a": 3}, ranges=ranges, reference={"c": 1.5})
    assert torch.equal(seen["b"], torch.full((3,), 2.5))
    assert torch.equal(seen["c"], torch.full((3,), 1.5))
    assert seen["a"].dtype == torch.float32


def test_landscape_perturbations_median_quartiles_and_seed() -> None:
    ranges = {"g": ParamRange(0.0, 2.0)}
    x = torch.randn(32)

    def perturb(k: int, gen: torch.Generator) -> dict:
        return {"offset": float(torch.rand((), generator=gen)),
                "matrix": torch.randn(3, 3, generator=gen)}

    shapes = []

    def render(p: dict) -> torch.Tensor:
        shapes.append(tuple(p["matrix"].shape))
        return (p["g"] + p["offset"])[:, None] * x

    kw = dict(ranges=ranges, perturb=perturb, repeats=5, seed=3, batch_size=4)
    res = landscape(render, _mse, x, {"g": 9}, **kw)
    assert res.runs.shape == (5, 9)
    assert res.q25 is not None and res.q75 is not None
    assert bool((res.q25 <= res.loss).all() and (res.loss <= res.q75).all())
    torch.testing.assert_close(res.loss, res.runs.median(0).values)
    assert all(s[1:] == (3, 3) for s in shapes)
    assert len(shapes) == math.ceil(45 / 4)  # runs share batches
    again = landscape(render, _mse, x, {"g": 9}, **kw)
    assert torch.equal(res.runs, again.runs)
    other = landscape(render, _mse, x, {"g": 9}, **{**kw, "seed": 4})
    assert not torch.equal(res.runs, other.runs)
    assert len(res.local_minima_runs) == 5
    assert res.settings["perturbed"] == ["matrix", "offset"]


def test_landscape_to_dict_is_strict_json() -> None:
    x = torch.randn(16)

    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        v = _mse(a, b)
        return torch.where(a[:, 0] > 1.5 * x[0].abs() + 10, torch.nan, v)  # no NaN here

    res = landscape(_gain_render(x), loss, x, {"gain": 5}, ranges=GAIN, truth={"gain": 1.0})
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["argmin_within_one_step"] is True
    assert len(d["loss"]) == 5


def test_landscape_nonfinite_points_are_counted_not_argmin() -> None:
    x = torch.ones(4)

    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        v = _mse(a, b)
        return torch.where(a[:, 0] < 0.6, torch.full_like(v, float("nan")), v)

    res = landscape(_gain_render(x), loss, 0.2 * x, {"gain": 11}, ranges=GAIN)
    assert res.n_nonfinite == 3  # gains 0.0, 0.2, 0.4
    assert res.argmin == {"gain": pytest.approx(0.6)}
    json.dumps(res.to_dict(), allow_nan=False)


@pytest.mark.parametrize("grid, kwargs, match", [
    ({"nope": 5}, {}, "unknown parameter 'nope'"),
    ({"gain": 1}, {}, "at least 2 points"),
    ({"gain": [0.5]}, {}, "at least 2 points"),
    ({"gain": [0.5, 3.0]}, {}, r"range \[0.0, 2.0\].*3.0"),
    ({"gain": [-0.1, 1.0]}, {}, "range"),
    ({"gain": [1.0, 0.5]}, {}, "strictly increasing"),
    ({"gain": 4}, {"reference": {"bogus": 1.0}}, "unknown parameter 'bogus'"),
    ({"gain": 4}, {"truth": {"bogus": 1.0}}, "unknown parameter 'bogus'"),
    ({"gain": 4}, {"repeats": 3}, "perturb"),
    ({}, {}, "1 or 2"),
])
def test_landscape_bad_input(grid: dict, kwargs: dict, match: str) -> None:
    x = torch.randn(8)
    with pytest.raises(InputError, match=match):
        landscape(_gain_render(x), _mse, x, grid, ranges=GAIN, **kwargs)


def test_landscape_three_axes_refused() -> None:
    ranges = {k: ParamRange(0.0, 1.0) for k in "abc"}
    with pytest.raises(InputError, match="1 or 2"):
        landscape(lambda p: p["a"][:, None], _mse, torch.zeros(1), {"a": 2, "b": 2, "c": 2},
                  ranges=ranges)


def test_landscape_loss_must_be_per_item_and_target_shape_checked() -> None:
    x = torch.randn(8)
    with pytest.raises(InputError, match="one value per item"):
        landscape(_gain_render(x), lambda a, b: ((a - b) ** 2).mean(), x, {"gain": 4},
                  ranges=GAIN)
    with pytest.raises(InputError, match="target must have"):
        landscape(_gain_render(x), _mse, torch.randn(9), {"gain": 4}, ranges=GAIN)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_landscape_runs_on_cuda() -> None:
    x = torch.randn(64, device="cuda")
    res = landscape(_gain_render(x), _mse, 0.5 * x, {"gain": 21}, ranges=GAIN)
    assert res.argmin == {"gain": pytest.approx(0.5)}


# --------------------------------------------------------------------------- gradient direction


def test_gradient_direction_perfect_loss_and_reversed_loss() -> None:
    x = torch.randn(128, generator=torch.Generator().manual_seed(0))
    r = {"gain": ParamRange(0.1, 2.0)}
    res = gradient_direction(_gain_render(x), _mse, "gain", [0.0, 0.05, 0.3], 300, ranges=r,
                             distance_unit="linear", batch_size=64)
    assert res.accuracy == [1.0, 1.0, 1.0]
    assert res.trials == 300 and res.correct == [300, 300, 300]
    lo, hi = res.ci95[0]
    assert lo > 0.98 and hi == 1.0
    bad = gradient_direction(_gain_render(x), lambda a, b: -_mse(a, b), "gain", [0.0, 0.3], 100,
                             ranges=r, distance_unit="linear")
    assert bad.accuracy == [0.0, 0.0]
    flat = gradient_direction(_gain_render(x), lambda a, b: (a - b).sum(-1) * 0.0, "gain",
                              [0.0, 0.3], 50, ranges=r, distance_unit="linear")
    assert flat.accuracy == [0.0, 0.0] and flat.ties == [50, 50]
    json.dumps(res.to_dict(), allow_nan=False)
    assert res.accuracy_at(0.3) == 1.0
    with pytest.raises(InputError, match="not tested"):
        res.accuracy_at(0.2)


def test_gradient_direction_cents_moves_away_and_stays_in_range() -> None:
    r = {"freq_hz": ParamRange(100.0, 1000.0, "log", unit="Hz"), "amp": ParamRange(0.0, 1.0)}
    seen: list[torch.Tensor] = []

    def render(p: dict) -> torch.Tensor:
        seen.append(p["freq_hz"].detach().double())
        return torch.log2(p["freq_hz"])[:, None] * p["amp"][:, None]

    res = gradient_direction(render, _mse, "freq_hz", [0.0, 600.0], 200, ranges=r,
                             reference={"amp": 1.0}, seed=1)
    allf = torch.cat(seen)
    assert float(allf.min()) >= 100.0 - 1e-3 and float(allf.max()) <= 1000.0 + 1e-2
    assert res.accuracy == [1.0, 1.0]
    again = gradient_direction(render, _mse, "freq_hz", [0.0, 600.0], 200, ranges=r,
                               reference={"amp": 1.0}, seed=1)
    assert again.correct == res.correct


def test_gradient_direction_prediction_offset_and_randomise() -> None:
    r = {"f": ParamRange(100.0, 1000.0, "log"), "amp": ParamRange(0.5, 1.0)}
    pairs: list[torch.Tensor] = []

    def render(p: dict) -> torch.Tensor:
        pairs.append(p["amp"].detach().clone())
        return torch.log2(p["f"])[:, None] * p["amp"][:, None]

    res = gradient_direction(render, _mse, "f", [100.0], 64, ranges=r, randomise=["amp"],
                             prediction_offset=(50.0, 60.0), batch_size=64)
    # target, prediction and perturbation share the per-trial amp draw
    assert torch.equal(pairs[0], pairs[1]) and torch.equal(pairs[1], pairs[2])
    assert float(pairs[0].std()) > 0
    assert res.accuracy == [1.0]


def test_gradient_direction_independent_draws_and_target_range() -> None:
    r = {"f": ParamRange(50.0, 2000.0, "log"), "phase": ParamRange(0.0, 6.0)}
    calls: list[dict] = []

    def render(p: dict) -> torch.Tensor:
        calls.append({k: v.detach().clone() for k, v in p.items()})
        return torch.log2(p["f"])[:, None] + 0.0 * p["phase"][:, None]

    res = gradient_direction(render, _mse, "f", [0.0, 100.0], 200, ranges=r,
                             independent=["phase"], target_range=(100.0, 1000.0),
                             prediction_offset=(300.0, 300.0), batch_size=200)
    tgt, pred, moved = calls
    # targets inside target_range, predictions exactly 300 cents away (either side)
    assert float(tgt["f"].min()) >= 100.0 - 1e-3 and float(tgt["f"].max()) <= 1000.0 + 1e-2
    cents = 1200.0 * torch.log2(pred["f"].double() / tgt["f"].double()).abs()
    torch.testing.assert_close(cents, torch.full_like(cents, 300.0), rtol=0, atol=1e-2)
    # the phase is drawn separately for target and prediction; a perturbed prediction keeps it
    assert not torch.equal(tgt["phase"], pred["phase"])
    assert torch.equal(pred["phase"], moved["phase"])
    assert res.accuracy == [1.0, 1.0] and res.settings["independent"] == ["phase"]
    with pytest.raises(InputError, match="both"):
        gradient_direction(render, _mse, "f", [0.0], 5, ranges=r, independent=["phase"],
                           randomise=["phase"])
    with pytest.raises(InputError, match="range"):
        gradient_direction(render, _mse, "f", [0.0], 5, ranges=r, target_range=(10.0, 100.0))
    with pytest.raises(InputError, match="low < high"):
        gradient_direction(render, _mse, "f", [0.0], 5, ranges=r, target_range=(500.0, 100.0))


@pytest.mark.parametrize("kwargs, match", [
    ({"param": "nope"}, "unknown parameter 'nope'"),
    ({"distances": []}, "non-empty"),
    ({"distances": [-1.0]}, ">= 0"),
    ({"trials": 0}, "trials"),
    ({"distance_unit": "octaves"}, "distance_unit"),
    ({"randomise": ["gain"]}, "randomise"),
    ({"independent": ["zz"]}, "independent"),
    ({"reference": {"zz": 1.0}}, "unknown parameter 'zz'"),
    ({"distances": [5000.0], "distance_unit": "linear"}, "cannot draw"),
])
def test_gradient_direction_bad_input(kwargs: dict, match: str) -> None:
    x = torch.randn(8)
    args = {"param": "gain", "distances": [0.0], "trials": 10, "distance_unit": "linear"}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        gradient_direction(_gain_render(x), _mse, args.pop("param"), args.pop("distances"),
                           args.pop("trials"), ranges={"gain": ParamRange(0.1, 2.0)}, **args)


def test_gradient_direction_needs_a_differentiable_render_for_distance_0() -> None:
    x = torch.randn(8)
    r = {"gain": ParamRange(0.1, 2.0)}
    with pytest.raises(InputError, match="differentiable"):
        gradient_direction(lambda p: p["gain"].detach()[:, None] * x, _mse, "gain", [0.0], 5,
                           ranges=r, distance_unit="linear")
    res = gradient_direction(lambda p: p["gain"].detach()[:, None] * x, _mse, "gain", [0.2], 5,
                             ranges=r, distance_unit="linear")
    assert res.accuracy == [1.0]


def test_gradient_direction_cents_needs_positive_range() -> None:
    with pytest.raises(InputError, match="cents"):
        gradient_direction(_gain_render(torch.ones(2)), _mse, "gain", [0.0], 5, ranges=GAIN)


# --------------------------------------------------------------------------- sensitivity


def _level(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.pow(2).mean(-1).log() - b.pow(2).mean(-1).log()).abs()


def test_sensitivity_separates_levels_and_not_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    levels = [1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 9.0, 9.0, 9.0]
    x = torch.stack([torch.randn(4096, generator=gen) * a for a in levels])
    groups = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    res = sensitivity({"level": _level, "mse": _mse}, x, groups, batch_size=10)
    assert res.n_pairs == 9 * 8
    assert res.auc["level"] == 1.0
    assert res.separation["level"] is not None and res.separation["level"] > 0
    med = np.array(res.medians["level"], dtype=float)
    assert np.allclose(med, med.T)
    assert all(med[i, i] < med[i, j] for i in range(3) for j in range(3) if i != j)
    # ordered conditions: larger condition difference, larger level loss
    bd = res.by_difference["level"]
    assert list(bd) == [0.0, 1.0, 2.0] and bd[0.0] < bd[1.0] < bd[2.0]
    assert res.spearman["level"] is not None and res.spearman["level"] > 0.8
    json.dumps(res.to_dict(), allow_nan=False)


def test_sensitivity_ordered_pairs_and_string_labels() -> None:
    calls = []

    def asym(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append((a[:, 0].clone(), b[:, 0].clone()))
        return a[:, 0] - b[:, 0]

    x = torch.arange(4.0)[:, None].expand(4, 8).contiguous()
    res = sensitivity({"asym": asym}, list(x), ["a", "a", "b", "b"])
    pairs = {(int(p), int(q)) for a, b in calls for p, q in zip(a, b, strict=True)}
    assert pairs == {(i, j) for i in range(4) for j in range(4) if i != j}
    assert res.groups == ["a", "b"] and res.spearman["asym"] is None
    assert res.by_difference["asym"] == {}


@pytest.mark.parametrize("args, match", [
    (({"l": _mse}, torch.randn(1, 8), [0]), "at least 2"),
    (({"l": _mse}, torch.randn(3, 8), [0, 1]), "one label per signal"),
    (({}, torch.randn(3, 8), [0, 1, 1]), "at least one loss"),
])
def test_sensitivity_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(InputError, match=match):
        sensitivity(*args)
