"""Tests for diffdsp.tasks.style: loudness, features, per-example transfer, files, CLI errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import torch

from diffdsp._validation import InputError
from diffdsp.effects.eq import ParametricEQ
from diffdsp.functional.analysis import loudness_lufs
from diffdsp.tasks import style as S
from tests.cli_helpers import assert_usage_error, bad_audio_files, run_cli
from tests.helpers import assert_finite, noise

ROOT = Path(__file__).resolve().parents[2]
SR = 16000


def speechy(seconds: float, seed: int) -> np.ndarray:
    """Noise bursts with a spectral tilt and pauses (cheap speech-like test content)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.cumsum(rng.standard_normal(n)) * 0.02
    x = x - np.convolve(x, np.ones(64) / 64, mode="same")
    env = (np.sin(2 * np.pi * 3.0 * np.arange(n) / SR) > -0.3).astype(float)
    return (x * env * 0.3).astype(np.float32)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_feature_loudness_matches_pyloudnorm(sr: int) -> None:
    # the style features measure loudness on K-weighted STFT frames (for the fast EQ stage);
    # they must agree with BS.1770 as pyloudnorm and diffdsp.functional.analysis compute it
    rng = np.random.default_rng(0)
    t = np.arange(2 * sr) / sr
    sig = 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 1.5 * t))
    sig = sig + 0.05 * rng.standard_normal(t.size)
    want = pyloudnorm.Meter(sr).integrated_loudness(sig)
    x = torch.tensor(sig)
    got = float(S.style_features(x[None, None], sample_rate=sr)["loudness_lufs"][0])
    assert got == pytest.approx(want, abs=0.1)
    # the name style re-exports (used by evals) is the analysis function
    assert S.loudness_lufs is loudness_lufs
    assert float(S.loudness_lufs(x, sample_rate=sr)) == pytest.approx(want, abs=1e-3)


def test_metrics_loudness_error_on_short_signals() -> None:
    x = torch.from_numpy(speechy(0.2, 15))  # shorter than one 400 ms block
    m = S.metrics(x[None], 2 * x[None], sample_rate=SR)
    assert m["loudness_error_lu"] == pytest.approx(20 * math.log10(2), abs=1e-6)


def test_features_finite_and_gradients_on_degenerate() -> None:
    for x in (torch.zeros(1, 1, 4000), torch.full((1, 1, 4000), 0.5), noise((1, 2, 300))):
        xx = x.clone().requires_grad_()
        f = S.style_features(xx, sample_rate=SR)
        if not x.any():
            assert float(f["loudness_lufs"][0].detach()) < -70  # silence: below the absolute gate
        total = sum(v.sum() for v in f.values())
        assert isinstance(total, torch.Tensor)
        total.backward()
        for k, v in f.items():
            assert_finite(v, k)
        assert xx.grad is not None
        assert_finite(xx.grad, "grad")


def test_style_loss_zero_on_reference_and_gain_sensitive() -> None:
    ref = torch.from_numpy(speechy(1.0, 0))[None, None]
    loss = S.StyleLoss(ref, sample_rate=SR)
    assert float(loss(ref)[0]) < 1e-6
    assert float(loss.terms(ref * 2)["loudness"][0]) == pytest.approx(20 * math.log10(2), abs=0.01)


def test_eq_effect_fsm_matches_exact() -> None:
    x = torch.from_numpy(speechy(0.5, 1))[None, None].double()
    p = torch.rand(1, 18, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fsm = S.style_chain(SR, eq_mode="fsm").effects["eq"].double()(x, p)
    exact = S.style_chain(SR, eq_mode="exact").effects["eq"].double()(x, p)
    assert float((fsm - exact).abs().max()) < 1e-5 * float(exact.abs().max())


def test_eq_response_matches_filtering() -> None:
    # the EQ stage of transfer() uses eq_response_db; it must be the response of the filter
    eq = S.style_chain(SR, eq_mode="exact").effects["eq"].double()
    assert isinstance(eq, ParametricEQ) and eq.n_bands == 6
    assert eq.param_ranges["band1_gain_db"].max == S.EQ_MAX_GAIN_DB
    p = torch.rand(2, 18, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    imp = torch.zeros(2, 1, SR, dtype=torch.float64)
    imp[..., 0] = 1.0
    h = torch.fft.rfft(eq(imp, p)[:, 0])
    f = torch.fft.rfftfreq(SR, 1.0 / SR, dtype=torch.float64)[1:-1]
    want = 20 * torch.log10(h.abs()[:, 1:-1])
    got = S.eq_response_db(eq, f, p)
    assert float((got - want).abs().max()) < 1e-3
    assert float(got.abs().max()) > 1.0  # the random settings do shape the spectrum


def test_transfer_recovers_loudness_and_reduces_loss() -> None:
    a = torch.from_numpy(speechy(1.0, 2))[None, None]
    b = torch.from_numpy(speechy(1.0, 3))[None, None]
    chain = S.style_chain(SR)
    p = S.random_settings(chain, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        inp, ref = chain(a, p[:1]), chain(b, p[1:])
    before = S.style_distance(inp[0], ref[0], sample_rate=SR)
    fit = S.transfer(inp, ref, sample_rate=SR, steps=40, dyn_steps=3, lr=0.1)
    after = S.style_distance(fit.output[0], ref[0], sample_rate=SR)
    assert fit.output.shape == inp.shape
    assert after["spectrum_error_db"] < before["spectrum_error_db"]
    # loudness per BS.1770 (the final closed-form gain matches it; the STFT-frame loudness of
    # the style features differs from it by a few tenths of a LU on 1 s signals)
    l_out = float(loudness_lufs(fit.output[0, 0], sample_rate=SR))
    l_ref = float(loudness_lufs(ref[0, 0], sample_rate=SR))
    assert abs(l_out - l_ref) < min(0.05, before["loudness_error_lu"])
    comp = fit.settings[0]["compressor"]
    assert set(comp) == {"threshold_db", "ratio", "attack_ms", "release_ms", "knee_db",
                         "makeup_db"}


def test_transfer_spsa_strategy_runs() -> None:
    a = torch.from_numpy(speechy(0.5, 5))[None, None]
    fit = S.transfer(a, a * 0.3, sample_rate=SR, steps=6, strategy="spsa", lr=0.1)
    assert fit.fit["strategy"] == "spsa" and torch.isfinite(fit.output).all()
    assert fit.fit["best_loss"] < float(S.StyleLoss(a * 0.3, sample_rate=SR)(a)[0])


def _write(path: Path, x: np.ndarray, sr: int) -> Path:
    sf.write(path, x.T if x.ndim == 2 else x, sr, subtype="FLOAT")
    return path


def test_run_writes_artefacts_with_mismatched_reference(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.wav", np.stack([speechy(0.8, 6), speechy(0.8, 7)]), SR)
    ref = _write(tmp_path / "ref.wav", speechy(0.1, 8) * 3, 22050)  # mono, other rate, 0.1 s
    res = S.run(inp, ref, tmp_path / "out", steps=4, plots=True)
    out = tmp_path / "out"
    y, sr = sf.read(out / "output.wav", always_2d=True)
    assert sr == SR and y.shape == (int(0.8 * SR), 2)
    params = json.loads((out / "params.json").read_text())
    assert {"eq", "compressor", "gain"} <= set(params["settings"])
    assert "band1_cutoff_hz" in params["settings"]["eq"]
    result = json.loads((out / "result.json").read_text())
    assert result["task"] == "style" and "loudness_error_lu" in result["metrics"]["after"]
    assert any("resampled" in n for n in result["notes"])
    assert any("short" in n for n in result["notes"])
    for f in ("eq_response.png", "gain_reduction.png", "report.html"):
        assert (out / f).is_file() and f in res.files


def test_silent_input_or_reference_is_refused(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.wav", speechy(0.5, 9), SR)
    silent = _write(tmp_path / "silent.wav", np.zeros(SR // 2, dtype=np.float32), SR)
    with pytest.raises(InputError, match="input is silent"):
        S.run(silent, good, tmp_path / "o1", steps=2, plots=False)
    with pytest.raises(InputError, match="reference is silent"):
        S.run(good, silent, tmp_path / "o2", steps=2, plots=False)


def test_too_short_input_or_reference_is_refused(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.wav", speechy(0.5, 11), SR)
    one = _write(tmp_path / "one.wav", np.array([0.5], dtype=np.float32), SR)
    short = _write(tmp_path / "short.wav", speechy(0.5, 12)[: S.MIN_SAMPLES - 1], SR)
    for bad in (one, short):
        n = sf.info(bad).frames
        with pytest.raises(InputError, match=f"input is too short.*{S.MIN_SAMPLES}.*got {n}$"):
            S.run(bad, good, tmp_path / "o1", steps=2, plots=False)
        with pytest.raises(InputError, match=f"reference is too short.*{S.MIN_SAMPLES}"):
            S.run(good, bad, tmp_path / "o2", steps=2, plots=False)
    # the CLI exits 2 with one line naming the file, and creates no output folder
    line = assert_usage_error(["style", one, good, "--out", tmp_path / "o3", "--quiet"],
                              [one, good], match=str(one))
    assert str(S.MIN_SAMPLES) in line
    line = assert_usage_error(["style", good, one, "--out", tmp_path / "o4", "--quiet"],
                              [one, good], match=str(one))
    assert str(S.MIN_SAMPLES) in line
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()
    assert not (tmp_path / "o4").exists()
    # a reference that is long enough at its own rate but too short after resampling
    ref = _write(tmp_path / "ref48k.wav", speechy(0.5, 13)[: S.MIN_SAMPLES], 48000)
    with pytest.raises(InputError, match="after resampling"):
        S.run(good, ref, tmp_path / "o5", steps=2, plots=False)
    # exactly the minimum is accepted
    ok = _write(tmp_path / "min.wav", speechy(0.5, 14)[: S.MIN_SAMPLES], SR)
    S.run(ok, good, tmp_path / "o6", steps=1, plots=False)
    assert (tmp_path / "o6" / "output.wav").is_file()


def test_cli_errors_and_success(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.wav", speechy(0.5, 10), SR)
    bad = bad_audio_files(tmp_path / "bad")
    for path in bad.values():
        assert_usage_error(["style", path, good, "--out", tmp_path / "o", "--quiet"], [good])
    silent = _write(tmp_path / "silent.wav", np.zeros(SR // 2, dtype=np.float32), SR)
    assert_usage_error(["style", good, silent, "--out", tmp_path / "o", "--quiet"], [good, silent],
                       match="silent")
    assert_usage_error(["style", good, good, "--out", tmp_path / "o", "--strategy", "magic"],
                       [good], match="strategy")
    assert_usage_error(["style", good, good, "--out", tmp_path / "o", "--model", good],
                       [good], match="learned mode")
    code, out, err = run_cli(["style", good, good, "--out", tmp_path / "ok", "--steps", "3",
                              "--json"])
    assert code == 0, err
    assert json.loads(out)["task"] == "style"


def test_eval_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evals" / "style_transfer.py"), "--quick",
         "--strategies", "autodiff"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FIGURE style_autodiff_speech_mrstft" in proc.stdout


def test_eq_init_fits_long_term_spectrum_of_a_known_eq() -> None:
    # the reference is the input through a known EQ: the multi-start EQ-only fit of the long-term
    # spectrum must bring the spectrum term far below the flat EQ's (same content, so ~0 exists)
    x = torch.from_numpy(speechy(1.0, 11))[None, None].double()
    eq = ParametricEQ(SR, n_bands=6, max_gain_db=S.EQ_MAX_GAIN_DB).double()
    p = eq.normalise({"band2_gain_db": -12.0, "band2_cutoff_hz": 500.0,
                      "high_shelf_gain_db": 9.0}, 1).double()
    with torch.no_grad():
        ref = eq(x, p)
    loss = S.StyleLoss(ref, sample_rate=SR)
    power, _ = S._frame_power(x.mean(1), SR)
    u = S._eq_init(eq, power.mean(-2), loss, n_starts=8, steps=80)
    with torch.no_grad():
        flat = float(loss.terms(x)["spectrum"][0])
        fitted = float(loss.terms(eq(x, u))["spectrum"][0])
    assert flat > 2.0
    assert fitted < 0.25 * flat


def test_final_gain_matches_reference_loudness() -> None:
    # the closed-form last step sets the output gain so the loudness equals the reference's
    x = torch.from_numpy(speechy(1.0, 12))[None, None].double()
    ref = 0.2 * torch.from_numpy(speechy(1.0, 13))[None, None].double()
    chain = S.style_chain(SR).double()
    u = S._initial_params(chain, 1, torch.zeros((), dtype=torch.float64))
    with torch.no_grad():
        u2 = S._match_loudness(chain, x, u, ref, SR)
        got = loudness_lufs(chain(x, u2)[0, 0], sample_rate=SR)
    assert float(got) == pytest.approx(float(loudness_lufs(ref[0, 0], sample_rate=SR)), abs=1e-6)
    assert torch.equal(u2[:, :-1], u[:, :-1])  # only the output gain moves


def test_generated_signals_are_one_shared_definition() -> None:
    # the learned mode's data and the eval use the same generators (diffdsp.data.synthetic)
    from diffdsp.data import synthetic
    from diffdsp.train import style as train_style

    assert train_style.synthetic_speech is synthetic.speech_like
    assert train_style.synthetic_music is synthetic.music_like
    src = (ROOT / "evals" / "style_transfer.py").read_text()
    assert "def speech_like" not in src and "def music_like" not in src
    for fn in (synthetic.speech_like, synthetic.music_like):
        a = fn(3000, 8000, torch.Generator().manual_seed(5))
        b = fn(3000, 8000, torch.Generator().manual_seed(5))
        c = fn(3000, 8000, torch.Generator().manual_seed(6))
        assert torch.equal(a, b) and not torch.equal(a, c)
        with pytest.raises(InputError, match="n_samples"):
            fn(0, 8000, torch.Generator())
        with pytest.raises(InputError, match="sample_rate"):
            fn(100, -1, torch.Generator())


def test_style_loss_multi_resolution_spectrum() -> None:
    # the default spectrum term compares the shapes at 24 and 64 mel bands, each resolution
    # weighted equally; each part equals the single-resolution feature
    x = torch.from_numpy(speechy(1.0, 21))[None, None].double()
    both = S.style_features(x, sample_rate=SR, n_bands=(24, 64))["spectrum_db"]
    one = S.style_features(x, sample_rate=SR, n_bands=24)["spectrum_db"]
    fine = S.style_features(x, sample_rate=SR, n_bands=64)["spectrum_db"]
    assert both.shape == (1, 88)
    assert torch.allclose(both[:, :24], one) and torch.allclose(both[:, 24:], fine)
    loss = S.StyleLoss(x, sample_rate=SR)
    assert loss.n_bands == S.SPECTRUM_BANDS == (24, 64)
    w = loss.band_mask[0]
    assert float(w[:24].sum()) == pytest.approx(float(w[24:].sum()), rel=0.1)
    # a +6 dB broadband change of one region moves the term at both resolutions
    y = x.clone()
    spec = torch.fft.rfft(y[0, 0])
    f = torch.fft.rfftfreq(y.shape[-1], 1 / SR)
    spec[(f > 1000) & (f < 2000)] *= 2.0
    y[0, 0] = torch.fft.irfft(spec, n=y.shape[-1])
    t_both = float(loss.terms(y)["spectrum"][0])
    t_one = float(S.StyleLoss(x, sample_rate=SR, n_bands=24).terms(y)["spectrum"][0])
    assert t_both > 0.1 and t_one > 0.1
    with pytest.raises(InputError, match="n_bands"):
        S.StyleLoss(x, sample_rate=SR, n_bands=())
    with pytest.raises(InputError, match="n_bands"):
        S.StyleLoss(x, sample_rate=SR, n_bands=(24, 1))


def test_centroid_metric_is_deepafx_sts_frame_average() -> None:
    # DeepAFx-ST: torchaudio SpectralCentroid (2048-point periodic Hann frames, hop 512, centred
    # with reflect padding, magnitude-weighted per frame), then the plain mean over frames
    sr, n_fft, hop = 24000, 2048, 512
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(sr, dtype=torch.float64) / sr
    a = torch.sin(2 * math.pi * 440 * t) * torch.linspace(1, 0, sr, dtype=torch.float64)
    b = a + 0.05 * torch.randn(sr, generator=gen, dtype=torch.float64)

    def ref(x: torch.Tensor) -> float:
        xn = np.pad(x.numpy(), n_fft // 2, mode="reflect")
        win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        frames = [xn[i:i + n_fft] * win for i in range(0, len(xn) - n_fft + 1, hop)]
        mag = np.abs(np.fft.rfft(np.stack(frames), axis=-1))
        f = np.linspace(0, sr / 2, n_fft // 2 + 1)
        return float(((mag * f).sum(-1) / mag.sum(-1)).mean())

    got = S.metrics(b[None], a[None], sample_rate=sr)["centroid_error_hz"]
    assert got == pytest.approx(abs(ref(b) - ref(a)), rel=1e-6)
    assert got > 10.0  # the noise moves the frame centroids (the check can fail)
