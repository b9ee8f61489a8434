"""lti systems and composition: grid, gains, matrices, delays, filters, composites."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

from diffdsp._validation import InputError
from diffdsp.lti import (
    FIR,
    GEQ,
    PEQ,
    SVF,
    Biquad,
    Delay,
    Feedback,
    FrequencyGrid,
    Gain,
    Matrix,
    Parallel,
    Series,
    Shell,
)
from tests.helpers import REF_TOL, assert_close, assert_finite, gradcheck64


@pytest.fixture
def grid64() -> FrequencyGrid:
    return FrequencyGrid(1024, 48000, alias_decay_db=0.0, dtype=torch.float64)


def test_grid_buffers_follow_dtype_and_are_not_saved() -> None:
    g = FrequencyGrid(64, 16000, alias_decay_db=20.0)
    assert g.zinv.dtype == torch.complex64 and g.n_bins == 33
    assert g.state_dict() == {}
    assert math.isclose(g.gamma ** 64, 10 ** (-20 / 20), rel_tol=1e-9)
    with pytest.raises(InputError, match="even"):
        FrequencyGrid(63, 16000)
    with pytest.raises(InputError, match="alias_decay_db"):
        FrequencyGrid(64, 16000, alias_decay_db=-1.0)


def test_long_delays_keep_phase_accuracy_in_float32() -> None:
    g32 = FrequencyGrid(2**16, 48000, alias_decay_db=30.0)
    g64 = FrequencyGrid(2**16, 48000, alias_decay_db=30.0, dtype=torch.float64)
    m = torch.tensor([12345.0, 40001.0])
    err = (g32.delay(m).to(torch.complex128) - g64.delay(m.double())).abs().max()
    assert float(err) < 1e-6


def test_shell_impulse_response_of_integer_delay_is_exact() -> None:
    grid = FrequencyGrid(256, 48000, alias_decay_db=40.0)
    ir = Shell(Delay(grid, [3.0, 100.0])).impulse_response()  # (2, 2, 256), diagonal
    ref = torch.zeros(2, 2, 256)
    ref[0, 0, 3] = 1.0
    ref[1, 1, 100] = 1.0
    assert_close(ir, ref, REF_TOL[torch.float32])


def test_fractional_delay_has_gradient_and_positive_length(grid64: FrequencyGrid) -> None:
    d = Delay(grid64, [10.3], learnable=True, mode="fractional")
    d.raw.data.fill_(-50.0)  # very negative raw: still a positive length
    assert float(d.samples.detach()[0]) > 0.0
    d2 = Delay(grid64, [10.3], learnable=True)
    loss = (Shell(d2).impulse_response()[0, 0, :20] * torch.arange(20.0).double()).sum()
    loss.backward()
    assert d2.raw.grad is not None and float(d2.raw.grad.abs()) > 0.0


def test_integer_delay_rounds_with_straight_through_gradient(grid64: FrequencyGrid) -> None:
    d = Delay(grid64, [10.3], learnable=True, mode="integer")
    assert float(d.samples.detach()[0]) == 10.0
    ir = Shell(d).impulse_response()[0, 0]
    assert int(torch.argmax(ir.abs())) == 10
    (d.diagonal_response()[1:10].real.sum()).backward()
    assert float(d.raw.grad.abs()) > 0.0  # never the zero gradient of .round()


@pytest.mark.parametrize("kind", ["orthogonal", "householder", "hadamard", "circulant"])
def test_matrix_parameterisations_are_orthogonal(kind: str, grid64: FrequencyGrid) -> None:
    m = Matrix(grid64, 8, kind=kind, seed=2)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 3.0)
    q = m.static_matrix()
    assert m.is_orthogonal
    assert_close(q @ q.T, torch.eye(8, dtype=torch.float64), REF_TOL[torch.float64])


def test_circulant_matrix_is_circulant(grid64: FrequencyGrid) -> None:
    q = Matrix(grid64, 6, kind="circulant", seed=1).static_matrix()
    for i in range(6):
        assert_close(torch.roll(q[0], i), q[i], REF_TOL[torch.float64])


def test_matrix_errors(grid64: FrequencyGrid) -> None:
    with pytest.raises(InputError, match="power of 2"):
        Matrix(grid64, 6, kind="hadamard")
    with pytest.raises(InputError, match="kind"):
        Matrix(grid64, 4, kind="unitary")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_peq_matches_scipy_sosfreqz(dtype: torch.dtype) -> None:
    grid = FrequencyGrid(2048, 44100, alias_decay_db=0.0, dtype=dtype)
    eq = PEQ(grid, 2, cutoff_hz=[80.0, 500.0, 3000.0, 9000.0], q=[0.7071, 2.0, 0.5, 0.7071],
             gain_db=torch.tensor([[-6.0, 3.0, -2.0, 4.0], [1.0, -9.0, 6.0, -3.0]]))
    h = eq.diagonal_response()
    sos = eq.sos().detach().double().numpy()
    for ch in range(2):
        w = grid.omega.double().numpy()
        _, ref = scipy.signal.sosfreqz(sos[ch], worN=w)
        scale = np.abs(ref).max()
        assert_close(h[:, ch] / scale, torch.from_numpy(ref) / scale,
                     REF_TOL[dtype] if dtype == torch.float64 else REF_TOL[torch.float32])


def test_cut_only_peq_never_exceeds_0_db() -> None:
    grid = FrequencyGrid(4096, 48000, alias_decay_db=0.0, dtype=torch.float64)
    eq = PEQ(grid, 3, cutoff_hz=[100.0, 1000.0, 4000.0, 12000.0], q=[0.7071, 3.0, 8.0, 0.7071],
             gain_db=-3.0, max_gain_db=0.0)
    with torch.no_grad():
        eq.raw_gain.copy_(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)) * 5)
    assert float(eq.gain_db.max()) <= 0.0
    assert float(eq.diagonal_response().abs().max()) <= 1.0 + 1e-12


def test_geq_command_gains_hit_targets() -> None:
    grid = FrequencyGrid(2**12, 48000, dtype=torch.float64)
    geq = GEQ(grid, 1)
    target = torch.tensor([-1.0, -2.0, -4.0, -3.0, -6.0, -8.0, -10.0, -12.0, -15.0, -20.0],
                          dtype=torch.float64)[: len(geq.center_hz)]
    err = geq.response_at_centers_db(geq.command_gains(target)) - target
    assert float(err.abs().max()) < 0.5


def test_biquad_and_svf_lowpass_agree_at_dc_and_cutoff(grid64: FrequencyGrid) -> None:
    bq = Biquad(grid64, "lowpass", 1, cutoff_hz=2000.0, q=1 / math.sqrt(2))
    sv = SVF(grid64, 1, cutoff_hz=2000.0, resonance=1 / math.sqrt(2), mix=(1.0, 0.0, 0.0))
    f = grid64.freqs_hz
    k = int(torch.argmin((f - 2000.0).abs()))
    for sys_ in (bq, sv):
        h = sys_.diagonal_response()[:, 0].abs()
        assert abs(float(h[0]) - 1.0) < 1e-9
        assert abs(20 * math.log10(float(h[k])) + 3.0) < 0.1


def test_fir_mimo_and_diagonal(grid64: FrequencyGrid) -> None:
    c = torch.randn(2, 3, 5, dtype=torch.float64)
    h = FIR(grid64, c).response()
    assert h.shape == (grid64.n_bins, 2, 3)
    ref = torch.fft.rfft(c, n=grid64.nfft).permute(2, 0, 1)
    assert_close(h, ref, REF_TOL[torch.float64])


def test_shell_filtering_equals_convolution() -> None:
    grid = FrequencyGrid(256, 48000, alias_decay_db=20.0, dtype=torch.float64)
    taps = torch.tensor([[0.5, -0.25, 0.125]], dtype=torch.float64)
    x = torch.randn(3, 1, 100, dtype=torch.float64)
    y = Shell(FIR(grid, taps)).forward(x)
    ref = torch.from_numpy(scipy.signal.lfilter(taps[0].numpy(), [1.0], x.numpy(), axis=-1))
    assert_close(y, ref, REF_TOL[torch.float64])


def test_series_parallel_products_and_sums(grid64: FrequencyGrid) -> None:
    a = FIR(grid64, torch.randn(2, 3, 4, dtype=torch.float64))
    b = Gain(grid64, torch.randn(3, 2, dtype=torch.float64))
    d = Delay(grid64, [2.0, 5.0])
    s = Series(a, d, b)  # 3 -> 2 -> 2 -> 3
    ref = b.response() @ (d.response() @ a.response())
    assert_close(s.response(), ref, REF_TOL[torch.float64])
    p = Parallel(Series(d, Gain(grid64, [0.5, 2.0])), d)
    assert p.is_diagonal
    assert_close(p.response(), d.response() * torch.tensor([1.5, 3.0], dtype=torch.float64)
                 .to(torch.complex128), REF_TOL[torch.float64])


def test_composites_check_their_parts() -> None:
    g1 = FrequencyGrid(64, 48000)
    g2 = FrequencyGrid(128, 48000)
    with pytest.raises(InputError, match="share one FrequencyGrid"):
        Series(Gain(g1, [1.0]), Gain(g2, [1.0]))
    with pytest.raises(InputError, match="outputs"):
        Series(Gain(g1, [[1.0, 2.0]]), Gain(g1, [[1.0, 2.0]]))
    with pytest.raises(InputError, match="Parallel"):
        Parallel(Gain(g1, [1.0]), Gain(g1, [1.0, 2.0]))
    with pytest.raises(InputError, match="square"):
        Feedback(Gain(g1, [[1.0, 2.0]]), Gain(g1, [1.0]))


@pytest.mark.parametrize("diag_forward", [True, False])
def test_feedback_equals_direct_matrix_inverse(diag_forward: bool) -> None:
    grid = FrequencyGrid(128, 48000, alias_decay_db=10.0, dtype=torch.float64)
    n = 3
    fwd = Series(Delay(grid, [3.0, 5.0, 7.0]), Biquad(grid, "lowpass", n, cutoff_hz=5000.0))
    if not diag_forward:
        fwd = Series(fwd, FIR(grid, 0.3 * torch.randn(n, n, 2, dtype=torch.float64)))
    fb = Matrix(grid, n, kind="orthogonal", seed=4)
    loop = Feedback(fwd, fb)
    g = fwd.response()
    f = fb.response()
    ref = torch.linalg.inv(torch.eye(n, dtype=g.dtype) - g @ f) @ g
    assert_close(loop.response(), ref, REF_TOL[torch.float64])
    b = torch.randn(n, dtype=torch.float64)
    c = torch.randn(n, dtype=torch.float64)
    assert_close(loop.siso(b, c), torch.einsum("i,mij,j->m", c.to(g.dtype), ref, b.to(g.dtype)),
                 REF_TOL[torch.float64])


def test_gradcheck_through_the_feedback_loop() -> None:
    grid = FrequencyGrid(16, 48000, alias_decay_db=10.0, dtype=torch.float64)
    loop = Feedback(Series(Delay(grid, [2.0, 3.0]), Gain(grid, [0.9, 0.8])),
                    Matrix(grid, 2, kind="orthogonal"))
    names = ["forward_path.parts.1.gains", "feedback_path.raw"]
    params = [dict(loop.named_parameters())[n].detach().clone().requires_grad_() for n in names]

    def fn(gains: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(loop, {names[0]: gains, names[1]: raw}, ())
        return torch.view_as_real(out)

    gradcheck64(fn, params, gradgrad=True)


def test_all_module_gradients_are_finite() -> None:
    grid = FrequencyGrid(64, 16000, alias_decay_db=20.0)
    systems = [Delay(grid, [3.5, 4.5], learnable=True), PEQ(grid, 2, cutoff_hz=[100.0, 7000.0]),
               GEQ(grid, 2), SVF(grid, 2), Biquad(grid, "peaking", 2, cutoff_hz=1000.0),
               FIR(grid, torch.randn(2, 4)), Gain(grid, [1.0, 2.0])]
    for s in systems:
        out = Shell(s).impulse_response()
        out.pow(2).sum().backward()
        for p in s.parameters():
            assert p.grad is not None
            assert_finite(p.grad, type(s).__name__)
