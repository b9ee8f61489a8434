"""Sound matching: find the parameters of a modular synth patch that reproduce a target sound.

Pipeline (``diffdsp match TARGET --patch NAME|PATCH_JSON --out DIR``):

1. load the target, mix to mono, resample to the analysis rate;
2. estimate its fundamental with YIN (median over confident frames), then check the octave
   (:func:`correct_octave`: the odd harmonics' share of the harmonic energy; YIN's "too high"
   errors on sounds with weak odd harmonics are halved here);
3. **multi-start over octaves**: the patch's note frequency starts at ``f0 * {1/2, 1, 2}`` (and at a
   learned matcher's prediction with ``--model``); every start runs a short fit in one batch and
   the best one per target is kept, the analysis octave unless another explains the target
   ``1 + octave_margin`` times better;
4. refine with Adam on the matching loss: the pitch-seeing
   :func:`~diffdsp.losses.pitch.log_spectral_wasserstein` plus a multi-resolution STFT loss whose
   weight is ramped in (a curriculum: pitch first, timbre after). The note frequency is a
   bounded parameter confined to +-50 cents around its start (no drift to another note) and
   takes its gradient from the pitch term only (pitch gating);
5. render ``match.wav`` at the input's rate and length, write ``patch.json`` (patch + fitted
   physical parameters), spectrogram / loss plots, ``report.html`` and ``result.json``.

:func:`fit_patch` is the batched core used by the CLI, the evals and the learned matcher's
initialiser; :func:`render` renders a patch JSON (``diffdsp render``).

References:
    Uzrad et al., "DiffMoog", 2024; Masuda & Saito, ISMIR 2021; Engel et al., ICLR 2020;
    Turian & Henry 2020 (spectral losses and pitch); de Cheveigné & Kawahara 2002 (YIN).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffdsp._validation import InputError, check_int
from diffdsp.io import PathLike
from diffdsp.params import ParamRange
from diffdsp.synth.modules import Note
from diffdsp.synth.patch import Patch
from diffdsp.tasks._common import (
    Progress,
    TaskResult,
    checkpoint_digest,
    load_checkpoint,
    prepare_out_dir,
    resolve_device,
    seed_all,
)

__all__ = [
    "MatchFit",
    "MatchSettings",
    "correct_octave",
    "estimate_f0",
    "fit_patch",
    "load_patch",
    "log_spectral_distance_db",
    "match",
    "matching_loss",
    "pitch_param",
    "render",
]

MAX_TARGET_S = 30.0  # longer target files are refused (docs/limits.md)

MRSTFT_FFT = (2048, 1024, 512, 256)


@dataclass
class MatchSettings:
    """Options of the matching optimisation.

    Attributes:
        steps: refinement steps (Adam).
        start_steps: steps of each multi-start trial.
        lr: learning rate on the parameter logits (refinement).
        f0_lr_scale: learning-rate factor of the note frequency's logit.
        start_lr: learning rate of the multi-start trials.
        octave_check_db: odd-harmonic energy threshold in dB of the octave check on the YIN
            estimate (:func:`correct_octave`), or ``None`` for YIN alone.
        octave_starts: multiples of the analysis pitch tried as starting pitch.
        pitch_window_cents: half-width of the window the note frequency is confined to around
            its start (a bounded parameter: ``start * 2 ** (±window / 1200)``), in the multi-start
            and in the refinement, or ``None`` for the patch's whole range. Without a YIN
            estimate (unvoiced target) the whole range is used.
        octave_margin: relative loss margin by which a start other than the analysis pitch
            (``octave_starts`` entry 1.0) must beat it to be kept: its loss times
            ``1 + octave_margin`` must be lower (a prior for the analysis: after a short
            trial, a ``subtractive`` target with nearly cancelled odd harmonics can score up
            to ~2x lower an octave too high, while the octave check rarely errs).
        pitch_weight: weight of the log-frequency spectral Wasserstein loss (octaves).
        spec_weight: final weight of the MR-STFT loss (log magnitude + spectral convergence).
        spec_ramp: fraction of the refinement over which the MR-STFT weight ramps from
            ``spec_weight_start`` to ``spec_weight``.
        spec_weight_start: MR-STFT weight at the start of the refinement.
        start_spec_weight: MR-STFT weight in the multi-start trials and in the choice between
            them.
        loss: ``"match"`` (the above) or ``"mrstft"`` (the naive baseline: MR-STFT only).
        init: ``"yin"`` (analysis-based pitch, defaults elsewhere), ``"default"`` (every
            parameter at its default) or ``"random"`` (uniform random parameters).
        analysis_rate: sample rate in Hz the optimisation runs at.
        max_seconds: the target is cut to this length.
    """

    steps: int = 250
    start_steps: int = 60
    lr: float = 0.05
    f0_lr_scale: float = 1.0
    start_lr: float = 0.1
    octave_check_db: float | None = -33.0
    octave_starts: tuple[float, ...] = (0.5, 1.0, 2.0)
    pitch_window_cents: float | None = 50.0
    octave_margin: float = 3.0
    pitch_weight: float = 10.0
    spec_weight: float = 1.0
    spec_weight_start: float = 0.1
    spec_ramp: float = 0.4
    start_spec_weight: float = 1.0
    loss: str = "match"
    init: str = "yin"
    analysis_rate: int = 22050
    max_seconds: float = 4.0


@dataclass
class MatchFit:
    """Result of :func:`fit_patch` for a batch of targets.

    Attributes:
        u: fitted normalised parameters ``(batch, n_params)``.
        params: fitted physical parameters ``{"module.param": (batch,)}``.
        loss: final matching loss per target ``(batch,)``.
        f0_init_hz: the YIN estimate per target ``(batch,)`` (NaN when unvoiced / not used).
        f0_analysis_hz: the YIN estimate after the octave check ``(batch,)``.
        start_f0_hz: the starting pitch kept by the multi-start ``(batch,)``.
        start_losses: loss of every multi-start trial ``(batch, n_starts)`` (the choice).
        losses: total loss per refinement step.
        seconds: wall time (of this run, when resumed).
        steps: refinement steps taken.
        resumed: whether the fit continued from a checkpoint.
    """

    u: Tensor
    params: dict[str, Tensor]
    loss: Tensor
    f0_init_hz: Tensor
    f0_analysis_hz: Tensor
    start_f0_hz: Tensor
    start_losses: Tensor | None = None
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    resumed: bool = False


def pitch_param(patch: Patch) -> str | None:
    """Name of the free note-frequency parameter (``"<note module>.f0_hz"``), if any.

    Examples:
        >>> from diffdsp.synth.presets import get_preset
        >>> pitch_param(get_preset("subtractive"))
        'note.f0_hz'
    """
    for name, module in patch.synth_modules.items():
        key = f"{name}.f0_hz"
        if isinstance(module, Note) and key in patch.param_ranges:
            return key
    return None


def estimate_f0(x: Tensor, sample_rate: int, *, fmin_hz: float = 30.0,
                fmax_hz: float = 4000.0) -> Tensor:
    """Median YIN f0 over confident, non-silent frames of each signal ``(batch, time)``.

    Returns:
        ``(batch,)`` in Hz; NaN where no frame is voiced.

    Examples:
        >>> t = torch.arange(16000) / 16000
        >>> round(float(estimate_f0(torch.sin(2 * math.pi * 330 * t)[None], 16000)[0]))
        330
    """
    from diffdsp.functional.analysis import f0_yin

    fmax = min(fmax_hz, 0.45 * sample_rate)
    f0, conf = f0_yin(x, sample_rate=sample_rate, fmin_hz=fmin_hz, fmax_hz=fmax)
    hop = max(1, round(sample_rate / 100.0))
    n_frames = f0.shape[-1]
    # frame energy: mean square around each frame centre
    pad = torch.nn.functional.pad(x.pow(2), (hop // 2, hop))
    energy = pad.unfold(-1, hop, hop)[..., :n_frames, :].mean(-1)
    if energy.shape[-1] < n_frames:
        energy = torch.nn.functional.pad(energy, (0, n_frames - energy.shape[-1]))
    loud = energy > energy.amax(-1, keepdim=True) * 1e-3
    out = []
    for i in range(f0.shape[0]):
        for thr in (0.8, 0.5, 0.2):
            sel = (conf[i] >= thr) & loud[i]
            if int(sel.sum()) >= 3:
                out.append(f0[i][sel].median())
                break
        else:
            out.append(torch.tensor(float("nan")))
    return torch.stack(out).to(torch.float64)


def correct_octave(
    x: Tensor,
    f0_hz: Tensor,
    *,
    sample_rate: int,
    threshold_db: float = -33.0,
    fmin_hz: float = 27.5,
    fmax_hz: float = 4186.0,
) -> Tensor:
    """Octave check of a pitch estimate by the odd harmonics' share of the harmonic energy.

    YIN's octave errors on harmonic sounds are mostly "too high": a sound whose odd harmonics
    are weak (saw + square mixed to nearly cancel them) repeats almost every half period. For a
    candidate ``c`` the whole-signal power spectrum (Hann window) is split into bands
    ``|f / c - k| < 1/4`` around the harmonics ``k c`` (up to ``min(0.45 sr, 80 c)``) and
    ``rho(c)`` is the odd-``k`` bands' share of their energy. When ``rho(f0 / 2)`` exceeds the
    threshold, ``f0 / 2`` has harmonics of its own between ``f0``'s and is the fundamental
    (halved again while that holds); when ``rho(f0)`` is below it, ``f0``'s odd harmonics are
    empty and ``2 f0`` is (doubled while that holds). The default threshold, -33 dB, lies
    between the in-domain octave errors (>= -28 dB) and true fundamentals (<= -38 dB on the
    built-in real notes, <= -40 dB on 100 random ``subtractive`` renders).

    Args:
        x: signals ``(batch, time)``.
        f0_hz: pitch estimates ``(batch,)`` (NaN entries are returned unchanged).
        sample_rate: in Hz.
        threshold_db: odd-harmonic energy share in dB (``10 log10 rho``).
        fmin_hz: no halving below this frequency.
        fmax_hz: no doubling above this frequency.

    Returns:
        Corrected estimates ``(batch,)`` in Hz.

    Examples:
        >>> t = torch.arange(16000, dtype=torch.float64) / 16000
        >>> x = sum(torch.sin(2 * math.pi * 200 * k * t) / k for k in (2, 4, 6))
        >>> x = x + 0.05 * torch.sin(2 * math.pi * 200 * t)  # weak fundamental at 200 Hz
        >>> float(correct_octave(x[None], torch.tensor([400.0]), sample_rate=16000)[0])
        200.0
    """
    n = x.shape[-1]
    win = torch.hann_window(n, periodic=False, dtype=x.dtype, device=x.device)
    power = torch.fft.rfft(x * win).abs().square()
    freqs = torch.arange(power.shape[-1], dtype=x.dtype, device=x.device) * (sample_rate / n)
    thr = 10.0 ** (threshold_db / 10.0)

    def rho(i: int, c: float) -> float:
        h = freqs / c
        k = torch.round(h)
        band = ((h - k).abs() < 0.25) & (k >= 1) & (freqs <= min(0.45 * sample_rate, 80 * c))
        total = float(power[i][band].sum())
        odd = float(power[i][band & (k % 2 == 1)].sum())
        return odd / total if total > 0 else 0.0

    out = f0_hz.clone()
    for i in range(x.shape[0]):
        f = float(f0_hz[i])
        if not math.isfinite(f) or f <= 0:
            continue
        for _ in range(4):
            if f / 2 >= fmin_hz and rho(i, f / 2) > thr:
                f /= 2
            else:
                break
        for _ in range(4):
            if f * 2 <= fmax_hz and f * 2 < 0.45 * sample_rate and rho(i, f) < thr:
                f *= 2
            else:
                break
        out[i] = f
    return out


def matching_loss(
    pred: Tensor,
    target: Tensor,
    *,
    sample_rate: int,
    pitch_weight: float = 10.0,
    spec_weight: float = 1.0,
    reduction: str = "none",
) -> Tensor:
    """The loss ``diffdsp match`` minimises: pitch-seeing Wasserstein + MR-STFT.

    ``pitch_weight * log_spectral_wasserstein + spec_weight * MR-STFT(SC + log magnitude)`` with
    FFT sizes 2048/1024/512/256 (hop 1/4). :func:`fit_patch` evaluates it *pitch-gated*: the
    MR-STFT term is computed on a render whose note frequency is detached, so the frequency's
    gradient comes from the pitch term alone (the MR-STFT gradient w.r.t. frequency points the
    wrong way about half the time, ``evals/gradient_direction.py``); every other parameter gets
    both terms' gradients.

    Args:
        pred: estimate ``(..., time)``.
        target: reference ``(..., time)``.
        sample_rate: in Hz.
        pitch_weight: weight of the pitch term.
        spec_weight: weight of the MR-STFT term.
        reduction: ``"none"`` (per item), ``"mean"`` or ``"sum"``.

    Returns:
        The loss.

    Examples:
        >>> x = torch.randn(2, 8000)
        >>> matching_loss(x, x, sample_rate=16000).abs().max().item() < 1e-5
        True
    """
    from diffdsp.losses.pitch import log_spectral_wasserstein
    from diffdsp.losses.spectral import multi_resolution_stft_loss

    total = torch.zeros(pred.shape[:-1], dtype=pred.dtype, device=pred.device)
    if pitch_weight != 0:
        total = total + pitch_weight * log_spectral_wasserstein(
            pred, target, sample_rate=sample_rate, reduction="none")
    if spec_weight != 0:
        spec = multi_resolution_stft_loss(
            pred, target, fft_sizes=MRSTFT_FFT, hop_sizes=[n // 4 for n in MRSTFT_FFT],
            win_lengths=MRSTFT_FFT, reduction="none")
        assert isinstance(spec, Tensor)
        total = total + spec_weight * spec
    if reduction == "none":
        return total
    return total.mean() if reduction == "mean" else total.sum()


def _mrstft_only(pred: Tensor, target: Tensor) -> Tensor:
    from diffdsp.losses.spectral import multi_resolution_stft_loss

    out = multi_resolution_stft_loss(
        pred, target, fft_sizes=MRSTFT_FFT, hop_sizes=[n // 4 for n in MRSTFT_FFT],
        win_lengths=MRSTFT_FFT, reduction="none")
    assert isinstance(out, Tensor)
    return out


def log_spectral_distance_db(pred: Tensor, target: Tensor, *, n_fft: int = 2048,
                             floor_db: float = -80.0) -> Tensor:
    """Log-spectral distance in dB: RMS over STFT bins of the dB difference, per item.

    Magnitudes are floored ``floor_db`` below the target's loudest bin so that silent regions do
    not dominate (DiffMoog Fig. 6's LSD with a floor).

    Args:
        pred: ``(..., time)``.
        target: ``(..., time)``.
        n_fft: FFT size (hop ``n_fft // 4``).
        floor_db: floor relative to the target's peak.

    Returns:
        ``(...)`` distances in dB.

    Examples:
        >>> x = torch.randn(1, 8000)
        >>> float(log_spectral_distance_db(x, x)[0])
        0.0
    """
    from diffdsp.functional.analysis import stft_magnitude

    ma = stft_magnitude(pred, n_fft=n_fft, hop_length=n_fft // 4)
    mb = stft_magnitude(target, n_fft=n_fft, hop_length=n_fft // 4)
    ref = mb.flatten(-2).amax(-1).clamp_min(1e-12)[..., None, None]
    floor = ref * 10.0 ** (floor_db / 20.0)
    da = 20.0 * torch.log10(torch.maximum(ma, floor))
    db = 20.0 * torch.log10(torch.maximum(mb, floor))
    return (da - db).pow(2).mean((-2, -1)).sqrt()


def _default_u(patch: Patch, batch: int) -> Tensor:
    return patch.normalise({}, batch=batch, dtype=torch.float64)


def _pitch_bounds(prange: ParamRange, centre_hz: Tensor, window_cents: float | None
                  ) -> tuple[Tensor, Tensor]:
    """Normalised bounds ``(lo, hi)`` of the pitch window around ``centre_hz`` ``(batch,)``."""
    lo = torch.zeros_like(centre_hz)
    hi = torch.ones_like(centre_hz)
    if window_cents is None:
        return lo, hi
    voiced = torch.isfinite(centre_hz)
    c = torch.where(voiced, centre_hz, torch.ones_like(centre_hz))
    ratio = 2.0 ** (window_cents / 1200.0)
    lo_w = prange.normalise(c / ratio).clamp(0.0, 1.0)
    hi_w = prange.normalise(c * ratio).clamp(0.0, 1.0)
    return torch.where(voiced, lo_w, lo), torch.where(voiced, hi_w, hi)


def _bounded(z: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Logits -> normalised parameters in ``[lo, hi]`` (per item and column)."""
    return lo + (hi - lo) * torch.sigmoid(z)


def _unbounded(u: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    frac = (u - lo) / (hi - lo).clamp_min(1e-12)
    return torch.logit(frac.clamp(1e-4, 1.0 - 1e-4))


def _digest(target: Tensor, patch: Patch, settings: MatchSettings, seed: int,
            init_u: Tensor | None, note_s: float | None) -> str:
    """What a checkpoint must have been written for (target, patch, settings, seed)."""
    return checkpoint_digest([target, init_u], {
        "patch": patch.to_dict(), "settings": asdict(settings), "seed": seed, "note_s": note_s,
        "dtype": str(target.dtype)})


def fit_patch(
    target: Tensor,
    patch: Patch,
    *,
    settings: MatchSettings | None = None,
    init_u: Tensor | None = None,
    note_s: float | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int, float], None] | None = None,
    checkpoint_path: PathLike | None = None,
    checkpoint_every: int = 25,
    resume: bool = False,
) -> MatchFit:
    """Fit ``patch`` to each target of a batch (batched multi-start, then refinement).

    The note frequency (when the patch has a :class:`~diffdsp.synth.modules.Note`) is a bounded
    parameter: every start confines it to ``settings.pitch_window_cents`` around its starting
    pitch (YIN estimate times an octave multiple), so the refinement cannot drift to another
    note; the octave is chosen by comparing the trials' losses. Its gradient comes from the pitch
    term alone (pitch gating, see :func:`matching_loss`).

    Args:
        target: ``(batch, time)`` at ``patch.sample_rate``.
        patch: the patch (its free parameters are fitted).
        settings: options (:class:`MatchSettings`).
        init_u: optional extra start ``(batch, n_params)`` in [0, 1] (a learned matcher's
            prediction); used as one more start of the multi-start.
        note_s: note-off time in seconds (default 75% of the length).
        seed: seeds noise modules and the random initialisation.
        progress: ``progress(stage, step, total, loss)``.
        checkpoint_path: file the optimisation state is saved to every ``checkpoint_every``
            steps, at the end, and when interrupted (``KeyboardInterrupt`` is re-raised).
        checkpoint_every: steps between checkpoints.
        resume: continue from ``checkpoint_path`` when it exists (it must have been written for
            the same target, patch, settings and seed; the result is then the same as an
            uninterrupted fit's).

    Returns:
        A :class:`MatchFit`.

    Raises:
        InputError: bad shapes or options, or a checkpoint written for another fit.
    """
    import copy

    s = settings or MatchSettings()
    if target.ndim != 2:
        raise InputError(f"target must be (batch, time), got shape {tuple(target.shape)}")
    if s.loss not in ("match", "mrstft"):
        raise InputError(f"loss must be 'match' or 'mrstft', got {s.loss!r}")
    if s.init not in ("yin", "default", "random"):
        raise InputError(f"init must be 'yin', 'default' or 'random', got {s.init!r}")
    if s.pitch_window_cents is not None and not s.pitch_window_cents > 0:
        raise InputError(f"pitch_window_cents must be > 0 or None, got {s.pitch_window_cents}")
    check_int(checkpoint_every, "checkpoint_every", minimum=1)
    t0 = time.perf_counter()
    batch, n = target.shape
    dtype = target.dtype
    gen = torch.Generator().manual_seed(seed)
    pkey = pitch_param(patch)
    pidx = patch.param_names.index(pkey) if pkey is not None else None
    prange = patch.param_ranges[pkey] if pkey is not None else None
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    digest = _digest(target, patch, s, seed, init_u, note_s) if ckpt is not None else ""
    state = (load_checkpoint(ckpt, digest, written_for="target, patch, settings or seed")
             if resume else None)

    # ---- starting points: (batch, n_starts, n_params) and pitch windows
    if s.init == "random":
        base = patch.sample(batch, generator=gen, dtype=torch.float64)
    else:
        base = _default_u(patch, batch)
    f0_init = torch.full((batch,), float("nan"), dtype=torch.float64)
    f0_an = f0_init
    starts = [base]
    centres = [torch.full((batch,), float("nan"), dtype=torch.float64)]
    yin_start = 0
    if s.init == "yin" and pidx is not None and prange is not None:
        x64 = target.detach().cpu().to(torch.float64)
        f0_init = estimate_f0(x64, patch.sample_rate)
        f0_an = f0_init
        if s.octave_check_db is not None:
            f0_an = correct_octave(x64, f0_init, sample_rate=patch.sample_rate,
                                   threshold_db=s.octave_check_db, fmin_hz=prange.min,
                                   fmax_hz=prange.max)
        starts, centres = [], []
        default_f0 = torch.tensor(prange.default_value, dtype=torch.float64)
        for j, mult in enumerate(s.octave_starts):
            u = base.clone()
            f0 = torch.where(torch.isnan(f0_an), default_f0, f0_an * mult)
            f0 = f0.clamp(prange.min * 1.01, prange.max / 1.01)
            u[:, pidx] = prange.normalise(f0)
            starts.append(u)
            centres.append(torch.where(torch.isnan(f0_an), f0_an, f0))
            if mult == 1.0:
                yin_start = j
    if init_u is not None:
        u_m = init_u.detach().cpu().to(torch.float64).reshape(batch, -1).clamp(0.0, 1.0)
        starts.append(u_m)
        centres.append(prange.denormalise(u_m[:, pidx]) if pidx is not None and prange
                       is not None else torch.full((batch,), float("nan"), dtype=torch.float64))
    u0 = torch.stack(starts, 1)  # (batch, S, P)
    n_starts = u0.shape[1]
    lo0 = torch.zeros_like(u0)
    hi0 = torch.ones_like(u0)
    if pidx is not None and prange is not None and s.init == "yin":
        for j, c in enumerate(centres):
            lo0[:, j, pidx], hi0[:, j, pidx] = _pitch_bounds(prange, c, s.pitch_window_cents)
    dev = target.device
    lo0, hi0, u0 = lo0.to(dev), hi0.to(dev), u0.to(dev)

    def synth(u: Tensor) -> Tensor:
        y = patch(u, n_samples=n, note_s=note_s,
                  generator=torch.Generator().manual_seed(seed + 1))
        assert isinstance(y, Tensor)
        return y[:, 0]

    def loss_of(u: Tensor, tgt: Tensor, spec_w: float) -> Tensor:
        if s.loss == "mrstft":
            return _mrstft_only(synth(u), tgt)
        if pidx is None or not u.requires_grad or spec_w == 0.0:
            return matching_loss(synth(u), tgt, sample_rate=patch.sample_rate,
                                 pitch_weight=s.pitch_weight, spec_weight=spec_w)
        # pitch-gated: the note frequency gets its gradient from the pitch term only
        u_gated = torch.cat([u[:, :pidx], u[:, pidx:pidx + 1].detach(), u[:, pidx + 1:]], -1)
        return (matching_loss(synth(u), tgt, sample_rate=patch.sample_rate,
                              pitch_weight=s.pitch_weight, spec_weight=0.0)
                + matching_loss(synth(u_gated), tgt, sample_rate=patch.sample_rate,
                                pitch_weight=0.0, spec_weight=spec_w))

    ckpt_common: dict[str, Any] = {"digest": digest, "f0_init": f0_init}

    def save(payload: dict[str, Any]) -> None:
        if ckpt is None:
            return
        import io as _io

        from diffdsp.io import atomic_write_bytes

        buf = _io.BytesIO()
        torch.save({**ckpt_common, **payload}, buf)
        atomic_write_bytes(ckpt, buf.getvalue())

    def run(z: Tensor, lo: Tensor, hi: Tensor, tgt: Tensor, steps: int, stage: str,
            ramp: bool, extra: dict[str, Any]) -> tuple[Tensor, list[float]]:
        z = z.clone().requires_grad_(True)
        lr_scale = torch.ones(z.shape[-1], dtype=z.dtype, device=z.device)
        if pidx is not None:
            lr_scale[pidx] = s.f0_lr_scale
        lr0 = s.lr if ramp else s.start_lr
        opt = torch.optim.Adam([z], lr=lr0)
        best = torch.full((z.shape[0],), math.inf, dtype=torch.float64, device=z.device)
        best_z = z.detach().clone()
        hist: list[float] = []
        k0 = 0
        if state is not None and state.get("stage") == stage:
            with torch.no_grad():
                z.copy_(state["z"].to(z))
            opt.load_state_dict(state["optimizer"])
            best = state["best"].to(best)
            best_z = state["best_z"].to(best_z)
            hist = list(state["hist"])
            k0 = int(state["step"])

        def snapshot(k: int) -> dict[str, Any]:
            return {"stage": stage, "step": k, "z": z.detach().cpu().clone(),
                    "optimizer": copy.deepcopy(opt.state_dict()), "best": best.cpu().clone(),
                    "best_z": best_z.cpu().clone(), "hist": list(hist), **extra}

        snap: dict[str, Any] | None = None
        k = k0
        try:
            for k in range(k0, steps):
                snap = snapshot(k) if ckpt is not None else None
                if snap is not None and k % checkpoint_every == 0 and not (
                        state is not None and k == k0 and k0 > 0):
                    save(snap)
                frac = k / max(1, steps - 1)
                lr_k = lr0 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
                for g in opt.param_groups:
                    g["lr"] = lr_k
                if ramp:
                    w = s.spec_weight_start + (s.spec_weight - s.spec_weight_start) * min(
                        1.0, frac / max(s.spec_ramp, 1e-9))
                else:
                    w = s.start_spec_weight
                opt.zero_grad(set_to_none=True)
                per = loss_of(_bounded(z, lo, hi).to(dtype), tgt, w)
                total = per.sum()
                total.backward()
                with torch.no_grad():
                    if z.grad is not None:
                        z.grad.mul_(lr_scale)
                        z.grad.nan_to_num_(0.0, 0.0, 0.0)
                    # keep the best state per item, judged at the final weight in the last part
                    if not ramp or frac >= s.spec_ramp:
                        lv = per.detach().to(torch.float64)
                        better = lv < best
                        best = torch.where(better, lv, best)
                        best_z[better] = z.detach()[better]
                opt.step()
                hist.append(float(total.detach()) / z.shape[0])
                if progress is not None:
                    progress(stage, k + 1, steps, hist[-1])
        except KeyboardInterrupt:
            if snap is not None:
                save(snap)
            raise
        with torch.no_grad():
            last = loss_of(_bounded(z, lo, hi).to(dtype), tgt,
                           s.spec_weight if ramp else s.start_spec_weight).to(torch.float64)
            better = last < best
            best_z[better] = z.detach()[better]
        return best_z, hist

    lo_s = lo0.reshape(batch * n_starts, -1)
    hi_s = hi0.reshape(batch * n_starts, -1)
    start_losses: Tensor | None = None
    if state is not None and state.get("stage") in ("refine", "done"):
        z1 = state["z1"].to(dev)
        lo1, hi1 = state["lo1"].to(dev), state["hi1"].to(dev)
        start_losses = state.get("start_losses")
    elif n_starts > 1 and s.start_steps > 0:
        z0 = _unbounded(u0.reshape(batch * n_starts, -1), lo_s, hi_s)
        tgt_rep = target.repeat_interleave(n_starts, 0)
        z_s, _ = run(z0, lo_s, hi_s, tgt_rep, s.start_steps, "multi-start", ramp=False,
                     extra={})
        with torch.no_grad():
            per = loss_of(_bounded(z_s, lo_s, hi_s).to(dtype), tgt_rep, s.start_spec_weight)
        start_losses = per.detach().to(torch.float64).reshape(batch, n_starts).cpu()
        penalty = torch.full((n_starts,), 1.0 + s.octave_margin, dtype=torch.float64)
        penalty[yin_start] = 1.0
        choice = (start_losses * penalty).argmin(-1).to(dev)
        ar = torch.arange(batch, device=dev)
        z1 = z_s.reshape(batch, n_starts, -1)[ar, choice]
        lo1, hi1 = lo0[ar, choice], hi0[ar, choice]
    else:
        z1 = _unbounded(u0[:, 0], lo0[:, 0], hi0[:, 0])
        lo1, hi1 = lo0[:, 0], hi0[:, 0]
    start_f0 = torch.full((batch,), float("nan"), dtype=torch.float64)
    if pidx is not None and prange is not None:
        start_f0 = prange.denormalise(
            _bounded(z1, lo1, hi1)[:, pidx].detach().cpu().to(torch.float64))
    stage2 = {"z1": z1.detach().cpu(), "lo1": lo1.cpu(), "hi1": hi1.cpu(),
              "start_losses": start_losses}
    if state is not None and state.get("stage") == "done":
        z_f = state["z_f"].to(dev)
        hist = list(state["hist"])
    else:
        z_f, hist = run(z1, lo1, hi1, target, s.steps, "refine", ramp=True, extra=stage2)
        save({"stage": "done", "z_f": z_f.detach().cpu(), "hist": hist, **stage2})
    u = _bounded(z_f, lo1, hi1).to(dtype)
    with torch.no_grad():
        final = loss_of(u, target, s.spec_weight)
    return MatchFit(u=u.detach(), params={k: v.detach() for k, v in patch.denormalise(u).items()},
                    loss=final.detach(), f0_init_hz=f0_init, f0_analysis_hz=f0_an,
                    start_f0_hz=start_f0,
                    start_losses=start_losses, losses=hist,
                    seconds=time.perf_counter() - t0, steps=s.steps, resumed=state is not None)


def load_patch(spec: str | PathLike, sample_rate: int = 44100) -> tuple[Patch, dict[str, float]]:
    """A preset name or a patch JSON file -> ``(patch, stored params)`` at ``sample_rate``."""
    from diffdsp.synth.presets import PRESETS, get_preset

    if isinstance(spec, str) and spec in PRESETS:
        return get_preset(spec, sample_rate), {}
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"--patch must be a preset ({', '.join(sorted(PRESETS))}) or a patch "
                         f"JSON file, got {str(spec)!r}")
    patch, params = Patch.load(path)
    d = patch.to_dict()
    d["sample_rate"] = sample_rate
    return Patch.from_dict(d), dict(params or {})


def _at_rate(patch: Patch, sample_rate: int) -> Patch:
    d = patch.to_dict()
    d["sample_rate"] = sample_rate
    return Patch.from_dict(d)


def match(
    target_path: PathLike,
    out_dir: PathLike,
    *,
    patch: str | PathLike = "subtractive",
    steps: int = 250,
    seed: int = 0,
    device: str = "cpu",
    model: PathLike | None = None,
    analysis_rate: int = 22050,
    max_seconds: float = 4.0,
    resume: bool = False,
    checkpoint_every: int = 25,
    progress: Progress | None = None,
) -> TaskResult:
    """Match a target sound with a patch; write ``match.wav``, ``patch.json``, plots, results.

    The optimisation state is saved to ``out_dir/checkpoint.pt`` every ``checkpoint_every``
    steps, at the end and on Ctrl-C; ``resume=True`` continues from it (same options and seed:
    the same result as an uninterrupted run).

    Args:
        target_path: audio file (mixed to mono; cut to ``max_seconds``).
        out_dir: output folder.
        patch: preset name or patch JSON file.
        steps: refinement steps.
        seed: random seed.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model: checkpoint of a learned matcher (``diffdsp train match``) used as an extra start.
        analysis_rate: sample rate of the optimisation in Hz.
        max_seconds: longest target excerpt used.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        checkpoint_every: optimisation steps between checkpoints.
        progress: progress callback.

    Returns:
        TaskResult with ``result.json``'s content.
    """
    from diffdsp.io import load_audio, resample, save_audio
    from diffdsp.report import Section, write_report
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.report.plots import loss_curve, spectrograms

    check_int(steps, "steps", minimum=1)
    dev = resolve_device(device)
    inputs = [target_path] + ([model] if model is not None else [])
    out = prepare_out_dir(out_dir, inputs)
    seed_all(seed)
    x, sr_in = load_audio(target_path, max_seconds=MAX_TARGET_S)
    notes = [f"{x.shape[0]} channels mixed to mono"] if x.shape[0] > 1 else []
    if sr_in != analysis_rate:
        notes.append(f"fitted at {analysis_rate} Hz (resampled from {sr_in} Hz); match.wav at "
                     f"{sr_in} Hz")
    x = x.mean(0)
    n_in = x.shape[-1]
    if n_in < 2048:
        raise InputError(f"{target_path}: target too short ({n_in} samples); need >= 2048")
    work_patch, _ = load_patch(patch, analysis_rate)
    xa = resample(x, sr_in, analysis_rate) if sr_in != analysis_rate else x
    xa = xa[: int(max_seconds * analysis_rate)]
    if float(xa.abs().max()) == 0.0:
        raise InputError(f"{target_path}: target is silent")
    settings = MatchSettings(steps=steps, start_steps=min(60, steps), analysis_rate=analysis_rate,
                             max_seconds=max_seconds)
    init_u = None
    if model is not None:
        from diffdsp.train.match import predict_params

        init_u = predict_params(model, xa[None], analysis_rate, work_patch)
    work_patch = work_patch.to(dev)
    fitted = fit_patch(xa[None].to(dev), work_patch, settings=settings, init_u=init_u,
                       seed=seed, progress=progress, checkpoint_path=out / "checkpoint.pt",
                       checkpoint_every=checkpoint_every, resume=resume)
    params = {k: float(v[0]) for k, v in fitted.params.items()}
    # render at the input's rate and length
    out_patch = _at_rate(work_patch, sr_in)
    note_s = 0.75 * xa.shape[-1] / analysis_rate
    y = out_patch.render(params, n_samples=n_in, note_s=note_s,
                         generator=torch.Generator().manual_seed(seed + 1))
    assert isinstance(y, Tensor)
    y = y[0, 0].detach().cpu()
    save_audio(out / "match.wav", y[None], sr_in)
    out_patch.save(out / "patch.json", params)
    # metrics at the analysis rate
    ya = work_patch.render(params, n_samples=xa.shape[-1], note_s=note_s,
                           generator=torch.Generator().manual_seed(seed + 1))
    assert isinstance(ya, Tensor)
    ya = ya[0, 0].detach().cpu()
    u_init = _default_u(work_patch, 1).to(xa.dtype)
    y0 = work_patch(u_init, n_samples=xa.shape[-1], note_s=note_s)
    assert isinstance(y0, Tensor)
    f0_fit = float("nan")
    pkey = pitch_param(work_patch)
    if pkey is not None:
        f0_fit = params[pkey]
    f0_target = float(fitted.f0_init_hz[0])
    f0_out = float(estimate_f0(ya[None].to(torch.float64), analysis_rate)[0])
    before = {"lsd_db": float(log_spectral_distance_db(y0[0, 0].detach(), xa)),
              "loss": float(matching_loss(y0[:, 0].detach(), xa[None],
                                          sample_rate=analysis_rate)[0])}
    after = {"lsd_db": float(log_spectral_distance_db(ya, xa)), "loss": float(fitted.loss[0]),
             "f0_fit_hz": f0_fit, "f0_target_yin_hz": f0_target, "f0_match_yin_hz": f0_out,
             "f0_error_cents": 1200.0 * math.log2(f0_out / f0_target)
             if f0_out > 0 and f0_target > 0 else float("nan")}
    spectrograms(out / "spectrograms.png", {"target": xa, "match": ya}, analysis_rate,
                 title="target vs match")
    loss_curve(out / "loss.png", fitted.losses)
    files = ["match.wav", "patch.json", "spectrograms.png", "loss.png", "report.html",
             "checkpoint.pt"]
    section = Section(
        title="Sound matching",
        text=f"Patch '{work_patch.name}' fitted to the target: YIN pitch with an octave "
        f"check, multi-start over octaves, then Adam on the log-frequency spectral Wasserstein + "
        f"MR-STFT loss with the note frequency confined to +-"
        f"{settings.pitch_window_cents} cents of its start.",
        metrics={"before": before, "after": after},
        images=[("spectrograms.png", "target vs match"), ("loss.png", "loss")],
        audio=[("match", "match.wav")],
        details={k: round(v, 4) for k, v in params.items()},
    )
    write_report(out, "diffdsp match", [section])
    result = write_result_json(
        out, task="match", inputs=inputs,
        settings={**asdict(settings), "patch": str(patch), "device": str(dev),
                  "model": str(model) if model is not None else None},
        metrics_before=before, metrics_after=after,
        fit={"steps": fitted.steps, "seconds": round(fitted.seconds, 3),
             "final_loss": float(fitted.loss[0]), "converged": True,
             "resumed": fitted.resumed},
        seed=seed, files=files, extra={"params": params, "notes": notes})
    return TaskResult(task="match", out_dir=out, result=result,
                      files=sorted({*files, "result.json"}), sections=[section])


def render(
    patch_json: PathLike,
    out_dir: PathLike,
    *,
    seconds: float = 2.0,
    note: float | None = None,
    sample_rate: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> TaskResult:
    """Render a patch JSON (with its stored parameters) to ``render.wav``.

    Args:
        patch_json: file written by ``diffdsp match`` or :meth:`Patch.save`.
        out_dir: output folder.
        seconds: length in seconds.
        note: MIDI note overriding the stored pitch (needs a note module).
        sample_rate: output rate (default the patch's).
        seed: seeds noise modules.
        progress: progress callback (unused: rendering is one step).

    Returns:
        TaskResult.
    """
    from diffdsp._numerics import midi_to_hz
    from diffdsp.io import save_audio
    from diffdsp.report.artefacts import write_result_json

    if not (math.isfinite(seconds) and 0.0 < seconds <= 600.0):
        raise InputError(f"seconds must be in (0, 600], got {seconds}")
    out = prepare_out_dir(out_dir, [patch_json])
    patch, params = Patch.load(Path(patch_json))
    sr = sample_rate or patch.sample_rate
    patch = _at_rate(patch, sr)
    params = {k: v for k, v in (params or {}).items() if k in patch.param_ranges}
    if note is not None:
        key = pitch_param(patch)
        if key is None:
            raise InputError("--note needs a patch with a note module")
        if not 0.0 <= note <= 127.0:
            raise InputError(f"note must be a MIDI number in [0, 127], got {note}")
        params[key] = float(midi_to_hz(torch.tensor(float(note))))
    n = max(1, round(seconds * sr))
    y = patch.render(params, n_samples=n, generator=torch.Generator().manual_seed(seed))
    assert isinstance(y, Tensor)
    y = y[0].detach()
    peak = float(y.abs().max())
    save_audio(out / "render.wav", y, sr)
    result = write_result_json(
        out, task="render", inputs=[patch_json],
        settings={"seconds": seconds, "note": note, "sample_rate": sr},
        metrics_after={"peak": peak}, seed=seed, files=["render.wav"], extra={"params": params})
    return TaskResult(task="render", out_dir=out, result=result,
                      files=["render.wav", "result.json"])


def demo(out_dir: Path, *, quick: bool, seed: int, progress: Progress | None) -> TaskResult:
    """``diffdsp demo`` section: match the subtractive patch to a real violin note (pitch found)."""
    from diffdsp import data

    res = match(data.path("notes/fluidr3_violin_midi69.flac"), out_dir, patch="subtractive",
                steps=8 if quick else 150, seed=seed, max_seconds=0.5 if quick else 2.0,
                analysis_rate=16000, progress=progress)
    for s in res.sections:
        s.text = ("Target: a real violin note (FluidR3, A4 = 440 Hz). " + s.text).strip()
    return res
