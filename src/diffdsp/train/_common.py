"""Shared Lightning helpers: trainer construction (CPU, GPU, DDP) and seeded on-the-fly datasets.

Lightning is imported inside the functions (extra ``[train]``), so ``import diffdsp.train._common``
needs only torch.

References:
    Lightning documentation, ``Trainer`` and the DDP strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
from torch import Tensor

from diffdsp._validation import InputError, check_choice, check_int

__all__ = ["SeededDataset", "import_lightning", "make_trainer", "worker_seed"]


def import_lightning() -> Any:
    """``lightning`` (``lightning.pytorch``), or an ImportError naming the extra."""
    try:
        import lightning.pytorch as lp
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise ImportError("training needs Lightning: pip install 'diffdsp[train]'") from exc
    return lp


def worker_seed(seed: int, index: int, rank: int = 0) -> int:
    """A deterministic per-item seed from the run seed, the item index and the process rank.

    Examples:
        >>> worker_seed(0, 5) == worker_seed(0, 5), worker_seed(0, 5) == worker_seed(1, 5)
        (True, False)
    """
    return (int(seed) * 1_000_003 + int(index) * 7919 + int(rank) * 104_729) % (2**63 - 1)


class SeededDataset(torch.utils.data.Dataset):
    """A map-style dataset whose item ``i`` is ``make(torch.Generator seeded from (seed, i))``.

    Items are generated on the fly and are identical across epochs, processes and worker counts
    (the generator depends on the index only), so a DDP run with a ``DistributedSampler`` sees
    each item exactly once per epoch.

    Args:
        make: ``make(generator) -> item`` (a tensor or a tuple/dict of tensors).
        length: number of items.
        seed: run seed.

    Examples:
        >>> ds = SeededDataset(lambda g: torch.rand(3, generator=g), length=4, seed=1)
        >>> bool(torch.equal(ds[2], ds[2])), len(ds)
        (True, 4)
    """

    def __init__(self, make: Callable[[torch.Generator], Any], *, length: int,
                 seed: int = 0) -> None:
        self.make = make
        self.length = check_int(length, "length", minimum=1)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < self.length:
            raise IndexError(index)
        g = torch.Generator().manual_seed(worker_seed(self.seed, index))
        return self.make(g)


def make_trainer(
    *,
    max_steps: int,
    accelerator: str = "cpu",
    devices: int = 1,
    strategy: str = "auto",
    time_budget_s: float | None = None,
    out_dir: str | None = None,
    gradient_clip_val: float | None = 1.0,
    deterministic: bool = False,
    callbacks: list[Any] | None = None,
    log_every_n_steps: int = 10,
) -> Any:
    """A quiet Lightning ``Trainer`` for CPU, GPU or multi-process DDP (``strategy="ddp"``).

    Args:
        max_steps: optimiser steps.
        accelerator: ``"cpu"``, ``"gpu"``/``"cuda"`` or ``"auto"``.
        devices: number of devices / processes (DDP on CPU uses gloo).
        strategy: ``"auto"``, ``"ddp"`` or ``"ddp_spawn"``.
        time_budget_s: stop after this many seconds.
        out_dir: Lightning's root dir (logs); ``None``: no logger, no checkpoints.
        gradient_clip_val: global gradient-norm clip.
        deterministic: ``torch.use_deterministic_algorithms`` through Lightning.
        callbacks: extra callbacks.
        log_every_n_steps: logging period.

    Returns:
        ``lightning.pytorch.Trainer``.
    """
    lp = import_lightning()
    check_int(max_steps, "max_steps", minimum=1)
    check_int(devices, "devices", minimum=1)
    check_choice(strategy, "strategy", ("auto", "ddp", "ddp_spawn"))
    acc = "gpu" if accelerator == "cuda" else accelerator
    check_choice(acc, "accelerator", ("cpu", "gpu", "auto"))
    if acc == "gpu" and not torch.cuda.is_available():
        raise InputError("accelerator 'gpu' requested but no CUDA device is available")
    strat: Any = strategy
    if strategy == "ddp" and acc == "cpu":
        from lightning.pytorch.strategies import DDPStrategy

        strat = DDPStrategy(process_group_backend="gloo")
    return lp.Trainer(
        accelerator=acc, devices=devices, strategy=strat, max_steps=max_steps, max_epochs=-1,
        max_time=timedelta(seconds=time_budget_s) if time_budget_s else None,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=out_dir,
        gradient_clip_val=gradient_clip_val, deterministic=deterministic,
        callbacks=callbacks or [], log_every_n_steps=log_every_n_steps,
    )


def batch_to(batch: Any, device: torch.device) -> Any:
    """Move a tensor or a (nested) tuple/list/dict of tensors to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: batch_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to(v, device) for v in batch)
    return batch
