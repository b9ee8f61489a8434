"""The runnable examples in ``examples/`` work: each runs with ``--quick`` in its own Python process
(exit 0), writes its plot/audio, and its key figure improves over the starting point.

The six processes start together (single-threaded each, so they share the cores without
oversubscribing them) and every test checks one of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NAMES = ("fit_eq", "fit_reverb", "match_synth", "style_transfer", "phase_alignment",
         "train_matcher")
TIMEOUT_S = 600

#: Files every example must write in quick mode.
OUTPUTS = {
    "fit_eq": ["eq_response.png", "input.wav", "target.wav", "fitted.wav"],
    "fit_reverb": ["edc.png", "measured_rir.wav", "fdn_rir.wav", "fdn_export.json"],
    "match_synth": ["spectrograms.png", "target.wav", "match.wav", "patch.json"],
    "style_transfer": ["spectra.png", "input.wav", "reference.wav", "output.wav",
                       "settings.json"],
    "phase_alignment": ["waveforms.png", "dry.wav", "wet.wav", "aligned.wav", "allpass.json"],
    "train_matcher": ["model.pt", "result.json"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Start every example in quick mode at once; wait for all of them."""
    base = tmp_path_factory.mktemp("examples")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    procs = {}
    for name in NAMES:
        out = base / name
        procs[name] = (out, subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(out)],
            cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + TIMEOUT_S
    results: dict[str, dict[str, Any]] = {}
    for name, (out, proc) in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        results[name] = {"out": out, "code": proc.returncode, "stdout": stdout,
                         "stderr": stderr}
    return results


def _summary(run: dict[str, Any]) -> dict[str, float]:
    assert run["code"] == 0, f"exit {run['code']}\n{run['stdout']}\n{run['stderr'][-3000:]}"
    return json.loads((run["out"] / "summary.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_and_writes_its_outputs(runs: dict[str, dict[str, Any]], name: str) -> None:
    run = runs[name]
    _summary(run)
    for f in OUTPUTS[name]:
        p = run["out"] / f
        assert p.is_file() and p.stat().st_size > 0, f"{name} did not write {f}"
    assert run["stdout"].strip(), f"{name} printed no key figure"
    text = (EXAMPLES / f"{name}.py").read_text()
    assert f"python examples/{name}.py [--quick] [--out DIR]" in text  # the docstring says how


def test_fit_eq_recovers_the_response(runs: dict[str, dict[str, Any]]) -> None:
    s = _summary(runs["fit_eq"])
    assert s["response_error_db_after"] < 0.3 * s["response_error_db_before"]
    assert s["response_error_db_after"] < 1.5


def test_fit_reverb_matches_the_decay(runs: dict[str, dict[str, Any]]) -> None:
    s = _summary(runs["fit_reverb"])
    assert s["edc_loss_best"] < s["edc_loss_start"]
    assert s["t60_error_pct"] < 15.0
    doc = json.loads((runs["fit_reverb"]["out"] / "fdn_export.json").read_text())
    assert doc["kind"] == "fdn" and len(doc["delay_samples"]) == 4


def test_match_synth_gets_closer_and_in_tune(runs: dict[str, dict[str, Any]]) -> None:
    s = _summary(runs["match_synth"])
    assert s["lsd_db_after"] < s["lsd_db_before"]
    assert abs(s["f0_error_cents"]) < 50.0  # the violin's A4, not an octave off


def test_style_transfer_moves_towards_the_reference(runs: dict[str, dict[str, Any]]) -> None:
    s = _summary(runs["style_transfer"])
    assert s["spectrum_error_db_after"] < s["spectrum_error_db_before"]
    assert s["loudness_error_lu_after"] < s["loudness_error_lu_before"]


def test_phase_alignment_finds_delay_polarity_and_phase(runs: dict[str, dict[str, Any]]) -> None:
    s = _summary(runs["phase_alignment"])
    assert s["esr_before"] > 1.0 and s["esr_after"] < 0.1
    assert s["polarity"] == -1 and 20 <= s["delay_samples"] <= 27


def test_train_matcher_learns(runs: dict[str, dict[str, Any]]) -> None:
    s = _summary(runs["train_matcher"])
    assert s["train_loss_after"] < s["train_loss_before"]
    assert s["heldout_mae"] < s["heldout_mae_constant_guess"]
