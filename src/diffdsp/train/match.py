"""Learned sound matcher: a spectrogram encoder with one head per patch parameter (Lightning).

Training data are rendered on the fly from random parameter sets of a patch (seeded, so every
process of a DDP run sees the same items). The loss is DiffMoog's schedule: the parameter loss
(L1 on normalised parameters) alone for ``param_steps`` steps, then a linear ramp over
``ramp_steps`` into the **signal-chain loss** (a log-magnitude multi-resolution STFT distance
between every module's output of the predicted and the true patch, not only the final output).
All patch parameters are continuous (presets have no categorical ones, so no Gumbel-softmax head
is needed; a categorical head would be ``F.gumbel_softmax`` over its logits). A checkpoint
(``model.pt``) initialises ``diffdsp match --model``.

References:
    Uzrad et al., "DiffMoog", 2024, Sec. 3.2 (encoder, MLP heads, signal-chain loss, schedule);
    Masuda & Saito, ISMIR 2021 (parameter loss, then spectral loss).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError
from diffdsp.io import PathLike
from diffdsp.synth.patch import Patch
from diffdsp.train._common import SeededDataset, import_lightning, make_trainer

__all__ = ["MatcherConfig", "ParamEncoder", "load_matcher", "predict_params", "train"]

CKPT_TYPE = "diffdsp.match_model"
CKPT_VERSION = 1


@dataclass
class MatcherConfig:
    """Sizes and schedule of the learned matcher."""

    sample_rate: int = 8000
    seconds: float = 0.5
    n_fft: int = 512
    hidden: int = 128
    lr: float = 1e-3
    param_steps: int = 200
    ramp_steps: int = 200
    chain_weight: float = 0.1


class ParamEncoder(nn.Module):
    """Log-spectrogram -> conv stack -> pooled embedding -> one sigmoid head per parameter.

    Examples:
        >>> enc = ParamEncoder(["a.x", "b.y"], MatcherConfig())
        >>> enc(torch.randn(3, 4000)).shape
        torch.Size([3, 2])
    """

    def __init__(self, param_names: list[str], config: MatcherConfig) -> None:
        super().__init__()
        self.param_names = list(param_names)
        self.config = config
        n_bins = config.n_fft // 2 + 1
        h = config.hidden
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self.conv = nn.Sequential(
            nn.Conv1d(n_bins, h, 3, padding=1), nn.GELU(),
            nn.Conv1d(h, h, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv1d(h, h, 3, padding=1, stride=2), nn.GELU(),
        )
        self.trunk = nn.Sequential(nn.Linear(2 * h, h), nn.GELU())
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(h, h // 2), nn.GELU(),
                                                 nn.Linear(h // 2, 1)) for _ in param_names)

    def forward(self, audio: Tensor) -> Tensor:
        """``(batch, time)`` audio -> ``(batch, n_params)`` in (0, 1)."""
        win = self.window
        assert isinstance(win, Tensor)
        win = win.to(audio.dtype)
        spec = torch.stft(audio, self.config.n_fft, self.config.n_fft // 4, window=win,
                          return_complex=True).abs()
        x = torch.log(spec.square() + 1e-8)
        x = (x - x.mean((-2, -1), keepdim=True)) / (x.std((-2, -1), keepdim=True) + 1e-5)
        f = self.conv(x)
        emb = self.trunk(torch.cat([f.mean(-1), f.amax(-1)], -1))
        return torch.sigmoid(torch.cat([head(emb) for head in self.heads], -1))


def _log_mag_distance(a: Tensor, b: Tensor) -> Tensor:
    from diffdsp.losses.spectral import multi_resolution_stft_loss

    out = multi_resolution_stft_loss(a, b, fft_sizes=(512, 128), hop_sizes=(128, 32),
                                     win_lengths=(512, 128), w_sc=0.0, w_log_mag=1.0)
    assert isinstance(out, Tensor)
    return out


def signal_chain_loss(patch: Patch, u_hat: Tensor, u: Tensor, n_samples: int) -> Tensor:
    """DiffMoog's signal-chain loss: log-magnitude MR-STFT distance summed over every module.

    Examples:
        >>> from diffdsp.synth.presets import get_preset
        >>> p = get_preset("tremolo", 8000)
        >>> u = p.sample(2, generator=torch.Generator().manual_seed(0))
        >>> float(signal_chain_loss(p, u, u, 1024))
        0.0
    """
    outs_hat = patch(u_hat, n_samples=n_samples, return_all=True)
    with torch.no_grad():
        outs = patch(u, n_samples=n_samples, return_all=True)
    assert isinstance(outs_hat, dict) and isinstance(outs, dict)
    total = torch.zeros((), dtype=u_hat.dtype, device=u_hat.device)
    for name, y in outs.items():
        if y.shape[-1] < 512 or name not in outs_hat:
            continue
        total = total + _log_mag_distance(outs_hat[name], y)
    return total


def _lightning_module(patch: Patch, config: MatcherConfig) -> Any:
    lp = import_lightning()
    n = int(config.seconds * config.sample_rate)

    class MatcherModule(lp.LightningModule):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.patch = patch
            self.encoder = ParamEncoder(patch.param_names, config)
            self.history: list[float] = []

        def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
            u = batch.to(torch.float32)
            with torch.no_grad():
                y = self.patch(u, n_samples=n)
            assert isinstance(y, Tensor)
            u_hat = self.encoder(y[:, 0])
            loss_p = (u_hat - u).abs().mean()
            step = int(self.global_step)
            w = min(1.0, max(0.0, (step - config.param_steps) / max(config.ramp_steps, 1)))
            loss = loss_p
            if w > 0:
                chain = signal_chain_loss(self.patch, u_hat, u, n)
                loss = (1 - w) * loss_p + w * (loss_p + config.chain_weight * chain)
            self.history.append(float(loss.detach()))
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.encoder.parameters(), lr=config.lr)

    return MatcherModule()


def train(
    out_dir: PathLike,
    *,
    patch: str | PathLike = "subtractive",
    steps: int = 2000,
    batch_size: int = 16,
    devices: int = 1,
    strategy: str = "auto",
    accelerator: str = "cpu",
    seed: int = 0,
    config: MatcherConfig | None = None,
    time_budget_s: float | None = None,
    progress: Any = None,
    device: str = "cpu",
) -> Any:
    """Train a matcher for a patch on random renders; write ``model.pt`` and ``result.json``.

    Args:
        out_dir: output folder.
        patch: preset name or patch JSON.
        steps: optimiser steps.
        batch_size: parameter sets per step and process.
        devices: processes (``strategy="ddp"`` for DDP; gloo on CPU).
        strategy: ``"auto"`` or ``"ddp"``.
        accelerator: ``"cpu"`` or ``"gpu"``.
        seed: seed of the data and the initialisation.
        config: :class:`MatcherConfig`.
        time_budget_s: stop after this many seconds.
        progress: unused (Lightning runs quietly).
        device: ``"cpu"``/``"cuda"``/``"auto"`` (maps to ``accelerator`` when not ``"cpu"``).

    Returns:
        :class:`diffdsp.tasks._common.TaskResult`.
    """
    from diffdsp.report.artefacts import write_result_json
    from diffdsp.tasks._common import TaskResult, prepare_out_dir
    from diffdsp.tasks.match import load_patch

    cfg = config or MatcherConfig()
    if device != "cpu":
        accelerator = "gpu" if device == "cuda" or torch.cuda.is_available() else "cpu"
    out = prepare_out_dir(out_dir)
    torch.manual_seed(seed)
    p, _ = load_patch(patch, cfg.sample_rate)
    module = _lightning_module(p, cfg)
    ds = SeededDataset(lambda g: p.sample(1, generator=g, dtype=torch.float32)[0],
                       length=max(steps * batch_size, batch_size), seed=seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    trainer = make_trainer(max_steps=steps, accelerator=accelerator, devices=devices,
                           strategy=strategy, time_budget_s=time_budget_s)
    trainer.fit(module, loader)
    files = ["model.pt", "result.json"]
    result: dict[str, Any] = {}
    if trainer.global_rank == 0:
        ckpt = {"type": CKPT_TYPE, "version": CKPT_VERSION, "patch": p.to_dict(),
                "config": asdict(cfg), "state_dict": module.encoder.state_dict()}
        import io as _io

        from diffdsp.io import atomic_write_bytes

        buf = _io.BytesIO()
        torch.save(ckpt, buf)
        atomic_write_bytes(out / "model.pt", buf.getvalue())
        hist = module.history
        k = max(1, len(hist) // 10)
        result = write_result_json(
            out, task="train_match", inputs=[],
            settings={"patch": str(patch), "steps": steps, "batch_size": batch_size,
                      "devices": devices, "strategy": strategy, **asdict(cfg)},
            metrics_before={"loss": sum(hist[:k]) / k if hist else math.nan},
            metrics_after={"loss": sum(hist[-k:]) / k if hist else math.nan},
            fit={"steps": int(trainer.global_step), "seconds": None,
                 "final_loss": hist[-1] if hist else math.nan, "converged": False},
            seed=seed, files=files)
    return TaskResult(task="train_match", out_dir=out, result=result, files=files)


def load_matcher(path: PathLike) -> tuple[ParamEncoder, Patch, MatcherConfig]:
    """Load ``model.pt`` (refusing other checkpoint types/versions)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"model checkpoint {str(p)!r} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unpickling failure is a bad input
        raise InputError(f"{p}: not a diffdsp checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("type") != CKPT_TYPE or \
            ckpt.get("version") != CKPT_VERSION:
        raise InputError(f"{p}: not a diffdsp match model (type {CKPT_TYPE!r} v{CKPT_VERSION})")
    cfg = MatcherConfig(**ckpt["config"])
    patch = Patch.from_dict(ckpt["patch"])
    enc = ParamEncoder(patch.param_names, cfg)
    enc.load_state_dict(ckpt["state_dict"])
    enc.eval()
    return enc, patch, cfg


def predict_params(model_path: PathLike, audio: Tensor, sample_rate: int, patch: Patch) -> Tensor:
    """Predict normalised parameters ``(batch, n_params)`` of ``patch`` for ``audio (batch, T)``.

    The model must have been trained for a patch with the same free parameter names.
    """
    from diffdsp.io import resample

    enc, trained_patch, cfg = load_matcher(model_path)
    if trained_patch.param_names != patch.param_names:
        raise InputError(f"the model was trained for parameters {trained_patch.param_names}, "
                         f"the patch has {patch.param_names}")
    x = audio.to(torch.float32)
    if sample_rate != cfg.sample_rate:
        x = resample(x, sample_rate, cfg.sample_rate)
    n = int(cfg.seconds * cfg.sample_rate)
    x = torch.nn.functional.pad(x, (0, max(0, n - x.shape[-1])))[..., :n]
    with torch.no_grad():
        return enc(x).to(torch.float64)
