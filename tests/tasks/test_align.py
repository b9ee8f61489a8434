"""Phase alignment task: delay/polarity, fitted all-passes, never worse, artefacts, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss
import soundfile as sf
import torch

from diffdsp._validation import InputError
from diffdsp.functional import allpass as ap
from diffdsp.tasks import align

ROOT = Path(__file__).resolve().parents[2]
SR = 48000
# Generous wall-time cap per fit: the fits below are limited by their step counts, so that they
# are deterministic whatever the load of the machine.
BUDGET = 60.0


def _noise(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, n, generator=g, dtype=torch.float64)


def _chain_sos(sr: int = SR) -> np.ndarray:
    return torch.cat([
        ap.allpass2_sos(torch.tensor([0.9, 0.8]), torch.tensor([300.0, 3000.0]), sample_rate=sr),
        ap.allpass1_sos(torch.tensor([1500.0]), sample_rate=sr),
    ]).double().numpy()


def _phase_pair(n: int = SR, delay: int = 17, sr: int = SR) -> tuple[torch.Tensor, torch.Tensor]:
    x = _noise(n)
    y = ss.sosfilt(_chain_sos(sr), x.numpy(), axis=-1)
    return x, align.apply_delay(torch.from_numpy(y), delay)


@pytest.mark.parametrize(("delay", "sign"), [(0.0, 1), (23.0, -1), (-9.0, 1), (12.4, 1)])
def test_estimate_delay(delay: float, sign: int) -> None:
    x = _noise(8000, seed=3)[0]
    # fractional delay in the frequency domain (negative: the start wraps past the end)
    n = 1 << 14
    f = torch.fft.rfftfreq(n, dtype=torch.float64)
    y = torch.fft.irfft(torch.fft.rfft(x, n) * torch.exp(-2j * math.pi * f * delay), n)[:8000]
    d, p, peak = align.estimate_delay(x, sign * y, max_delay_samples=200)
    assert p == sign
    assert abs(d - delay) < 0.15
    assert peak > 0.9


def test_apply_delay_and_metrics() -> None:
    x = torch.arange(1.0, 6.0)
    assert align.apply_delay(x, 2).tolist() == [0.0, 0.0, 1.0, 2.0, 3.0]
    assert align.apply_delay(x, -2).tolist() == [3.0, 4.0, 5.0, 0.0, 0.0]
    assert align.apply_delay(x, 9).tolist() == [0.0] * 5
    m = align.metrics(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 3.0]))
    assert m == {"mse": 2.0, "mae": 1.0, "esr": 0.4}


def test_filter_export_round_trip_matches_scipy() -> None:
    sos = torch.from_numpy(_chain_sos())
    flt = align.AlignmentFilter(SR, delay_samples=-3, polarity=-1, sos=sos)
    x = _noise(4096, seed=1).float()
    y = flt.apply(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    d = json.loads(json.dumps(flt.to_dict()))
    xs = np.concatenate([x.numpy()[0, 3:], np.zeros(3)])
    ref = d["polarity"] * ss.sosfilt(np.array(d["sos"]), xs.astype(np.float64))
    assert np.abs(ref - y.numpy()[0]).max() < 1e-5
    back = align.AlignmentFilter.from_dict(d)
    torch.testing.assert_close(back.apply(x), y, rtol=0, atol=0)
    assert align.AlignmentFilter(SR).is_identity


def test_fit_recovers_allpass_chain_and_delay() -> None:
    x, y = _phase_pair()
    res = align.fit_alignment(x, y, sample_rate=SR, order=5, time_budget_s=BUDGET, seed=0,
                              steps=150, starts=16)
    assert res.before["esr"] > 1.0
    assert res.after["esr"] < res.before["esr"] / 10.0
    assert res.related and res.chosen.startswith("allpass")
    assert res.aligned.shape == x.shape and res.aligned.dtype == x.dtype
    # exported filter reproduces the aligned output with scipy to 1e-5
    d = res.filter.to_dict()
    xs = align.apply_delay(x, d["delay_samples"]).numpy()
    ref = d["polarity"] * ss.sosfilt(np.array(d["sos"]), xs, axis=-1)
    assert np.abs(ref - res.aligned.numpy()).max() < 1e-5
    # every section is stable and all-pass
    for row in d["sos"]:
        assert np.abs(np.roots(row[3:])).max() < 1.0 if row[5] != 0 else abs(row[4]) < 1.0
    # sections carry their design parameters
    roles = [s["role"] for s in d["sections"]]
    assert roles[0] == "fractional_delay" and roles.count("allpass") == 3


def test_unrelated_returns_identity_and_says_so() -> None:
    x = _noise(SR // 2, seed=10)
    y = _noise(SR // 2, seed=11)
    res = align.fit_alignment(x, y, sample_rate=SR, order=3, time_budget_s=1.0, steps=40)
    assert not res.related
    assert res.filter.is_identity and res.chosen == "identity"
    assert "not look like" in res.note
    assert res.after == res.before
    torch.testing.assert_close(res.aligned, x)


def test_never_worse_than_identity() -> None:
    # wet = dry plus unrelated noise of equal power: nothing to align, ESR must not grow
    x = _noise(SR // 2, seed=4)
    y = x + _noise(SR // 2, seed=5)
    res = align.fit_alignment(x, y, sample_rate=SR, order=3, time_budget_s=1.0, steps=40)
    assert res.after["esr"] <= res.before["esr"]
    assert res.candidates["identity"] == pytest.approx(res.before["esr"])


@pytest.mark.parametrize(("delay", "bar"), [(40.0, 1e-9), (40.3, 0.05)])
def test_polarity_and_delay_only(delay: float, bar: float) -> None:
    """Order 0: integer delay and polarity are exact; a fractional part goes through a
    first-order Thiran section, whose phase error at high frequencies bounds the ESR."""
    x, _ = _phase_pair(SR // 2)
    n = 1 << 16
    f = torch.fft.rfftfreq(n, dtype=torch.float64)
    lp = torch.from_numpy(ss.sosfilt(ss.butter(8, 18000, fs=SR, output="sos"), x.numpy()))
    y = -torch.fft.irfft(torch.fft.rfft(lp, n) * torch.exp(-2j * math.pi * f * delay), n)
    y = y[..., : x.shape[-1]]
    res = align.fit_alignment(lp, y, sample_rate=SR, order=0, time_budget_s=1.0, steps=30)
    assert res.filter.polarity == -1
    assert res.after["esr"] < bar
    assert abs(res.delay["delay_samples"] - delay) < 0.05


@pytest.mark.parametrize("method", ["direct", "biasnet-seq", "biasnet-conn"])
def test_paper_methods_run_and_never_worse(method: str) -> None:
    x, y = _phase_pair(SR // 2)
    res = align.fit_alignment(x.float(), y.float(), sample_rate=SR, method=method, order=3,
                              steps=4, time_budget_s=BUDGET)
    assert res.fit["method"] == method and res.fit["steps"] >= 1
    assert res.after["esr"] <= res.before["esr"]
    assert all(math.isfinite(v) for v in res.losses)


def test_interference_loss_option() -> None:
    pytest.importorskip("diffdsp.losses.phase")
    x, y = _phase_pair(SR // 2)
    res = align.fit_alignment(x.float(), y.float(), sample_rate=SR, method="direct",
                              loss="interference", order=3, steps=3, time_budget_s=BUDGET)
    assert res.fit["loss"] == "interference"
    assert all(math.isfinite(v) for v in res.losses)
    assert res.after["esr"] <= res.before["esr"]


def test_biasnet_matches_paper() -> None:
    net = align.BiasNet(3)
    n_params = sum(p.numel() for p in net.parameters())
    assert abs(n_params - 692_500) < 2_000  # paper: ~692.5k per BiasNet
    out = net()
    assert out.shape == (3,) and bool((out.abs() < 1).all())
    conn = align.BiasNet(11)  # connected, 7th order warped: 11 outputs
    assert conn().shape == (11,)
    params = align._BiasNetParams(3, 1, torch.tensor([1.0], dtype=torch.float64), SR,
                                  connected=False, hidden=(16, 8))
    d = params.design()
    assert bool((d.cutoff_hz > 20).all() and (d.cutoff_hz < 20000).all())
    assert bool((d.radius >= 0).all() and (d.radius < 1).all())
    assert bool((d.warp.abs() < 1).all())
    d.sos(SR).sum().backward()
    assert all(p.grad is not None for p in params.parameters())


@pytest.mark.parametrize("sr", [44100, 192000])
def test_sample_rates(sr: int) -> None:
    x, y = _phase_pair(sr // 2, delay=5, sr=sr)
    res = align.fit_alignment(x, y, sample_rate=sr, order=5, time_budget_s=BUDGET, steps=150,
                              starts=32)
    assert res.after["esr"] < res.before["esr"] / 5.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"wet": torch.zeros(1, 5000)}, "wet is silent"),
        ({"dry": torch.zeros(1, 5000)}, "dry is silent"),
        ({"wet": torch.ones(1, 4000)}, "same shape"),
        ({"dry": torch.ones(1, 1000), "wet": torch.ones(1, 1000)}, "at least 2048 samples"),
        ({"wet": torch.full((1, 5000), math.nan)}, "NaN"),
        ({"method": "newton"}, "method must be one of"),
        ({"loss": "l1"}, "loss must be one of"),
        ({"order": -1}, "order"),
        ({"segment": 1024}, "segment"),
        ({"sample_rate": 10}, "sample_rate"),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    args: dict = {"dry": _noise(5000).float(), "wet": _noise(5000, 1).float(),
                  "sample_rate": SR}
    args.update(kwargs)
    dry, wet = args.pop("dry"), args.pop("wet")
    with pytest.raises(InputError, match=message):
        align.fit_alignment(dry, wet, **args)


def _write(path: Path, x: torch.Tensor, sr: int) -> Path:
    sf.write(str(path), x.numpy().T, sr, subtype="FLOAT")
    return path


def test_run_writes_artefacts(tmp_path: Path) -> None:
    x, y = _phase_pair(SR // 2)
    x2 = torch.cat([x, 0.5 * x]).float()  # stereo dry
    y2 = torch.cat([y, 0.5 * y]).float()
    dry = _write(tmp_path / "dry.wav", x2, SR)
    wet = _write(tmp_path / "wet.wav", y2, SR)
    out = tmp_path / "out"
    res = align.run(dry, wet, out, order=3, time_budget_s=BUDGET, steps=100)
    for f in ("aligned.wav", "allpass.json", "result.json", "phase_response.png",
              "waveforms.png", "report.html"):
        assert (out / f).is_file(), f
    aligned, sr = sf.read(str(out / "aligned.wav"), always_2d=True)
    assert sr == SR and aligned.shape == (x2.shape[1], 2)
    d = json.loads((out / "allpass.json").read_text())
    xs = align.apply_delay(x2, d["delay_samples"]).double().numpy()
    ref = d["polarity"] * ss.sosfilt(np.array(d["sos"]), xs, axis=-1)
    assert np.abs(ref - aligned.T).max() < 1e-5
    result = json.loads((out / "result.json").read_text())
    assert result["task"] == "align"
    for key in ("mse", "mae", "esr"):
        assert key in result["metrics"]["before"] and key in result["metrics"]["after"]
    assert result["metrics"]["after"]["esr"] < result["metrics"]["before"]["esr"] / 10
    assert res.result["alignment"]["related"]


def test_run_rejects_mismatched_files(tmp_path: Path) -> None:
    x = _noise(6000).float()
    dry = _write(tmp_path / "dry.wav", x, SR)
    wet_sr = _write(tmp_path / "wet_sr.wav", x, 44100)
    wet_len = _write(tmp_path / "wet_len.wav", x[:, :5000], SR)
    with pytest.raises(InputError, match="sample rates must match"):
        align.run(dry, wet_sr, tmp_path / "o1")
    with pytest.raises(InputError, match="same length"):
        align.run(dry, wet_len, tmp_path / "o2")
    with pytest.raises(InputError, match="cannot be an input"):
        align.run(dry, wet_len, dry)


@pytest.mark.slow
def test_eval_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evals" / "align.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FIGURE align_esr_ratio_phase_dominated" in proc.stdout


def test_cli_error_path_and_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from diffdsp.cli import main

    x, y = _phase_pair(SR // 4)
    dry = _write(tmp_path / "dry.wav", x.float(), SR)
    wet_sr = _write(tmp_path / "wet_sr.wav", y.float(), 44100)
    before = dry.read_bytes()
    rc = main(["align", str(dry), str(wet_sr), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "sample rates must match" in err
    assert dry.read_bytes() == before
    rc = main(["align", str(dry), str(dry), "--out", str(tmp_path / "o"), "--method", "nope"])
    assert rc == 2 and "method must be one of" in capsys.readouterr().err
    wet = _write(tmp_path / "wet.wav", y.float(), SR)
    rc = main(["align", str(dry), str(wet), "--out", str(tmp_path / "ok"), "--order", "3",
               "--steps", "40", "--quiet", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "align" and result["settings"]["order"] == 3
    assert (tmp_path / "ok" / "aligned.wav").is_file()
