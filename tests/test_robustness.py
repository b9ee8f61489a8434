"""Robustness sweep: every command that reads audio refuses bad files the same way.

Exit code 2, one readable stderr line, no traceback, and every input byte-identical afterwards
(DESIGN.md command line contract). Bad files fail at load time, so the sweep is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.cli_helpers import assert_usage_error, bad_audio_files

# {bad}: the file under test; {good}: a valid companion file; {out}: the output folder.
COMMANDS: dict[str, list[str]] = {
    "reverb fit": ["reverb", "fit", "{bad}", "--out", "{out}", "--quiet"],
    "reverb apply": ["reverb", "apply", "{fdn}", "{bad}", "--out", "{out}", "--quiet"],
    "match": ["match", "{bad}", "--patch", "subtractive", "--out", "{out}", "--quiet"],
    "style input": ["style", "{bad}", "{good}", "--out", "{out}", "--quiet"],
    "style reference": ["style", "{good}", "{bad}", "--out", "{out}", "--quiet"],
    "align dry": ["align", "{bad}", "{good}", "--out", "{out}", "--quiet"],
    "align wet": ["align", "{good}", "{bad}", "--out", "{out}", "--quiet"],
    "resynth": ["resynth", "{bad}", "--out", "{out}", "--quiet"],
    "timbre": ["timbre", "{bad}", "--model", "{ckpt}", "--out", "{out}", "--quiet"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("robust")
    out = bad_audio_files(root / "bad")
    rng = np.random.default_rng(0)
    good = root / "good.wav"
    sf.write(good, 0.1 * rng.standard_normal((44100, 1)), 44100, subtype="FLOAT")
    one = root / "one_sample.wav"
    sf.write(one, np.array([[0.5]]), 44100, subtype="FLOAT")
    out["one sample"] = one
    out["good"] = good
    fdn = root / "fdn.json"
    fdn.write_text("{}")  # never reached: the audio is checked first or the JSON is refused
    out["fdn"] = fdn
    ckpt = root / "model.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    out["ckpt"] = ckpt
    return out


def _args(template: list[str], files: dict[str, Path], bad: Path, out: Path) -> list[str]:
    subst = {"{bad}": str(bad), "{good}": str(files["good"]), "{out}": str(out),
             "{fdn}": str(files["fdn"]), "{ckpt}": str(files["ckpt"])}
    return [subst.get(a, a) for a in template]


BAD = ["missing", "empty", "not audio", "no samples", "NaN", "one sample"]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("bad", BAD)
def test_bad_audio_is_refused(command: str, bad: str, files: dict[str, Path],
                              tmp_path: Path) -> None:
    args = _args(COMMANDS[command], files, files[bad], tmp_path / "out")
    inputs = [p for k, p in files.items() if k != "missing"]
    assert_usage_error(args, inputs=inputs)


@pytest.mark.parametrize("command", ["reverb fit", "match", "align dry", "resynth"])
def test_output_folder_that_is_a_file(command: str, files: dict[str, Path],
                                      tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    args = _args(COMMANDS[command], files, files["good"], blocker)
    assert_usage_error(args, inputs=[blocker, files["good"]])
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("command", ["reverb fit", "match", "align dry", "resynth"])
def test_impossible_output_folder(command: str, files: dict[str, Path]) -> None:
    args = _args(COMMANDS[command], files, files["good"], Path("/proc/diffdsp/out"))
    assert_usage_error(args, inputs=[files["good"]])
