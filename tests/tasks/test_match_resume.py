"""Sound matching: checkpoint/resume (a match killed mid-run resumes to the same result)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.synth.modules import ADSR, VCA, VCO, Note
from diffdsp.synth.patch import Patch
from diffdsp.tasks.match import MatchSettings, correct_octave, fit_patch
from tests.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _patch(sr: int) -> Patch:
    return Patch({"note": Note(), "osc": VCO("saw"), "env": ADSR(), "amp": VCA()},
                 [("note", "osc.freq"), ("osc", "amp.in"), ("env", "amp.gain")], "amp",
                 sample_rate=sr, fixed={"osc.ratio": 1.0, "osc.detune_cents": 0.0,
                                        "amp.level": 1.0, "env.sustain": 0.8})


def _target(patch: Patch, n: int) -> torch.Tensor:
    u = patch.normalise({"note.f0_hz": torch.tensor([150.0, 301.0]),
                         "osc.level": torch.tensor([0.4, 0.9])})
    with torch.no_grad():
        y = patch(u.float(), n_samples=n)
    assert isinstance(y, torch.Tensor)
    return y[:, 0]


class _Stop:
    """A progress callback that raises KeyboardInterrupt (Ctrl-C) at ``(stage, step)``."""

    def __init__(self, stage: str, step: int) -> None:
        self.stage, self.step = stage, step

    def __call__(self, stage: str, step: int, total: int, loss: float) -> None:
        if stage == self.stage and step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("stop", [("multi-start", 5), ("refine", 9)])
def test_interrupted_fit_resumes_to_the_same_result(tmp_path: Path,
                                                    stop: tuple[str, int]) -> None:
    sr, n = 8000, 1600
    patch = _patch(sr)
    target = _target(patch, n)
    st = MatchSettings(steps=16, start_steps=6, analysis_rate=sr)
    full = fit_patch(target, patch, settings=st, seed=3)
    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        fit_patch(target, patch, settings=st, seed=3, checkpoint_path=ckpt, checkpoint_every=4,
                  progress=_Stop(*stop))
    assert ckpt.is_file()
    saved = torch.load(ckpt, weights_only=False)
    assert saved["stage"] == stop[0] and saved["step"] == stop[1] - 1  # state before that step
    resumed = fit_patch(target, patch, settings=st, seed=3, checkpoint_path=ckpt, resume=True)
    assert resumed.resumed and not full.resumed
    assert torch.equal(resumed.u, full.u)
    assert resumed.losses == full.losses
    assert torch.equal(resumed.start_losses, full.start_losses)
    # a finished checkpoint resumes to the result without optimising again
    again = fit_patch(target, patch, settings=st, seed=3, checkpoint_path=ckpt, resume=True,
                      progress=_Stop("refine", 1))
    assert torch.equal(again.u, full.u)
    # a checkpoint of another fit is refused, not silently mixed in
    with pytest.raises(InputError, match="another target"):
        fit_patch(target, patch, settings=MatchSettings(steps=17, start_steps=6,
                                                        analysis_rate=sr),
                  seed=3, checkpoint_path=ckpt, resume=True)


def test_pitch_stays_in_its_window_and_octave_check() -> None:
    sr, n = 8000, 1600
    patch = _patch(sr)
    target = _target(patch, n)
    fit = fit_patch(target, patch, settings=MatchSettings(steps=6, start_steps=3, lr=1.0,
                                                          start_lr=1.0, pitch_window_cents=20.0,
                                                          analysis_rate=sr))
    cents = 1200 * torch.log2(fit.params["note.f0_hz"].double() / fit.start_f0_hz)
    assert bool((cents.abs() <= 20.0 + 1e-6).all()), cents  # even with a huge learning rate
    # octave check: a weak fundamental under strong even harmonics is found, a clean tone kept
    t = torch.arange(sr, dtype=torch.float64) / sr
    even = sum(torch.sin(2 * math.pi * 200 * k * t) / k for k in (2, 4, 6, 8))
    x = torch.stack([even + 0.03 * torch.sin(2 * math.pi * 200 * t), even])
    out = correct_octave(x, torch.tensor([400.0, 400.0]), sample_rate=sr)
    assert out.tolist() == [200.0, 400.0]
    # a sub-octave estimate (odd harmonics empty) is doubled; NaN passes through
    out = correct_octave(x[1:], torch.tensor([200.0]), sample_rate=sr)
    assert out.tolist() == [400.0]
    assert math.isnan(float(correct_octave(x[1:], torch.tensor([math.nan]), sample_rate=sr)[0]))


def test_cli_match_killed_mid_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    """A real kill (SIGKILL, no handler runs) during the refinement, then --resume."""
    from diffdsp.io import save_audio

    sr = 8000
    t = torch.arange(int(0.3 * sr)) / sr
    x = 0.5 * torch.sin(2 * math.pi * 220.0 * t) + 0.2 * torch.sin(2 * math.pi * 440.0 * t)
    wav = tmp_path / "target.wav"
    save_audio(wav, (x * torch.exp(-4 * t)).float()[None], sr)
    args = ["match", str(wav), "--steps", "40", "--analysis-rate", str(sr), "--threads", "1",
            "--quiet", "--seed", "5"]
    out_k = tmp_path / "killed"
    ckpt = out_k / "checkpoint.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from diffdsp.cli import main; "
         "sys.exit(main(sys.argv[1:]))", *args, "--out", str(out_k)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_at = None
    deadline = time.monotonic() + 240
    mtime = 0.0
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ckpt.is_file() and ckpt.stat().st_mtime != mtime:
                mtime = ckpt.stat().st_mtime
                state = torch.load(ckpt, weights_only=False)
                if state["stage"] == "refine":  # multi-start done, refinement under way
                    proc.send_signal(signal.SIGKILL)
                    killed_at = state["step"]
                    break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait()
    err_text = proc.stderr.read().decode()[-2000:] if proc.stderr is not None else ""
    assert killed_at is not None, f"the match ended before it could be killed: {err_text}"
    assert proc.returncode == -signal.SIGKILL and not (out_k / "result.json").exists()
    threads = torch.get_num_threads()
    try:
        code, _, err = run_cli([*args, "--out", str(out_k), "--resume"])
        assert code == 0, err
        out_f = tmp_path / "full"
        code, _, err = run_cli([*args, "--out", str(out_f)])
        assert code == 0, err
    finally:
        torch.set_num_threads(threads)
    res = json.loads((out_k / "result.json").read_text())
    assert res["fit"]["resumed"] is True
    assert json.loads((out_f / "result.json").read_text())["fit"]["resumed"] is False
    pk = json.loads((out_k / "patch.json").read_text())
    pf = json.loads((out_f / "patch.json").read_text())
    assert pk == pf
    from diffdsp.io import load_audio

    yk, _ = load_audio(out_k / "match.wav")
    yf, _ = load_audio(out_f / "match.wav")
    assert torch.equal(yk, yf)
