"""Losses: spectral (MR-STFT, mel, Wasserstein), time-domain, acoustic (EDC, EDR, FDN), phase
(interference) and parameter losses. Functional forms plus thin ``nn.Module`` wrappers, with
auraloss-like weights ``w_*``, per-item ``reduction`` and ``return_terms``.
"""

from diffdsp.losses.acoustic import (
    EDCLoss,
    EDRLoss,
    PowerConvergenceLoss,
    edc_loss,
    edr_loss,
    power_convergence_loss,
    sparsity_loss,
    spectral_flatness_loss,
)
from diffdsp.losses.phase import InterferenceLoss, interference_loss
from diffdsp.losses.spectral import (
    MelSTFTLoss,
    MultiResolutionSTFTLoss,
    RandomResolutionSTFTLoss,
    STFTLoss,
    SumAndDifferenceSTFTLoss,
    WassersteinSpectralLoss,
    multi_resolution_stft_loss,
    spectral_wasserstein_loss,
    stft_loss_terms,
)
from diffdsp.losses.time import (
    DCLoss,
    DelayInvariantLoss,
    ESRLoss,
    L1Loss,
    MSELoss,
    SISDRLoss,
    align_by_xcorr,
    dc_loss,
    esr_loss,
    l1_loss,
    mse_loss,
    si_sdr_loss,
)

__all__ = [
    "DCLoss",
    "DelayInvariantLoss",
    "EDCLoss",
    "EDRLoss",
    "ESRLoss",
    "InterferenceLoss",
    "L1Loss",
    "MSELoss",
    "MelSTFTLoss",
    "MultiResolutionSTFTLoss",
    "PowerConvergenceLoss",
    "RandomResolutionSTFTLoss",
    "SISDRLoss",
    "STFTLoss",
    "SumAndDifferenceSTFTLoss",
    "WassersteinSpectralLoss",
    "align_by_xcorr",
    "dc_loss",
    "edc_loss",
    "edr_loss",
    "esr_loss",
    "interference_loss",
    "l1_loss",
    "mse_loss",
    "multi_resolution_stft_loss",
    "power_convergence_loss",
    "si_sdr_loss",
    "sparsity_loss",
    "spectral_flatness_loss",
    "spectral_wasserstein_loss",
    "stft_loss_terms",
]
