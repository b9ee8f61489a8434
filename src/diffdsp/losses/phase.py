"""Phase-aware losses: the interference loss of Bargum et al. (DAFx 2023).

``S(y) + S(ŷ)`` against ``S(y + ŷ)``: two signals with equal magnitudes but different phases
interfere destructively in their sum, so the gap measures phase misalignment while ignoring
magnitude. Since the STFT is linear, ``STFT(y + ŷ) = Y + Ŷ`` and each resolution needs only two
transforms.

**Which S.** With ``S = |STFT|`` (``power=1``, the default) the gap ``|Y| + |Ŷ| - |Y + Ŷ| >= 0`` is
zero exactly when the two are in phase (the triangle inequality), which is what alignment needs.
With ``S = |STFT|^2`` (``power=2``, eq. (8) of the paper taken literally) the gap is
``-2 Re(Y conj(Ŷ))``, whose square is *minimised at a 90-degree phase offset* and maximal when
the signals are in phase (tested in ``tests/losses/test_phase.py``); it is kept for reproduction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_tensor
from diffdsp.functional.analysis import get_window, stft
from diffdsp.losses.spectral import reduce_loss

__all__ = ["BARGUM_FFT", "BARGUM_HOP", "BARGUM_WIN", "InterferenceLoss", "interference_loss"]

#: The paper's three STFT settings (Table 1): FFT size, hop, window.
BARGUM_FFT = (512, 1024, 2048)
BARGUM_HOP = (50, 120, 240)
BARGUM_WIN = (240, 600, 1200)


def _mag(spec: Tensor, power: float, eps: float) -> Tensor:
    p = torch.view_as_real(spec).square().sum(-1)
    if power == 2.0:
        return p
    return p.clamp_min(eps).sqrt()


def interference_loss(
    input: Tensor,
    target: Tensor,
    *,
    fft_sizes: Sequence[int] = BARGUM_FFT,
    hop_sizes: Sequence[int] = BARGUM_HOP,
    win_lengths: Sequence[int] = BARGUM_WIN,
    power: float = 1.0,
    normalize: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Tensor:
    """Multi-resolution interference loss ``mean ((S(y) + S(ŷ)) - S(y + ŷ))^2``.

    Args:
        input: estimate ``ŷ`` ``(..., time)``.
        target: reference ``y`` ``(..., time)``.
        fft_sizes: FFT sizes (default the paper's 512, 1024, 2048).
        hop_sizes: hops (50, 120, 240).
        win_lengths: Hann window lengths (240, 600, 1200).
        power: 1 (magnitudes; minimum at alignment) or 2 (the paper's eq. (8); see module docs).
        normalize: divide each resolution's error by ``mean (S(y) + S(ŷ))^2`` (scale-free).
        eps: floor on ``|X|^2`` under the square root (``power=1``).
        reduction: per-item reduction.

    Returns:
        Scalar or ``(...)``; the mean over resolutions (eq. (9)).

    Examples:
        >>> x = torch.randn(1, 8000)
        >>> interference_loss(x, x).item() < 1e-6
        True
        >>> interference_loss(x, -x).item() > 1.0
        True

    References:
        Bargum, Serafin, Erkut & Parker, "Differentiable all-pass filters for phase response
        estimation and automatic signal alignment", DAFx 2023, eqs. (7)-(9) and Table 1.
    """
    check_tensor(input, "input", min_ndim=1)
    check_tensor(target, "target", min_ndim=1)
    if input.shape != target.shape:
        raise InputError(f"input and target must have the same shape, got {tuple(input.shape)} "
                         f"and {tuple(target.shape)}")
    check_choice(power, "power", (1.0, 2.0))
    if not (len(fft_sizes) == len(hop_sizes) == len(win_lengths)) or not fft_sizes:
        raise InputError("fft_sizes, hop_sizes and win_lengths must be non-empty, equal lengths")
    total: Tensor | float = 0.0
    for n_fft, hop, wl in zip(fft_sizes, hop_sizes, win_lengths, strict=False):
        w = get_window("hann", int(wl), dtype=input.dtype, device=input.device)
        yh = stft(input, n_fft=int(n_fft), hop_length=int(hop), win_length=int(wl), window=w)
        y = stft(target, n_fft=int(n_fft), hop_length=int(hop), win_length=int(wl), window=w)
        s_sep = _mag(y, power, eps) + _mag(yh, power, eps)
        s_sum = _mag(y + yh, power, eps)
        err = (s_sep - s_sum).square().mean((-2, -1))
        if normalize:
            err = err / (s_sep.square().mean((-2, -1)) + eps)
        total = total + err
    return reduce_loss(torch.as_tensor(total) / len(fft_sizes), reduction)


class InterferenceLoss(nn.Module):
    """Module form of :func:`interference_loss` (the paper's three resolutions by default).

    Examples:
        >>> loss = InterferenceLoss()
        >>> x = torch.randn(2, 8000)
        >>> loss(x, x).item() < 1e-6
        True

    References:
        Bargum et al., DAFx 2023.
    """

    def __init__(self, fft_sizes: Sequence[int] = BARGUM_FFT,
                 hop_sizes: Sequence[int] = BARGUM_HOP, win_lengths: Sequence[int] = BARGUM_WIN,
                 power: float = 1.0, normalize: bool = False, eps: float = 1e-8,
                 reduction: str = "mean") -> None:
        super().__init__()
        check_choice(power, "power", (1.0, 2.0))
        self.fft_sizes, self.hop_sizes = list(fft_sizes), list(hop_sizes)
        self.win_lengths = list(win_lengths)
        self.power, self.normalize, self.eps = power, normalize, eps
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum", "none"))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Interference loss."""
        return interference_loss(input, target, fft_sizes=self.fft_sizes,
                                 hop_sizes=self.hop_sizes, win_lengths=self.win_lengths,
                                 power=self.power, normalize=self.normalize, eps=self.eps,
                                 reduction=self.reduction)
