"""``torch.export`` and TorchScript on the core modules, asserting the table in ``docs/export.md``.

For every module the test tries three ways out of Python and records one outcome each:

- ``torch.export.export`` (the program is run through ``ExportedProgram.module()``);
- TorchScript by tracing (``torch.jit.trace``, then ``torch.jit.save``/``load`` through a buffer:
  a trace that still calls back into Python cannot be saved);
- TorchScript by scripting (``torch.jit.script``).

The program is then run on *fresh* inputs (not the ones it was traced with) and compared with the
eager module. Outcomes: ``"ok"`` (same output), ``"wrong"`` (runs but differs: values were baked
in) or ``"fails"`` (raises). ``EXPECTED`` is the table of ``docs/export.md``; a change in either
direction fails the test, so the table stays true. Run this file as a script to print the table.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from diffdsp.functional import allpass, filters, iir
from tests.helpers import Tol

#: Exported program vs eager module on the same fresh inputs (float32, same operations).
EXPORT_TOL = Tol(rtol=1e-5, atol=1e-6)
T = 256  # samples: keeps the traced scans small
SR = 16000


class Biquad(nn.Module):
    """RBJ peaking biquad designed from (cutoff, gain) tensors and applied with ``iir.lfilter``."""

    def forward(self, x: Tensor, cutoff_hz: Tensor, gain_db: Tensor) -> Tensor:
        b, a = filters.biquad("peaking", cutoff_hz=cutoff_hz, q=0.7, gain_db=gain_db,
                              sample_rate=SR)
        return iir.lfilter(b, a, x)


class Sosfilt(nn.Module):
    """``iir.sosfilt`` of given sections."""

    def forward(self, sos: Tensor, x: Tensor) -> Tensor:
        return iir.sosfilt(sos, x)


class AllpassDesign(nn.Module):
    """All-pass cascade design only: (cutoff, radius) -> SOS."""

    def forward(self, cutoff_hz: Tensor, radius: Tensor) -> Tensor:
        return allpass.allpass_cascade_sos(cutoff_hz, radius, sample_rate=SR)


class AllpassFilter(nn.Module):
    """All-pass cascade design and filtering."""

    def forward(self, x: Tensor, cutoff_hz: Tensor, radius: Tensor) -> Tensor:
        return iir.sosfilt(allpass.allpass_cascade_sos(cutoff_hz, radius, sample_rate=SR), x)


class WithParams(nn.Module):
    """An effect called with a normalised parameter tensor."""

    def __init__(self, fx: nn.Module) -> None:
        super().__init__()
        self.fx = fx

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        return self.fx(x, params)


class FDNResponse(nn.Module):
    """Frequency-sampled impulse response of an FDN, scaled by an input gain tensor."""

    def __init__(self) -> None:
        super().__init__()
        from diffdsp.lti.fdn import build_fdn

        self.fdn = build_fdn(SR, n_lines=4, nfft=512, delay_range_ms=(2.0, 8.0),
                             attenuation="homogeneous", t60_s=0.05)

    def forward(self, scale: Tensor) -> Tensor:
        return self.fdn.impulse_response(method="freq") * scale


class Synth(nn.Module):
    """The ``fm`` preset patch rendered from its normalised parameters."""

    def __init__(self) -> None:
        super().__init__()
        from diffdsp.synth.presets import get_preset

        self.patch = get_preset("fm", SR)

    def forward(self, u: Tensor) -> Tensor:
        y = self.patch(u, n_samples=T)
        assert isinstance(y, Tensor)
        return y


def _noise(*shape: int, seed: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _unit(*shape: int, seed: int) -> Tensor:
    return 0.1 + 0.8 * torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _eq(method: str) -> nn.Module:
    from diffdsp.effects import ParametricEQ

    return WithParams(ParametricEQ(SR, method=method))


def _comp(smoothing: str) -> nn.Module:
    from diffdsp.effects import Compressor

    return WithParams(Compressor(SR, smoothing=smoothing))  # type: ignore[arg-type]


def _sos(seed: int) -> Tensor:
    return filters.to_sos(*filters.biquad("lowpass", cutoff_hz=1000.0 + 500 * seed, q=0.8,
                                          sample_rate=SR)).reshape(1, 6).float()


# name -> (module factory, inputs(seed), backend of the recursions: "auto" (numba on the CPU) or
# "torch" (the pure-torch paths other devices use: iir.set_backend("torch") and the oscillators'
# DIFFDSP_OSC_BACKEND=torch))
CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[int], tuple[Tensor, ...]], str]] = {
    "biquad + lfilter (numba, CPU default)": (
        Biquad, lambda s: (_noise(1, 1, T, seed=s), 500.0 + 100 * _unit(1, seed=s),
                           6.0 * _unit(1, seed=s + 9)), "auto"),
    "biquad + lfilter (torch scan)": (
        Biquad, lambda s: (_noise(1, 1, T, seed=s), 500.0 + 100 * _unit(1, seed=s),
                           6.0 * _unit(1, seed=s + 9)), "torch"),
    "sosfilt (numba, CPU default)": (
        Sosfilt, lambda s: (_sos(s), _noise(1, 1, T, seed=s)), "auto"),
    "sosfilt (torch scan)": (Sosfilt, lambda s: (_sos(s), _noise(1, 1, T, seed=s)), "torch"),
    "all-pass cascade design": (
        AllpassDesign, lambda s: (200.0 + 1000 * _unit(3, seed=s), 0.5 + 0.4 * _unit(3, seed=s)),
        "auto"),
    "all-pass cascade filter (numba)": (
        AllpassFilter, lambda s: (_noise(1, 1, T, seed=s), 200.0 + 1000 * _unit(3, seed=s),
                                  0.5 + 0.4 * _unit(3, seed=s + 1)), "auto"),
    "all-pass cascade filter (torch scan)": (
        AllpassFilter, lambda s: (_noise(1, 1, T, seed=s), 200.0 + 1000 * _unit(3, seed=s),
                                  0.5 + 0.4 * _unit(3, seed=s + 1)), "torch"),
    "ParametricEQ (exact)": (
        lambda: _eq("exact"), lambda s: (_noise(1, 1, T, seed=s), _unit(1, 18, seed=s)), "auto"),
    "ParametricEQ (freq)": (
        lambda: _eq("freq"), lambda s: (_noise(1, 1, T, seed=s), _unit(1, 18, seed=s)), "auto"),
    "FDN frequency-sampled IR": (FDNResponse, lambda s: (1.0 + _unit(1, seed=s),), "auto"),
    "Compressor (exact ballistics)": (
        lambda: _comp("exact"), lambda s: (0.5 * _noise(1, 1, T, seed=s), _unit(1, 6, seed=s)),
        "auto"),
    "Compressor (fir ballistics)": (
        lambda: _comp("fir"), lambda s: (0.5 * _noise(1, 1, T, seed=s), _unit(1, 6, seed=s)),
        "auto"),
    "synth patch fm": (Synth, lambda s: (_unit(1, 9, seed=s),), "auto"),
    "synth patch fm (torch paths)": (Synth, lambda s: (_unit(1, 9, seed=s),), "torch"),
}

#: The table of docs/export.md: (torch.export, TorchScript trace + save, TorchScript script).
EXPECTED: dict[str, tuple[str, str, str]] = {
    "biquad + lfilter (numba, CPU default)": ("fails", "fails", "fails"),
    "biquad + lfilter (torch scan)": ("ok", "fails", "fails"),
    "sosfilt (numba, CPU default)": ("fails", "fails", "fails"),
    "sosfilt (torch scan)": ("ok", "fails", "fails"),
    "all-pass cascade design": ("ok", "ok", "fails"),
    "all-pass cascade filter (numba)": ("fails", "fails", "fails"),
    "all-pass cascade filter (torch scan)": ("ok", "fails", "fails"),
    "ParametricEQ (exact)": ("fails", "fails", "fails"),
    "ParametricEQ (freq)": ("fails", "fails", "fails"),
    "FDN frequency-sampled IR": ("fails", "fails", "fails"),
    "Compressor (exact ballistics)": ("fails", "fails", "fails"),
    "Compressor (fir ballistics)": ("ok", "ok", "fails"),
    "synth patch fm": ("fails", "fails", "fails"),
    "synth patch fm (torch paths)": ("ok", "ok", "fails"),
}


def _same(out: Any, ref: Tensor) -> bool:
    if not isinstance(out, Tensor) or out.shape != ref.shape:
        return False
    return bool(torch.allclose(out, ref, rtol=EXPORT_TOL.rtol, atol=EXPORT_TOL.atol))


def _attempt(how: str, module: nn.Module, args: tuple[Tensor, ...],
             fresh: tuple[Tensor, ...]) -> str:
    ref = module(*fresh)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if how == "export":
                program: Any = torch.export.export(module, args).module()
            elif how == "trace":
                traced = torch.jit.trace(module, args, check_trace=False)
                buf = io.BytesIO()
                torch.jit.save(traced, buf)
                buf.seek(0)
                program = torch.jit.load(buf)
            else:
                program = torch.jit.script(module)
            out = program(*fresh)
    except Exception:  # any failure to export/compile/run is the outcome "fails"
        return "fails"
    return "ok" if _same(out, ref) else "wrong"


def outcome(name: str) -> tuple[str, str, str]:
    """The three outcomes of one case (the iir backend is restored afterwards)."""
    from diffdsp.functional import oscillators

    factory, inputs, backend = CASES[name]
    old = iir.get_backend()
    old_osc = oscillators._backend
    iir.set_backend(backend)
    oscillators._backend = backend  # what DIFFDSP_OSC_BACKEND sets at import time
    try:
        torch.manual_seed(0)
        module = factory().eval()
        args, fresh = inputs(1), inputs(2)
        res = tuple(_attempt(how, module, args, fresh) for how in ("export", "trace", "script"))
    finally:
        iir.set_backend(old)
        oscillators._backend = old_osc
    return res  # type: ignore[return-value]


def test_table_covers_every_case() -> None:
    assert set(EXPECTED) == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_export_outcome_matches_the_documented_table(name: str) -> None:
    assert outcome(name) == EXPECTED[name]


def test_docs_table_is_this_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text()
    for name, (exp, trace, script) in EXPECTED.items():
        row = f"| {name} | {exp} | {trace} | {script} |"
        assert row in doc, f"docs/export.md lacks the row {row!r}"


if __name__ == "__main__":  # print the table (docs/export.md)
    for case in CASES:
        print(f"| {case} | " + " | ".join(outcome(case)) + " |", flush=True)
