"""DDSP harmonic-plus-noise synthesizer (Engel et al. 2020) with an optional learnable reverb.

:class:`HarmonicNoiseSynth` renders a harmonic oscillator bank (global amplitude times a normalised
harmonic distribution, partials at or above Nyquist removed, frame-rate controls upsampled; see
:func:`diffdsp.functional.oscillators.harmonic_synth`) plus white noise through a time-varying
linear-phase FIR (LTV-FIR, :func:`diffdsp.functional.oscillators.filtered_noise`).
:class:`LearnableReverb` adds a trainable impulse response. The DDSP timbre model
(:mod:`diffdsp.train.timbre`) drives them from its decoder.

Controls and their ranges (``HarmonicNoiseSynth.param_ranges``): ``f0_hz`` per frame,
``amplitude`` (global harmonic amplitude) per frame, ``harmonic_distribution`` per frame and
harmonic (normalised inside :meth:`HarmonicNoiseSynth.from_controls` over the partials below
Nyquist), ``noise_magnitude`` per frame and band. :meth:`HarmonicNoiseSynth.from_normalised`
maps controls in [0, 1] through those ranges (the interface networks use).

References:
    Engel, Hantrakul, Gu & Roberts, "DDSP: Differentiable Digital Signal Processing", ICLR 2020,
    Sec. 3 (harmonic oscillator, filtered noise, reverb); Serra & Smith 1990 (spectral modelling).
    Hayes et al., "A review of differentiable digital signal processing for music and speech
    synthesis", Frontiers 2023, Sec. 3.2 and eq. 9.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffdsp._numerics import safe_divide
from diffdsp._validation import InputError, check_int, check_sample_rate, check_tensor
from diffdsp.functional.oscillators import filtered_noise, harmonic_synth
from diffdsp.params import ParamRange

__all__ = ["HarmonicNoiseSynth", "LearnableReverb", "fft_convolve"]


def fft_convolve(x: Tensor, ir: Tensor) -> Tensor:
    """Linear convolution of ``(B, T)`` with ``(R,)`` or ``(B, R)``, cropped to ``T`` samples."""
    n = x.shape[-1] + ir.shape[-1] - 1
    n_fft = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)
    return y[..., : x.shape[-1]]


class LearnableReverb(nn.Module):
    """Learnable reverb: the dry signal plus its convolution with a trainable impulse response.

    The response is ``taps * exp(-t / decay)`` with free taps (initialised as small noise) and a
    learnable decay time (positive through ``softplus``); its first sample is zero so the direct
    path stays the dry signal.

    Args:
        sample_rate: in Hz.
        length_s: impulse-response length in seconds.

    Examples:
        >>> rev = LearnableReverb(16000, 0.1)
        >>> rev(torch.zeros(2, 800)).shape
        torch.Size([2, 800])

    References:
        Engel et al., ICLR 2020, Sec. 3.3 (reverb as a learned impulse response).
    """

    t_s: Tensor
    mask: Tensor

    def __init__(self, sample_rate: int, length_s: float) -> None:
        super().__init__()
        n = max(2, round(length_s * sample_rate))
        g = torch.Generator().manual_seed(1234)
        self.taps = nn.Parameter(1e-2 * torch.randn(n, generator=g))
        self.decay_raw = nn.Parameter(torch.tensor(math.log(math.expm1(0.05))))
        t = torch.arange(n, dtype=torch.float32) / sample_rate
        mask = torch.ones(n)
        mask[0] = 0.0
        self.register_buffer("t_s", t, persistent=False)
        self.register_buffer("mask", mask, persistent=False)

    def impulse_response(self) -> Tensor:
        """The wet impulse response ``(R,)`` (first sample zero)."""
        decay = F.softplus(self.decay_raw) + 1e-3
        return self.taps * torch.exp(-self.t_s.to(self.taps.dtype) / decay) * self.mask

    def forward(self, x: Tensor) -> Tensor:
        """``x + x * ir`` for ``x`` of shape ``(B, T)``."""
        return x + fft_convolve(x, self.impulse_response().to(x.dtype))


class HarmonicNoiseSynth(nn.Module):
    """Harmonic oscillator bank plus LTV-FIR filtered noise, driven by frame-rate controls.

    Args:
        sample_rate: in Hz.
        hop: samples per control frame (frame ``i`` sits on sample ``i * hop``).

    Differentiable w.r.t. the harmonic amplitudes and the noise magnitudes (f0 is an analysed
    input in DDSP: its gradient is not propagated, see
    :func:`~diffdsp.functional.oscillators.harmonic_synth`).

    Examples:
        >>> synth = HarmonicNoiseSynth(16000, 64)
        >>> f0 = torch.full((1, 11), 200.0)
        >>> y = synth(f0, torch.ones(1, 11, 4) * 0.1, torch.zeros(1, 11, 65), n_samples=640)
        >>> y.shape
        torch.Size([1, 640])
        >>> u = torch.full((2, 11, 1 + 1 + 8 + 17), 0.5)  # normalised controls
        >>> synth.from_normalised(u, n_harmonics=8, n_samples=640).shape
        torch.Size([2, 640])

    References:
        Engel et al., ICLR 2020, Sec. 3 (spectral modelling synthesis, Serra & Smith 1990).
    """

    #: Physical ranges of the controls (per frame; the distribution and noise per harmonic/band).
    param_ranges: ClassVar[dict[str, ParamRange]] = {
        "f0_hz": ParamRange(20.0, 4000.0, "log", unit="Hz", default=220.0,
                            description="fundamental frequency per frame"),
        "amplitude": ParamRange(0.0, 1.0, default=0.5, description="global harmonic amplitude"),
        "harmonic_distribution": ParamRange(0.0, 1.0, default=0.5,
                                            description="relative harmonic weight (normalised)"),
        "noise_magnitude": ParamRange(0.0, 1.0, default=0.0,
                                      description="noise filter magnitude per band"),
    }

    def __init__(self, sample_rate: int, hop: int) -> None:
        super().__init__()
        self.sample_rate = check_sample_rate(sample_rate)
        self.hop = check_int(hop, "hop", minimum=1)

    def forward(
        self,
        f0_hz: Tensor,
        harmonic_amplitudes: Tensor,
        noise_magnitudes: Tensor,
        *,
        n_samples: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Render ``(B, n_samples)`` from f0 ``(B, F)``, amplitudes ``(B, F, K)`` and noise
        magnitudes ``(B, F, N)``."""
        harm = harmonic_synth(f0_hz, harmonic_amplitudes, n_samples=n_samples, hop=self.hop,
                              sample_rate=self.sample_rate)
        noise = filtered_noise(noise_magnitudes, n_samples=n_samples, hop=self.hop,
                               generator=generator)
        return harm + noise

    def harmonic_amplitudes(self, f0_hz: Tensor, amplitude: Tensor,
                            distribution: Tensor) -> Tensor:
        """``A alpha_k`` with ``alpha`` normalised over the harmonics below Nyquist.

        Args:
            f0_hz: ``(B, F)`` in Hz.
            amplitude: global amplitude ``(B, F)``.
            distribution: non-negative harmonic weights ``(B, F, K)``.

        Returns:
            ``(B, F, K)`` harmonic amplitudes (zero at and above Nyquist, summing to ``A``).
        """
        k = torch.arange(1, distribution.shape[-1] + 1, dtype=distribution.dtype,
                         device=distribution.device)
        below = (f0_hz.detach().unsqueeze(-1) * k < self.sample_rate / 2).to(distribution.dtype)
        dist = distribution * below
        dist = safe_divide(dist, dist.sum(-1, keepdim=True))
        return amplitude.unsqueeze(-1) * dist

    def from_normalised(
        self,
        u: Tensor,
        *,
        n_harmonics: int,
        n_samples: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Render from controls in [0, 1] mapped through :attr:`param_ranges`.

        Args:
            u: ``(B, F, 2 + n_harmonics + n_bands)``: f0, amplitude, the harmonic distribution,
                then the noise magnitudes (``n_bands >= 2``).
            n_harmonics: number of harmonics ``K``.
            n_samples: output length.
            generator: seeds the noise source.

        Returns:
            ``(B, n_samples)`` audio.
        """
        check_tensor(u, "u", ndim=3)
        k = check_int(n_harmonics, "n_harmonics", minimum=1)
        if u.shape[-1] < 2 + k + 2:
            raise InputError(f"u must be (B, F, 2 + n_harmonics + n_bands) with n_bands >= 2 "
                             f"and n_harmonics={k}, got shape {tuple(u.shape)}")
        r = self.param_ranges
        f0 = r["f0_hz"].denormalise(u[..., 0])
        amp = r["amplitude"].denormalise(u[..., 1])
        dist = r["harmonic_distribution"].denormalise(u[..., 2 : 2 + k])
        noise = r["noise_magnitude"].denormalise(u[..., 2 + k :])
        return self(f0, self.harmonic_amplitudes(f0, amp, dist), noise, n_samples=n_samples,
                    generator=generator)
