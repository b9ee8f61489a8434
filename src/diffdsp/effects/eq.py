"""Parametric equaliser: low shelf, N peaking bands, high shelf (DeepAFx-ST's 6-band EQ).

References:
    Steinmetz, Bryan & Reiss, "Style transfer of audio effects with differentiable signal
    processing", JAES 2022, sec. 3.2. R. Bristow-Johnson, Audio EQ Cookbook.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from diffdsp._validation import InputError, check_choice, check_int, check_tensor
from diffdsp.effects.base import Effect, check_audio
from diffdsp.functional import freq, iir
from diffdsp.functional.filters import parametric_eq_sos
from diffdsp.params import ParamRange

__all__ = ["ParametricEQ"]


class ParametricEQ(Effect):
    """Parametric EQ: a low shelf, ``n_bands - 2`` peaking filters and a high shelf in series.

    Parameters per band ``<band>`` (``low_shelf``, ``band1`` .. ``band{n-2}``, ``high_shelf``):
    ``<band>_cutoff_hz`` (log scale), ``<band>_q`` (log scale) and ``<band>_gain_db`` (linear,
    default 0 dB), in that column order; peaking-band cutoff ranges tile 40 Hz ..
    ``min(0.45 sample_rate, 16 kHz)`` on a log scale. Drive it with physical keywords, a
    normalised ``(batch, n_params)`` tensor, or structured ``controls (batch, bands, 3)`` with
    columns ``(cutoff_hz, q, gain_db)`` (what :func:`~diffdsp.functional.filters.parametric_eq_sos`
    takes).

    Args:
        sample_rate: sample rate in Hz (>= 8000).
        n_bands: total number of bands (>= 2); 6 as in DeepAFx-ST.
        method: ``"exact"`` (recursive filtering with :func:`~diffdsp.functional.iir.sosfilt`, no
            truncation) or ``"freq"`` (frequency sampling with
            :func:`~diffdsp.functional.freq.fft_filter`, padded for a linear convolution).
        max_gain_db: gain range ``[-max_gain_db, max_gain_db]`` of every band.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> eq = ParametricEQ(44100)
        >>> eq.n_params
        18
        >>> x = torch.randn(2, 1, 1000)
        >>> y = eq(x, band1_gain_db=6.0, band1_cutoff_hz=1000.0)
        >>> y.shape
        torch.Size([2, 1, 1000])
        >>> bool(torch.allclose(eq(x), x, atol=1e-5))  # all gains 0 dB: identity
        True

    References:
        Steinmetz et al., JAES 2022, sec. 3.2; RBJ Audio EQ Cookbook.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        n_bands: int = 6,
        method: str = "exact",
        max_gain_db: float = 12.0,
    ) -> None:
        super().__init__(sample_rate)
        if self.sample_rate < 8000:
            raise InputError(f"ParametricEQ needs sample_rate >= 8000, got {self.sample_rate}")
        self.n_bands = check_int(n_bands, "n_bands", minimum=2)
        self.method = check_choice(method, "method", ("exact", "freq"))
        if not max_gain_db > 0:
            raise InputError(f"max_gain_db must be > 0, got {max_gain_db!r}")
        top = min(0.45 * self.sample_rate, 16000.0)
        n_peak = self.n_bands - 2
        edges = [40.0 * (top / 40.0) ** (i / max(n_peak, 1)) for i in range(n_peak + 1)]
        gain = ParamRange(-max_gain_db, max_gain_db, unit="dB", default=0.0, description="gain")
        ranges: dict[str, ParamRange] = {}

        def add(band: str, lo: float, hi: float, q_default: float, what: str) -> None:
            ranges[f"{band}_cutoff_hz"] = ParamRange(
                lo, hi, "log", unit="Hz", description=f"{what} frequency"
            )
            ranges[f"{band}_q"] = ParamRange(
                0.1, 10.0, "log", default=q_default, description=f"{what} quality factor"
            )
            ranges[f"{band}_gain_db"] = gain

        add("low_shelf", 20.0, min(2000.0, top), 0.7071, "low-shelf midpoint")
        for i in range(n_peak):
            add(f"band{i + 1}", edges[i], edges[i + 1], 1.0, f"peaking band {i + 1} centre")
        add("high_shelf", min(1000.0, top / 2), top, 0.7071, "high-shelf midpoint")
        self.param_ranges = ranges
        self.band_names = ["low_shelf"] + [f"band{i + 1}" for i in range(n_peak)] + ["high_shelf"]

    def controls_from_values(self, values: dict[str, Tensor]) -> Tensor:
        """Structured controls ``(batch, bands, 3)`` from physical ``{name: (batch, 1)}`` values."""
        cols = [
            torch.cat([values[f"{b}_cutoff_hz"], values[f"{b}_q"], values[f"{b}_gain_db"]], dim=-1)
            for b in self.band_names
        ]
        return torch.stack(cols, dim=-2)

    def controls(self, x: Tensor, params: Tensor | None = None, **physical: Any) -> Tensor:
        """The ``(batch, bands, 3)`` controls that params/keywords resolve to for ``x``'s batch."""
        return self.controls_from_values(self.resolve(x, params, physical))

    def filter_controls(self, x: Tensor, controls: Tensor) -> Tensor:
        """Apply the EQ given structured controls ``(batch, bands, 3)`` (or ``(bands, 3)``)."""
        check_tensor(controls, "controls", ndim=(2, 3))
        if controls.shape[-2:] != (self.n_bands, 3):
            raise InputError(
                f"controls must have shape (batch, {self.n_bands}, 3) with columns "
                f"(cutoff_hz, q, gain_db), got {tuple(controls.shape)}"
            )
        sos = parametric_eq_sos(controls.to(x.dtype), sample_rate=self.sample_rate)
        if sos.ndim == 3:
            sos = sos[:, None]  # (batch, 1, bands, 6): broadcast over channels
        if self.method == "exact":
            return iir.sosfilt(sos, x)
        return freq.fft_filter(x, sos)

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Filter with physical values ``(batch, 1)``."""
        return self.filter_controls(x, self.controls_from_values(values))

    def forward(
        self,
        x: Tensor,
        params: Tensor | None = None,
        *,
        controls: Tensor | None = None,
        **physical: Any,
    ) -> Tensor:
        """Equalise ``x`` ``(batch, channels, time)`` (see the class docstring)."""
        check_audio(x)
        if controls is not None:
            if params is not None or physical:
                raise InputError("give either controls or params/keyword values, not both")
            return self.filter_controls(x, controls)
        return self.process(x, **self.resolve(x, params, physical))

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, n_bands={self.n_bands}, method={self.method!r}"


