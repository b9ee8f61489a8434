"""Tests of the landscape task (recipes, artefacts) and the ``diffdsp landscape`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffdsp._validation import InputError
from diffdsp.losses.acoustic import edc_loss
from diffdsp.tasks import landscape as task
from tests.cli_helpers import assert_usage_error, run_cli

SMALL_REVERB = {"seconds": 0.15, "n_lines": 4}


def test_reverb_render_matches_the_fdn_module() -> None:
    from diffdsp.lti.fdn import build_fdn

    rec = task.build_recipe("reverb", SMALL_REVERB)
    n = rec.target.shape[-1]
    fdn = build_fdn(16000, n_lines=4, nfft=256, attenuation="lowpass", t60_s=1.0,
                    cutoff_hz=2000.0, seed=0, dtype=torch.float64)
    ref = fdn.render_time(n).to(torch.float32)
    torch.testing.assert_close(rec.target, ref, rtol=0, atol=1e-6 * float(ref.abs().max()))
    # batch of 3 equals the items rendered one by one
    p = {"t60_dc_s": torch.tensor([0.3, 1.0, 2.5]), "cutoff_hz": torch.tensor([300.0, 2e3, 6e3])}
    batch = rec.render(p)
    for i in range(3):
        one = rec.render({k: v[i:i + 1] for k, v in p.items()})
        torch.testing.assert_close(batch[i:i + 1], one)
    # a shorter T60 at DC and a lower cutoff both make the response decay faster
    energy_tail = batch[:, n // 2:].square().sum(-1)
    assert energy_tail[0] < energy_tail[1]


def test_reverb_shelf_attenuation_has_the_tutorial_t60_at_dc_and_nyquist() -> None:
    import numpy as np
    from scipy import signal

    m = torch.tensor([997.0, 2099.0], dtype=torch.float64)
    sos = task._reverb_attenuation_sos("shelf", m, 48000, torch.tensor([2.0, 0.3]),
                                       torch.tensor([10000.0, 3000.0]), 0.5)
    assert sos.shape == (2, 2, 6)
    for b_i, (t60, fc) in enumerate(((2.0, 10000.0), (0.3, 3000.0))):
        for line in range(2):
            s = sos[b_i, line].numpy()
            _, h = signal.freqz(s[:3], s[3:], worN=[0.0, fc, 24000.0 - 1e-6], fs=48000)
            t60s = -3.0 * float(m[line]) / (48000 * np.log10(np.abs(h)))
            # T60 at DC and at Nyquist exact; at the crossover the dB gains average
            np.testing.assert_allclose(t60s[[0, 2]], [t60, 0.5], rtol=1e-6)
            np.testing.assert_allclose(1.0 / t60s[1], 0.5 * (1.0 / t60 + 1.0 / 0.5), rtol=1e-6)
    # the low-pass keeps the T60 at DC and loses the high frequencies with the cutoff
    lp = task._reverb_attenuation_sos("lowpass", m, 48000, torch.tensor([2.0]),
                                      torch.tensor([500.0]), 0.5)[0, 0].numpy()
    _, h = signal.freqz(lp[:3], lp[3:], worN=[0.0, 24000.0 - 1e-6], fs=48000)
    assert abs(-3.0 * 997 / (48000 * np.log10(abs(h[0]))) - 2.0) < 1e-6
    assert -3.0 * 997 / (48000 * np.log10(abs(h[1]))) < 0.05


def test_reverb_tutorial_preset_settings() -> None:
    rec = task.build_recipe("reverb", {"preset": "tutorial", "seconds": 0.1, "target": "fdn"})
    assert rec.sample_rate == 48000 and rec.target.shape == (4800,)
    st = rec.settings
    assert st["delay_samples"] == list(task.TUTORIAL_DELAYS) and st["attenuation"] == "shelf"
    assert st["bands"] == "third_octave" and st["mss_fft_sizes"] == (128, 256, 512, 1024, 2048,
                                                                      4096)
    assert rec.truth == {"t60_dc_s": 2.0, "cutoff_hz": 10000.0}
    r = rec.ranges
    assert (r["t60_dc_s"].min, r["t60_dc_s"].max, r["t60_dc_s"].scale) == (0.25, 3.75, "linear")
    assert (r["cutoff_hz"].min, r["cutoff_hz"].max, r["cutoff_hz"].scale) == (1600.0, 16000.0,
                                                                              "log")
    # first echo: the +-1 input and +-1/N output gains of the tutorial's FDN
    first = int(torch.nonzero(rec.target.abs() > 0)[0])
    assert first == min(task.TUTORIAL_DELAYS)
    noise = task.build_recipe("reverb", {"preset": "tutorial", "seconds": 0.1})
    assert noise.settings["target"] == "noise" and not torch.equal(noise.target, rec.target)
    with pytest.raises(InputError, match="preset"):
        task.build_recipe("reverb", {"preset": "flamo"})


def test_reverb_other_fdn_target_and_added_noise() -> None:
    """The authors' loss-surface target: another FDN (same attenuation at the truth) at the
    model's energy; with ``snr_db`` a fixed noise on the target and another on every render."""
    base = {"preset": "tutorial", "seconds": 0.2, "target": "fdn"}
    own = task.build_recipe("reverb", base)
    other = task.build_recipe("reverb", {**base, "target": "other_fdn", "target_lines": 8})
    assert other.settings["target_lines"] == 8 and other.settings["snr_db"] is None
    e_own = float(own.target.double().square().mean())
    assert float(other.target.double().square().mean()) == pytest.approx(e_own, rel=1e-5)
    # a different network: different first echo and little correlation with the model's own
    corr = float((own.target * other.target).sum() / (own.target.norm() * other.target.norm()))
    assert abs(corr) < 0.3
    # the renderer is the model's own, not the target's
    truth = {k: torch.tensor([v]) for k, v in other.truth.items()}
    torch.testing.assert_close(other.render(truth)[0], own.target)

    noisy = task.build_recipe("reverb", {**base, "target": "other_fdn", "target_lines": 8,
                                         "snr_db": 10.0})
    added = (noisy.target - other.target).double()
    # noise power 10 dB below the model's energy (one realisation: 2 % at 9600 samples)
    assert float(added.square().mean()) == pytest.approx(e_own / 10.0, rel=0.06)
    pred_noise = (noisy.render(truth)[0] - own.target).double()
    assert float(pred_noise.square().mean()) == pytest.approx(e_own / 10.0, rel=0.06)
    torch.testing.assert_close(noisy.render(truth), noisy.render(truth))  # fixed realisation
    assert abs(float((added * pred_noise).mean())) < 0.05 * e_own / 10.0  # independent
    for bad in ({"target": "elsewhere"}, {"snr_db": 200.0}, {"target_lines": 1}):
        with pytest.raises(InputError, match=next(iter(bad))):
            task.build_recipe("reverb", {**base, **bad})


@pytest.mark.parametrize("attenuation", ["lowpass", "shelf"])
def test_reverb_frequency_sampling_renderer_is_the_wrapped_recursion(attenuation: str) -> None:
    """FLAMO's frequency-sampling render of n samples equals the exact recursion's response
    folded modulo n (time aliasing), for both attenuation filters, and rejects unknown names."""
    base = {"preset": "tutorial", "seconds": 0.1, "target": "fdn", "attenuation": attenuation}
    freq = task.build_recipe("reverb", {**base, "renderer": "frequency_sampling"})
    long = task.build_recipe("reverb", {**base, "seconds": 1.6})  # same delays, 16x longer
    assert "frequency sampling" in freq.settings["renderer"]
    # the slowest decay (the shelf's 0.5 s T60 at Nyquist) is 10^(-9.6) down after 1.6 s
    p = {"t60_dc_s": torch.tensor([0.3, 0.15], dtype=torch.float64),
         "cutoff_hz": torch.tensor([10e3, 3e3], dtype=torch.float64)}
    n = 4800
    folded = long.render(p).reshape(2, 16, n).sum(1)
    y = freq.render(p)
    assert y.shape == (2, n)
    torch.testing.assert_close(y, folded, rtol=0, atol=1e-9)
    # the wrap-around is really there: the first block alone differs
    assert float((y - long.render(p)[:, :n]).abs().max()) > 1e-4
    with pytest.raises(InputError, match="renderer"):
        task.build_recipe("reverb", {**base, "renderer": "flamo"})


def test_fixed_target_edc_equals_edc_loss() -> None:
    rec = task.build_recipe("reverb", SMALL_REVERB)
    p = {"t60_dc_s": torch.tensor([0.4, 1.0, 3.0]), "cutoff_hz": torch.tensor([500.0, 2e3, 7e3])}
    y = rec.render(p)
    t = rec.target.expand_as(y)
    ref = edc_loss(y, t, sample_rate=16000, bands="octave", reduction="none")
    torch.testing.assert_close(rec.losses["edc"](y, t), ref, rtol=1e-5, atol=1e-7)
    other = torch.roll(y, 1, 0)  # not the recipe's target: falls back to edc_loss itself
    torch.testing.assert_close(rec.losses["edc"](y, other),
                               edc_loss(y, other, sample_rate=16000, bands="octave",
                                        reduction="none"))


def test_fixed_target_edc_inplace_path_equals_edc_loss_third_octave() -> None:
    """The no-gradient (in-place, time-reversed) EDC path used by landscapes gives edc_loss's
    values on the tutorial's third-octave set-up; with a gradient it keeps edc_loss's
    gradient."""
    rec = task.build_recipe("reverb", {"preset": "tutorial", "seconds": 0.1, "target": "fdn",
                                       "attenuation": "lowpass"})
    p = {"t60_dc_s": torch.tensor([0.3, 2.0, 3.7]),
         "cutoff_hz": torch.tensor([1700.0, 1e4, 15e3])}
    y = rec.render(p)
    t = rec.target.expand_as(y)
    ref = edc_loss(y, t, sample_rate=48000, bands="third_octave", reduction="none")
    with torch.no_grad():
        fast = rec.losses["edc"](y, t)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-7)
    yg = y.double().requires_grad_(True)  # float64: compare the gradients, not the rounding
    yr = y.double().requires_grad_(True)
    t64 = t.double()
    rec.losses["edc"](yg, t64).sum().backward()
    edc_loss(yr, t64, sample_rate=48000, bands="third_octave", reduction="none").sum().backward()
    assert yg.grad is not None and yr.grad is not None
    assert float(yg.grad.abs().max()) > 0.0
    torch.testing.assert_close(yg.grad, yr.grad, rtol=1e-7, atol=1e-10)


def test_reverb_landscape_finds_the_truth_on_the_grid() -> None:
    rec = task.build_recipe("reverb", SMALL_REVERB)
    grid = {"t60_dc_s": torch.tensor([0.5, 0.7, 1.0, 1.4, 2.0], dtype=torch.float64),
            "cutoff_hz": torch.tensor([500.0, 1000.0, 2000.0, 4000.0], dtype=torch.float64)}
    out = task.compute_landscapes(rec, ["t60_dc_s", "cutoff_hz"], losses=["edc", "esr"],
                                  points=0, grid=grid, perturbations=2)
    assert [(n, p) for n, p, _ in out] == [("edc", False), ("esr", False), ("edc", True),
                                           ("esr", True)]
    edc = out[0][2]
    assert edc.argmin == {"t60_dc_s": 1.0, "cutoff_hz": 2000.0}
    assert edc.argmin_steps == {"t60_dc_s": 0.0, "cutoff_hz": 0.0}
    assert float(edc.loss[2, 2]) < 1e-6
    pert = out[2][2]
    assert pert.runs.shape == (2, 5, 4) and pert.q25 is not None
    assert pert.settings["perturbed"] == ["feedback_matrix"]
    # a different feedback matrix changes the response (the perturbation is real)
    assert float(pert.runs[:, 2, 2].min()) > 0


def test_run_gain_writes_artefacts(tmp_path: Path) -> None:
    res = task.run("gain", "gain,offset", tmp_path, {"points": 9, "truth": {"gain": 0.75}})
    assert set(res.files) == {"landscape.json", "landscape.png", "report.html", "result.json"}
    for f in res.files:
        assert (tmp_path / f).is_file()
    assert (tmp_path / "landscape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((tmp_path / "landscape.json").read_text())
    (ls,) = doc["landscapes"]
    assert ls["loss_name"] == "l2" and ls["local_minima"] == 1
    assert ls["argmin"] == {"gain": 0.75, "offset": 0.25}
    assert ls["argmin_within_one_step"] is True
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["task"] == "landscape" and result["metrics"]["after"]["l2_local_minima"] == 1
    assert result["metrics"]["after"]["l2_significant_minima"] == 1
    assert ls["significant_minima"] == 1 and ls["minima_depths"] == [1.0]
    assert result["settings"]["truth"]["gain"] == 0.75
    assert "landscape.png" in (tmp_path / "report.html").read_text()
    assert res.sections and res.sections[0].images[0][0] == "landscape.png"


def test_run_1d_match_and_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"points": 7, "seconds": 0.1,
                               "losses": ["mss", "wasserstein_freq"],
                               "grid": {"freq_hz": [220.0, 440.0]}}))
    res = task.run("match", "freq_hz", tmp_path / "out", str(cfg))
    doc = json.loads((tmp_path / "out" / "landscape.json").read_text())
    assert [d["loss_name"] for d in doc["landscapes"]] == ["mss", "wasserstein_freq"]
    axis = doc["landscapes"][0]["axes"][0]
    assert len(axis) == 7 and axis[0] == 220.0 and axis[-1] == 440.0
    assert doc["landscapes"][0]["scales"] == ["log"]
    assert res.result["inputs"][0]["path"] == str(cfg)
    assert (tmp_path / "out" / "landscape.png").is_file()


@pytest.mark.parametrize("name, params", [("match", ("freq_hz", "index")),
                                          ("align", ("cutoff_hz", "radius")),
                                          ("style", ("threshold_db", "ratio"))])
def test_recipes_render_the_target_at_the_truth(name: str, params: tuple[str, str]) -> None:
    cfg = {"seconds": 0.25} if name != "match" else {"seconds": 0.1}
    rec = task.build_recipe(name, cfg)
    assert rec.default_params == params
    p = {k: torch.tensor([v, v]) for k, v in rec.truth.items()}
    y = rec.render(p)
    assert y.shape[1:] == rec.target.shape
    torch.testing.assert_close(y[0], rec.target)
    for lname in rec.default_losses:
        val = rec.losses[lname](y, rec.target.expand_as(y))
        assert val.shape == (2,) and bool(val.isfinite().all())
        assert float(val.abs().max()) < 1e-3, (name, lname)


def test_fm_with_zero_index_is_a_sine() -> None:
    from diffdsp.functional.oscillators import sine

    rec = task.build_recipe("match", {"seconds": 0.1})
    y = rec.render({"freq_hz": torch.tensor([300.0]), "index": torch.tensor([0.0]),
                    "amplitude": torch.tensor([0.5])})
    torch.testing.assert_close(y[0], 0.5 * sine(300.0, sample_rate=16000, n_samples=1600))


@pytest.mark.parametrize("kwargs, match", [
    ({"task": "nope"}, "task"),
    ({"params": "gain,nope"}, "unknown parameter 'nope'"),
    ({"params": "gain,offset,gain"}, "1 or 2"),
    ({"params": "gain,gain"}, "twice"),
    ({"config": {"points": 1}}, "points"),
    ({"config": {"bogus": 1}}, "unknown config key"),
    ({"config": {"losses": ["nope"]}}, "unknown loss"),
    ({"config": {"truth": {"gain": 9.0}}}, "truth"),
    ({"config": {"grid": {"gain": [0.5, 3.0]}}}, "range"),
    ({"config": {"grid": {"gain": [0.5]}}}, "at least 2"),
    ({"config": {"perturbations": 3}}, "perturbation"),
    ({"config": "{not json"}, "not valid JSON"),
    ({"config": "[1, 2]"}, "JSON object"),
    ({"config": "/nonexistent/cfg.json"}, "no such file"),
])
def test_run_bad_input(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"task": "gain", "params": "gain", "config": None}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        task.run(args["task"], args["params"], tmp_path / "o", args["config"])


def test_cli_landscape_writes_files_and_json(tmp_path: Path) -> None:
    code, out, err = run_cli(["landscape", "--task", "gain", "--params", "gain", "--out",
                              tmp_path, "--config", '{"points": 5}', "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert result["task"] == "landscape" and result["settings"]["points"] == {"gain": 5}
    assert (tmp_path / "landscape.json").is_file() and (tmp_path / "landscape.png").is_file()


@pytest.mark.parametrize("extra, match", [
    (["--task", "nope"], "task"),
    (["--task", "gain", "--params", "nope"], "unknown parameter"),
    (["--task", "gain", "--config", '{"points": 1}'], "points"),
    (["--task", "gain", "--config", '{"grid": {"gain": [-1, 1]}}'], "range"),
    (["--task", "gain", "--config", "{oops"], "JSON"),
    (["--task", "gain", "--config", "missing.json"], "no such file"),
    (["--task", "gain", "--device", "tpu"], "device"),
])
def test_cli_landscape_usage_errors(tmp_path: Path, extra: list[str], match: str) -> None:
    assert_usage_error(["landscape", "--out", str(tmp_path / "o"), *extra], match=match)


def test_cli_landscape_refuses_a_file_as_output(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert_usage_error(["landscape", "--task", "gain", "--out", str(f)], inputs=[f],
                       match="not a folder")


@pytest.mark.slow
def test_eval_landscapes_quick() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "evals" / "landscapes.py"), "--quick"],
                          cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("FIGURE ") == 6


@pytest.mark.slow
def test_eval_landscapes_tutorial_scale_quick(tmp_path: Path) -> None:
    """The tutorial-scale mode runs (tiny grids), counts every loss, never writes the results
    file in quick mode and leaves the verdict unjudged."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "ts.json"
    proc = subprocess.run([sys.executable, str(root / "evals" / "landscapes.py"), "--quick",
                           "--tutorial-scale", "--threads", "1", "--ts-out", str(out)],
                          cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("FIGURE tutorial_scale_minima ") == 2
    assert "FIGURE tutorial_scale_verdict" in proc.stdout
    assert "not judged (quick)" in proc.stdout
    for loss in ("edc", "mss", "power_convergence", "esr"):
        assert f"1d-lowpass-fdn-t60_dc_s {loss}" in proc.stdout
        assert f"2d-lowpass-fdn {loss}" in proc.stdout
    assert "per perturbed curve" in proc.stdout
    assert not out.exists()


def test_eval_tutorial_scale_job_names() -> None:
    """The job grammar of evals/landscapes.py --ts-jobs, the authors' noisy target included."""
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("eval_landscapes", root / "evals" /
                                                  "landscapes.py")
    assert spec is not None and spec.loader is not None
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    assert ev._ts_parse("2d-lowpass-fdn") == ("2d", "lowpass", "fdn", None, "time", None, None,
                                              None)
    assert ev._ts_parse("2d-shelf-other~10@4:50") == ("2d", "shelf", "other", 10.0, "time",
                                                      None, 4.0, 50)
    assert ev._ts_parse("1d-lowpass-other~5-cutoff_hz@2") == ("1d", "lowpass", "other", 5.0,
                                                              "time", "cutoff_hz", 2.0, None)
    job = ev._ts_parse("1d-shelf-other~10+fs-t60_dc_s@4:500")
    assert (job.renderer, job.param, job.seconds, job.points) == (
        "frequency_sampling", "t60_dc_s", 4.0, 500)
    for bad in ("2d-lowpass-fdn-t60_dc_s", "1d-lowpass-fdn", "2d-bandpass-fdn",
                "2d-lowpass-other~x", "2d-lowpass-fdn+flamo"):
        with pytest.raises(SystemExit, match="bad --ts-jobs"):
            ev._ts_parse(bad)
