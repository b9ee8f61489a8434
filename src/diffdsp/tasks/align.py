"""``diffdsp align DRY WET``: phase-align a dry signal to its processed (wet) version with a
cascade of all-pass filters (Bargum et al., DAFx 2023).

Pipeline (:func:`fit_alignment` on tensors, :func:`run` on files):

1. **Bulk delay and polarity**: the peak of the phase-transform (GCC-PHAT) cross-correlation
   (windowed-sinc interpolation for the sub-sample part) gives an integer delay and a sign.
   The integer part shifts the dry signal; the fractional part becomes a first-order Thiran
   all-pass section (an exact, exportable fractional delay at low frequencies).
2. **All-pass cascade** of order ``order`` (default 7 = three second-order + one first-order
   sections, each optionally warped, Bargum et al. eq. 5) fitted by gradient descent with one of:

   * ``"spectral"`` (default, ours): the time-domain MSE between wet and ``p A x`` equals, by
     Parseval, ``S_yy + S_xx - 2 p Re sum_f A(f) conj(S_xy(f))`` for any all-pass ``A``
     (``|A| = 1``). With the Welch cross-spectrum ``S_xy`` computed once, the loss of every
     candidate costs one closed-form phase evaluation on the frequency grid (no filtering), so
     64 starts (group-delay initialisations and random designs, both polarities) are optimised
     in one batch: first against the measured group delay (smooth least squares), then against
     the exact phase objective on a coarse then a fine grid (best 4); the best is kept. It is
     the segment-wise MSE of the paper without the filtering in the loop.
   * ``"direct"``: the paper's naive DDSP baseline: (R, f_c, warp) per section through stability
     maps, Adam, time-domain loss on batched segments.
   * ``"biasnet-seq"`` / ``"biasnet-conn"``: the paper's deep optimisation: a BiasNet (learnable
     bias input, sine-activated hidden layers 1024-512-256-128, tanh outputs de-normalised to
     20 Hz-20 kHz (eq. 6), R and warp) per filter (*sequential*) or one for all (*connected*).

   The time-domain methods filter random excerpts exactly (``diffdsp.functional.iir.sosfilt``,
   custom backward, after a warm-up) and evaluate the loss (``"mse"`` or the multi-resolution
   ``"interference"`` loss with the paper's STFT settings) on mini-batches of segments of
   ``segment`` (>= 2048) samples. With ``method="spectral"`` the loss selects the objective of a
   short time-domain polish after the spectral fit.
3. **Never worse**: the candidates (identity, delay/polarity only, fitted cascade, polished
   cascade) are rendered exactly and the one with the lowest ESR on the whole signal is returned.
   When even the best explains little of the wet signal (ESR > 0.95) and the spectral coherence
   is at chance level, the result says the signals look unrelated and the identity is returned.

Outputs (:func:`run`): ``aligned.wav`` (same rate, channels and length as the dry input),
``allpass.json`` (delay, polarity and every section's coefficients with its (R, f_c, warp)),
``result.json`` (MSE, MAE, ESR before and after), plots and ``report.html``.

References:
    A. R. Bargum, S. Serafin, C. Erkut, J. D. Parker, "Differentiable all-pass filters for phase
    response estimation and automatic signal alignment", DAFx 2023.
    G. Pepe et al., "Deep optimization of parametric IIR filters for audio equalization",
    IEEE/ACM TASLP 30, 2022 (BiasNet). V. Sitzmann et al., "Implicit neural representations with
    periodic activation functions", NeurIPS 2020 (sine activations).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import (
    InputError,
    check_choice,
    check_int,
    check_sample_rate,
    check_tensor,
)
from diffdsp.functional import allpass as ap
from diffdsp.tasks._common import Progress, TaskResult

__all__ = [
    "LOSSES",
    "METHODS",
    "AlignmentFilter",
    "AlignmentFit",
    "BiasNet",
    "apply_delay",
    "demo",
    "estimate_delay",
    "fit_alignment",
    "metrics",
    "run",
]

METHODS = ("spectral", "direct", "biasnet-seq", "biasnet-conn")
LOSSES = ("mse", "interference")

#: Paper's multi-resolution STFT settings (FFT size, hop, window length), Bargum et al. Table 1.
INTERFERENCE_RESOLUTIONS = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))

F_MIN_HZ = 20.0
F_MAX_HZ = 20000.0
MAX_SECONDS = 60.0  # the fit runs on the whole files: longer dry/wet files are refused
R_MAX = 0.9995
#: Range of the Thiran fractional-delay section's delay, in samples.
DELTA_MIN = 0.1
DELTA_MAX = 6.0
WARP_MAX = 0.9
#: The pair is "unrelated" when the best candidate's ESR stays above UNRELATED_ESR and the
#: spectral coherence ``sum |S_xy| / sqrt(E_xx E_yy)`` is at chance level (below
#: ``max(UNRELATED_COHERENCE, 2.5 / sqrt(frames))``; independent signals give about
#: ``0.9 / sqrt(frames)``).
UNRELATED_COHERENCE = 0.15
UNRELATED_ESR = 0.95


# --------------------------------------------------------------------------------------------
# the exportable filter
# --------------------------------------------------------------------------------------------


def apply_delay(x: Tensor, delay_samples: int) -> Tensor:
    """Shift ``x`` by an integer number of samples along time, keeping its length.

    Positive delays prepend zeros and drop the end; negative delays drop the start and append
    zeros.

    Args:
        x: signal ``(..., time)``.
        delay_samples: shift in samples (any sign).

    Returns:
        The shifted signal, same shape.

    Examples:
        >>> apply_delay(torch.tensor([1.0, 2.0, 3.0]), 1)
        tensor([0., 1., 2.])
        >>> apply_delay(torch.tensor([1.0, 2.0, 3.0]), -1)
        tensor([2., 3., 0.])
    """
    n = x.shape[-1]
    d = int(delay_samples)
    if d == 0:
        return x
    if abs(d) >= n:
        return torch.zeros_like(x)
    pad = x.new_zeros((*x.shape[:-1], abs(d)))
    if d > 0:
        return torch.cat([pad, x[..., : n - d]], dim=-1)
    return torch.cat([x[..., -d:], pad], dim=-1)


@dataclass
class AlignmentFilter:
    """Integer delay, polarity and an all-pass SOS cascade: ``y = p * sosfilt(sos, shift(x, d))``.

    Attributes:
        sample_rate: in Hz.
        delay_samples: integer shift applied first (negative: the dry signal is advanced).
        polarity: +1 or -1.
        sos: all-pass sections ``(n_sections, 6)`` (float64, scipy layout); may be empty.
        sections: one dict per section: ``role`` (``"fractional_delay"`` or ``"allpass"``),
            ``order`` and the design parameters (``radius``, ``cutoff_hz``, ``warp``,
            ``delay_samples``) it was built from.
    """

    sample_rate: int
    delay_samples: int = 0
    polarity: int = 1
    sos: Tensor = field(default_factory=lambda: torch.zeros(0, 6, dtype=torch.float64))
    sections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_identity(self) -> bool:
        """No delay, no polarity change and no sections."""
        return self.delay_samples == 0 and self.polarity == 1 and self.sos.shape[0] == 0

    def apply(self, x: Tensor) -> Tensor:
        """Apply the filter exactly (recursive SOS filtering in float64) to ``x`` ``(..., time)``.

        Returns a tensor with ``x``'s shape, dtype and device.
        """
        y = apply_delay(x.to(torch.float64), self.delay_samples) * float(self.polarity)
        if self.sos.shape[0]:
            from diffdsp.functional.iir import sosfilt

            y = sosfilt(self.sos.to(y.device), y)
        return y.to(x.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``allpass.json`` (enough to rebuild the filter in any environment)."""
        return {
            "sample_rate": self.sample_rate,
            "delay_samples": self.delay_samples,
            "polarity": self.polarity,
            "sos": [[float(v) for v in row] for row in self.sos.tolist()],
            "sections": self.sections,
            "apply": "y = polarity * sosfilt(sos, shift(x, delay_samples)); shift(x, d) delays "
            "by d samples (d < 0 advances) with zero fill and keeps the length; sos rows are "
            "[b0, b1, b2, a0, a1, a2] (scipy.signal.sosfilt layout, zero initial state)",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlignmentFilter:
        """Inverse of :meth:`to_dict`."""
        sos = torch.tensor(d.get("sos", []), dtype=torch.float64).reshape(-1, 6)
        return cls(
            sample_rate=int(d["sample_rate"]),
            delay_samples=int(d.get("delay_samples", 0)),
            polarity=int(d.get("polarity", 1)),
            sos=sos,
            sections=list(d.get("sections", [])),
        )


# --------------------------------------------------------------------------------------------
# analysis: delay, polarity, cross-spectra, metrics
# --------------------------------------------------------------------------------------------


def estimate_delay(
    dry: Tensor, wet: Tensor, *, max_delay_samples: int | None = None
) -> tuple[float, int, float]:
    """Bulk delay (sub-sample), polarity and normalised peak of the dry-wet cross-correlation.

    The lag is the peak of the phase-transform (GCC-PHAT) cross-correlation, ``irfft(S / |S|)``
    with ``S = sum_channels Y conj(X)`` (regularised by 1e-3 of the mean ``|S|``): every frequency
    votes equally, so tonal or periodic signals (a sustained chord) do not lock onto a multiple of
    their period as the plain correlation does. It is refined to 1/100 sample by Kaiser-windowed
    sinc interpolation over +-16 lags; the polarity is the sign of the peak. ``peak`` is the plain
    normalised cross-correlation at that delay.

    Args:
        dry: ``(..., time)``.
        wet: same shape as ``dry``.
        max_delay_samples: search lags in ``[-max, max]`` (default: ``time - 1``).

    Returns:
        ``(delay_samples, polarity, peak)``: positive delay means the wet lags the dry; ``peak``
        in [0, 1] is ``|r(delay)| / sqrt(E_dry E_wet)``.

    Examples:
        >>> x = torch.randn(4000, generator=torch.Generator().manual_seed(0))
        >>> d, p, peak = estimate_delay(x, -apply_delay(x, 12))
        >>> round(d, 3), p, peak > 0.99
        (12.0, -1, True)

    References:
        C. Knapp, G. Carter, "The generalized correlation method for estimation of time delay",
        IEEE TASSP 24(4), 1976 (PHAT weighting).
    """
    x = dry.to(torch.float64).reshape(-1, dry.shape[-1])
    y = wet.to(torch.float64).reshape(-1, wet.shape[-1])
    n = x.shape[-1]
    nfft = 1 << math.ceil(math.log2(max(2 * n - 1, 2)))
    spec = (torch.fft.rfft(y, nfft) * torch.fft.rfft(x, nfft).conj()).sum(0)
    r = torch.fft.irfft(spec, nfft)
    mag = spec.abs()
    r_phat = torch.fft.irfft(spec / (mag + 1e-3 * float(mag.mean()) + 1e-300), nfft)
    max_lag = n - 1 if max_delay_samples is None else min(int(max_delay_samples), n - 1)
    lags = torch.cat([torch.arange(0, max_lag + 1), torch.arange(-max_lag, 0)])

    def window(sig: Tensor) -> Tensor:
        return torch.cat([sig[: max_lag + 1], sig[nfft - max_lag :]]) if max_lag > 0 else sig[:1]

    vals = window(r_phat)
    i = int(torch.argmax(vals.abs()))
    lag = int(lags[i])
    sign = 1.0 if float(vals[i]) >= 0 else -1.0
    delay = float(lag)
    peak_val = float(r[lag % nfft])
    if max_lag > 0:
        # sub-sample refinement: band-limited (Kaiser-windowed sinc) interpolation over +-16 lags,
        # evaluated on a 1/100-sample grid around the peak
        taps = torch.arange(-16, 17)
        inside = (lag + taps).abs() <= max_lag
        frac = torch.linspace(-1.0, 1.0, 201, dtype=torch.float64)
        arg = frac[:, None] - taps[None, :].to(torch.float64)
        win = torch.special.i0(8.0 * torch.sqrt((1.0 - (arg / 17.0) ** 2).clamp_min(0.0)))
        kern = torch.sinc(arg) * win / float(torch.special.i0(torch.tensor(8.0)))

        def interp(sig: Tensor) -> Tensor:
            local = sig[(lag + taps) % nfft]
            return (kern * torch.where(inside, local, torch.zeros_like(local))).sum(-1)

        j = int(torch.argmax(interp(r_phat) * sign))
        delay = lag + float(frac[j])
        peak_val = float(interp(r)[j])
    energy = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    peak = abs(peak_val) / energy if energy > 0 else 0.0
    return delay, (1 if sign > 0 else -1), min(peak, 1.0)


def metrics(estimate: Tensor, target: Tensor) -> dict[str, float]:
    """MSE, MAE and ESR (error-to-signal ratio, Bargum et al. eqs. 11-12) over all samples.

    Examples:
        >>> metrics(torch.zeros(4), torch.ones(4))
        {'mse': 1.0, 'mae': 1.0, 'esr': 1.0}
    """
    e = (estimate.to(torch.float64) - target.to(torch.float64)).flatten()
    t = target.to(torch.float64).flatten()
    energy = float((t * t).sum())
    return {
        "mse": float((e * e).mean()),
        "mae": float(e.abs().mean()),
        "esr": float((e * e).sum()) / energy if energy > 0 else math.inf,
    }


def _welch_cross(x: Tensor, y: Tensor, nperseg: int) -> tuple[Tensor, Tensor, float, float]:
    """Welch cross-spectrum ``sum conj(X) Y`` over channels and frames (Hann, 50 % overlap)."""
    hop = nperseg // 2
    n = x.shape[-1]
    n_frames = max(1, 1 + (n - nperseg + hop - 1) // hop) if n > nperseg else 1
    total = (n_frames - 1) * hop + nperseg
    xp = torch.nn.functional.pad(x, (0, total - n))
    yp = torch.nn.functional.pad(y, (0, total - n))
    win = torch.hann_window(nperseg, periodic=False, dtype=x.dtype, device=x.device)
    fx = torch.fft.rfft(xp.unfold(-1, nperseg, hop) * win, dim=-1)
    fy = torch.fft.rfft(yp.unfold(-1, nperseg, hop) * win, dim=-1)
    sxy = (fx.conj() * fy).reshape(-1, fx.shape[-1]).sum(0)
    sxx = (fx.abs() ** 2).reshape(-1, fx.shape[-1]).sum(0)
    syy = (fy.abs() ** 2).reshape(-1, fy.shape[-1]).sum(0)
    return sxy, sxx, float(sxx.sum()), float(syy.sum())


# --------------------------------------------------------------------------------------------
# parameterisations
# --------------------------------------------------------------------------------------------


def _fmax(sample_rate: int) -> float:
    return min(F_MAX_HZ, 0.49 * sample_rate)


@dataclass
class _Design:
    """Physical parameters of a cascade (leading dims ``(...)``: batch of starts or none)."""

    delta: Tensor  # (..., 1) Thiran delay in samples
    radius: Tensor  # (..., n2)
    cutoff_hz: Tensor  # (..., n2)
    warp: Tensor  # (..., n2)
    cutoff1_hz: Tensor  # (..., n1)
    warp1: Tensor  # (..., n1)

    def sos(self, sample_rate: int) -> Tensor:
        parts = [ap.thiran1_sos(self.delta)]
        if self.radius.shape[-1]:
            parts.append(ap.warped_allpass2_sos(self.radius, self.cutoff_hz, self.warp,
                                                sample_rate=sample_rate))
        if self.cutoff1_hz.shape[-1]:
            parts.append(ap.warped_allpass1_sos(self.cutoff1_hz, self.warp1,
                                                sample_rate=sample_rate))
        return torch.cat(parts, dim=-2)

    def select(self, i: int) -> _Design:
        return _Design(*(getattr(self, k)[i].detach() for k in
                         ("delta", "radius", "cutoff_hz", "warp", "cutoff1_hz", "warp1")))


class _DirectParams(nn.Module):
    """Raw parameters through stability maps: log-frequency sigmoid, pole-radius sigmoid, tanh."""

    def __init__(self, design: _Design, sample_rate: int, learn_delta: bool) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.f_lo, self.f_hi = F_MIN_HZ, _fmax(sample_rate)
        self.learn_delta = learn_delta

        def logit(u: Tensor) -> Tensor:
            return torch.logit(u.clamp(1e-6, 1 - 1e-6))

        span = math.log(self.f_hi / self.f_lo)
        self.raw_delta = nn.Parameter(
            logit((design.delta - DELTA_MIN) / (DELTA_MAX - DELTA_MIN)))
        self.raw_r = nn.Parameter(logit(design.radius / R_MAX))
        self.raw_fc = nn.Parameter(logit(torch.log(design.cutoff_hz / self.f_lo) / span))
        self.raw_w = nn.Parameter(torch.atanh((design.warp / WARP_MAX).clamp(-0.999, 0.999)))
        self.raw_fc1 = nn.Parameter(logit(torch.log(design.cutoff1_hz / self.f_lo) / span))
        self.raw_w1 = nn.Parameter(torch.atanh((design.warp1 / WARP_MAX).clamp(-0.999, 0.999)))
        self.raw_delta.requires_grad_(learn_delta)

    def _fc(self, raw: Tensor) -> Tensor:
        return self.f_lo * torch.exp(torch.sigmoid(raw) * math.log(self.f_hi / self.f_lo))

    def design(self) -> _Design:
        return _Design(
            delta=DELTA_MIN + (DELTA_MAX - DELTA_MIN) * torch.sigmoid(self.raw_delta),
            radius=R_MAX * torch.sigmoid(self.raw_r),
            cutoff_hz=self._fc(self.raw_fc),
            warp=WARP_MAX * torch.tanh(self.raw_w),
            cutoff1_hz=self._fc(self.raw_fc1),
            warp1=WARP_MAX * torch.tanh(self.raw_w1),
        )


class _SineLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int, omega0: float, first: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.omega0 = omega0
        bound = 1.0 / n_in if first else math.sqrt(6.0 / n_in) / omega0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega0 * self.linear(x))


class BiasNet(nn.Module):
    """Bargum et al.'s BiasNet: a learnable-bias input, sine hidden layers, tanh outputs.

    The input is the constant 1 fed to a first linear layer whose bias is the learnable input
    vector ``b_0``; hidden layers (1024, 512, 256, 128 by default, ~692k parameters) use sine
    activations (SIREN initialisation, ``omega_0 = 30``); the output layer is ``tanh`` in (-1, 1).

    Args:
        n_out: number of outputs.
        hidden: hidden layer sizes.
        omega0: frequency factor of the sine activations.

    Examples:
        >>> net = BiasNet(3)
        >>> net().shape, sum(p.numel() for p in net.parameters())
        (torch.Size([3]), 691459)

    References:
        Bargum et al., DAFx 2023, sec. 4; Pepe et al., TASLP 2022; Sitzmann et al., NeurIPS 2020.
    """

    def __init__(self, n_out: int, hidden: Sequence[int] = (1024, 512, 256, 128),
                 omega0: float = 30.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = 1
        for i, h in enumerate(hidden):
            layers.append(_SineLinear(n_in, h, omega0, first=i == 0))
            n_in = h
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(n_in, n_out)
        with torch.no_grad():
            bound = math.sqrt(6.0 / n_in) / omega0
            self.out.weight.uniform_(-bound, bound)
            self.out.bias.zero_()
        self.register_buffer("one", torch.ones(1), persistent=False)

    def forward(self) -> Tensor:
        return torch.tanh(self.out(self.hidden(self.one)))


class _BiasNetParams(nn.Module):
    """Maps BiasNet outputs to (f_c, R, warp): eq. 6 linear de-normalisation for f_c."""

    def __init__(self, n2: int, n1: int, delta: Tensor, sample_rate: int, connected: bool,
                 hidden: Sequence[int]) -> None:
        super().__init__()
        self.n2, self.n1 = n2, n1
        self.f_lo, self.f_hi = F_MIN_HZ, _fmax(sample_rate)
        self.delta: Tensor
        self.register_buffer("delta", delta.detach().clone(), persistent=False)
        self.connected = connected
        n_out = 3 * n2 + 2 * n1
        nets = ([BiasNet(n_out, hidden)] if connected else
                [BiasNet(3, hidden) for _ in range(n2)] + [BiasNet(2, hidden) for _ in range(n1)])
        self.nets = nn.ModuleList(nets)
        self._net_list: list[BiasNet] = nets

    def design(self) -> _Design:
        if self.connected:
            out = self._net_list[0]()
            p2 = out[: 3 * self.n2].reshape(self.n2, 3)
            p1 = out[3 * self.n2 :].reshape(self.n1, 2)
        else:
            outs = [net() for net in self._net_list]
            p2 = torch.stack(outs[: self.n2]) if self.n2 else self.delta.new_zeros(0, 3)
            p1 = torch.stack(outs[self.n2 :]) if self.n1 else self.delta.new_zeros(0, 2)
        half, mid = (self.f_hi - self.f_lo) / 2, (self.f_hi + self.f_lo) / 2
        return _Design(
            delta=self.delta,
            cutoff_hz=half * p2[:, 0] + mid,
            radius=R_MAX * (p2[:, 1] + 1.0) / 2.0,
            warp=WARP_MAX * p2[:, 2],
            cutoff1_hz=half * p1[:, 0] + mid,
            warp1=WARP_MAX * p1[:, 1],
        )


# --------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------


@dataclass
class AlignmentFit:
    """What :func:`fit_alignment` found.

    Attributes:
        filter: the chosen :class:`AlignmentFilter` (the identity when nothing helped).
        aligned: the dry signal through ``filter`` (same shape as the dry input).
        before: metrics of the dry signal against the wet one (MSE, MAE, ESR).
        after: metrics of ``aligned`` against the wet one.
        chosen: which candidate was returned (``"identity"``, ``"delay"``, ``"allpass"``,
            ``"allpass+polish"``).
        candidates: ESR of every candidate tried.
        related: False when the wet signal does not look like a processed dry signal.
        note: one sentence for the result (why the identity was returned, ...).
        delay: ``{"delay_samples", "polarity", "correlation_peak", "coherence"}`` from the
            cross-correlation and the Welch cross-spectrum.
        fit: ``{"steps", "seconds", "final_loss", "converged", ...}``.
        losses: loss per step of the gradient stage.
    """

    filter: AlignmentFilter
    aligned: Tensor
    before: dict[str, float]
    after: dict[str, float]
    chosen: str
    candidates: dict[str, float]
    related: bool
    note: str
    delay: dict[str, float]
    fit: dict[str, Any]
    losses: list[float] = field(default_factory=list)


def _initial_design(n2: int, n1: int, starts: int, delta0: float, gen: torch.Generator,
                    sample_rate: int, spread: bool) -> _Design:
    """Random (or, for start 0, evenly log-spaced) initial designs, shape ``(starts, n)``."""
    f_hi = _fmax(sample_rate)
    span = math.log(f_hi / F_MIN_HZ)
    u2 = torch.rand(starts, n2, generator=gen, dtype=torch.float64)
    u1 = torch.rand(starts, n1, generator=gen, dtype=torch.float64)
    if spread or starts == 1:
        n = n2 + n1
        grid = (torch.arange(n, dtype=torch.float64) + 0.5) / max(n, 1)
        u2[0] = grid[:n2] * 0.8 + 0.1
        u1[0] = grid[n2:] * 0.8 + 0.1
    radius = 0.3 + 0.65 * torch.rand(starts, n2, generator=gen, dtype=torch.float64)
    radius[0] = 0.6
    delta = delta0 + 0.3 * (torch.rand(starts, 1, generator=gen, dtype=torch.float64) - 0.5)
    delta[0] = delta0
    return _Design(
        delta=delta.clamp(DELTA_MIN + 0.05, DELTA_MAX - 0.1),
        radius=radius,
        cutoff_hz=F_MIN_HZ * torch.exp(u2 * span),
        warp=torch.zeros(starts, n2, dtype=torch.float64),
        cutoff1_hz=F_MIN_HZ * torch.exp(u1 * span),
        warp1=torch.zeros(starts, n1, dtype=torch.float64),
    )


def _interference_loss_fn(sample_rate: int) -> Callable[[Tensor, Tensor], Tensor]:
    """The multi-resolution interference loss with the paper's STFT settings (Table 1)."""
    import importlib

    try:
        mod: Any = importlib.import_module("diffdsp.losses.phase")
    except ImportError as exc:  # pragma: no cover - until the losses module lands
        raise ImportError("loss='interference' needs diffdsp.losses.phase") from exc
    loss = mod.InterferenceLoss(
        fft_sizes=[r[0] for r in INTERFERENCE_RESOLUTIONS],
        hop_sizes=[r[1] for r in INTERFERENCE_RESOLUTIONS],
        win_lengths=[r[2] for r in INTERFERENCE_RESOLUTIONS],
    )
    return lambda a, b: loss(a, b)


def _segments(x: Tensor, seg: int) -> Tensor:
    """``(C, T)`` -> ``(C * n_seg, seg)`` non-overlapping segments (the tail is dropped)."""
    n_seg = x.shape[-1] // seg
    return x[..., : n_seg * seg].reshape(x.shape[0], n_seg, seg).reshape(-1, seg)


def fit_alignment(
    dry: Tensor,
    wet: Tensor,
    *,
    sample_rate: int,
    order: int = 7,
    method: str = "spectral",
    loss: str = "mse",
    warp: bool = True,
    steps: int | None = None,
    segment: int = 2048,
    batch_size: int = 32,
    starts: int | None = None,
    time_budget_s: float | None = None,
    max_delay_s: float = 0.5,
    seed: int = 0,
    progress: Progress | None = None,
) -> AlignmentFit:
    """Fit delay, polarity and an all-pass cascade so ``filter(dry)`` lines up with ``wet``.

    Args:
        dry: dry signal ``(channels, time)`` or ``(time,)``.
        wet: wet signal, same shape as ``dry`` (a mono dry broadcasts against a multichannel wet
            is not supported: give both with the same channels).
        sample_rate: in Hz (same for both).
        order: total all-pass order: ``order // 2`` second-order sections and ``order % 2``
            first-order sections (default 7 as the paper); 0 fits delay and polarity only.
        method: ``"spectral"`` (default), ``"direct"``, ``"biasnet-seq"`` or ``"biasnet-conn"``.
        loss: ``"mse"`` or ``"interference"`` (objective of the time-domain gradient stage).
        warp: learn a warping factor per section (Bargum et al. eq. 5); ``False`` fixes it at 0.
        steps: gradient steps (default per method).
        segment: segment length in samples for the time-domain losses (>= 2048).
        batch_size: segments per step for the time-domain losses.
        starts: starts of the spectral fit (default 64).
        time_budget_s: wall-time cap of the gradient stages, shared between them (default:
            120 s + 4 s per second of 48 kHz audio; the step counts normally stop them first).
        max_delay_s: largest bulk delay searched, in seconds.
        seed: random seed (initialisation, mini-batches).
        progress: ``progress(stage, step, total, loss)`` callback.

    Returns:
        An :class:`AlignmentFit`.

    Raises:
        InputError: shapes differ, too short, silent, non-finite, or an invalid option.

    Examples:
        >>> from diffdsp.functional.iir import sosfilt
        >>> x = torch.randn(1, 48000, generator=torch.Generator().manual_seed(0))
        >>> sos = ap.allpass2_sos(0.9, 300.0, sample_rate=48000)[None]
        >>> res = fit_alignment(x, sosfilt(sos, x), sample_rate=48000, order=2, steps=100,
        ...                     starts=8)
        >>> bool(res.after["esr"] < res.before["esr"] / 10), res.chosen.startswith("allpass")
        (True, True)

    References:
        Bargum et al., DAFx 2023, secs. 3-5.
    """
    threads = torch.get_num_threads()
    # every tensor of the fit is small (starts x sections x bins, excerpts of a few segments):
    # intra-op threads only add synchronisation (60x slower measured with 2 threads on a loaded
    # 2-core machine), so the fit runs on one thread and leaves the other cores to the caller
    torch.set_num_threads(1)
    try:
        return _fit_alignment(
            dry, wet, sample_rate=sample_rate, order=order, method=method, loss=loss, warp=warp,
            steps=steps, segment=segment, batch_size=batch_size, starts=starts,
            time_budget_s=time_budget_s, max_delay_s=max_delay_s, seed=seed, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _fit_alignment(
    dry: Tensor, wet: Tensor, *, sample_rate: int, order: int, method: str, loss: str,
    warp: bool, steps: int | None, segment: int, batch_size: int, starts: int | None,
    time_budget_s: float | None, max_delay_s: float, seed: int, progress: Progress | None,
) -> AlignmentFit:
    t_start = time.perf_counter()
    sample_rate = check_sample_rate(sample_rate)
    order = check_int(order, "order", minimum=0, maximum=64)
    check_choice(method, "method", METHODS)
    check_choice(loss, "loss", LOSSES)
    segment = check_int(segment, "segment", minimum=2048)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    dry = check_tensor(dry, "dry", ndim=(1, 2))
    wet = check_tensor(wet, "wet", ndim=(1, 2))
    if dry.shape != wet.shape:
        raise InputError(
            f"dry and wet must have the same shape (channels, time), got {tuple(dry.shape)} and "
            f"{tuple(wet.shape)}; trim/pad them to the same length and channel count first"
        )
    x0 = dry.detach().to(torch.float64).reshape(-1, dry.shape[-1])
    y0 = wet.detach().to(torch.float64).reshape(-1, wet.shape[-1])
    n = x0.shape[-1]
    if n < segment:
        raise InputError(
            f"dry and wet must be at least {segment} samples long ({segment / sample_rate:.3f} s "
            f"at {sample_rate} Hz), got {n}"
        )
    for name, sig in (("dry", x0), ("wet", y0)):
        if not bool(torch.isfinite(sig).all()):
            raise InputError(f"{name} contains NaN/Inf samples")
        if float(sig.abs().max()) == 0.0:
            raise InputError(f"{name} is silent (all samples are 0): nothing to align")
    gen = torch.Generator().manual_seed(int(seed))
    seconds48 = n / sample_rate * (sample_rate / 48000.0)
    # the stages are limited by their step counts (the fit costs about the same whatever the
    # length: the spectral stages work on a fixed frequency grid, the time-domain ones on
    # excerpts); the wall-time budget is only a cap (generous by default, so that a loaded
    # machine does not change the result)
    budget = time_budget_s if time_budget_s is not None else 120.0 + 4.0 * seconds48
    n2, n1 = order // 2, order % 2

    # 1. bulk delay and polarity ------------------------------------------------------------
    max_lag = max(1, min(n - 1, round(max_delay_s * sample_rate)))
    d0, pol, peak = estimate_delay(x0, y0, max_delay_samples=max_lag)
    n_int = math.floor(d0 + 0.5) - 1  # fractional part in [0.5, 1.5) goes to Thiran
    delta0 = d0 - n_int
    before = metrics(x0, y0)
    # scale so that the wet signal has unit RMS while fitting (losses are level-independent)
    scale = 1.0 / max(float(y0.pow(2).mean().sqrt()), 1e-12)
    x = apply_delay(x0, n_int) * scale
    y = y0 * scale
    info: dict[str, Any] = {"method": method, "loss": loss}
    losses: list[float] = []
    designs: dict[str, tuple[_Design, int, int]] = {}

    # 2. all-pass cascade ---------------------------------------------------------------------
    fit_t0 = time.perf_counter()
    if method == "spectral":
        design, sp_pol, advance, sp_info = _fit_spectral(
            x, y, sample_rate=sample_rate, n2=n2, n1=n1, pol=pol, delta0=delta0, warp=warp,
            steps=steps or 300, starts=starts or 64, gen=gen, progress=progress,
            budget=0.6 * budget,
        )
        losses = sp_info.pop("losses")
        info.update(sp_info)
        designs["allpass"] = (design, sp_pol, n_int - advance)
        if order > 0:
            remaining = budget - (time.perf_counter() - fit_t0)
            if remaining > 0.5:
                polished, _p_losses, p_info = _fit_time_domain(
                    apply_delay(x, -advance), y, design, sp_pol, sample_rate=sample_rate,
                    kind="direct", loss=loss,
                    warp=warp, steps=60, lr=0.01, segment=segment, batch_size=batch_size,
                    gen=gen, progress=progress, budget=remaining,
                )
                designs["allpass+polish"] = (polished, sp_pol, n_int - advance)
                info["polish"] = p_info
    else:
        start = _initial_design(n2, n1, 1, delta0, gen, sample_rate, spread=True).select(0)
        kind = {"direct": "direct", "biasnet-seq": "seq", "biasnet-conn": "conn"}[method]
        default_steps = 300 if kind == "direct" else 200
        design, losses, td_info = _fit_time_domain(
            x, y, start, pol, sample_rate=sample_rate, kind=kind, loss=loss, warp=warp,
            steps=steps or default_steps, lr=0.05 if kind == "direct" else 1e-4,
            segment=segment, batch_size=batch_size, gen=gen, progress=progress, budget=budget,
        )
        info.update(td_info)
        designs["allpass"] = (design, pol, n_int)
    fit_seconds = time.perf_counter() - fit_t0

    # 3. never worse: render every candidate exactly, keep the lowest ESR ----------------------
    cands: dict[str, AlignmentFilter] = {
        "identity": AlignmentFilter(sample_rate),
    }
    delay_design = _Design(torch.tensor([delta0], dtype=torch.float64), *(
        torch.zeros(0, dtype=torch.float64) for _ in range(5)))
    cands["delay"] = _make_filter(delay_design, n_int, pol, sample_rate)
    for name, (des, p, shift) in designs.items():
        cands[name] = _make_filter(des, shift, p, sample_rate)
    esr: dict[str, float] = {}
    outs: dict[str, Tensor] = {}
    for name, flt in cands.items():
        out = flt.apply(x0)
        if not bool(torch.isfinite(out).all()):
            continue
        outs[name] = out
        esr[name] = metrics(out, y0)["esr"]
    chosen = min(esr, key=lambda k: (esr[k], list(cands).index(k)))
    best = esr[chosen]
    coherence, chance = _coherence(x, y, sample_rate)
    related = not (coherence < chance and best > UNRELATED_ESR)
    note = ""
    if not related:
        chosen = "identity"
        note = (
            f"the wet signal does not look like a processed version of the dry one (spectral "
            f"coherence {coherence:.3f}, chance level {chance:.3f}; best ESR {best:.3f}): "
            f"identity returned"
        )
    elif chosen == "identity":
        note = "no candidate lowered the ESR: identity returned"
    flt = cands[chosen]
    aligned = outs[chosen].reshape(dry.shape).to(dry.dtype)
    after = metrics(outs[chosen], y0)
    fit_block = {
        "steps": len(losses),
        "seconds": round(fit_seconds, 3),
        "final_loss": losses[-1] if losses else None,
        "converged": bool(info.get("converged", False)),
        "total_seconds": round(time.perf_counter() - t_start, 3),
        **{k: v for k, v in info.items() if k not in ("converged",)},
    }
    return AlignmentFit(
        filter=flt,
        aligned=aligned,
        before=before,
        after=after,
        chosen=chosen,
        candidates=esr,
        related=related,
        note=note,
        delay={"delay_samples": d0, "polarity": pol, "correlation_peak": peak,
               "coherence": coherence},
        fit=fit_block,
        losses=losses,
    )


def _coherence(x: Tensor, y: Tensor, sample_rate: int) -> tuple[float, float]:
    """``sum |S_xy| / sqrt(E_xx E_yy)`` over Welch frames of ``sample_rate / 24`` samples, and
    the level below which it is indistinguishable from independent signals."""
    nper = _nperseg(sample_rate, x.shape[-1], 24.0)
    sxy, _, exx, eyy = _welch_cross(x, y, nper)
    frames = x.shape[0] * max(1, (x.shape[-1] - nper) // (nper // 2) + 1)
    value = float(sxy.abs().sum()) / math.sqrt(max(exx * eyy, 1e-300))
    return value, max(UNRELATED_COHERENCE, 2.5 / math.sqrt(frames))


def _make_filter(design: _Design, n_int: int, pol: int, sample_rate: int) -> AlignmentFilter:
    """Exportable filter from a (single) design: section list with parameters and SOS."""
    design = _Design(*(t.detach().to(torch.float64).reshape(-1) for t in (
        design.delta, design.radius, design.cutoff_hz, design.warp, design.cutoff1_hz,
        design.warp1)))
    sos = design.sos(sample_rate)
    sections: list[dict[str, Any]] = [{
        "role": "fractional_delay", "type": "thiran1", "order": 1,
        "delay_samples": float(design.delta[0]),
    }]
    for i in range(design.radius.shape[0]):
        sections.append({
            "role": "allpass", "type": "warped_allpass2", "order": 2,
            "radius": float(design.radius[i]), "cutoff_hz": float(design.cutoff_hz[i]),
            "warp": float(design.warp[i]),
        })
    for i in range(design.cutoff1_hz.shape[0]):
        sections.append({
            "role": "allpass", "type": "warped_allpass1", "order": 1,
            "cutoff_hz": float(design.cutoff1_hz[i]), "warp": float(design.warp1[i]),
        })
    for s, row in zip(sections, sos.tolist(), strict=True):
        s["sos"] = row
    return AlignmentFilter(sample_rate=sample_rate, delay_samples=n_int, polarity=pol, sos=sos,
                           sections=sections)


def _spectral_objective(
    x: Tensor, y: Tensor, nperseg: int, sample_rate: int
) -> tuple[Tensor, Tensor, Tensor, float, float]:
    """Frequencies, ``|S_xy|``, ``angle(S_xy)`` (float32) and the energies of the Welch frames."""
    sxy, _, exx, eyy = _welch_cross(x, y, nperseg)
    freqs = torch.fft.rfftfreq(nperseg, 1.0 / sample_rate, dtype=torch.float64)
    return freqs.float(), sxy.abs().float(), sxy.angle().float(), exx, eyy


def _nperseg(sample_rate: int, n: int, divisor: float) -> int:
    p = 1 << round(math.log2(sample_rate / divisor))
    return max(256, min(p, 1 << math.floor(math.log2(n))))


def _fit_spectral(
    x: Tensor, y: Tensor, *, sample_rate: int, n2: int, n1: int, pol: int, delta0: float,
    warp: bool, steps: int, starts: int, gen: torch.Generator, progress: Progress | None,
    budget: float,
) -> tuple[_Design, int, int, dict[str, Any]]:
    """Multi-start fit of the all-pass phase to the Welch cross-spectrum (exact MSE objective).

    Coarse to fine: ``starts`` random designs (a quarter with the opposite polarity) on a coarse
    grid (``sample_rate / 24`` samples per frame), then the best four on a fine grid
    (``sample_rate / 6``), all in one batch each.
    """
    from diffdsp.optim import fit

    t0 = time.perf_counter()
    return _fit_spectral_inner(x, y, sample_rate=sample_rate, n2=n2, n1=n1, pol=pol,
                               delta0=delta0, warp=warp, steps=steps, starts=starts,
                               gen=gen, progress=progress, budget=budget, t0=t0, fit=fit)


def _measure_group_delay(
    x: Tensor, y: Tensor, *, sample_rate: int, nperseg: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Dry-to-wet group delay in samples, robustly: ``-angle(P_k) / dw`` with ``P_k`` the
    cross-spectrum product ``S_{k+1} conj(S_k)`` smoothed over 9 bins (no phase unwrapping).

    Returns ``(freqs_hz, tau, weight)`` at the bin centres ``k + 1/2``; ``weight`` is ``|S_xy|``.
    """
    sxy, _, _, _ = _welch_cross(x, y, nperseg)
    prod = sxy[1:] * sxy[:-1].conj()
    kern = torch.ones(1, 1, 9, dtype=torch.float64) / 9.0
    sm_re = torch.nn.functional.conv1d(prod.real[None, None], kern, padding=4)[0, 0]
    sm_im = torch.nn.functional.conv1d(prod.imag[None, None], kern, padding=4)[0, 0]
    dw = 2.0 * math.pi / nperseg
    tau = -torch.atan2(sm_im, sm_re) / dw
    freqs = (torch.arange(tau.shape[0], dtype=torch.float64) + 0.5) * sample_rate / nperseg
    weight = torch.sqrt(sm_re**2 + sm_im**2).sqrt()
    return freqs, tau, weight


def _group_delay_design(
    x: Tensor, y: Tensor, *, sample_rate: int, n2: int, n1: int, nperseg: int,
    first_order_first: bool = False,
) -> tuple[_Design, int]:
    """Initial design from the measured group delay (greedy peak picking).

    A low percentile of the measured group delay (energy-weighted) sets the bulk part (an
    integer advance of the pre-delayed dry plus the Thiran fraction); then each second-order
    section is placed at the largest remaining group-delay peak with ``R = (h - 1) / (h + 1)``
    from its height ``h`` (a pole of radius R gives a peak of ``(1 + R) / (1 - R)`` samples), and
    its closed-form group delay is subtracted; a first-order section takes the remaining
    low-frequency delay (before the second-order ones with ``first_order_first``). Sections with
    no peak left are parked at the band edges.
    """
    freqs, tau, weight = _measure_group_delay(x, y, sample_rate=sample_rate, nperseg=nperseg)
    f_hi = _fmax(sample_rate)
    valid = (weight > 1e-3 * float(weight.max())) & (freqs >= F_MIN_HZ) & (freqs <= f_hi)
    if not bool(valid.any()):
        valid = (freqs >= F_MIN_HZ) & (freqs <= f_hi)
    tv, wv = tau[valid], weight[valid]
    order_idx = torch.argsort(tv)
    cum = torch.cumsum(wv[order_idx], 0) / wv.sum()
    base = float(tv[order_idx][int(torch.searchsorted(cum, torch.tensor(0.05, dtype=cum.dtype)))])
    # bulk: shift so that the Thiran fraction takes base (in [0.5, 1.5)); j advances the dry
    j = -math.floor(base + 0.5) + 1
    delta = min(max(base + j, 0.5), 1.5)
    thiran = ap.thiran1_sos(torch.tensor([delta], dtype=torch.float64))
    res_tau = tau + j - ap.allpass_group_delay(thiran, freqs, sample_rate=sample_rate)
    radius: list[float] = []
    cutoff: list[float] = []
    cut1: list[float] = []
    low = valid & (freqs < 1000.0)
    plan = ["1"] * n1 + ["2"] * n2 if first_order_first else ["2"] * n2 + ["1"] * n1
    for kind in plan:
        if kind == "2":
            cand = torch.where(valid, res_tau, torch.full_like(res_tau, -math.inf))
            k = int(torch.argmax(cand))
            h = float(cand[k])
            if h > 1.5:
                r = min(max((h - 1.0) / (h + 1.0), 0.3), 0.995)
                fc = float(freqs[k])
            else:  # nothing left: park near the band edges, nearly transparent there
                r, fc = 0.98, (f_hi * 0.95 if len(radius) % 2 == 0 else F_MIN_HZ * 1.5)
            fc = min(max(fc, F_MIN_HZ * 1.01), f_hi * 0.99)
            radius.append(r)
            cutoff.append(fc)
            sec = ap.allpass2_sos(torch.tensor([r], dtype=torch.float64),
                                  torch.tensor([fc], dtype=torch.float64),
                                  sample_rate=sample_rate)
        else:
            d = float((res_tau[low] * weight[low]).sum() / weight[low].sum()) if bool(
                low.any()) else 0.0
            if d > 0.05:  # DC group delay of (k + z^-1) / (1 + k z^-1) is (1 - k) / (1 + k)
                kk = (1.0 - d) / (1.0 + d)
                fc1 = math.atan((1.0 + kk) / (1.0 - kk)) * sample_rate / math.pi
            else:
                fc1 = f_hi * 0.99
            fc1 = min(max(fc1, F_MIN_HZ * 1.01), f_hi * 0.99)
            cut1.append(fc1)
            sec = ap.allpass1_sos(torch.tensor([fc1], dtype=torch.float64),
                                  sample_rate=sample_rate)
        res_tau = res_tau - ap.allpass_group_delay(sec, freqs, sample_rate=sample_rate)
    f64 = torch.float64
    design = _Design(
        delta=torch.tensor([delta], dtype=f64),
        radius=torch.tensor(radius, dtype=f64).reshape(n2),
        cutoff_hz=torch.tensor(cutoff, dtype=f64).reshape(n2),
        warp=torch.zeros(n2, dtype=f64),
        cutoff1_hz=torch.tensor(cut1, dtype=f64).reshape(n1),
        warp1=torch.zeros(n1, dtype=f64),
    )
    return design, j


_KEYS = ("delta", "radius", "cutoff_hz", "warp", "cutoff1_hz", "warp1")


def _stack_designs(designs: Sequence[_Design]) -> _Design:
    return _Design(*(torch.stack([getattr(d, k) for d in designs]) for k in _KEYS))


class _SpectralObjective:
    """Predicted ESR per start: ``(E_yy + E_xx - 2 sum_f p |S_xy| cos(phi_A + j w - angle S_xy))
    / E_yy`` (Parseval, ``|A| = 1``)."""

    def __init__(self, freqs: Tensor, mag: Tensor, ang: Tensor, exx: float, eyy: float,
                 sample_rate: int) -> None:
        self.freqs, self.mag, self.ang = freqs, mag, ang
        self.exx, self.eyy, self.sample_rate = exx, eyy, sample_rate
        self.omega = 2.0 * math.pi * freqs / sample_rate

    def __call__(self, params: _DirectParams, pols: Tensor, shifts: Tensor) -> Tensor:
        sos = params.design().sos(self.sample_rate)
        phase = ap.allpass_phase(sos, self.freqs, sample_rate=self.sample_rate)  # (S, K)
        phase = phase + shifts * self.omega  # integer advance of the dry signal
        gain = (pols * self.mag * torch.cos(phase - self.ang)).sum(-1)
        return (self.eyy + self.exx - 2.0 * gain) / self.eyy


def _fit_spectral_inner(
    x: Tensor, y: Tensor, *, sample_rate: int, n2: int, n1: int, pol: int, delta0: float,
    warp: bool, steps: int, starts: int, gen: torch.Generator, progress: Progress | None,
    budget: float, t0: float, fit: Callable[..., Any],
) -> tuple[_Design, int, int, dict[str, Any]]:
    nper_fine = _nperseg(sample_rate, x.shape[-1], 6.0)
    rand = _initial_design(n2, n1, starts, delta0, gen, sample_rate, spread=True)
    shifts = torch.zeros(starts, 1)
    pols = torch.full((starts, 1), float(pol))
    pols[starts // 2 :] = -float(pol)  # half of the starts try the other sign
    # group-delay initialisations (both polarities), and jittered copies
    gd_a, j = _group_delay_design(x, y, sample_rate=sample_rate, n2=n2, n1=n1,
                                  nperseg=nper_fine)
    gd_b, _ = _group_delay_design(x, y, sample_rate=sample_rate, n2=n2, n1=n1,
                                  nperseg=nper_fine, first_order_first=True)
    n_gd = min(8 if n1 else 4, starts)
    gds = []
    for i in range(n_gd):
        base = gd_b if (n1 and (i // 2) % 2 == 1) else gd_a
        if i >= 4:  # jittered copies
            base = _Design(
                delta=base.delta,
                radius=(base.radius + 0.05 * torch.randn(n2, generator=gen,
                                                         dtype=torch.float64)).clamp(0.2, 0.995),
                cutoff_hz=base.cutoff_hz * torch.exp(
                    0.1 * torch.randn(n2, generator=gen, dtype=torch.float64)),
                warp=base.warp, cutoff1_hz=base.cutoff1_hz, warp1=base.warp1)
        gds.append(base)
    stacked = _stack_designs(gds)
    for k in _KEYS:
        getattr(rand, k)[:n_gd] = getattr(stacked, k)
    # integer-delay hypotheses for the random starts: the group-delay estimate, none, and two
    # samples less advance
    hyp = torch.tensor([float(j), 0.0, float(j - 2)])
    shifts[:, 0] = hyp[torch.arange(starts) % 3]
    shifts[:n_gd] = float(j)
    # the group-delay starts try both polarities (the cross-correlation sign can be misled by
    # an all-pass that inverts most of the band)
    pols[:n_gd] = float(pol) * torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(n_gd)])[
        :, None]
    init = _Design(*(getattr(rand, k).float() for k in _KEYS))
    # keep cut-offs inside the parameter range
    f_hi = _fmax(sample_rate)
    init.cutoff_hz = init.cutoff_hz.clamp(F_MIN_HZ * 1.01, f_hi * 0.99)
    init.cutoff1_hz = init.cutoff1_hz.clamp(F_MIN_HZ * 1.01, f_hi * 0.99)
    all_losses: list[float] = []
    info: dict[str, Any] = {"starts": starts, "group_delay_init_advance": j}
    stages = (("coarse", 24.0, steps, 0.05), ("fine", 6.0, max(steps // 2, 1), 0.02))
    final = torch.zeros(0)
    params = _DirectParams(init, sample_rate, learn_delta=True)
    converged = False
    # group-delay stage: least-squares fit of the measured group delay (smooth, far fewer local
    # minima than the phase objective), which puts the sections where the delay is
    gfreqs, gtau, gw = _measure_group_delay(x, y, sample_rate=sample_rate, nperseg=nper_fine)
    gvalid = (gw > 1e-3 * float(gw.max())) & (gfreqs >= F_MIN_HZ) & (gfreqs <= f_hi)
    idx = torch.nonzero(gvalid).flatten()
    idx = idx[:: max(1, idx.numel() // 1024)]
    if idx.numel() > 0:
        gf, gt = gfreqs[idx].float(), gtau[idx].float()
        gww = (gw[idx] / gw[idx].sum()).float()

        def gd_loss() -> Tensor:
            sos = params.design().sos(sample_rate)
            tau_m = ap.allpass_group_delay(sos, gf, sample_rate=sample_rate) - shifts
            r = tau_m - gt
            return (gww * (torch.sqrt(1.0 + r * r) - 1.0)).sum()

        n_steps = max(steps // 2, 1)
        res = fit([p for p in params.parameters() if p.requires_grad], gd_loss, steps=n_steps,
                  lr=0.05, schedule="cosine", time_budget_s=0.25 * budget,
                  progress=_cb(progress, "align: group-delay fit", n_steps))
        info["group_delay_fit_steps"] = res.steps
    for stage, divisor, n_steps, lr in stages:
        nper = _nperseg(sample_rate, x.shape[-1], divisor)
        freqs, mag, ang, exx, eyy = _spectral_objective(x, y, nper, sample_rate)
        info[f"nperseg_{stage}"] = nper
        if not warp:
            params.raw_w.requires_grad_(False)
            params.raw_w1.requires_grad_(False)
        obj = _SpectralObjective(freqs, mag, ang, exx, eyy, sample_rate)

        def per_start(obj: _SpectralObjective = obj, params: _DirectParams = params,
                      pols: Tensor = pols, shifts: Tensor = shifts) -> Tensor:
            return obj(params, pols, shifts)

        n_start = pols.shape[0]
        remaining = budget - (time.perf_counter() - t0)
        res = fit([p for p in params.parameters() if p.requires_grad],
                  lambda ps=per_start: ps().sum(), steps=n_steps, lr=lr, schedule="cosine",
                  time_budget_s=max(remaining * (0.6 if stage == "coarse" else 1.0), 0.1),
                  progress=_cb(progress, f"align: spectral fit ({stage})", n_steps))
        all_losses += [v / n_start for v in res.losses]
        converged = res.converged
        with torch.no_grad():
            final = per_start()
        if stage == "coarse":
            top = torch.argsort(final)[: min(4, n_start)]
            info["coarse_best_start"] = int(top[0])
            d = params.design()
            keep = _Design(*(getattr(d, k)[top].detach() for k in _KEYS))
            pols, shifts = pols[top], shifts[top]
            params = _DirectParams(keep, sample_rate, learn_delta=True)
    i = int(torch.argmin(final))
    design = params.design().select(i)
    design = _Design(*(getattr(design, k).to(torch.float64) for k in _KEYS))
    info.update({"predicted_esr": float(final[i]), "converged": converged,
                 "losses": all_losses})
    return design, int(pols[i, 0]), int(shifts[i, 0]), info


def _cb(progress: Progress | None, stage: str, total: int) -> Callable[[int, float], None] | None:
    if progress is None:
        return None

    def cb(step: int, loss: float) -> None:
        progress(stage, step, total, loss)

    return cb


def _fit_time_domain(
    x: Tensor, y: Tensor, start: _Design, pol: int, *, sample_rate: int, kind: str, loss: str,
    warp: bool, steps: int, lr: float, segment: int, batch_size: int, gen: torch.Generator,
    progress: Progress | None, budget: float,
) -> tuple[_Design, list[float], dict[str, Any]]:
    """Gradient descent on a time-domain loss over random mini-batches of segments.

    Each step filters a random excerpt of ``batch_size`` contiguous segments of the
    (pre-delayed) dry signal exactly (custom-backward ``sosfilt``), after a warm-up of up to 8192
    samples, and evaluates the loss on the batch of segments.
    """
    from diffdsp.functional.iir import sosfilt
    from diffdsp.optim import fit

    n2, n1 = start.radius.shape[-1], start.cutoff1_hz.shape[-1]
    module: nn.Module
    if kind == "direct":
        module = _DirectParams(start, sample_rate, learn_delta=False)
        if not warp:
            module.raw_w.requires_grad_(False)
            module.raw_w1.requires_grad_(False)
    else:
        module = _BiasNetParams(n2, n1, start.delta, sample_rate, connected=kind == "conn",
                                hidden=(1024, 512, 256, 128))
    x32 = x.to(torch.float32)
    y32 = y.to(torch.float32)
    n = x32.shape[-1]
    n_seg_total = n // segment
    bsz = max(1, min(batch_size, n_seg_total))
    excerpt = bsz * segment
    warm = 8192
    crit: Callable[[Tensor, Tensor], Tensor]
    if loss == "mse":
        def crit(a: Tensor, b: Tensor) -> Tensor:
            return ((a - b) ** 2).mean()
    else:
        crit = _interference_loss_fn(sample_rate)

    def loss_fn() -> Tensor:
        design = module.design()
        if not warp and kind != "direct":
            design.warp = design.warp * 0.0
            design.warp1 = design.warp1 * 0.0
        sos = design.sos(sample_rate).to(torch.float32)
        # a random excerpt of bsz contiguous segments, filtered after a warm-up of up to 8192
        # samples so that its segments do not start from a zero filter state
        start = int(torch.randint(0, n - excerpt + 1, (1,), generator=gen))
        a = max(0, start - warm)
        yhat = sosfilt(sos, x32[..., a : start + excerpt])[..., start - a :] * float(pol)
        return crit(_segments(yhat, segment), _segments(y32[..., start : start + excerpt],
                                                         segment))

    trainable = [p for p in module.parameters() if p.requires_grad]
    res = fit(trainable, loss_fn, steps=steps, lr=lr, schedule="cosine", time_budget_s=budget,
              progress=_cb(progress, f"align: {kind} ({loss})", steps))
    with torch.no_grad():
        design = module.design()
    if not warp:
        design.warp = design.warp * 0.0
        design.warp1 = design.warp1 * 0.0
    n_params = sum(p.numel() for p in trainable)
    return design, res.losses, {
        "converged": res.converged, "stopped_reason": res.stopped_reason,
        "learnable_parameters": n_params, "segment": segment, "batch_size": bsz * x.shape[0],
    }


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def run(
    dry_path: str | Path,
    wet_path: str | Path,
    out_dir: str | Path,
    *,
    order: int = 7,
    method: str = "spectral",
    loss: str = "mse",
    warp: bool = True,
    steps: int | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
    plots: bool = True,
) -> TaskResult:
    """Align the dry file to the wet file and write the artefacts into ``out_dir``.

    Args:
        dry_path: dry audio file.
        wet_path: wet (processed) audio file, same sample rate and length.
        out_dir: output folder (created if missing).
        order, method, loss, warp, steps, time_budget_s, seed: see :func:`fit_alignment`.
        device: ``"cpu"`` (the fit is CPU-bound; other devices are accepted and ignored by the
            numba kernels).
        progress: progress callback.
        plots: write the PNG plots and ``report.html``.

    Returns:
        A :class:`TaskResult` (``result`` is the content of ``result.json``).

    Raises:
        InputError: unreadable input, different sample rates, lengths or channel counts, silence,
            an output folder that is an input.
    """
    from diffdsp.io import load_audio, save_audio
    from diffdsp.report import write_json
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import prepare_out_dir, resolve_device, seed_all

    resolve_device(device)
    out = prepare_out_dir(out_dir, [dry_path, wet_path])
    seed_all(seed)
    dry, sr_d = load_audio(dry_path, max_seconds=MAX_SECONDS)
    wet, sr_w = load_audio(wet_path, max_seconds=MAX_SECONDS)
    if sr_d != sr_w:
        raise InputError(
            f"sample rates must match: dry has {sr_d} Hz, wet has {sr_w} Hz (resample one first)"
        )
    if dry.shape[-1] != wet.shape[-1]:
        raise InputError(
            f"dry and wet must have the same length: dry has {dry.shape[-1]} samples, wet has "
            f"{wet.shape[-1]} (trim or pad one of them)"
        )
    if dry.shape[0] != wet.shape[0]:
        if dry.shape[0] == 1:
            dry = dry.expand(wet.shape[0], -1)
        else:
            raise InputError(
                f"dry and wet must have the same number of channels (or a mono dry), got "
                f"{dry.shape[0]} and {wet.shape[0]}"
            )
    res = fit_alignment(dry, wet, sample_rate=sr_d, order=order, method=method, loss=loss,
                        warp=warp, steps=steps, time_budget_s=time_budget_s, seed=seed,
                        progress=progress)
    inputs = [dry_path, wet_path]
    save_audio(out / "aligned.wav", res.aligned, sr_d, protect=inputs)
    ap_json = {
        **res.filter.to_dict(),
        "order": order, "method": method, "loss": loss,
        "identity": res.filter.is_identity, "chosen": res.chosen,
    }
    write_json(out / "allpass.json", ap_json, protect=inputs)
    files = ["aligned.wav", "allpass.json"]
    sections: list[Any] = []
    if plots:
        files += _plots(out, dry, wet, res, sr_d)
        sections = [_section(res, files)]
    settings = {"order": order, "method": method, "loss": loss, "warp": warp, "steps": steps,
                "time_budget_s": time_budget_s, "device": "cpu", "device_requested": device}
    extra = {
        "alignment": {
            "chosen": res.chosen, "related": res.related, "note": res.note,
            "identity": res.filter.is_identity, "candidates_esr": res.candidates,
            "bulk_delay": res.delay,
        }
    }
    if plots:
        from diffdsp.report import write_report

        write_report(out, "diffdsp align", sections)
        files.append("report.html")
    result = write_result_json(
        out, task="align", inputs=inputs, settings=settings, metrics_before=res.before,
        metrics_after=res.after, fit=res.fit, seed=seed, files=files, extra=extra,
    )
    return TaskResult(task="align", out_dir=out, result=result, files=result["files"],
                      sections=sections)


def _plots(out: Path, dry: Tensor, wet: Tensor, res: AlignmentFit, sr: int) -> list[str]:
    from diffdsp.report.plots import line_plot, loss_curve

    files = []
    f = torch.logspace(math.log10(10.0), math.log10(0.499 * sr), 512, dtype=torch.float64)
    curves: dict[str, Tensor] = {}
    flt = res.filter
    if flt.sos.shape[0]:
        ph = ap.allpass_phase(flt.sos, f, sample_rate=sr) - 2 * math.pi * f / sr * (
            flt.delay_samples)
        curves["fitted all-pass + delay"] = ph / math.pi * 180.0
    # measured dry -> wet phase (cross-spectrum), for comparison
    nper = max(256, min(1 << round(math.log2(sr / 6.0)),
                        1 << math.floor(math.log2(dry.shape[-1]))))
    sxy, _, _, _ = _welch_cross(dry.to(torch.float64), wet.to(torch.float64), nper)
    fr = torch.fft.rfftfreq(nper, 1.0 / sr, dtype=torch.float64)
    meas = torch.from_numpy(__import__("numpy").unwrap(sxy.angle().numpy()))
    curves["measured (cross-spectrum)"] = torch.from_numpy(
        __import__("numpy").interp(f.numpy(), fr.numpy(), meas.numpy())) / math.pi * 180.0
    line_plot(out / "phase_response.png", f, curves, xlabel="frequency (Hz)",
              ylabel="phase (degrees)", title="dry -> wet phase: measured and fitted", logx=True)
    files.append("phase_response.png")
    # waveform overlay: 20 ms around the loudest part of the wet signal
    w = wet.to(torch.float64).mean(0)
    n = w.shape[-1]
    span = min(n, max(64, int(0.02 * sr)))
    c = int(torch.argmax(w.abs()))
    a = max(0, min(n - span, c - span // 2))
    t = torch.arange(a, a + span, dtype=torch.float64) / sr * 1000.0
    line_plot(out / "waveforms.png", t, {
        "wet": w[a : a + span],
        "dry (before)": dry.to(torch.float64).mean(0)[a : a + span],
        "aligned (after)": res.aligned.to(torch.float64).reshape(-1, n).mean(0)[a : a + span],
    }, xlabel="time (ms)", ylabel="amplitude",
        title=f"ESR {res.before['esr']:.3g} -> {res.after['esr']:.3g}",
        styles={"wet": "k-", "dry (before)": "r--", "aligned (after)": "g-"})
    files.append("waveforms.png")
    if res.losses:
        loss_curve(out / "loss.png", res.losses, title=f"alignment loss ({res.fit['method']})")
        files.append("loss.png")
    return files


def _section(res: AlignmentFit, files: list[str]) -> Any:
    from diffdsp.report import Section

    imgs = [(f, c) for f, c in (("phase_response.png", "phase responses"),
                                 ("waveforms.png", "before/after waveform overlay"),
                                 ("loss.png", "loss per step")) if f in files]
    text = (f"All-pass phase alignment ({res.fit.get('method')}, {res.fit.get('loss')} loss): "
            f"returned '{res.chosen}'. {res.note}")
    return Section(title="Phase alignment (all-pass)", text=text,
                   metrics={"before": res.before, "after": res.after}, images=imgs,
                   audio=[("aligned", "aligned.wav")],
                   details={"delay_samples": res.filter.delay_samples,
                            "polarity": res.filter.polarity,
                            "sections": len(res.filter.sections)})


def demo(out_dir: Path, *, quick: bool, seed: int, progress: Progress | None) -> TaskResult:
    """``diffdsp demo`` section: align real speech with a phaser-like all-pass chain of itself."""
    from diffdsp import data
    from diffdsp.functional.iir import sosfilt
    from diffdsp.io import load_audio, resample, save_audio
    from diffdsp.tasks._common import prepare_out_dir

    out = prepare_out_dir(out_dir)
    x, sr = load_audio(data.path("speech_music/speech_cmu_arctic_a0007.flac"))
    x = resample(x, sr, 48000)[..., : 48000 * (1 if quick else 3)]
    sos = torch.cat([
        ap.allpass2_sos(torch.tensor([0.95, 0.9, 0.85]), torch.tensor([150.0, 900.0, 4000.0]),
                        sample_rate=48000),
        ap.allpass1_sos(torch.tensor([2500.0]), sample_rate=48000),
    ]).to(x.dtype)
    wet = apply_delay(sosfilt(sos, x), 24)
    save_audio(out / "dry.wav", x, 48000)
    save_audio(out / "wet.wav", wet, 48000)
    res = run(out / "dry.wav", out / "wet.wav", out / "fit", seed=seed, progress=progress,
              steps=80 if quick else None)
    for s in res.sections:
        s.images = [(f"fit/{p}", c) for p, c in s.images]
        s.audio = [("dry", "dry.wav"), ("wet", "wet.wav")] + [
            (label, f"fit/{p}") for label, p in s.audio]
    return TaskResult(task="align", out_dir=out, result=res.result,
                      files=["dry.wav", "wet.wav", *[f"fit/{f}" for f in res.files]],
                      sections=res.sections)
