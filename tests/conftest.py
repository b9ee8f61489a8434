"""Fixtures: dtypes, devices, seeds."""

from __future__ import annotations

import os

import pytest
import torch

# Tests measure correctness, not speed; two threads match the CI machine and keep runs stable.
torch.set_num_threads(int(os.environ.get("DIFFDSP_TEST_THREADS", "2")))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Both float dtypes every functional supports."""
    return request.param


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """CPU always; CUDA when a GPU is present (otherwise not generated, so nothing is skipped)."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
