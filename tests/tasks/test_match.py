"""Sound matching: pitch loss, batched fit, CLI artefacts, the gradient-direction protocol."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.losses.pitch import log_spectral_wasserstein
from diffdsp.synth.modules import ADSR, VCA, VCO, Note
from diffdsp.synth.patch import Patch
from diffdsp.tasks.match import MatchSettings, estimate_f0, fit_patch, log_spectral_distance_db

ROOT = Path(__file__).resolve().parents[2]


def _sine(f: float, n: int, sr: int) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / sr
    return torch.sin(2 * math.pi * f * t)


@pytest.mark.parametrize("cents", [50.0, 300.0, -700.0])
def test_log_spectral_wasserstein_measures_transposition_in_octaves(cents: float) -> None:
    a = _sine(220.0, 16000, 16000)
    b = _sine(220.0 * 2 ** (cents / 1200), 16000, 16000)
    d = float(log_spectral_wasserstein(a, b, sample_rate=16000, tilt_hz=None))
    assert abs(d * 1200 - abs(cents)) < 0.05 * abs(cents) + 3


def test_log_spectral_wasserstein_safe_on_silence_and_identity() -> None:
    z = torch.zeros(2, 4000, requires_grad=True)
    x = torch.randn(2, 4000)
    d = log_spectral_wasserstein(z, x, sample_rate=8000, reduction="none")
    assert d.shape == (2,) and bool(torch.isfinite(d).all())
    d.sum().backward()
    assert z.grad is not None and bool(torch.isfinite(z.grad).all())
    assert float(log_spectral_wasserstein(x, x, sample_rate=8000)) == 0.0
    with pytest.raises(InputError):
        log_spectral_wasserstein(x, x[:, :100], sample_rate=8000)


def _sine_patch(sr: int) -> Patch:
    return Patch({"note": Note(), "osc": VCO("saw"), "env": ADSR(), "amp": VCA()},
                 [("note", "osc.freq"), ("osc", "amp.in"), ("env", "amp.gain")], "amp",
                 sample_rate=sr, fixed={"osc.ratio": 1.0, "osc.detune_cents": 0.0,
                                        "amp.level": 1.0, "env.sustain": 0.8})


@pytest.mark.parametrize("n_samples", [88200, 88199, 88000, 88109, 88110])
def test_estimate_f0_any_length(n_samples: int) -> None:
    """Every length, whatever its remainder modulo the 10 ms hop (a 4 s target at the default
    22050 Hz analysis rate once had one more energy frame than YIN frames), gives the pitch."""
    t = torch.arange(n_samples, dtype=torch.float64) / 22050
    x = torch.sin(2 * math.pi * 466.16 * t)[None]
    cents = 1200 * math.log2(float(estimate_f0(x, 22050)[0]) / 466.16)
    assert abs(cents) < 5


def test_fit_patch_finds_pitch_of_batched_targets() -> None:
    sr, n = 8000, 2000
    patch = _sine_patch(sr)
    truth = torch.tensor([110.0, 347.0])
    u_true = patch.normalise({"note.f0_hz": truth, "osc.level": torch.tensor([0.5, 0.8])})
    with torch.no_grad():
        target = patch(u_true.float(), n_samples=n)
    assert isinstance(target, torch.Tensor)
    f0 = estimate_f0(target[:, 0].double(), sr)
    assert bool(((1200 * torch.log2(f0 / truth.double())).abs() < 30).all())
    fit = fit_patch(target[:, 0], patch, settings=MatchSettings(steps=30, start_steps=8,
                                                                analysis_rate=sr))
    cents = 1200 * torch.log2(fit.params["note.f0_hz"].double() / truth.double())
    assert bool((cents.abs() < 10).all()), cents
    with torch.no_grad():
        pred = patch(fit.u, n_samples=n)
    assert isinstance(pred, torch.Tensor)
    assert bool((log_spectral_distance_db(pred[:, 0], target[:, 0]) < 10).all())


def test_cli_match_and_render_write_artefacts(tmp_path: Path) -> None:
    from diffdsp.cli import main
    from diffdsp.io import save_audio

    sr = 8000
    target = get_target(sr)
    wav = tmp_path / "target.wav"
    save_audio(wav, target[None], sr)
    out = tmp_path / "m"
    rc = main(["match", str(wav), "--patch", "subtractive", "--steps", "3", "--analysis-rate",
               "8000", "--out", str(out), "--quiet"])
    assert rc == 0
    for name in ("match.wav", "patch.json", "result.json", "report.html", "spectrograms.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert res["task"] == "match" and "f0_error_cents" in res["metrics"]["after"]
    from diffdsp.io import load_audio

    y, sr_out = load_audio(out / "match.wav")
    assert sr_out == sr and y.shape[-1] == target.shape[-1]
    rc = main(["render", str(out / "patch.json"), "--seconds", "0.1", "--note", "60", "--out",
               str(tmp_path / "r"), "--quiet"])
    assert rc == 0 and (tmp_path / "r" / "render.wav").is_file()
    assert main(["match", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert main(["match", str(wav), "--patch", "nope", "--out", str(tmp_path / "y"),
                 "--quiet"]) == 2


def get_target(sr: int) -> torch.Tensor:
    t = torch.arange(int(0.26 * sr)) / sr
    return (0.5 * torch.sin(2 * math.pi * 261.6 * t) * torch.exp(-3 * t)).float()


def test_gradient_direction_protocol_small() -> None:
    sys.path.insert(0, str(ROOT / "evals"))
    try:
        import gradient_direction as gd
    finally:
        sys.path.pop(0)
    res = gd.accuracy(gd._gated_match(), "saw", 300.0, 30, 0, chunk=30)
    assert res.accuracy[0] >= 0.9
