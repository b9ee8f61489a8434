"""``diffdsp export``: the exported plain data reproduces our modules outside diffdsp.

Each artefact is written in the format its task writes (``fdn.json`` from ``FDN.to_dict`` plus the
reverb task's keys, ``allpass.json`` from ``AlignmentFilter.to_dict``, ``patch.json`` from
``Patch.save``, and a real ``diffdsp style`` run for ``params.json``). The export is then run
through independent code: ``scipy.signal.sosfilt`` for the SOS, and a small numpy loop written here
for the FDN, and compared with diffdsp's own output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.signal
import torch

from diffdsp import export
from diffdsp.functional.allpass import thiran1_sos, warped_allpass1_sos, warped_allpass2_sos
from diffdsp.io import load_audio, save_audio
from diffdsp.lti.fdn import FDN, build_fdn
from diffdsp.lti.systems import octave_centers_hz
from tests.cli_helpers import assert_usage_error, run_cli
from tests.helpers import REF_TOL, Tol, assert_close, noise

#: Our float32 renderer (the task's WAV) against the float64 export rendered in numpy: float32
#: rounding of the coefficients and of ~4000 recursion steps, relative to the response's peak.
FLOAT32_RENDER_TOL = Tol(rtol=0.0, atol=2e-5)
#: Relative L2 error of that float32 render over the late tail (0.25-0.5 s, ~40 dB down): float32
#: loop coefficients change the decay slightly and the error grows along the tail (measured
#: 1.2e-3 here); the float64 comparison above it is the exactness claim.
FLOAT32_TAIL_REL = 5e-3
#: SOS from a float64 export through scipy against our float64 filtering.
SOS_TOL = REF_TOL[torch.float64]


# ----------------------------------------------------------------------------- references


def numpy_fdn_render(doc: dict[str, Any], n: int) -> np.ndarray:
    """Impulse response of an exported FDN, written from its ``signal_flow`` text alone."""
    m = np.asarray(doc["delay_samples"], dtype=np.int64)
    a = np.asarray(doc["feedback_matrix"], dtype=np.float64)
    b = np.asarray(doc["input_gains"], dtype=np.float64)
    c = np.asarray(doc["output_gains"], dtype=np.float64)
    att = np.asarray(doc["attenuation"]["sos"], dtype=np.float64)  # (N, K, 6)
    n_lines, n_sec, _ = att.shape
    length = int(m.max())
    buf = np.zeros((n_lines, length))
    z1 = np.zeros((n_lines, n_sec))
    z2 = np.zeros((n_lines, n_sec))
    x = np.zeros(n)
    x[0] = 1.0
    r = np.zeros(n)
    lines = np.arange(n_lines)
    for t in range(n):
        v = buf[lines, (t - m) % length]
        for k in range(n_sec):  # transposed direct form II, one state pair per line and section
            b0, b1, b2, _, a1, a2 = att[:, k].T
            w = b0 * v + z1[:, k]
            z1[:, k] = b1 * v - a1 * w + z2[:, k]
            z2[:, k] = b2 * v - a2 * w
            v = w
        r[t] = c @ v
        buf[:, t % length] = b * x[t] + a @ v
    if doc["tone"] is not None:
        r = scipy.signal.sosfilt(np.asarray(doc["tone"]["sos"]), r)
    y = r + doc["direct_gain"] * x
    pre = int(doc["predelay_samples"])
    return np.concatenate([np.zeros(pre), y])[:n]


def _shift(x: np.ndarray, d: int) -> np.ndarray:
    out = np.zeros_like(x)
    if d >= 0:
        out[d:] = x[: len(x) - d]
    else:
        out[: len(x) + d] = x[-d:]
    return out


# ----------------------------------------------------------------------------- artefacts


def _fdn_json(folder: Path, *, predelay: int = 7, length: int = 4000) -> tuple[Path, FDN]:
    """An FDN built as ``reverb fit`` builds it (GEQ attenuation, tone corrector, direct path)."""
    sr = 8000
    centers = octave_centers_hz(sr, lowest_hz=31.25)
    t60 = [0.5, 0.45, 0.4, 0.42, 0.35, 0.3, 0.25][: len(centers)]
    fdn = build_fdn(sr, n_lines=4, delay_range_ms=(6.0, 25.0), nfft=2**13, dtype=torch.float32,
                    seed=3, attenuation="geq", t60_s=t60, center_hz=centers,
                    tone_gain_db=[2.0, -1.0, 3.0, 0.5, -2.0, 1.0, 0.0][: len(centers)],
                    direct_gain=0.4)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fdn.json"
    path.write_text(json.dumps({**fdn.to_dict(), "predelay_samples": predelay,
                                "length_samples": length}))
    return path, fdn


def _alignment_filter(folder: Path) -> tuple[Path, Any]:
    from diffdsp.tasks.align import AlignmentFilter

    sr = 16000
    secs = [thiran1_sos(0.37), warped_allpass2_sos(0.9, 400.0, 0.3, sample_rate=sr),
            warped_allpass2_sos(0.7, 3000.0, -0.2, sample_rate=sr),
            warped_allpass1_sos(800.0, 0.1, sample_rate=sr)]
    sos = torch.stack([s.reshape(6).to(torch.float64) for s in secs])
    filt = AlignmentFilter(sample_rate=sr, delay_samples=-3, polarity=-1, sos=sos,
                           sections=[{"role": "allpass", "sos": row} for row in sos.tolist()])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "allpass.json"
    path.write_text(json.dumps({**filt.to_dict(), "order": 6, "method": "spectral"}))
    return path, filt


# ----------------------------------------------------------------------------- tests


def test_fdn_export_renders_our_impulse_response(tmp_path: Path) -> None:
    from diffdsp.tasks import reverb

    path, _ = _fdn_json(tmp_path / "fit", predelay=7, length=4000)
    code, _, err = run_cli(["export", path.parent, "--out", tmp_path / "exp", "--quiet"])
    assert code == 0, err
    doc = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert doc["format"] == export.FORMAT and doc["kind"] == "fdn"
    assert all(isinstance(v, int) for v in doc["delay_samples"])
    mat = np.asarray(doc["feedback_matrix"])
    assert np.abs(mat @ mat.T - np.eye(4)).max() < 1e-12  # orthogonal, as fitted
    att = np.asarray(doc["attenuation"]["sos"])
    assert att.shape[:1] == (4,) and att.shape[-1] == 6 and np.all(att[..., 3] == 1.0)
    y_np = numpy_fdn_render(doc, 4000)
    # float64: the module rebuilt exactly from the artefact, rendered by our exact recursion
    ours64 = FDN.from_dict({**json.loads(path.read_text()), "dtype": "float64"}).render_time(
        4000 - 7)
    assert_close(y_np[7:], ours64, SOS_TOL, "numpy FDN vs diffdsp float64 render")
    # the task's own rendering of the artefact (float32, written as WAV)
    reverb.render(path, tmp_path / "render")
    wav, sr = load_audio(tmp_path / "render" / "impulse_response.wav")
    assert sr == doc["sample_rate"] and wav.shape[-1] == 4000
    peak = float(np.abs(y_np).max())
    assert_close(torch.from_numpy(y_np / peak), wav[0].double() / peak, FLOAT32_RENDER_TOL,
                 "numpy FDN vs the task's impulse_response.wav")
    # the tail matters: energy after 0.25 s is reproduced too (not only the direct path)
    tail = slice(2000, 4000)
    assert float(np.abs(y_np[tail]).max()) > 1e-3 * peak
    rel = np.linalg.norm(y_np[tail] - wav[0, tail].double().numpy()) / np.linalg.norm(y_np[tail])
    assert rel < FLOAT32_TAIL_REL


def test_fdn_export_npz_and_c_header(tmp_path: Path) -> None:
    path, _ = _fdn_json(tmp_path / "fit")
    code, _, err = run_cli(["export", path, "--out", tmp_path / "exp", "--format", "npz,c",
                            "--quiet"])
    assert code == 0, err
    doc = json.loads((tmp_path / "exp" / "export.json").read_text())
    npz = np.load(tmp_path / "exp" / "export.npz")
    np.testing.assert_array_equal(npz["delay_samples"], doc["delay_samples"])
    np.testing.assert_array_equal(npz["attenuation/sos"], np.asarray(doc["attenuation"]["sos"]))
    header = (tmp_path / "exp" / "export.h").read_text()
    n_att = np.asarray(doc["attenuation"]["sos"]).size
    assert f"static const double DIFFDSP_ATTENUATION_SOS[{n_att}]" in header
    line = next(ln for ln in header.splitlines() if ln.startswith(
        "static const long DIFFDSP_DELAY_SAMPLES[4]"))
    assert [int(v) for v in line.split("{")[1].rstrip("};").split(",")] == doc["delay_samples"]


def test_allpass_export_matches_scipy(tmp_path: Path) -> None:
    path, filt = _alignment_filter(tmp_path / "align")
    doc = export.export_artefact(path)
    assert doc["kind"] == "allpass" and doc["n_sections"] == 4
    x = noise((3000,), seed=1, dtype=torch.float64)
    ours = filt.apply(x)
    ref = doc["polarity"] * scipy.signal.sosfilt(np.asarray(doc["sos"]),
                                                 _shift(x.numpy(), doc["delay_samples"]))
    assert_close(ref, ours, SOS_TOL, "exported all-pass through scipy vs AlignmentFilter.apply")
    # every section is all-pass: |H| = 1 on the unit circle
    _, h = scipy.signal.sosfreqz(np.asarray(doc["sos"]), worN=256)
    assert np.abs(np.abs(h) - 1.0).max() < 1e-9


def test_style_export_from_a_real_run(tmp_path: Path) -> None:
    from diffdsp import data
    from diffdsp.effects.eq import ParametricEQ
    from diffdsp.functional.dynamics import compressor
    from diffdsp.io import resample
    from diffdsp.tasks import style

    sp, sr0 = load_audio(data.path("speech_music/speech_cmu_arctic_a0007.flac"))
    sp = resample(sp[:1], sr0, 16000)[..., :6000]
    save_audio(tmp_path / "in.wav", sp, 16000)
    save_audio(tmp_path / "ref.wav", 0.3 * sp.flip(-1), 16000)
    style.run(tmp_path / "in.wav", tmp_path / "ref.wav", tmp_path / "st", steps=2, plots=False)
    code, _, err = run_cli(["export", tmp_path / "st", "--out", tmp_path / "st", "--quiet"])
    assert code == 0, err  # exporting into the task's own folder is allowed
    doc = json.loads((tmp_path / "st" / "export.json").read_text())
    params = json.loads((tmp_path / "st" / "params.json").read_text())
    assert doc["kind"] == "style" and doc["compressor"]["smoothing_recorded"]
    settings = params["settings"]
    x = noise((1, 1, 4000), seed=2, dtype=torch.float64) * 0.3
    eq = ParametricEQ(16000, method="exact", max_gain_db=style.EQ_MAX_GAIN_DB)
    ours = eq(x, **settings["eq"])
    ref = scipy.signal.sosfilt(np.asarray(doc["eq"]["sos"]), x[0, 0].numpy())
    assert_close(ref, ours[0, 0], SOS_TOL, "exported EQ SOS through scipy vs ParametricEQ")
    comp = doc["compressor"]
    assert comp["alpha_attack"] == pytest.approx(
        math.exp(-1000.0 / (comp["attack_ms"] * 16000)), rel=1e-12)
    # the compressor as an engine would run it from the export, against ours
    y = compressor(torch.from_numpy(ref)[None], sample_rate=16000, **{
        k: comp[k] for k in ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db",
                             "makeup_db")})[0].numpy()
    assert_close(_numpy_compressor(ref, comp), y, Tol(rtol=1e-7, atol=1e-9),
                 "compressor from the export's equations vs diffdsp")
    assert doc["gain"]["linear"] == pytest.approx(10 ** (settings["gain"]["gain_db"] / 20))


def _numpy_compressor(x: np.ndarray, comp: dict[str, Any]) -> np.ndarray:
    """The export's detector / ballistics / apply text, in numpy (mono)."""
    level = 20 * np.log10(np.maximum(np.abs(x), 1e-7))
    o = level - comp["threshold_db"]
    w = comp["knee_db"]
    h = np.where(o < -w / 2, 0.0, np.where(o > w / 2, o, (o + w / 2) ** 2 / (2 * w)))
    r = (1 - 1 / comp["ratio"]) * h
    z = np.zeros_like(r)
    prev = 0.0
    for n, rn in enumerate(r):
        a = comp["alpha_attack"] if rn > prev else comp["alpha_release"]
        prev = a * prev + (1 - a) * rn
        z[n] = prev
    return x * 10 ** ((comp["makeup_db"] - z) / 20)


def test_patch_export_parameters_and_filter_sos(tmp_path: Path) -> None:
    from diffdsp.synth.modules import Filter, RenderContext
    from diffdsp.synth.presets import get_preset

    patch = get_preset("subtractive", 16000)
    fitted = {"note.f0_hz": 330.0, "lpf.cutoff_hz": 7000.0, "lpf.q": 2.0, "env.sustain": 0.4}
    patch.save(tmp_path / "patch.json", fitted)
    doc = export.export_artefact(tmp_path / "patch.json")
    assert doc["kind"] == "patch" and doc["sample_rate"] == 16000
    mods = doc["modules"]
    assert mods["note"]["params"]["f0_hz"] == {"value": 330.0, "unit": "Hz", "source": "fitted"}
    assert mods["saw"]["params"]["ratio"]["source"] == "fixed"
    assert mods["env"]["params"]["attack_s"]["source"] == "default"
    assert set(doc["render_order"]) == set(mods)
    # the unmodulated low-pass: its SOS through scipy equals the synth module's output
    lpf = mods["lpf"]
    # 7 kHz at 16 kHz is within an octave of the 0.45 fs limit: the smooth clamp lowers it a bit
    assert lpf["sos"] is not None and 6000.0 < lpf["effective_cutoff_hz"] < 7000.0
    x = noise((1, 2000), seed=4, dtype=torch.float64)
    ctx = RenderContext(sample_rate=16000, n_samples=2000, batch=1,
                        note_s=torch.tensor([0.1]), dtype=torch.float64,
                        device=torch.device("cpu"))
    p = {k: torch.tensor([v["value"]], dtype=torch.float64) for k, v in lpf["params"].items()}
    ours = Filter("lowpass")({"in": x}, p, ctx)
    ref = scipy.signal.sosfilt(np.asarray(lpf["sos"]), x[0].numpy())
    assert_close(ref, ours[0], Tol(rtol=1e-7, atol=1e-10), "patch filter SOS vs synth Filter")


def test_bad_artefacts_exit_2_one_line(tmp_path: Path) -> None:
    good, _ = _fdn_json(tmp_path / "good")
    out = tmp_path / "out"
    assert_usage_error(["export", tmp_path / "missing.json", "--out", out], match="no such")
    (tmp_path / "empty.json").write_text("")
    assert_usage_error(["export", tmp_path / "empty.json", "--out", out],
                       [tmp_path / "empty.json"], match="empty")
    (tmp_path / "corrupt.json").write_text('{"type": "diffdsp.lti.FDN", "delay_s')
    assert_usage_error(["export", tmp_path / "corrupt.json", "--out", out],
                       [tmp_path / "corrupt.json"], match="not valid JSON")
    (tmp_path / "binary.json").write_bytes(bytes(range(256)) * 4)
    assert_usage_error(["export", tmp_path / "binary.json", "--out", out],
                       [tmp_path / "binary.json"])
    (tmp_path / "other.json").write_text('{"hello": 1}')
    assert_usage_error(["export", tmp_path / "other.json", "--out", out],
                       [tmp_path / "other.json"], match="not a diffdsp artefact")
    broken = json.loads(good.read_text())
    del broken["feedback_matrix"], broken["matrix_raw"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert_usage_error(["export", tmp_path / "broken.json", "--out", out],
                       [tmp_path / "broken.json"], match="FDN")
    nan = json.loads(good.read_text())
    nan["input_gains"][1] = nan["raw_parameters"]["input_gains"][1] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(nan))  # Python's json writes NaN
    assert_usage_error(["export", tmp_path / "nan.json", "--out", out], [tmp_path / "nan.json"],
                       match="non-finite")
    (tmp_path / "empty_dir").mkdir()
    assert_usage_error(["export", tmp_path / "empty_dir", "--out", out], match="no artefact")
    _alignment_filter(tmp_path / "good")  # now two artefacts in one folder
    assert_usage_error(["export", tmp_path / "good", "--out", out], [good], match="several")
    assert_usage_error(["export", good, "--out", out, "--format", "wav"], [good],
                       match="format")
    assert_usage_error(["export", good, "--out", good], [good])  # output onto the input
    assert not out.exists()  # refused runs create nothing
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert_usage_error(["export", good, "--out", blocker], [good, blocker], match="not a folder")
    assert_usage_error(["export", good, "--out", "/proc/diffdsp/out"], [good])
