"""The matching evals' quick modes run end to end and print their FIGURE lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["match_indomain", "match_real_notes"])
def test_eval_quick(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evals" / f"{name}.py"), "--quick", "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"FIGURE {name}_f0_within" in proc.stdout
    assert "not judged (quick)" in proc.stdout
