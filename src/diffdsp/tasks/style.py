"""Production style transfer: impose the EQ and dynamics of a reference recording on an input.

Two modes (DESIGN.md):

1. *Per-example* (default, no training): the normalised parameters of an
   EQ -> compressor -> gain chain are optimised so that the processed input takes the reference's
   style, measured by a content-independent style loss (:class:`StyleLoss`): long-term average
   spectrum shape in mel bands, integrated loudness (BS.1770-style gating), the distribution of
   short-term levels relative to the loudness, and the crest factor.
2. *Learned* (``model=CKPT``): a network trained by ``diffdsp train style``
   (:mod:`diffdsp.train.style`) predicts the parameters from the two spectrograms in one pass.

References:
    Steinmetz, Bryan & Reiss, "Style transfer of audio effects with differentiable signal
    processing", JAES 2022 (DeepAFx-ST: chain, normalised parameters, metrics).
    ITU-R BS.1770-4 (K-weighting, gated integrated loudness).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from diffdsp._numerics import power_to_db, safe_log10
from diffdsp._validation import InputError, check_choice, check_int, check_sample_rate
from diffdsp.effects.base import EffectChain
from diffdsp.effects.dynamics import Compressor
from diffdsp.effects.eq import ParametricEQ
from diffdsp.effects.gain import Gain
from diffdsp.functional.analysis import k_weighting_sos, loudness_lufs, spectral_centroid_hz
from diffdsp.params import ParamRange

__all__ = [
    "EQ_MAX_GAIN_DB",
    "StyleFit",
    "StyleLoss",
    "demo",
    "eq_response_db",
    "loudness_lufs",  # re-exported from diffdsp.functional.analysis (evals use it)
    "metrics",
    "run",
    "style_chain",
    "style_features",
    "transfer",
]

Strategy = Literal["autodiff", "spsa"]

# ----------------------------------------------------------------------------------------------
# the chain
# ----------------------------------------------------------------------------------------------

#: Kept importable for older code (tests/grad/test_spsa.py); use

#: Gain range (+-dB) of every EQ band in :func:`style_chain`.
EQ_MAX_GAIN_DB = 20.0


def eq_response_db(eq: ParametricEQ, freqs_hz: Tensor, params: Tensor | None = None) -> Tensor:
    """Magnitude response in dB ``(batch, n_freqs)`` of ``eq`` at ``freqs_hz``.

    Args:
        eq: the EQ.
        freqs_hz: frequencies in Hz ``(n_freqs,)``.
        params: normalised EQ parameters ``(batch, eq.n_params)`` (default: the defaults).

    Returns:
        ``(batch, n_freqs)`` gains in dB, in ``freqs_hz``'s dtype; differentiable w.r.t. ``params``.

    Examples:
        >>> eq = ParametricEQ(24000)
        >>> f = torch.tensor([100.0, 1000.0], dtype=torch.float64)
        >>> eq_response_db(eq, f).abs().max().item() < 1e-9  # all gains 0 dB
        True

    References:
        RBJ Audio EQ Cookbook.
    """
    from diffdsp.functional.filters import parametric_eq_sos
    from diffdsp.functional.freq import sosfreqz

    dummy = torch.zeros(1 if params is None else params.shape[0], 1, 1, dtype=freqs_hz.dtype,
                        device=freqs_hz.device)
    ctrl = eq.controls(dummy, None if params is None else params.to(freqs_hz.dtype))
    sos = parametric_eq_sos(ctrl, sample_rate=eq.sample_rate)
    _, h = sosfreqz(sos, freqs_hz, sample_rate=eq.sample_rate)
    return 20 * safe_log10(h.abs())


def _chain_eq(chain: EffectChain) -> ParametricEQ:
    eq = chain.effects["eq"]
    if not isinstance(eq, ParametricEQ):
        raise InputError(f"the chain's 'eq' must be a ParametricEQ, got {type(eq).__name__}")
    return eq


def style_chain(sample_rate: int, *, eq_mode: Literal["fsm", "exact"] = "fsm",
                smoothing: Literal["exact", "fir"] = "exact") -> EffectChain:
    """DeepAFx-ST's chain: 6-band EQ -> compressor -> output gain.

    The EQ is :class:`diffdsp.effects.eq.ParametricEQ` (6 bands, gains +-:data:`EQ_MAX_GAIN_DB`).

    Args:
        sample_rate: sample rate in Hz (>= 8000, the EQ's minimum).
        eq_mode: EQ filtering, ``"fsm"`` (frequency sampling, the EQ's ``method="freq"``) or
            ``"exact"`` (biquads).
        smoothing: compressor ballistics, ``"exact"`` (eq. 3) or ``"fir"`` (eq. 4 approximation).

    Returns:
        An :class:`EffectChain` with effects ``eq``, ``compressor``, ``gain`` (18 + 6 + 1 params).

    Examples:
        >>> style_chain(24000).n_params
        25

    References:
        Steinmetz et al., JAES 2022, Fig. 3.
    """
    return EffectChain({
        "eq": ParametricEQ(sample_rate, n_bands=6,
                           method="freq" if check_choice(eq_mode, "eq_mode",
                                                         ("fsm", "exact")) == "fsm" else "exact",
                           max_gain_db=EQ_MAX_GAIN_DB),
        "compressor": Compressor(sample_rate, smoothing=smoothing),
        "gain": Gain(sample_rate),
    })


# ----------------------------------------------------------------------------------------------
# style features and loss
# ----------------------------------------------------------------------------------------------


_STATE_CACHE: dict[tuple[Any, ...], Tensor] = {}


def _cached(key: tuple[Any, ...], make: Callable[[], Tensor]) -> Tensor:
    if key not in _STATE_CACHE:
        _STATE_CACHE[key] = make()
    return _STATE_CACHE[key]


def _n_fft(sample_rate: int) -> int:
    return 1 << max(8, round(math.log2(sample_rate * 0.046)))  # ~46 ms (2048 at 44.1 kHz)


def _frame_power(x: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """Per-frame one-sided power spectra ``(..., frames, bins)`` normalised so that
    ``sum_bins`` is the frame's mean square, and the K-weighted frame mean squares."""
    from diffdsp.functional.freq import sosfreqz

    n_fft = _n_fft(sample_rate)
    hop = n_fft // 4
    key = ("win", n_fft, x.dtype, x.device)
    win = _cached(key, lambda: torch.hann_window(n_fft, dtype=x.dtype, device=x.device))
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[-1] < n_fft:
        flat = torch.nn.functional.pad(flat, (0, n_fft - flat.shape[-1]))
    spec = torch.stft(flat, n_fft, hop, window=win, center=False, return_complex=True)
    power = spec.real.square() + spec.imag.square()  # (B, bins, frames)
    scale = torch.full((n_fft // 2 + 1,), 2.0, dtype=x.dtype, device=x.device)
    scale[0] = 1.0
    scale[-1] = 1.0
    power = power.transpose(-1, -2) * (scale / (n_fft * win.square().sum()))
    kkey = ("k", sample_rate, n_fft, x.dtype, x.device)

    def make_k() -> Tensor:
        f = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64)
        _, h = sosfreqz(k_weighting_sos(sample_rate=sample_rate, dtype=torch.float64), f,
                        sample_rate=sample_rate)
        return h.abs().square().to(dtype=x.dtype, device=x.device)

    kw = _cached(kkey, make_k)
    kpow = (power * kw).sum(-1)
    return power.reshape(*lead, *power.shape[-2:]), kpow.reshape(*lead, kpow.shape[-1])


def _gated_loudness(kpow: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """BS.1770 gating on 400 ms blocks (75 % overlap) built from frame powers ``(..., frames)``.

    Returns the integrated loudness (LUFS) ``(...)`` and the per-frame relative-gate mask.
    A signal shorter than one block is measured as a single block.
    """
    n_fft = _n_fft(sample_rate)
    hop = n_fft // 4
    frames = kpow.shape[-1]
    block = max(1, min(frames, round(0.4 * sample_rate / hop)))
    step = max(1, block // 4)
    blocks = kpow.unfold(-1, block, step).mean(-1)  # (..., n_blocks)
    lk = -0.691 + 10 * safe_log10(blocks, 1e-20)
    abs_gate = (lk > -70.0).to(kpow.dtype)
    mean_abs = (blocks * abs_gate).sum(-1) / abs_gate.sum(-1).clamp_min(1.0)
    rel_thr = -0.691 + 10 * safe_log10(mean_abs, 1e-20) - 10.0
    gate = abs_gate * (lk > rel_thr[..., None]).to(kpow.dtype)
    gated = (blocks * gate).sum(-1) / gate.sum(-1).clamp_min(1.0)
    loud = -0.691 + 10 * safe_log10(gated, 1e-20)
    frame_gate = (-0.691 + 10 * safe_log10(kpow, 1e-20)) > (rel_thr[..., None] - 20.0)
    return loud, frame_gate


def _mel_fb(sample_rate: int, n_fft: int, n_bands: int, dtype: torch.dtype,
            device: torch.device) -> Tensor:
    from diffdsp.functional.analysis import mel_filterbank

    def make() -> Tensor:
        fb = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_bands, fmin_hz=40.0,
                            fmax_hz=min(16000.0, 0.45 * sample_rate))
        return fb.to(dtype=dtype, device=device)

    return _cached(("mel", sample_rate, n_fft, n_bands, dtype, device), make)


#: Mel-band resolutions of the spectrum-shape term of :class:`StyleLoss` (the default of
#: :func:`transfer`): a coarse one (robust to the content) and a fine one (sees the shape inside
#: a coarse band, where a narrow EQ boost and cut can otherwise cancel out).
SPECTRUM_BANDS: tuple[int, ...] = (24, 64)


def _resolutions(n_bands: int | tuple[int, ...]) -> tuple[int, ...]:
    res = (n_bands,) if isinstance(n_bands, int) else tuple(n_bands)
    if not res:
        raise InputError("n_bands must be an int or a non-empty tuple of ints, got ()")
    return tuple(check_int(r, "n_bands", minimum=2) for r in res)


def _band_shape_db(ltas: Tensor, sample_rate: int, resolutions: tuple[int, ...]) -> Tensor:
    """Mel-band spectrum shape(s) in dB of long-term power spectra ``(..., bins)``: for each
    resolution, band levels minus their mean over bands; concatenated ``(..., sum(res))``."""
    n_fft = 2 * (ltas.shape[-1] - 1)
    out = []
    for r in resolutions:
        fb = _mel_fb(sample_rate, n_fft, r, ltas.dtype, ltas.device)
        db = power_to_db(ltas @ fb.T, 1e-20)
        out.append(db - db.mean(-1, keepdim=True))
    return torch.cat(out, -1)


#: Quantiles of the short-term level distribution used as dynamics features.
LEVEL_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9, 0.97)


def style_features(x: Tensor, *, sample_rate: int,
                   n_bands: int | tuple[int, ...] = 24) -> dict[str, Tensor]:
    """Content-independent style statistics of ``(batch, channels, time)`` audio (mono mix).

    - ``spectrum_db``: long-term average spectrum in ``n_bands`` mel bands (40 Hz to
      min(16 kHz, 0.45 fs)), in dB, minus its mean over bands (the EQ "shape");
    - ``loudness_lufs``: integrated loudness;
    - ``levels_db``: quantiles :data:`LEVEL_QUANTILES` of the K-weighted short-term (46 ms) frame
      levels above the relative gate, relative to the loudness (the dynamics);
    - ``crest_db``: 99.9th percentile of ``|x|`` over the RMS, in dB.

    Args:
        x: audio ``(batch, channels, time)``.
        sample_rate: sample rate in Hz.
        n_bands: number of mel bands of the spectrum feature, or a tuple of band counts (the
            shapes at each resolution, each minus its own mean, concatenated).

    Returns:
        dict of ``(batch, k)`` / ``(batch,)`` tensors, differentiable with respect to ``x``.

    Shape:
        ``(batch, channels, time)`` -> ``{name: (batch, ...)}``.

    Examples:
        >>> f = style_features(torch.randn(2, 1, 24000) * 0.1, sample_rate=24000)
        >>> sorted(f), tuple(f["spectrum_db"].shape)
        (['crest_db', 'levels_db', 'loudness_lufs', 'spectrum_db'], (2, 24))

    References:
        Steinmetz et al., JAES 2022 (style = EQ + dynamics); ITU-R BS.1770-4.
    """
    mono = x.mean(1)
    power, kpow = _frame_power(mono, sample_rate)
    feats = _frame_features(power, kpow, sample_rate=sample_rate, n_bands=n_bands)
    ms = mono.square().mean(-1)
    if mono.shape[-1] <= 1 << 24:
        peak = torch.quantile(mono.abs(), 0.999, dim=-1)
    else:
        peak = mono.abs().amax(-1)
    feats["crest_db"] = 20 * safe_log10(peak, 1e-10) - 10 * safe_log10(ms, 1e-20)
    return feats


def _frame_features(power: Tensor, kpow: Tensor, *, sample_rate: int,
                    n_bands: int | tuple[int, ...] = 24) -> dict[str, Tensor]:
    """Spectrum shape, loudness and level quantiles from frame powers ``(B, frames, bins)``."""
    loud, frame_gate = _gated_loudness(kpow, sample_rate)
    spec_db = _band_shape_db(power.mean(-2), sample_rate, _resolutions(n_bands))
    lvl = -0.691 + 10 * safe_log10(kpow, 1e-20)  # (batch, frames)
    qs = torch.tensor(LEVEL_QUANTILES, dtype=power.dtype, device=power.device)
    levels = []
    for b in range(lvl.shape[0]):
        sel = lvl[b][frame_gate[b]]
        if sel.numel() == 0:
            sel = lvl[b]
        levels.append(torch.quantile(sel, qs))
    levels_db = torch.stack(levels) - loud[:, None]
    return {"spectrum_db": spec_db, "loudness_lufs": loud, "levels_db": levels_db}


class StyleLoss(nn.Module):
    """Distance between the style features of an estimate and fixed reference features.

    ``w_spectrum * mean|d spectrum_db| + w_loudness * |d loudness| + w_levels * mean|d levels|
    + w_crest * |d crest|``, per item (all terms in dB or LU). The spectrum term compares the
    spectrum shapes at each mel resolution of ``n_bands`` (default :data:`SPECTRUM_BANDS`, 24 and
    64 bands), each resolution weighted equally, over the bands where the reference is within
    50 dB of its strongest band at that resolution (empty bands, e.g. above the Nyquist
    frequency of a band-limited recording, carry no style). With 24 bands alone the fit can place
    a narrow boost and cut inside one band, which the band level does not see; 64 bands alone
    follow the partials of the content more closely (worse on speech): both together were best
    on the eval's development seeds (``evals/style_transfer.py``).

    Args:
        reference: reference audio ``(batch or 1, channels, time)``.
        sample_rate: sample rate in Hz.
        weights: optional overrides of ``{"spectrum", "loudness", "levels", "crest"}``.
        n_bands: mel-band count(s) of the spectrum term: an int or a tuple of resolutions.

    Shape:
        ``(batch, channels, time) -> (batch,)``.

    Examples:
        >>> ref = torch.randn(1, 1, 24000) * 0.1
        >>> float(StyleLoss(ref, sample_rate=24000)(ref)[0]) < 1e-4
        True

    References:
        Steinmetz et al., JAES 2022.
    """

    def __init__(self, reference: Tensor, *, sample_rate: int,
                 weights: dict[str, float] | None = None,
                 n_bands: int | tuple[int, ...] = SPECTRUM_BANDS) -> None:
        super().__init__()
        self.sample_rate = check_sample_rate(sample_rate)
        self.n_bands = _resolutions(n_bands)
        self.weights = {"spectrum": 1.0, "loudness": 1.0, "levels": 0.5, "crest": 0.25}
        self.weights.update(weights or {})
        with torch.no_grad():
            feats = style_features(reference, sample_rate=self.sample_rate,
                                   n_bands=self.n_bands)
        self.ref: dict[str, Tensor] = {k: v.detach() for k, v in feats.items()}
        spec = self.ref["spectrum_db"]
        # per resolution: bands within 50 dB of its strongest band, each resolution weighted
        # equally (a band of an r-band resolution weighs 1/r)
        parts = []
        for part, r in zip(spec.split(list(self.n_bands), -1), self.n_bands, strict=True):
            parts.append((part > part.amax(-1, keepdim=True) - 50.0).to(spec.dtype) / r)
        self.band_mask = torch.cat(parts, -1)

    def terms(self, x: Tensor) -> dict[str, Tensor]:
        """The four per-item terms."""
        return self._compare(style_features(x, sample_rate=self.sample_rate,
                                            n_bands=self.n_bands))

    def _compare(self, f: dict[str, Tensor]) -> dict[str, Tensor]:
        like = f["loudness_lufs"]  # the reference's features follow the estimate's dtype/device
        r = {k: v.to(like) for k, v in self.ref.items()}
        # bands where the reference has (almost) no energy carry no style information
        mask = self.band_mask.to(like)
        dspec = (f["spectrum_db"] - r["spectrum_db"]).abs() * mask
        out = {
            "spectrum": dspec.sum(-1) / mask.sum(-1).clamp_min(1.0),
            "loudness": (f["loudness_lufs"] - r["loudness_lufs"]).abs(),
            "levels": (f["levels_db"] - r["levels_db"]).abs().mean(-1),
        }
        if "crest_db" in f:
            out["crest"] = (f["crest_db"] - r["crest_db"]).abs()
        return out

    def frame_loss(self, power: Tensor, kpow: Tensor) -> Tensor:
        """Loss without the crest term from modelled frame powers (the fast EQ stage)."""
        t = self._compare(_frame_features(power, kpow, sample_rate=self.sample_rate,
                                          n_bands=self.n_bands))
        return torch.stack([self.weights[k] * v for k, v in t.items()]).sum(0)

    def forward(self, x: Tensor) -> Tensor:
        """Per-item loss ``(batch,)``."""
        t = self.terms(x)
        return torch.stack([self.weights[k] * v for k, v in t.items()]).sum(0)


# ----------------------------------------------------------------------------------------------
# metrics (for result.json, evals and tests)
# ----------------------------------------------------------------------------------------------


def _centroid_hz(x: Tensor, sample_rate: int) -> Tensor:
    """DeepAFx-ST's centroid: the per-frame spectral centroid (2048-point Hann frames, hop 512,
    centred, as ``torchaudio.transforms.SpectralCentroid``) averaged over the frames with equal
    weight."""
    return spectral_centroid_hz(x, sample_rate=sample_rate).mean(-1)


def _rms_db(x: Tensor, sample_rate: int) -> Tensor:
    _, _ = sample_rate, None
    return 10 * safe_log10(x.square().mean(-1), 1e-20)


def metrics(estimate: Tensor, target: Tensor, *, sample_rate: int) -> dict[str, float]:
    """DeepAFx-ST's full-reference metrics between an estimate and a target (mono mixes).

    ``mrstft`` (auraloss-default multi-resolution STFT loss), ``centroid_error_hz`` (difference of
    the frame-averaged spectral centroids, DeepAFx-ST's definition), ``rms_error_db``
    (difference of the RMS levels), ``loudness_error_lu`` (difference of the integrated loudness,
    :func:`diffdsp.functional.analysis.loudness_lufs`; one block if shorter than 400 ms).

    Args:
        estimate: audio ``(channels, time)`` or ``(time,)``.
        target: same length.
        sample_rate: sample rate in Hz.

    Returns:
        dict of floats.

    Examples:
        >>> x = torch.randn(1, 24000) * 0.1
        >>> metrics(x, x, sample_rate=24000)["loudness_error_lu"]
        0.0

    References:
        Steinmetz et al., JAES 2022, Sec. 4.1.
    """
    from diffdsp.losses.spectral import MultiResolutionSTFTLoss

    e = estimate.reshape(-1, estimate.shape[-1]).mean(0).to(torch.float64)
    t = target.reshape(-1, target.shape[-1]).mean(0).to(torch.float64)
    n = min(e.shape[-1], t.shape[-1])
    e, t = e[:n], t[:n]
    # BS.1770 400 ms blocks; a signal shorter than one block is measured as a single block
    block_s = min(0.4, n / sample_rate)
    mr = MultiResolutionSTFTLoss.auraloss_default().to(torch.float64)
    with torch.no_grad():
        return {
            "mrstft": float(mr(e[None, None], t[None, None])),
            "centroid_error_hz": float((_centroid_hz(e, sample_rate)
                                        - _centroid_hz(t, sample_rate)).abs()),
            "rms_error_db": float((_rms_db(e, sample_rate) - _rms_db(t, sample_rate)).abs()),
            "loudness_error_lu": float((loudness_lufs(e, sample_rate=sample_rate, block_s=block_s)
                                        - loudness_lufs(t, sample_rate=sample_rate,
                                                        block_s=block_s)).abs()),
        }


def style_distance(estimate: Tensor, reference: Tensor, *, sample_rate: int) -> dict[str, float]:
    """Content-independent distances to the reference's style (for ``result.json``).

    Args:
        estimate: audio ``(channels, time)``.
        reference: audio ``(channels, time)`` (any length).
        sample_rate: sample rate in Hz.

    Returns:
        ``spectrum_error_db``, ``loudness_error_lu``, ``levels_error_db``, ``crest_error_db``.
    """
    loss = StyleLoss(reference.reshape(1, -1, reference.shape[-1]).to(torch.float64),
                     sample_rate=sample_rate)
    with torch.no_grad():
        t = loss.terms(estimate.reshape(1, -1, estimate.shape[-1]).to(torch.float64))
    return {"spectrum_error_db": float(t["spectrum"][0]), "loudness_error_lu":
            float(t["loudness"][0]), "levels_error_db": float(t["levels"][0]),
            "crest_error_db": float(t["crest"][0])}


# ----------------------------------------------------------------------------------------------
# per-example optimisation
# ----------------------------------------------------------------------------------------------


@dataclass
class StyleFit:
    """Result of :func:`transfer`.

    Attributes:
        output: processed input ``(batch, channels, time)``.
        params: normalised chain parameters ``(batch, n_params)``.
        settings: physical settings per batch item, nested by effect.
        losses: loss per step (mean over the batch).
        fit: ``{steps, seconds, final_loss, converged, strategy}``.
    """

    output: Tensor
    params: Tensor
    settings: list[dict[str, dict[str, float]]]
    losses: list[float] = field(default_factory=list)
    fit: dict[str, Any] = field(default_factory=dict)


def _initial_params(chain: EffectChain, batch: int, like: Tensor) -> Tensor:
    start = {"compressor": {"threshold_db": -20.0, "ratio": 1.5, "knee_db": 6.0,
                            "attack_ms": 10.0, "release_ms": 100.0, "makeup_db": 0.0}}
    cols = []
    for name, fx in chain.effects.items():
        cols.append(fx.normalise(start.get(name, {}), batch))  # type: ignore[operator]
    return torch.cat(cols, dim=-1).to(like).clamp(1e-3, 1 - 1e-3)


def _k_weights(sample_rate: int, like: Tensor) -> Tensor:
    from diffdsp.functional.freq import sosfreqz

    n_fft = _n_fft(sample_rate)

    def make() -> Tensor:
        f = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64)
        _, h = sosfreqz(k_weighting_sos(sample_rate=sample_rate, dtype=torch.float64), f,
                        sample_rate=sample_rate)
        return h.abs().square().to(dtype=like.dtype, device=like.device)

    return _cached(("k", sample_rate, n_fft, like.dtype, like.device), make)


def _eq_init(eq: ParametricEQ, power: Tensor, loss_mod: StyleLoss, *, n_starts: int = 24,
             steps: int = 150, lr: float = 0.1, seed: int = 0,
             gain_penalty: float = 0.01) -> Tensor:
    """Multi-start fit of the EQ alone to the reference's long-term spectrum shape.

    The long-term average power spectrum of the input ``power`` ``(batch, bins)`` times
    ``|H(f)|^2`` gives the processed spectrum exactly (for the long-term average), so the
    spectrum term of the style loss can be minimised over the EQ parameters without touching
    the signal: cheap enough to run ``n_starts`` random starts (plus the flat EQ) side by side
    and keep the best, which avoids the local minima of a single start (a cut on the wrong band
    edge). ``gain_penalty`` (loss per dB of mean absolute band gain) breaks near-ties in favour
    of the gentlest EQ. Uses only the input and the reference's features.

    Returns:
        normalised EQ parameters ``(batch, eq.n_params)`` in ``power``'s dtype.
    """
    batch, n_bins = power.shape
    dt, dev = torch.float64, power.device
    n_fft = 2 * (n_bins - 1)
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / loss_mod.sample_rate, dtype=dt, device=dev)
    ref = loss_mod.ref["spectrum_db"].to(dt)
    mask = loss_mod.band_mask.to(dt)
    gen = torch.Generator().manual_seed(seed)
    k = n_starts + 1
    # drawn on the CPU generator, then moved: the same starts on every device
    u = (0.1 + 0.8 * torch.rand(batch, k, eq.n_params, generator=gen, dtype=dt)).to(dev)
    flat = eq.normalise({}, batch).to(dtype=dt, device=dev)
    u[:, 0] = flat.clamp(1e-3, 1 - 1e-3)
    raw = torch.logit(u).reshape(batch * k, -1).requires_grad_(True)
    p_in = power.to(dt).repeat_interleave(k, 0)
    gain_cols = torch.tensor([n.endswith("gain_db") for n in eq.param_ranges], device=dev)
    flat_k = flat.repeat_interleave(k, 0)
    ref_k = ref.expand(batch, -1).repeat_interleave(k, 0)
    mask_k = mask.expand(batch, -1).repeat_interleave(k, 0)
    opt = torch.optim.Adam([raw], lr=lr)
    best = torch.full((batch * k,), math.inf, dtype=dt, device=dev)
    best_raw = raw.detach().clone()
    for step in range(steps + 1):
        h_db = eq_response_db(eq, freqs, torch.sigmoid(raw))
        spec = _band_shape_db(p_in * 10 ** (h_db / 10), loss_mod.sample_rate, loss_mod.n_bands)
        per = ((spec - ref_k).abs() * mask_k).sum(-1) / mask_k.sum(-1).clamp_min(1.0)
        # among near-equal fits prefer the gentlest EQ: mel bands hide structure inside a band,
        # and steep opposing boosts and cuts that match 24 band levels are not the style
        u_now = torch.sigmoid(raw)
        per = per + gain_penalty * (u_now[:, gain_cols] - flat_k[:, gain_cols]).abs().mean(-1) * (
            2 * EQ_MAX_GAIN_DB)
        with torch.no_grad():
            better = per < best
            best = torch.where(better, per, best)
            best_raw[better] = raw.detach()[better]
        if step == steps:
            break
        opt.zero_grad()
        per.sum().backward()
        opt.step()
    pick = best.reshape(batch, k).argmin(-1)
    chosen = best_raw.reshape(batch, k, -1)[torch.arange(batch, device=dev), pick]
    return torch.sigmoid(chosen).to(power.dtype)


def _match_loudness(chain: EffectChain, x: Tensor, u: Tensor, reference: Tensor,
                    sample_rate: int) -> Tensor:
    """Final closed-form step: set the output gain so the output's integrated loudness equals
    the reference's (BS.1770 loudness is exactly shift-equivariant in dB, and the gain is the
    last effect of the chain), clamped to the gain's range. Uses only ``x`` and ``reference``.
    """
    if "gain" not in chain.effects:
        return u
    gain = chain.effects["gain"]
    sl = chain.slices()["gain"]
    y = chain(x, u).mean(1)
    n_ref = reference.shape[-1]
    block_y = min(0.4, y.shape[-1] / sample_rate)
    block_r = min(0.4, n_ref / sample_rate)
    l_y = loudness_lufs(y.to(torch.float64), sample_rate=sample_rate, block_s=block_y)
    l_r = loudness_lufs(reference.mean(1).to(torch.float64), sample_rate=sample_rate,
                        block_s=block_r)
    if not bool(torch.isfinite(l_y).all()) or float(l_y.min()) < -70.0:
        return u  # silent output: nothing to match
    ranges: dict[str, ParamRange] = getattr(gain, "param_ranges")  # noqa: B009
    rng = ranges["gain_db"]
    g_db = rng.denormalise(u[:, sl].to(torch.float64))[:, 0] + (l_r - l_y)
    g_db = g_db.clamp(rng.min, rng.max)
    u = u.clone()
    u[:, sl] = rng.normalise(g_db)[:, None].to(u.dtype).clamp(0.0, 1.0)
    return u


def transfer(
    x: Tensor,
    reference: Tensor,
    *,
    sample_rate: int,
    steps: int = 300,
    dyn_steps: int | None = None,
    lr: float = 0.05,
    strategy: Strategy = "autodiff",
    spsa_epsilon: float = 5e-3,
    spsa_samples: int = 4,
    smoothing: Literal["exact", "fir"] = "exact",
    chain: EffectChain | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
    n_bands: int | tuple[int, ...] = SPECTRUM_BANDS,
) -> StyleFit:
    """Per-example style transfer: optimise the chain so ``chain(x)`` takes ``reference``'s style.

    Parameters live in an unconstrained space (``u = sigmoid(raw)``) and are optimised with Adam
    (cosine schedule, best state kept) on :class:`StyleLoss`, in two stages:

    1. EQ and output gain (``steps`` steps) on the *frame powers* of the input: the EQ acts on
       the STFT powers through ``|H(f)|^2`` (exact for the long-term spectrum, no time-domain
       filtering per step, so a step is cheap);
    2. compressor and output gain (``dyn_steps`` steps, default ``steps // 3``) on the EQ'd
       signal in the time domain, with the full loss including the crest factor (exact
       ballistics and their adjoint).

    With ``strategy="spsa"`` the whole chain is a black box in the time domain and every step's
    gradient is an SPSA estimate (:mod:`diffdsp.grad.spsa`); all parameters are fitted together.

    Args:
        x: input audio ``(batch, channels, time)``.
        reference: reference audio ``(batch or 1, channels', time')`` (any length).
        sample_rate: common sample rate in Hz.
        steps: optimiser steps of the EQ stage (of the whole fit with SPSA).
        dyn_steps: optimiser steps of the dynamics stage (default ``steps // 3``).
        lr: Adam learning rate on the raw parameters.
        strategy: ``"autodiff"`` or ``"spsa"``.
        spsa_epsilon: SPSA perturbation in normalised units.
        spsa_samples: SPSA perturbations averaged per step.
        smoothing: compressor ballistics (``"exact"`` or ``"fir"``).
        chain: the effect chain (default :func:`style_chain`; effects ``eq``, ``compressor``,
            ``gain``).
        time_budget_s: stop each stage after this many seconds.
        seed: seed of the SPSA perturbations.
        progress: ``progress(step, loss)``.
        n_bands: mel resolution(s) of the spectrum term of :class:`StyleLoss`.

    Returns:
        A :class:`StyleFit`.

    Shape:
        ``x`` ``(batch, channels, time)`` -> ``output`` same shape.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(1, 1, 12000, generator=g) * 0.05
        >>> ref = torch.randn(1, 1, 12000, generator=g) * 0.2
        >>> fit = transfer(x, ref, sample_rate=12000, steps=30, dyn_steps=3, lr=0.1)
        >>> d = style_distance(fit.output[0], ref[0], sample_rate=12000)
        >>> d["loudness_error_lu"] < 1.0
        True

    References:
        Steinmetz et al., JAES 2022.
    """
    from diffdsp.optim import fit as run_fit

    check_choice(strategy, "strategy", ("autodiff", "spsa"))
    steps = check_int(steps, "steps", minimum=1)
    chain = chain if chain is not None else style_chain(sample_rate, smoothing=smoothing)
    batch = x.shape[0]
    loss_mod = StyleLoss(reference, sample_rate=sample_rate, n_bands=n_bands)
    u0 = _initial_params(chain, batch, x)
    sl = chain.slices()
    t0 = time.perf_counter()
    losses: list[float] = []
    n_steps = 0
    converged = True

    def cb(step: int, loss: float) -> None:
        losses.append(loss)
        if progress is not None:
            progress(len(losses), loss)

    if strategy == "spsa":
        from diffdsp.grad.spsa import spsa

        gen = torch.Generator().manual_seed(seed)
        raw = torch.logit(u0).clone().requires_grad_(True)

        def black_box(xx: Tensor, p: Tensor) -> Tensor:
            with torch.no_grad():
                return chain(xx, p)

        def loss_spsa() -> Tensor:
            y = spsa(black_box, x, torch.sigmoid(raw), epsilon=spsa_epsilon,
                     n_samples=spsa_samples, generator=gen)
            return loss_mod(y).mean()

        res = run_fit([raw], loss_spsa, steps=steps, lr=lr, schedule="cosine",
                      time_budget_s=time_budget_s, progress=cb)
        u = torch.sigmoid(raw).detach()
        n_steps, converged, final = res.steps, res.converged, res.final_loss
    else:
        eq, gain = _chain_eq(chain), chain.effects["gain"]
        # stage 1: EQ + gain on frame powers
        with torch.no_grad():
            power, _ = _frame_power(x.mean(1), sample_rate)
        kw = _k_weights(sample_rate, power)
        freqs = torch.fft.rfftfreq(_n_fft(sample_rate), 1.0 / sample_rate, dtype=torch.float64,
                                   device=x.device)
        # closed-form-like start: the EQ alone fitted to the long-term spectrum, multi-start
        u0 = u0.clone()
        u0[:, sl["eq"]] = _eq_init(eq, power.mean(-2), loss_mod, seed=seed,
                                    steps=min(150, max(10, 2 * steps))).clamp(1e-4, 1 - 1e-4)
        raw_eq = torch.logit(u0[:, sl["eq"]]).clone().requires_grad_(True)
        raw_gain = torch.logit(u0[:, sl["gain"]]).clone().requires_grad_(True)

        def loss_eq() -> Tensor:
            h_db = eq_response_db(eq, freqs, torch.sigmoid(raw_eq).to(torch.float64))
            g_db = gain.denormalise(torch.sigmoid(raw_gain))["gain_db"]  # type: ignore[operator]
            scale = 10 ** ((h_db.to(power.dtype) + g_db[:, None]) / 10)  # |H|^2 g^2 per bin
            p_y = power * scale[:, None, :]
            return loss_mod.frame_loss(p_y, (p_y * kw).sum(-1)).mean()

        steps1 = steps
        steps2 = dyn_steps if dyn_steps is not None else max(1, steps // 3)
        r1 = run_fit([raw_eq, raw_gain], loss_eq, steps=steps1, lr=lr, schedule="cosine",
                     time_budget_s=time_budget_s, progress=cb)
        n_steps, converged = r1.steps, r1.converged
        u = u0.clone()
        u[:, sl["eq"]] = torch.sigmoid(raw_eq).detach()
        u[:, sl["gain"]] = torch.sigmoid(raw_gain).detach()
        final = r1.final_loss
        if steps2 > 0:
            # stage 2: compressor + gain in the time domain on the EQ'd input
            with torch.no_grad():
                x_eq = eq(x, u[:, sl["eq"]])
            raw_c = torch.logit(u[:, sl["compressor"]]).clone().requires_grad_(True)
            raw_g2 = torch.logit(u[:, sl["gain"]]).clone().requires_grad_(True)
            comp = chain.effects["compressor"]

            def loss_dyn() -> Tensor:
                y = gain(comp(x_eq, torch.sigmoid(raw_c)), torch.sigmoid(raw_g2))
                return loss_mod(y).mean()

            r2 = run_fit([raw_c, raw_g2], loss_dyn, steps=steps2, lr=lr, schedule="cosine",
                         time_budget_s=time_budget_s, progress=cb)
            u[:, sl["compressor"]] = torch.sigmoid(raw_c).detach()
            u[:, sl["gain"]] = torch.sigmoid(raw_g2).detach()
            n_steps += r2.steps
            converged = r2.converged
            final = r2.final_loss
    with torch.no_grad():
        u = _match_loudness(chain, x, u, reference, sample_rate)
        out = chain(x, u)
        best = float(loss_mod(out).mean())
    return StyleFit(
        output=out.detach(), params=u.detach(), settings=chain.describe_chain(u.detach()),
        losses=losses,
        fit={"steps": n_steps, "seconds": time.perf_counter() - t0, "final_loss": final,
             "best_loss": best, "converged": converged, "strategy": strategy,
             "mode": "per-example"},
    )


# ----------------------------------------------------------------------------------------------
# files in, files out
# ----------------------------------------------------------------------------------------------


#: Shortest input or reference (samples) that the style features can analyse: one STFT frame of
#: the smallest size used (``_n_fft`` is at least 256).
MIN_SAMPLES = 256
MAX_INPUT_S = 60.0  # the fit runs on the whole input: longer inputs are refused
MAX_REFERENCE_S = 600.0  # the reference is only analysed: up to 10 minutes


def _prepare(x: Tensor, ref: Tensor, sr: int, sr_ref: int, *, input_name: str = "input",
             reference_name: str = "reference") -> tuple[Tensor, Tensor, list[str]]:
    """Check and harmonise input and reference (resampled, downmixed); return notes.

    ``input_name`` / ``reference_name`` (the file paths) are named in the errors.
    """
    from diffdsp.io import resample

    notes: list[str] = []
    for what, name, sig in (("input", input_name, x), ("reference", reference_name, ref)):
        if sig.shape[-1] < MIN_SAMPLES:
            raise InputError(
                f"{name}: the {what} is too short to analyse: need at least {MIN_SAMPLES} "
                f"samples, got {sig.shape[-1]}"
            )
    if float(x.abs().max()) == 0.0:
        raise InputError(f"{input_name}: the input is silent (all samples are 0): there is "
                         "nothing to style")
    if float(ref.abs().max()) == 0.0:
        raise InputError(f"{reference_name}: the reference is silent (all samples are 0): it has "
                         "no style to copy")
    if sr_ref != sr:
        ref = resample(ref, sr_ref, sr)
        notes.append(f"reference resampled from {sr_ref} Hz to {sr} Hz")
        if ref.shape[-1] < MIN_SAMPLES:
            raise InputError(
                f"{reference_name}: the reference is too short to analyse: need at least "
                f"{MIN_SAMPLES} samples at {sr} Hz after resampling, got {ref.shape[-1]}"
            )
    if ref.shape[0] != x.shape[0]:
        notes.append(f"reference has {ref.shape[0]} channel(s), input {x.shape[0]}: the style "
                     "is measured on mono mixes and applied to every input channel")
    if ref.shape[-1] < int(0.4 * sr):
        notes.append(f"reference is short ({ref.shape[-1] / sr:.2f} s < 0.4 s): loudness is "
                     "measured on a single block")
    return x, ref, notes


def run(
    input_path: str | Path,
    reference_path: str | Path,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    steps: int = 300,
    lr: float = 0.05,
    strategy: Strategy = "autodiff",
    smoothing: Literal["exact", "fir"] = "exact",
    time_budget_s: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: Any = None,
    plots: bool = True,
) -> Any:
    """``diffdsp style INPUT REFERENCE --out DIR``: write ``output.wav``, ``params.json``, plots.

    Args:
        input_path: the audio to process.
        reference_path: the audio whose style to copy (resampled to the input's rate if needed;
            any channel count and length >= :data:`MIN_SAMPLES` samples).
        out_dir: output folder.
        model: a checkpoint of ``diffdsp train style`` for one-pass inference (learned mode;
            refused with an :class:`InputError` while :mod:`diffdsp.train.style` is missing).
        steps: optimiser steps (per-example mode).
        lr: learning rate (per-example mode).
        strategy: ``"autodiff"`` or ``"spsa"`` (per-example mode).
        smoothing: compressor ballistics ``"exact"`` or ``"fir"``.
        time_budget_s: stop the fit after this many seconds.
        seed: random seed.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        progress: ``progress(stage, step, total, loss)``.
        plots: write PNG plots and ``report.html``.

    Returns:
        A :class:`diffdsp.tasks._common.TaskResult`.

    Raises:
        InputError: unreadable files, silent input or reference, an input or reference under
            :data:`MIN_SAMPLES` samples (named with the file), an output folder that is an input.
    """
    from diffdsp.io import load_audio, save_audio
    from diffdsp.report import write_json
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import (
        TaskResult,
        fit_progress,
        prepare_out_dir,
        resolve_device,
        seed_all,
    )

    if model is not None:
        try:
            from diffdsp.train.style import load_controller
        except ImportError:
            raise InputError(
                "the learned mode (--model) is not available in this version: "
                "diffdsp.train.style is not implemented yet; run without --model "
                "(per-example mode)"
            ) from None
    dev = resolve_device(device)
    # read and check both files before the output folder is created (a refused run touches nothing)
    x, sr = load_audio(input_path, max_seconds=MAX_INPUT_S)
    ref, sr_ref = load_audio(reference_path, max_seconds=MAX_REFERENCE_S)
    x, ref, notes = _prepare(x, ref, sr, sr_ref, input_name=str(input_path),
                             reference_name=str(reference_path))
    out = prepare_out_dir(out_dir, [input_path, reference_path])
    seed_all(seed)
    xb = x[None].to(dev)
    rb = ref[None].to(dev)
    if model is not None:
        ctrl = load_controller(model)
        chain = ctrl.make_chain(sr).to(dev)
        t0 = time.perf_counter()
        with torch.no_grad():
            u = ctrl.predict(xb.mean(1, keepdim=True), rb.mean(1, keepdim=True), sr)
            y = chain(xb, u)
        fit_res = StyleFit(output=y, params=u, settings=chain.describe_chain(u), fit={
            "steps": 0, "seconds": time.perf_counter() - t0, "final_loss": None,
            "converged": True, "strategy": "learned", "mode": "learned", "model": str(model)})
    else:
        chain = style_chain(sr, smoothing=smoothing).to(dev)
        fit_res = transfer(xb, rb, sample_rate=sr, steps=steps, lr=lr, strategy=strategy,
                           chain=chain, time_budget_s=time_budget_s, seed=seed,
                           progress=fit_progress(progress, "style", steps))
    chain = chain.cpu()  # the artefacts (plots, responses) are computed on the CPU copies
    y = fit_res.output[0].cpu()
    inputs = [input_path, reference_path]
    peak = float(y.abs().max())
    if peak > 1.0:
        notes.append(f"output peak {peak:.3f} exceeds full scale (written as float WAV, not "
                     "clipped)")
    save_audio(out / "output.wav", y, sr, protect=inputs)
    params_json = {"sample_rate": sr, "chain": ["eq", "compressor", "gain"],
                   "settings": fit_res.settings[0],
                   "normalised": fit_res.params[0].cpu().tolist(),
                   "param_names": chain.param_names,
                   "ranges": {k: r.to_dict() for k, r in chain.param_ranges.items()}}
    write_json(out / "params.json", params_json, protect=inputs)
    files = ["output.wav", "params.json"]
    before = style_distance(x, ref, sample_rate=sr)
    after = style_distance(y, ref, sample_rate=sr)
    sections: list[Any] = []
    if plots:
        files += _plots(out, x, y, ref, chain, fit_res, sr)
        sections = [_section(before, after, files, fit_res)]
        from diffdsp.report import write_report

        write_report(out, "diffdsp style", sections)
        files.append("report.html")
    settings = {"model": None if model is None else str(model), "steps": steps, "lr": lr,
                "strategy": strategy, "smoothing": smoothing, "time_budget_s": time_budget_s,
                "device": str(dev)}
    result = write_result_json(
        out, task="style", inputs=inputs, settings=settings, metrics_before=before,
        metrics_after=after, fit=fit_res.fit, seed=seed, files=files,
        extra={"notes": notes},
    )
    return TaskResult(task="style", out_dir=out, result=result, files=result["files"],
                      sections=sections)


def _plots(out: Path, x: Tensor, y: Tensor, ref: Tensor, chain: EffectChain, fit_res: StyleFit,
           sr: int) -> list[str]:
    from diffdsp.report.plots import line_plot, loss_curve

    files: list[str] = []
    f = torch.logspace(math.log10(20.0), math.log10(0.45 * sr), 400, dtype=torch.float64)
    eq = _chain_eq(chain)
    u = fit_res.params.to(torch.float64).cpu()
    resp = eq_response_db(eq, f, chain.split(u)["eq"])[0]
    line_plot(out / "eq_response.png", f, {"fitted EQ": resp}, xlabel="frequency (Hz)",
              ylabel="gain (dB)", title="EQ magnitude response", logx=True)
    files.append("eq_response.png")
    comp = chain.effects["compressor"]
    vals = comp.resolve(x[None].to(torch.float64), chain.split(u)["compressor"], {})  # type: ignore[operator]
    with torch.no_grad():
        eq_out = eq(x[None].to(torch.float64), chain.split(u)["eq"])
        g = comp.gain_db(eq_out, **vals)[0, 0]  # type: ignore[operator]
    t = torch.arange(g.shape[-1], dtype=torch.float64) / sr
    stride = max(1, g.shape[-1] // 4000)
    line_plot(out / "gain_reduction.png", t[::stride], {"compressor gain (dB)": g[::stride]},
              xlabel="time (s)", ylabel="gain (dB)", title="compressor gain over time")
    files.append("gain_reduction.png")
    with torch.no_grad():
        fx = style_features(x[None].to(torch.float64), sample_rate=sr)["spectrum_db"][0]
        fy = style_features(y[None].to(torch.float64), sample_rate=sr)["spectrum_db"][0]
        fr = style_features(ref[None].to(torch.float64), sample_rate=sr)["spectrum_db"][0]
    bands = torch.arange(fx.shape[0], dtype=torch.float64)
    line_plot(out / "spectra.png", bands, {"input": fx, "output": fy, "reference": fr},
              xlabel="mel band", ylabel="relative level (dB)",
              title="long-term spectrum shape")
    files.append("spectra.png")
    if fit_res.losses:
        loss_curve(out / "loss.png", fit_res.losses, title="style loss")
        files.append("loss.png")
    return files


def _section(before: dict[str, float], after: dict[str, float], files: list[str],
             fit_res: StyleFit) -> Any:
    from diffdsp.report import Section

    imgs = [(f, c) for f, c in (("eq_response.png", "fitted EQ response"),
                                 ("gain_reduction.png", "compressor gain over time"),
                                 ("spectra.png", "spectrum shapes"),
                                 ("loss.png", "loss per step")) if f in files]
    s = fit_res.settings[0]
    text = (f"Style transfer ({fit_res.fit.get('mode')}, {fit_res.fit.get('strategy')}): "
            f"compressor threshold {s['compressor']['threshold_db']:.1f} dB, ratio "
            f"{s['compressor']['ratio']:.2f}, attack {s['compressor']['attack_ms']:.1f} ms, "
            f"release {s['compressor']['release_ms']:.0f} ms; output gain "
            f"{s['gain']['gain_db']:.1f} dB.")
    return Section(title="Production style transfer", text=text,
                   metrics={"before": before, "after": after}, images=imgs,
                   audio=[("output", "output.wav")], details=s)


# ----------------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------------


def random_settings(chain: EffectChain, batch: int, *, generator: torch.Generator,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """Random normalised chain settings in DeepAFx-ST-like ranges (for data and evals).

    EQ gains uniform in +-12 dB, cutoffs and Qs uniform in normalised space; compressor threshold
    in [-40, -5] dB, ratio in [1, 8], attack [1, 50] ms, release [30, 500] ms, knee [0, 12] dB,
    makeup 0..6 dB; output gain -6..6 dB.

    Examples:
        >>> ch = style_chain(24000)
        >>> random_settings(ch, 3, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 25])
    """
    def uni(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(batch, generator=generator, dtype=torch.float64)

    vals: dict[str, dict[str, Tensor]] = {"eq": {}, "compressor": {}, "gain": {}}
    eq_ranges: dict[str, ParamRange] = getattr(chain.effects["eq"], "param_ranges")  # noqa: B009
    for k, r in eq_ranges.items():
        if k.endswith("gain_db"):
            vals["eq"][k] = uni(-12.0, 12.0)
        else:
            vals["eq"][k] = r.denormalise(uni(0.1, 0.9))
    vals["compressor"] = {"threshold_db": uni(-40.0, -5.0), "ratio": torch.exp(uni(0.0,
                          math.log(8.0))), "attack_ms": torch.exp(uni(0.0, math.log(50.0))),
                          "release_ms": torch.exp(uni(math.log(30.0), math.log(500.0))),
                          "knee_db": uni(0.0, 12.0), "makeup_db": uni(0.0, 6.0)}
    vals["gain"] = {"gain_db": uni(-6.0, 6.0)}
    cols = [chain.effects[n].normalise(vals[n], batch) for n in chain.effects]  # type: ignore[operator]
    return torch.cat(cols, dim=-1).to(dtype)


def demo(out_dir: Path, *, quick: bool, seed: int, progress: Any = None) -> Any:
    """``diffdsp demo`` section: copy the style of one speech excerpt onto another."""
    from diffdsp import data
    from diffdsp.io import load_audio, resample, save_audio
    from diffdsp.tasks._common import prepare_out_dir

    out = prepare_out_dir(out_dir)
    sr = 24000
    x, sr0 = load_audio(data.path("speech_music/speech_librispeech_198-209-0000.flac"))
    x = resample(x, sr0, sr)[:1]
    seconds = 2 if quick else 5
    a = x[..., : seconds * sr]
    b = x[..., seconds * sr: 2 * seconds * sr]
    chain = style_chain(sr)
    p = random_settings(chain, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        inp = chain(a[None], p[:1])[0]
        ref = chain(b[None], p[1:])[0]
    peak = float(torch.maximum(inp.abs().max(), ref.abs().max()))
    inp, ref = inp * (0.25 / peak), ref * (0.25 / peak)
    save_audio(out / "input.wav", inp, sr)
    save_audio(out / "reference.wav", ref, sr)
    return run(out / "input.wav", out / "reference.wav", out, steps=60 if quick else 300,
               seed=seed, progress=progress)
