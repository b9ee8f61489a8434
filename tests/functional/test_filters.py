"""Biquad design, SOS helpers, stable parameterisations, parametric-EQ sections."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch

from diffdsp._validation import InputError
from diffdsp.functional import filters
from diffdsp.functional.freq import freqz, sosfreqz
from tests.helpers import REF_TOL, assert_close, gradcheck64

SR = 48000


def rbj_reference(kind: str, fc: float, q: float, gain_db: float, sr: int) -> tuple[list, list]:
    """Audio EQ Cookbook formulas in plain float64 Python (independent of the implementation)."""
    w0 = 2 * math.pi * fc / sr
    c, s = math.cos(w0), math.sin(w0)
    al = s / (2 * q)
    A = 10 ** (gain_db / 40)
    if kind == "lowpass":
        b, a = [(1 - c) / 2, 1 - c, (1 - c) / 2], [1 + al, -2 * c, 1 - al]
    elif kind == "highpass":
        b, a = [(1 + c) / 2, -(1 + c), (1 + c) / 2], [1 + al, -2 * c, 1 - al]
    elif kind == "bandpass":
        b, a = [al, 0.0, -al], [1 + al, -2 * c, 1 - al]
    elif kind == "notch":
        b, a = [1.0, -2 * c, 1.0], [1 + al, -2 * c, 1 - al]
    elif kind == "allpass":
        b, a = [1 - al, -2 * c, 1 + al], [1 + al, -2 * c, 1 - al]
    elif kind == "peaking":
        b, a = [1 + al * A, -2 * c, 1 - al * A], [1 + al / A, -2 * c, 1 - al / A]
    elif kind == "lowshelf":
        sq = 2 * math.sqrt(A) * al
        b = [A * ((A + 1) - (A - 1) * c + sq), 2 * A * ((A - 1) - (A + 1) * c),
             A * ((A + 1) - (A - 1) * c - sq)]
        a = [(A + 1) + (A - 1) * c + sq, -2 * ((A - 1) + (A + 1) * c), (A + 1) + (A - 1) * c - sq]
    else:
        sq = 2 * math.sqrt(A) * al
        b = [A * ((A + 1) + (A - 1) * c + sq), -2 * A * ((A - 1) + (A + 1) * c),
             A * ((A + 1) + (A - 1) * c - sq)]
        a = [(A + 1) - (A - 1) * c + sq, 2 * ((A - 1) - (A + 1) * c), (A + 1) - (A - 1) * c - sq]
    return [v / a[0] for v in b], [v / a[0] for v in a]


@pytest.mark.parametrize("kind", filters.BIQUAD_KINDS)
def test_biquad_matches_cookbook(kind: str, dtype: torch.dtype) -> None:
    fcs, qs, gains = [100.0, 1000.0, 15000.0], [0.5, 0.7071, 4.0], [-9.0, 3.0, 12.0]
    b, a = filters.biquad(kind, cutoff_hz=torch.tensor(fcs, dtype=dtype),
                          q=torch.tensor(qs, dtype=dtype), gain_db=torch.tensor(gains, dtype=dtype),
                          sample_rate=SR)
    assert b.shape == a.shape == (3, 3) and b.dtype == dtype
    for i in range(3):
        rb, ra = rbj_reference(kind, fcs[i], qs[i], gains[i], SR)
        assert_close(b[i], rb, REF_TOL[dtype])
        assert_close(a[i], ra, REF_TOL[dtype])


def test_butterworth_q_gives_minus_3db_at_cutoff() -> None:
    for kind in ("lowpass", "highpass"):
        b, a = filters.biquad(kind, cutoff_hz=torch.tensor(1234.0, dtype=torch.float64),
                              q=1 / math.sqrt(2), sample_rate=SR)
        _, h = freqz(b, a, [1234.0], sample_rate=SR)
        assert_close(20 * torch.log10(h.abs()), [-10 * math.log10(2)], REF_TOL[torch.float64])


def test_peak_and_shelf_gains_at_centre() -> None:
    g = torch.tensor([-12.0, 6.0], dtype=torch.float64)
    fc = 2000.0
    db = lambda h: 20 * torch.log10(h.abs())  # noqa: E731
    b, a = filters.biquad("peaking", cutoff_hz=fc, q=2.0, gain_db=g, sample_rate=SR)
    assert_close(db(freqz(b, a, [fc], sample_rate=SR)[1])[:, 0], g, REF_TOL[torch.float64])
    for kind, far in (("lowshelf", 0.0), ("highshelf", SR / 2)):
        b, a = filters.biquad(kind, cutoff_hz=fc, q=0.7071, gain_db=g, sample_rate=SR)
        mid = db(freqz(b, a, [fc], sample_rate=SR)[1])[:, 0]
        edge = db(freqz(b, a, [far], sample_rate=SR)[1])[:, 0]
        assert_close(mid, g / 2, REF_TOL[torch.float64])  # shelf midpoint: half the gain
        assert_close(edge, g, REF_TOL[torch.float64])


def test_allpass_magnitude_exactly_one() -> None:
    b, a = filters.biquad("allpass", cutoff_hz=torch.tensor([50.0, 3000.0, 20000.0],
                                                            dtype=torch.float64),
                          q=torch.tensor([0.3, 1.0, 8.0], dtype=torch.float64), sample_rate=SR)
    _, h = freqz(b, a, 1024)
    assert_close(h.abs(), torch.ones_like(h.real), REF_TOL[torch.float64])


def test_biquad_gradcheck_design_parameters() -> None:
    fc = torch.tensor([300.0, 5000.0], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.8, 2.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([-4.0, 7.0], dtype=torch.float64, requires_grad=True)
    for kind in ("peaking", "lowshelf", "highshelf", "lowpass"):
        gradcheck64(lambda f, qq, gg, k=kind: torch.cat(filters.biquad(
            k, cutoff_hz=f, q=qq, gain_db=gg, sample_rate=SR), -1), (fc, q, g))


def test_biquad_rejects_bad_input() -> None:
    with pytest.raises(InputError, match=r"cutoff_hz must be in \(0.0, 24000.0\) for sample_rate "
                                         r"48000, got 30000.0"):
        filters.biquad("lowpass", cutoff_hz=30000.0, q=0.7, sample_rate=SR)
    with pytest.raises(InputError, match="cutoff_hz"):
        filters.biquad("lowpass", cutoff_hz=torch.tensor([100.0, 0.0]), q=0.7, sample_rate=SR)
    with pytest.raises(InputError, match=r"q must be > 0, got -1\.0"):
        filters.biquad("peaking", cutoff_hz=100.0, q=torch.tensor([-1.0]), sample_rate=SR)
    with pytest.raises(InputError, match="kind must be one of"):
        filters.biquad("butter", cutoff_hz=100.0, q=0.7, sample_rate=SR)
    with pytest.raises(InputError, match="sample_rate"):
        filters.biquad("lowpass", cutoff_hz=100.0, q=0.7, sample_rate=10)


def test_to_sos_and_sos_to_tf_match_scipy() -> None:
    sos = ss.butter(6, [0.1, 0.4], btype="band", output="sos")
    b_ref, a_ref = ss.sos2tf(sos)
    b, a = filters.sos_to_tf(torch.tensor(sos))
    assert_close(b, b_ref, REF_TOL[torch.float64])
    assert_close(a, a_ref, REF_TOL[torch.float64])
    s = filters.to_sos(torch.tensor(sos[:, :3]) * 2, torch.tensor(sos[:, 3:]) * 2)
    assert_close(s, sos, REF_TOL[torch.float64])


def test_pole_radius_and_stability() -> None:
    sos = torch.tensor([[1.0, 0, 0, 1.0, -1.8, 0.81],  # double pole at 0.9
                        [1.0, 0, 0, 1.0, 0.0, 0.25],  # complex pair radius 0.5
                        [1.0, 0, 0, 1.0, -2.5, 1.0]], dtype=torch.float64)  # real, unstable
    r = filters.sos_pole_radius(sos)
    ref = [0.9, 0.5, (2.5 + math.sqrt(2.25)) / 2]  # closed forms
    assert_close(r, ref, REF_TOL[torch.float64])
    assert filters.sos_is_stable(sos).tolist() == [True, True, False]


def test_stable_maps_are_stable_everywhere() -> None:
    raw = torch.randn(2000, 2, dtype=torch.float64) * 10
    a = filters.stable_denominator(raw)
    roots = [np.abs(np.roots(row)).max() for row in a.numpy()]
    assert max(roots) < 1.0
    assert filters.sos_is_stable(torch.cat([torch.ones(2000, 3, dtype=torch.float64), a],
                                           -1)).all()
    # float32 saturation: still strictly inside
    a32 = filters.stable_denominator(torch.tensor([[30.0, 30.0], [-30.0, -30.0], [30.0, -30.0]]))
    assert filters.sos_is_stable(torch.cat([torch.ones(3, 3), a32], -1)).all()
    b, a2 = filters.pole_zero_biquad(torch.randn(500, 5, dtype=torch.float64) * 5)
    assert filters.sos_is_stable(torch.cat([b, a2], -1)).all()
    gradcheck64(filters.stable_denominator, (torch.randn(4, 2, requires_grad=True),))
    gradcheck64(lambda r: torch.cat(filters.pole_zero_biquad(r), -1),
                (torch.randn(3, 5, requires_grad=True),))


def test_nercessian_covers_the_triangle() -> None:
    """Any stable (a1, a2) is reachable with margin 0 (the map is onto the open triangle)."""
    a1, a2 = 1.2, 0.5
    r1 = math.atanh(a1 / 2)
    r2 = math.atanh((2 * a2 - abs(a1)) / (2 - abs(a1)))
    a = filters.stable_denominator(torch.tensor([r1, r2], dtype=torch.float64), margin=0.0)
    assert_close(a, [1.0, a1, a2], REF_TOL[torch.float64])
    b, a = filters.nercessian_biquad(torch.tensor([0.1, 0.2, 0.3, r1, r2], dtype=torch.float64))
    assert_close(b, [0.1, 0.2, 0.3], REF_TOL[torch.float64])


def test_biquad_from_poles_zeros() -> None:
    b, a = filters.biquad_from_poles_zeros(0.9, 0.3, 1.0, 1.2, 2.0)
    assert_close(np.sort_complex(np.roots(a.numpy())), np.sort_complex(
        [0.9 * np.exp(0.3j), 0.9 * np.exp(-0.3j)]), REF_TOL[torch.float32])
    assert_close(b[:1], [2.0], REF_TOL[torch.float32])


def test_parametric_eq_sos_response_and_batch() -> None:
    controls = torch.tensor([[[100.0, 0.7071, 6.0], [1000.0, 2.0, -6.0], [8000.0, 0.7071, 3.0]],
                             [[50.0, 0.7071, -3.0], [3000.0, 1.0, 9.0], [12000.0, 0.7071, -9.0]]],
                            dtype=torch.float64)
    sos = filters.parametric_eq_sos(controls, sample_rate=SR)
    assert sos.shape == (2, 3, 6)
    for i in range(2):
        torch.testing.assert_close(filters.parametric_eq_sos(controls[i], sample_rate=SR),
                                   sos[i], rtol=0, atol=0)
    # product of the three band responses equals the cascade response
    _, h = sosfreqz(sos[0], 256)
    parts = [filters.biquad(k, cutoff_hz=controls[0, j, 0], q=controls[0, j, 1],
                            gain_db=controls[0, j, 2], sample_rate=SR)
             for j, k in enumerate(("lowshelf", "peaking", "highshelf"))]
    h_ref = np.ones(256, dtype=complex)
    for b, a in parts:
        h_ref *= ss.freqz(b.numpy(), a.numpy(), 256)[1]
    assert_close(h, h_ref, REF_TOL[torch.float64])
    with pytest.raises(InputError, match="bands >= 2"):
        filters.parametric_eq_sos(torch.ones(1, 3), sample_rate=SR)
