"""Property tests: every loss is finite, with finite gradients, on random and degenerate signals
(silence, tiny/huge scales, DC, clicks, clipping, sparse spikes, zero padding)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from diffdsp.losses.acoustic import edc_loss, edr_loss, power_convergence_loss
from diffdsp.losses.phase import interference_loss
from diffdsp.losses.spectral import (
    multi_resolution_stft_loss,
    spectral_wasserstein_loss,
)
from diffdsp.losses.time import dc_loss, esr_loss, l1_loss, mse_loss, si_sdr_loss
from tests.helpers import assert_finite

N = 2048
SMALL = {"fft_sizes": (256, 64), "hop_sizes": (64, 16), "win_lengths": (256, 48)}

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mrstft": lambda a, b: multi_resolution_stft_loss(a, b, w_lin_mag=1.0, **SMALL),
    "mrstft_l2": lambda a, b: multi_resolution_stft_loss(a, b, mag_distance="L2", **SMALL),
    "wasserstein_f": lambda a, b: spectral_wasserstein_loss(a, b, n_fft=256, hop_length=64,
                                                            axis="frequency"),
    "edc_octave": lambda a, b: edc_loss(a, b, sample_rate=16000, bands="octave"),
    "edr": lambda a, b: edr_loss(a, b, n_fft=256, hop_length=64),
    "power_conv": lambda a, b: power_convergence_loss(a, b, n_fft=256, hop_length=64),
    "interference": lambda a, b: interference_loss(a, b, **SMALL),
    "esr": esr_loss,
    "si_sdr": si_sdr_loss,
    "dc": dc_loss,
    "l1": l1_loss,
    "mse": mse_loss,
}


def _signal(kind: str, scale: float, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "noise":
        x = torch.randn(N, generator=g)
    elif kind == "dc":
        x = torch.ones(N)
    elif kind == "click":
        x = torch.zeros(N)
        x[int(torch.randint(0, N, (1,), generator=g))] = 1.0
    elif kind == "clip":
        x = (torch.randn(N, generator=g) * 10).clamp(-1.0, 1.0)
    elif kind == "padded":
        x = torch.randn(N, generator=g) * (torch.arange(N) < N // 5)
    else:  # sparse spikes
        x = torch.randn(N, generator=g) * (torch.rand(N, generator=g) > 0.995)
    return x * scale


KINDS = st.sampled_from(["noise", "dc", "click", "clip", "padded", "sparse"])
SCALES = st.sampled_from([0.0, 1e-30, 1e-6, 1.0, 1e3])


@pytest.mark.parametrize("name", sorted(LOSSES))
@settings(max_examples=5, deadline=None)
@given(kind_a=KINDS, kind_b=KINDS, scale_a=SCALES, scale_b=SCALES, seed=st.integers(0, 10_000))
def test_losses_finite_values_and_gradients(name: str, kind_a: str, kind_b: str, scale_a: float,
                                            scale_b: float, seed: int) -> None:
    a = _signal(kind_a, scale_a, seed).requires_grad_(True)
    b = _signal(kind_b, scale_b, seed + 1).requires_grad_(True)
    v = LOSSES[name](a[None], b[None])
    ga, gb = torch.autograd.grad(v, (a, b), allow_unused=True)
    assert_finite(v, f"{name} value")
    if ga is not None:
        assert_finite(ga, f"{name} input grad")
    if gb is not None:
        assert_finite(gb, f"{name} target grad")
