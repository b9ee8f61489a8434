"""Safe numerics: finite values and gradients at 0 and agreement with closed forms."""

from __future__ import annotations

import math

import torch

from diffdsp._numerics import (
    amp_to_db,
    cents,
    db_to_amp,
    db_to_power,
    hz_to_midi,
    midi_to_hz,
    next_pow2,
    power_to_db,
    safe_divide,
    safe_log,
    safe_sqrt,
)
from tests.helpers import assert_finite


def test_gradients_finite_at_zero() -> None:
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    y = safe_log(x).sum() + amp_to_db(x).sum() + power_to_db(x).sum() + safe_sqrt(x).sum()
    y = y + safe_divide(torch.ones(4, dtype=torch.float64), x).sum()
    y.backward()
    assert x.grad is not None
    assert_finite(x.grad, "gradient at 0")
    assert_finite(y.detach(), "value at 0")


def test_db_round_trips() -> None:
    v = torch.tensor([1e-3, 0.1, 1.0, 7.0], dtype=torch.float64)
    torch.testing.assert_close(db_to_amp(amp_to_db(v)), v)
    torch.testing.assert_close(db_to_power(power_to_db(v)), v)
    assert math.isclose(float(amp_to_db(torch.tensor(0.5, dtype=torch.float64))),
                        20 * math.log10(0.5), rel_tol=1e-12)


def test_divide_keeps_sign() -> None:
    out = safe_divide(torch.tensor([1.0, 1.0]), torch.tensor([-2.0, 2.0]))
    torch.testing.assert_close(out, torch.tensor([-0.5, 0.5]))


def test_pitch_helpers() -> None:
    f = torch.tensor([27.5, 261.6255653, 4186.009], dtype=torch.float64)
    torch.testing.assert_close(midi_to_hz(hz_to_midi(f)), f)
    midi = torch.tensor([21.0, 60.0, 108.0], dtype=torch.float64)
    torch.testing.assert_close(hz_to_midi(f), midi, rtol=0, atol=1e-5)
    torch.testing.assert_close(cents(torch.tensor([466.1637615]), torch.tensor([440.0])),
                               torch.tensor([100.0]), rtol=0, atol=1e-3)
    assert next_pow2(1) == 1 and next_pow2(1025) == 2048
