"""ParamRange round trips and stability maps."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffdsp._validation import InputError
from diffdsp.params import (
    ParamRange,
    bounded_sigmoid,
    bounded_tanh,
    denormalise_dict,
    exp_sigmoid,
    inverse_bounded_sigmoid,
    inverse_positive_map,
    normalise_dict,
    orthogonal_map,
    pole_radius_map,
    positive_map,
)
from tests.helpers import gradcheck64

RANGES = [
    ParamRange(-24.0, 24.0, "linear", unit="dB"),
    ParamRange(20.0, 20000.0, "log", unit="Hz"),
    ParamRange(0.0, 2.0, "power", exponent=2.0, unit="s"),
]


@pytest.mark.parametrize("r", RANGES, ids=lambda r: r.scale)
def test_round_trip_and_endpoints(r: ParamRange) -> None:
    u = torch.linspace(0, 1, 101, dtype=torch.float64)
    v = r.denormalise(u)
    torch.testing.assert_close(v[0], torch.tensor(r.min, dtype=torch.float64))
    torch.testing.assert_close(v[-1], torch.tensor(r.max, dtype=torch.float64))
    assert torch.all(v[1:] > v[:-1]), "denormalise must be strictly increasing"
    torch.testing.assert_close(r.normalise(v), u, rtol=1e-9, atol=1e-9)
    raw = r.to_raw(v[1:-1])
    torch.testing.assert_close(r.from_raw(raw), v[1:-1], rtol=1e-6, atol=1e-6)
    assert r.min <= r.default_value <= r.max


def test_log_scale_is_geometric() -> None:
    r = ParamRange(20.0, 20000.0, "log")
    mid = float(r.denormalise(torch.tensor(0.5)))
    assert math.isclose(mid, math.sqrt(20 * 20000), rel_tol=1e-5)


@pytest.mark.parametrize("r", RANGES[:2], ids=lambda r: r.scale)
def test_maps_are_differentiable(r: ParamRange) -> None:
    u = torch.rand(5, dtype=torch.float64) * 0.8 + 0.1
    gradcheck64(lambda t: r.denormalise(t), [u.requires_grad_()])
    gradcheck64(lambda t: r.from_raw(t), [torch.randn(5, dtype=torch.float64).requires_grad_()])


def test_bad_ranges_are_rejected() -> None:
    with pytest.raises(InputError, match="min < max"):
        ParamRange(1.0, 1.0)
    with pytest.raises(InputError, match="log"):
        ParamRange(0.0, 1.0, "log")
    with pytest.raises(InputError, match="default"):
        ParamRange(0.0, 1.0, default=2.0)
    with pytest.raises(InputError, match="scale"):
        ParamRange(0.0, 1.0, "cubic")  # type: ignore[arg-type]


def test_dict_round_trip_and_shape_error() -> None:
    ranges = {"gain_db": RANGES[0], "cutoff_hz": RANGES[1]}
    u = torch.rand(4, 2, dtype=torch.float64)
    values = denormalise_dict(ranges, u)
    assert values["cutoff_hz"].shape == (4,)
    torch.testing.assert_close(normalise_dict(ranges, values), u)
    with pytest.raises(InputError, match="2 columns"):
        denormalise_dict(ranges, torch.rand(4, 3))
    with pytest.raises(InputError, match="missing"):
        normalise_dict(ranges, {"gain_db": torch.zeros(1)})


@settings(max_examples=50, deadline=None)
@given(st.floats(-1e4, 1e4, allow_nan=False))
def test_stability_maps_stay_in_bounds(x: float) -> None:
    t = torch.tensor([x], dtype=torch.float64)
    assert -1.0 <= float(bounded_sigmoid(t, -1.0, 3.0)) <= 3.0
    assert -2.0 <= float(bounded_tanh(t, 2.0)) <= 2.0
    r = float(pole_radius_map(t, 0.99))
    assert 0.0 <= r < 1.0
    assert float(positive_map(t)) >= 0.0
    assert float(exp_sigmoid(t)) > 0.0


def test_inverse_maps() -> None:
    v = torch.tensor([-0.5, 0.0, 2.5], dtype=torch.float64)
    torch.testing.assert_close(bounded_sigmoid(inverse_bounded_sigmoid(v, -1, 3), -1, 3), v)
    p = torch.tensor([1e-3, 0.5, 30.0], dtype=torch.float64)
    torch.testing.assert_close(positive_map(inverse_positive_map(p)), p, rtol=1e-7, atol=1e-9)


def test_orthogonal_map_is_orthogonal_and_differentiable() -> None:
    w = torch.randn(3, 6, 6, dtype=torch.float64)
    q = orthogonal_map(w)
    eye = torch.eye(6, dtype=torch.float64).expand(3, 6, 6)
    torch.testing.assert_close(q @ q.transpose(-1, -2), eye, rtol=0, atol=1e-12)
    gradcheck64(orthogonal_map, [torch.randn(4, 4, dtype=torch.float64).requires_grad_()])
    with pytest.raises(InputError, match="square"):
        orthogonal_map(torch.zeros(3, 4))
