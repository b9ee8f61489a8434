"""DDSP timbre transfer: train an instrument model, resynthesise any monophonic input with it.

Three entry points, each writing its artefacts into ``out_dir`` and returning a
:class:`~diffdsp.tasks._common.TaskResult`:

* :func:`train` (``diffdsp train timbre AUDIO_DIR``): loads a folder of one monophonic instrument,
  holds out its last 20 %, trains :class:`diffdsp.train.timbre.TimbreModel` with Lightning
  (multi-resolution STFT loss), writes ``model.pt`` (model type + version), training curves and a
  resynthesis of the held-out audio with its metrics.
* :func:`transfer` (``diffdsp timbre INPUT --model CKPT``): f0 and loudness of the input (optionally
  shifted) drive the trained model; ``output.wav`` has the input's rate and length.
* :func:`resynth` (``diffdsp resynth INPUT``): analysis -> harmonic-plus-noise synthesis with no
  network, a check of the feature and synthesis pipeline.

Metrics (``result.json``): ``f0_within_20_cents_pct`` / ``f0_within_50_cents_pct`` (output f0 vs
the input's, on the input's voiced frames that are also non-silent), ``f0_error_cents_median``,
``loudness_corr`` (Pearson correlation of the input and output A-weighted loudness curves in dB on
frames where the input is within 60 dB of its peak and above -90 dB), ``mrstft`` (the training
loss, DDSP resolutions). Silence, noise and polyphonic input are reported under ``warnings``; the
output stays finite.

References:
    Engel et al., "DDSP: Differentiable Digital Signal Processing", ICLR 2020.
    Hayes et al., Frontiers 2023 review, Sec. 2.1.2 (timbre transfer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffdsp._validation import InputError, check_int
from diffdsp.io import PathLike, load_audio, resample, save_audio
from diffdsp.tasks._common import Progress, TaskResult, prepare_out_dir, resolve_device, seed_all

__all__ = [
    "AUDIO_EXTENSIONS",
    "demo",
    "pipeline_metrics",
    "resynth",
    "synth_instrument",
    "synth_source_melody",
    "train",
    "transfer",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
SILENCE_DB = -90.0  # below this A-weighted loudness a frame is silent
RANGE_DB = 60.0  # frames more than this below the input's peak are not judged


# ----------------------------------------------------------------------------------------------
# Built-in material: an instrument rendered by the synth itself, and a different source


def _melody_frames(
    seconds: float, frame_rate: int, g: torch.Generator, *, midi_range: tuple[int, int],
    rest_prob: float, dur_range: tuple[float, float],
) -> tuple[Tensor, Tensor]:
    """Per-frame MIDI pitch (with glides) and a 0..1 note envelope of a random melody."""
    n = round(seconds * frame_rate)
    midi = torch.zeros(n)
    env = torch.zeros(n)
    pos = 0
    lo, hi = midi_range
    note = float(torch.randint(lo, hi + 1, (1,), generator=g))
    while pos < n:
        dur = int(frame_rate * (dur_range[0] + (dur_range[1] - dur_range[0])
                                * float(torch.rand(1, generator=g))))
        dur = max(dur, 4)
        end = min(n, pos + dur)
        if float(torch.rand(1, generator=g)) < rest_prob:
            midi[pos:end] = note
            pos = end
            continue
        step = int(torch.randint(-5, 6, (1,), generator=g))
        note = float(min(hi, max(lo, note + step)))
        vel = 0.35 + 0.65 * float(torch.rand(1, generator=g))
        m = end - pos
        t = torch.arange(m) / frame_rate
        attack, release = 0.04, 0.08
        shape = torch.clamp(t / attack, max=1.0) * (0.75 + 0.25 * torch.exp(-t / 0.15))
        shape = shape * torch.clamp((m / frame_rate - t) / release, max=1.0)
        env[pos:end] = vel * shape
        midi[pos:end] = note
        pos = end
    # glides: one-pole smoothing of the pitch (20 ms), vibrato after 150 ms of each note
    alpha = math.exp(-1.0 / (0.02 * frame_rate))
    smooth = midi.clone()
    for i in range(1, n):  # frame-rate control curve of a test signal (not audio samples)
        smooth[i] = alpha * smooth[i - 1] + (1 - alpha) * midi[i]
    t_all = torch.arange(n) / frame_rate
    vib = 0.15 * torch.sin(2 * math.pi * 5.5 * t_all) * (env > 0.05)
    return smooth + vib, env


def synth_instrument(
    seconds: float, *, sample_rate: int = 16_000, seed: int = 0, reverb: bool = True
) -> Tensor:
    """A recognisable reed-like "instrument" played by the harmonic-plus-noise synth itself.

    Random legato melodies (MIDI 55-76, glides, vibrato, velocity-dependent envelopes) drive a
    harmonic spectrum whose brightness rises with loudness (spectral slope ``k^-(2.4 - 1.4 v)``),
    with a fixed formant near 1.4 kHz, weaker even harmonics, breath noise above 2 kHz and a small
    room (T60 0.3 s). Deterministic for a seed.

    Args:
        seconds: length in seconds.
        sample_rate: in Hz.
        seed: melody seed.
        reverb: add the room.

    Returns:
        Mono audio ``(T,)`` peaking near -3 dBFS.
    """
    from diffdsp.train.timbre import HarmonicNoiseSynth, fft_convolve

    g = torch.Generator().manual_seed(seed)
    fr = 250
    hop = sample_rate // fr
    midi, env = _melody_frames(seconds, fr, g, midi_range=(55, 76), rest_prob=0.12,
                               dur_range=(0.2, 0.7))
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    k = torch.arange(1, 61, dtype=torch.float32)
    fk = f0[:, None] * k
    slope = 2.4 - 1.4 * env[:, None]
    formant = 1.0 + 3.0 * torch.exp(-(((fk - 1400.0) / 500.0) ** 2))
    parity = torch.where(k % 2 == 0, 0.55, 1.0)
    amps = k ** (-slope) * formant * parity
    amps = amps / amps.sum(-1, keepdim=True) * (0.5 * env[:, None] ** 1.5)
    bands = torch.linspace(0, sample_rate / 2, 65)
    breath = (0.004 * env[:, None] * torch.sigmoid((bands - 2000.0) / 300.0))
    synth = HarmonicNoiseSynth(sample_rate, hop)
    n = round(seconds * sample_rate)
    y = synth(f0[None], amps[None], breath[None], n_samples=n,
              generator=torch.Generator().manual_seed(seed + 1))[0]
    if reverb:
        t = torch.arange(int(0.3 * sample_rate)) / sample_rate
        ir = 0.04 * torch.randn(t.numel(), generator=g) * torch.exp(-6.9 * t / 0.3)
        ir[0] = 0.0
        y = y + fft_convolve(y[None], ir)[0]
    return y * (0.7 / y.abs().max().clamp_min(1e-6))


def synth_source_melody(
    seconds: float, *, sample_rate: int = 22_050, seed: int = 100
) -> Tensor:
    """A different source for transfer tests: a band-limited square-wave lead (MIDI 57-74) with
    sharp attacks, tremolo and its own melody, at another sample rate. Returns ``(T,)``."""
    from diffdsp.functional.oscillators import square
    from diffdsp.train.timbre import frames_to_samples

    g = torch.Generator().manual_seed(seed)
    fr = 250
    midi, env = _melody_frames(seconds, fr, g, midi_range=(57, 74), rest_prob=0.2,
                               dur_range=(0.15, 0.5))
    t = torch.arange(midi.numel()) / fr
    env = env * (1.0 + 0.3 * torch.sin(2 * math.pi * 4.0 * t))
    n = round(seconds * sample_rate)
    ctrl = torch.stack([440.0 * 2.0 ** ((midi - 69.0) / 12.0), env], -1)
    up = frames_to_samples(ctrl, n, max(1, round(sample_rate / fr)))
    y = square(up[:, 0], sample_rate=sample_rate) * up[:, 1]
    return y * (0.5 / y.abs().max().clamp_min(1e-6))


# ----------------------------------------------------------------------------------------------
# Metrics


def _corr(a: Tensor, b: Tensor) -> float:
    a = a.double() - a.double().mean()
    b = b.double() - b.double().mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 else float("nan")


def pipeline_metrics(
    reference: Tensor, output: Tensor, config: Any, *, pitch_shift: float = 0.0
) -> dict[str, Any]:
    """f0 and loudness agreement of ``output`` with ``reference`` (both ``(T,)`` at the model rate).

    Args:
        reference: the input (its f0 shifted by ``pitch_shift`` semitones is the target).
        output: the synthesised audio.
        config: a :class:`diffdsp.train.timbre.TimbreConfig` (rates, f0 range, voicing).
        pitch_shift: semitones applied to the input's f0.

    Returns:
        ``{"f0_within_20_cents_pct", "f0_within_50_cents_pct", "f0_error_cents_median",
        "judged_frames", "loudness_corr", "voiced_pct"}`` (NaN where nothing is judged).
    """
    from diffdsp._numerics import cents
    from diffdsp.train.timbre import compute_features

    fin = compute_features(reference[None], config)
    fout = compute_features(output[None], config)
    ld_in = fin["loudness_db"][0]
    ld_out = fout["loudness_db"][0]
    loud = (ld_in > SILENCE_DB) & (ld_in > ld_in.max() - RANGE_DB)
    voiced = fin["voiced"][0] & loud
    target = fin["f0_hz"][0] * 2.0 ** (pitch_shift / 12.0)
    err = cents(fout["f0_hz"][0], target).abs()[voiced]
    n = int(voiced.sum())
    nan = float("nan")
    return {
        "f0_within_20_cents_pct": 100.0 * float((err <= 20).double().mean()) if n else nan,
        "f0_within_50_cents_pct": 100.0 * float((err <= 50).double().mean()) if n else nan,
        "f0_error_cents_median": float(err.median()) if n else nan,
        "judged_frames": n,
        "voiced_pct": 100.0 * float(voiced.double().sum() / loud.double().sum().clamp_min(1)),
        "loudness_corr": _corr(ld_in[loud], ld_out[loud]) if int(loud.sum()) > 2 else nan,
    }


def _input_warnings(audio: Tensor, features: Mapping[str, Tensor], config: Any) -> list[str]:
    """Plain-language warnings about silence, noise or polyphony in ``audio`` ``(1, T)``.

    Heuristics (documented limits, not a classifier): silent when the loudness never exceeds
    -90 dB; unvoiced (noise, percussion) when fewer than 30 % of the non-silent frames are
    voiced; possibly polyphonic when the voiced frames' median YIN confidence is below 0.9, or
    when on most voiced frames the first two harmonics of the detected f0 are 30 dB below its
    strongest one (the f0 is a common subharmonic of a chord's notes).
    """
    from diffdsp.train.timbre import analyse_harmonics

    ld = features["loudness_db"][0]
    if float(ld.max()) <= SILENCE_DB:
        return ["input is silent: the output is silence-level synthesis, not a transfer"]
    loud = (ld > SILENCE_DB) & (ld > ld.max() - RANGE_DB)
    voiced = features["voiced"][0] & loud
    frac = float(voiced.double().sum() / loud.double().sum().clamp_min(1))
    if frac < 0.3:
        return [f"input is mostly unvoiced ({100 * frac:.0f}% voiced frames): noise or "
                "percussion has no pitch to transfer"]
    conf = float(features["confidence"][0][voiced].median())
    amps = analyse_harmonics(audio, features["f0_hz"], features["voiced"], config)
    a = amps["harmonic_amplitudes"][0][voiced]
    low = a[:, :2].max(-1).values / a.max(-1).values.clamp_min(1e-12)
    sub = float((low < 10.0 ** (-30.0 / 20.0)).double().mean())
    if conf < 0.9 or sub > 0.5:
        return [f"the input may be polyphonic (median f0 confidence {conf:.2f}, f0 below the "
                f"lowest partials on {100 * sub:.0f}% of voiced frames): DDSP transfer assumes "
                "one monophonic source"]
    return []


# ----------------------------------------------------------------------------------------------
# Loading


MAX_RENDER_S = 120.0  # transfer/resynth render in one pass: longer inputs are refused


def _load_mono(path: PathLike, sample_rate: int, max_seconds: float | None = None
               ) -> tuple[Tensor, int, int, list[str]]:
    """Audio mixed to mono and resampled.

    Returns ``(x (T,), original rate, original length, notes)``; ``notes`` says what was done to
    the input (mono mix, resampling), for ``result.json``.
    """
    audio, sr = load_audio(path, max_seconds=max_seconds)
    notes = [f"{audio.shape[0]} channels mixed to mono"] if audio.shape[0] > 1 else []
    if sr != sample_rate:
        notes.append(f"processed at {sample_rate} Hz (resampled from {sr} Hz); output.wav at "
                     f"{sr} Hz")
    mono = audio.mean(0)
    x = resample(mono, sr, sample_rate) if sr != sample_rate else mono
    return x, sr, audio.shape[-1], notes


def _audio_files(audio_dir: PathLike) -> list[Path]:
    p = Path(audio_dir).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise InputError(f"{p}: no such folder or file")
    files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
    if not files:
        raise InputError(f"{p}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in the folder")
    return files


def _plots(out: Path, x_in: Tensor, y_out: Tensor, sr: int, config: Any, *, prefix: str = "",
           labels: tuple[str, str] = ("input", "output"), pitch_shift: float = 0.0
           ) -> list[str]:
    """Spectrograms (input vs output) and f0 / loudness curves; returns the file names."""
    from diffdsp.report.plots import line_plot, spectrograms
    from diffdsp.train.timbre import compute_features

    names = [f"{prefix}spectrograms.png", f"{prefix}f0.png", f"{prefix}loudness.png"]
    spectrograms(out / names[0], {labels[0]: x_in, labels[1]: y_out}, sr,
                 n_fft=1024, title="log-magnitude spectrograms")
    fin = compute_features(x_in[None], config)
    fout = compute_features(y_out[None], config)
    t = torch.arange(fin["f0_hz"].shape[-1]) / config.frame_rate
    nan = torch.tensor(float("nan"))
    f_in = torch.where(fin["voiced"][0], fin["f0_hz"][0] * 2 ** (pitch_shift / 12), nan)
    f_out = torch.where(fout["voiced"][0], fout["f0_hz"][0], nan)
    target = f"{labels[0]} (x 2^({pitch_shift:g}/12))" if pitch_shift else labels[0]
    line_plot(out / names[1], t, {target: f_in, labels[1]: f_out}, xlabel="time (s)",
              ylabel="f0 (Hz, voiced frames)", title="fundamental frequency (YIN)",
              styles={labels[1]: "--"})
    line_plot(out / names[2], t, {labels[0]: fin["loudness_db"][0],
                                  labels[1]: fout["loudness_db"][0]},
              xlabel="time (s)", ylabel="A-weighted loudness (dB)", title="loudness",
              styles={labels[1]: "--"})
    return names


# ----------------------------------------------------------------------------------------------
# Train


def _split(x: Tensor, holdout: float, min_len: int, sample_rate: int) -> tuple[Tensor, Tensor]:
    n_val = round(x.numel() * holdout)
    if x.numel() - n_val < min_len or n_val < min_len:
        # holdout < 0.5, so the held-out part is the one that must reach a crop
        need = math.ceil(min_len / holdout)
        raise InputError(
            f"training audio too short: {x.numel() / sample_rate:.1f} s at {sample_rate} Hz; "
            f"the held-out {holdout:.0%} and the rest must each hold a "
            f"{min_len / sample_rate:.1f} s crop, so at least {need / sample_rate:.1f} s is needed"
        )
    return x[: x.numel() - n_val], x[x.numel() - n_val :]


@torch.no_grad()
def _crop_loss(model: Any, audio: Tensor, feats: Mapping[str, Tensor], config: Any,
               chunk: int, n_crops: int, seed: int) -> float:
    """Mean MR-STFT loss over ``n_crops`` evenly spaced crops of ``chunk`` samples."""
    from diffdsp.losses.spectral import MultiResolutionSTFTLoss

    loss_fn = MultiResolutionSTFTLoss.ddsp()
    hop = config.hop
    max_start = (audio.numel() - chunk) // hop
    starts = torch.linspace(0, max_start, n_crops).round().long().tolist()
    cf = chunk // hop
    xs = torch.stack([audio[s * hop : s * hop + chunk] for s in starts])
    f0 = torch.stack([feats["f0_filled_hz"][0, s : s + cf + 1] for s in starts])
    ld = torch.stack([feats["loudness_db"][0, s : s + cf + 1] for s in starts])
    y = model(f0, ld, n_samples=chunk, audio=xs, generator=torch.Generator().manual_seed(seed))
    return float(loss_fn(y, xs))


def _render(model: Any, feats: Mapping[str, Tensor], n: int, audio: Tensor | None, seed: int,
            *, pitch_shift: float = 0.0, loudness_shift_db: float = 0.0) -> Tensor:
    with torch.no_grad():
        f0 = feats["f0_filled_hz"] * 2.0 ** (pitch_shift / 12.0)
        ld = feats["loudness_db"] + loudness_shift_db
        y = model(f0, ld, n_samples=n, audio=None if audio is None else audio[None],
                  generator=torch.Generator().manual_seed(seed))
    return y[0]


def train(
    audio_dir: PathLike,
    out_dir: PathLike,
    *,
    steps: int = 3000,
    time_budget_s: float | None = None,
    batch_size: int = 8,
    chunk_s: float = 1.0,
    holdout: float = 0.2,
    learning_rate: float = 3e-3,
    config: Mapping[str, Any] | None = None,
    devices: int = 1,
    strategy: str = "auto",
    device: str = "cpu",
    seed: int = 0,
    progress: Progress | None = None,
) -> TaskResult:
    """Train a DDSP timbre model on a folder of one monophonic instrument.

    Args:
        audio_dir: folder of audio files (or one file); all are mixed to mono, resampled to the
            model rate and concatenated; the last ``holdout`` fraction is held out.
        out_dir: output folder.
        steps: optimiser steps.
        time_budget_s: stop training after this many seconds.
        batch_size: crops per step (per process).
        chunk_s: crop length in seconds.
        holdout: held-out fraction (0 < holdout < 0.5).
        learning_rate: Adam learning rate.
        config: :class:`diffdsp.train.timbre.TimbreConfig` overrides (``hidden_size``, ...).
        devices: Lightning processes/devices (``strategy="ddp"`` for several).
        strategy: Lightning strategy.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        seed: random seed.
        progress: progress callback.

    Returns:
        TaskResult; ``result["metrics"]["after"]`` holds ``train_mrstft``, ``heldout_mrstft``,
        ``heldout_over_train`` and the held-out resynthesis f0/loudness metrics.
    """
    from diffdsp.report import Section, write_report
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.report.plots import loss_curve
    from diffdsp.train.timbre import (
        TimbreConfig,
        TimbreDataset,
        TimbreLightning,
        compute_features,
        save_checkpoint,
        train_model,
    )

    check_int(steps, "steps", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_int(devices, "devices", minimum=1)
    if not 0.0 < holdout < 0.5:
        raise InputError(f"holdout must be in (0, 0.5), got {holdout}")
    if time_budget_s is not None and time_budget_s <= 0:
        raise InputError(f"time_budget_s must be > 0, got {time_budget_s}")
    files = _audio_files(audio_dir)
    out = prepare_out_dir(out_dir, files)
    dev = resolve_device(device)
    seed_all(seed)
    base = TimbreConfig(**dict(config or {}))
    audio = torch.cat([_load_mono(f, base.sample_rate)[0] for f in files])
    chunk = max(2, round(chunk_s * base.frame_rate)) * base.hop
    tr_audio, va_audio = _split(audio, holdout, chunk, base.sample_rate)
    ftr = compute_features(tr_audio[None], base)
    fva = compute_features(va_audio[None], base)
    ld = ftr["loudness_db"][0]
    active = ld[ld > SILENCE_DB]
    if active.numel() < 10:
        raise InputError(f"{audio_dir}: the training audio is silent")
    voiced_ld = ld[ftr["voiced"][0] & (ld > SILENCE_DB)]
    cfg = TimbreConfig(**{**base.to_dict(), "loudness_mean_db": float(active.mean()),
                          "loudness_std_db": max(float(active.std()), 1.0)})
    module = TimbreLightning(cfg, learning_rate=learning_rate)
    data = TimbreDataset(tr_audio, ftr, cfg, chunk_s=chunk / cfg.sample_rate,
                         n_items=steps * batch_size * devices, seed=seed)
    t0 = time.perf_counter()
    trainer = train_model(module, data, max_steps=steps, time_budget_s=time_budget_s,
                          batch_size=batch_size, accelerator="gpu" if dev.type == "cuda" else "cpu",
                          devices=devices, strategy=strategy, progress=progress, seed=seed)
    seconds = time.perf_counter() - t0
    if not trainer.is_global_zero:  # other DDP ranks write nothing
        return TaskResult(task="train timbre", out_dir=out, result={})
    model = module.model.cpu().eval()
    n_crops = 16
    train_loss = _crop_loss(model, tr_audio, ftr, cfg, chunk, n_crops, seed)
    heldout_loss = _crop_loss(model, va_audio, fva, cfg, chunk, n_crops, seed)
    y_va = _render(model, fva, va_audio.numel(), va_audio, seed)
    metrics = pipeline_metrics(va_audio, y_va, cfg)
    metrics.update({"train_mrstft": train_loss, "heldout_mrstft": heldout_loss,
                    "heldout_over_train": heldout_loss / max(train_loss, 1e-12)})
    fit = {"steps": int(trainer.global_step), "seconds": round(seconds, 2),
           "final_loss": module.train_losses[-1] if module.train_losses else float("nan"),
           "converged": int(trainer.global_step) >= steps}
    extra = {"train_seconds_audio": tr_audio.numel() / cfg.sample_rate,
             "heldout_seconds_audio": va_audio.numel() / cfg.sample_rate,
             "loudness_voiced_mean_db": float(voiced_ld.mean()) if voiced_ld.numel()
             else float(active.mean()),
             "f0_voiced_median_hz": float(ftr["f0_hz"][0][ftr["voiced"][0]].median())
             if bool(ftr["voiced"].any()) else float("nan"),
             "metrics": metrics, "fit": fit}
    save_checkpoint(out / "model.pt", model, extra=extra)
    save_audio(out / "heldout_input.wav", va_audio[None], cfg.sample_rate)
    save_audio(out / "heldout_resynth.wav", y_va[None], cfg.sample_rate)
    loss_curve(out / "training_loss.png", {"train MR-STFT": module.train_losses},
               title="training loss (per step, rank 0)")
    names = _plots(out, va_audio, y_va, cfg.sample_rate, cfg, prefix="heldout_",
                   labels=("held-out input", "resynthesis"))
    files_out = ["model.pt", "heldout_input.wav", "heldout_resynth.wav", "training_loss.png",
                 *names, "report.html"]
    section = Section(
        title="DDSP timbre model (training)",
        text=f"Trained on {extra['train_seconds_audio']:.1f} s of audio for {fit['steps']} steps "
        f"({fit['seconds']:.0f} s); held-out resynthesis from its own f0 and loudness.",
        metrics=metrics,
        images=[("training_loss.png", "training loss"), (names[0], "held-out vs resynthesis"),
                (names[1], "f0"), (names[2], "loudness")],
        audio=[("held-out input", "heldout_input.wav"),
               ("resynthesis", "heldout_resynth.wav")],
        details={"config": cfg.to_dict()},
    )
    write_report(out, "diffdsp train timbre", [section])
    settings = {"steps": steps, "time_budget_s": time_budget_s, "batch_size": batch_size,
                "chunk_s": chunk / cfg.sample_rate, "holdout": holdout,
                "learning_rate": learning_rate, "devices": devices, "strategy": strategy,
                "device": str(dev), "config": cfg.to_dict()}
    result = write_result_json(out, task="train timbre", inputs=files, settings=settings,
                               metrics_after=metrics, fit=fit, seed=seed, files=files_out,
                               extra={"training": {k: extra[k] for k in (
                                   "train_seconds_audio", "heldout_seconds_audio")}})
    return TaskResult(task="train timbre", out_dir=out, result=result,
                      files=sorted({*files_out, "result.json"}), sections=[section])


# ----------------------------------------------------------------------------------------------
# Transfer and resynthesis


def transfer(
    input_path: PathLike,
    model_path: PathLike,
    out_dir: PathLike,
    *,
    pitch_shift: float = 0.0,
    loudness_shift_db: float = 0.0,
    auto_loudness: bool = True,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
) -> TaskResult:
    """Resynthesise a monophonic input with a trained instrument's timbre (``output.wav``).

    Args:
        input_path: audio file (any rate; mixed to mono).
        model_path: checkpoint from :func:`train` (another model type/version is refused).
        out_dir: output folder.
        pitch_shift: semitones added to the input's f0.
        loudness_shift_db: dB added to the input's loudness.
        auto_loudness: first shift the input's mean voiced loudness onto the training data's
            (DDSP's loudness adjustment), so a quiet or loud source lands in the range the model
            learned.
        seed: seed of the noise source.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        progress: progress callback.

    Returns:
        TaskResult; ``result["metrics"]["after"]`` holds the f0 and loudness agreement and
        ``result["warnings"]`` says when the input is silent, unvoiced or polyphonic.
    """
    from diffdsp.report import Section, write_report
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.train.timbre import compute_features, load_checkpoint

    if not (math.isfinite(pitch_shift) and -48.0 <= pitch_shift <= 48.0):
        raise InputError(f"pitch_shift must be in [-48, 48] semitones, got {pitch_shift}")
    if not (math.isfinite(loudness_shift_db) and -60.0 <= loudness_shift_db <= 60.0):
        raise InputError(f"loudness_shift_db must be in [-60, 60] dB, got {loudness_shift_db}")
    model, meta = load_checkpoint(model_path)
    dev = resolve_device(device)
    out = prepare_out_dir(out_dir, [input_path, model_path])
    seed_all(seed)
    cfg = model.config
    x, sr_in, n_in, notes = _load_mono(input_path, cfg.sample_rate, MAX_RENDER_S)
    if progress is not None:
        progress("timbre transfer", 0, 2, float("nan"))
    feats = compute_features(x[None], cfg)
    warnings = _input_warnings(x[None], feats, cfg)
    ld = feats["loudness_db"][0]
    auto_db = 0.0
    if auto_loudness and "loudness_voiced_mean_db" in meta:
        sel = feats["voiced"][0] & (ld > SILENCE_DB) & (ld > ld.max() - RANGE_DB)
        if int(sel.sum()) > 0:
            auto_db = float(meta["loudness_voiced_mean_db"]) - float(ld[sel].mean())
    shift_db = auto_db + loudness_shift_db
    model = model.to(dev)
    feats_dev = {k: v.to(dev) for k, v in feats.items()}
    y = _render(model, feats_dev, x.numel(), x.to(dev), seed, pitch_shift=pitch_shift,
                loudness_shift_db=shift_db).cpu()
    if not bool(torch.isfinite(y).all()):  # pragma: no cover - guarded by safe maps
        raise RuntimeError("the model produced non-finite audio")
    metrics = pipeline_metrics(x, y, cfg, pitch_shift=pitch_shift)
    y_out = resample(y, cfg.sample_rate, sr_in) if sr_in != cfg.sample_rate else y
    y_out = torch.nn.functional.pad(y_out, (0, max(0, n_in - y_out.numel())))[:n_in]
    peak = float(y_out.abs().max())
    save_audio(out / "output.wav", y_out[None], sr_in)
    if progress is not None:
        progress("timbre transfer", 1, 2, float("nan"))
    names = _plots(out, x, y, cfg.sample_rate, cfg, pitch_shift=pitch_shift)
    files_out = ["output.wav", *names, "report.html"]
    before = {"voiced_pct": metrics["voiced_pct"],
              "f0_median_hz": float(feats["f0_hz"][0][feats["voiced"][0]].median())
              if bool(feats["voiced"].any()) else float("nan"),
              "loudness_max_db": float(ld.max())}
    metrics["output_peak"] = peak
    section = Section(
        title="DDSP timbre transfer",
        text=f"f0 (shifted {pitch_shift:g} semitones) and loudness (shifted {shift_db:.1f} dB) of "
        "the input drive the trained instrument model." + (" Warning: " + "; ".join(warnings)
                                                           if warnings else ""),
        metrics={"before": before, "after": metrics},
        images=[(names[0], "input vs output"), (names[1], "f0"), (names[2], "loudness")],
        audio=[("output", "output.wav")],
    )
    write_report(out, "diffdsp timbre", [section])
    settings = {"model": str(model_path), "pitch_shift_semitones": pitch_shift,
                "loudness_shift_db": loudness_shift_db, "auto_loudness": auto_loudness,
                "auto_loudness_shift_db": auto_db, "model_sample_rate": cfg.sample_rate,
                "device": str(dev)}
    result = write_result_json(out, task="timbre", inputs=[input_path], settings=settings,
                               metrics_before=before, metrics_after=metrics, fit=None, seed=seed,
                               files=files_out, extra={"warnings": warnings, "notes": notes})
    if progress is not None:
        progress("timbre transfer", 2, 2, float("nan"))
    return TaskResult(task="timbre", out_dir=out, result=result,
                      files=sorted({*files_out, "result.json"}), sections=[section])


def resynth(
    input_path: PathLike,
    out_dir: PathLike,
    *,
    sample_rate: int = 16_000,
    n_harmonics: int = 60,
    seed: int = 0,
    progress: Progress | None = None,
) -> TaskResult:
    """Analysis -> harmonic-plus-noise synthesis with no network (checks the pipeline).

    f0 (YIN), harmonic amplitudes (STFT at ``k f0``) and noise band magnitudes measured on the
    input drive :class:`diffdsp.train.timbre.HarmonicNoiseSynth` directly.

    Args:
        input_path: audio file (mixed to mono).
        out_dir: output folder.
        sample_rate: synthesis rate in Hz.
        n_harmonics: harmonics of the oscillator bank.
        seed: seed of the noise source.
        progress: progress callback.

    Returns:
        TaskResult with ``output.wav`` (input rate and length) and its f0/loudness metrics.
    """
    from diffdsp.losses.spectral import MultiResolutionSTFTLoss
    from diffdsp.report import Section, write_report
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.train.timbre import (
        HarmonicNoiseSynth,
        TimbreConfig,
        analyse_harmonics,
        compute_features,
    )

    cfg = TimbreConfig(sample_rate=sample_rate, n_harmonics=n_harmonics, reverb_s=0.0)
    out = prepare_out_dir(out_dir, [input_path])
    seed_all(seed)
    x, sr_in, n_in, notes = _load_mono(input_path, cfg.sample_rate, MAX_RENDER_S)
    feats = compute_features(x[None], cfg)
    warnings = _input_warnings(x[None], feats, cfg)
    ctrl = analyse_harmonics(x[None], feats["f0_filled_hz"], feats["voiced"], cfg)
    synth = HarmonicNoiseSynth(cfg.sample_rate, cfg.hop)
    with torch.no_grad():
        y = synth(feats["f0_filled_hz"], ctrl["harmonic_amplitudes"], ctrl["noise_magnitudes"],
                  n_samples=x.numel(), generator=torch.Generator().manual_seed(seed))[0]
    metrics = pipeline_metrics(x, y, cfg)
    metrics["mrstft"] = float(MultiResolutionSTFTLoss.ddsp()(y[None], x[None]))
    y_out = resample(y, cfg.sample_rate, sr_in) if sr_in != cfg.sample_rate else y
    y_out = torch.nn.functional.pad(y_out, (0, max(0, n_in - y_out.numel())))[:n_in]
    save_audio(out / "output.wav", y_out[None], sr_in)
    names = _plots(out, x, y, cfg.sample_rate, cfg)
    files_out = ["output.wav", *names, "report.html"]
    section = Section(title="Harmonic-plus-noise resynthesis (no network)",
                      text="Measured f0, harmonic amplitudes and noise bands drive the synth.",
                      metrics=metrics,
                      images=[(names[0], "input vs output"), (names[1], "f0"),
                              (names[2], "loudness")],
                      audio=[("output", "output.wav")])
    write_report(out, "diffdsp resynth", [section])
    result = write_result_json(out, task="resynth", inputs=[input_path],
                               settings={"sample_rate": sample_rate, "n_harmonics": n_harmonics},
                               metrics_after=metrics, seed=seed, files=files_out,
                               extra={"warnings": warnings, "notes": notes})
    return TaskResult(task="resynth", out_dir=out, result=result,
                      files=sorted({*files_out, "result.json"}), sections=[section])


# ----------------------------------------------------------------------------------------------
# Demo


def demo(out_dir: Path, *, quick: bool, seed: int, progress: Progress | None) -> TaskResult:
    """Train on the built-in synthetic instrument, then transfer a square-wave melody to it."""
    out = prepare_out_dir(out_dir)
    data_dir = out / "instrument"
    seconds = 4.0 if quick else 40.0
    save_audio(data_dir / "instrument.wav", synth_instrument(seconds, seed=seed)[None], 16_000)
    res_train = train(data_dir, out / "model", steps=4 if quick else 300,
                      time_budget_s=None if quick else 240.0, batch_size=2 if quick else 8,
                      chunk_s=0.25 if quick else 1.0,
                      config={"hidden_size": 16 if quick else 128,
                              "n_harmonics": 16 if quick else 60}, seed=seed,
                      progress=progress)
    src = synth_source_melody(2.0 if quick else 8.0, seed=seed + 100)
    save_audio(out / "source.wav", src[None], 22_050)
    res = transfer(out / "source.wav", out / "model" / "model.pt", out / "transfer", seed=seed,
                   progress=progress)
    sections: list[Any] = []
    for sub, r in (("model", res_train), ("transfer", res)):
        for s in r.sections:
            s.images = [(f"{sub}/{p}", c) for p, c in s.images]
            s.audio = [(label, f"{sub}/{p}") for label, p in s.audio]
            sections.append(s)
    sections[-1].audio.insert(0, ("source (square-wave lead)", "source.wav"))
    files = ["instrument/instrument.wav", "source.wav",
             *(f"model/{f}" for f in res_train.files), *(f"transfer/{f}" for f in res.files)]
    result = {"task": "timbre", "metrics": {"train": res_train.result["metrics"]["after"],
                                            "transfer": res.result["metrics"]["after"]}}
    return TaskResult(task="timbre", out_dir=out, result=result, files=files, sections=sections)
