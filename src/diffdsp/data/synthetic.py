"""Generated speech-like and music-like test signals (no recording needed).

One definition serves the learned style-transfer data (:mod:`diffdsp.train.style`), the
style-transfer eval (``evals/style_transfer.py``) and the demos: the same seed gives the same
signal everywhere.

Examples:
    >>> import torch
    >>> from diffdsp.data.synthetic import music_like, speech_like
    >>> g = torch.Generator().manual_seed(0)
    >>> speech_like(4000, 8000, g).shape, music_like(4000, 8000, g).shape
    (torch.Size([4000]), torch.Size([4000]))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from diffdsp._validation import check_int, check_sample_rate

__all__ = ["music_like", "speech_like"]


def speech_like(n_samples: int, sample_rate: int, generator: torch.Generator) -> Tensor:
    """A speech-like signal: glottal harmonics through per-syllable formants, noise bursts.

    Args:
        n_samples: length in samples.
        sample_rate: sample rate in Hz.
        generator: random generator.

    Returns:
        ``(n_samples,)`` float32, peak about 1.

    Examples:
        >>> x = speech_like(8000, 16000, torch.Generator().manual_seed(0))
        >>> x.shape, bool(x.abs().max() <= 1.0)
        (torch.Size([8000]), True)
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    sample_rate = check_sample_rate(sample_rate)
    g = generator

    def uni(lo: float, hi: float, *shape: int) -> Tensor:
        return lo + (hi - lo) * torch.rand(shape or (1,), generator=g, dtype=torch.float64)

    t = torch.arange(n_samples, dtype=torch.float64) / sample_rate
    f0 = uni(95, 210) * (1 + 0.08 * torch.sin(2 * math.pi * uni(0.5, 2.0) * t))
    phase = 2 * math.pi * torch.cumsum(f0 / sample_rate, 0)
    # syllables: formants and envelope per segment, silent gaps between
    formants = torch.zeros(n_samples, 3, dtype=torch.float64)
    env = torch.zeros(n_samples, dtype=torch.float64)
    noisy = torch.zeros(n_samples, dtype=torch.float64)
    pos = 0
    while pos < n_samples:
        dur = int(float(uni(0.12, 0.3)) * sample_rate)
        stop = min(n_samples, pos + dur)
        m = stop - pos
        formants[pos:stop] = torch.cat([uni(300, 900), uni(900, 2300), uni(2200, 3200)])
        k = torch.arange(m, dtype=torch.float64)
        env[pos:stop] = torch.sin(math.pi * k / max(m, 1)).clamp_min(0) ** 0.7 * uni(0.4, 1.0)
        if float(uni(0, 1)) < 0.3:
            noisy[pos:stop] = 1.0
        pos = stop + int(float(uni(0.02, 0.15)) * sample_rate)
    n_harm = int(min(60, 0.45 * sample_rate / 95))
    k = torch.arange(1, n_harm + 1, dtype=torch.float32)
    # harmonic amplitudes at a control rate of 64 samples, linearly interpolated
    ctrl = slice(None, None, 64)
    hk = f0[ctrl, None].float() * k  # (frames, K)
    bw = torch.tensor([80.0, 120.0, 160.0])
    amp = (1.0 / (1.0 + ((hk[..., None] - formants[ctrl, None, :].float()) / bw) ** 2)).sum(-1)
    amp = amp / k.sqrt() * (hk < 0.45 * sample_rate)
    amp = nn.functional.interpolate(amp.T[None], size=n_samples, mode="linear",
                                    align_corners=False)[0].T  # (T, K)
    wrapped = torch.remainder(phase, 2 * math.pi).float()
    voiced = (amp * torch.sin(wrapped[:, None] * k)).sum(-1).double()
    white = torch.randn(n_samples, generator=g, dtype=torch.float64)
    hiss = torch.diff(white, prepend=white[:1]) * 0.3 * voiced.std()
    y = (voiced + noisy * hiss) * env
    return (y / y.abs().max().clamp_min(1e-12)).float()


def music_like(n_samples: int, sample_rate: int, generator: torch.Generator) -> Tensor:
    """A music-like signal: two voices of pentatonic notes with decaying harmonic partials.

    Args:
        n_samples: length in samples.
        sample_rate: sample rate in Hz.
        generator: random generator.

    Returns:
        ``(n_samples,)`` float32, peak 1.

    Examples:
        >>> x = music_like(8000, 16000, torch.Generator().manual_seed(0))
        >>> x.shape, round(float(x.abs().max()), 3)
        (torch.Size([8000]), 1.0)
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    sample_rate = check_sample_rate(sample_rate)
    g = generator
    out = torch.zeros(n_samples, dtype=torch.float64)
    scale = (0, 2, 4, 7, 9)
    bright = 0.5 + float(torch.rand(1, generator=g))
    for voice in range(2):
        pos = 0
        while pos < n_samples:
            beat = (0.125, 0.25, 0.5)[int(torch.randint(0, 3, (1,), generator=g))]
            dur = int(beat * sample_rate * (1 + voice))
            midi = 48 + 12 * voice + scale[int(torch.randint(0, 5, (1,), generator=g))] + \
                12 * int(torch.randint(0, 2, (1,), generator=g))
            f = 440.0 * 2 ** ((midi - 69) / 12)
            m = min(dur, n_samples - pos)
            tt = torch.arange(m, dtype=torch.float64) / sample_rate
            k = torch.arange(1, 12, dtype=torch.float64)
            k = k[f * k < 0.45 * sample_rate]
            tone = ((1.0 / k ** bright) * torch.sin(2 * math.pi * f * k * tt[:, None])
                    * torch.exp(-tt[:, None] * k * 1.5)).sum(-1)
            decay = 1.0 + 3.0 * float(torch.rand(1, generator=g))
            env = (tt / 0.01).clamp_max(1.0) * torch.exp(-tt * decay)
            out[pos:pos + m] += tone * env * (0.5 + 0.5 * float(torch.rand(1, generator=g)))
            pos += dur
    return (out / out.abs().max().clamp_min(1e-12)).float()
