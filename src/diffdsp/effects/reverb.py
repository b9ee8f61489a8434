"""Noise-shaped reverb: a fixed noise sequence with two-band exponential decay, FFT convolution.

References:
    Steinmetz et al., "Filtered noise shaping for time domain room impulse response estimation
    from reverberant speech", WASPAA 2021; dasp-pytorch ``noise_shaped_reverberation``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from diffdsp._numerics import next_pow2, safe_sqrt
from diffdsp._validation import check_in_range
from diffdsp.effects.base import Effect
from diffdsp.params import ParamRange

__all__ = ["NoiseReverb"]


class NoiseReverb(Effect):
    """Reverb by convolution with decaying noise: ``y = (1 - mix) x + mix (x * h)``.

    ``h[n] = lo[n] e^{-6.91 n / (t60 fs)} + hi[n] e^{-6.91 n / (t60_hi fs)}`` where ``lo`` and
    ``hi`` are a fixed seeded Gaussian noise split at ``crossover_hz`` and
    ``t60_hi = t60 (1 - 0.9 damping)``; ``h`` is normalised to unit energy and delayed by
    ``predelay_ms`` (fractional, by a phase ramp). The impulse response is ``max_seconds`` long.

    Parameters: ``t60_s`` [0.1, 4] (log), ``damping`` [0, 1], ``predelay_ms`` [0, 100],
    ``mix`` [0, 1].

    Args:
        sample_rate: sample rate in Hz.
        max_seconds: impulse response length in seconds.
        crossover_hz: split frequency of the two decay bands.
        seed: seed of the noise.

    Shape:
        ``(batch, channels, time)`` -> same.

    Examples:
        >>> rv = NoiseReverb(8000, max_seconds=0.5)
        >>> x = torch.zeros(1, 1, 4000); x[..., 0] = 1.0
        >>> y = rv(x, mix=1.0, t60_s=0.3, predelay_ms=0.0)
        >>> round(float(y.square().sum()), 2)  # unit-energy impulse response
        1.0

    References:
        Steinmetz et al., WASPAA 2021.
    """

    noise_lo: Tensor
    noise_hi: Tensor

    def __init__(self, sample_rate: int, *, max_seconds: float = 4.0,
                 crossover_hz: float = 2000.0, seed: int = 0) -> None:
        super().__init__(sample_rate)
        check_in_range(max_seconds, "max_seconds", 0.0, 30.0, low_inclusive=False)
        check_in_range(crossover_hz, "crossover_hz", 0.0, sample_rate / 2, low_inclusive=False,
                       high_inclusive=False)
        n = max(2, math.ceil(max_seconds * sample_rate))
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(n, generator=g, dtype=torch.float64)
        spec = torch.fft.rfft(noise)
        f = torch.fft.rfftfreq(n, 1.0 / sample_rate, dtype=torch.float64)
        lo_w = 1.0 / (1.0 + (f / crossover_hz) ** 4)  # 4th-order magnitude-complementary split
        lo = torch.fft.irfft(spec * lo_w, n=n).float()
        self.register_buffer("noise_lo", lo, persistent=False)
        self.register_buffer("noise_hi", torch.fft.irfft(spec * (1 - lo_w), n=n).float(),
                             persistent=False)
        self.param_ranges = {
            "t60_s": ParamRange(0.1, 4.0, "log", unit="s", default=1.0),
            "damping": ParamRange(0.0, 1.0, default=0.5),
            "predelay_ms": ParamRange(0.0, 100.0, unit="ms", default=10.0),
            "mix": ParamRange(0.0, 1.0, default=0.25),
        }

    def impulse_response(self, **values: Tensor) -> Tensor:
        """The unit-energy impulse response ``(batch, 1, n)`` (without pre-delay)."""
        lo = self.noise_lo.to(values["t60_s"].dtype)
        hi = self.noise_hi.to(values["t60_s"].dtype)
        t = torch.arange(lo.shape[-1], device=lo.device, dtype=lo.dtype) / self.sample_rate
        t60 = values["t60_s"][..., None]
        t60_hi = t60 * (1 - 0.9 * values["damping"][..., None])
        h = lo * torch.exp(-6.907755 * t / t60) + hi * torch.exp(-6.907755 * t / t60_hi)
        return h / safe_sqrt(h.square().sum(-1, keepdim=True))

    def process(self, x: Tensor, **values: Tensor) -> Tensor:
        """Convolve with the impulse response and mix."""
        h = self.impulse_response(**values)  # (batch, 1, n)
        n = x.shape[-1]
        n_fft = next_pow2(n + h.shape[-1])
        k = torch.arange(n_fft // 2 + 1, device=x.device, dtype=x.dtype)
        d = values["predelay_ms"][..., None] * self.sample_rate / 1000.0
        ramp = torch.polar(torch.ones_like(k * d), -2 * math.pi * k * d / n_fft)
        wet = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(h, n=n_fft) * ramp,
                              n=n_fft)[..., :n]
        mix = values["mix"][..., None]
        return (1 - mix) * x + mix * wet
