"""Parameter losses for parameter-supervised sound matching: regression over normalised
parameters (L1 / L2) plus cross-entropy over categorical parameters.

Continuous parameters are compared in the normalised [0, 1] space of their
:class:`diffdsp.params.ParamRange` (so a cutoff in Hz and a gain in dB weigh alike); categorical
ones are given as logits (prediction) against class indices or one-hot/probability targets.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_tensor
from diffdsp.losses.spectral import reduce_loss

__all__ = ["ParameterLoss", "categorical_loss", "regression_loss"]


def regression_loss(
    input: Tensor, target: Tensor, *, distance: str = "L1", weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Distance between normalised parameter vectors ``(..., n_params)``, per item.

    Args:
        input: predicted normalised parameters ``(..., n_params)``.
        target: true normalised parameters, same shape.
        distance: ``"L1"`` (mean absolute) or ``"L2"`` (mean squared).
        weights: optional per-parameter weights ``(n_params,)`` (normalised to sum 1).
        reduction: per-item reduction.

    Returns:
        Scalar or ``(...)``.

    Examples:
        >>> regression_loss(torch.tensor([[0.5, 0.0]]), torch.tensor([[0.0, 0.0]]))
        tensor(0.2500)

    References:
        Masuda & Saito, "Improving semi-supervised differentiable synthesizer sound matching",
        IEEE/ACM TASLP 2023 (parameter loss).
    """
    check_tensor(input, "input", min_ndim=1)
    check_tensor(target, "target", min_ndim=1)
    if input.shape != target.shape:
        raise InputError(f"input and target must have the same shape, got {tuple(input.shape)} "
                         f"and {tuple(target.shape)}")
    check_choice(distance, "distance", ("L1", "L2"))
    d = (input - target).abs() if distance == "L1" else (input - target).square()
    if weights is None:
        per = d.mean(-1)
    else:
        w = weights.to(d.dtype)
        per = (d * w).sum(-1) / w.sum().clamp_min(1e-12)
    return reduce_loss(per, reduction)


def categorical_loss(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``logits`` ``(..., n_classes)`` against class indices ``(...)`` (integer)
    or class probabilities / one-hot ``(..., n_classes)``.

    Examples:
        >>> logits = torch.tensor([[10.0, -10.0]])
        >>> round(categorical_loss(logits, torch.tensor([0])).item(), 4)
        0.0
    """
    check_tensor(logits, "logits", min_ndim=1)
    logp = F.log_softmax(logits, dim=-1)
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise InputError(f"probability targets must have the logits' shape "
                             f"{tuple(logits.shape)}, got {tuple(target.shape)}")
        per = -(target * logp).sum(-1)
    else:
        if target.shape != logits.shape[:-1]:
            raise InputError(f"index targets must have shape {tuple(logits.shape[:-1])}, got "
                             f"{tuple(target.shape)}")
        per = -logp.gather(-1, target.long().unsqueeze(-1)).squeeze(-1)
    return reduce_loss(per, reduction)


class ParameterLoss(nn.Module):
    """Regression over continuous normalised parameters + weighted cross-entropy per categorical.

    Args:
        distance: ``"L1"`` or ``"L2"`` for the continuous part.
        w_regression: weight of the continuous part.
        w_categorical: weight of the summed categorical cross-entropies.
        reduction: per-item reduction.

    Forward:
        ``loss(pred_params, true_params, pred_logits=None, true_classes=None)`` where the params are
        ``(..., n_params)`` in [0, 1] and the categoricals are dicts ``name -> logits`` and
        ``name -> indices/probabilities``.

    Examples:
        >>> loss = ParameterLoss()
        >>> p = torch.rand(4, 3)
        >>> logits = {"wave": torch.tensor([[9.0, -9.0]]).repeat(4, 1)}
        >>> round(loss(p, p, logits, {"wave": torch.zeros(4, dtype=torch.long)}).item(), 4)
        0.0
    """

    def __init__(self, distance: str = "L1", w_regression: float = 1.0,
                 w_categorical: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.distance = check_choice(distance, "distance", ("L1", "L2"))
        self.w_regression, self.w_categorical = w_regression, w_categorical
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum", "none"))

    def forward(
        self, pred_params: Tensor, true_params: Tensor,
        pred_logits: Mapping[str, Tensor] | None = None,
        true_classes: Mapping[str, Tensor] | None = None,
    ) -> Tensor:
        """Parameter loss."""
        per = self.w_regression * regression_loss(pred_params, true_params,
                                                  distance=self.distance, reduction="none")
        if pred_logits:
            if true_classes is None or set(true_classes) != set(pred_logits):
                raise InputError(f"true_classes must have the keys {sorted(pred_logits)}, got "
                                 f"{sorted(true_classes or {})}")
            ce = sum((categorical_loss(v, true_classes[k], reduction="none")
                      for k, v in pred_logits.items()), torch.zeros_like(per))
            per = per + self.w_categorical * ce
        return reduce_loss(per, self.reduction)
