"""Single-system optimisation: fit the parameters of one processor to one objective.

:func:`fit` is the loop every per-example task uses (reverb fitting, sound matching, style
transfer, phase alignment): Adam or L-BFGS, a learning-rate schedule, early stopping, best-state
tracking, a time budget, a progress callback, and checkpoint/resume. It is not a dataset trainer:
learned controllers use Lightning (``diffdsp.train``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from diffdsp._validation import InputError, check_choice, check_int

__all__ = ["FitResult", "fit"]

Optimizer = Literal["adam", "lbfgs"]
Schedule = Literal["cosine", "plateau"] | None


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        steps: optimiser steps taken (this run plus any resumed ones).
        seconds: wall time of this run.
        final_loss: loss at the last step.
        best_loss: lowest loss seen; the parameters hold the corresponding values on return.
        losses: loss per step.
        converged: stopped by patience, or the best loss changed by less than 0.1% over the last
            tenth of the steps.
        stopped_reason: ``"steps"``, ``"patience"``, ``"time_budget"`` or ``"non_finite"``.
    """

    steps: int
    seconds: float
    final_loss: float
    best_loss: float
    losses: list[float] = field(default_factory=list)
    converged: bool = False
    stopped_reason: str = "steps"

    def to_dict(self) -> dict[str, Any]:
        """The ``fit`` block of ``result.json``."""
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "final_loss": self.final_loss,
            "best_loss": self.best_loss,
            "converged": self.converged,
            "stopped_reason": self.stopped_reason,
        }


def _param_list(params: nn.Module | Iterable[Tensor]) -> list[Tensor]:
    ps = list(params.parameters()) if isinstance(params, nn.Module) else list(params)
    ps = [p for p in ps if p.requires_grad]
    if not ps:
        raise InputError("fit needs at least one tensor with requires_grad=True, got none")
    return ps


def _converged(losses: list[float], best: float) -> bool:
    n = len(losses)
    if n < 20:
        return False
    tail = losses[: n - max(2, n // 10)]
    earlier_best = min((v for v in tail if math.isfinite(v)), default=math.inf)
    if not math.isfinite(earlier_best):
        return False
    return (earlier_best - best) <= 1e-3 * max(abs(earlier_best), 1e-12)


def fit(
    params: nn.Module | Iterable[Tensor],
    loss_fn: Callable[[], Tensor],
    *,
    steps: int = 500,
    lr: float = 1e-2,
    optimizer: Optimizer = "adam",
    schedule: Schedule = "cosine",
    patience: int | None = None,
    min_delta: float = 0.0,
    time_budget_s: float | None = None,
    grad_clip: float | None = None,
    progress: Callable[[int, float], None] | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: bool = False,
) -> FitResult:
    """Minimise ``loss_fn()`` over ``params`` and leave the best parameters in place.

    Args:
        params: an ``nn.Module`` (its trainable parameters) or tensors with ``requires_grad``.
        loss_fn: closure returning a scalar loss tensor that depends on ``params``.
        steps: maximum number of optimiser steps (in total, when resuming).
        lr: learning rate.
        optimizer: ``"adam"`` or ``"lbfgs"`` (strong-Wolfe line search, one iteration per step).
        schedule: ``"cosine"`` annealing over ``steps``, ``"plateau"`` (halve on a 20-step
            plateau), or ``None``.
        patience: stop after this many steps without an improvement larger than ``min_delta``.
        min_delta: smallest absolute improvement that resets ``patience``.
        time_budget_s: stop after this many seconds of wall time.
        grad_clip: clip the global gradient norm to this value.
        progress: called as ``progress(step, loss)`` after every step.
        checkpoint_path: where to save a checkpoint every ``checkpoint_every`` steps, at the end,
            and when interrupted (``KeyboardInterrupt`` is re-raised after saving).
        checkpoint_every: steps between checkpoints.
        resume: continue from ``checkpoint_path`` when it exists.

    Returns:
        A :class:`FitResult`; the parameters hold the best values seen.

    Examples:
        >>> w = torch.zeros(1, requires_grad=True)
        >>> r = fit([w], lambda: ((w - 3.0) ** 2).sum(), steps=300, lr=0.1)
        >>> round(float(w), 2), r.steps
        (3.0, 300)
    """
    check_choice(optimizer, "optimizer", ("adam", "lbfgs"))
    check_choice(schedule, "schedule", ("cosine", "plateau", None))
    steps = check_int(steps, "steps", minimum=1)
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr!r}")
    ps = _param_list(params)
    opt: torch.optim.Optimizer
    if optimizer == "adam":
        opt = torch.optim.Adam(ps, lr=lr)
    else:
        opt = torch.optim.LBFGS(ps, lr=lr, max_iter=1, line_search_fn="strong_wolfe",
                                history_size=20)
    sched: Any = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    elif schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=20)

    losses: list[float] = []
    best_loss = math.inf
    best_state = [p.detach().clone() for p in ps]
    start_step = 0
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume and ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        with torch.no_grad():
            for p, v in zip(ps, state["params"], strict=True):
                p.copy_(v)
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        best_state = [v.to(p.device) for p, v in zip(ps, state["best_state"], strict=True)]
        best_loss = float(state["best_loss"])
        losses = list(state["losses"])
        start_step = int(state["step"])
        torch.set_rng_state(state["rng"])

    def save(step: int) -> None:
        if ckpt is None:
            return
        import io as _io

        from diffdsp.io import atomic_write_bytes

        buf = _io.BytesIO()
        torch.save(
            {
                "step": step,
                "params": [p.detach().cpu() for p in ps],
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "best_state": [b.cpu() for b in best_state],
                "best_loss": best_loss,
                "losses": losses,
                "rng": torch.get_rng_state(),
            },
            buf,
        )
        atomic_write_bytes(ckpt, buf.getvalue())

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        if loss.ndim != 0:
            raise InputError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
        if torch.isfinite(loss):
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(ps, grad_clip)
        return loss

    t0 = time.perf_counter()
    reason = "steps"
    since_best = 0
    non_finite = 0
    step = start_step
    try:
        while step < steps:
            # The loss a step reports is that of the parameters *before* the update (Adam and the
            # first evaluation of L-BFGS), so that is the state to keep when it is the best.
            before = [p.detach().clone() for p in ps]
            if optimizer == "lbfgs":
                loss_t = opt.step(closure)
            else:
                loss_t = closure()
            loss_v = float(loss_t.detach())
            if optimizer == "adam" and math.isfinite(loss_v):
                opt.step()  # type: ignore[call-arg]
            step += 1
            losses.append(loss_v)
            if not math.isfinite(loss_v):
                non_finite += 1
                with torch.no_grad():  # step back out of the non-finite region
                    for p, b in zip(ps, before, strict=True):
                        p.copy_(b)
                if non_finite >= 10:
                    reason = "non_finite"
                    break
            elif loss_v < best_loss - min_delta:
                best_loss = loss_v
                best_state = before
                since_best = 0
            else:
                since_best += 1
                if loss_v < best_loss:
                    best_loss = loss_v
                    best_state = before
            if sched is not None:
                if schedule == "plateau":
                    sched.step(loss_v if math.isfinite(loss_v) else best_loss)
                else:
                    sched.step()
            if progress is not None:
                progress(step, loss_v)
            if ckpt is not None and step % checkpoint_every == 0:
                save(step)
            if patience is not None and since_best >= patience:
                reason = "patience"
                break
            if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
                reason = "time_budget"
                break
    except KeyboardInterrupt:
        save(step)
        raise
    with torch.no_grad():
        for p, b in zip(ps, best_state, strict=True):
            p.copy_(b)
    save(step)
    final = losses[-1] if losses else math.nan
    return FitResult(
        steps=step,
        seconds=time.perf_counter() - t0,
        final_loss=final,
        best_loss=best_loss,
        losses=losses,
        converged=reason == "patience" or _converged(losses, best_loss),
        stopped_reason=reason,
    )
