"""Differentiable feedback delay network (FDN) reverberator.

``H(z) = T(z) c^T (I - diag(g(z)) A)^{-1} diag(g(z)) b + d`` with ``g_i(z) = Gamma_i(z) z^{-m_i}``:
N delay lines of co-prime lengths ``m_i``, a feedback matrix ``A`` (orthogonal by construction by
default), input/output gains ``b, c``, a direct path ``d``, per-line attenuation filters
``Gamma_i`` and a tone-correction filter ``T`` on the reverberant output.

Attenuation (``attenuation=``):

- ``"none"``: lossless (with an orthogonal ``A`` the network does not decay);
- ``"homogeneous"``: ``Gamma_i = 10^(-3 m_i / (fs T60))`` (the same decay on every line);
- ``"lowpass"``: ``Gamma_i = g_i (1 - p) / (1 - p z^-1)``, ``g_i`` from the T60 at DC and the pole
  ``p = exp(-2 pi f_c / fs)`` from the cutoff (the tutorial's two-parameter filter);
- ``"geq"``: per-octave-band T60: each line's graphic EQ targets ``-60 m_i / (fs T60_k)`` dB at the
  band centres (interaction-matrix design, two stages); the line's filter is then scaled by
  ``min(1, 1 / max_w |Gamma_i(e^jw)|)`` (maximum over 2048 log-spaced frequencies on the unit
  circle), so its loop gain never exceeds 0 dB and the network is stable by construction
  whatever the optimiser does.

The response renders by frequency sampling (:meth:`FDN.impulse_response` ``method="freq"``,
differentiable) or by the exact time recursion (``method="time"``, for long tails and to verify).

References:
    Jot & Chaigne, AES 1991; Dal Santo et al., "Differentiable feedback delay network for colorless
    reverberation", DAFx 2023; Prawda, Schlecht & Välimäki, DAFx 2019 (GEQ attenuation);
    Välimäki & Liski, IEEE SPL 2017; Dal Santo et al., ICASSP 2025 (FLAMO).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_int
from diffdsp.functional.fdn import coprime_delays, fdn_time, fdn_transfer
from diffdsp.lti.core import FrequencyGrid, LTISystem
from diffdsp.lti.systems import GEQ, Delay, Matrix
from diffdsp.params import inverse_positive_map, positive_map

__all__ = ["FDN", "GEQAttenuation", "HomogeneousAttenuation", "LowpassAttenuation",
           "build_fdn"]

_MIN_T60 = 1e-3
# per-band T60 floor of the GEQ attenuation: keeps every command gain finite (at most
# 1200 dB per second of delay, e.g. -48 dB for a 40 ms line)
_MIN_T60_BAND = 0.05


class _Attenuation(LTISystem):
    """Per-line attenuation ``Gamma_i(z)`` (diagonal); ``sos()`` gives it for the time domain."""

    is_diagonal = True
    kind = "none"
    raw_t60: Tensor

    def __init__(self, grid: FrequencyGrid, delays: Delay) -> None:
        super().__init__(grid, delays.in_channels, delays.in_channels)
        self._delays = [delays]  # not a submodule: the FDN owns the delays

    @property
    def delay_samples(self) -> Tensor:
        return self._delays[0].samples.to(self.grid.dtype)

    def sos(self) -> Tensor:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


class HomogeneousAttenuation(_Attenuation):
    """``Gamma_i = 10^(-3 m_i / (fs T60))``: every line decays by 60 dB in ``t60_s``.

    Examples:
        >>> grid = FrequencyGrid(8, 1000)
        >>> att = HomogeneousAttenuation(grid, Delay(grid, [100.0]), t60_s=0.1)
        >>> round(float(att.diagonal_response()[0, 0].real.detach()), 6)   # -60 dB per 100 samples
        0.001
    """

    raw_t60: Tensor

    kind = "homogeneous"

    def __init__(self, grid: FrequencyGrid, delays: Delay, *, t60_s: float = 1.0,
                 learnable: bool = True) -> None:
        super().__init__(grid, delays)
        if not t60_s > _MIN_T60:
            raise InputError(f"t60_s must be > {_MIN_T60}, got {t60_s!r}")
        raw = inverse_positive_map(torch.tensor(float(t60_s), dtype=torch.float64), _MIN_T60)
        if learnable:
            self.raw_t60 = nn.Parameter(raw.to(grid.dtype))
        else:
            self.register_buffer("raw_t60", raw.to(grid.dtype))

    @property
    def t60_s(self) -> Tensor:
        return positive_map(self.raw_t60, _MIN_T60)

    def line_gains(self) -> Tensor:
        return torch.pow(10.0, -3.0 * self.delay_samples / (self.grid.sample_rate * self.t60_s))

    def diagonal_response(self) -> Tensor:
        return self.line_gains().to(self.grid.complex_dtype).unsqueeze(0).expand(
            self.grid.n_bins, -1)

    def sos(self) -> Tensor:
        g = self.line_gains()
        z = torch.zeros_like(g)
        return torch.stack([g, z, z, torch.ones_like(g), z, z], -1).unsqueeze(-2)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "t60_s": float(self.t60_s.detach())}


class LowpassAttenuation(_Attenuation):
    """First-order low-pass per line: T60 at DC and a cutoff (the tutorial's parameters).

    ``Gamma_i(z) = g_i (1 - p) / (1 - p z^-1)``, ``g_i = 10^(-3 m_i/(fs T60_dc))``,
    ``p = exp(-2 pi cutoff_hz / fs)``: unity-DC-gain low-pass, so the DC decay is exactly
    ``t60_dc_s`` and high frequencies decay faster.

    Examples:
        >>> grid = FrequencyGrid(8, 1000)
        >>> att = LowpassAttenuation(grid, Delay(grid, [100.0]), t60_dc_s=0.1, cutoff_hz=100.0)
        >>> round(float(att.diagonal_response()[0, 0].real.detach()), 6)
        0.001
    """

    raw_t60: Tensor
    raw_cutoff: Tensor

    kind = "lowpass"

    def __init__(self, grid: FrequencyGrid, delays: Delay, *, t60_dc_s: float = 1.0,
                 cutoff_hz: float = 4000.0, learnable: bool = True) -> None:
        super().__init__(grid, delays)
        if not t60_dc_s > _MIN_T60:
            raise InputError(f"t60_dc_s must be > {_MIN_T60}, got {t60_dc_s!r}")
        nyq = grid.sample_rate / 2
        if not 0 < cutoff_hz < nyq:
            raise InputError(f"cutoff_hz must be in (0, {nyq}) for sample_rate "
                             f"{grid.sample_rate}, got {cutoff_hz!r}")
        raw_t = inverse_positive_map(torch.tensor(float(t60_dc_s), dtype=torch.float64), _MIN_T60)
        raw_f = torch.logit(torch.tensor(cutoff_hz / nyq, dtype=torch.float64))
        for name, v in (("raw_t60", raw_t), ("raw_cutoff", raw_f)):
            if learnable:
                self.register_parameter(name, nn.Parameter(v.to(grid.dtype)))
            else:
                self.register_buffer(name, v.to(grid.dtype))

    @property
    def t60_dc_s(self) -> Tensor:
        return positive_map(self.raw_t60, _MIN_T60)

    @property
    def cutoff_hz(self) -> Tensor:
        return torch.sigmoid(self.raw_cutoff) * (self.grid.sample_rate / 2)

    def _coeffs(self) -> tuple[Tensor, Tensor]:
        g = torch.pow(10.0, -3.0 * self.delay_samples / (self.grid.sample_rate * self.t60_dc_s))
        p = torch.exp(-2.0 * math.pi * self.cutoff_hz / self.grid.sample_rate)
        return g, p.expand_as(g)

    def diagonal_response(self) -> Tensor:
        g, p = self._coeffs()
        cdt = self.grid.complex_dtype
        zi = self.grid.zinv.unsqueeze(-1)
        return g.to(cdt) * (1 - p.to(cdt)) / (1 - p.to(cdt) * zi)

    def sos(self) -> Tensor:
        g, p = self._coeffs()
        z = torch.zeros_like(g)
        return torch.stack([g * (1 - p), z, z, torch.ones_like(g), -p, z], -1).unsqueeze(-2)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "t60_dc_s": float(self.t60_dc_s.detach()),
                "cutoff_hz": float(self.cutoff_hz.detach())}


class GEQAttenuation(_Attenuation):
    """Per-octave-band T60 through a cut-only graphic EQ per line (stable by construction).

    Args:
        grid: the frequency grid.
        delays: the FDN's delays.
        t60_s: T60 per band ``(K,)`` (or one value for all bands), seconds.
        center_hz: band centres (default octave bands below Nyquist).
        learnable: train the per-band T60s.

    Examples:
        >>> grid = FrequencyGrid(2**12, 48000)
        >>> att = GEQAttenuation(grid, Delay(grid, [1000.0, 1500.0]), t60_s=1.0)
        >>> bool(att.diagonal_response().abs().max() <= 1.0)
        True

    References:
        Prawda, Schlecht & Välimäki, DAFx 2019; Välimäki & Liski, IEEE SPL 2017.
    """

    raw_t60: Tensor
    dense_hz: Tensor

    kind = "geq"

    def __init__(self, grid: FrequencyGrid, delays: Delay, *,
                 t60_s: float | Sequence[float] | Tensor = 1.0,
                 center_hz: Sequence[float] | None = None, learnable: bool = True) -> None:
        super().__init__(grid, delays)
        self.eq = GEQ(grid, delays.in_channels, center_hz=center_hz, max_gain_db=None,
                      learnable=False)
        kk = len(self.eq.center_hz)
        t = torch.as_tensor(t60_s, dtype=torch.float64).expand(kk).clone()
        if bool((t <= _MIN_T60).any()) or not bool(torch.isfinite(t).all()):
            raise InputError(f"t60_s must be finite and > {_MIN_T60}, got {t.tolist()}")
        if bool((t <= _MIN_T60_BAND).any()):
            raise InputError(f"t60_s must be > {_MIN_T60_BAND} s per band, got {t.tolist()}")
        raw = inverse_positive_map(t, _MIN_T60_BAND).to(grid.dtype)
        if learnable:
            self.raw_t60 = nn.Parameter(raw)
        else:
            self.register_buffer("raw_t60", raw)
        nyq = grid.sample_rate / 2.0
        self.register_buffer("dense_hz", torch.logspace(
            0.0, math.log10(0.999 * nyq), 2048, dtype=torch.float64).to(grid.dtype),
            persistent=False)

    @property
    def center_hz(self) -> list[float]:
        return list(self.eq.center_hz)

    @property
    def t60_s(self) -> Tensor:
        """Per-band T60 targets ``(K,)``, seconds (> 0.05 s by construction)."""
        return positive_map(self.raw_t60, _MIN_T60_BAND)

    def command_gains_db(self) -> Tensor:
        """``(N, K)`` command gains of every line's EQ (interaction-matrix design)."""
        target = -60.0 * self.delay_samples.unsqueeze(-1) / (
            self.grid.sample_rate * self.t60_s.unsqueeze(0))
        return self.eq.command_gains(target.to(torch.float64)).to(self.grid.dtype)

    def _gains_and_scale(self) -> tuple[Tensor, Tensor]:
        """Command gains and the per-line broadband factor ``<= 1`` that caps the peak at 0 dB."""
        gains = self.command_gains_db()
        dense = self.dense_hz.to(torch.float64)
        peak_db = _cascade_peak_db(self.eq, gains.to(torch.float64), dense)
        scale = torch.pow(10.0, -torch.clamp_min(peak_db, 0.0) / 20.0).to(self.grid.dtype)
        return gains, scale

    def peak_gain_db(self) -> Tensor:
        """``(N,)`` largest magnitude of each line's filter on the unit circle, dB (``<= 0``)."""
        gains, scale = self._gains_and_scale()
        peak = _cascade_peak_db(self.eq, gains.to(torch.float64), self.dense_hz.to(torch.float64))
        return peak + 20.0 * torch.log10(scale.to(torch.float64))

    def diagonal_response(self) -> Tensor:
        gains, scale = self._gains_and_scale()
        return self.eq.diagonal_response(gains) * scale.to(self.grid.complex_dtype)

    def sos(self) -> Tensor:
        gains, scale = self._gains_and_scale()
        sos = self.eq.sos(gains)
        first = sos[..., 0, :3] * scale.unsqueeze(-1)
        return torch.cat([torch.cat([first, sos[..., 0, 3:]], -1).unsqueeze(-2), sos[..., 1:, :]],
                         -2)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "t60_s": [float(v) for v in self.t60_s.detach()],
                "center_hz": self.center_hz}


def _cascade_peak_db(eq: GEQ, gain_db: Tensor, freqs_hz: Tensor) -> Tensor:
    """``(N,)`` maximum over ``freqs_hz`` of the cascade's dB magnitude (unit circle)."""
    total = eq.response_at_db(gain_db, freqs_hz)
    return total.amax(-1)


class FDN(LTISystem):
    """Feedback delay network, SISO, sampled on a :class:`FrequencyGrid`.

    Args:
        grid: the frequency grid (its nfft is the frequency-sampled impulse-response length).
        delay_samples: N delay lengths in samples (integers for the time-domain renderer).
        matrix_kind: :class:`~diffdsp.lti.systems.Matrix` parameterisation.
        matrix_init: optional raw matrix parameter.
        input_gains: ``(N,)`` (default ``1/sqrt(N)`` with random signs).
        output_gains: ``(N,)`` (default ``1/sqrt(N)`` with random signs).
        direct_gain: direct path gain.
        attenuation: ``"none" | "homogeneous" | "lowpass" | "geq"``.
        t60_s: T60 (seconds) for ``homogeneous``/``lowpass`` (at DC), per band for ``geq``.
        cutoff_hz: low-pass cutoff for ``lowpass``.
        center_hz: band centres for ``geq`` and the tone corrector.
        tone_gain_db: per-band tone-correction gains (dB) on the reverberant output, or None.
        learn_delays: make the delays learnable (fractional; the time renderer then refuses).
        seed: seed of the random initialisation.

    Examples:
        >>> grid = FrequencyGrid(2**12, 8000, alias_decay_db=30.0, dtype=torch.float64)
        >>> fdn = FDN(grid, [101, 131, 151, 173], attenuation="homogeneous", t60_s=0.1)
        >>> h_f = fdn.impulse_response(method="freq")
        >>> h_t = fdn.impulse_response(method="time")
        >>> bool((h_f - h_t).abs().max() < 1e-9)
        True

    References:
        Jot & Chaigne, AES 1991; Dal Santo et al., DAFx 2023 and ICASSP 2025.
    """

    def __init__(
        self,
        grid: FrequencyGrid,
        delay_samples: Sequence[float] | Tensor,
        *,
        matrix_kind: str = "orthogonal",
        matrix_init: Tensor | None = None,
        input_gains: Sequence[float] | Tensor | None = None,
        output_gains: Sequence[float] | Tensor | None = None,
        direct_gain: float = 0.0,
        attenuation: str = "none",
        t60_s: float | Sequence[float] | Tensor = 1.0,
        cutoff_hz: float = 4000.0,
        center_hz: Sequence[float] | None = None,
        tone_gain_db: Sequence[float] | Tensor | None = None,
        learn_delays: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(grid, 1, 1)
        d = torch.as_tensor(delay_samples, dtype=torch.float64)
        if d.ndim != 1 or d.numel() < 1:
            raise InputError(f"delay_samples must be a 1-D list of N >= 1 values, got {d.tolist()}")
        n = d.numel()
        self.n_lines = n
        self.delays = Delay(grid, d, learnable=learn_delays, min_samples=0.5)
        self.matrix = Matrix(grid, n, kind=matrix_kind, seed=seed, init=matrix_init)
        gen = torch.Generator().manual_seed(seed + 1)
        dt = grid.dtype

        def _gains(v: Sequence[float] | Tensor | None, name: str) -> Tensor:
            if v is None:
                sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
                return (sign / math.sqrt(n)).to(torch.float64)
            t = torch.as_tensor(v, dtype=torch.float64)
            if t.shape != (n,):
                raise InputError(f"{name} must be ({n},), got {tuple(t.shape)}")
            return t

        self.input_gains = nn.Parameter(_gains(input_gains, "input_gains").to(dt))
        self.output_gains = nn.Parameter(_gains(output_gains, "output_gains").to(dt))
        self.direct_gain = nn.Parameter(torch.tensor(float(direct_gain), dtype=dt))
        check_choice(attenuation, "attenuation", ("none", "homogeneous", "lowpass", "geq"))
        self.attenuation: _Attenuation | None
        if attenuation == "none":
            self.attenuation = None
        elif attenuation == "homogeneous":
            self.attenuation = HomogeneousAttenuation(grid, self.delays, t60_s=float(
                torch.as_tensor(t60_s).flatten()[0]))
        elif attenuation == "lowpass":
            self.attenuation = LowpassAttenuation(grid, self.delays, t60_dc_s=float(
                torch.as_tensor(t60_s).flatten()[0]), cutoff_hz=cutoff_hz)
        else:
            self.attenuation = GEQAttenuation(grid, self.delays, t60_s=t60_s, center_hz=center_hz)
        self.tone: GEQ | None = None
        if tone_gain_db is not None:
            self.tone = GEQ(grid, 1, center_hz=center_hz, gain_db=torch.as_tensor(
                tone_gain_db, dtype=torch.float64).reshape(1, -1), learnable=True)

    def line_response(self) -> Tensor:
        """``(M, N)`` response of each delay line with its attenuation."""
        g = self.delays.diagonal_response()
        if self.attenuation is not None:
            g = g * self.attenuation.diagonal_response()
        return g

    def transfer(self, *, reverberant_only: bool = False) -> Tensor:
        """Complex transfer function ``(M,)`` on the grid (differentiable)."""
        h = fdn_transfer(self.line_response(), feedback_matrix=self.matrix.static_matrix(),
                         input_gains=self.input_gains, output_gains=self.output_gains)
        if self.tone is not None:
            h = h * self.tone.diagonal_response()[:, 0]
        if reverberant_only:
            return h
        return h + self.direct_gain.to(h.dtype)

    def response(self) -> Tensor:
        return self.transfer().reshape(-1, 1, 1)

    def impulse_response(self, n_samples: int | None = None, *, method: str = "freq",
                         reverberant_only: bool = False) -> Tensor:
        """Impulse response ``(n_samples,)``.

        Args:
            n_samples: length (default nfft; at most nfft for ``"freq"``).
            method: ``"freq"`` (frequency sampling, differentiable) or ``"time"`` (exact
                recursion, integer delays, no gradient).
            reverberant_only: leave out the direct path.
        """
        check_choice(method, "method", ("freq", "time"))
        n = self.grid.nfft if n_samples is None else check_int(n_samples, "n_samples", minimum=1)
        if method == "freq":
            if n > self.grid.nfft:
                raise InputError(f"n_samples={n} exceeds nfft={self.grid.nfft}; use "
                                 "method='time' or a larger grid")
            h = self.transfer(reverberant_only=reverberant_only)
            ir = torch.fft.irfft(h, n=self.grid.nfft) * self.grid.envelope
            return ir[:n]
        return self.render_time(n, reverberant_only=reverberant_only)

    def render_time(self, n_samples: int, *, reverberant_only: bool = False,
                    x: Tensor | None = None, differentiable: bool = False) -> Tensor:
        """Exact time-domain rendering (numba on CPU, block recursion elsewhere).

        Filters ``x`` ``(..., time)`` through the network, or returns the impulse response of
        ``n_samples`` samples when ``x`` is None. With ``differentiable=True`` (and grad mode on)
        gradients flow to the matrix, gains and attenuation through
        :func:`~diffdsp.functional.fdn.fdn_time`'s adjoint backward (it keeps the N line
        outputs for the backward pass); by default it renders without a graph.
        """
        with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
            return self._render_time(n_samples, reverberant_only=reverberant_only, x=x)

    def _render_time(self, n_samples: int, *, reverberant_only: bool,
                     x: Tensor | None) -> Tensor:
        m = self.delays.samples
        if not torch.equal(m, torch.round(m)):
            raise InputError(f"the time-domain renderer needs integer delays, got {m.tolist()}")
        dt = self.grid.dtype
        dev = self.input_gains.device
        if x is None:
            x = torch.zeros(n_samples, dtype=dt, device=dev)
            x[0] = 1.0
        sos = self.attenuation.sos() if self.attenuation is not None else None
        y = fdn_time(x.to(dt), delay_samples=[int(v) for v in m.tolist()],
                     feedback_matrix=self.matrix.static_matrix(), input_gains=self.input_gains,
                     output_gains=self.output_gains, attenuation_sos=sos)
        if self.tone is not None:
            from diffdsp.functional.iir import sosfilt

            y = sosfilt(self.tone.sos()[0].to(dt), y)
        if not reverberant_only:
            y = y + self.direct_gain.to(dt) * x.to(dt)
        return y

    def to_dict(self) -> dict[str, Any]:
        """Every parameter in plain data (physical units), enough to rebuild it exactly."""
        mat = self.matrix
        return {
            "type": "diffdsp.lti.FDN",
            "sample_rate": self.grid.sample_rate,
            "nfft": self.grid.nfft,
            "alias_decay_db": self.grid.alias_decay_db,
            "dtype": str(self.grid.dtype).replace("torch.", ""),
            "delay_samples": [float(v) for v in self.delays.samples.detach()],
            "matrix_kind": mat.kind,
            "matrix_raw": mat.raw.detach().double().tolist(),
            "feedback_matrix": mat.static_matrix().detach().double().tolist(),
            "input_gains": self.input_gains.detach().double().tolist(),
            "output_gains": self.output_gains.detach().double().tolist(),
            "direct_gain": float(self.direct_gain.detach()),
            "attenuation": self.attenuation.to_dict() if self.attenuation is not None
            else {"kind": "none"},
            "tone_gain_db": (self.tone.gain_db[0].detach().double().tolist()
                             if self.tone is not None else None),
            "tone_center_hz": self.tone.center_hz if self.tone is not None else None,
            # the raw (unconstrained) tensors behind the physical values above, bit-exact
            "raw_parameters": {k: v.detach().double().tolist()
                               for k, v in self.state_dict().items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, nfft: int | None = None,
                  sample_rate: int | None = None) -> FDN:
        """Rebuild from :meth:`to_dict` (optionally on another grid length)."""
        try:
            sr = int(data["sample_rate"]) if sample_rate is None else sample_rate
            dtype = torch.float64 if data.get("dtype") == "float64" else torch.float32
            grid = FrequencyGrid(int(nfft or data["nfft"]), sr,
                                 alias_decay_db=float(data["alias_decay_db"]), dtype=dtype)
            att = dict(data["attenuation"])
            kind = att.pop("kind")
            kw: dict[str, Any] = {}
            if kind == "homogeneous":
                kw["t60_s"] = att["t60_s"]
            elif kind == "lowpass":
                kw["t60_s"] = att["t60_dc_s"]
                kw["cutoff_hz"] = att["cutoff_hz"]
            elif kind == "geq":
                kw["t60_s"] = att["t60_s"]
                kw["center_hz"] = att["center_hz"]
            if data.get("tone_gain_db") is not None:
                kw["tone_gain_db"] = data["tone_gain_db"]
                kw.setdefault("center_hz", data.get("tone_center_hz"))
            fdn = cls(
                grid, data["delay_samples"], matrix_kind=data["matrix_kind"],
                matrix_init=torch.tensor(data["matrix_raw"], dtype=torch.float64),
                input_gains=data["input_gains"], output_gains=data["output_gains"],
                direct_gain=float(data["direct_gain"]), attenuation=kind, **kw,
            )
            raw = data.get("raw_parameters")
            if raw is not None:
                state = fdn.state_dict()
                with torch.no_grad():
                    for k, v in raw.items():
                        if k not in state:
                            raise KeyError(k)
                        state[k].copy_(torch.tensor(v, dtype=torch.float64).reshape(
                            state[k].shape))
            return fdn
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"not a valid FDN description: missing or bad field {exc}") from exc


def build_fdn(
    sample_rate: int,
    *,
    n_lines: int = 8,
    delay_range_ms: tuple[float, float] = (8.0, 40.0),
    nfft: int = 2**16,
    alias_decay_db: float = 30.0,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    **kwargs: Any,
) -> FDN:
    """Build an FDN with N co-prime delay lengths drawn from ``delay_range_ms``.

    Args:
        sample_rate: Hz.
        n_lines: N.
        delay_range_ms: shortest and longest delay, ms.
        nfft: frequency grid length (the frequency-sampled IR length).
        alias_decay_db: gamma envelope attenuation of the aliased tail, dB.
        dtype: float32 or float64.
        seed: seed of delays, matrix and gains.
        **kwargs: passed to :class:`FDN` (``attenuation``, ``t60_s``, ``matrix_kind``, ...).

    Examples:
        >>> fdn = build_fdn(48000, n_lines=4, nfft=2**12, attenuation="homogeneous", t60_s=0.5)
        >>> fdn.n_lines, len(fdn.to_dict()["delay_samples"])
        (4, 4)

    References:
        Schlecht & Habets, IEEE/ACM TASLP 2017 (co-prime delays, echo density).
    """
    n_lines = check_int(n_lines, "n_lines", minimum=1, maximum=64)
    lo = max(1, round(delay_range_ms[0] * sample_rate / 1000))
    hi = max(lo + 4 * n_lines, round(delay_range_ms[1] * sample_rate / 1000))
    delays = coprime_delays(n_lines, low=lo, high=hi, seed=seed)
    grid = FrequencyGrid(nfft, sample_rate, alias_decay_db=alias_decay_db, dtype=dtype)
    return FDN(grid, [float(v) for v in delays], seed=seed, **kwargs)



