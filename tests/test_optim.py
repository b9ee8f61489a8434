"""optim.fit: convergence, best-state restore, early stop, budgets, checkpoint/resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.optim import fit


def _quadratic() -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    return torch.zeros(3, dtype=torch.float64, requires_grad=True), target


@pytest.mark.parametrize("optimizer,lr,steps", [("adam", 0.1, 400), ("lbfgs", 1.0, 20)])
def test_converges_on_a_quadratic(optimizer: str, lr: float, steps: int) -> None:
    w, target = _quadratic()
    res = fit([w], lambda: ((w - target) ** 2).sum(), steps=steps, lr=lr,
              optimizer=optimizer)  # type: ignore[arg-type]
    torch.testing.assert_close(w.detach(), target, rtol=0, atol=1e-3)
    assert res.best_loss < 1e-6 and res.steps == steps and len(res.losses) == steps


def test_restores_the_best_state_and_stops_on_patience() -> None:
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    calls = {"n": 0}

    def loss() -> torch.Tensor:
        calls["n"] += 1
        # lr far too high: Adam oscillates; the best iterate must be kept, not the last
        return ((w - 0.3) ** 2).sum()

    res = fit([w], loss, steps=200, lr=5.0, schedule=None, patience=5)
    assert res.stopped_reason == "patience" and res.steps < 200
    assert math.isclose(float(((w.detach() - 0.3) ** 2).sum()), res.best_loss, rel_tol=1e-12)
    assert res.best_loss <= min(res.losses)


def test_non_finite_losses_stop_and_keep_best() -> None:
    w = torch.ones(1, requires_grad=True)
    n = {"i": 0}

    def loss() -> torch.Tensor:
        n["i"] += 1
        return (w**2).sum() if n["i"] < 5 else (w * float("nan")).sum()

    res = fit([w], loss, steps=100, lr=0.01)
    assert res.stopped_reason == "non_finite" and math.isfinite(res.best_loss)
    assert torch.isfinite(w).all()


def test_time_budget() -> None:
    w, target = _quadratic()
    res = fit([w], lambda: ((w - target) ** 2).sum(), steps=10**7, time_budget_s=0.2)
    assert res.stopped_reason == "time_budget" and res.seconds < 5


def test_checkpoint_resume_gives_the_same_result(tmp_path: Path) -> None:
    def run(ckpt: Path | None, resume: bool, stop_at: int | None = None) -> torch.Tensor:
        torch.manual_seed(0)
        module = torch.nn.Linear(3, 1).double()
        x = torch.randn(16, 3, dtype=torch.float64)
        y = x @ torch.tensor([[1.0], [2.0], [-1.0]], dtype=torch.float64)

        def progress(step: int, loss: float) -> None:
            if step == stop_at:
                raise KeyboardInterrupt  # what Ctrl-C does mid-run

        fit(module, lambda: ((module(x) - y) ** 2).mean(), steps=60, lr=0.05,
            checkpoint_path=ckpt, checkpoint_every=7, resume=resume, progress=progress)
        return torch.cat([p.detach().flatten() for p in module.parameters()])

    full = run(None, False)
    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        run(ckpt, False, stop_at=33)
    resumed = run(ckpt, True)
    torch.testing.assert_close(resumed, full, rtol=1e-10, atol=1e-12)


def test_bad_arguments() -> None:
    w = torch.zeros(1, requires_grad=True)
    with pytest.raises(InputError, match="optimizer"):
        fit([w], lambda: w.sum(), optimizer="sgd")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="requires_grad"):
        fit([torch.zeros(1)], lambda: torch.zeros(()))
    with pytest.raises(InputError, match="scalar"):
        fit([w], lambda: w * 2, steps=1)
