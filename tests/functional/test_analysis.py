"""Analysis: STFT/mel, A-weighting, LUFS vs pyloudnorm, RMS, centroid, YIN, EDC/T60 vs closed
forms and an independent numpy/scipy reference, DRR, clarity, echo density, mixing time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch

from diffdsp._validation import InputError
from diffdsp.functional.analysis import (
    a_weighting_db,
    band_center_frequencies_hz,
    clarity_db,
    drr_db,
    echo_density_profile,
    edc_db,
    f0_yin,
    get_window,
    loudness_lufs,
    mel_filterbank,
    mel_spectrogram,
    mixing_time_s,
    octave_filterbank,
    rms_db,
    schroeder_edc,
    short_term_loudness_lufs,
    spectral_centroid_hz,
    stft,
    stft_magnitude,
    t60_per_band,
)
from tests.helpers import REF_TOL, assert_close, assert_finite, degenerate_signals, noise, sine

pyloudnorm = pytest.importorskip("pyloudnorm")


# ---------------------------------------------------------------- STFT, mel, A-weighting


@pytest.mark.parametrize("n_fft,hop,win", [(512, 128, 512), (512, 50, 240), (1024, 120, 600)])
def test_stft_magnitude_equals_torch_stft(dtype: torch.dtype, n_fft: int, hop: int, win: int
                                          ) -> None:
    x = noise((2, 3000), seed=1, dtype=dtype)
    ref = torch.stft(x, n_fft, hop, win, torch.hann_window(win, dtype=dtype),
                     return_complex=True).abs().transpose(-1, -2)
    ours = stft(x, n_fft=n_fft, hop_length=hop, win_length=win).abs()
    tol = REF_TOL[dtype]
    assert_close(ours, ref, type(tol)(rtol=tol.rtol, atol=tol.atol * 10))
    if win == n_fft:  # identical framing: equal complex values too
        ref_c = torch.stft(x, n_fft, hop, win, torch.hann_window(win, dtype=dtype),
                           return_complex=True).transpose(-1, -2)
        assert_close(torch.view_as_real(stft(x, n_fft=n_fft, hop_length=hop)),
                     torch.view_as_real(ref_c), type(tol)(tol.rtol, tol.atol * 10))


def test_stft_magnitude_gradients_finite_on_silence() -> None:
    x = torch.zeros(1, 1000, requires_grad=True)
    stft_magnitude(x, n_fft=256, hop_length=64).sum().backward()
    assert_finite(x.grad)
    with pytest.raises(InputError, match="n_fft // 2"):
        stft(torch.zeros(1, 100), n_fft=256, hop_length=64)


def test_windows_and_mel() -> None:
    torch.testing.assert_close(get_window("hann_window", 8), torch.hann_window(8))
    fb = mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40, dtype=torch.float64)
    assert fb.shape == (40, 257) and float(fb.min()) >= 0.0
    # Slaney area normalisation: each triangle has area ~ 2 / (band width in Hz) * width / 2
    peaks = fb.argmax(-1)
    assert bool((peaks[1:] >= peaks[:-1]).all())
    m = mel_spectrogram(noise((1, 4000), seed=2), sample_rate=16000, n_fft=512, hop_length=128,
                        n_mels=40)
    assert m.shape == (1, 32, 40)


def test_a_weighting_table() -> None:
    # IEC 61672-1 Table 3: nominal 31.5 Hz ... 16 kHz are the exact base-10 frequencies
    # 1000 * 10^(k/10) (31.62 Hz ... 15849 Hz); values rounded to 0.1 dB
    table = {-15: -39.4, -12: -26.2, -9: -16.1, -6: -8.6, -3: -3.2, 0: 0.0, 3: 1.2,
             6: 1.0, 9: -1.1, 12: -6.6}
    f = torch.tensor([1000 * 10 ** (k / 10) for k in table], dtype=torch.float64)
    got = a_weighting_db(f)
    want = torch.tensor(list(table.values()), dtype=torch.float64)
    assert float((got - want).abs().max()) < 0.11  # table values are rounded to 0.1 dB
    assert_finite(a_weighting_db(torch.tensor([0.0])))


# ---------------------------------------------------------------- loudness, level, centroid


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_lufs_equals_pyloudnorm(sr: int) -> None:
    n = int(3.7 * sr)
    env = torch.linspace(0.02, 0.6, n, dtype=torch.float64)
    x = noise((2, n), seed=3, dtype=torch.float64) * env
    ours = loudness_lufs(x, sample_rate=sr)
    for i in range(2):
        ref = pyloudnorm.Meter(sr).integrated_loudness(x[i].numpy())
        assert abs(float(ours[i]) - ref) < 0.1  # the bar; measured ~1e-5 LU
        assert abs(float(ours[i]) - ref) < 1e-3
    stereo = loudness_lufs(x, sample_rate=sr, multichannel=True)
    ref = pyloudnorm.Meter(sr).integrated_loudness(x.T.numpy())
    assert abs(float(stereo) - ref) < 1e-3
    # gating: a quiet half below the relative gate does not pull the value down
    quiet = torch.cat([x[0, : n // 2], x[0, n // 2 :] * 1e-3])
    ref_q = pyloudnorm.Meter(sr).integrated_loudness(quiet.numpy())
    assert abs(float(loudness_lufs(quiet, sample_rate=sr)) - ref_q) < 1e-3


def test_lufs_float32_real_music_and_silence() -> None:
    from diffdsp import data
    from diffdsp.io import load_audio

    audio, sr = load_audio(data.path("speech_music/music_guitar_em9_chord_sonicpi.flac"))
    ref = pyloudnorm.Meter(sr).integrated_loudness(audio.T.double().numpy())
    got = float(loudness_lufs(audio.float(), sample_rate=sr, multichannel=audio.shape[0] > 1))
    assert abs(got - ref) < 0.1
    silent = loudness_lufs(torch.zeros(16000), sample_rate=16000)
    assert math.isfinite(float(silent)) and float(silent) < -140
    x = noise((16000,), seed=4).requires_grad_(True)
    loudness_lufs(x, sample_rate=16000).backward()
    assert_finite(x.grad)
    st = short_term_loudness_lufs(x.detach(), sample_rate=16000, window_s=0.4, hop_s=0.1)
    assert st.shape == (7,)


def test_rms_and_centroid() -> None:
    assert abs(float(rms_db(sine(100, 1.0, 8000, amp=1.0))) - (-3.0103)) < 1e-3
    assert rms_db(noise((2, 1000)), frame_length=100, hop_length=50).shape == (2, 19)
    assert float(rms_db(torch.zeros(10))) == pytest.approx(-140.0)
    c = spectral_centroid_hz(sine(2000, 1.0, 16000)[None], sample_rate=16000, n_fft=1024)
    assert abs(float(c[0, 3:-3].mean()) - 2000) < 20
    silent = torch.zeros(1, 4000, requires_grad=True)
    zero = spectral_centroid_hz(silent, sample_rate=16000)
    zero.sum().backward()
    assert float(zero.detach().abs().max()) == 0.0
    assert_finite(silent.grad)


# ---------------------------------------------------------------- pitch


@pytest.mark.parametrize("f0", [82.41, 220.0, 440.0, 1046.5])
def test_yin_sines_and_harmonic_tones(f0: float) -> None:
    sr = 16000
    t = torch.arange(sr // 2, dtype=torch.float64) / sr
    tone = sum(torch.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 6) if k * f0 < sr / 2)
    est, conf = f0_yin(torch.as_tensor(tone), sample_rate=sr, fmin_hz=50.0, fmax_hz=1500.0)
    mid = est[10:-10]
    cents = 1200 * torch.log2(mid / f0)
    assert float(cents.abs().max()) < 5.0
    assert float(conf[10:-10].min()) > 0.9


def test_yin_noise_unvoiced_and_real_notes() -> None:
    _, conf = f0_yin(noise((16000,), seed=5), sample_rate=16000)
    assert float(conf.median()) < 0.6
    f, c = f0_yin(torch.zeros(4000), sample_rate=16000)
    assert_finite(f)
    assert_finite(c)
    from diffdsp import data
    from diffdsp.io import load_audio

    for rel, midi in data.NOTE_MIDI.items():
        audio, sr = load_audio(data.path(rel))
        mono = audio.mean(0)[: sr]  # first second
        est, conf = f0_yin(mono, sample_rate=sr, fmin_hz=60.0, fmax_hz=1200.0)
        voiced = est[conf > 0.8]
        assert voiced.numel() > 10, rel
        ref = 440.0 * 2 ** ((midi - 69) / 12)
        err = 1200 * torch.log2(voiced.median() / ref)
        assert abs(float(err)) < 50, f"{rel}: {float(err):.1f} cents"


# ---------------------------------------------------------------- EDC, T60


def _exp_rir(t60_s: float, sr: int, seconds: float, seed: int | None = None) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    env = np.exp(-3 * np.log(10) * t / t60_s)
    if seed is None:
        return env
    return np.random.default_rng(seed).standard_normal(t.size) * env


def test_edc_monotone_and_normalised() -> None:
    from diffdsp import data
    from diffdsp.io import load_audio

    rir, sr = load_audio(data.path("rir/aalto_arni_35_3541_4_2.flac"))
    for bands in ("broadband", "octave", "third_octave"):
        e = edc_db(rir[:1], sample_rate=sr, bands=bands)
        assert float(e[..., 0].abs().max()) < 1e-4
        assert bool((e[..., 1:] <= e[..., :-1] + 1e-5).all())
        assert_finite(e)
    e = schroeder_edc(torch.tensor([[0.0, 0.0, 0.0]]))
    assert float(e.abs().max()) == 0.0


@pytest.mark.parametrize("t60_s", [0.25, 0.7, 1.6])
def test_t60_closed_form(t60_s: float) -> None:
    sr = 16000
    h = torch.tensor(_exp_rir(t60_s, sr, 3.0))
    for method in ("t30", "t20", "edt"):
        v = float(t60_per_band(h, sample_rate=sr, bands="broadband", method=method))
        assert abs(v - t60_s) / t60_s < 0.02, method
    # exponentially decaying noise (a diffuse tail) and a -70 dB noise floor
    hn = torch.tensor(_exp_rir(t60_s, sr, 3.0, seed=1)
                      + 10 ** (-70 / 20) * np.random.default_rng(2).standard_normal(3 * sr))
    v = float(t60_per_band(hn, sample_rate=sr, bands="broadband"))
    assert abs(v - t60_s) / t60_s < 0.05  # a random tail: the fit itself fluctuates ~1-3 %


def test_t60_noise_floor_handling() -> None:
    """A -50 dB floor bends the raw Schroeder curve; truncation + compensation keeps T30 close."""
    sr, t60_s = 16000, 0.8
    n = 3 * sr
    floor = 10 ** (-50 / 20) * np.random.default_rng(4).standard_normal(n)
    h = _exp_rir(t60_s, sr, 3.0, seed=3) + floor
    ht = torch.tensor(h)
    handled = float(t60_per_band(ht, sample_rate=sr, bands="broadband", noise_handling="truncate"))
    raw = float(t60_per_band(ht, sample_rate=sr, bands="broadband", noise_handling="none"))
    assert abs(handled - t60_s) / t60_s < 0.05
    assert abs(raw - t60_s) > abs(handled - t60_s)


def _numpy_t60(h: np.ndarray, sr: int, centers: list[float]) -> np.ndarray:
    """Independent reference: scipy Butterworth (order 3) forward-backward band filters, Schroeder
    integral, np.polyfit over -5..-35 dB."""
    out = []
    for fc in centers:
        hi = min(fc * 2**0.5, 0.999 * sr / 2)
        sos = ss.butter(3, [fc / 2**0.5, hi], btype="bandpass", fs=sr, output="sos")
        y = ss.sosfiltfilt(sos, h)
        e = np.cumsum(y[::-1] ** 2)[::-1]
        edb = 10 * np.log10(np.maximum(e / e[0], 1e-300))
        i0, i1 = int(np.argmax(edb <= -5)), int(np.argmax(edb <= -35))
        slope = np.polyfit(np.arange(i0, i1) / sr, edb[i0:i1], 1)[0]
        out.append(-60 / slope)
    return np.array(out)


def test_t60_per_octave_band_vs_numpy_reference() -> None:
    sr = 16000
    centers = band_center_frequencies_hz("octave", sample_rate=sr)
    t60s = np.linspace(1.2, 0.3, len(centers))
    n = int(2.5 * sr)
    t = np.arange(n) / sr
    rng = np.random.default_rng(5)
    h = np.zeros(n)
    for fc, t60 in zip(centers, t60s, strict=True):
        hi = min(fc * 2**0.5, 0.999 * sr / 2)
        sos = ss.butter(4, [fc / 2**0.5, hi], btype="bandpass", fs=sr, output="sos")
        h += ss.sosfilt(sos, rng.standard_normal(n)) * np.exp(-3 * np.log(10) * t / t60)
    ours = t60_per_band(torch.tensor(h), sample_rate=sr, bands="octave").numpy()
    ref = _numpy_t60(h, sr, centers)
    rel = np.abs(ours - ref) / ref
    assert rel.max() < 0.05, rel
    # bands inside the spectrum are near the synthesis values (the synthesis bands overlap)
    assert (np.abs(ours[1:-1] - t60s[1:-1]) / t60s[1:-1]).max() < 0.1
    third = t60_per_band(torch.tensor(h, dtype=torch.float32), sample_rate=sr,
                         bands="third_octave")
    assert third.shape == (len(band_center_frequencies_hz("third_octave", sample_rate=sr)),)


def test_t60_undefined_is_nan_and_batch() -> None:
    sr = 16000
    short = torch.tensor(_exp_rir(2.0, sr, 0.5))  # decays only 15 dB: T30 undefined
    assert math.isnan(float(t60_per_band(short, sample_rate=sr, bands="broadband")))
    batch = torch.stack([torch.tensor(_exp_rir(0.3, sr, 1.5)),
                         torch.tensor(_exp_rir(0.6, sr, 1.5))])
    v = t60_per_band(batch, sample_rate=sr, bands="broadband")
    torch.testing.assert_close(v, torch.tensor([0.3, 0.6], dtype=torch.float64), rtol=0.01, atol=0)
    with pytest.raises(InputError, match="method"):
        t60_per_band(batch, sample_rate=sr, method="t40")


def test_filterbank_shape_and_passband() -> None:
    sr = 16000
    y = octave_filterbank(sine(1000, 1.0, sr, dtype=torch.float64)[None], sample_rate=sr)
    centers = band_center_frequencies_hz("octave", sample_rate=sr)
    energy = y[0, :, 2000:-2000].square().mean(-1)
    k = centers.index(1000.0)
    assert int(energy.argmax()) == k
    assert abs(float(energy[k]) - 0.125) / 0.125 < 0.01  # 0.5^2 / 2, unit gain at the centre


# ---------------------------------------------------------------- DRR, clarity, echo density


def test_drr_and_clarity_closed_form() -> None:
    sr = 16000
    h = torch.zeros(sr)
    h[100] = 1.0
    h[2000] = 0.5
    h[3000] = 0.5
    assert abs(float(drr_db(h, sample_rate=sr)) - 10 * math.log10(1 / 0.5)) < 1e-5
    # C50: 50 ms = 800 samples after the peak: early {1}, late {0.25, 0.25}
    assert abs(float(clarity_db(h, sample_rate=sr, time_ms=50)) - 10 * math.log10(2)) < 1e-5
    # C80 on an exponential decay: 10 log10(1 / (exp(a T) - 1)) with energy rate a
    t60 = 0.5
    he = torch.tensor(_exp_rir(t60, sr, 2.0))
    a = 6 * math.log(10) / t60
    want = 10 * math.log10((1 - math.exp(-a * 0.08)) / math.exp(-a * 0.08))
    assert abs(float(clarity_db(he, sample_rate=sr, time_ms=80)) - want) < 0.05
    for sig in degenerate_signals(4000).values():
        assert_finite(drr_db(sig, sample_rate=sr))
        assert_finite(clarity_db(sig, sample_rate=sr))


def test_echo_density_and_mixing_time() -> None:
    sr = 16000
    eta = echo_density_profile(noise((sr,), seed=6), sample_rate=sr)
    assert abs(float(eta[40:-40].mean()) - 1.0) < 0.05
    sparse = torch.zeros(sr)
    sparse[::400] = 1.0
    assert float(echo_density_profile(sparse, sample_rate=sr)[40:-40].mean()) < 0.2
    h = torch.zeros(sr)
    h[0] = 1.0
    h[1600:] = noise((sr - 1600,), seed=7) * 0.05  # diffuse from 100 ms
    tm = float(mixing_time_s(h, sample_rate=sr, threshold=0.9))
    assert 0.09 < tm < 0.12
    assert math.isnan(float(mixing_time_s(sparse, sample_rate=sr)))


def test_batch_of_one_equals_item() -> None:
    sr = 16000
    x = noise((3, sr), seed=8, dtype=torch.float64) * torch.exp(
        -torch.arange(sr, dtype=torch.float64) / 3000)
    for fn in (
        lambda u: loudness_lufs(u, sample_rate=sr),
        lambda u: edc_db(u, sample_rate=sr, bands="octave"),
        lambda u: spectral_centroid_hz(u, sample_rate=sr),
        lambda u: f0_yin(u, sample_rate=sr)[0],
        lambda u: drr_db(u, sample_rate=sr),
    ):
        torch.testing.assert_close(fn(x)[1:2], fn(x[1:2]))


@pytest.mark.parametrize("name", list(degenerate_signals()))
def test_analysis_degenerate_finite(name: str) -> None:
    sr = 16000
    sig = degenerate_signals(8000)[name]
    assert_finite(loudness_lufs(sig, sample_rate=sr))
    assert_finite(rms_db(sig))
    assert_finite(spectral_centroid_hz(sig, sample_rate=sr))
    assert_finite(edc_db(sig, sample_rate=sr, bands="octave"))
    f, c = f0_yin(sig, sample_rate=sr)
    assert_finite(f)
    assert_finite(c)
    assert_finite(echo_density_profile(sig, sample_rate=sr))
    t60 = t60_per_band(sig, sample_rate=sr, bands="octave")  # NaN (undefined) or finite, no inf
    assert not bool(torch.isinf(t60).any())
