"""result.json layout, JSON conversion and report.html."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from diffdsp import data
from diffdsp.optim import FitResult
from diffdsp.report import Section, describe_input, to_jsonable, write_report, write_result_json
from diffdsp.report.plots import line_plot, loss_curve, spectrograms


def test_result_json_layout(tmp_path: Path) -> None:
    rir = data.path("rir/seminar_room_clap.flac")
    fit = FitResult(steps=3, seconds=0.5, final_loss=0.1, best_loss=0.1, losses=[1, 0.5, 0.1])
    res = write_result_json(tmp_path, task="reverb", inputs=[rir], settings={"delays": 8},
                            metrics_before={"t60_error_pct": float("nan")},
                            metrics_after={"t60_error_pct": torch.tensor(3.5)}, fit=fit, seed=1,
                            files=["fdn.json"])
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk == res
    assert set(res) == {"task", "diffdsp_version", "inputs", "settings", "metrics", "fit", "seed",
                        "files"}
    assert res["inputs"][0]["sample_rate"] == 44100 and res["inputs"][0]["channels"] == 1
    assert math.isclose(res["inputs"][0]["seconds"], 1.0, abs_tol=0.05)
    assert res["metrics"]["before"]["t60_error_pct"] is None  # NaN is not JSON
    assert res["metrics"]["after"]["t60_error_pct"] == 3.5
    assert res["fit"]["steps"] == 3 and res["files"] == ["fdn.json", "result.json"]
    clash = tmp_path / "in" / "result.json"
    clash.parent.mkdir()
    clash.write_text("input")
    with pytest.raises(ValueError, match="overwrite an input"):
        write_result_json(clash.parent, task="x", inputs=[clash], settings={})
    assert clash.read_text() == "input"


def test_describe_non_audio(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{}")
    d = describe_input(p)
    assert set(d) == {"path", "sha256"}


def test_to_jsonable_nested() -> None:
    out = to_jsonable({"t": torch.ones(2), "p": Path("/a"), "l": (1, float("inf"))})
    assert out == {"t": [1.0, 1.0], "p": "/a", "l": [1, None]}


def test_plots_and_report(tmp_path: Path) -> None:
    x = torch.randn(2, 8000)
    spectrograms(tmp_path / "s.png", {"a": x, "b": x[0, :100]}, 16000)
    line_plot(tmp_path / "l.png", [1, 2, 3], {"y": [1, 4, 9]}, xlabel="x", ylabel="y", logx=True)
    loss_curve(tmp_path / "c.png", [1.0, 0.5, 0.25])
    for f in ("s.png", "l.png", "c.png"):
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sec = Section("T <x>", "text", metrics={"before": {"esr": 1.0}, "after": {"esr": 0.1}},
                  images=[("s.png", "spec")], audio=[("a", "a.wav")])
    html = write_report(tmp_path, "title", [sec]).read_text()
    assert "T &lt;x&gt;" in html and "src='s.png'" in html and "<audio" in html
    with pytest.raises(ValueError, match="relative"):
        write_report(tmp_path, "t", [Section("s", images=[("/abs.png", "x")])])
