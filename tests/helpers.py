"""Shared test helpers: named tolerances, reference comparison, gradient checks, test signals."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Tol:
    """A named tolerance pair for ``torch.testing.assert_close``."""

    rtol: float
    atol: float


#: Comparison of a float computation against a float64 reference (scipy, closed form).
REF_TOL: dict[torch.dtype, Tol] = {
    torch.float32: Tol(rtol=1e-4, atol=1e-5),
    torch.float64: Tol(rtol=1e-9, atol=1e-11),
}


def assert_close(
    actual: Tensor | np.ndarray,
    expected: Tensor | np.ndarray,
    tol: Tol,
    msg: str = "",
) -> None:
    """Compare to a reference (numpy or torch) at a named tolerance, in float64."""
    a = torch.as_tensor(np.asarray(actual.detach().cpu() if isinstance(actual, Tensor) else actual))
    e = torch.as_tensor(
        np.asarray(expected.detach().cpu() if isinstance(expected, Tensor) else expected)
    )
    torch.testing.assert_close(
        a.to(torch.float64) if not a.is_complex() else a.to(torch.complex128),
        e.to(torch.float64) if not e.is_complex() else e.to(torch.complex128),
        rtol=tol.rtol,
        atol=tol.atol,
        msg=(lambda m: f"{msg}\n{m}") if msg else None,
    )


def gradcheck64(fn: Callable[..., Tensor], inputs: Sequence[Tensor], *, gradgrad: bool = False,
                eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> None:
    """``torch.autograd.gradcheck`` (and optionally gradgradcheck) in float64."""
    ins = tuple(
        x.detach().to(torch.float64).requires_grad_(x.requires_grad) if x.is_floating_point() else x
        for x in inputs
    )
    assert torch.autograd.gradcheck(fn, ins, eps=eps, atol=atol, rtol=rtol)
    if gradgrad:
        assert torch.autograd.gradgradcheck(fn, ins, eps=eps, atol=atol, rtol=rtol)


def assert_finite(x: Tensor, what: str = "value") -> None:
    """Every element finite."""
    assert torch.isfinite(x).all(), f"{what} has {int((~torch.isfinite(x)).sum())} NaN/Inf entries"


def sine(freq_hz: float, seconds: float, sample_rate: int, *, amp: float = 0.5,
         dtype: torch.dtype = torch.float32) -> Tensor:
    """A sine wave ``(time,)`` computed in float64 then cast."""
    n = round(seconds * sample_rate)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    return (amp * torch.sin(2 * math.pi * freq_hz * t)).to(dtype)


def noise(shape: Sequence[int], seed: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    """Seeded Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def degenerate_signals(n: int = 4096, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Signals that break naive DSP code: silence, DC, a single click, clipping, zero padding."""
    click = torch.zeros(n, dtype=dtype)
    click[n // 3] = 1.0
    padded = torch.zeros(n, dtype=dtype)
    padded[: n // 4] = noise((n // 4,), seed=1, dtype=dtype) * 0.3
    clipped = (noise((n,), seed=2, dtype=dtype) * 3.0).clamp(-1.0, 1.0)
    return {
        "silence": torch.zeros(n, dtype=dtype),
        "dc": torch.full((n,), 0.5, dtype=dtype),
        "click": click,
        "zero_padded": padded,
        "clipped": clipped,
    }


#: Appended to a DDP script: every rank prints ``RANK<r> WORLD<w> OK`` once its training ends.
RANK_REPORT = """
import torch.distributed as dist
rank = dist.get_rank() if dist.is_initialized() else 0
world = dist.get_world_size() if dist.is_initialized() else 1
print(f"RANK{rank} WORLD{world} OK", flush=True)
"""


def run_ddp_script(tmp_path: Path, body: str, *, rank_report: bool = False,
                   timeout_s: float = 300.0) -> str:
    """Run ``body`` (dedented) as a fresh Python process with one torch thread; return its output.

    Used by the 2-process Lightning DDP smoke tests; asserts that the process exited 0.
    ``rank_report`` appends :data:`RANK_REPORT`.
    """
    script = tmp_path / "ddp_script.py"
    code = textwrap.dedent(body) + (RANK_REPORT if rank_report else "")
    script.write_text("import torch\ntorch.set_num_threads(1)\n" + code)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out
