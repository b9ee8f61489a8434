"""FIR design against scipy.signal.firwin; magnitude design; (time-varying) FIR filtering."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch

from diffdsp._validation import InputError
from diffdsp.functional import fir, iir
from tests.helpers import REF_TOL, assert_close, gradcheck64, noise

SR = 16000


@pytest.mark.parametrize(
    ("kind", "cutoff", "pass_zero", "window"),
    [
        ("lowpass", 2000.0, True, "hamming"),
        ("highpass", 3000.0, False, "hann"),
        ("bandpass", [1000.0, 4000.0], False, "blackman"),
        ("bandstop", [1000.0, 4000.0], True, ("kaiser", 6.0)),
        ("lowpass", 500.0, True, "boxcar"),
    ],
)
def test_firwin_matches_scipy(
    kind: str, cutoff: float | list[float], pass_zero: bool, window: str | tuple[str, float],
    dtype: torch.dtype,
) -> None:
    ref = ss.firwin(61, cutoff, pass_zero=pass_zero, window=window, fs=SR)
    c = torch.tensor(cutoff, dtype=dtype)
    h = fir.firwin(61, c, sample_rate=SR, kind=kind, window=window)
    assert h.dtype == dtype
    assert_close(h, ref, REF_TOL[dtype])


def test_firwin_batched_and_gradcheck() -> None:
    c = torch.tensor([[500.0, 2000.0], [3000.0, 6000.0]], dtype=torch.float64)
    h = fir.firwin(31, c, sample_rate=SR, kind="bandpass")
    for i in range(2):
        assert_close(h[i], ss.firwin(31, c[i].numpy(), pass_zero=False, fs=SR),
                     REF_TOL[torch.float64])
    gradcheck64(lambda cc: fir.firwin(15, cc, sample_rate=SR), (torch.tensor(
        [1000.0, 2500.0], dtype=torch.float64, requires_grad=True),), eps=1e-3)


def test_firwin_rejects_bad_input() -> None:
    with pytest.raises(InputError, match=r"cutoff_hz must be in \(0.0, 8000.0\) for sample_rate"):
        fir.firwin(11, 9000.0, sample_rate=SR)
    with pytest.raises(InputError, match="odd"):
        fir.firwin(10, 1000.0, sample_rate=SR, kind="highpass")
    with pytest.raises(InputError, match=r"\(\.\.\., 2\)"):
        fir.firwin(11, 1000.0, sample_rate=SR, kind="bandpass")


def test_fir_from_magnitude_linear_phase_and_response() -> None:
    n_bins = 257
    f = torch.linspace(0, 1, n_bins, dtype=torch.float64)
    target = 1.0 / (1.0 + (f / 0.2) ** 4)  # smooth low-pass magnitude
    h = fir.fir_from_magnitude(target, num_taps=255)
    assert_close(h, h.flip(-1), REF_TOL[torch.float64])  # symmetric: linear phase
    H = np.abs(np.fft.rfft(h.numpy(), 512))
    # the window smooths but does not move a smooth response: within 1% of the peak
    assert np.max(np.abs(H - target.numpy())) < 0.01
    flat = fir.fir_from_magnitude(torch.ones(9), num_taps=7)
    assert_close(flat, [0, 0, 0, 1.0, 0, 0, 0], REF_TOL[torch.float32])
    gradcheck64(lambda m: fir.fir_from_magnitude(m, num_taps=9),
                (torch.rand(9, dtype=torch.float64, requires_grad=True),))


def test_fir_filter_matches_lfilter(dtype: torch.dtype) -> None:
    taps = ss.firwin(41, 0.3)
    x = noise((3, 500), seed=1, dtype=torch.float64)
    ref = ss.lfilter(taps, [1.0], x.numpy())
    y = fir.fir_filter(x.to(dtype), torch.tensor(taps, dtype=dtype))
    assert_close(y, ref, REF_TOL[dtype])
    yc = fir.fir_filter(x.to(dtype), torch.tensor(taps, dtype=dtype), compensate_delay=True)
    full = np.stack([np.convolve(r, taps) for r in x.numpy()])
    assert_close(yc, full[:, 20:520], REF_TOL[dtype])


def test_time_varying_fir_constant_taps_equal_fir_filter(dtype: torch.dtype) -> None:
    taps = torch.tensor(ss.firwin(33, 0.2), dtype=dtype)
    x = noise((2, 1000), seed=2, dtype=dtype)
    y_tv = fir.time_varying_fir(x, taps.expand(2, 7, 33))
    assert_close(y_tv, fir.fir_filter(x, taps), REF_TOL[dtype])


def test_time_varying_fir_matches_framewise_reference() -> None:
    rng = np.random.default_rng(0)
    T, frames, L = 103, 5, 9
    x = rng.standard_normal(T)
    taps = rng.standard_normal((frames, L))
    hop = int(np.ceil(T / frames))
    ref = np.zeros(frames * hop + L - 1)
    xp = np.pad(x, (0, frames * hop - T))
    for f in range(frames):
        ref[f * hop : f * hop + hop + L - 1] += np.convolve(xp[f * hop : (f + 1) * hop], taps[f])
    y = fir.time_varying_fir(torch.tensor(x), torch.tensor(taps))
    assert_close(y, ref[:T], REF_TOL[torch.float64])
    yc = fir.time_varying_fir(torch.tensor(x), torch.tensor(taps), compensate_delay=True)
    assert_close(yc, ref[4 : 4 + T], REF_TOL[torch.float64])
    xg = torch.randn(2, 20, dtype=torch.float64, requires_grad=True)
    tg = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    gradcheck64(fir.time_varying_fir, (xg, tg))


def test_filtered_noise_batch_equals_items() -> None:
    x = noise((3, 400), seed=4)
    taps = noise((3, 6, 17), seed=5)
    y = fir.time_varying_fir(x, taps)
    for i in range(3):
        assert_close(fir.time_varying_fir(x[i], taps[i]), y[i], REF_TOL[torch.float32])


def test_fir_via_lfilter_long_numerator_consistent() -> None:
    taps = torch.tensor(ss.firwin(101, 0.25))
    x = noise((2, 300), seed=3, dtype=torch.float64)
    assert_close(iir.lfilter(taps, torch.ones(1, dtype=torch.float64), x),
                 fir.fir_filter(x, taps), REF_TOL[torch.float64])


def test_get_window_matches_scipy() -> None:
    for name in ("hamming", "hann", "blackman", "boxcar"):
        assert_close(fir.get_window(name, 17, dtype=torch.float64),
                     ss.get_window(name, 17, fftbins=False), REF_TOL[torch.float64])
    with pytest.raises(InputError):
        fir.get_window("triangle-ish", 5)
