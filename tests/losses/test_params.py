"""Parameter losses: regression over normalised parameters and categorical cross-entropy."""

from __future__ import annotations

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.losses.params import ParameterLoss, categorical_loss, regression_loss
from tests.helpers import gradcheck64


def test_regression_and_weights() -> None:
    p = torch.tensor([[0.2, 0.4, 0.9]])
    q = torch.tensor([[0.2, 0.6, 0.5]])
    assert abs(float(regression_loss(p, q)) - 0.2) < 1e-7
    assert abs(float(regression_loss(p, q, distance="L2")) - (0.04 + 0.16) / 3) < 1e-7
    w = torch.tensor([0.0, 1.0, 0.0])
    assert abs(float(regression_loss(p, q, weights=w)) - 0.2) < 1e-6


def test_categorical_matches_torch() -> None:
    logits = torch.randn(5, 4)
    idx = torch.randint(0, 4, (5,))
    torch.testing.assert_close(categorical_loss(logits, idx),
                               torch.nn.functional.cross_entropy(logits, idx))
    onehot = torch.nn.functional.one_hot(idx, 4).float()
    torch.testing.assert_close(categorical_loss(logits, onehot), categorical_loss(logits, idx))
    with pytest.raises(InputError, match="shape"):
        categorical_loss(logits, torch.zeros(5, 3))


def test_parameter_loss_module_and_grad() -> None:
    loss = ParameterLoss(distance="L2", w_categorical=0.5, reduction="none")
    p, q = torch.rand(3, 4), torch.rand(3, 4)
    logits = {"osc": torch.randn(3, 3)}
    cls = {"osc": torch.tensor([0, 1, 2])}
    v = loss(p, q, logits, cls)
    want = regression_loss(p, q, distance="L2", reduction="none") + 0.5 * categorical_loss(
        logits["osc"], cls["osc"], reduction="none")
    torch.testing.assert_close(v, want)
    with pytest.raises(InputError, match="keys"):
        loss(p, q, logits, {"other": cls["osc"]})
    a = torch.rand(2, 3, dtype=torch.float64).requires_grad_(True)
    b = torch.rand(2, 3, dtype=torch.float64)
    gradcheck64(lambda u: regression_loss(u, b, distance="L2"), (a,))
    lg = torch.randn(2, 3, dtype=torch.float64).requires_grad_(True)
    gradcheck64(lambda u: categorical_loss(u, torch.tensor([0, 2])), (lg,))
