"""``diffdsp landscape``: loss landscapes of the built-in recipes (which loss for which task?).

Each recipe is a renderer with named, ranged parameters, a target made by the same renderer at a
known "true" setting, and the candidate losses of its task. :func:`run` computes the landscape of
every selected loss over one or two of the parameters with :func:`diffdsp.diagnostics.landscape`
(batched rendering) and writes ``landscape.json``, ``landscape.png`` (heat maps, or curves for one
parameter, with the true value and the argmin marked), ``result.json`` and ``report.html``.

Recipes (``task``):

- ``reverb``: an N-line FDN (default N = 8, 16 kHz, 1 s) whose lines carry the tutorial's
  first-order low-pass attenuation, parameters ``t60_dc_s`` (T60 at DC) and ``cutoff_hz``
  (crossover of the low-pass), rendered exactly in the time domain. Losses: octave-band ``edc``,
  ``mss`` (multi-scale spectral: spectral convergence + log magnitude), ``power_convergence`` and
  ``esr``. With ``perturbations = K > 0`` each landscape is also computed under K random orthogonal
  feedback matrices (the tutorial: 25) and the median / quartiles over them are reported. The
  target is the FDN's own response at the truth (``"target": "fdn"``) or Gaussian noise shaped to
  its third-octave energy envelopes (``"target": "noise"``, the tutorial's second case), or, as
  in the authors' loss-surface code (``learn-recursive-filters``), the response of a *different*
  random FDN with the same attenuation at the truth (``"target": "other_fdn"``, ``"target_lines"``
  lines, default 32, delays 15-45 ms, scaled to the model's energy). ``"snr_db"`` (default
  none; the authors: 10) adds one fixed Gaussian noise realisation to the target and another to
  every prediction, at that SNR below the model's energy at the truth. ``"renderer"``:
  ``"time"`` (default, the exact recursion) or ``"frequency_sampling"`` (FLAMO's: the transfer
  function on the rfft grid of the IR length, then the inverse FFT, so a tail longer than the
  IR wraps around, as in FLAMO's renders).
  ``"attenuation": "shelf"`` replaces the low-pass by the tutorial's filter (FLAMO's
  ``parallelFirstOrderShelving``: a first-order shelf from the T60 at DC to a fixed
  ``"t60_nyquist_s"``, default 0.5 s, with the crossover ``cutoff_hz``). ``"preset":
  "tutorial"`` reproduces the tutorial's whole setup: 48 kHz, 4 s, N = 6 lines with its delays
  (997-2099 samples), +-1 input and +-1/N output gains, the shelf, T60 at DC 0.25-3.75 s
  (linear, truth 2 s) x crossover 1.6-16 kHz (log, truth 10 kHz), a shaped-noise target,
  third-octave EDC and MSS with FFT sizes 128-4096 (its keys can still be overridden).
- ``match``: DiffMoog Fig. 7: an FM operator (sine carrier ``freq_hz``, sine modulator at
  ``ratio`` times the carrier, modulation ``index``), or a band-limited ``square``/``saw``/``sine``
  (``"waveform"``); losses ``mss`` (DDSP multi-scale), ``mel``, ``wasserstein_time``,
  ``wasserstein_freq``, ``mse``, and ``match`` (``diffdsp match``'s own
  :func:`~diffdsp.tasks.match.matching_loss`) with its pitch term ``log_wasserstein``
  (:func:`~diffdsp.losses.pitch.log_spectral_wasserstein`).
- ``style``: a compressor (``threshold_db``, ``ratio``) on built-in speech; losses ``style``
  (the style task's :class:`~diffdsp.tasks.style.StyleLoss`), ``mss`` and ``mse``.
- ``align``: one second-order all-pass section (``cutoff_hz``, ``radius``) on built-in speech;
  losses ``mse``, ``interference`` (Bargum et al.), ``mss`` (phase-blind) and ``esr``.
- ``gain``: the convex sanity case: a gain on noise under ``l2`` (one minimum, at the truth).

``config`` (a dict, a JSON string or a path to a JSON file) overrides the defaults: ``losses``
(list or ``"all"``), ``points`` (per axis; default 200 for one parameter, 32 for two),
``grid`` (``{name: [low, high]}`` or explicit increasing values), ``truth``
(``{name: value}``), ``perturbations`` (reverb; default 25 for one parameter as in the
tutorial's "effect of the feedback matrix", 0 for two), ``batch_size`` and the recipe's own keys
(see :data:`RECIPE_KEYS`). Unknown keys are refused.

References:
    G. Dal Santo et al., "Building robust audio DDSP pipelines: the case of artificial
    reverberation" (tutorial, 2025), "Choosing the right loss"; N. Uzrad et al., "DiffMoog", 2024,
    Fig. 7; A. R. Bargum et al., DAFx 2023; C. J. Steinmetz et al., JAES 2022.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from diffdsp._validation import InputError, check_choice
from diffdsp.diagnostics import (
    LandscapeResult,
    LossFn,
    Perturb,
    Render,
    grid_values,
    landscapes,
)
from diffdsp.params import ParamRange
from diffdsp.tasks._common import Progress, TaskResult, prepare_out_dir, seed_all

__all__ = ["COMMON_KEYS", "RECIPE_KEYS", "TASKS", "Recipe", "build_recipe", "compute_landscapes",
           "demo", "parse_config", "run"]

TASKS = ("reverb", "match", "style", "align", "gain")

#: Config keys every recipe understands.
COMMON_KEYS = ("losses", "points", "grid", "truth", "batch_size", "perturbations")
#: Extra config keys per recipe.
RECIPE_KEYS: dict[str, tuple[str, ...]] = {
    "reverb": ("sample_rate", "seconds", "n_lines", "target", "bands", "preset", "attenuation",
               "t60_nyquist_s", "target_lines", "snr_db", "renderer"),
    "match": ("sample_rate", "seconds", "waveform", "ratio"),
    "style": ("sample_rate", "seconds"),
    "align": ("sample_rate", "seconds"),
    "gain": ("n_samples",),
}


@dataclass
class Recipe:
    """A renderer, its parameters, a target at a known truth, and candidate losses.

    Attributes:
        task: recipe name.
        title: one line for the report.
        ranges: ``name -> ParamRange`` of every parameter of ``render``.
        truth: the true setting (physical units) the target was rendered with.
        render: ``render(params) -> (batch, ..., time)``.
        target: ``(..., time)``.
        losses: ``name -> loss(pred, target) -> (batch,)``.
        default_losses: losses computed when the config does not choose.
        default_params: the parameter pair of the reference figure.
        perturb: random perturbation of other parts of the model (run ``k``), or None.
        perturb_label: what ``perturb`` changes (for the report).
        sample_rate: of the rendered audio (Hz).
        settings: what the recipe was built with.
    """

    task: str
    title: str
    ranges: dict[str, ParamRange]
    truth: dict[str, float]
    render: Render
    target: Tensor
    losses: dict[str, LossFn]
    default_losses: list[str]
    default_params: tuple[str, ...]
    sample_rate: int
    perturb: Perturb | None = None
    perturb_label: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- config


def parse_config(config: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    """A config as a dict: ``None``, a dict, a JSON object string or a JSON file path.

    Examples:
        >>> parse_config('{"points": 8}')
        {'points': 8}
    """
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    text = str(config).strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise InputError(f"--config must be a JSON object or a JSON file, got {text!r} "
                             "(no such file)")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read the config ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"config is not valid JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}") from None
    if not isinstance(data, dict):
        raise InputError(f"config must be a JSON object, got {type(data).__name__}")
    return data


def _num(cfg: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= float(v) <= high:
        raise InputError(f"config {key!r} must be a number in [{low}, {high}], got {v!r}")
    return float(v)


def _int(cfg: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise InputError(f"config {key!r} must be an integer in [{low}, {high}], got {v!r}")
    return int(v)


def _truth(cfg: Mapping[str, Any], ranges: Mapping[str, ParamRange],
           defaults: Mapping[str, float]) -> dict[str, float]:
    given = cfg.get("truth", {})
    if not isinstance(given, Mapping):
        raise InputError(f"config 'truth' must be an object name -> value, got {given!r}")
    truth = dict(defaults)
    for name, v in given.items():
        if name not in ranges:
            raise InputError(f"config 'truth': unknown parameter {name!r}; known: "
                             f"{sorted(ranges)}")
        r = ranges[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not r.contains(float(v)):
            raise InputError(f"config 'truth': {name} must be in [{r.min}, {r.max}], got {v!r}")
        truth[name] = float(v)
    return truth


def _per_item_mean(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).mean(-1)


# --------------------------------------------------------------------------- recipes


class _FixedTargetEDC:
    """:func:`diffdsp.losses.acoustic.edc_loss` (``reduction="none"``) with the target's band EDCs
    computed once: a landscape scores thousands of renders against one fixed target, and the
    band split of the target is half the cost. Any other target falls back to ``edc_loss``
    (the test suite checks both give the same values)."""

    def __init__(self, target: Tensor, *, sample_rate: int, bands: str,
                 floor_db: float = -140.0) -> None:
        self.sample_rate, self.bands, self.floor_db = sample_rate, bands, floor_db
        self.target = target.detach()
        self.eps = 10.0 ** (floor_db / 10.0)
        self._ey: dict[tuple[torch.dtype, str], Tensor] = {}
        self._ey_rev: dict[tuple[torch.dtype, str], Tensor] = {}

    def _edc_db(self, x: Tensor) -> Tensor:
        from diffdsp._numerics import power_to_db
        from diffdsp.functional.analysis import octave_filterbank, schroeder_edc

        split = x.unsqueeze(-2) if self.bands == "broadband" else octave_filterbank(
            x, sample_rate=self.sample_rate, bands=self.bands)
        return power_to_db(schroeder_edc(split), self.eps)

    def _edc_db_reversed_inplace(self, x: Tensor) -> Tensor:
        """The band EDCs in dB, time-reversed, computed with in-place ops (no autograd): the
        same operations as :meth:`_edc_db` (same band filters, FFT length, normalisation and
        floor) in an order that needs fewer full-size buffers; the loss sums over time, so
        the reversed order does not change it."""
        from diffdsp._numerics import EPS_POWER
        from diffdsp.functional.analysis import _band_mags, band_center_frequencies_hz

        n = x.shape[-1]
        if self.bands == "broadband":
            y = x.unsqueeze(-2).flip(-1)
        else:
            b = 1 if self.bands == "octave" else 3
            centers = tuple(float(c) for c in band_center_frequencies_hz(
                self.bands, sample_rate=self.sample_rate))
            n_fft = 1 << math.ceil(math.log2(max(2, 2 * n)))
            mags = _band_mags(self.sample_rate, n_fft, centers, b, 3, x.dtype, str(x.device))
            spec = torch.fft.rfft(x, n=n_fft).unsqueeze(-2) * mags
            y = torch.fft.irfft(spec, n=n_fft)[..., :n].flip(-1)
            del spec
        y.square_()
        e = torch.cumsum(y, -1)  # reversed Schroeder integral: e[..., -1] is E(0)
        del y
        e.div_(e[..., -1:].clamp_min(EPS_POWER)).clamp_min_(self.eps).log10_().mul_(10.0)
        return e

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        from diffdsp._numerics import safe_divide
        from diffdsp.losses.acoustic import edc_loss

        t0 = target.reshape(-1, target.shape[-1])
        same = t0.shape[-1] == self.target.shape[-1] and bool(
            (t0 == self.target.to(t0.device, t0.dtype)).all())
        if not same or pred.shape[:-1] != target.shape[:-1]:
            return edc_loss(pred, target, sample_rate=self.sample_rate, bands=self.bands,
                            floor_db=self.floor_db, reduction="none")
        key = (pred.dtype, str(pred.device))
        if key not in self._ey:
            self._ey[key] = self._edc_db(self.target.to(pred.device, pred.dtype))
        ey = self._ey[key]
        if pred.requires_grad and torch.is_grad_enabled():
            ex = self._edc_db(pred)
            per_band = safe_divide((ex - ey).square().sum(-1), ey.square().sum(-1))
            return per_band.mean(-1)
        # no gradient needed (landscapes): in place, on the time-reversed curves
        if key not in self._ey_rev:
            self._ey_rev[key] = ey.flip(-1).contiguous()
        err = self._edc_db_reversed_inplace(pred.detach())
        err.sub_(self._ey_rev[key]).square_()
        per_band = safe_divide(err.sum(-1), ey.square().sum(-1))
        return per_band.mean(-1)


#: The tutorial's FDN (Dal Santo et al., "Learning recursive attenuation filters", code of the
#: tutorial's loss-profile experiments): N = 6 delay lines at 48 kHz.
TUTORIAL_DELAYS = (997, 1153, 1327, 1559, 1801, 2099)


def _reverb_attenuation_sos(kind: str, m: Tensor, sr: int, t60: Tensor, fc: Tensor,
                            t60_nyquist: float) -> Tensor:
    """Per-line first-order attenuation filters ``(b, N, 6)`` (scipy SOS, a0 = 1).

    ``lowpass``: ``g (1 - p) / (1 - p z^-1)``, ``p = exp(-2 pi fc / fs)``: T60 at DC is ``t60``,
    and the gain falls to ``g (1 - p) / (1 + p)`` at Nyquist (the T60 there shrinks with the
    cutoff). ``shelf`` (the tutorial's, FLAMO's ``parallelFirstOrderShelving``): a bilinear
    first-order shelf from the DC gain (T60 ``t60``) to the Nyquist gain (T60 ``t60_nyquist``)
    with crossover ``fc``: ``g_N (t sqrt(k) + 1 + (t sqrt(k) - 1) z^-1) / (t / sqrt(k) + 1 +
    (t / sqrt(k) - 1) z^-1)``, ``t = tan(pi fc / fs)``, ``k = g_DC / g_N``.
    """
    g = torch.pow(10.0, -3.0 * m / (sr * t60[:, None]))  # (b, N) gain at DC
    z = torch.zeros_like(g)
    one = torch.ones_like(g)
    if kind == "lowpass":
        pole = torch.exp(-2.0 * math.pi * fc / sr)[:, None].expand_as(g)
        return torch.stack([g * (1 - pole), z, z, one, -pole, z], -1)
    g_n = torch.pow(10.0, -3.0 * m / (sr * t60_nyquist)).expand_as(g)
    sk = torch.sqrt(g / g_n)
    t = torch.tan(math.pi * fc / sr)[:, None].expand_as(g)
    a0 = t / sk + 1.0
    return torch.stack([g_n * (t * sk + 1.0) / a0, g_n * (t * sk - 1.0) / a0, z, one,
                        (t / sk - 1.0) / a0, z], -1)


def _reverb(cfg: Mapping[str, Any], seed: int) -> Recipe:
    from diffdsp.functional.analysis import band_center_frequencies_hz, octave_filterbank
    from diffdsp.functional.fdn import fdn_time, fdn_transfer
    from diffdsp.functional.freq import rfft_freqs, sosfreqz
    from diffdsp.losses.acoustic import power_convergence_loss
    from diffdsp.losses.spectral import multi_resolution_stft_loss
    from diffdsp.losses.time import esr_loss
    from diffdsp.lti.core import FrequencyGrid
    from diffdsp.lti.fdn import build_fdn
    from diffdsp.lti.systems import Matrix

    preset = check_choice(cfg.get("preset", "default"), "config 'preset'", ("default", "tutorial"))
    tut = preset == "tutorial"
    sr = _int(cfg, "sample_rate", 48000 if tut else 16000, 8000, 96000)
    seconds = _num(cfg, "seconds", 4.0 if tut else 1.0, 0.1, 10.0)
    n_lines = _int(cfg, "n_lines", len(TUTORIAL_DELAYS) if tut else 8, 2, 32)
    bands = check_choice(cfg.get("bands", "third_octave" if tut else "octave"), "config 'bands'",
                         ("octave", "third_octave", "broadband"))
    target_kind = check_choice(cfg.get("target", "noise" if tut else "fdn"), "config 'target'",
                               ("fdn", "noise", "other_fdn"))
    target_lines = _int(cfg, "target_lines", 32, 2, 64)
    snr_db = None if cfg.get("snr_db") is None else _num(cfg, "snr_db", 10.0, -20.0, 80.0)
    renderer = check_choice(cfg.get("renderer", "time"), "config 'renderer'",
                            ("time", "frequency_sampling"))
    att = check_choice(cfg.get("attenuation", "shelf" if tut else "lowpass"),
                       "config 'attenuation'", ("lowpass", "shelf"))
    t60_nyq = _num(cfg, "t60_nyquist_s", 0.5, 0.05, 10.0)
    n = round(seconds * sr)
    if tut:  # the tutorial's ranges: RT at DC linear, crossover log (1.6 - 16 kHz at 48 kHz)
        ranges = {
            "t60_dc_s": ParamRange(0.25, 3.75, "linear", unit="s", default=2.0,
                                   description="T60 at DC of the first-order attenuation"),
            "cutoff_hz": ParamRange(1600.0, min(16000.0, 0.45 * sr), "log", unit="Hz",
                                    default=min(10000.0, 0.3 * sr),
                                    description="crossover of the first-order attenuation"),
        }
    else:
        ranges = {
            "t60_dc_s": ParamRange(0.1, 4.0, "log", unit="s", default=1.0,
                                   description="T60 at DC of the first-order attenuation"),
            "cutoff_hz": ParamRange(100.0, 0.45 * sr, "log", unit="Hz", default=2000.0,
                                    description="crossover (cutoff) of the first-order "
                                                "attenuation"),
        }
    truth = _truth(cfg, ranges, {k: r.default_value for k, r in ranges.items()})
    fdn = build_fdn(sr, n_lines=n_lines, nfft=256, attenuation="lowpass",
                    t60_s=truth["t60_dc_s"], cutoff_hz=truth["cutoff_hz"], seed=seed)
    if tut and n_lines == len(TUTORIAL_DELAYS) and sr == 48000:
        delays = list(TUTORIAL_DELAYS)
        alt = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(n_lines)],
                           dtype=torch.float64)
        b_in, c_out = alt, alt / n_lines  # the tutorial's +-1 input and +-1/N output gains
    else:
        delays = [int(v) for v in fdn.delays.samples.tolist()]
        b_in = fdn.input_gains.detach().double()
        c_out = fdn.output_gains.detach().double()
    base_matrix = fdn.matrix.static_matrix().detach().double()

    def render_fdn(p: dict[str, Tensor], dl: list[int], mat: Tensor, b: Tensor,
                   c: Tensor) -> Tensor:
        t60 = p["t60_dc_s"].double()
        dev = t60.device
        mm = torch.tensor(dl, dtype=torch.float64, device=dev)
        sos = _reverb_attenuation_sos(att, mm, sr, t60, p["cutoff_hz"].double(), t60_nyq)
        if renderer == "frequency_sampling":
            # FLAMO's renderer: H = c^T (I - diag(g) A)^-1 diag(g) b sampled on the n-point
            # rfft grid, then the inverse FFT (the tail past n samples wraps around)
            w = rfft_freqs(n).to(dev)
            _, h_att = sosfreqz(sos.unsqueeze(-2), w)  # (b, N, M)
            line = h_att.transpose(-1, -2) * torch.exp(-1j * w[:, None] * mm)
            h = fdn_transfer(line, feedback_matrix=mat.to(dev), input_gains=b.to(dev),
                             output_gains=c.to(dev))
            return torch.fft.irfft(h, n=n)
        x = torch.zeros(n, dtype=torch.float64, device=dev)
        x[0] = 1.0
        return fdn_time(x, delay_samples=dl, feedback_matrix=mat.to(dev), input_gains=b.to(dev),
                        output_gains=c.to(dev), attenuation_sos=sos.unsqueeze(-2))

    # the authors' loss-surface runs add one fixed noise realisation to every prediction and
    # another to the target (SNR relative to the model's energy at the truth)
    pred_noise: Tensor | None = None

    def render(p: dict[str, Tensor]) -> Tensor:
        a = p.get("feedback_matrix")
        y = render_fdn(p, delays, base_matrix if a is None else a.double(), b_in, c_out)
        if pred_noise is not None:
            y = y + pred_noise.to(y.device)
        return y.to(p["t60_dc_s"].dtype)

    one = {k: torch.tensor([v]) for k, v in truth.items()}
    target = render(one)[0]
    energy = float(target.double().square().mean())
    if target_kind == "other_fdn":
        # the authors' loss-surface target (learn-recursive-filters, loss_surface_gpu.yml): a
        # *different* random FDN (its own co-prime delays in 15-45 ms, matrix and gains) with the
        # same attenuation filter at the truth, scaled to the model's energy
        other = build_fdn(sr, n_lines=target_lines, delay_range_ms=(15.0, 45.0), nfft=256,
                          attenuation="lowpass", t60_s=truth["t60_dc_s"],
                          cutoff_hz=truth["cutoff_hz"], seed=seed + 1001)
        h = render_fdn(one, [int(v) for v in other.delays.samples.tolist()],
                       other.matrix.static_matrix().detach().double(),
                       other.input_gains.detach().double(),
                       other.output_gains.detach().double())[0]
        target = (h * math.sqrt(energy / float(h.square().mean()))).to(target.dtype)
    if snr_db is not None:
        gen_n = torch.Generator().manual_seed(seed + 13)
        scale = math.sqrt(energy / 10.0 ** (snr_db / 10.0))
        target = target + (scale * torch.randn(n, generator=gen_n, dtype=torch.float64)).to(
            target.dtype)
        pred_noise = scale * torch.randn(n, generator=gen_n, dtype=torch.float64)
    if target_kind == "noise":
        # Gaussian noise shaped to the target's band energy envelopes (5 ms smoothing), in
        # third-octave bands from 20 Hz up to Nyquist, so no part of the spectrum is lost
        gen = torch.Generator().manual_seed(seed + 7)
        h = target.double()
        centres = band_center_frequencies_hz("third_octave", sample_rate=sr, fmin_hz=19.0,
                                             fmax_hz=sr / 2.0)
        bands_h = octave_filterbank(h, sample_rate=sr, bands="third_octave",
                                    center_frequencies_hz=centres)  # (K, n)
        win = max(1, int(0.005 * sr))
        kernel = torch.ones(1, 1, win, dtype=torch.float64) / win
        env = torch.nn.functional.conv1d(bands_h.square()[:, None], kernel,
                                         padding=win // 2)[:, 0, :n].sqrt()
        noise = octave_filterbank(torch.randn(n, generator=gen, dtype=torch.float64),
                                  sample_rate=sr, bands="third_octave",
                                  center_frequencies_hz=centres)
        noise = noise / noise.square().mean(-1, keepdim=True).sqrt().clamp_min(1e-12)
        target = (env * noise).sum(0).to(target.dtype)

    # MSS: the tutorial's FLAMO mss_loss (Yamamoto form: spectral convergence + log magnitude,
    # Hann, 75 % overlap) with its FFT sizes 128 - 4096 at 48 kHz; 256 - 2048 at 16 kHz
    mss_ffts = (128, 256, 512, 1024, 2048, 4096) if tut else (256, 512, 1024, 2048)
    # FLAMO takes the log of the raw magnitude (no floor): a floor far below any tail level
    mss_eps = 1e-30 if tut else 1e-8

    losses: dict[str, LossFn] = {
        "edc": _FixedTargetEDC(target, sample_rate=sr, bands=bands),
        "mss": lambda a, b: cast(Tensor, multi_resolution_stft_loss(
            a, b, fft_sizes=mss_ffts, hop_sizes=[f // 4 for f in mss_ffts], win_lengths=mss_ffts,
            eps=mss_eps, reduction="none")),
        "power_convergence": lambda a, b: power_convergence_loss(a, b, reduction="none"),
        "esr": lambda a, b: esr_loss(a, b, reduction="none"),
    }
    small = FrequencyGrid(16, sr)

    def perturb(k: int, gen: torch.Generator) -> dict[str, Tensor]:
        s = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        return {"feedback_matrix": Matrix(small, n_lines, kind="orthogonal", seed=s)
                .static_matrix().detach().float()}

    return Recipe(
        task="reverb",
        title=(f"FDN (N={n_lines}) with first-order {'shelving' if att == 'shelf' else 'low-pass'}"
               f" attenuation, {sr} Hz, {seconds:g} s"
               + (" (tutorial setup)" if tut else "")),
        ranges=ranges, truth=truth, render=render, target=target, losses=losses,
        default_losses=["edc", "mss", "power_convergence", "esr"],
        default_params=("t60_dc_s", "cutoff_hz"), sample_rate=sr, perturb=perturb,
        perturb_label="random orthogonal feedback matrix",
        settings={"preset": preset, "sample_rate": sr, "seconds": seconds, "n_lines": n_lines,
                  "bands": bands, "target": target_kind, "attenuation": att,
                  "target_lines": target_lines if target_kind == "other_fdn" else None,
                  "snr_db": snr_db,
                  "t60_nyquist_s": t60_nyq if att == "shelf" else None,
                  "delay_samples": delays, "mss_fft_sizes": mss_ffts, "mss_eps": mss_eps,
                  "renderer": (
                      "time-domain recursion (diffdsp.functional.fdn.fdn_time)"
                      if renderer == "time" else
                      f"frequency sampling on {n // 2 + 1} rfft bins, inverse FFT of {n} "
                      "samples (FLAMO's; diffdsp.functional.fdn.fdn_transfer)")},
    )


def _match(cfg: Mapping[str, Any], seed: int) -> Recipe:
    from diffdsp.functional import oscillators as osc
    from diffdsp.losses.spectral import (
        MelSTFTLoss,
        MultiResolutionSTFTLoss,
        spectral_wasserstein_loss,
    )
    from diffdsp.losses.time import mse_loss

    sr = _int(cfg, "sample_rate", 16000, 8000, 96000)
    seconds = _num(cfg, "seconds", 0.25, 0.1, 5.0)
    waveform = check_choice(cfg.get("waveform", "fm"), "config 'waveform'",
                            ("fm", "sine", "square", "saw"))
    ratio = _num(cfg, "ratio", 1.0, 0.05, 16.0)
    n = round(seconds * sr)
    ranges: dict[str, ParamRange] = {
        "freq_hz": ParamRange(110.0, 880.0, "log", unit="Hz", default=330.0,
                              description="carrier / oscillator frequency"),
        "amplitude": ParamRange(0.1, 1.0, default=0.8, description="output amplitude"),
    }
    defaults = {"freq_hz": 330.0, "amplitude": 0.8}
    if waveform == "fm":
        ranges["index"] = ParamRange(0.0, 10.0, unit="rad", default=3.0,
                                     description="FM modulation index")
        defaults["index"] = 3.0
    truth = _truth(cfg, ranges, defaults)

    def render(p: dict[str, Tensor]) -> Tensor:
        f = p["freq_hz"]
        amp = p["amplitude"][:, None]
        if waveform == "fm":
            mod = osc.sine(f * ratio, sample_rate=sr, n_samples=n)
            y = osc.fm_operator(f, sample_rate=sr, n_samples=n, modulator=mod,
                                index=p["index"])
        elif waveform == "sine":
            y = osc.sine(f, sample_rate=sr, n_samples=n)
        elif waveform == "square":
            y = osc.square(f, sample_rate=sr, n_samples=n)
        else:
            y = osc.saw(f, sample_rate=sr, n_samples=n)
        return amp * y

    target = render({k: torch.tensor([v]) for k, v in truth.items()})[0]
    mss = MultiResolutionSTFTLoss.ddsp(reduction="none")
    mel = MelSTFTLoss(sr, fft_sizes=(1024,), hop_sizes=(256,), win_lengths=(1024,), n_mels=64,
                      reduction="none")
    losses: dict[str, LossFn] = {
        "mss": lambda a, b: mss(a, b),
        "mel": lambda a, b: mel(a, b),
        "wasserstein_time": lambda a, b: spectral_wasserstein_loss(
            a, b, n_fft=1024, hop_length=256, axis="time", reduction="none"),
        "wasserstein_freq": lambda a, b: spectral_wasserstein_loss(
            a, b, n_fft=1024, hop_length=256, axis="frequency", reduction="none"),
        "mse": lambda a, b: mse_loss(a, b, reduction="none"),
    }
    try:  # the match task's own loss and its pitch term, where this build has them
        from diffdsp.losses.pitch import log_spectral_wasserstein
        from diffdsp.tasks.match import matching_loss
    except ImportError:  # pragma: no cover - depends on the installed build
        pass
    else:
        losses["match"] = lambda a, b: matching_loss(a, b, sample_rate=sr, reduction="none")
        losses["log_wasserstein"] = lambda a, b: log_spectral_wasserstein(
            a, b, sample_rate=sr, reduction="none")
    params = ("freq_hz", "index") if waveform == "fm" else ("freq_hz", "amplitude")
    return Recipe(
        task="match", title=f"{waveform} oscillator ({sr} Hz, {seconds:g} s)"
        + (f", modulator ratio {ratio:g}" if waveform == "fm" else ""),
        ranges=ranges, truth=truth, render=render, target=target, losses=losses,
        default_losses=list(losses), default_params=params, sample_rate=sr,
        settings={"sample_rate": sr, "seconds": seconds, "waveform": waveform, "ratio": ratio},
    )


def _speech(sr: int, seconds: float) -> Tensor:
    from diffdsp import data
    from diffdsp.io import load_audio, resample

    x, sr0 = load_audio(data.path("speech_music/speech_cmu_arctic_a0007.flac"))
    x = resample(x.mean(0), sr0, sr)
    start = int(0.3 * sr)  # skip the leading silence
    x = x[start:start + round(seconds * sr)]
    return (x / x.abs().max().clamp_min(1e-9) * 0.5).to(torch.float32)


def _style(cfg: Mapping[str, Any], seed: int) -> Recipe:
    from diffdsp.effects.dynamics import Compressor
    from diffdsp.losses.spectral import MultiResolutionSTFTLoss
    from diffdsp.losses.time import mse_loss
    from diffdsp.tasks.style import StyleLoss

    sr = _int(cfg, "sample_rate", 22050, 8000, 96000)
    seconds = _num(cfg, "seconds", 1.5, 0.25, 10.0)
    x = _speech(sr, seconds)
    comp = Compressor(sr)
    ranges = {"threshold_db": comp.param_ranges["threshold_db"],
              "ratio": comp.param_ranges["ratio"]}
    truth = _truth(cfg, ranges, {"threshold_db": -25.0, "ratio": 4.0})

    def render(p: dict[str, Tensor]) -> Tensor:
        b = p["threshold_db"].shape[0]
        xb = x.to(p["threshold_db"].device).expand(b, 1, -1)
        return comp(xb, threshold_db=p["threshold_db"], ratio=p["ratio"])

    target = render({k: torch.tensor([v]) for k, v in truth.items()})[0]
    style = StyleLoss(target.unsqueeze(0).double(), sample_rate=sr)
    mr = MultiResolutionSTFTLoss.auraloss_default(reduction="none")
    losses: dict[str, LossFn] = {
        "style": lambda a, b: style(a.double()).to(a.dtype),
        "mss": lambda a, b: _per_item_mean(mr(a, b)),
        "mse": lambda a, b: _per_item_mean(mse_loss(a, b, reduction="none")),
    }
    return Recipe(
        task="style", title=f"compressor on speech ({sr} Hz, {seconds:g} s)", ranges=ranges,
        truth=truth, render=render, target=target, losses=losses, default_losses=list(losses),
        default_params=("threshold_db", "ratio"), sample_rate=sr,
        settings={"sample_rate": sr, "seconds": seconds, "input": "speech_cmu_arctic_a0007"},
    )


def _align(cfg: Mapping[str, Any], seed: int) -> Recipe:
    from diffdsp.functional.allpass import allpass2_sos
    from diffdsp.functional.iir import sosfilt
    from diffdsp.losses.phase import InterferenceLoss
    from diffdsp.losses.spectral import MultiResolutionSTFTLoss
    from diffdsp.losses.time import esr_loss, mse_loss

    sr = _int(cfg, "sample_rate", 22050, 8000, 96000)
    seconds = _num(cfg, "seconds", 1.0, 0.25, 10.0)
    x = _speech(sr, seconds)
    ranges = {
        "cutoff_hz": ParamRange(50.0, 0.45 * sr, "log", unit="Hz", default=1000.0,
                                description="pole frequency of the 2nd-order all-pass"),
        "radius": ParamRange(0.05, 0.98, default=0.7, description="pole radius"),
    }
    truth = _truth(cfg, ranges, {"cutoff_hz": 1000.0, "radius": 0.7})

    def render(p: dict[str, Tensor]) -> Tensor:
        sos = allpass2_sos(p["radius"], p["cutoff_hz"], sample_rate=sr)  # (b, 6)
        b = sos.shape[0]
        xb = x.to(sos.device, sos.dtype).expand(b, -1)
        return sosfilt(sos.unsqueeze(-2), xb)

    target = render({k: torch.tensor([v]) for k, v in truth.items()})[0]
    interference = InterferenceLoss(reduction="none")
    mr = MultiResolutionSTFTLoss.auraloss_default(reduction="none")
    losses: dict[str, LossFn] = {
        "mse": lambda a, b: mse_loss(a, b, reduction="none"),
        "interference": lambda a, b: interference(a, b),
        "mss": lambda a, b: mr(a, b),
        "esr": lambda a, b: esr_loss(a, b, reduction="none"),
    }
    return Recipe(
        task="align", title=f"2nd-order all-pass on speech ({sr} Hz, {seconds:g} s)",
        ranges=ranges, truth=truth, render=render, target=target, losses=losses,
        default_losses=list(losses), default_params=("cutoff_hz", "radius"), sample_rate=sr,
        settings={"sample_rate": sr, "seconds": seconds, "input": "speech_cmu_arctic_a0007"},
    )


def _gain(cfg: Mapping[str, Any], seed: int) -> Recipe:
    n = _int(cfg, "n_samples", 4096, 16, 1 << 20)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen)
    ranges = {"gain": ParamRange(0.0, 2.0, default=1.0, description="linear gain"),
              "offset": ParamRange(-1.0, 1.0, default=0.0, description="DC offset")}
    truth = _truth(cfg, ranges, {"gain": 0.5, "offset": 0.25})

    def render(p: dict[str, Tensor]) -> Tensor:
        return p["gain"][:, None] * x.to(p["gain"].device) + p["offset"][:, None]

    target = render({k: torch.tensor([v]) for k, v in truth.items()})[0]
    losses: dict[str, LossFn] = {"l2": lambda a, b: (a - b).square().mean(-1)}
    return Recipe(
        task="gain", title=f"gain and offset on white noise ({n} samples)", ranges=ranges,
        truth=truth, render=render, target=target, losses=losses, default_losses=["l2"],
        default_params=("gain", "offset"), sample_rate=0, settings={"n_samples": n},
    )


_BUILDERS: dict[str, Callable[[Mapping[str, Any], int], Recipe]] = {
    "reverb": _reverb, "match": _match, "style": _style, "align": _align, "gain": _gain,
}


def build_recipe(task: str, config: Mapping[str, Any] | str | Path | None = None, *,
                 seed: int = 0) -> Recipe:
    """Build a recipe (renderer, ranges, target at the truth, candidate losses).

    Args:
        task: one of :data:`TASKS`.
        config: overrides (see the module docstring); only the recipe's keys are read here.
        seed: seed of the recipe's random parts (FDN delays and matrix, noise).

    Returns:
        The :class:`Recipe`.

    Examples:
        >>> r = build_recipe("gain")
        >>> sorted(r.ranges), r.truth["gain"]
        (['gain', 'offset'], 0.5)
    """
    check_choice(task, "task", TASKS)
    cfg = parse_config(config)
    allowed = set(COMMON_KEYS) | set(RECIPE_KEYS[task])
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise InputError(f"unknown config key(s) {unknown} for task {task!r}; allowed: "
                         f"{sorted(allowed)}")
    return _BUILDERS[task](cfg, seed)


# --------------------------------------------------------------------------- run


def _parse_params(params: Sequence[str] | str | None, recipe: Recipe) -> list[str]:
    if params is None:
        names = list(recipe.default_params)
    elif isinstance(params, str):
        names = [p.strip() for p in params.split(",") if p.strip()]
    else:
        names = [str(p) for p in params]
    if not 1 <= len(names) <= 2:
        raise InputError(f"--params must name 1 or 2 parameters (a,b), got {names}")
    if len(set(names)) != len(names):
        raise InputError(f"--params names a parameter twice: {names}")
    for name in names:
        if name not in recipe.ranges:
            raise InputError(f"unknown parameter {name!r} for task {recipe.task!r}; known: "
                             f"{sorted(recipe.ranges)}")
    return names


def _grid(cfg: Mapping[str, Any], recipe: Recipe, names: list[str],
          points: int) -> dict[str, Tensor]:
    spec = cfg.get("grid", {})
    if not isinstance(spec, Mapping):
        raise InputError(f"config 'grid' must be an object name -> [low, high] or values, got "
                         f"{spec!r}")
    for name in spec:
        if name not in names:
            raise InputError(f"config 'grid' names {name!r}, which is not in --params {names}")
    out = {}
    for name in names:
        r = recipe.ranges[name]
        s = spec.get(name)
        if s is None:
            out[name] = grid_values(r, points, name=name)
        elif isinstance(s, list) and len(s) == 2 and points != 2:
            out[name] = grid_values(r, points, low=float(s[0]), high=float(s[1]), name=name)
        elif isinstance(s, list):
            out[name] = torch.tensor([float(v) for v in s], dtype=torch.float64)
        else:
            raise InputError(f"config 'grid' for {name!r} must be [low, high] or a list of "
                             f"values, got {s!r}")
    return out


def _select_losses(cfg: Mapping[str, Any], recipe: Recipe) -> list[str]:
    sel = cfg.get("losses", recipe.default_losses)
    if sel == "all":
        sel = list(recipe.losses)
    if isinstance(sel, str):
        sel = [sel]
    if not isinstance(sel, list) or not sel:
        raise InputError(f"config 'losses' must be a non-empty list or 'all', got {sel!r}")
    for name in sel:
        if name not in recipe.losses:
            raise InputError(f"unknown loss {name!r} for task {recipe.task!r}; known: "
                             f"{sorted(recipe.losses)}")
    return [str(s) for s in sel]


def compute_landscapes(
    recipe: Recipe,
    names: list[str],
    *,
    losses: Sequence[str],
    points: int,
    perturbations: int = 0,
    grid: Mapping[str, Tensor] | None = None,
    batch_size: int = 128,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> list[tuple[str, bool, LandscapeResult]]:
    """Landscapes of ``losses`` for a recipe, as ``(loss, perturbed, result)`` triples.

    The losses share each rendered batch (:func:`~diffdsp.diagnostics.landscapes`). With
    ``perturbations = K > 0`` every loss is computed twice: with the recipe's model as is, and
    as the median over K perturbation runs.

    Examples:
        >>> r = build_recipe("gain")
        >>> [(n, p, res.local_minima) for n, p, res in
        ...  compute_landscapes(r, ["gain"], losses=["l2"], points=9)]
        [('l2', False, 1)]
    """
    grid = dict(grid) if grid is not None else {n: grid_values(recipe.ranges[n], points, name=n)
                                                for n in names}
    truth = {n: recipe.truth[n] for n in names}
    reference = {n: v for n, v in recipe.truth.items() if n not in names}
    chosen = {n: recipe.losses[n] for n in losses}
    out: list[tuple[str, bool, LandscapeResult]] = []
    for perturbed in [False] + ([True] if perturbations > 0 else []):
        if perturbed and recipe.perturb is None:
            raise InputError(f"task {recipe.task!r} has no perturbation; set perturbations to 0")
        stage = f"{recipe.task} landscape" + (" (perturbed)" if perturbed else "")

        def cb(done: int, total: int, _stage: str = stage) -> None:
            if progress is not None:
                progress(_stage, done, total, float("nan"))

        res = landscapes(recipe.render, chosen, recipe.target.to(device), grid,
                         ranges=recipe.ranges, reference=reference, truth=truth,
                         perturb=recipe.perturb if perturbed else None,
                         repeats=perturbations if perturbed else 1, batch_size=batch_size,
                         seed=seed, device=device, progress=cb,
                         settings={"condition": "perturbed" if perturbed else "fixed"})
        out.extend((n, perturbed, res[n]) for n in losses)
    return out


def _label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _plot(path: Path, recipe: Recipe, results: list[tuple[str, bool, LandscapeResult]]) -> Path:
    from diffdsp.io import atomic_write_bytes

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise ImportError("plots need matplotlib: pip install 'diffdsp[cli]'") from exc
    import io

    loss_names = list(dict.fromkeys(n for n, _, _ in results))
    conds = sorted({p for _, p, _ in results})
    one_d = len(results[0][2].names) == 1
    if one_d:
        fig, axes = plt.subplots(1, len(conds), figsize=(6.2 * len(conds), 4.0), squeeze=False,
                                 layout="constrained")
        for ci, cond in enumerate(conds):
            ax = axes[0][ci]
            for name, pert, res in results:
                if pert != cond:
                    continue
                x = np.asarray(res.axes[0])
                y = res.loss.numpy()
                lo, hi = np.nanmin(y), np.nanmax(y)
                scale = (hi - lo) if hi > lo else 1.0
                line, = ax.plot(x, (y - lo) / scale, label=f"{name} ({res.local_minima} minima, "
                                f"{res.significant_minima} deep)")
                if res.q25 is not None and res.q75 is not None:
                    ax.fill_between(x, (res.q25.numpy() - lo) / scale,
                                    (res.q75.numpy() - lo) / scale, alpha=0.2,
                                    color=line.get_color())
                if res.argmin_index is not None:
                    i = res.argmin_index[0]
                    ax.plot([x[i]], [(y[i] - lo) / scale], "o", color=line.get_color())
            t = results[0][2].truth[results[0][2].names[0]]
            if t is not None:
                ax.axvline(t, color="k", ls="--", lw=1, label="truth")
            if results[0][2].scales[0] == "log":
                ax.set_xscale("log")
            ax.set_xlabel(_label(results[0][2].names[0], results[0][2].units[0]))
            ax.set_ylabel("loss (min-max normalised)")
            ax.set_title(("perturbed: " + recipe.perturb_label) if cond else "fixed model")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    else:
        mesh: Any = None
        fig, axes = plt.subplots(len(conds), len(loss_names),
                                 figsize=(3.6 * len(loss_names), 3.3 * len(conds)),
                                 squeeze=False, layout="constrained")
        for name, pert, res in results:
            ax = axes[conds.index(pert)][loss_names.index(name)]
            x, y = np.asarray(res.axes[1]), np.asarray(res.axes[0])
            v = res.loss.numpy()
            finite = v[np.isfinite(v)]
            lo = float(finite.min()) if finite.size else 0.0
            hi = float(finite.max()) if finite.size else 1.0
            span = hi - lo if hi > lo else 1.0
            # log of the normalised excess over the minimum: valleys stay visible
            vn = np.log10((v - lo) / span + 1e-3)
            mesh = ax.pcolormesh(x, y, vn, shading="nearest", cmap="viridis", vmin=-3.0,
                                 vmax=0.0)
            if res.scales[1] == "log":
                ax.set_xscale("log")
            if res.scales[0] == "log":
                ax.set_yscale("log")
            tx, ty = res.truth[res.names[1]], res.truth[res.names[0]]
            if tx is not None and ty is not None:
                ax.plot([tx], [ty], "wx", ms=10, mew=2, label="truth")
            if res.argmin is not None:
                ax.plot([res.argmin[res.names[1]]], [res.argmin[res.names[0]]], "o", mfc="none",
                        mec="r", ms=10, mew=2, label="argmin")
            kind = "perturbed (median)" if pert else "fixed"
            ax.set_title(f"{name}, {kind}\n{res.local_minima} local minima "
                         f"({res.significant_minima} deeper than {res.min_depth:.0%})", fontsize=9)
            ax.set_xlabel(_label(res.names[1], res.units[1]), fontsize=8)
            ax.set_ylabel(_label(res.names[0], res.units[0]), fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0][0].legend(fontsize=7, loc="lower left")
        if mesh is not None:
            fig.colorbar(mesh, ax=axes.ravel().tolist(), shrink=0.8,
                         label="log10((loss - min) / (max - min) + 1e-3)")
    fig.suptitle(f"loss landscapes: {recipe.title}", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _summary(results: list[tuple[str, bool, LandscapeResult]]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name, pert, res in results:
        key = f"{name}_perturbed" if pert else name
        metrics[f"{key}_local_minima"] = res.local_minima
        metrics[f"{key}_significant_minima"] = res.significant_minima
        if res.argmin_steps is not None:
            metrics[f"{key}_argmin_error_steps"] = max(abs(s) for s in res.argmin_steps.values())
    return metrics


def run(
    task: str,
    params: Sequence[str] | str | None,
    out_dir: Path | str,
    config: Mapping[str, Any] | str | Path | None = None,
    *,
    seed: int = 0,
    quick: bool = False,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> TaskResult:
    """Compute and write the loss landscapes of a built-in recipe.

    Args:
        task: ``reverb``, ``match``, ``style``, ``align`` or ``gain``.
        params: one or two parameter names (``"a,b"`` or a list); ``None``: the recipe's pair.
        out_dir: output folder (created if missing).
        config: overrides (dict, JSON string or JSON file path; see the module docstring).
        seed: seed of the recipe and of the perturbations.
        quick: coarse grids (12 points, 3 perturbations where the recipe has them) for tests and
            the quick demo.
        device: ``cpu``, ``cuda`` or ``auto``.
        progress: ``progress(stage, step, total, loss)``.

    Returns:
        A :class:`~diffdsp.tasks._common.TaskResult` (``landscape.json``, ``landscape.png``,
        ``result.json``, ``report.html``).

    Raises:
        InputError: unknown task, parameter, loss or config key; bad grid or truth values.
    """
    from diffdsp.report import Section, write_json, write_report
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import resolve_device

    check_choice(task, "task", TASKS)
    cfg = parse_config(config)
    config_inputs = [] if config is None or isinstance(config, Mapping) or \
        str(config).strip().startswith("{") else [Path(str(config)).expanduser()]
    dev = resolve_device(device)
    out = prepare_out_dir(out_dir, config_inputs)
    seed_all(seed)
    recipe = build_recipe(task, cfg, seed=seed)
    names = _parse_params(params, recipe)
    # defaults follow the tutorial: 1-D sweeps with 25 perturbations ("effect of the feedback
    # matrix", 200 steps), 2-D landscapes without (32 x 32 here; 100 x 100 in the tutorial)
    points = _int(cfg, "points", 12 if quick else (32 if len(names) == 2 else 200), 2, 1024)
    k_default = 0
    if recipe.perturb is not None:
        k_default = 3 if quick else (25 if len(names) == 1 else 0)
    perturbations = _int(cfg, "perturbations", k_default, 0, 1000)
    if perturbations and recipe.perturb is None:
        raise InputError(f"task {task!r} has no perturbation model; 'perturbations' must be 0")
    batch_size = _int(cfg, "batch_size", 128, 1, 65536)
    loss_names = _select_losses(cfg, recipe)
    grid = _grid(cfg, recipe, names, points)
    t0 = time.perf_counter()
    results = compute_landscapes(recipe, names, losses=loss_names, points=points,
                                 perturbations=perturbations, grid=grid, batch_size=batch_size,
                                 seed=seed, device=dev, progress=progress)
    seconds = time.perf_counter() - t0
    settings = {"task": task, "params": names, "points": {n: len(v) for n, v in grid.items()},
                "losses": loss_names, "perturbations": perturbations,
                "perturbation": recipe.perturb_label if perturbations else None,
                "truth": recipe.truth, "ranges": {n: r.to_dict() for n, r in recipe.ranges.items()},
                "batch_size": batch_size, "device": str(dev), "quick": quick,
                "recipe": recipe.settings}
    write_json(out / "landscape.json", {
        "task": task, "title": recipe.title, "settings": settings, "seconds": round(seconds, 3),
        "landscapes": [{**r.to_dict(), "loss_name": n, "perturbed": p} for n, p, r in results],
    })
    _plot(out / "landscape.png", recipe, results)
    files = ["landscape.json", "landscape.png", "report.html"]
    metrics = _summary(results)
    result = write_result_json(
        out, task="landscape", inputs=config_inputs, settings=settings, metrics_after=metrics,
        fit={"steps": 0, "seconds": round(seconds, 3), "final_loss": None, "converged": None},
        seed=seed, files=files,
    )
    lines = []
    for name, pert, res in results:
        where = "perturbed" if pert else "fixed"
        steps = (", ".join(f"{k} {v:+.2f}" for k, v in res.argmin_steps.items())
                 if res.argmin_steps else "n/a")
        lines.append(f"{name} ({where}): {res.local_minima} local minima "
                     f"({res.significant_minima} with a basin deeper than {res.min_depth:.0%} of "
                     f"the range), argmin - truth = "
                     f"{steps} grid steps")
    section = Section(
        title=f"Loss landscapes: {task} ({', '.join(names)})",
        text=f"{recipe.title}. Loss over a {' x '.join(str(len(v)) for v in grid.values())} grid "
        f"around the true setting {', '.join(f'{n}={recipe.truth[n]:g}' for n in names)}"
        + (f"; with {perturbations} perturbations ({recipe.perturb_label}), median shown"
           if perturbations else "")
        + ". " + "; ".join(lines) + ".",
        metrics=metrics,
        images=[("landscape.png", "loss landscapes (white x: truth, red o: argmin)")],
    )
    write_report(out, f"diffdsp landscape: {task}", [section])
    return TaskResult(task="landscape", out_dir=out, result=result, files=sorted({*files,
                      "result.json"}), sections=[section])


def demo(out_dir: Path, *, quick: bool, seed: int, progress: Progress | None) -> TaskResult:
    """The demo's landscapes: reverb (EDC vs MSS vs PC vs ESR, with matrix perturbations) and
    match (FM frequency x index, DiffMoog Fig. 7)."""
    out = prepare_out_dir(out_dir)
    cfg_r: dict[str, Any] = {"points": 6 if quick else 20, "perturbations": 0 if quick else 5,
                             "seconds": 0.3 if quick else 0.5}
    cfg_m: dict[str, Any] = {"points": 8 if quick else 32, "seconds": 0.1 if quick else 0.25}
    if quick:  # the spectrogram loss against the match task's own loss (when present)
        cfg_m["losses"] = [n for n in ("mss", "match") if n in build_recipe("match", cfg_m).losses]
    sections: list[Any] = []
    files: list[str] = []
    metrics: dict[str, Any] = {}
    for sub, task, cfg in (("reverb", "reverb", cfg_r), ("match", "match", cfg_m)):
        res = run(task, None, out / sub, cfg, seed=seed, quick=quick, progress=progress)
        for s in res.sections:
            s.images = [(f"{sub}/{p}", c) for p, c in s.images]
            s.audio = [(label, f"{sub}/{p}") for label, p in s.audio]
            sections.append(s)
        files.extend(f"{sub}/{f}" for f in res.files)
        metrics.update({f"{sub}_{k}": v for k, v in res.result["metrics"]["after"].items()})
    result = {"task": "landscape", "metrics": {"before": {}, "after": metrics},
              "files": sorted(files), "seed": seed, "quick": quick}
    return TaskResult(task="landscape", out_dir=out, result=result, files=sorted(files),
                      sections=sections)
