"""DDSP timbre model: f0 + loudness -> decoder -> harmonic-plus-noise synth -> learnable reverb.

The decoder of Engel et al. (2020) maps frame-rate controls (fundamental frequency and A-weighted
loudness, optionally a latent ``z`` from MFCCs) through per-input MLPs, a GRU and an output MLP to
the controls of a spectral-modelling synthesiser:

* a global harmonic amplitude ``A`` and a normalised harmonic distribution ``alpha_k``
  (``sum_k alpha_k = 1``; harmonics at or above Nyquist are removed before normalising), rendered
  by :func:`diffdsp.functional.oscillators.harmonic_bank` (review eq. 9);
* the magnitudes of a linear-phase time-varying FIR filter applied to white noise (LTV-FIR,
  window design by frequency sampling), overlap-added block by block;
* a learnable reverb impulse response added to the dry signal by FFT convolution.

Everything is differentiable and trained end to end with the multi-resolution STFT loss
(:meth:`diffdsp.losses.spectral.MultiResolutionSTFTLoss.ddsp`). The model is small (about 0.3 M
parameters with the default sizes) so that a minute of audio trains on two CPU cores in minutes;
:class:`TimbreLightning` wraps it for Lightning (DDP-ready: no state outside parameters and
buffers, deterministic per-index data crops so that a ``DistributedSampler`` shards them).

Nothing here needs Lightning except :class:`TimbreLightning` and :func:`train_model`; the
inference path (:class:`TimbreModel`, :func:`load_checkpoint`) needs only torch.

References:
    Engel, Hantrakul, Gu & Roberts, "DDSP: Differentiable Digital Signal Processing", ICLR 2020
    (Sec. 3, decoder Fig. 2 and appendix B; harmonic oscillator, filtered noise, reverb).
    Hayes et al., "A review of differentiable digital signal processing for music and speech
    synthesis", Frontiers 2023, Sec. 2.1.2 (timbre transfer) and eq. 9.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffdsp._numerics import hz_to_midi, power_to_db, safe_divide
from diffdsp._validation import InputError, check_int, check_sample_rate, check_tensor
from diffdsp.functional.oscillators import filtered_noise, frames_to_samples, harmonic_synth
from diffdsp.params import exp_sigmoid
from diffdsp.synth.harmonic import HarmonicNoiseSynth, LearnableReverb
from diffdsp.synth.harmonic import fft_convolve as fft_convolve  # re-export (tasks.timbre)

if TYPE_CHECKING:  # Lightning is an optional extra ([train]); only the trainer needs it
    from lightning import LightningModule as _LightningBase
else:
    try:
        from lightning import LightningModule as _LightningBase
    except ImportError:  # pragma: no cover - depends on extras
        _LightningBase = nn.Module

__all__ = [
    "MODEL_TYPE",
    "MODEL_VERSION",
    "DDSPDecoder",
    "HarmonicNoiseSynth",
    "LearnableReverb",
    "MFCCEncoder",
    "TimbreConfig",
    "TimbreDataset",
    "TimbreLightning",
    "TimbreModel",
    "a_weighted_loudness_db",
    "analyse_harmonics",
    "compute_features",
    "filtered_noise",
    "frames_to_samples",
    "harmonic_synth",
    "load_checkpoint",
    "save_checkpoint",
    "train_model",
]

#: Checkpoint identity: a checkpoint of another type or version is refused with one line.
MODEL_TYPE = "diffdsp.timbre.ddsp"
MODEL_VERSION = 1


@dataclass
class TimbreConfig:
    """Sizes and rates of a :class:`TimbreModel` (stored in the checkpoint).

    Attributes:
        sample_rate: synthesis rate in Hz (inputs are resampled to it).
        frame_rate: control rate in Hz; ``sample_rate`` must be a multiple of it.
        n_harmonics: number of harmonics of the oscillator bank.
        n_noise_bands: magnitudes of the noise filter (linearly spaced from 0 to Nyquist).
        hidden_size: width of the MLPs and the GRU.
        reverb_s: length of the learnable reverb impulse response in seconds (0 disables it).
        use_z: add an MFCC -> GRU latent ``z`` encoder (Engel et al.'s autoencoder variant).
        z_dim: size of ``z``.
        n_mfcc: number of MFCCs fed to the encoder.
        loudness_mean_db: mean A-weighted loudness of the training data (input normalisation).
        loudness_std_db: its standard deviation.
        f0_min_hz: lowest f0 the feature extractor searches.
        f0_max_hz: highest f0 the feature extractor searches.
        voicing_threshold: f0 confidence above which a frame counts as voiced.
    """

    sample_rate: int = 16_000
    frame_rate: int = 250
    n_harmonics: int = 60
    n_noise_bands: int = 65
    hidden_size: int = 128
    reverb_s: float = 0.25
    use_z: bool = False
    z_dim: int = 16
    n_mfcc: int = 30
    loudness_mean_db: float = -40.0
    loudness_std_db: float = 15.0
    f0_min_hz: float = 50.0
    f0_max_hz: float = 1600.0
    voicing_threshold: float = 0.5

    def __post_init__(self) -> None:
        sr = check_sample_rate(self.sample_rate)
        fr = check_int(self.frame_rate, "frame_rate", minimum=1)
        if sr % fr:
            raise InputError(
                f"sample_rate must be a multiple of frame_rate, got {sr} and {fr}"
            )
        check_int(self.n_harmonics, "n_harmonics", minimum=1)
        check_int(self.n_noise_bands, "n_noise_bands", minimum=2)
        check_int(self.hidden_size, "hidden_size", minimum=1)
        if not (0.0 <= self.reverb_s <= 10.0):
            raise InputError(f"reverb_s must be in [0, 10] s, got {self.reverb_s}")
        if not (0.0 < self.f0_min_hz < self.f0_max_hz < sr / 2):
            raise InputError(
                f"f0 range must satisfy 0 < f0_min_hz < f0_max_hz < {sr / 2}, got "
                f"({self.f0_min_hz}, {self.f0_max_hz})"
            )

    @property
    def hop(self) -> int:
        """Samples per control frame."""
        return self.sample_rate // self.frame_rate

    def n_frames(self, n_samples: int) -> int:
        """Control frames covering ``n_samples`` samples (frame ``i`` is centred on ``i * hop``)."""
        return -(-n_samples // self.hop) + 1

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON and ``torch.load(weights_only=True)`` friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TimbreConfig:
        """Rebuild from :meth:`to_dict` (unknown keys are refused)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError(f"unknown timbre config keys {sorted(unknown)}")
        return cls(**dict(d))


# ----------------------------------------------------------------------------------------------
# Synthesis pieces


# moved to diffdsp.functional.oscillators (frames_to_samples, harmonic_synth,
# filtered_noise) and diffdsp.synth.harmonic (fft_convolve, LearnableReverb, HarmonicNoiseSynth);
# imported above and re-exported here.


# ----------------------------------------------------------------------------------------------
# Networks


def _mlp(n_in: int, hidden: int, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.LayerNorm(hidden),
                 nn.LeakyReLU()]
    return nn.Sequential(*mods)


def _dct_matrix(n_in: int, n_out: int) -> Tensor:
    k = torch.arange(n_out, dtype=torch.float64).unsqueeze(1)
    n = torch.arange(n_in, dtype=torch.float64).unsqueeze(0)
    m = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m.T.to(torch.float32)  # (n_in, n_out), orthonormal DCT-II


class MFCCEncoder(nn.Module):
    """Latent ``z`` per frame: MFCCs -> instance norm -> GRU -> linear (Engel et al.'s encoder).

    Args:
        config: model configuration (``n_mfcc``, ``z_dim``, ``hidden_size``, rates).
    """

    dct: Tensor

    def __init__(self, config: TimbreConfig) -> None:
        super().__init__()
        self.config = config
        self.n_fft = 1024
        self.n_mels = 64
        self.register_buffer("dct", _dct_matrix(self.n_mels, config.n_mfcc), persistent=False)
        self.norm = nn.InstanceNorm1d(config.n_mfcc, affine=True)
        self.gru = nn.GRU(config.n_mfcc, config.hidden_size, batch_first=True)
        self.out = nn.Linear(config.hidden_size, config.z_dim)

    def forward(self, audio: Tensor, n_frames: int) -> Tensor:
        """``z`` of shape ``(B, n_frames, z_dim)`` from audio ``(B, T)``."""
        from diffdsp.functional.analysis import mel_spectrogram

        cfg = self.config
        mel = mel_spectrogram(audio, sample_rate=cfg.sample_rate, n_fft=self.n_fft,
                              hop_length=cfg.hop, n_mels=self.n_mels, power=2.0)
        mfcc = power_to_db(mel) @ self.dct.to(mel.dtype)  # (B, frames, n_mfcc)
        if mfcc.shape[1] < n_frames:
            mfcc = torch.cat([mfcc, mfcc[:, -1:].expand(-1, n_frames - mfcc.shape[1], -1)], 1)
        mfcc = mfcc[:, :n_frames]
        h, _ = self.gru(self.norm(mfcc.transpose(1, 2)).transpose(1, 2))
        return self.out(h)


class DDSPDecoder(nn.Module):
    """DDSP decoder: (f0, loudness[, z]) -> MLPs -> GRU -> MLP -> synthesiser controls.

    Outputs (all positive through :func:`diffdsp.params.exp_sigmoid`): the harmonic amplitudes
    ``A alpha_k`` with ``alpha`` normalised over the harmonics below Nyquist, and the noise filter
    magnitudes (output bias -5, so training starts mostly harmonic, as in DDSP).

    Args:
        config: model configuration.

    References:
        Engel et al., ICLR 2020, Fig. 2 and appendix B.
    """

    harmonic_numbers: Tensor

    def __init__(self, config: TimbreConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden_size
        self.f0_mlp = _mlp(1, h)
        self.ld_mlp = _mlp(1, h)
        n_in = 2 * h
        self.z_mlp: nn.Module | None = None
        if config.use_z:
            self.z_mlp = _mlp(config.z_dim, h)
            n_in += h
        self.gru = nn.GRU(n_in, h, batch_first=True)
        self.out_mlp = _mlp(h + n_in, h, layers=3)
        self.dense = nn.Linear(h, 1 + config.n_harmonics + config.n_noise_bands)
        k = torch.arange(1, config.n_harmonics + 1, dtype=torch.float32)
        self.register_buffer("harmonic_numbers", k, persistent=False)

    def forward(
        self, f0_hz: Tensor, loudness_db: Tensor, z: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Controls from ``f0_hz`` and ``loudness_db`` ``(B, F)`` (and ``z`` ``(B, F, z_dim)``).

        Returns:
            ``{"harmonic_amplitudes": (B, F, K), "noise_magnitudes": (B, F, N),
            "amplitude": (B, F), "harmonic_distribution": (B, F, K)}``.
        """
        cfg = self.config
        f0_in = (hz_to_midi(f0_hz.clamp_min(1.0)) / 127.0).unsqueeze(-1)
        ld_in = ((loudness_db - cfg.loudness_mean_db) / cfg.loudness_std_db).unsqueeze(-1)
        feats = [self.f0_mlp(f0_in), self.ld_mlp(ld_in)]
        if self.z_mlp is not None:
            if z is None:
                raise InputError("this model was trained with a z encoder: z is required")
            feats.append(self.z_mlp(z))
        x = torch.cat(feats, dim=-1)
        h, _ = self.gru(x)
        raw = self.dense(self.out_mlp(torch.cat([h, x], dim=-1)))
        k = cfg.n_harmonics
        amplitude = exp_sigmoid(raw[..., 0])
        dist = exp_sigmoid(raw[..., 1 : k + 1])
        below = (f0_hz.detach().unsqueeze(-1) * self.harmonic_numbers.to(f0_hz.dtype)
                 < cfg.sample_rate / 2).to(dist.dtype)
        dist = dist * below
        dist = safe_divide(dist, dist.sum(-1, keepdim=True))
        noise = exp_sigmoid(raw[..., k + 1 :] - 5.0)
        return {
            "amplitude": amplitude,
            "harmonic_distribution": dist,
            "harmonic_amplitudes": amplitude.unsqueeze(-1) * dist,
            "noise_magnitudes": noise,
        }


class TimbreModel(nn.Module):
    """The whole DDSP model: decoder (+ optional z encoder), synthesiser and learnable reverb.

    Args:
        config: model configuration.

    Examples:
        >>> model = TimbreModel(TimbreConfig(hidden_size=16, n_harmonics=8, reverb_s=0.01))
        >>> f0 = torch.full((1, 26), 220.0)
        >>> ld = torch.full((1, 26), -30.0)
        >>> model(f0, ld, n_samples=1600).shape
        torch.Size([1, 1600])

    References:
        Engel et al., ICLR 2020.
    """

    def __init__(self, config: TimbreConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = MFCCEncoder(config) if config.use_z else None
        self.decoder = DDSPDecoder(config)
        self.synth = HarmonicNoiseSynth(config.sample_rate, config.hop)
        self.reverb = (LearnableReverb(config.sample_rate, config.reverb_s)
                       if config.reverb_s > 0 else None)

    def controls(
        self, f0_hz: Tensor, loudness_db: Tensor, audio: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Decoder outputs for frame-rate features ``(B, F)`` (``audio`` feeds the z encoder)."""
        z = None
        if self.encoder is not None:
            if audio is None:
                raise InputError("this model has a z encoder: pass the input audio")
            z = self.encoder(audio, f0_hz.shape[-1])
        return self.decoder(f0_hz, loudness_db, z)

    def forward(
        self,
        f0_hz: Tensor,
        loudness_db: Tensor,
        *,
        n_samples: int,
        audio: Tensor | None = None,
        generator: torch.Generator | None = None,
        return_controls: bool = False,
    ) -> Any:
        """Render ``(B, n_samples)`` audio from features ``(B, F)``."""
        check_tensor(f0_hz, "f0_hz", ndim=2)
        check_tensor(loudness_db, "loudness_db", ndim=2)
        if f0_hz.shape != loudness_db.shape:
            raise InputError(
                f"f0_hz and loudness_db must have the same shape, got {tuple(f0_hz.shape)} and "
                f"{tuple(loudness_db.shape)}"
            )
        ctrl = self.controls(f0_hz, loudness_db, audio)
        y = self.synth(f0_hz, ctrl["harmonic_amplitudes"], ctrl["noise_magnitudes"],
                       n_samples=n_samples, generator=generator)
        if self.reverb is not None:
            y = self.reverb(y)
        return (y, ctrl) if return_controls else y


# ----------------------------------------------------------------------------------------------
# Features and analysis


def _fill_unvoiced(f0_hz: Tensor, voiced: Tensor, default_hz: float) -> Tensor:
    """Replace unvoiced f0 values by linear interpolation between voiced neighbours."""
    out = f0_hz.clone()
    for b in range(f0_hz.shape[0]):  # loop over batch items only
        idx = torch.nonzero(voiced[b]).flatten()
        if idx.numel() == 0:
            out[b] = default_hz
            continue
        pos = torch.arange(f0_hz.shape[-1], dtype=torch.float64)
        import numpy as np

        out[b] = torch.from_numpy(
            np.interp(pos.numpy(), idx.double().numpy(), f0_hz[b, idx].double().cpu().numpy())
        ).to(f0_hz)
    return out


def compute_features(
    audio: Tensor, config: TimbreConfig, *, block_s: float = 20.0
) -> dict[str, Tensor]:
    """Frame-rate f0, voicing confidence and A-weighted loudness of ``(B, T)`` audio.

    Frame ``i`` is centred on sample ``i * hop``; there are ``config.n_frames(T)`` frames. Long
    signals are analysed in blocks of ``block_s`` seconds with a 2048-sample margin on each side
    (more than either analysis window reaches), so memory stays bounded and the frames equal a
    one-pass analysis.

    Args:
        audio: mono audio ``(B, T)`` at ``config.sample_rate``.
        config: model configuration (rates, f0 range, voicing threshold).
        block_s: analysis block length in seconds.

    Returns:
        ``{"f0_hz": raw f0 estimate, "f0_filled_hz": unvoiced frames interpolated from voiced
        neighbours (the model input), "confidence": in [0, 1], "voiced": bool,
        "loudness_db": A-weighted loudness}``, each ``(B, F)``.
    """
    check_tensor(audio, "audio", ndim=2)
    n, hop = audio.shape[-1], config.hop
    n_frames = config.n_frames(n)
    block = max(1, round(block_s * config.frame_rate)) * hop
    if n <= block:
        f0, conf, loud = _raw_features(audio, config)
    else:
        margin = -(-2048 // hop) * hop
        parts: list[tuple[Tensor, Tensor, Tensor]] = []
        for s0 in range(0, n, block):
            a, b = max(0, s0 - margin), min(n, s0 + block + margin)
            local = _raw_features(audio[:, a:b], config)
            j0 = (s0 - a) // hop
            j1 = j0 + block // hop if s0 + block < n else local[0].shape[-1]
            parts.append(tuple(t[:, j0:j1] for t in local))  # type: ignore[arg-type]
        f0, conf, loud = (torch.cat([p[i] for p in parts], dim=-1) for i in range(3))
    f0, conf, loud = (_fit_frames(t, n_frames) for t in (f0, conf, loud))
    voiced = (conf >= config.voicing_threshold) & (f0 > 0)
    filled = _fill_unvoiced(f0, voiced, default_hz=220.0)
    return {"f0_hz": f0, "f0_filled_hz": filled, "confidence": conf, "voiced": voiced,
            "loudness_db": loud}


def _raw_features(audio: Tensor, config: TimbreConfig) -> tuple[Tensor, Tensor, Tensor]:
    from diffdsp.functional.analysis import f0_yin

    f0, conf = f0_yin(audio, sample_rate=config.sample_rate, hop=config.hop,
                      fmin_hz=config.f0_min_hz, fmax_hz=config.f0_max_hz)
    loud = a_weighted_loudness_db(audio, sample_rate=config.sample_rate, hop=config.hop)
    return f0, conf, loud


def a_weighted_loudness_db(
    audio: Tensor, *, sample_rate: int, hop: int, window_s: float = 0.064
) -> Tensor:
    """Frame-wise A-weighted power in dB (re full scale): DDSP's loudness feature.

    ``10 log10(sum_k |X_k|^2 A_k / (n_fft / 2 * sum w^2))`` over a Hann-windowed STFT centred on
    ``i * hop``, so white noise or a 1 kHz sine read their mean square (a unit 1 kHz sine is
    about -3 dB). Silence floors at -100 dB.

    Args:
        audio: ``(..., T)``.
        sample_rate: in Hz.
        hop: samples between frames.
        window_s: analysis window in seconds (rounded to a power of two in samples).

    Returns:
        ``(..., T // hop + 1)`` loudness in dB.

    Examples:
        >>> t = torch.arange(16000) / 16000
        >>> ld = a_weighted_loudness_db(torch.sin(2 * math.pi * 1000 * t), sample_rate=16000,
        ...                             hop=64)
        >>> round(float(ld[125]))
        -3

    References:
        Engel et al., ICLR 2020 (A-weighted loudness); IEC 61672-1 (A-weighting).
    """
    from diffdsp.functional.analysis import a_weighting_db, stft_magnitude

    sr = check_sample_rate(sample_rate)
    check_tensor(audio, "audio", min_ndim=1)
    n_fft = 1 << max(6, round(math.log2(window_s * sr)))
    n_frames = audio.shape[-1] // hop + 1
    if audio.shape[-1] <= n_fft // 2:  # too short for reflect padding: zero-pad (silence)
        audio = F.pad(audio, (0, n_fft // 2 + 1 - audio.shape[-1]))
    mag = stft_magnitude(audio, n_fft=n_fft, hop_length=hop)[..., :n_frames, :]
    freqs = torch.linspace(0.0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    weight = torch.pow(10.0, a_weighting_db(freqs) / 10.0).to(mag.dtype).to(mag.device)
    window = torch.hann_window(n_fft, periodic=True, dtype=mag.dtype, device=mag.device)
    power = (mag.square() * weight).sum(-1) / (n_fft / 2 * window.square().sum())
    return power_to_db(power, 1e-10)


def _fit_frames(x: Tensor, n_frames: int) -> Tensor:
    if x.shape[-1] >= n_frames:
        return x[..., :n_frames]
    return torch.cat([x, x[..., -1:].expand(*x.shape[:-1], n_frames - x.shape[-1])], dim=-1)


def analyse_harmonics(
    audio: Tensor, f0_hz: Tensor, voiced: Tensor, config: TimbreConfig
) -> dict[str, Tensor]:
    """Harmonic amplitudes and noise magnitudes measured from audio (no network; resynthesis).

    Harmonic ``k`` of frame ``i`` is the STFT magnitude (Hann, 1024 samples at 16 kHz scaled by
    the rate) interpolated at ``k f0`` and scaled to a sinusoid amplitude; unvoiced frames get no
    harmonics. The noise magnitudes are the band medians of the spectrum scaled to the gain a
    uniform white-noise source needs to reach them.

    Args:
        audio: ``(B, T)`` at ``config.sample_rate``.
        f0_hz: ``(B, F)``.
        voiced: ``(B, F)`` bool.
        config: model configuration.

    Returns:
        ``{"harmonic_amplitudes": (B, F, K), "noise_magnitudes": (B, F, N)}``.
    """
    from diffdsp.functional.analysis import stft_magnitude

    sr, hop = config.sample_rate, config.hop
    n_fft = 1 << max(8, round(math.log2(1024 * sr / 16000)))
    window = torch.hann_window(n_fft, periodic=True, dtype=audio.dtype, device=audio.device)
    mag = stft_magnitude(audio, n_fft=n_fft, hop_length=hop)  # (B, frames, bins)
    n_frames = f0_hz.shape[-1]
    mag = _fit_frames(mag.transpose(1, 2), n_frames).transpose(1, 2)
    k = torch.arange(1, config.n_harmonics + 1, dtype=audio.dtype, device=audio.device)
    freqs = f0_hz.unsqueeze(-1) * k  # (B, F, K)
    pos = (freqs / sr * n_fft).clamp(max=n_fft // 2 - 1)
    lo = pos.floor().long()
    frac = pos - lo
    a = torch.gather(mag, -1, lo)
    b = torch.gather(mag, -1, lo + 1)
    # |X(k f0)| of a sinusoid of amplitude A with a Hann window is A sum(w) / 2; interpolation
    # between bins and the peak width bias it low by < 1.5 dB (enough for a pipeline check)
    amps = (a + (b - a) * frac) * 2.0 / window.sum()
    amps = amps * (freqs < sr / 2) * voiced.unsqueeze(-1)
    nb = config.n_noise_bands
    bins = mag.shape[-1]
    edges = torch.linspace(0, bins, nb + 1).long()
    med = torch.stack([mag[..., edges[i] : max(edges[i + 1], edges[i] + 1)].median(-1).values
                       for i in range(nb)], dim=-1)
    # E|X|^2 of white noise (variance 1/3) through gain H is H^2 sum(w^2) / 3; the median of a
    # Rayleigh magnitude is sqrt(ln 2) times its RMS
    noise = med / (math.sqrt(math.log(2.0)) * torch.sqrt(window.pow(2).sum() / 3.0))
    return {"harmonic_amplitudes": amps, "noise_magnitudes": noise}


# ----------------------------------------------------------------------------------------------
# Data


class TimbreDataset(torch.utils.data.Dataset):
    """Random crops of one long recording and its precomputed features (deterministic per index).

    Item ``i`` is the crop starting at a frame drawn from a generator seeded with ``seed + i``, so
    every process of a DDP run sees the same mapping and a ``DistributedSampler`` shards it.

    Args:
        audio: mono audio ``(T,)`` at ``config.sample_rate``.
        features: output of :func:`compute_features` for ``audio[None]`` (``(1, F)`` tensors).
        config: model configuration.
        chunk_s: crop length in seconds.
        n_items: dataset length (crops per epoch).
        seed: base seed of the crop positions.
    """

    def __init__(
        self,
        audio: Tensor,
        features: Mapping[str, Tensor],
        config: TimbreConfig,
        *,
        chunk_s: float = 1.0,
        n_items: int = 1024,
        seed: int = 0,
    ) -> None:
        check_tensor(audio, "audio", ndim=1)
        self.config = config
        self.hop = config.hop
        self.chunk_frames = max(2, round(chunk_s * config.frame_rate))
        self.chunk_samples = self.chunk_frames * self.hop
        if audio.shape[-1] < self.chunk_samples:
            raise InputError(
                f"training audio must be at least {self.chunk_samples / config.sample_rate:.2f} s "
                f"long, got {audio.shape[-1] / config.sample_rate:.2f} s"
            )
        self.audio = audio
        self.f0 = features["f0_filled_hz"][0]
        self.loudness = features["loudness_db"][0]
        self.n_items = check_int(n_items, "n_items", minimum=1)
        self.seed = int(seed)
        self.max_start = (audio.shape[-1] - self.chunk_samples) // self.hop

    def __len__(self) -> int:
        return self.n_items

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(i))
        start = int(torch.randint(0, self.max_start + 1, (1,), generator=g))
        s = start * self.hop
        frames = slice(start, start + self.chunk_frames + 1)
        return {
            "audio": self.audio[s : s + self.chunk_samples],
            "f0_hz": self.f0[frames],
            "loudness_db": self.loudness[frames],
        }


# ----------------------------------------------------------------------------------------------
# Lightning


class _RestoreThreads(torch.autograd.Function):
    """Identity whose backward re-applies torch's CPU thread count.

    The loss's numba kernels run on numba's OpenMP threading layer, which leaves the OpenMP
    runtime that torch shares with a different team size: every later torch op large enough to
    go parallel then waits for threads (the GRU backward became 5-25x slower on a loaded 2-core
    machine). ``torch.set_num_threads`` restores it; this function does so between the loss
    backward and the model backward.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        _restore_threads()
        return grad


def _restore_threads() -> None:
    torch.set_num_threads(torch.get_num_threads())


def _mrstft() -> nn.Module:
    from diffdsp.losses.spectral import MultiResolutionSTFTLoss

    return MultiResolutionSTFTLoss.ddsp()


class TimbreLightning(_LightningBase):
    """Lightning wrapper: MR-STFT training of a :class:`TimbreModel` (DDP-ready).

    Args:
        config: model configuration (a dict from :meth:`TimbreConfig.to_dict` is accepted).
        learning_rate: Adam learning rate (decayed exponentially by ``lr_decay`` per 1000 steps).
        lr_decay: decay factor per 1000 steps.
    """

    def __init__(
        self,
        config: TimbreConfig | Mapping[str, Any],
        learning_rate: float = 3e-3,
        lr_decay: float = 0.5,
    ) -> None:
        super().__init__()
        cfg = config if isinstance(config, TimbreConfig) else TimbreConfig.from_dict(config)
        self.save_hyperparameters({"config": cfg.to_dict(), "learning_rate": learning_rate,
                                   "lr_decay": lr_decay})
        self.config = cfg
        self.model = TimbreModel(cfg)
        self.loss_fn = _mrstft()
        self.learning_rate = float(learning_rate)
        self.lr_decay = float(lr_decay)
        self.train_losses: list[float] = []
        self.val_losses: list[float] = []

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, n_samples: int,
                audio: Tensor | None = None) -> Tensor:
        """Render audio from features (see :meth:`TimbreModel.forward`)."""
        return self.model(f0_hz, loudness_db, n_samples=n_samples, audio=audio)

    def _step(self, batch: Mapping[str, Tensor]) -> Tensor:
        audio = batch["audio"]
        y = self.model(batch["f0_hz"], batch["loudness_db"], n_samples=audio.shape[-1],
                       audio=audio)
        loss = self.loss_fn(_RestoreThreads.apply(y), audio)
        _restore_threads()
        return loss

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        """MR-STFT loss of one batch."""
        loss = self._step(batch)
        self.log("train_loss", loss, prog_bar=False, sync_dist=False)
        self.train_losses.append(float(loss.detach()))
        return loss

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        """MR-STFT loss of one held-out batch."""
        loss = self._step(batch)
        self.log("val_loss", loss, sync_dist=True)
        self.val_losses.append(float(loss.detach()))
        return loss

    def configure_optimizers(self) -> Any:
        """Adam with an exponential learning-rate decay per step."""
        opt = torch.optim.Adam(self.parameters(), lr=self.learning_rate)
        gamma = self.lr_decay ** (1.0 / 1000.0)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_model(
    module: TimbreLightning,
    train_data: torch.utils.data.Dataset,
    *,
    val_data: torch.utils.data.Dataset | None = None,
    max_steps: int = 2000,
    time_budget_s: float | None = None,
    batch_size: int = 8,
    accelerator: str = "cpu",
    devices: int = 1,
    strategy: str = "auto",
    progress: Callable[[str, int, int, float], None] | None = None,
    seed: int = 0,
) -> Any:
    """Train with a Lightning ``Trainer`` (DDP with ``devices > 1, strategy="ddp"``).

    Args:
        module: the Lightning module to train (trained in place).
        train_data: a :class:`TimbreDataset`.
        val_data: held-out crops (validated at the end of each epoch).
        max_steps: optimiser steps.
        time_budget_s: stop after this many seconds of training.
        batch_size: crops per step and process.
        accelerator: ``"cpu"``, ``"gpu"`` or ``"auto"``.
        devices: processes / devices.
        strategy: Lightning strategy (``"auto"``, ``"ddp"``, ...).
        progress: ``progress(stage, step, total, loss)`` (rank 0 only).
        seed: random seed (data order, noise).

    Returns:
        The ``lightning.Trainer`` (``trainer.is_global_zero`` tells the main process apart).
    """
    try:
        import lightning as L
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise ImportError("training needs lightning: pip install 'diffdsp[train]'") from exc
    from datetime import timedelta

    class _Progress(L.Callback):
        def __init__(self) -> None:
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            if progress is not None and trainer.is_global_zero:
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
                progress("train timbre", int(trainer.global_step), max_steps, float(loss))

    L.seed_everything(seed, workers=True, verbose=False)
    numba_threads = _numba_single_thread()
    loader = torch.utils.data.DataLoader(train_data, batch_size=batch_size, shuffle=True,
                                         num_workers=0, drop_last=True)
    val_loader = None
    if val_data is not None:
        val_loader = torch.utils.data.DataLoader(val_data, batch_size=batch_size, shuffle=False,
                                                 num_workers=0)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        max_steps=max_steps,
        max_epochs=-1,
        max_time=timedelta(seconds=time_budget_s) if time_budget_s else None,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if val_loader is not None else 0,
        callbacks=[_Progress()],
        gradient_clip_val=3.0,
        deterministic=False,
    )
    try:
        trainer.fit(module, loader, val_loader)
    finally:
        _numba_restore(numba_threads)
    return trainer


def _numba_single_thread() -> int | None:
    """Run numba's parallel kernels (the loss's) on one thread while training.

    After a parallel region numba's OpenMP workers keep spinning; on a shared 2-core machine they
    starve torch's own threads and every small op of the GRU backward (a few microseconds of
    work) waits milliseconds: a training step was 5-40x slower (measured 1.3 s instead of up to
    60 s per step of 8 x 1 s at load 16). Returns the previous thread count.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency
        return None
    previous = int(numba.get_num_threads())
    numba.set_num_threads(1)
    return previous


def _numba_restore(previous: int | None) -> None:
    if previous is not None:
        import numba

        numba.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(
    path: str | os.PathLike[str], model: TimbreModel, *, extra: Mapping[str, Any] | None = None
) -> Path:
    """Save ``model`` with its type, version and configuration (atomic write).

    Args:
        path: file to write (``.pt``).
        model: the trained model.
        extra: plain-data metadata (training figures, data description).

    Returns:
        The path written.
    """
    import io

    from diffdsp.io import atomic_write_bytes

    payload = {
        "model_type": MODEL_TYPE,
        "version": MODEL_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[TimbreModel, dict[str, Any]]:
    """Load a timbre checkpoint, refusing any other model type or version.

    Args:
        path: a file written by :func:`save_checkpoint`.

    Returns:
        ``(model in eval mode, extra metadata)``.

    Raises:
        InputError: missing or unreadable file, another model type or version, or a state that
            does not fit the configuration.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"{p}: checkpoint not found")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means a bad input file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: not a diffdsp checkpoint ({first[:120]})") from None
    if not isinstance(payload, dict):
        raise InputError(f"{p}: not a diffdsp timbre checkpoint (no model_type)")
    mtype = payload.get("model_type")
    version = payload.get("version")
    if mtype != MODEL_TYPE:
        raise InputError(
            f"{p}: checkpoint is of model type {mtype!r}, expected {MODEL_TYPE!r}"
        )
    if version != MODEL_VERSION:
        raise InputError(
            f"{p}: checkpoint has {MODEL_TYPE} version {version!r}, this diffdsp reads version "
            f"{MODEL_VERSION}"
        )
    try:
        config = TimbreConfig.from_dict(payload["config"])
        model = TimbreModel(config)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise InputError(f"{p}: corrupt timbre checkpoint ({type(exc).__name__})") from None
    model.eval()
    return model, dict(payload.get("extra", {}))
