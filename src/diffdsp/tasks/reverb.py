"""``diffdsp reverb fit/render/apply``: fit a feedback delay network (FDN) to a room response.

Pipeline (:func:`fit_rir` on tensors, :func:`fit` on files):

1. **Analyse** the RIR: onset (first sample within 20 dB of the peak, minus 1 ms), direct-sound
   gain, octave-band energy decay curves (the bands of
   :func:`diffdsp.functional.analysis.octave_filterbank`, noise floor estimated from the last
   10 % of each band and subtracted, integration truncated where the decay meets it), T60 per
   band from :func:`diffdsp.functional.analysis.t60_per_band` (T30, T20 when the dynamic range is
   short), echo density profile and mixing time (:mod:`diffdsp.functional.analysis`).
2. **Build** an FDN (default N = 8 co-prime delays of 8-40 ms, orthogonal matrix, cut-only GEQ
   attenuation per line from the measured T60s, a GEQ tone corrector on the reverberant output).
3. **Colourless** stage: the lossless network's matrix and input/output gains are optimised for a
   flat magnitude response (``(|H| - 1)^2`` on random frequencies each step + matrix sparsity,
   Dal Santo et al. DAFx 2023). This objective, not the flatter ``log_flatness`` of
   :func:`optimise_colourless`: the latter is scale-free and concentrates the input and output
   gains on one line (a comb-like network, 36x the energy), which broke the decay fit of small
   rooms (T60 errors up to 54 % in ``evals/reverb_fit.py``; ``docs/colourless.md``).
4. **Decay and level** stage: per-band T60s and tone gains minimise the squared dB difference of
   the octave-band EDCs of the frequency-sampled FDN response and the target (Adam, cosine
   schedule), then a short calibration measures the rendered T30s with the same estimator as the
   target and rescales each band's T60 by target/measured (two passes).
5. **Write** ``impulse_response.wav`` (input rate and length: onset zeros, direct path, the FDN's
   exact time-domain response), ``fdn.json`` (every parameter; :func:`render` rebuilds it
   exactly), plots and ``result.json`` with the target and fitted T60 per band.

References:
    Dal Santo et al., "Differentiable feedback delay network for colorless reverberation", DAFx
    2023; Dal Santo et al., "FLAMO", ICASSP 2025; Prawda et al., DAFx 2019; Schroeder, "New method
    of measuring reverberation time", JASA 1965; Lundeby et al., Acustica 1995 (noise
    truncation); Abel & Huang, "A simple, robust measure of reverberation echo density", AES 2006.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffdsp._validation import InputError, check_in_range, check_int, check_sample_rate
from diffdsp.functional.analysis import echo_density_profile, mixing_time_s
from diffdsp.functional.fdn import fdn_transfer
from diffdsp.lti.fdn import FDN, GEQAttenuation, build_fdn
from diffdsp.lti.systems import octave_centers_hz
from diffdsp.tasks._common import Progress, TaskResult, checkpoint_digest, load_checkpoint

__all__ = [
    "METRIC_BANDS_HZ",
    "RIRAnalysis",
    "ReverbFit",
    "analyse_rir",
    "apply",
    "band_edc_db",
    "colourless_flatness",
    "colourless_loss",
    "demo",
    "fit",
    "fit_rir",
    "log_flatness_loss",
    "optimise_colourless",
    "render",
    "spectral_flatness",
    "synthetic_rir",
    "t60_bands",
]

#: Octave bands of the T60 error metric (T30, 250 Hz - 8 kHz).
METRIC_BANDS_HZ = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
_MIN_RIR_S = 0.05
MAX_RIR_S = 20.0  # longer RIR files are refused (docs/limits.md)
MAX_APPLY_S = 600.0  # reverb apply renders in one pass: longer inputs are refused


# --------------------------------------------------------------------------- analysis


def _band_masks(n_fft: int, sample_rate: int, centers_hz: Sequence[float], *,
                dtype: torch.dtype = torch.float64, device: torch.device | None = None) -> Tensor:
    """Octave-band magnitudes ``(K, n_fft//2+1)`` on an rFFT grid: exactly those of
    :func:`diffdsp.functional.analysis.octave_filterbank` (zero-phase 3rd-order Butterworth,
    designed once per grid and cached there), for bands applied to a frequency-sampled response."""
    from diffdsp.functional.analysis import _band_mags

    dev = torch.device("cpu") if device is None else torch.device(device)
    return _band_mags(int(sample_rate), int(n_fft), tuple(float(c) for c in centers_hz), 1, 3,
                      dtype, str(dev))


def _band_signals(x: Tensor, sample_rate: int, centers_hz: Sequence[float]) -> Tensor:
    """``(..., T)`` -> ``(..., K, T)``: :func:`diffdsp.functional.analysis.octave_filterbank`."""
    from diffdsp.functional.analysis import octave_filterbank

    return octave_filterbank(x, sample_rate=sample_rate,
                             center_frequencies_hz=[float(c) for c in centers_hz])


def _nfft_for(t: int) -> int:
    return 1 << max(1, math.ceil(math.log2(2 * t)))


def _noise_and_cut(energy: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """Per band: noise power (mean of the last 10 %) and the truncation index where a 10 ms
    smoothed envelope last exceeds twice the noise (Lundeby-style, single pass)."""
    t = energy.shape[-1]
    tail = max(1, t // 10)
    noise = energy[..., -tail:].mean(-1)
    win = max(1, int(0.01 * sample_rate))
    c = torch.nn.functional.pad(torch.cumsum(energy, -1), (win // 2 + 1, win - win // 2 - 1))
    lo = c[..., :t]
    hi = torch.cat([c[..., win:], c[..., -1:].expand(*c.shape[:-1], win)], -1)[..., :t]
    smooth = (hi - lo) / win  # centred moving average (cumulative sums, O(T))
    above = smooth > 2.0 * noise.unsqueeze(-1)
    idx = torch.arange(t, device=energy.device).expand_as(above)
    cut = torch.where(above, idx, torch.zeros_like(idx)).amax(-1).clamp_min(1) + 1
    return noise, cut


def band_edc_db(x: Tensor, sample_rate: int, centers_hz: Sequence[float], *,
                denoise: bool = True, cut: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Octave-band Schroeder energy decay curves in dB (un-normalised) and their valid lengths.

    Args:
        x: impulse response ``(time,)``.
        sample_rate: Hz.
        centers_hz: band centres.
        denoise: subtract the noise floor and truncate the integration where the decay meets it
            (for measured RIRs); ``False`` integrates to the end (noise-free model output).
        cut: per-band integration limits ``(K,)`` to use instead (a model's EDC measured over
            the same span as a denoised target's).

    Returns:
        ``(edc_db (K, T), valid (K,))``: EDC in dB re. 1, and the number of valid samples.

    Examples:
        >>> h = torch.exp(-torch.arange(8000.0, dtype=torch.float64) / 400) * torch.randn(8000,
        ...     generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> edc, valid = band_edc_db(h, 8000, [1000.0], denoise=False)
        >>> edc.shape, int(valid[0])
        (torch.Size([1, 8000]), 8000)
    """
    bands = _band_signals(x, sample_rate, centers_hz)
    energy = bands * bands
    t = x.shape[-1]
    if denoise:
        noise, cut = _noise_and_cut(energy, sample_rate)
        idx = torch.arange(t, device=x.device)
        keep = idx.unsqueeze(0) < cut.unsqueeze(-1)
        energy = torch.where(keep, energy - noise.unsqueeze(-1), torch.zeros_like(energy))
        energy = energy.clamp_min(0.0)
    elif cut is not None:
        idx = torch.arange(t, device=x.device)
        energy = energy * (idx.unsqueeze(0) < cut.unsqueeze(-1)).to(energy.dtype)
    else:
        cut = torch.full((len(centers_hz),), t, dtype=torch.long, device=x.device)
    edc = torch.flip(torch.cumsum(torch.flip(energy, [-1]), -1), [-1])
    return 10.0 * torch.log10(edc.clamp_min(1e-30)), cut


def t60_bands(x: Tensor, sample_rate: int, centers_hz: Sequence[float] = METRIC_BANDS_HZ, *,
              methods: Sequence[str] | None = None) -> tuple[list[float], list[str]]:
    """T60 (s) per octave band and the method used: T30 from
    :func:`diffdsp.functional.analysis.t60_per_band` (ISO 3382-1, Lundeby truncation and
    compensation), T20 where the dynamic range is too short for T30, NaN where neither can be
    measured. The task measures target and fit with this one estimator; ``methods`` (``"T30"``
    or ``"T20"`` per band, e.g. the target's) forces the method of each band.

    Examples:
        >>> n = torch.arange(16000, dtype=torch.float64)
        >>> h = torch.randn(16000, generator=torch.Generator().manual_seed(0),
        ...                 dtype=torch.float64) * 10 ** (-3 * n / 16000 / 0.5)
        >>> t, how = t60_bands(h, 16000, [4000.0])
        >>> abs(t[0] - 0.5) < 0.03, how
        (True, ['T30'])
    """
    from diffdsp.functional.analysis import t60_per_band

    kw: dict[str, Any] = dict(sample_rate=sample_rate, bands="octave",
                              noise_handling="truncate",
                              center_frequencies_hz=[float(c) for c in centers_hz])
    h = x.detach().to(torch.float64)
    t30 = t60_per_band(h, method="t30", **kw).tolist()
    t20: list[float] | None = None
    out, how = [], []
    for k, v in enumerate(t30):
        if math.isfinite(v) and (methods is None or methods[k] != "T20"):
            out.append(float(v))
            how.append("T30")
            continue
        if t20 is None:
            t20 = t60_per_band(h, method="t20", **kw).tolist()
        ok = math.isfinite(t20[k])
        out.append(float(t20[k]) if ok else float("nan"))
        how.append("T20" if ok else "none")
    return out, how


@dataclass
class RIRAnalysis:
    """What :func:`analyse_rir` measures."""

    sample_rate: int
    onset_samples: int
    direct_gain: float
    peak_abs: float
    clipped_fraction: float
    centers_hz: list[float]
    t60_s: list[float]
    t60_method: list[str]
    band_level_db: list[float]
    mixing_time_ms: float
    echo_density_late: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "onset_samples": self.onset_samples,
            "onset_ms": 1000.0 * self.onset_samples / self.sample_rate,
            "direct_gain": self.direct_gain,
            "clipped_fraction": self.clipped_fraction,
            "band_centers_hz": self.centers_hz,
            "t60_s": self.t60_s,
            "t60_method": self.t60_method,
            "band_level_db": self.band_level_db,
            "mixing_time_ms": self.mixing_time_ms,
            "echo_density_late": self.echo_density_late,
        }


def _check_rir(rir: Tensor, sample_rate: int) -> Tensor:
    sample_rate = check_sample_rate(sample_rate)
    if not isinstance(rir, Tensor) or not rir.is_floating_point():
        raise TypeError(f"rir must be a floating torch.Tensor, got {type(rir).__name__}")
    if rir.ndim == 2 and rir.shape[0] == 1:
        rir = rir[0]
    if rir.ndim != 1:
        raise InputError(f"rir must be mono (time,) or (1, time), got shape {tuple(rir.shape)}; "
                         "pick one channel (--channel) to fit a multi-channel RIR")
    if not bool(torch.isfinite(rir).all()):
        raise InputError("rir contains NaN or Inf samples")
    if float(rir.abs().max()) == 0.0:
        raise InputError("rir is silent (all samples are zero)")
    if rir.shape[-1] < _MIN_RIR_S * sample_rate:
        raise InputError(f"rir is too short: {rir.shape[-1]} samples "
                         f"({rir.shape[-1] / sample_rate:.3f} s); at least {_MIN_RIR_S} s needed")
    return rir


def analyse_rir(rir: Tensor, sample_rate: int,
                centers_hz: Sequence[float] | None = None) -> RIRAnalysis:
    """Onset, direct sound, octave-band T60s and levels, echo density of a measured RIR.

    Args:
        rir: ``(time,)`` impulse response.
        sample_rate: Hz.
        centers_hz: octave bands (default: :data:`METRIC_BANDS_HZ` plus 125 Hz and 16 kHz where
            below Nyquist).

    Returns:
        :class:`RIRAnalysis` (T60 NaN where a band cannot be measured).

    Examples:
        >>> h = synthetic_rir(16000, seconds=0.6, t60_s=0.4, seed=0)
        >>> a = analyse_rir(h, 16000)
        >>> abs(a.t60_s[a.centers_hz.index(1000.0)] - 0.4) < 0.05
        True
    """
    rir = _check_rir(rir, sample_rate).to(torch.float64)
    if centers_hz is None:
        centers_hz = [c for c in octave_centers_hz(sample_rate, lowest_hz=125.0)]
    peak = float(rir.abs().max())
    first = int(torch.nonzero(rir.abs() >= 0.1 * peak)[0])
    onset = max(0, first - int(0.001 * sample_rate))
    ipeak = int(torch.argmax(rir.abs()))
    direct = float(rir[ipeak]) if ipeak - first < int(0.005 * sample_rate) else float(rir[first])
    clipped = float((rir.abs() >= 0.999 * peak).to(torch.float64).mean()) if peak >= 0.99 else 0.0
    h = rir[onset:]
    edc, _ = band_edc_db(h, sample_rate, centers_hz, denoise=True)
    t60, methods = t60_bands(h, sample_rate, centers_hz)
    hop = max(1, sample_rate // 1000)
    ned = echo_density_profile(h, sample_rate=sample_rate, hop=hop)
    mix = 1000.0 * float(mixing_time_s(h, sample_rate=sample_rate))
    late = float(ned[int(0.05 * sample_rate) // hop:].mean()) if h.shape[-1] > 0.1 * \
        sample_rate else float(ned.mean())
    return RIRAnalysis(
        sample_rate=sample_rate, onset_samples=onset, direct_gain=direct, peak_abs=peak,
        clipped_fraction=clipped, centers_hz=list(centers_hz), t60_s=[float(v) for v in t60],
        t60_method=methods, band_level_db=[float(v) for v in edc[:, 0]],
        mixing_time_ms=mix, echo_density_late=late,
    )


# --------------------------------------------------------------------------- losses


def spectral_flatness(h: Tensor) -> Tensor:
    """Spectral flatness of a magnitude response: geometric / arithmetic mean of ``|H|^2``.

    Examples:
        >>> round(float(spectral_flatness(torch.ones(16, dtype=torch.complex64))), 4)
        1.0
    """
    p = h.abs().pow(2).clamp_min(1e-20)
    return torch.exp(torch.log(p).mean(-1)) / p.mean(-1)


def colourless_loss(h: Tensor, matrix: Tensor, *, sparsity_weight: float = 0.1) -> Tensor:
    """``mean((|H| - 1)^2) + w * sparsity(A)`` (Dal Santo et al. DAFx 2023, eqs. 9-10).

    Built from :func:`diffdsp.losses.acoustic.spectral_flatness_loss` and
    :func:`diffdsp.losses.acoustic.sparsity_loss` (0 for a maximally dense orthogonal matrix).
    """
    from diffdsp.losses.acoustic import sparsity_loss, spectral_flatness_loss

    return spectral_flatness_loss(h) + sparsity_weight * sparsity_loss(matrix)


def _line_response_at(fdn: FDN, w: Tensor, log_gamma: float) -> Tensor:
    """Line responses ``gamma^m_i e^{-j w m_i}`` at the angular frequencies ``w`` (rad/sample)."""
    m = fdn.delays.samples.detach().to(torch.float64)
    phase = torch.remainder(w.unsqueeze(-1) * m, 2 * math.pi)
    cdt = torch.complex64 if fdn.grid.dtype == torch.float32 else torch.complex128
    mag = torch.exp(log_gamma * m).expand_as(phase)
    return torch.polar(mag, -phase).to(cdt)


#: Damping of the colourless objective: the gamma of a 2^17-point grid with 30 dB anti-aliasing
#: decay (FLAMO's setting), i.e. the lossless network sampled just outside the unit circle.
COLOURLESS_LOG_GAMMA = -30.0 / 20.0 * math.log(10.0) / 2**17


def _step_frequencies(step: int, n_freqs: int, seed: int) -> Tensor:
    """Stratified random frequencies of one step: ``(k + u) pi / K``, ``u`` drawn from
    ``(seed, step)`` so that a resumed fit sees exactly the frequencies of an uninterrupted one."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    u = torch.rand(1, generator=gen, dtype=torch.float64)
    return (torch.arange(n_freqs, dtype=torch.float64) + u) * (math.pi / n_freqs)


def _ckpt_step(path: Path | None, resume: bool) -> int:
    if not (resume and path is not None and path.is_file()):
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["step"])
    except Exception as exc:  # any unreadable file is a bad input
        raise InputError(f"{path}: cannot read the checkpoint ({exc})") from None


def log_flatness_loss(h: Tensor) -> Tensor:
    """``-log`` spectral flatness of ``|H|^2``: ``log mean |H|^2 - mean log |H|^2`` (>= 0, 0 for a
    flat response; scale-invariant).

    Examples:
        >>> round(float(log_flatness_loss(torch.ones(8, dtype=torch.complex64))), 6)
        0.0
    """
    p = (h.real.square() + h.imag.square()).clamp_min(1e-20)
    return torch.log(p.mean(-1)) - torch.log(p).mean(-1)


def optimise_colourless(fdn: FDN, *, steps: int = 300, n_freqs: int = 2048, lr: float = 1e-2,
                        sparsity_weight: float = 0.1, objective: str = "mse", seed: int = 0,
                        max_sparsity: float | None = None, restarts: int = 1,
                        time_budget_s: float | None = None,
                        progress: Progress | None = None,
                        checkpoint_path: str | Path | None = None, checkpoint_every: int = 50,
                        resume: bool = False) -> dict[str, Any]:
    """Colourless stage: fit matrix, input and output gains of the lossless network in place.

    Objective ``"mse"`` (Dal Santo et al., DAFx 2023): ``mean (|H| - 1)^2`` over ``n_freqs``
    stratified random frequencies per step (damped by :data:`COLOURLESS_LOG_GAMMA`), or
    ``"log_flatness"``: :func:`log_flatness_loss` on the same frequencies (the spectral flatness
    itself, scale-free); plus ``sparsity_weight`` x matrix sparsity (a larger weight keeps the
    matrix denser at the price of flatness); Adam with a cosine schedule. ``checkpoint_path`` /
    ``resume``: see :func:`diffdsp.optim.fit` (the frequencies depend only on ``seed`` and the
    step, so a resumed fit equals an uninterrupted one).

    ``max_sparsity`` (in [0, 1], optional) is a density *constraint* instead of a trade-off: the
    flattest network whose matrix sparsity stays at or below it. It adds the exact penalty
    :data:`SPARSITY_CAP_WEIGHT` x ``relu(sparsity - (max_sparsity - SPARSITY_CAP_MARGIN))``, and
    if the last Adam step still leaves the matrix sparser than ``max_sparsity``, descends the
    sparsity alone until it is not (:func:`_enforce_max_sparsity`), so the returned matrix
    satisfies the constraint.

    ``restarts`` > 1 runs the fit that many times from the same start with the frequency
    seeds ``seed, seed + 1, ...`` (the objective is not convex: the stochastic frequency draws
    lead to different local optima) and keeps the flattest result by
    :func:`colourless_flatness` (``time_budget_s`` is shared between the runs; no
    checkpointing then).

    Returns ``{"steps", "seconds", "final_loss", "losses", "sparsity", "flatness"}`` (and
    ``"restart_flatness"``, one value per run, when ``restarts`` > 1).
    """
    from diffdsp.losses.acoustic import sparsity_loss
    from diffdsp.optim import fit as optim_fit

    if max_sparsity is not None:
        check_in_range(max_sparsity, "max_sparsity", 0.0, 1.0)
    restarts = check_int(restarts, "restarts", minimum=1)
    if restarts > 1:
        if checkpoint_path is not None:
            raise InputError("checkpoint_path: expected None when restarts > 1 (checkpointing "
                             f"covers a single run), got {checkpoint_path!r}")
        return _colourless_restarts(
            fdn, restarts, steps=steps, n_freqs=n_freqs, lr=lr,
            sparsity_weight=sparsity_weight, objective=objective, seed=seed,
            max_sparsity=max_sparsity,
            time_budget_s=None if time_budget_s is None else time_budget_s / restarts,
            progress=progress)

    params = [p for p in (*fdn.matrix.parameters(), fdn.input_gains, fdn.output_gains)
              if p.requires_grad]
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    counter = [_ckpt_step(ckpt, resume)]

    def loss_fn() -> Tensor:
        g = _line_response_at(fdn, _step_frequencies(counter[0], n_freqs, seed),
                              COLOURLESS_LOG_GAMMA)
        counter[0] += 1
        h = fdn_transfer(g, feedback_matrix=fdn.matrix.static_matrix(),
                         input_gains=fdn.input_gains, output_gains=fdn.output_gains)
        a = fdn.matrix.static_matrix()
        if objective == "log_flatness":
            loss = log_flatness_loss(h) + sparsity_weight * sparsity_loss(a)
        else:
            loss = colourless_loss(h, a, sparsity_weight=sparsity_weight)
        if max_sparsity is not None:
            excess = sparsity_loss(a) - (max_sparsity - SPARSITY_CAP_MARGIN)
            loss = loss + SPARSITY_CAP_WEIGHT * torch.relu(excess)
        return loss

    from diffdsp._validation import check_choice

    check_choice(objective, "objective", ("mse", "log_flatness"))
    cb = None
    if progress is not None:
        def cb(step: int, loss: float) -> None:
            progress("colourless", step, steps, loss)
    res = optim_fit(params, loss_fn, steps=steps, lr=lr, optimizer="adam", schedule="cosine",
                    time_budget_s=time_budget_s, progress=cb, checkpoint_path=ckpt,
                    checkpoint_every=checkpoint_every, resume=resume)
    if max_sparsity is not None:
        _enforce_max_sparsity(fdn, max_sparsity)
    with torch.no_grad():
        sparsity = float(sparsity_loss(fdn.matrix.static_matrix()))
    return {"steps": res.steps, "seconds": res.seconds, "final_loss": res.final_loss,
            "losses": list(res.losses), "sparsity": sparsity,
            "flatness": colourless_flatness(fdn)}


def _colourless_restarts(fdn: FDN, restarts: int, **kwargs: Any) -> dict[str, Any]:
    """``restarts`` colourless fits from the state of ``fdn``; ``fdn`` ends in the flattest."""
    import copy

    start = copy.deepcopy(fdn.state_dict())
    seed = int(kwargs.pop("seed"))
    best: tuple[float, dict[str, Any], dict[str, Any]] | None = None
    flat: list[float] = []
    seconds = 0.0
    for k in range(restarts):
        fdn.load_state_dict(start)
        info = optimise_colourless(fdn, seed=seed + k, **kwargs)
        seconds += info["seconds"]
        flat.append(info["flatness"])
        if best is None or info["flatness"] > best[0]:
            best = (info["flatness"], copy.deepcopy(fdn.state_dict()), info)
    assert best is not None
    fdn.load_state_dict(best[1])
    return {**best[2], "seconds": seconds, "restart_flatness": flat}


def colourless_flatness(fdn: FDN, *, n_freqs: int = 2**16) -> float:
    """Spectral flatness of the lossless network on ``n_freqs`` uniform frequencies in (0, pi),
    damped by :data:`COLOURLESS_LOG_GAMMA` (what the colourless stage maximises).

    Examples:
        >>> from diffdsp.lti import build_fdn
        >>> fdn = build_fdn(48000, n_lines=4, nfft=2**10, attenuation="none", seed=0)
        >>> 0.0 < colourless_flatness(fdn) < 1.0
        True
    """
    n_freqs = check_int(n_freqs, "n_freqs", minimum=2)
    w = (torch.arange(n_freqs, dtype=torch.float64) + 0.5) * (math.pi / n_freqs)
    with torch.no_grad():
        h = fdn_transfer(_line_response_at(fdn, w, COLOURLESS_LOG_GAMMA),
                         feedback_matrix=fdn.matrix.static_matrix(),
                         input_gains=fdn.input_gains, output_gains=fdn.output_gains)
        return float(spectral_flatness(h))


#: Weight of the exact penalty of ``optimise_colourless(max_sparsity=...)``: larger than the
#: flatness gradient can outweigh (the log-flatness loss changes by O(1) per unit of sparsity).
SPARSITY_CAP_WEIGHT = 10.0
#: The penalty aims this far below the cap, so that Adam's last steps end inside it.
SPARSITY_CAP_MARGIN = 0.001


def _enforce_max_sparsity(fdn: FDN, max_sparsity: float, *, max_steps: int = 5000) -> None:
    """Densify the matrix until its sparsity is at most ``max_sparsity``.

    Descends ``sum a_ij^4`` (smooth; over orthogonal matrices, whose rows have unit norm, it is
    smallest exactly when every ``|a_ij| = 1/sqrt(N)``, i.e. sparsity 0), not the sparsity
    itself: the L1 sparsity has stationary points where its own descent stalls (one at 0.152
    for N = 4, entries +-0.653 / +-0.271). The steps act on the matrix parameter, so it stays
    orthogonal, and stop at the first step inside the constraint, so the flatness reached
    before is disturbed as little as possible.
    """
    from diffdsp.losses.acoustic import sparsity_loss

    params = [p for p in fdn.matrix.parameters() if p.requires_grad]
    if not params:
        return
    opt = torch.optim.Adam(params, lr=5e-3)
    for _ in range(max_steps):
        a = fdn.matrix.static_matrix()
        if float(sparsity_loss(a.detach())) <= max_sparsity - 1e-5:  # float32 vs float64 slack
            return
        opt.zero_grad()
        a.pow(4).sum().backward()
        opt.step()


# --------------------------------------------------------------------------- fitting


@dataclass
class ReverbFit:
    """Result of :func:`fit_rir`."""

    fdn: FDN
    analysis: RIRAnalysis
    impulse_response: Tensor
    predelay_samples: int
    target_t60_s: list[float]
    fitted_t60_s: list[float]
    t60_error_pct: list[float]
    fit: dict[str, Any]
    bands_hz: list[float] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mean_t60_error_pct(self) -> float:
        vals = [abs(v) for v in self.t60_error_pct if math.isfinite(v)]
        return sum(vals) / len(vals) if vals else float("nan")


def _fill_nan(values: list[float], fallback: float) -> list[float]:
    out = list(values)
    finite = [i for i, v in enumerate(out) if math.isfinite(v) and v > 0]
    if not finite:
        return [fallback] * len(out)
    for i, v in enumerate(out):
        if not (math.isfinite(v) and v > 0):
            j = min(finite, key=lambda f: abs(f - i))
            out[i] = out[j]
    return out


def _fit_digest(rir: Tensor, sample_rate: int, settings: dict[str, Any], seed: int) -> str:
    """What a checkpoint must have been written for (RIR samples, rate, settings, seed)."""
    return checkpoint_digest([rir], {"sample_rate": sample_rate, "settings": settings,
                                     "seed": seed})


def _load_stage(ckpt: Path | None, digest: str) -> dict[str, Any] | None:
    return load_checkpoint(ckpt, digest, written_for="RIR, settings or seed")


def _save_stage(ckpt: Path, state: dict[str, Any]) -> None:
    import io as _io

    from diffdsp.io import atomic_write_bytes

    buf = _io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(ckpt, buf.getvalue())


def _render_full(fdn: FDN, predelay: int, length: int) -> Tensor:
    """Exact time-domain RIR of the fitted model: ``predelay`` zeros, then the FDN response."""
    n = max(1, length - predelay)
    h = fdn.render_time(n)
    return torch.nn.functional.pad(h, (predelay, 0))[:length]


def fit_rir(
    rir: Tensor,
    sample_rate: int,
    *,
    n_lines: int = 8,
    steps: int = 200,
    colourless_steps: int = 200,
    calibration_passes: int = 6,
    time_budget_s: float | None = 60.0,
    seed: int = 0,
    progress: Progress | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: bool = False,
) -> ReverbFit:
    """Fit an FDN to a measured RIR (see the module docstring for the stages).

    Args:
        rir: mono impulse response ``(time,)``.
        sample_rate: Hz (8 kHz to 192 kHz).
        n_lines: number of delay lines N.
        steps: Adam steps of the decay-and-level stage.
        colourless_steps: Adam steps of the colourless stage (0 skips it).
        calibration_passes: T30 calibration passes after the gradient stage.
        time_budget_s: wall-time budget for the whole fit (the stages share it).
        seed: random seed (delays, matrix, gains, frequency sampling).
        progress: ``progress(stage, step, total, loss)``.
        checkpoint_path: stage checkpoint (e.g. ``DIR/checkpoint.pt``); the optimiser state of
            the colourless and decay stages goes next to it (``checkpoint.colourless.pt``,
            ``checkpoint.decay.pt``), every ``checkpoint_every`` steps, at the end of a stage
            and on Ctrl-C.
        checkpoint_every: optimiser steps between checkpoints.
        resume: continue from ``checkpoint_path`` when it exists (it must have been written for
            the same RIR, settings and seed). Without a time budget a resumed fit ends with
            exactly the parameters of an uninterrupted one.

    Returns:
        :class:`ReverbFit`.

    Raises:
        InputError: bad input, or a checkpoint written for another fit.

    Examples:
        >>> h = synthetic_rir(16000, seconds=0.5, t60_s=0.3, seed=1)
        >>> r = fit_rir(h, 16000, steps=5, colourless_steps=5, calibration_passes=1, n_lines=4,
        ...             time_budget_s=10.0)
        >>> r.impulse_response.shape == h.shape
        True

    References:
        Dal Santo et al., DAFx 2023 (colourless), ICASSP 2025 (FLAMO); Prawda et al., DAFx 2019.
    """
    from diffdsp.optim import fit as optim_fit

    t_start = time.perf_counter()
    sample_rate = check_sample_rate(sample_rate)
    n_lines = check_int(n_lines, "n_lines", minimum=1, maximum=64)
    rir = _check_rir(rir, sample_rate)
    length = rir.shape[-1]
    ana = analyse_rir(rir, sample_rate)
    centers = ana.centers_hz
    t60_target = [max(0.06, v) for v in _fill_nan(ana.t60_s, 0.5)]
    h_target = rir.to(torch.float64)[ana.onset_samples:]
    t_len = h_target.shape[-1]

    # delays: 8-40 ms, but at most a quarter of the usable response
    hi_ms = min(40.0, 0.25 * t_len / sample_rate * 1000.0)
    lo_ms = min(8.0, 0.3 * hi_ms)
    nfft = 1 << math.ceil(math.log2(t_len + int(0.1 * sample_rate)))
    grid_centers = octave_centers_hz(sample_rate, lowest_hz=31.25)
    band_t60 = [t60_target[0] if c < centers[0] else
                t60_target[min(range(len(centers)), key=lambda i: abs(math.log2(c / centers[i])))]
                for c in grid_centers]
    fdn = build_fdn(sample_rate, n_lines=n_lines, delay_range_ms=(lo_ms, hi_ms), nfft=nfft,
                    alias_decay_db=30.0, dtype=torch.float32, seed=seed, attenuation="geq",
                    t60_s=band_t60, center_hz=grid_centers,
                    tone_gain_db=[0.0] * len(grid_centers), direct_gain=ana.direct_gain)

    def remaining() -> float | None:
        if time_budget_s is None:
            return None
        return max(1.0, time_budget_s - (time.perf_counter() - t_start))

    losses: dict[str, list[float]] = {}
    fit_info: dict[str, Any] = {}
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    digest = _fit_digest(rir, sample_rate, {
        "n_lines": n_lines, "steps": steps, "colourless_steps": colourless_steps,
        "calibration_passes": calibration_passes, "time_budget_s": time_budget_s,
        "checkpoint_every": checkpoint_every}, seed)
    stage = _load_stage(ckpt, digest) if resume else None
    colourless_done = stage is not None and stage["stage"] == "decay"
    if stage is not None:
        fdn.load_state_dict(stage["fdn"])
        losses.update(stage["losses"])
        fit_info.update(stage["fit_info"])
    elif ckpt is not None:
        _save_stage(ckpt, {"digest": digest, "stage": "colourless", "fdn": fdn.state_dict(),
                           "losses": {}, "fit_info": {}})

    def stage_file(name: str) -> Path | None:
        return None if ckpt is None else ckpt.with_name(f"{ckpt.stem}.{name}{ckpt.suffix}")

    # ---- stage 1: colourless
    if colourless_steps > 0 and not colourless_done:
        budget = None if time_budget_s is None else 0.15 * time_budget_s
        info = optimise_colourless(fdn, steps=colourless_steps, seed=seed, time_budget_s=budget,
                                   progress=progress, checkpoint_path=stage_file("colourless"),
                                   checkpoint_every=checkpoint_every, resume=resume)
        losses["colourless"] = info.pop("losses")
        fit_info["colourless"] = info
    if ckpt is not None and not colourless_done:
        _save_stage(ckpt, {"digest": digest, "stage": "decay", "fdn": fdn.state_dict(),
                           "losses": losses, "fit_info": fit_info})

    # ---- stage 2: per-band decay and level on the octave-band EDCs
    edc_t, valid = band_edc_db(h_target, sample_rate, centers, denoise=True)
    masks = _band_masks(nfft, sample_rate, centers, dtype=torch.float32)
    idx = torch.arange(t_len)
    weight = (idx.unsqueeze(0) < valid.unsqueeze(-1)).to(torch.float32)
    weight = weight / weight.sum(-1, keepdim=True)
    edc_t32 = edc_t.to(torch.float32)
    # initial tone: match the per-band level of the reverberant part
    with torch.no_grad():
        h0 = fdn.impulse_response(method="freq", reverberant_only=True)[:t_len]
        e0, _ = band_edc_db(h0.to(torch.float64), sample_rate, centers, denoise=False)
        delta = (edc_t[:, int(0.005 * sample_rate)] - e0[:, int(0.005 * sample_rate)])
        tone_init = [float(delta[min(range(len(centers)),
                                     key=lambda i: abs(math.log2(c / centers[i])))])
                     for c in grid_centers]
        assert fdn.tone is not None
        fdn.tone.raw_gain.copy_(torch.tensor(tone_init, dtype=torch.float32).reshape(1, -1))
    for p in fdn.parameters():
        p.requires_grad_(False)
    assert fdn.attenuation is not None and fdn.tone is not None
    train = [fdn.attenuation.raw_t60, fdn.tone.raw_gain]
    for t_param in train:
        t_param.requires_grad_(True)

    def fdn_edc_db() -> Tensor:
        spec = fdn.transfer()
        bands = torch.fft.irfft(spec.unsqueeze(0) * masks, n=nfft)[:, :t_len]
        bands = bands * fdn.grid.envelope[:t_len]
        e = bands * bands
        # integrate only up to the target's valid length in each band
        e = e * (idx.unsqueeze(0) < valid.unsqueeze(-1)).to(e.dtype)
        edc = torch.flip(torch.cumsum(torch.flip(e, [-1]), -1), [-1])
        return 10.0 * torch.log10(edc.clamp_min(1e-30))

    def edc_loss() -> Tensor:
        return ((fdn_edc_db() - edc_t32).pow(2) * weight).sum(-1).mean()

    cb = None
    if progress is not None:
        def cb(step: int, loss: float) -> None:
            progress("decay", step, steps, loss)
    res = optim_fit(train, edc_loss, steps=steps, lr=0.05, optimizer="adam", schedule="cosine",
                    time_budget_s=None if time_budget_s is None else
                    max(1.0, 0.35 * (remaining() or 1.0)), progress=cb,
                    checkpoint_path=stage_file("decay"), checkpoint_every=checkpoint_every,
                    resume=resume)
    losses["decay"] = list(res.losses)
    fit_info["decay"] = {"steps": res.steps, "seconds": res.seconds,
                         "final_loss": res.final_loss, "best_loss": res.best_loss}
    for p in fdn.parameters():
        p.requires_grad_(False)

    # ---- stage 3: T30 calibration against the same estimator as the target
    grid_map = [min(range(len(centers)), key=lambda i: abs(math.log2(c / centers[i])))
                for c in grid_centers]
    att = fdn.attenuation
    assert isinstance(att, GEQAttenuation)
    from diffdsp.params import inverse_positive_map

    tone = fdn.tone
    level_at = int(0.02 * sample_rate)
    calib: list[dict[str, Any]] = []
    t_pass = time.perf_counter()
    for it in range(max(0, calibration_passes) + 1):
        h_fit = fdn.render_time(t_len).to(torch.float64)
        e_fit, _ = band_edc_db(h_fit, sample_rate, centers, denoise=False, cut=valid)
        t_fit = t60_bands(h_fit, sample_rate, centers, methods=ana.t60_method)[0]
        ratio, dlev = [], []
        for k in range(len(centers)):
            tf, tt = t_fit[k], ana.t60_s[k]
            ratio.append(tt / tf if math.isfinite(tf) and math.isfinite(tt) and tf > 0 else 1.0)
            dlev.append(float(edc_t[k, level_at] - e_fit[k, level_at]))
        calib.append({"t60_ratio": ratio, "level_db": dlev})
        done = max(abs(r - 1.0) for r in ratio) < 0.003 and max(abs(v) for v in dlev) < 0.2
        now = time.perf_counter()
        pass_s = now - t_pass
        t_pass = now
        # stop when one more pass and the final rendering and measurement (about one more
        # pass) would not end inside the budget; at least one correction is always made
        over = time_budget_s is not None and it >= 1 and (
            now - t_start + 2.0 * pass_s > 0.95 * time_budget_s)
        if it == max(0, calibration_passes) or done or over:
            break
        with torch.no_grad():
            cur = att.t60_s.detach().to(torch.float64)
            new = torch.stack([cur[j] * min(2.0, max(0.5, ratio[grid_map[j]]))
                               for j in range(len(grid_centers))]).clamp(0.06, 30.0)
            att.raw_t60.copy_(inverse_positive_map(new, 0.05).to(att.raw_t60.dtype))
            g_now = tone.gain_db[0].detach().to(torch.float64)
            want = tone.response_at_centers_db(g_now) + torch.tensor(
                [dlev[grid_map[j]] for j in range(len(grid_centers))], dtype=torch.float64)
            tone.raw_gain.copy_(tone.command_gains(want).reshape(1, -1).to(tone.raw_gain.dtype))
    fit_info["calibration"] = calib
    fit_info["resumed"] = stage is not None

    fit_info["seconds"] = time.perf_counter() - t_start
    fit_info["steps"] = res.steps + fit_info.get("colourless", {}).get("steps", 0)
    fit_info["final_loss"] = float(edc_loss().detach())
    fit_info["converged"] = bool(res.converged)
    full = _render_full(fdn, ana.onset_samples, length).to(rir.dtype)
    mb = [c for c in METRIC_BANDS_HZ if c * math.sqrt(2.0) < sample_rate / 2.0]
    t_tgt, how = t60_bands(h_target, sample_rate, mb)
    t_fit = t60_bands(full.to(torch.float64)[ana.onset_samples:], sample_rate, mb,
                      methods=how)[0]
    err = [100.0 * (a - b) / b if math.isfinite(a) and math.isfinite(b) and b > 0
           else float("nan") for a, b in zip(t_fit, t_tgt, strict=True)]
    return ReverbFit(fdn=fdn, analysis=ana, impulse_response=full,
                     predelay_samples=ana.onset_samples, target_t60_s=[float(v) for v in t_tgt],
                     fitted_t60_s=[float(v) for v in t_fit], t60_error_pct=err, fit=fit_info,
                     bands_hz=mb, losses=losses)


# --------------------------------------------------------------------------- synthetic rooms


def synthetic_rir(sample_rate: int, *, seconds: float = 1.0, t60_s: float | Sequence[float] = 0.5,
                  seed: int = 0, room_m: tuple[float, float, float] | None = None,
                  image_order: int = 0) -> Tensor:
    """A synthetic RIR: optional image-source early part plus exponentially decaying noise.

    With ``image_order > 0`` the early reflections of a shoebox room (``room_m``, random source
    and receiver) are placed by the image-source method (Allen & Berkley 1979) with the wall
    reflection coefficient implied by Sabine's T60; the late part is Gaussian noise shaped per
    octave band to decay with ``t60_s`` (one value, or one per :data:`METRIC_BANDS_HZ` band).

    Examples:
        >>> synthetic_rir(8000, seconds=0.25).shape
        torch.Size([2000])
    """
    sample_rate = check_sample_rate(sample_rate)
    n = round(seconds * sample_rate)
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    t60 = torch.as_tensor(t60_s, dtype=torch.float64).flatten()
    noise = torch.randn(n, generator=gen, dtype=torch.float64)
    if t60.numel() == 1:
        late = noise * torch.pow(10.0, -3.0 * t / float(t60[0]))
    else:
        centers = list(METRIC_BANDS_HZ)[: t60.numel()]
        centers = [c for c in centers if c * math.sqrt(2) < sample_rate / 2]
        bands = _band_signals(noise, sample_rate, centers)
        env = torch.pow(10.0, -3.0 * t.unsqueeze(0) / t60[: len(centers)].unsqueeze(-1))
        late = (bands * env).sum(0)
    onset = int(0.003 * sample_rate)
    mean_t60 = float(t60.mean())
    early = torch.zeros(n, dtype=torch.float64)
    if image_order > 0:
        lx, ly, lz = room_m or (6.0, 4.5, 3.0)
        c = 343.0
        vol = lx * ly * lz
        surf = 2 * (lx * ly + lx * lz + ly * lz)
        alpha = min(0.99, 0.161 * vol / (surf * mean_t60))
        beta = math.sqrt(1 - alpha)
        u = torch.rand(6, generator=gen, dtype=torch.float64)
        src = (0.2 + 0.6 * u[0]) * lx, (0.2 + 0.6 * u[1]) * ly, (0.2 + 0.6 * u[2]) * lz
        rec = (0.2 + 0.6 * u[3]) * lx, (0.2 + 0.6 * u[4]) * ly, (0.2 + 0.6 * u[5]) * lz
        d0 = math.dist(src, rec)
        rng = range(-image_order, image_order + 1)
        for nx in rng:
            for ny in rng:
                for nz in rng:
                    for px in (0, 1):
                        for py in (0, 1):
                            for pz in (0, 1):
                                ix = (1 - 2 * px) * src[0] + 2 * nx * lx
                                iy = (1 - 2 * py) * src[1] + 2 * ny * ly
                                iz = (1 - 2 * pz) * src[2] + 2 * nz * lz
                                dist = math.dist((ix, iy, iz), rec)
                                refl = (abs(2 * nx - px) + abs(2 * ny - py) + abs(2 * nz - pz))
                                k = onset + round((dist - d0) / c * sample_rate)
                                if 0 <= k < n:
                                    early[k] += beta**refl * d0 / max(dist, 1e-3)
        early[onset] = 1.0
    else:
        early[onset] = 1.0
    # late part starts after ~5 ms with a level below the direct sound
    ramp = torch.clamp((t - 0.005) / 0.01, 0.0, 1.0)
    late = late * ramp
    # late energy three times the early (direct + image sources) energy: DRR about -5 dB
    late = late / late.pow(2).sum().sqrt() * early.pow(2).sum().sqrt() * math.sqrt(3.0)
    h = early + late
    return (0.5 * h / h.abs().max()).to(torch.float32)


# --------------------------------------------------------------------------- files


def _load_fdn(fdn_json: str | Path) -> tuple[FDN, dict[str, Any]]:
    import json

    p = Path(fdn_json)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not a readable FDN JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("type") != "diffdsp.lti.FDN":
        raise InputError(f"{p}: not an FDN description (expected type 'diffdsp.lti.FDN')")
    return FDN.from_dict(data), data


def fit(
    rir_path: str | Path,
    out_dir: str | Path,
    *,
    n_lines: int = 8,
    steps: int = 200,
    time_budget_s: float | None = 60.0,
    channel: int | None = None,
    colourless_steps: int = 200,
    calibration_passes: int = 6,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
    plots: bool = True,
    resume: bool = False,
    checkpoint_every: int = 50,
) -> TaskResult:
    """``diffdsp reverb fit RIR --out DIR``: fit an FDN to a RIR file and write the artefacts.

    The optimisation state is saved to ``out_dir/checkpoint.pt`` (stage) and
    ``out_dir/checkpoint.{colourless,decay}.pt`` (optimiser) every ``checkpoint_every`` steps, at
    the end of each stage and on Ctrl-C; ``resume=True`` continues from them (same RIR, options
    and seed; with ``time_budget_s=None`` the result equals an uninterrupted run's).

    Args:
        rir_path: RIR audio file (mono, or pick ``channel``).
        out_dir: output folder.
        n_lines: delay lines N (``--delays``).
        steps: steps of the decay stage.
        time_budget_s: wall-time budget of the fit, seconds.
        channel: channel of a multi-channel file to fit (refused without it).
        colourless_steps: steps of the colourless stage.
        calibration_passes: T30/level calibration passes.
        seed: random seed.
        device: ``cpu`` (the kernels are CPU; other devices are accepted for the CLI contract).
        progress: progress callback.
        plots: write the PNG plots and ``report.html``.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists (``--resume``).
        checkpoint_every: optimiser steps between checkpoints.

    Returns:
        :class:`~diffdsp.tasks._common.TaskResult`.

    Raises:
        InputError: unreadable, silent, too short or multi-channel (without ``channel``) input,
            or a checkpoint written for another fit.
    """
    from diffdsp.io import load_audio, save_audio
    from diffdsp.report import write_json
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import prepare_out_dir, resolve_device, seed_all

    resolve_device(device)
    out = prepare_out_dir(out_dir, [rir_path])
    seed_all(seed)
    audio, sr = load_audio(rir_path, max_seconds=MAX_RIR_S)
    if audio.shape[0] > 1:
        if channel is None:
            raise InputError(f"{rir_path}: the RIR has {audio.shape[0]} channels; fit one at a "
                             "time with --channel N")
    ch = 0 if channel is None else int(channel)
    if not 0 <= ch < audio.shape[0]:
        raise InputError(f"channel must be in [0, {audio.shape[0] - 1}], got {channel}")
    rir = audio[ch]
    res = fit_rir(rir, sr, n_lines=n_lines, steps=steps, colourless_steps=colourless_steps,
                  calibration_passes=calibration_passes, time_budget_s=time_budget_s, seed=seed,
                  progress=progress, checkpoint_path=out / "checkpoint.pt",
                  checkpoint_every=checkpoint_every, resume=resume)
    inputs = [rir_path]
    save_audio(out / "impulse_response.wav", res.impulse_response.unsqueeze(0), sr,
               protect=inputs)
    fdn_dict = {**res.fdn.to_dict(), "predelay_samples": res.predelay_samples,
                "length_samples": int(rir.shape[-1])}
    write_json(out / "fdn.json", fdn_dict, protect=inputs)
    files = ["impulse_response.wav", "fdn.json"]
    files += [f.name for f in (out / "checkpoint.pt", out / "checkpoint.colourless.pt",
                               out / "checkpoint.decay.pt") if f.is_file()]
    sections: list[Any] = []
    if plots:
        files += _plots(out, rir, res, sr)
        sections = [_section(res, files)]
        from diffdsp.report import write_report

        write_report(out, "diffdsp reverb fit", sections)
        files.append("report.html")
    before = {"t60_s_per_band": res.target_t60_s}
    after = {"t60_s_per_band": res.fitted_t60_s, "t60_error_pct_per_band": res.t60_error_pct,
             "t60_error_pct": res.mean_t60_error_pct}
    settings = {"n_lines": n_lines, "steps": steps, "colourless_steps": colourless_steps,
                "calibration_passes": calibration_passes, "time_budget_s": time_budget_s,
                "channel": ch, "device": "cpu", "device_requested": device,
                "bands_hz": res.bands_hz, "resume": resume,
                "resumed": bool(res.fit.get("resumed", False))}
    extra = {"analysis": res.analysis.to_dict(),
             "t60": {"bands_hz": res.bands_hz, "target_s": res.target_t60_s,
                     "fitted_s": res.fitted_t60_s, "error_pct": res.t60_error_pct}}
    result = write_result_json(out, task="reverb", inputs=inputs, settings=settings,
                               metrics_before=before, metrics_after=after, fit=res.fit,
                               seed=seed, files=files, extra=extra)
    return TaskResult(task="reverb", out_dir=out, result=result, files=result["files"],
                      sections=sections)


def _plots(out: Path, rir: Tensor, res: ReverbFit, sr: int) -> list[str]:
    from diffdsp.report.plots import line_plot, spectrograms

    files = []
    onset = res.predelay_samples
    tgt = rir.to(torch.float64)[onset:]
    fit_h = res.impulse_response.to(torch.float64)[onset:]
    bands = res.bands_hz
    e_t, _ = band_edc_db(tgt, sr, bands, denoise=True)
    e_f, _ = band_edc_db(fit_h, sr, bands, denoise=False)
    t = torch.arange(tgt.shape[-1], dtype=torch.float64) / sr
    curves: dict[str, Tensor] = {}
    styles: dict[str, str] = {}
    for k, c in enumerate(bands):
        name = f"{c:g} Hz"
        curves[f"target {name}"] = e_t[k] - e_t[k, 0]
        curves[f"FDN {name}"] = e_f[k] - e_t[k, 0]
        styles[f"FDN {name}"] = "--"
    line_plot(out / "edc_bands.png", t, curves, xlabel="time (s)", ylabel="EDC (dB)",
              title="octave-band energy decay curves", styles=styles)
    files.append("edc_bands.png")
    line_plot(out / "t60_bands.png", torch.tensor(bands),
              {"target": torch.tensor(res.target_t60_s), "FDN": torch.tensor(res.fitted_t60_s)},
              xlabel="octave band (Hz)", ylabel="T60 (s)", logx=True,
              title=f"T60 per band (mean |error| {res.mean_t60_error_pct:.1f} %)",
              styles={"target": "ko-", "FDN": "rs--"})
    files.append("t60_bands.png")
    spectrograms(out / "spectrogram.png", {"target": rir, "FDN": res.impulse_response}, sr,
                 title="spectrograms")
    files.append("spectrogram.png")
    n_fft = _nfft_for(rir.shape[-1])
    f = torch.fft.rfftfreq(n_fft, 1.0 / sr, dtype=torch.float64)[1:]
    def _smooth_db(x: Tensor) -> Tensor:
        p = torch.fft.rfft(x.to(torch.float64), n=n_fft).abs().pow(2)[1:]
        w = max(1, n_fft // 1024)
        p = torch.nn.functional.avg_pool1d(p.reshape(1, 1, -1), w, 1, w // 2,
                                           count_include_pad=False).reshape(-1)[: f.shape[0]]
        return 10 * torch.log10(p.clamp_min(1e-20))
    line_plot(out / "magnitude_response.png", f,
              {"target": _smooth_db(rir), "FDN": _smooth_db(res.impulse_response)},
              xlabel="frequency (Hz)", ylabel="magnitude (dB)", logx=True,
              title="magnitude response (smoothed)")
    files.append("magnitude_response.png")
    return files


def _section(res: ReverbFit, files: list[str]) -> Any:
    from diffdsp.report import Section

    caps = {"edc_bands.png": "octave-band EDCs", "t60_bands.png": "T60 per band",
            "spectrogram.png": "spectrograms", "magnitude_response.png": "magnitude response"}
    return Section(
        title="FDN reverb fit",
        text=(f"{res.fdn.n_lines}-line FDN fitted in {res.fit.get('seconds', 0):.1f} s; mean "
              f"absolute octave-band T60 error {res.mean_t60_error_pct:.2f} % "
              "(T30, 250 Hz-8 kHz)."),
        metrics={"before": {"t60_s": res.target_t60_s},
                 "after": {"t60_s": res.fitted_t60_s, "t60_error_pct": res.mean_t60_error_pct}},
        images=[(f, caps[f]) for f in caps if f in files],
        audio=[("fitted impulse response", "impulse_response.wav")],
        details={"delays": [int(v) for v in res.fdn.delays.samples.tolist()]},
    )


def render(fdn_json: str | Path, out_dir: str | Path, *, seconds: float | None = None,
           sample_rate: int | None = None, progress: Progress | None = None) -> TaskResult:
    """``diffdsp reverb render FDN_JSON --out DIR``: the impulse response of a saved FDN.

    Args:
        fdn_json: ``fdn.json`` written by :func:`fit`.
        out_dir: output folder.
        seconds: length (default: the fitted RIR's length).
        sample_rate: output rate (default the FDN's; other rates are resampled).
        progress: unused (the rendering is one pass); accepted for the CLI.

    Returns:
        :class:`~diffdsp.tasks._common.TaskResult` (``impulse_response.wav``, ``result.json``).
    """
    from diffdsp.io import resample, save_audio
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import prepare_out_dir

    out = prepare_out_dir(out_dir, [fdn_json])
    fdn, data = _load_fdn(fdn_json)
    sr = fdn.grid.sample_rate
    if seconds is not None and not (math.isfinite(seconds) and 0 < seconds <= 600):
        raise InputError(f"seconds must be in (0, 600], got {seconds!r}")
    if sample_rate is not None:
        check_sample_rate(sample_rate)
    n = (round(seconds * sr) if seconds is not None
         else int(data.get("length_samples", sr)))
    pre = int(data.get("predelay_samples", 0))
    h = _render_full(fdn, pre, n)
    out_sr = sr if sample_rate is None else int(sample_rate)
    if out_sr != sr:
        h = resample(h, sr, out_sr)
    save_audio(out / "impulse_response.wav", h.unsqueeze(0), out_sr, protect=[fdn_json])
    result = write_result_json(out, task="reverb-render", inputs=[fdn_json],
                               settings={"seconds": seconds, "sample_rate": out_sr},
                               files=["impulse_response.wav"])
    return TaskResult(task="reverb-render", out_dir=out, result=result, files=result["files"])


def apply(fdn_json: str | Path, input_path: str | Path, out_dir: str | Path, *,
          wet: float = 0.3, progress: Progress | None = None) -> TaskResult:
    """``diffdsp reverb apply FDN_JSON INPUT --out DIR [--wet 0..1]``: reverberate a file.

    The input runs through the FDN's exact time recursion (per channel), with its tail
    (``output.wav`` is as long as the input); ``wet`` mixes ``(1 - wet) * dry + wet * reverb``.
    ``progress`` is accepted for the CLI and unused.
    """
    from diffdsp.io import load_audio, resample, save_audio
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import prepare_out_dir

    if not (math.isfinite(wet) and 0.0 <= wet <= 1.0):
        raise InputError(f"wet must be in [0, 1], got {wet!r}")
    out = prepare_out_dir(out_dir, [fdn_json, input_path])
    fdn, data = _load_fdn(fdn_json)
    x, sr = load_audio(input_path, max_seconds=MAX_APPLY_S)
    fsr = fdn.grid.sample_rate
    xin = resample(x, sr, fsr) if sr != fsr else x
    pre = int(data.get("predelay_samples", 0))
    y = fdn.render_time(xin.shape[-1], x=xin.to(fdn.grid.dtype))
    y = torch.nn.functional.pad(y, (pre, 0))[..., : xin.shape[-1]]
    if sr != fsr:
        y = resample(y, fsr, sr)[..., : x.shape[-1]]
    mix = (1.0 - wet) * x + wet * y.to(x.dtype)
    peak = float(mix.abs().max())
    save_audio(out / "output.wav", mix, sr, protect=[fdn_json, input_path])
    result = write_result_json(out, task="reverb-apply", inputs=[fdn_json, input_path],
                               settings={"wet": wet}, metrics_after={"peak_abs": peak},
                               files=["output.wav"])
    return TaskResult(task="reverb-apply", out_dir=out, result=result, files=result["files"])


def demo(out_dir: Path, *, quick: bool, seed: int, progress: Progress | None) -> TaskResult:
    """``diffdsp demo`` section: fit an FDN to a built-in synthetic (image-source) RIR.

    Paths in the returned sections and files are relative to ``out_dir``.
    """
    from diffdsp.io import save_audio

    sr = 16000 if quick else 48000
    h = synthetic_rir(sr, seconds=0.5 if quick else 1.2, t60_s=[0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
                      seed=seed, image_order=1 if quick else 3)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = out / "synthetic_rir.wav"
    save_audio(src, h.unsqueeze(0), sr)
    res = fit(src, out, n_lines=4 if quick else 8, steps=10 if quick else 200,
              colourless_steps=20 if quick else 200, calibration_passes=2 if quick else 6,
              time_budget_s=15.0 if quick else 60.0, seed=seed, progress=progress)
    for s in res.sections:
        s.audio = [("synthetic (image-source) RIR", "synthetic_rir.wav"), *s.audio]
    res.files = sorted({*res.files, "synthetic_rir.wav"})
    return res
