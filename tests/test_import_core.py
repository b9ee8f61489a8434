"""``import diffdsp`` and its DSP packages need only the core dependencies (torch, numpy, numba)."""

from __future__ import annotations

import subprocess
import sys

BLOCKER = r"""
import importlib.abc, sys
EXTRAS = {"soundfile", "typer", "rich", "matplotlib", "lightning", "pytorch_lightning", "scipy",
          "auraloss", "pyloudnorm", "pedalboard", "click"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in EXTRAS:
            raise ImportError(f"blocked extra: {name}")
        return None
sys.meta_path.insert(0, Block())
import importlib, pkgutil, diffdsp
skip = {"diffdsp.cli", "diffdsp.__main__", "diffdsp.report", "diffdsp.train", "diffdsp.tasks"}
for info in pkgutil.walk_packages(diffdsp.__path__, "diffdsp."):
    if any(info.name == s or info.name.startswith(s + ".") for s in skip):
        continue
    importlib.import_module(info.name)
print("ok")
"""


def test_core_import_without_extras() -> None:
    proc = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_missing_extra_names_the_extra() -> None:
    code = BLOCKER.replace('print("ok")', "") + r"""
from diffdsp.io import load_audio
try:
    load_audio("x.wav")
except ImportError as e:
    assert "diffdsp[io]" in str(e), e
    print("named")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip().endswith("named"), proc.stderr[-2000:]
