"""Learned matcher: encoder shapes, signal-chain loss, tiny training, checkpoint, 2-process DDP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.synth.presets import get_preset
from diffdsp.train.match import (
    MatcherConfig,
    ParamEncoder,
    predict_params,
    signal_chain_loss,
    train,
)
from tests.helpers import run_ddp_script

TINY = dict(sample_rate=8000, seconds=0.128, n_fft=128, hidden=16, param_steps=2, ramp_steps=2)


def test_signal_chain_loss_is_zero_at_truth_and_positive_elsewhere() -> None:
    p = get_preset("tremolo", 8000)
    u = p.sample(2, generator=torch.Generator().manual_seed(0))
    assert float(signal_chain_loss(p, u, u, 1024)) == 0.0
    v = p.sample(2, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    loss = signal_chain_loss(p, v, u, 1024)
    loss.backward()
    assert float(loss.detach()) > 0 and v.grad is not None and bool(torch.isfinite(v.grad).all())


def test_tiny_training_writes_a_checkpoint_usable_as_initialiser(tmp_path: Path) -> None:
    cfg = MatcherConfig(**TINY)  # type: ignore[arg-type]
    res = train(tmp_path / "m", patch="tremolo", steps=6, batch_size=4, config=cfg, seed=0)
    assert (tmp_path / "m" / "model.pt").is_file()
    assert res.result["fit"]["steps"] == 6
    patch = get_preset("tremolo", 8000)
    u = predict_params(tmp_path / "m" / "model.pt", torch.randn(2, 3000), 8000, patch)
    assert u.shape == (2, patch.n_params) and bool(((u > 0) & (u < 1)).all())
    with pytest.raises(InputError, match="trained for parameters"):
        predict_params(tmp_path / "m" / "model.pt", torch.randn(1, 3000), 8000,
                       get_preset("subtractive", 8000))
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(InputError):
        predict_params(tmp_path / "bad.pt", torch.randn(1, 3000), 8000, patch)
    assert ParamEncoder(["a"], cfg)(torch.randn(1, 1024)).shape == (1, 1)


@pytest.mark.slow
def test_ddp_two_process_gloo_smoke(tmp_path: Path) -> None:
    """Lightning DDP on 2 CPU processes (gloo): both ranks step, rank 0 writes the model."""
    out = run_ddp_script(tmp_path, f"""
        from diffdsp.train.match import MatcherConfig, train
        res = train({str(tmp_path / "out")!r}, patch="tremolo", steps=2, batch_size=2,
                    devices=2, strategy="ddp", config=MatcherConfig(**{TINY!r}))
    """, rank_report=True)
    assert "RANK0 WORLD2 OK" in out and "RANK1 WORLD2 OK" in out, out[-3000:]
    assert (tmp_path / "out" / "model.pt").is_file()
