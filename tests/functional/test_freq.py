"""freqz/sosfreqz against scipy; frequency-sampling filtering against the exact recursion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch

from diffdsp._validation import InputError
from diffdsp.functional import freq, iir
from diffdsp.functional.filters import biquad, to_sos
from tests.helpers import REF_TOL, Tol, assert_close, assert_finite, gradcheck64, noise


@pytest.mark.parametrize("whole", [False, True])
def test_freqz_grid_matches_scipy(dtype: torch.dtype, whole: bool) -> None:
    b, a = ss.butter(4, 0.3)
    w, h = freq.freqz(torch.tensor(b, dtype=dtype), torch.tensor(a, dtype=dtype), 300,
                      whole=whole)
    w_ref, h_ref = ss.freqz(b, a, 300, whole=whole)
    assert_close(w, w_ref, REF_TOL[torch.float64])
    assert h.dtype == (torch.complex64 if dtype == torch.float32 else torch.complex128)
    assert_close(h, h_ref, REF_TOL[dtype])


def test_freqz_arbitrary_hz_and_long_fir() -> None:
    taps = ss.firwin(101, 0.3)
    f_hz = [0.0, 123.4, 5000.0, 11000.0]
    w, h = freq.freqz(torch.tensor(taps), 1.0, f_hz, sample_rate=24000)
    _, h_ref = ss.freqz(taps, 1, f_hz, fs=24000)
    assert_close(w, f_hz, REF_TOL[torch.float64])
    assert_close(h, h_ref, REF_TOL[torch.float64])


def test_sosfreqz_matches_scipy_batched(dtype: torch.dtype) -> None:
    sos = np.stack([ss.butter(5, [0.1, 0.2], btype="band", output="sos"),
                    ss.cheby1(5, 1.0, [0.3, 0.5], btype="band", output="sos")])
    w, h = freq.sosfreqz(torch.tensor(sos, dtype=dtype), 512, sample_rate=48000)
    for i in range(2):
        w_ref, h_ref = ss.sosfreqz(sos[i], 512, fs=48000)
        assert_close(h[i], h_ref, REF_TOL[dtype])
    assert_close(w, w_ref, REF_TOL[torch.float64])


def test_radius_evaluates_off_the_circle() -> None:
    b = torch.tensor([1.0, -0.5], dtype=torch.float64)
    _, h = freq.freqz(b, 1.0, [0.7], radius=1.25)
    z = 1.25 * np.exp(0.7j)
    assert_close(h, [1.0 - 0.5 / z], REF_TOL[torch.float64])


def test_fft_filter_equals_exact_recursion(dtype: torch.dtype) -> None:
    """Zero padding from the pole radius makes the FFT result a linear convolution."""
    sos = ss.butter(4, [0.01, 0.05], btype="band", output="sos")  # long ringing tail
    x = noise((2, 3000), seed=1, dtype=torch.float64)
    ref = ss.sosfilt(sos, x.numpy())
    y = freq.fft_filter(x.to(dtype), torch.tensor(sos, dtype=dtype))
    assert_close(y, ref, REF_TOL[dtype])


def test_fft_filter_transfer_function_matches_lfilter(dtype: torch.dtype) -> None:
    b, a = ss.butter(2, [0.05, 0.3], btype="band")  # order 4 (direct form stays accurate)
    x = noise((2, 3000), seed=1, dtype=torch.float64)
    ref = ss.lfilter(b, a, x.numpy())
    ba = (torch.tensor(b, dtype=dtype), torch.tensor(a, dtype=dtype))
    assert_close(freq.fft_filter(x.to(dtype), ba), ref, REF_TOL[dtype])


def test_fft_filter_circular_aliasing_without_padding_is_visible() -> None:
    """Control: an FFT the length of the signal wraps the tail around (what dasp does at 2T)."""
    sos = torch.tensor(ss.butter(4, [0.01, 0.05], btype="band", output="sos"))
    x = torch.zeros(1, 2048, dtype=torch.float64)
    x[0, -10] = 1.0  # impulse near the end: its tail wraps to the start
    ref = ss.sosfilt(sos.numpy(), x.numpy())
    y_bad = freq.fft_filter(x, sos, n_fft=2048)
    y_ok = freq.fft_filter(x, sos)
    assert float((y_bad - torch.tensor(ref)).abs().max()) > 1e-3
    assert_close(y_ok, ref, REF_TOL[torch.float64])


def test_gamma_anti_aliasing_reduces_time_aliasing() -> None:
    sos = torch.tensor(ss.butter(2, [0.01, 0.03], btype="band", output="sos"))
    x = noise((1, 4096), seed=3, dtype=torch.float64)
    ref = torch.tensor(ss.sosfilt(sos.numpy(), x.numpy()))
    err_plain = (freq.fft_filter(x, sos, n_fft=4096) - ref).abs().max()
    err_gamma = (freq.fft_filter(x, sos, n_fft=4096, alias_decay_db=60.0) - ref).abs().max()
    assert float(err_gamma) < 0.05 * float(err_plain)
    g = freq.alias_gamma(60.0, 4096)
    assert_close(torch.tensor([g**4096], dtype=torch.float64), [1e-3], REF_TOL[torch.float64])
    env = freq.decay_envelope(4, 0.5, like=x)
    assert_close(env, [1.0, 0.5, 0.25, 0.125], REF_TOL[torch.float64])


def test_fft_filter_gradcheck() -> None:
    sos = torch.tensor(ss.butter(2, 0.3, output="sos")).requires_grad_()
    x = noise((2, 24), seed=1, dtype=torch.float64).requires_grad_()
    gradcheck64(lambda xx, s: freq.fft_filter(xx, s), (x, sos))


def test_fft_filter_refuses_unstable_and_bad_input() -> None:
    sos = torch.tensor([[1.0, 0.0, 0.0, 1.0, -2.0, 1.0]])  # double pole on the unit circle
    with pytest.raises(InputError, match="pole radius"):
        freq.fft_filter(torch.zeros(10), sos)
    with pytest.raises(InputError, match="n_fft"):
        freq.fft_filter(torch.zeros(10), to_sos(*biquad("lowpass", cutoff_hz=100.0, q=0.7,
                                                        sample_rate=8000)), n_fft=5)
    with pytest.raises(InputError, match="sos must have shape"):
        freq.fft_filter(torch.zeros(10), torch.zeros(2, 5))


def test_fft_filter_degenerate_signals_finite() -> None:
    sos = to_sos(*biquad("peaking", cutoff_hz=100.0, q=4.0, gain_db=12.0, sample_rate=16000))
    sos = sos.clone().requires_grad_()
    for sig in (torch.zeros(1000), torch.full((1000,), 0.5), torch.ones(1)):
        x = sig.clone().requires_grad_()
        y = freq.fft_filter(x, sos)
        y.square().sum().backward()
        assert_finite(y)
        assert x.grad is not None and sos.grad is not None
        assert_finite(x.grad)
        assert_finite(sos.grad)


def test_rfft_freqs() -> None:
    assert_close(freq.rfft_freqs(8, sample_rate=16000), np.fft.rfftfreq(8, 1 / 16000),
                 REF_TOL[torch.float64])
    assert_close(freq.rfft_freqs(8), 2 * math.pi * np.fft.rfftfreq(8), REF_TOL[torch.float64])


def test_fft_filter_matches_sosfilt_for_eq_batch() -> None:
    from diffdsp.functional.filters import parametric_eq_sos

    controls = torch.tensor([[[60.0, 0.7, 6.0], [900.0, 3.0, -9.0], [9000.0, 0.7, 4.0]],
                             [[200.0, 0.5, -6.0], [2500.0, 1.0, 12.0], [15000.0, 1.0, -3.0]]],
                            dtype=torch.float64)
    sos = parametric_eq_sos(controls, sample_rate=44100)
    x = noise((2, 5000), seed=2, dtype=torch.float64)
    # the documented fft_filter tolerance (tail_tol = 1e-7), float64
    assert_close(freq.fft_filter(x, sos), iir.sosfilt(sos, x), Tol(rtol=1e-7, atol=1e-9))


def test_sosfreqz_gradients_numba_and_torch_paths_agree() -> None:
    """The fused response kernel's backward equals autograd through the torch evaluation."""
    sos = torch.tensor(ss.butter(3, [0.1, 0.3], btype="band", output="sos")).repeat(2, 1, 1)
    sos = (sos + 0.01 * noise(sos.shape, seed=2, dtype=torch.float64)).requires_grad_()
    g = torch.complex(noise((2, 64), seed=3, dtype=torch.float64),
                      noise((2, 64), seed=4, dtype=torch.float64))
    grads = []
    for backend in ("auto", "torch"):
        iir.set_backend(backend)
        try:
            _, h = freq.sosfreqz(sos, 64, whole=True)
            grads.append(torch.autograd.grad(h, sos, g)[0])
        finally:
            iir.set_backend("auto")
    assert_close(grads[0], grads[1], REF_TOL[torch.float64])
    gradcheck64(lambda s: torch.view_as_real(freq.sosfreqz(s, 16)[1]), (sos[:1],), gradgrad=True)


def test_response_gradient_finite_at_a_zero_on_the_circle() -> None:
    """A low-pass has a zero exactly at Nyquist: the gradient there is finite (no 0/0)."""
    sos = to_sos(*biquad("lowpass", cutoff_hz=1000.0, q=0.7, sample_rate=8000)).double()
    sos = sos[None].requires_grad_()
    _, h = freq.sosfreqz(sos, 8, whole=True)  # bin 4 is Nyquist
    assert abs(complex(h[4].detach())) < 1e-12
    h.real.sum().backward()
    assert sos.grad is not None
    assert_finite(sos.grad)
