"""Learned production style transfer (DeepAFx-ST): encoder + controller trained with Lightning.

A shared-weight spectrogram encoder ``f`` embeds the input and the style reference; an MLP
controller ``g`` maps the two concatenated embeddings to the normalised parameters of the
EQ -> compressor -> gain chain of :func:`diffdsp.tasks.style.style_chain`, which processes the
input. Training is self-supervised (Sec. 2.1): a source excerpt (the built-in speech/music
recordings of :mod:`diffdsp.data`, a folder of audio, or generated speech-like and music-like
signals) is peak-normalised to -12 dBFS and processed by two random chain settings into
``x_i`` and ``x_r`` (each peak-normalised to -12 dBFS again); both are split into halves ``a``
and ``b``, and with a random choice of the half, the input is ``x_i,a``, the reference
``x_r,b`` and the target ``x_r,a`` (same content as the input, the reference's style). The
loss is DeepAFx-ST's MR-STFT + 100 x MAE (:func:`diffdsp.grad.proxy.proxy_loss`).

The EQ and compressor sit behind one of the five gradient strategies of
:func:`diffdsp.grad.make_strategy` (``autodiff``, ``spsa``, ``proxy``, ``half_hybrid``,
``full_hybrid``); the output gain is always differentiated exactly. The proxy strategies
pre-train a :class:`diffdsp.grad.proxy.ProxyTCN` of the EQ + compressor first (or load one).

``diffdsp train style --out DIR`` writes ``model.pt``; ``diffdsp style INPUT REFERENCE --model
DIR/model.pt`` predicts the parameters in one pass (:func:`load_controller`,
:func:`run_inference`) and writes the same artefacts as the per-example mode. Inference always
runs the real EQ and compressor at the input's sample rate (the encoder sees audio resampled to
the training rate), so every model gives interpretable settings; the ``proxy`` strategy's own
proxy-output inference is :meth:`StyleModel.forward` in ``eval()`` mode.

Deviations from the paper, stated: the encoder is a small strided 2-D CNN instead of an
EfficientNet-B2; no pitch-shift/time-stretch augmentation; defaults are sized for CPUs.

References:
    Steinmetz, Bryan & Reiss, "Style transfer of audio effects with differentiable signal
    processing", JAES 2022, Sec. 2.1 (data), 2.2 (encoder, controller), 3.4 (loss), 3.6
    (|X|^0.3 spectrogram, L2-normalised embedding, 3-layer PReLU MLP, sigmoid, lr drops at 80 %
    and 95 %, gradient clipping 4, SPSA epsilon 5e-4).
"""

from __future__ import annotations

import functools
import io as _io
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_int, check_sample_rate
from diffdsp.data.synthetic import music_like as synthetic_music
from diffdsp.data.synthetic import speech_like as synthetic_speech
from diffdsp.effects.base import Effect, EffectChain
from diffdsp.grad.proxy import (
    STRATEGIES,
    DiffProcessor,
    ProxyConfig,
    ProxyTCN,
    make_strategy,
    proxy_loss,
    train_proxy,
)
from diffdsp.io import PathLike
from diffdsp.train._common import SeededDataset, import_lightning, make_trainer

__all__ = [
    "CKPT_TYPE",
    "SpectrogramEncoder",
    "StyleConfig",
    "StyleController",
    "StyleModel",
    "evaluate",
    "heldout_pairs",
    "load_controller",
    "make_pair",
    "neutral_params",
    "run_inference",
    "source_pool",
    "synthetic_music",
    "synthetic_speech",
    "train",
]

CKPT_TYPE = "diffdsp.style_model"
CKPT_VERSION = 1

#: Peak level (dBFS) of every source, input and reference (DeepAFx-ST, Sec. 3.2).
PEAK_DB = -12.0

#: Built-in recordings used as source audio (first 80 % for training, last 20 % held out).
BUILTIN_SOURCES = (
    "speech_music/speech_librispeech_198-209-0000.flac",
    "speech_music/speech_cmu_arctic_a0007.flac",
    "speech_music/music_guitar_em9_chord_sonicpi.flac",
    "speech_music/music_solo_trumpet_sorohanro.flac",
)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")


@dataclass
class StyleConfig:
    """Sizes and training settings of the learned style-transfer model.

    Attributes:
        sample_rate: rate of the training audio and of the encoder in Hz (paper: 24000).
        segment_s: length of the input, reference and target halves in seconds.
        n_fft: encoder STFT size (paper: 4096 at 24 kHz).
        hop: encoder STFT hop (paper: 2048).
        channels: encoder convolution channels.
        embed_dim: embedding size ``D`` of each recording (paper: 1024).
        hidden: controller width.
        lr: Adam learning rate (dropped 10x at 80 % and 95 % of the steps).
        alpha: weight of the time-domain MAE in the loss (paper: 100).
        strategy: gradient strategy of the EQ + compressor (:data:`diffdsp.grad.STRATEGIES`).
        spsa_epsilon: SPSA perturbation (paper: 5e-4).
        spsa_samples: SPSA perturbations per backward pass.
        real_fraction: probability that a source is a recording (else a generated signal).
        proxy_channels: proxy TCN channels (paper: 64).
        proxy_blocks: proxy TCN blocks (paper: 4).
        proxy_steps: proxy pre-training steps.
        proxy_lr: proxy pre-training learning rate.
    """

    sample_rate: int = 24000
    segment_s: float = 1.5
    n_fft: int = 2048
    hop: int = 1024
    channels: int = 16
    embed_dim: int = 128
    hidden: int = 256
    lr: float = 3e-3
    alpha: float = 100.0
    strategy: str = "autodiff"
    spsa_epsilon: float = 5e-4
    spsa_samples: int = 1
    real_fraction: float = 0.5
    proxy_channels: int = 16
    proxy_blocks: int = 4
    proxy_steps: int = 300
    proxy_lr: float = 3e-3

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        if self.sample_rate < 8000:
            raise InputError(f"sample_rate must be >= 8000 (the EQ's minimum), got "
                             f"{self.sample_rate}")
        check_choice(self.strategy, "strategy", STRATEGIES)
        check_int(self.n_fft, "n_fft", minimum=16)
        check_int(self.hop, "hop", minimum=1)
        if not 0.0 <= self.real_fraction <= 1.0:
            raise InputError(f"real_fraction must be in [0, 1], got {self.real_fraction!r}")
        if self.n_half < self.n_fft:
            raise InputError(f"segment_s {self.segment_s} s is shorter than one encoder frame "
                             f"(n_fft {self.n_fft} at {self.sample_rate} Hz)")

    @property
    def n_half(self) -> int:
        """Samples of one half (the input, reference and target length)."""
        return round(self.segment_s * self.sample_rate)

    def proxy_config(self) -> ProxyConfig:
        """The :class:`ProxyConfig` of the EQ + compressor proxy (24 parameters)."""
        return ProxyConfig(n_params=24, channels=self.proxy_channels, n_blocks=self.proxy_blocks)


# ----------------------------------------------------------------------------------------------
# source audio and self-supervised pairs
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _pool_cached(sample_rate: int, split: str, data_dir: str | None) -> tuple[Tensor, ...]:
    from diffdsp import data
    from diffdsp.io import load_audio, resample

    if data_dir is None:
        paths = [data.path(name) for name in BUILTIN_SOURCES]
    else:
        root = Path(data_dir)
        if root.is_file():
            paths = [root]
        elif root.is_dir():
            paths = sorted(f for f in root.rglob("*")
                           if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            raise InputError(f"{root}: data folder does not exist")
        if not paths:
            raise InputError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in the "
                             "folder")
    out = []
    for p in paths:
        x, sr = load_audio(p)
        mono = x.mean(0, keepdim=True)
        if sr != sample_rate:
            mono = resample(mono, sr, sample_rate)
        mono = mono[0].float()
        cut = int(0.8 * mono.shape[-1])
        out.append(mono[:cut] if split == "train" else mono[cut:])
    return tuple(out)


def source_pool(sample_rate: int, *, split: str = "train",
                data_dir: PathLike | None = None) -> list[Tensor]:
    """Mono source recordings at ``sample_rate``: the first 80 % (``"train"``) or last 20 %
    (``"test"``) of each built-in speech/music recording, or of each file of ``data_dir``.

    Args:
        sample_rate: target rate in Hz.
        split: ``"train"`` or ``"test"``.
        data_dir: a folder (searched recursively) or a file of audio; ``None``: built-in audio.

    Returns:
        A list of ``(time,)`` float32 tensors.

    Examples:
        >>> pool = source_pool(16000, split="test")
        >>> len(pool), all(x.ndim == 1 for x in pool)
        (4, True)
    """
    check_choice(split, "split", ("train", "test"))
    return list(_pool_cached(int(sample_rate), split,
                             None if data_dir is None else str(Path(data_dir).expanduser())))


def _peak_normalise(x: Tensor, peak_db: float = PEAK_DB) -> Tensor:
    peak = x.abs().amax(-1, keepdim=True).clamp_min(1e-8)
    return x * (10 ** (peak_db / 20) / peak)


def _source(pool: Sequence[Tensor], n: int, g: torch.Generator, real_fraction: float,
            sample_rate: int) -> Tensor:
    usable = [x for x in pool if x.shape[-1] >= n]
    if usable and float(torch.rand(1, generator=g)) < real_fraction:
        for _ in range(8):  # skip (near-)silent excerpts, as the paper does
            rec = usable[int(torch.randint(0, len(usable), (1,), generator=g))]
            start = int(torch.randint(0, rec.shape[-1] - n + 1, (1,), generator=g))
            x = rec[start:start + n]
            if float(_peak_normalise(x).square().mean()) > 1e-4:
                return x
    if float(torch.rand(1, generator=g)) < 0.5:
        return synthetic_speech(n, sample_rate, g)
    return synthetic_music(n, sample_rate, g)


def make_pair(chain: EffectChain, pool: Sequence[Tensor], n_half: int, generator: torch.Generator,
              *, real_fraction: float = 0.5) -> Tensor:
    """One self-supervised training example ``(3, n_half)``: input, reference, target.

    A source of ``2 n_half`` samples (a recording excerpt with probability ``real_fraction``,
    else a generated speech- or music-like signal) is peak-normalised to -12 dBFS and
    processed by two random settings of ``chain`` (:func:`diffdsp.tasks.style.random_settings`)
    into ``x_i`` and ``x_r``, each peak-normalised to -12 dBFS; with a random half ``h`` and the
    other half ``o``: input ``x_i[h]``, reference ``x_r[o]``, target ``x_r[h]``.

    Args:
        chain: the style chain (:func:`diffdsp.tasks.style.style_chain`).
        pool: source recordings (:func:`source_pool`; may be empty).
        n_half: samples per half.
        generator: random generator (source, settings, half).
        real_fraction: probability of a recording source.

    Returns:
        ``(3, n_half)`` float32.

    Examples:
        >>> from diffdsp.tasks.style import style_chain
        >>> ex = make_pair(style_chain(16000), [], 4000, torch.Generator().manual_seed(0))
        >>> ex.shape, round(float(ex[1].abs().max()), 3) <= 0.251
        (torch.Size([3, 4000]), True)

    References:
        Steinmetz et al., JAES 2022, Sec. 2.1 and Fig. 2.
    """
    from diffdsp.tasks.style import random_settings

    x = _peak_normalise(_source(pool, 2 * n_half, generator, real_fraction,
                                chain.sample_rate).float())
    s = random_settings(chain, 2, generator=generator)
    with torch.no_grad():
        y = chain(x.expand(2, 1, -1).contiguous(), s)[:, 0]
    y = _peak_normalise(y)
    a, b = slice(0, n_half), slice(n_half, 2 * n_half)
    h, o = (b, a) if float(torch.rand(1, generator=generator)) < 0.5 else (a, b)
    return torch.stack([y[0, h], y[1, o], y[1, h]]).float()


def heldout_pairs(config: StyleConfig, n: int, *, seed: int = 1234,
                  data_dir: PathLike | None = None) -> Tensor:
    """``n`` held-out examples ``(n, 3, n_half)`` from the test split and held-out seeds.

    Recordings come from the last 20 % of each source (never seen in training); generated
    sources and settings use seeds offset by 10^9 from any training item.

    Examples:
        >>> cfg = StyleConfig(sample_rate=8000, segment_s=0.5, n_fft=256, hop=128)
        >>> heldout_pairs(cfg, 2).shape
        torch.Size([2, 3, 4000])
    """
    from diffdsp.tasks.style import style_chain

    chain = style_chain(config.sample_rate)
    pool = source_pool(config.sample_rate, split="test", data_dir=data_dir)
    out = [make_pair(chain, pool, config.n_half,
                     torch.Generator().manual_seed(10**9 + seed * 1000 + i),
                     real_fraction=config.real_fraction) for i in range(n)]
    return torch.stack(out)


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------


def neutral_params(chain: EffectChain) -> Tensor:
    """Normalised settings ``(1, n_params)`` of a style chain that leave audio almost unchanged:
    EQ gains 0 dB, compressor ratio 1 (threshold -10 dB, no makeup), output gain 0 dB.

    Examples:
        >>> from diffdsp.tasks.style import style_chain
        >>> ch = style_chain(16000)
        >>> s = ch.describe_chain(neutral_params(ch))[0]
        >>> s["compressor"]["ratio"], s["gain"]["gain_db"], s["eq"]["band1_gain_db"]
        (1.0, 0.0, 0.0)
    """
    values = {"compressor": {"threshold_db": -10.0, "ratio": 1.0, "makeup_db": 0.0}}
    cols = [fx.normalise(values.get(name, {}), 1)  # type: ignore[operator]
            for name, fx in chain.effects.items()]
    return torch.cat(cols, -1)


def _dsp_chain(chain: EffectChain) -> EffectChain:
    """The EQ -> compressor part of a style chain (sharing its modules)."""
    eq, comp = chain.effects["eq"], chain.effects["compressor"]
    assert isinstance(eq, Effect) and isinstance(comp, Effect)
    return EffectChain({"eq": eq, "compressor": comp})


class SpectrogramEncoder(nn.Module):
    """``|STFT|^0.3`` -> strided 2-D CNN -> per-frame linear projection -> mean over time -> L2.

    Args:
        config: a :class:`StyleConfig` (``n_fft``, ``hop``, ``channels``, ``embed_dim``).

    Shape:
        ``(batch, time)`` -> ``(batch, embed_dim)`` (unit norm).

    Examples:
        >>> enc = SpectrogramEncoder(StyleConfig(sample_rate=8000, segment_s=0.5, n_fft=256,
        ...                                      hop=128))
        >>> e = enc(torch.randn(2, 4000))
        >>> e.shape, round(float(e.detach().norm(dim=-1)[0]), 4)
        (torch.Size([2, 128]), 1.0)

    References:
        Steinmetz et al., JAES 2022, Sec. 2.2 and 3.6.
    """

    def __init__(self, config: StyleConfig) -> None:
        super().__init__()
        self.n_fft, self.hop = config.n_fft, config.hop
        c = config.channels
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self.convs = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1), nn.PReLU(c),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.PReLU(c),
            nn.Conv2d(c, 2 * c, 3, stride=(2, 1), padding=1), nn.PReLU(2 * c),
            nn.Conv2d(2 * c, 2 * c, 3, stride=(2, 1), padding=1), nn.PReLU(2 * c),
        )
        f = config.n_fft // 2 + 1
        for _ in range(4):
            f = (f - 1) // 2 + 1
        self.proj = nn.Linear(2 * c * f, config.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Embed ``(batch, time)`` audio."""
        if x.shape[-1] < self.n_fft:
            x = nn.functional.pad(x, (0, self.n_fft - x.shape[-1]))
        win = self.window
        assert isinstance(win, Tensor)
        spec = torch.stft(x, self.n_fft, self.hop, window=win.to(x.dtype), return_complex=True)
        mag = (spec.real.square() + spec.imag.square() + 1e-12) ** 0.15  # |X|^0.3
        h = self.convs(mag[:, None])  # (B, C, F', T')
        h = h.permute(0, 3, 1, 2).flatten(2)  # (B, T', C F')
        return nn.functional.normalize(self.proj(h).mean(1), dim=-1)


class StyleModel(nn.Module):
    """Encoder + controller + EQ/compressor behind a gradient strategy + exact output gain.

    Args:
        config: a :class:`StyleConfig`.
        proxy: a trained EQ + compressor proxy (proxy strategies only).
        generator: random generator of the SPSA perturbations.

    Shape:
        ``input`` ``(batch, 1, time)``, ``reference`` ``(batch, 1, time')`` ->
        (``(batch, 1, time)``, ``(batch, 25)``).

    Examples:
        >>> m = StyleModel(StyleConfig(sample_rate=8000, segment_s=0.5, n_fft=256, hop=128))
        >>> y, u = m(torch.randn(2, 1, 4000) * 0.1, torch.randn(2, 1, 4000) * 0.1)
        >>> y.shape, u.shape
        (torch.Size([2, 1, 4000]), torch.Size([2, 25]))
    """

    def __init__(self, config: StyleConfig, *, proxy: ProxyTCN | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        from diffdsp.tasks.style import style_chain

        self.config = config
        self.encoder = SpectrogramEncoder(config)
        self.chain = style_chain(config.sample_rate)
        n = self.chain.n_params
        h = config.hidden
        self.controller = nn.Sequential(
            nn.Linear(2 * config.embed_dim, h), nn.PReLU(), nn.Linear(h, h), nn.PReLU(),
            nn.Linear(h, n))
        # start near a neutral chain (flat EQ, ratio ~1, no makeup, 0 dB gain) rather than the
        # sigmoid's midpoint (ratio 4.5 at -30 dB with 12 dB makeup): training then starts
        # from "output = input" (a stated deviation from the paper's plain initialisation)
        last = self.controller[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.copy_(torch.logit(neutral_params(self.chain)[0].clamp(0.02, 0.98)))
        dsp = _dsp_chain(self.chain)
        self.n_dsp = dsp.n_params
        self.fx: DiffProcessor = make_strategy(
            config.strategy, dsp, proxy=proxy, epsilon=config.spsa_epsilon,
            n_samples=config.spsa_samples, generator=generator)

    def predict(self, x: Tensor, reference: Tensor) -> Tensor:
        """Normalised chain parameters ``(batch, 25)`` from mono ``(batch, time)`` audio."""
        e = torch.cat([self.encoder(x), self.encoder(reference)], dim=-1)
        return torch.sigmoid(self.controller(e))

    def process(self, x: Tensor, params: Tensor) -> Tensor:
        """Apply the chain (through the strategy) to ``(batch, 1, time)``."""
        y = self.fx(x, params[:, : self.n_dsp])
        out = self.chain.effects["gain"](y, params[:, self.n_dsp:])
        assert isinstance(out, Tensor)
        return out

    def forward(self, x: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
        """``(output, params)`` for ``x`` ``(batch, 1, time)`` in the style of ``reference``."""
        u = self.predict(x[:, 0], reference[:, 0])
        return self.process(x, u), u


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------


def _proxy_audio(config: StyleConfig, n: int, seed: int,
                 data_dir: PathLike | None) -> Tensor:
    pool = source_pool(config.sample_rate, split="train", data_dir=data_dir)
    length = 2 * config.n_half
    rows = [_source(pool, length, torch.Generator().manual_seed(seed * 7777 + i),
                    config.real_fraction, config.sample_rate) for i in range(n)]
    return torch.stack(rows).float()


def pretrain_proxy(config: StyleConfig, *, seed: int = 0, data_dir: PathLike | None = None,
                   time_budget_s: float | None = None,
                   progress: Callable[[int, float], None] | None = None) -> Any:
    """Pre-train the EQ + compressor proxy for the proxy strategies (DeepAFx-ST Sec. 3.5).

    Parameters are drawn half uniformly in [0, 1]^24 (the paper) and half from the style
    data's distribution (:func:`diffdsp.tasks.style.random_settings`), on the training sources.

    Returns:
        A :class:`diffdsp.grad.proxy.ProxyTrainResult`.
    """
    from diffdsp.tasks.style import random_settings, style_chain

    chain = style_chain(config.sample_rate)
    dsp = _dsp_chain(chain)

    def sample(batch: int, g: torch.Generator) -> Tensor:
        uniform = torch.rand(batch, dsp.n_params, generator=g)
        styled = random_settings(chain, batch, generator=g)[:, : dsp.n_params]
        pick = torch.rand(batch, 1, generator=g) < 0.5
        return torch.where(pick, uniform, styled)

    audio = _proxy_audio(config, 16, seed, data_dir)
    return train_proxy(dsp, audio, n_params=dsp.n_params, config=config.proxy_config(),
                       steps=max(1, config.proxy_steps), batch_size=4,
                       n_samples=min(config.n_half, 8192), lr=config.proxy_lr,
                       alpha=config.alpha, sample_params=sample, seed=seed,
                       time_budget_s=time_budget_s, progress=progress)


def _lightning_module(model: StyleModel, config: StyleConfig, steps: int) -> Any:
    lp = import_lightning()

    class StyleLightning(lp.LightningModule):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.history: list[float] = []

        def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
            x, ref, target = batch[:, 0:1], batch[:, 1:2], batch[:, 2:3]
            y, _ = self.model(x, ref)
            loss = proxy_loss(y, target, alpha=config.alpha)
            self.history.append(float(loss.detach()))
            return loss

        def configure_optimizers(self) -> Any:
            params = [*self.model.encoder.parameters(), *self.model.controller.parameters()]
            opt = torch.optim.Adam(params, lr=config.lr)
            sched = torch.optim.lr_scheduler.MultiStepLR(
                opt, milestones=[max(1, int(0.8 * steps)), max(2, int(0.95 * steps))], gamma=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return StyleLightning()


def evaluate(model: StyleModel, pairs: Tensor, *, use_proxy: bool = False) -> dict[str, Any]:
    """Full-reference metrics on held-out pairs ``(n, 3, time)`` (input, reference, target).

    ``before`` compares the input with the target, ``after`` the model's output with the target
    (:func:`diffdsp.tasks.style.metrics`: MR-STFT, centroid error in Hz, RMS error in dB,
    loudness error in LU), each averaged over the pairs. The model runs in ``eval()`` mode: the
    real EQ and compressor, except with ``use_proxy`` for the ``proxy`` strategy (whose
    inference is its proxy).

    Returns:
        ``{"before": {...}, "after": {...}, "n_pairs": n}``.
    """
    from diffdsp.tasks.style import metrics

    sr = model.config.sample_rate
    was_training = model.training
    model.eval()
    before: list[dict[str, float]] = []
    after: list[dict[str, float]] = []
    with torch.no_grad():
        for ex in pairs:
            x, ref, tgt = ex[0:1][None], ex[1:2][None], ex[2:3][None]
            u = model.predict(x[:, 0], ref[:, 0])
            if use_proxy and model.fx.proxy is not None:
                y = model.chain.effects["gain"](model.fx.proxy(x, u[:, : model.n_dsp]),
                                                u[:, model.n_dsp:])
            else:
                y = model.chain(x, u)
            before.append(metrics(x[0], tgt[0], sample_rate=sr))
            after.append(metrics(y[0], tgt[0], sample_rate=sr))
    model.train(was_training)

    def mean(rows: list[dict[str, float]]) -> dict[str, float]:
        return {k: float(sum(r[k] for r in rows) / len(rows)) for k in rows[0]}

    return {"before": mean(before), "after": mean(after), "n_pairs": len(before)}


def _save_checkpoint(path: Path, model: StyleModel, proxy: ProxyTCN | None,
                     extra: dict[str, Any]) -> None:
    from diffdsp.io import atomic_write_bytes

    ckpt = {"type": CKPT_TYPE, "version": CKPT_VERSION, "config": asdict(model.config),
            "encoder": model.encoder.state_dict(), "controller": model.controller.state_dict(),
            "proxy": None if proxy is None else {"config": asdict(proxy.config),
                                                   "state_dict": proxy.state_dict()},
            **extra}
    buf = _io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def train(
    out_dir: PathLike,
    *,
    steps: int = 2000,
    batch_size: int = 4,
    grad: str = "autodiff",
    devices: int = 1,
    strategy: str = "auto",
    accelerator: str = "cpu",
    seed: int = 0,
    config: StyleConfig | None = None,
    data_dir: PathLike | None = None,
    proxy_path: PathLike | None = None,
    proxy: ProxyTCN | None = None,
    eval_pairs: int = 4,
    time_budget_s: float | None = None,
    progress: Any = None,
    device: str = "cpu",
) -> Any:
    """``diffdsp train style``: train the encoder and controller; write ``model.pt``.

    Args:
        out_dir: output folder (``model.pt``, ``result.json``, ``loss.png``).
        steps: optimiser steps.
        batch_size: examples per step and process.
        grad: gradient strategy of the EQ + compressor (:data:`diffdsp.grad.STRATEGIES`);
            overrides ``config.strategy``.
        devices: processes / devices (``strategy="ddp"``: DDP, gloo on CPU).
        strategy: Lightning strategy, ``"auto"`` or ``"ddp"``.
        accelerator: ``"cpu"`` or ``"gpu"``.
        seed: seed of the data, initialisation and SPSA perturbations.
        config: :class:`StyleConfig`.
        data_dir: folder of source audio (default: the built-in recordings), plus generated
            speech- and music-like signals.
        proxy_path: a ``model.pt`` of an earlier proxy-strategy run whose proxy to reuse (else
            the proxy strategies pre-train one for ``config.proxy_steps`` steps).
        proxy: a trained EQ + compressor proxy to use (Python callers; see
            :func:`pretrain_proxy`), instead of ``proxy_path``.
        eval_pairs: held-out pairs measured after training (``result.json`` metrics; 0: none).
        time_budget_s: stop training after this many seconds.
        progress: ``progress(stage, step, total, loss)``.
        device: ``"cpu"``/``"cuda"``/``"auto"`` (selects ``accelerator`` when not ``"cpu"``).

    Returns:
        A :class:`diffdsp.tasks._common.TaskResult`.

    Raises:
        InputError: bad options, an unreadable data folder or proxy checkpoint.
    """
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import TaskResult, prepare_out_dir

    check_choice(grad, "grad", STRATEGIES)
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_int(eval_pairs, "eval_pairs", minimum=0)
    cfg = StyleConfig(**{**asdict(config or StyleConfig()), "strategy": grad})
    if device != "cpu":
        accelerator = "gpu" if device == "cuda" or torch.cuda.is_available() else "cpu"
    source_pool(cfg.sample_rate, split="train", data_dir=data_dir)  # check the data first
    proxy_info: dict[str, Any] | None = None
    if grad not in ("proxy", "half_hybrid", "full_hybrid"):
        proxy = None
    elif proxy is not None:
        if proxy.n_params != 24:
            raise InputError(f"the proxy must imitate the EQ + compressor (24 parameters), got "
                             f"{proxy.n_params}")
        proxy_info = {"config": asdict(proxy.config), "source": "given"}
    elif proxy_path is not None:
        proxy_cfg, _, proxy = _load_ckpt(proxy_path)
        if proxy_cfg.sample_rate != cfg.sample_rate:
            raise InputError(f"{proxy_path}: its proxy was trained at {proxy_cfg.sample_rate} "
                             f"Hz, this run is at {cfg.sample_rate} Hz")
        if proxy is None:
            raise InputError(f"{proxy_path}: this style model has no neural proxy (trained with "
                             "a non-proxy strategy)")
        proxy_info = {"config": asdict(proxy.config), "source": str(proxy_path)}
    out = prepare_out_dir(out_dir)
    t0 = time.perf_counter()
    if grad in ("proxy", "half_hybrid", "full_hybrid") and proxy is None:
        def cb(step: int, loss: float) -> None:
            if progress is not None:
                progress("pre-train proxy", step, cfg.proxy_steps, loss)

        res = pretrain_proxy(cfg, seed=seed, data_dir=data_dir, progress=cb)
        proxy = res.proxy
        proxy_info = res.to_dict()
    torch.manual_seed(seed)
    lp = import_lightning()
    rank_seed = seed
    model = StyleModel(cfg, proxy=proxy,
                       generator=torch.Generator().manual_seed(rank_seed + 17))
    module = _lightning_module(model, cfg, steps)
    from diffdsp.tasks.style import style_chain

    chain = style_chain(cfg.sample_rate)
    pool = source_pool(cfg.sample_rate, split="train", data_dir=data_dir)
    ds = SeededDataset(lambda g: make_pair(chain, pool, cfg.n_half, g,
                                           real_fraction=cfg.real_fraction),
                       length=max(steps * batch_size * devices, batch_size), seed=seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)

    class _Progress(lp.Callback):  # type: ignore[name-defined]
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            if progress is not None and trainer.is_global_zero:
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
                progress("train style", int(trainer.global_step), steps, float(loss))

    trainer = make_trainer(max_steps=steps, accelerator=accelerator, devices=devices,
                           strategy=strategy, time_budget_s=time_budget_s,
                           gradient_clip_val=4.0, callbacks=[_Progress()])
    trainer.fit(module, loader)
    train_s = time.perf_counter() - t0
    files = ["model.pt", "result.json"]
    result: dict[str, Any] = {}
    if trainer.global_rank == 0:
        model.eval()
        hist = module.history
        _save_checkpoint(out / "model.pt", model, proxy,
                         {"steps": int(trainer.global_step), "seed": seed})
        if hist:
            from diffdsp.report.plots import loss_curve

            loss_curve(out / "loss.png", hist, title="training loss (MR-STFT + 100 MAE)")
            files.append("loss.png")
        metrics: dict[str, Any] = {"before": {}, "after": {}}
        if eval_pairs:
            metrics = evaluate(model, heldout_pairs(cfg, eval_pairs, seed=seed,
                                                    data_dir=data_dir),
                               use_proxy=grad == "proxy")
        k = max(1, len(hist) // 10)
        result = write_result_json(
            out, task="train_style", inputs=[],
            settings={"steps": steps, "batch_size": batch_size, "grad": grad,
                      "devices": devices, "strategy": strategy,
                      "data_dir": None if data_dir is None else str(data_dir),
                      "proxy_path": None if proxy_path is None else str(proxy_path),
                      "eval_pairs": eval_pairs, **asdict(cfg)},
            metrics_before={f"heldout_{k2}": v for k2, v in metrics["before"].items()},
            metrics_after={f"heldout_{k2}": v for k2, v in metrics["after"].items()},
            fit={"steps": int(trainer.global_step), "seconds": train_s,
                 "final_loss": sum(hist[-k:]) / k if hist else math.nan,
                 "first_loss": sum(hist[:k]) / k if hist else math.nan, "converged": False},
            seed=seed, files=files, extra={"proxy": proxy_info})
    return TaskResult(task="train_style", out_dir=out, result=result, files=files)


# ----------------------------------------------------------------------------------------------
# checkpoints and inference
# ----------------------------------------------------------------------------------------------


def _load_ckpt(path: PathLike) -> tuple[StyleConfig, dict[str, Any], ProxyTCN | None]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: style model checkpoint does not exist (learned mode needs the "
                         "model.pt of 'diffdsp train style')")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unpickling failure is a bad input
        raise InputError(f"{p}: not a diffdsp style model for the learned mode "
                         f"({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("type") != CKPT_TYPE:
        raise InputError(f"{p}: not a diffdsp style model for the learned mode (expected a "
                         f"model.pt of 'diffdsp train style', type {CKPT_TYPE!r})")
    if ckpt.get("version") != CKPT_VERSION:
        raise InputError(f"{p}: style model version {ckpt.get('version')!r} is not supported "
                         f"by the learned mode (expected {CKPT_VERSION})")
    cfg = StyleConfig(**ckpt["config"])
    proxy = None
    if ckpt.get("proxy") is not None:
        proxy = ProxyTCN(ProxyConfig(**ckpt["proxy"]["config"]))
        proxy.load_state_dict(ckpt["proxy"]["state_dict"])
        proxy.eval()
        proxy.requires_grad_(False)
    return cfg, ckpt, proxy


@dataclass
class StyleController:
    """A trained style model for one-pass inference (see :func:`load_controller`).

    Attributes:
        model: the :class:`StyleModel` (``eval()`` mode).
        config: its :class:`StyleConfig`.
        path: the checkpoint it came from.
        notes: remarks of the last :meth:`predict` (e.g. parameters limited at a low rate).
    """

    model: StyleModel
    config: StyleConfig
    path: str = ""
    notes: list[str] = field(default_factory=list)

    def make_chain(self, sample_rate: int) -> EffectChain:
        """The EQ -> compressor -> gain chain at ``sample_rate`` that :meth:`predict` targets.

        At a rate at or above the training rate the EQ keeps the training chain's frequency
        ranges (every predicted frequency stays valid); below it, the rate's own ranges.
        """
        from diffdsp.tasks.style import style_chain

        chain = style_chain(sample_rate)
        if sample_rate >= self.config.sample_rate:
            eq = chain.effects["eq"]
            assert isinstance(eq, Effect)
            trained = getattr(self.model.chain.effects["eq"], "param_ranges")  # noqa: B009
            eq.param_ranges = dict(trained)
            chain.param_ranges = {f"{name}.{k}": r for name, fx in chain.effects.items()
                                  for k, r in getattr(fx, "param_ranges").items()}  # noqa: B009
        return chain

    def predict(self, x: Tensor, reference: Tensor, sample_rate: int) -> Tensor:
        """Normalised parameters ``(batch, 25)`` of :meth:`make_chain` ``(sample_rate)``.

        The model was trained on inputs and references peak-normalised to -12 dBFS. Both
        signals are mixed to mono, peak-normalised and resampled to the training rate for the
        encoder; the predicted physical settings are then mapped back to the signals' own
        levels (the compressor threshold moves with the input's normalisation gain ``G_x``, the
        output gain by ``G_x - G_r``, so that ``chain(x)`` equals the normalised processing
        scaled to the reference's level) and re-normalised for the chain at ``sample_rate``.
        Settings that fall outside the chain's ranges (a very quiet input, EQ frequencies above
        the range at a rate below the training rate) are limited to them, with a note in
        :attr:`notes` and a warning.

        Args:
            x: input ``(batch, channels, time)``.
            reference: reference ``(batch or 1, channels', time')``.
            sample_rate: rate of both in Hz.

        Returns:
            ``(batch, 25)`` in [0, 1], ``x``'s dtype and device.
        """
        from diffdsp._numerics import amp_to_db
        from diffdsp.io import resample

        self.notes = []
        sr = self.config.sample_rate
        dev = x.device
        self.model.to(dev)
        xm = x.float().mean(1)
        rm = reference.float().mean(1).expand(xm.shape[0], -1)
        gx = PEAK_DB - amp_to_db(xm.abs().amax(-1).double(), 1e-8)  # (batch,) dB
        gr = PEAK_DB - amp_to_db(rm.abs().amax(-1).double(), 1e-8)
        xe, re = _peak_normalise(xm), _peak_normalise(rm)
        if sample_rate != sr:
            xe, re = resample(xe, sample_rate, sr), resample(re, sample_rate, sr)
        with torch.no_grad():
            u = self.model.predict(xe, re).double()
        train_chain = self.model.chain
        chain = self.make_chain(sample_rate)
        vals = {name: train_chain.effects[name].denormalise(block)  # type: ignore[operator]
                for name, block in train_chain.split(u).items()}
        vals["compressor"]["threshold_db"] = vals["compressor"]["threshold_db"] - gx
        vals["gain"]["gain_db"] = vals["gain"]["gain_db"] + gx - gr
        v = torch.cat([chain.effects[name].normalise(vals[name], u.shape[0])  # type: ignore[operator]
                       .to(torch.float64) for name in chain.effects], -1)
        outside = (v < -1e-6) | (v > 1 + 1e-6)
        if bool(outside.any()):
            names = sorted({chain.param_names[i] for i in outside.nonzero()[:, 1].tolist()})
            msg = (f"predicted settings outside the chain's ranges were limited to them: "
                   f"{', '.join(names)} (input or reference level, or a rate below the "
                   f"model's {sr} Hz)")
            self.notes.append(msg)
            warnings.warn(msg, stacklevel=2)
        return v.clamp(0.0, 1.0).to(dtype=x.dtype, device=dev)

    def process(self, x: Tensor, reference: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
        """``(output, params)``: ``x`` ``(batch, channels, time)`` in ``reference``'s style."""
        u = self.predict(x, reference, sample_rate)
        chain = self.make_chain(sample_rate).to(x.device)
        with torch.no_grad():
            return chain(x, u), u


def load_controller(path: PathLike) -> StyleController:
    """Load a ``model.pt`` of ``diffdsp train style`` for one-pass inference.

    Args:
        path: the checkpoint.

    Returns:
        A :class:`StyleController`.

    Raises:
        InputError: a missing file, or not a style model of this version.
    """
    cfg, ckpt, proxy = _load_ckpt(path)
    model = StyleModel(cfg, proxy=proxy)
    model.encoder.load_state_dict(ckpt["encoder"])
    model.controller.load_state_dict(ckpt["controller"])
    model.eval()
    model.requires_grad_(False)
    return StyleController(model=model, config=cfg, path=str(path))


def run_inference(
    input_path: PathLike,
    reference_path: PathLike,
    out_dir: PathLike,
    *,
    model: PathLike,
    seed: int = 0,
    device: str = "cpu",
    progress: Any = None,
    plots: bool = True,
) -> Any:
    """``diffdsp style INPUT REFERENCE --model CKPT``: one-pass learned style transfer.

    Writes the per-example mode's artefacts (``output.wav`` at the input's rate and length,
    ``params.json`` with human-readable settings, ``result.json`` with style distances before
    and after, the EQ-response, gain-reduction and spectrum plots and ``report.html``) through
    :func:`diffdsp.tasks.style.run` with ``model=``, which predicts with
    :func:`load_controller`.

    Args:
        input_path: audio to process.
        reference_path: audio whose style to copy.
        out_dir: output folder.
        model: a ``model.pt`` of ``diffdsp train style``.
        seed: random seed.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        progress: ``progress(stage, step, total, loss)`` (unused: one pass).
        plots: write plots and ``report.html``.

    Returns:
        A :class:`diffdsp.tasks._common.TaskResult`.
    """
    from diffdsp.tasks import style as style_task

    load_controller(model)  # refuse a bad checkpoint before touching anything
    return style_task.run(Path(input_path), Path(reference_path), Path(out_dir), model=Path(model),
                          seed=seed,
                          device=device, progress=progress, plots=plots)
