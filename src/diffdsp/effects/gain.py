"""Gain (volume) in dB.

References:
    Steinmetz et al., JAES 2022 (gain stage of the effect chain).
"""

from __future__ import annotations

from torch import Tensor

from diffdsp._numerics import db_to_amp
from diffdsp.effects.base import Effect
from diffdsp.params import ParamRange

__all__ = ["Gain"]


class Gain(Effect):
    """Multiply by ``10^(gain_db / 20)``.

    Args:
        sample_rate: sample rate in Hz.
        min_db: lowest gain in dB.
        max_db: highest gain in dB.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> import torch
        >>> Gain(44100)(torch.ones(1, 1, 2), gain_db=-20.0)
        tensor([[[0.1000, 0.1000]]])

    References:
        Steinmetz et al., JAES 2022.
    """

    def __init__(self, sample_rate: int, *, min_db: float = -24.0, max_db: float = 24.0) -> None:
        super().__init__(sample_rate)
        self.param_ranges = {
            "gain_db": ParamRange(min_db, max_db, unit="dB", default=0.0, description="gain"),
        }

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Apply the gain."""
        return x * db_to_amp(values["gain_db"])[..., None]
