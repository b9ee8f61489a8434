"""PNG plots a practitioner expects (matplotlib, Agg backend, imported lazily).

Every function renders into memory and writes atomically; they return the path written.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffdsp.io import PathLike, atomic_write_bytes

__all__ = ["line_plot", "loss_curve", "spectrograms"]


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise ImportError("plots need matplotlib: pip install 'diffdsp[cli]'") from exc
    return plt


def _save(fig: Any, path: PathLike) -> Path:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _np(x: Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def spectrograms(
    path: PathLike,
    signals: Mapping[str, Tensor],
    sample_rate: int,
    *,
    n_fft: int = 2048,
    title: str = "",
    top_db: float = 90.0,
) -> Path:
    """Log-magnitude spectrograms of one or more mono signals, side by side, shared colour scale.

    Args:
        path: PNG file to write.
        signals: label -> signal ``(time,)`` or ``(channels, time)`` (channels are averaged).
        sample_rate: in Hz.
        n_fft: FFT size (hop ``n_fft // 4``).
        title: figure title.
        top_db: dynamic range shown below the loudest bin.
    """
    plt = _plt()
    specs = {}
    for label, x in signals.items():
        x = x.detach().to("cpu", torch.float32)
        if x.ndim > 1:
            x = x.reshape(-1, x.shape[-1]).mean(0)
        nfft = int(min(n_fft, max(16, 2 ** int(np.floor(np.log2(max(x.numel(), 16)))))))
        if x.numel() < nfft:
            x = torch.nn.functional.pad(x, (0, nfft - x.numel()))
        s = torch.stft(x, nfft, nfft // 4, window=torch.hann_window(nfft), return_complex=True)
        specs[label] = 20 * np.log10(np.maximum(s.abs().numpy(), 1e-7))
    vmax = max(float(s.max()) for s in specs.values())
    fig, axes = plt.subplots(1, len(specs), figsize=(4.5 * len(specs), 3.4), squeeze=False,
                             layout="constrained")
    for ax, (label, s) in zip(axes[0], specs.items(), strict=True):
        dur = (s.shape[1] - 1) * (s.shape[0] - 1) * 2 / 4 / sample_rate
        im = ax.imshow(s, origin="lower", aspect="auto", cmap="magma", vmin=vmax - top_db,
                       vmax=vmax, extent=(0.0, max(dur, 1e-3), 0.0, sample_rate / 2 / 1000))
        ax.set_title(label)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes[0].tolist(), label="dB")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def line_plot(
    path: PathLike,
    x: Tensor | np.ndarray | Sequence[float],
    ys: Mapping[str, Tensor | np.ndarray | Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
) -> Path:
    """One or more curves over a shared x axis (responses, EDCs, T60 per band, ...)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    xv = _np(x)
    for label, y in ys.items():
        style = (styles or {}).get(label, "-")
        ax.plot(xv, _np(y), style, label=label)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if len(ys) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def loss_curve(path: PathLike, losses: Sequence[float] | Mapping[str, Sequence[float]],
               *, title: str = "loss") -> Path:
    """Optimisation loss per step (log scale when positive)."""
    named = losses if isinstance(losses, Mapping) else {"loss": losses}
    curves = {k: np.asarray(v, dtype=np.float64) for k, v in named.items()}
    positive = all(np.nanmin(v) > 0 for v in curves.values() if v.size)
    first = next(iter(curves.values()))
    return line_plot(path, np.arange(1, first.size + 1), curves, xlabel="step", ylabel="loss",
                     title=title, logy=positive)
