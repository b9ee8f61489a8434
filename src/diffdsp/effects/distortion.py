"""Distortion: drive into a static waveshaper, then a one-pole tone filter, dry/wet mix.

References:
    Steinmetz et al., JAES 2022 (dasp ``distortion``); Yeh, Abel & Smith, "Simplified,
    physically-informed models of distortion and overdrive guitar effects pedals", DAFx 2007
    (tanh and cubic soft clipping).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from diffdsp._numerics import db_to_amp
from diffdsp._validation import check_choice, check_in_range
from diffdsp.effects.base import Effect
from diffdsp.functional.dynamics import one_pole
from diffdsp.params import ParamRange

__all__ = ["Distortion", "soft_clip"]


def soft_clip(x: Tensor) -> Tensor:
    """Cubic soft clipper ``1.5 (x - x^3/3)`` for ``|x| <= 1``, ``+-1`` beyond (C1-continuous).

    Examples:
        >>> soft_clip(torch.tensor([0.0, 1.0, 3.0]))
        tensor([0., 1., 1.])
    """
    xc = x.clamp(-1.0, 1.0)  # the saturation itself, not a silent output clip
    return 1.5 * (xc - xc**3 / 3.0)


class Distortion(Effect):
    """Waveshaping distortion with drive, tone and mix.

    ``wet = shaper(10^(drive_db/20) x)`` (``tanh`` or cubic ``soft`` clip, both bounded by 1),
    low-passed by a one-pole at ``tone_hz``; ``y = (1 - mix) x + mix wet``.

    Parameters: ``drive_db`` [0, 40], ``tone_hz`` [500, 20000] (log, below Nyquist),
    ``mix`` [0, 1].

    Args:
        sample_rate: sample rate in Hz.
        shape: ``"tanh"`` or ``"soft"``.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> d = Distortion(44100)
        >>> y = d(torch.ones(1, 1, 8) * 0.1, drive_db=0.0, mix=1.0, tone_hz=20000.0)
        >>> round(float(y[0, 0, -1]), 3)  # tanh(0.1) through an almost transparent tone filter
        0.1

    References:
        Yeh, Abel & Smith, DAFx 2007; Steinmetz et al., JAES 2022.
    """

    def __init__(self, sample_rate: int, *, shape: Literal["tanh", "soft"] = "tanh") -> None:
        super().__init__(sample_rate)
        self.shape = check_choice(shape, "shape", ("tanh", "soft"))
        top = min(20000.0, 0.45 * sample_rate)
        self.param_ranges = {
            "drive_db": ParamRange(0.0, 40.0, unit="dB", default=12.0),
            "tone_hz": ParamRange(min(500.0, top / 2), top, "log", unit="Hz", default=top),
            "mix": ParamRange(0.0, 1.0, default=1.0),
        }

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Apply drive, shaper, tone and mix."""
        driven = x * db_to_amp(values["drive_db"])[..., None]
        wet = torch.tanh(driven) if self.shape == "tanh" else soft_clip(driven)
        check_in_range(values["tone_hz"], "tone_hz", 0.0, self.sample_rate / 2, low_inclusive=False)
        alpha = torch.exp(-2 * math.pi * values["tone_hz"] / self.sample_rate)
        wet = one_pole(wet, alpha=alpha.expand(x.shape[:-1]))
        mix = values["mix"][..., None]
        return (1 - mix) * x + mix * wet
