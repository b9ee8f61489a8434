"""Audio I/O: round trips, resampling against scipy, bad files, atomic and protected writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch

from diffdsp import data
from diffdsp._validation import InputError
from diffdsp.io import atomic_write_text, load_audio, resample, save_audio
from tests.helpers import REF_TOL, assert_close, sine

RESAMPLE_TOL = {torch.float32: REF_TOL[torch.float32], torch.float64: REF_TOL[torch.float64]}


@pytest.mark.parametrize(
    "fmt,subtype,tol",
    [("wav", "FLOAT", 0.0), ("wav", "PCM_16", 1 / 2**15), ("flac", "PCM_24", 1 / 2**23),
     ("ogg", "VORBIS", None)],
)
def test_round_trip(tmp_path: Path, fmt: str, subtype: str, tol: float | None) -> None:
    x = torch.stack([sine(440, 0.2, 16000), sine(880, 0.2, 16000) * 0.5])
    p = save_audio(tmp_path / f"x.{fmt}", x, 16000, subtype=subtype)
    y, sr = load_audio(p)
    assert sr == 16000 and y.shape == x.shape and y.dtype == torch.float32
    if tol is None:  # lossy: the waveform is close, not exact
        assert float((y - x).pow(2).mean() / x.pow(2).mean()) < 0.05
    else:
        assert float((y - x).abs().max()) <= tol + 1e-7


def test_builtin_recordings_load() -> None:
    for name in data.files():
        x, sr = load_audio(data.path(name))
        assert x.ndim == 2 and x.shape[-1] > sr // 2 and torch.isfinite(x).all()
    with pytest.raises(InputError, match="no built-in recording"):
        data.path("rir/nope.flac")


@pytest.mark.parametrize("orig,target", [(44100, 48000), (48000, 44100), (48000, 16000),
                                         (16000, 44100), (8000, 192000), (192000, 8000)])
def test_resample_matches_scipy(orig: int, target: int, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3001))
    ref = scipy.signal.resample_poly(x, target, orig, axis=-1)
    y = resample(torch.tensor(x, dtype=dtype), orig, target)
    assert y.shape == ref.shape and y.dtype == dtype
    assert_close(y, ref, RESAMPLE_TOL[dtype])


def test_resample_identity_batch_and_grad() -> None:
    x = torch.randn(3, 2, 500, dtype=torch.float64)
    assert resample(x, 48000, 48000) is x
    y = resample(x, 48000, 32000)
    torch.testing.assert_close(y[1, 0], resample(x[1, 0], 48000, 32000))
    xr = torch.randn(64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: resample(t, 3000, 2000), (xr,))


def test_resample_keeps_a_sine() -> None:
    x = sine(1000, 0.5, 44100, dtype=torch.float64)
    y = resample(x, 44100, 48000)
    ref = sine(1000, 0.5, 48000, dtype=torch.float64)
    # away from the edges the band-limited interpolation reproduces the sine closely
    assert float((y[2000:-2000] - ref[2000:-2000]).abs().max()) < 1e-3


def _write_bytes(p: Path, payload: bytes) -> Path:
    p.write_bytes(payload)
    return p


def test_bad_files(tmp_path: Path) -> None:
    cases = {
        "missing": tmp_path / "missing.wav",
        "empty": _write_bytes(tmp_path / "empty.wav", b""),
        "not audio": _write_bytes(tmp_path / "text.wav", b"this is not audio at all" * 10),
    }
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1)), 16000)
    cases["no samples"] = zero
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([[0.0], [np.nan], [np.inf]]), 16000, subtype="FLOAT")
    cases["NaN"] = nan
    slow = tmp_path / "slow.wav"
    sf.write(slow, np.zeros((10, 1)), 100)
    cases["sample rate"] = slow
    for expected, p in cases.items():
        with pytest.raises(InputError) as info:
            load_audio(p)
        assert str(p) in str(info.value) and expected.split()[0].lower() in str(info.value).lower()
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros((16000 * 3, 1)), 16000)
    with pytest.raises(InputError, match="longer than"):
        load_audio(long, max_seconds=2)


def test_save_refuses_inputs_and_bad_audio(tmp_path: Path) -> None:
    src = save_audio(tmp_path / "in.wav", torch.zeros(1, 10), 16000)
    before = src.read_bytes()
    with pytest.raises(InputError, match="overwrite an input"):
        save_audio(tmp_path / "." / "in.wav", torch.ones(1, 10), 16000, protect=[src])
    assert src.read_bytes() == before
    with pytest.raises(InputError, match="NaN"):
        save_audio(tmp_path / "nan.wav", torch.tensor([[float("nan")]]), 16000)
    with pytest.raises(InputError, match="sample_rate"):
        save_audio(tmp_path / "x.wav", torch.zeros(1, 10), 10)
    with pytest.raises(InputError, match="at least one sample"):
        save_audio(tmp_path / "x.wav", torch.zeros(1, 0), 16000)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.json", "{}")
    atomic_write_text(tmp_path / "a.json", '{"b": 1}')
    assert (tmp_path / "a.json").read_text() == '{"b": 1}'
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            save_audio(ro / "x.wav", torch.zeros(1, 10), 16000)
    finally:
        ro.chmod(0o700)
