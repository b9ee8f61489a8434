"""Stereo width (mid/side) and constant-power panning.

References:
    Zölzer (ed.), "DAFX", 2nd ed., 2011, ch. 6 (spatial effects: panning, M/S width).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from diffdsp._validation import InputError
from diffdsp.effects.base import Effect
from diffdsp.params import ParamRange

__all__ = ["Pan", "StereoWidth"]


class StereoWidth(Effect):
    """Mid/side width: ``S <- width * S``; 0 is mono, 1 unchanged, 2 twice as wide.

    Parameters: ``width`` [0, 2].

    Args:
        sample_rate: sample rate in Hz.

    Shape:
        ``(batch, 2, time)`` -> same.

    Examples:
        >>> x = torch.tensor([[[1.0], [0.0]]])
        >>> StereoWidth(44100)(x, width=0.0).flatten().tolist()
        [0.5, 0.5]

    References:
        Zölzer, DAFX 2011, ch. 6.
    """

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.param_ranges = {"width": ParamRange(0.0, 2.0, default=1.0)}

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Scale the side signal."""
        if x.shape[1] != 2:
            raise InputError(f"StereoWidth needs 2 channels, got {x.shape[1]}")
        mid = (x[:, 0] + x[:, 1]) / 2
        side = (x[:, 0] - x[:, 1]) / 2 * values["width"]
        return torch.stack([mid + side, mid - side], dim=1)


class Pan(Effect):
    """Constant-power pan (mono in -> stereo out) or balance (stereo in).

    ``theta = (pan + 1) pi / 4``; mono: ``(cos theta, sin theta) x`` (-3 dB each at centre);
    stereo: channels scaled by ``sqrt(2) (cos theta, sin theta)`` (unity at centre).

    Parameters: ``pan`` [-1, 1] (-1 left, 1 right).

    Args:
        sample_rate: sample rate in Hz.

    Shape:
        ``(batch, 1 or 2, time)`` -> ``(batch, 2, time)``.

    Examples:
        >>> y = Pan(44100)(torch.ones(1, 1, 1), pan=-1.0)
        >>> [round(v, 4) for v in y.flatten().tolist()]
        [1.0, 0.0]

    References:
        Zölzer, DAFX 2011, ch. 6.
    """

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.param_ranges = {"pan": ParamRange(-1.0, 1.0, default=0.0)}

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Pan or balance."""
        theta = (values["pan"] + 1) * (math.pi / 4)
        gains = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)  # (batch, 2, 1)
        if x.shape[1] == 1:
            return x * gains
        if x.shape[1] == 2:
            return x * gains * math.sqrt(2.0)
        raise InputError(f"Pan needs 1 or 2 channels, got {x.shape[1]}")
