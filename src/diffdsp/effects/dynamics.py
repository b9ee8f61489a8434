"""Compressor, expander, limiter and noise gate modules (exact attack/release ballistics).

References:
    Giannoulis, Massberg & Reiss, JAES 2012; Steinmetz et al., JAES 2022, eq. 3.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor

from diffdsp._numerics import safe_sqrt
from diffdsp._validation import check_choice, check_in_range
from diffdsp.effects.base import Effect
from diffdsp.functional import dynamics as F
from diffdsp.params import ParamRange

__all__ = ["Compressor", "Expander", "Limiter", "NoiseGate"]


class _Dynamics(Effect):
    mode: F.Mode = "compressor"

    def __init__(self, sample_rate: int, *, lookahead_ms: float = 0.0,
                 smoothing: Literal["exact", "fir"] = "exact", stereo_link: bool = True) -> None:
        super().__init__(sample_rate)
        check_in_range(lookahead_ms, "lookahead_ms", 0.0, 1000.0)
        self.lookahead_ms = float(lookahead_ms)
        self.smoothing: Literal["exact", "fir"] = check_choice(
            smoothing, "smoothing", ("exact", "fir")
        )
        self.stereo_link = bool(stereo_link)

    def gain_db(self, x: Tensor, **values: Tensor) -> Tensor:
        """The applied gain in dB ``(batch, channels or 1, time)`` (for gain-reduction plots)."""
        side = safe_sqrt(x.square().mean(1, keepdim=True)) if self.stereo_link else x
        vals: dict[str, Any] = dict(values)
        _, g = F.dynamics(side, sample_rate=self.sample_rate, mode=self.mode,
                          lookahead_ms=self.lookahead_ms, smoothing=self.smoothing,
                          return_gain_db=True, **vals)
        return g

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Apply the processor; channels share one detector when ``stereo_link``."""
        if self.stereo_link and x.shape[1] > 1:
            side = safe_sqrt(x.square().mean(1, keepdim=True)).expand_as(x)
        else:
            side = x
        vals: dict[str, Any] = dict(values)
        out = F.dynamics(x, sample_rate=self.sample_rate, mode=self.mode, sidechain=side,
                         lookahead_ms=self.lookahead_ms, smoothing=self.smoothing, **vals)
        assert isinstance(out, Tensor)
        return out


class Compressor(_Dynamics):
    """Feed-forward compressor: soft knee, makeup, separate exact attack/release.

    Parameters (``param_ranges``): ``threshold_db`` [-60, 0], ``ratio`` [1, 20] (log),
    ``attack_ms`` [0.1, 100] (log), ``release_ms`` [10, 1000] (log), ``knee_db`` [0, 12],
    ``makeup_db`` [0, 24].

    Args:
        sample_rate: sample rate in Hz.
        lookahead_ms: look-ahead in ms (gain advanced, output aligned with the input).
        smoothing: ``"exact"`` (eq. 3) or ``"fir"`` (DeepAFx-ST's shared-constant approximation).
        stereo_link: one detector (RMS over channels) for all channels.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> import torch
        >>> comp = Compressor(44100)
        >>> y = comp(torch.randn(2, 1, 4410) * 0.3, threshold_db=-30.0, ratio=8.0)
        >>> y.shape, comp.n_params
        (torch.Size([2, 1, 4410]), 6)

    References:
        Giannoulis et al., JAES 2012; Steinmetz et al., JAES 2022, Sec. 3.1.
    """

    mode: F.Mode = "compressor"

    def __init__(self, sample_rate: int, **kwargs: object) -> None:
        super().__init__(sample_rate, **kwargs)  # type: ignore[arg-type]
        self.param_ranges = {
            "threshold_db": ParamRange(-60.0, 0.0, unit="dB", default=-20.0),
            "ratio": ParamRange(1.0, 20.0, "log", default=4.0),
            "attack_ms": ParamRange(0.1, 100.0, "log", unit="ms", default=10.0),
            "release_ms": ParamRange(10.0, 1000.0, "log", unit="ms", default=100.0),
            "knee_db": ParamRange(0.0, 12.0, unit="dB", default=6.0),
            "makeup_db": ParamRange(0.0, 24.0, unit="dB", default=0.0),
        }


class Expander(_Dynamics):
    """Downward expander (attenuation grows ``ratio`` dB per dB below the threshold).

    Parameters: ``threshold_db`` [-80, 0], ``ratio`` [1, 10] (log), ``attack_ms`` [0.1, 100]
    (log, opening), ``release_ms`` [10, 1000] (log, closing), ``knee_db`` [0, 12],
    ``range_db`` [1, 80].

    Args:
        sample_rate: sample rate in Hz.
        lookahead_ms: look-ahead in ms.
        smoothing: ``"exact"`` or ``"fir"``.
        stereo_link: one detector for all channels.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> import torch
        >>> Expander(44100)(torch.zeros(1, 2, 64)).abs().max().item()
        0.0

    References:
        Giannoulis et al., JAES 2012, eq. 7.
    """

    mode: F.Mode = "expander"

    def __init__(self, sample_rate: int, **kwargs: object) -> None:
        super().__init__(sample_rate, **kwargs)  # type: ignore[arg-type]
        self.param_ranges = {
            "threshold_db": ParamRange(-80.0, 0.0, unit="dB", default=-40.0),
            "ratio": ParamRange(1.0, 10.0, "log", default=2.0),
            "attack_ms": ParamRange(0.1, 100.0, "log", unit="ms", default=5.0),
            "release_ms": ParamRange(10.0, 1000.0, "log", unit="ms", default=100.0),
            "knee_db": ParamRange(0.0, 12.0, unit="dB", default=6.0),
            "range_db": ParamRange(1.0, 80.0, unit="dB", default=40.0),
        }


class NoiseGate(Expander):
    """Noise gate: a steep expander (ratio [5, 100]) with a floor of ``-range_db``.

    Args:
        sample_rate: sample rate in Hz.
        lookahead_ms: look-ahead in ms.
        smoothing: ``"exact"`` or ``"fir"``.
        stereo_link: one detector for all channels.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> import torch
        >>> NoiseGate(44100).param_names[:2]
        ['threshold_db', 'ratio']

    References:
        Reiss & McPherson, "Audio Effects: Theory, Implementation and Application", 2014, ch. 6.
    """

    mode: F.Mode = "gate"

    def __init__(self, sample_rate: int, **kwargs: object) -> None:
        super().__init__(sample_rate, **kwargs)
        self.param_ranges = {
            "threshold_db": ParamRange(-90.0, -10.0, unit="dB", default=-50.0),
            "ratio": ParamRange(5.0, 100.0, "log", default=20.0),
            "attack_ms": ParamRange(0.1, 50.0, "log", unit="ms", default=1.0),
            "release_ms": ParamRange(5.0, 1000.0, "log", unit="ms", default=50.0),
            "knee_db": ParamRange(0.0, 12.0, unit="dB", default=3.0),
            "range_db": ParamRange(10.0, 90.0, unit="dB", default=60.0),
        }


class Limiter(_Dynamics):
    """Look-ahead limiter (infinite ratio).

    Parameters: ``threshold_db`` [-30, 0], ``attack_ms`` [0.01, 10] (log), ``release_ms``
    [5, 500] (log), ``knee_db`` [0, 6], ``makeup_db`` [0, 24].

    Args:
        sample_rate: sample rate in Hz.
        lookahead_ms: look-ahead in ms (default 1.5).
        smoothing: ``"exact"`` or ``"fir"``.
        stereo_link: one detector for all channels.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> import torch
        >>> y = Limiter(44100)(torch.ones(1, 1, 4410), threshold_db=-6.0, knee_db=0.0)
        >>> round(float(20 * torch.log10(y[0, 0, -1])), 2)
        -6.0

    References:
        Giannoulis et al., JAES 2012.
    """

    mode: F.Mode = "limiter"

    def __init__(self, sample_rate: int, *, lookahead_ms: float = 1.5, **kwargs: object) -> None:
        super().__init__(sample_rate, lookahead_ms=lookahead_ms, **kwargs)  # type: ignore[arg-type]
        self.param_ranges = {
            "threshold_db": ParamRange(-30.0, 0.0, unit="dB", default=-1.0),
            "attack_ms": ParamRange(0.01, 10.0, "log", unit="ms", default=0.5),
            "release_ms": ParamRange(5.0, 500.0, "log", unit="ms", default=50.0),
            "knee_db": ParamRange(0.0, 6.0, unit="dB", default=0.0),
            "makeup_db": ParamRange(0.0, 24.0, unit="dB", default=0.0),
        }
