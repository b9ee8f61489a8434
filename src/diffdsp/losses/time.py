"""Time-domain losses: L1, MSE, ESR, SI-SDR, DC, and a delay-invariant wrapper.

Every function takes ``input`` (estimate) and ``target`` ``(..., time)`` and reduces per item
(each leading index is one item): ``reduction="none"`` returns ``(...)``.
Energies in denominators are floored (``eps``) so silence gives finite values and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_int, check_tensor
from diffdsp.losses.spectral import reduce_loss

__all__ = [
    "DCLoss",
    "DelayInvariantLoss",
    "ESRLoss",
    "L1Loss",
    "MSELoss",
    "SISDRLoss",
    "align_by_xcorr",
    "dc_loss",
    "esr_loss",
    "l1_loss",
    "mse_loss",
    "si_sdr_loss",
]


def _check_pair(input: Tensor, target: Tensor) -> None:
    check_tensor(input, "input", min_ndim=1)
    check_tensor(target, "target", min_ndim=1)
    if input.shape != target.shape:
        raise InputError(
            f"input and target must have the same shape, got {tuple(input.shape)} and "
            f"{tuple(target.shape)}"
        )


def l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean absolute error per item.

    Examples:
        >>> l1_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]))
        tensor(1.5000)
    """
    _check_pair(input, target)
    return reduce_loss((input - target).abs().mean(-1), reduction)


def mse_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean squared error per item.

    Examples:
        >>> mse_loss(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]]))
        tensor(5.)
    """
    _check_pair(input, target)
    return reduce_loss((input - target).square().mean(-1), reduction)


def esr_loss(
    input: Tensor, target: Tensor, *, start: int = 0, eps: float = 1e-8, reduction: str = "mean"
) -> Tensor:
    """Error-to-signal ratio ``sum (y - y_hat)^2 / (sum y^2 + eps)`` per item, from ``start``.

    Args:
        input: estimate ``(..., time)``.
        target: reference ``(..., time)``.
        start: first sample included (e.g. the mixing time of a room response), >= 0.
        eps: added to the target energy (auraloss's convention, so values match it).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        Scalar or ``(...)``.

    Examples:
        >>> y = torch.tensor([[1.0, -1.0, 1.0]])
        >>> round(esr_loss(0.5 * y, y).item(), 4)
        0.25

    References:
        Wright & Välimäki, "Perceptual loss function for neural modelling of audio systems",
        ICASSP 2020, eq. (1).
    """
    _check_pair(input, target)
    s = check_int(start, "start", minimum=0, maximum=max(0, input.shape[-1] - 1))
    x, y = input[..., s:], target[..., s:]
    per = (y - x).square().sum(-1) / (y.square().sum(-1) + eps)
    return reduce_loss(per, reduction)


def dc_loss(input: Tensor, target: Tensor, *, eps: float = 1e-8, reduction: str = "mean") -> Tensor:
    """DC error ``mean(y - y_hat)^2 / (mean y^2 + eps)`` per item.

    Examples:
        >>> dc_loss(torch.zeros(1, 4), torch.ones(1, 4)).round(decimals=4)
        tensor(1.)

    References:
        Wright & Välimäki, ICASSP 2020, eq. (3).
    """
    _check_pair(input, target)
    per = (target - input).mean(-1).square() / (target.square().mean(-1) + eps)
    return reduce_loss(per, reduction)


def si_sdr_loss(
    input: Tensor, target: Tensor, *, zero_mean: bool = True, eps: float = 1e-8,
    reduction: str = "mean",
) -> Tensor:
    """Negative scale-invariant SDR in dB per item (lower is better).

    ``alpha = <x, y> / (||y||^2 + eps)``, ``SI-SDR = 10 log10(||alpha y||^2 / (||alpha y - x||^2 +
    eps) + eps)``; returns ``-SI-SDR`` (auraloss's ``SISDRLoss`` convention and epsilons).

    Examples:
        >>> y = torch.randn(1, 1000)
        >>> si_sdr_loss(2.0 * y, y).item() < -60
        True

    References:
        Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019.
    """
    _check_pair(input, target)
    x, y = input, target
    if zero_mean:
        x = x - x.mean(-1, keepdim=True)
        y = y - y.mean(-1, keepdim=True)
    alpha = (x * y).sum(-1, keepdim=True) / (y.square().sum(-1, keepdim=True) + eps)
    ys = alpha * y
    res = x - ys
    sdr = 10.0 * torch.log10(ys.square().sum(-1) / (res.square().sum(-1) + eps) + eps)
    return reduce_loss(-sdr, reduction)


def align_by_xcorr(
    input: Tensor, target: Tensor, *, max_lag: int | None = None
) -> tuple[Tensor, Tensor]:
    """Shift ``input`` by the lag maximising its cross-correlation with ``target``.

    The lag is found per item (FFT cross-correlation, no gradient through the arg-max); the
    shift is a zero-filled integer delay, differentiable w.r.t. ``input``.

    Args:
        input: estimate ``(..., time)``.
        target: reference ``(..., time)``.
        max_lag: search ``|lag| <= max_lag`` samples (default: the whole length).

    Returns:
        ``(aligned_input, lag_samples)``: ``aligned[..., n] = input[..., n - lag]`` and the integer
        lags ``(...)`` (positive: ``input`` was delayed to match ``target``).

    Examples:
        >>> y = torch.zeros(1, 64); y[0, 20] = 1.0
        >>> x = torch.zeros(1, 64); x[0, 15] = 1.0
        >>> aligned, lag = align_by_xcorr(x, y)
        >>> int(lag), int(aligned[0].argmax())
        (5, 20)

    References:
        Martínez Ramírez et al., "Differentiable signal processing with black-box audio
        effects", ICASSP 2021 (delay-invariant loss).
    """
    _check_pair(input, target)
    n = input.shape[-1]
    max_lag = n - 1 if max_lag is None else check_int(max_lag, "max_lag", minimum=0)
    max_lag = min(max_lag, n - 1)
    n_fft = 1 << math.ceil(math.log2(2 * n))
    with torch.no_grad():
        xc = torch.fft.irfft(
            torch.fft.rfft(target.detach(), n=n_fft)
            * torch.fft.rfft(input.detach(), n=n_fft).conj(),
            n=n_fft,
        )
        lags = torch.arange(-max_lag, max_lag + 1, device=input.device)
        cand = xc[..., lags % n_fft]
        lag = lags[cand.argmax(-1)]
    idx = torch.arange(n, device=input.device) - lag.unsqueeze(-1)
    valid = (idx >= 0) & (idx < n)
    gathered = torch.gather(input, -1, idx.clamp(0, n - 1).expand(input.shape))
    zero = torch.zeros((), dtype=input.dtype, device=input.device)
    return torch.where(valid, gathered, zero), lag


class _Reduced(nn.Module):
    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__()
        check_choice(reduction, "reduction", ("mean", "sum", "none"))
        self.reduction = reduction
        self.kwargs = kwargs


class L1Loss(_Reduced):
    """Module form of :func:`l1_loss`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss."""
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Reduced):
    """Module form of :func:`mse_loss`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss."""
        return mse_loss(input, target, reduction=self.reduction)


class ESRLoss(_Reduced):
    """Module form of :func:`esr_loss` (``start``, ``eps`` as keyword arguments).

    Examples:
        >>> ESRLoss(start=1)(torch.zeros(1, 3), torch.ones(1, 3)).item()
        1.0
    """

    def __init__(self, start: int = 0, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__(reduction, start=start, eps=eps)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss."""
        return esr_loss(input, target, reduction=self.reduction, **self.kwargs)


class DCLoss(_Reduced):
    """Module form of :func:`dc_loss`."""

    def __init__(self, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__(reduction, eps=eps)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss."""
        return dc_loss(input, target, reduction=self.reduction, **self.kwargs)


class SISDRLoss(_Reduced):
    """Module form of :func:`si_sdr_loss` (negative SI-SDR in dB)."""

    def __init__(self, zero_mean: bool = True, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__(reduction, zero_mean=zero_mean, eps=eps)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss."""
        return si_sdr_loss(input, target, reduction=self.reduction, **self.kwargs)


class DelayInvariantLoss(nn.Module):
    """Wrap any loss ``f(input, target)`` so it is computed after aligning by cross-correlation.

    Args:
        loss: a loss module or callable ``(input, target) -> Tensor``.
        max_lag: largest lag searched, in samples (default: whole length).

    Examples:
        >>> y = torch.zeros(1, 64); y[0, 20] = 1.0
        >>> x = torch.zeros(1, 64); x[0, 15] = 1.0
        >>> DelayInvariantLoss(L1Loss())(x, y).item()
        0.0

    References:
        Martínez Ramírez et al., ICASSP 2021.
    """

    def __init__(
        self, loss: Callable[[Tensor, Tensor], Tensor], max_lag: int | None = None
    ) -> None:
        super().__init__()
        self.loss = loss
        self.max_lag = max_lag

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of the aligned input."""
        aligned, _ = align_by_xcorr(input, target, max_lag=self.max_lag)
        return self.loss(aligned, target)
