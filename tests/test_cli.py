"""The command line: version, info, demo, and the shared error contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import diffdsp
from tests.cli_helpers import assert_usage_error, run_cli


def test_version_and_module_entry() -> None:
    code, out, _ = run_cli(["--version"])
    assert code == 0 and out.strip() == f"diffdsp {diffdsp.__version__}"
    proc = subprocess.run([sys.executable, "-m", "diffdsp", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and diffdsp.__version__ in proc.stdout


def test_info_lists_what_the_code_has() -> None:
    code, out, _ = run_cli(["info", "--json"])
    assert code == 0
    inv = json.loads(out)
    assert set(inv) >= {"processors", "losses", "functionals", "tasks"}
    assert "demo" in inv["tasks"]
    # every listed functional really exists
    import importlib

    for qual in inv["functionals"]:
        mod, name = qual.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(mod), name))


def test_usage_errors_are_one_line() -> None:
    assert_usage_error(["demo", "--bogus"], match="no such option")
    assert_usage_error(["nonexistent-command"], match="no such command")
    assert_usage_error(["demo", "--threads", "-1", "--out", "/tmp/x"], match="threads")
    assert_usage_error(["demo", "--out", "/proc/diffdsp/x"], match="cannot create")


def test_output_path_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    assert_usage_error(["demo", "--out", str(f)], inputs=[f], match="not a folder")
    assert f.read_text() == "keep me"


def test_internal_errors_exit_1_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffdsp.tasks import demo

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(demo, "run", boom)
    monkeypatch.delenv("DIFFDSP_DEBUG", raising=False)
    code, _, err = run_cli(["demo", "--out", "/tmp/unused", "--quiet"])
    assert code == 1 and "kaboom" in err and "Traceback" not in err
    code, _, err = run_cli(["--debug", "demo", "--out", "/tmp/unused", "--quiet"])
    assert code == 1 and "Traceback" in err


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffdsp.tasks import demo

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run", interrupted)
    code, _, err = run_cli(["demo", "--out", "/tmp/unused", "--quiet"])
    assert code == 130 and "interrupted" in err


def test_demo_signals_section_twice(tmp_path: Path) -> None:
    """The built-in part of the demo (no task sections) runs twice into the same folder."""
    from diffdsp.tasks import demo

    for _ in range(2):
        res = demo.run(tmp_path / "d", quick=True, tasks=())
    html = (tmp_path / "d" / "report.html").read_text()
    for f in res.files:
        assert (tmp_path / "d" / f).is_file(), f
    assert "<audio" in html and "signals/spectrograms.png" in html and "http" not in html
    assert not [p for p in os.listdir(tmp_path / "d") if p.startswith(".")]


def test_cli_reference_is_current() -> None:
    """docs/cli.md is generated from the typer app; regenerate with `diffdsp cli-reference`."""
    from diffdsp.cli import cli_reference

    doc = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert doc.read_text() == cli_reference(), "run: diffdsp cli-reference > docs/cli.md"
