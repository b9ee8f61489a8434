"""FDN frequency response and losses side by side with FLAMO 0.2.20 (issue #5 speed goals).

FDN N = 8, 48 kHz, nfft = 2^18 (M = 2^17 + 1 bins), float32, lossless delays of 8-40 ms with a
learnable orthogonal matrix and input/output gains; FLAMO built as in its colourless example
(``Series(Gain, Recursion(parallelDelay, Matrix), Gain)`` in a ``Shell``) with the same delays.

Rows: forward response; forward+backward of the colourless loss (``mean (|H| - 1)^2`` on all
bins); forward+backward of an octave-band EDC loss through the FDN (ours: the reverb task's loss,
bands applied on the frequency grid; FLAMO: its ``edc_loss`` on the impulse response; and ours
with ``losses.acoustic.EDCLoss`` on the impulse response). Goals: >= 2x on the colourless
forward+backward and >= 5x on the EDC loss. ``alloc MB`` is the memory the step allocates
(torch profiler, CPU), a proxy for its footprint.

    .venv-bench/bin/python benchmarks/lti.py      # side by side (bench venv)
    .venv/bin/python benchmarks/lti.py --quick    # ours only when FLAMO is missing
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, fwd_bwd, parse_args, report, time_ms, try_import

from diffdsp.functional.fdn import coprime_delays
from diffdsp.lti import FDN, FrequencyGrid
from diffdsp.tasks.reverb import METRIC_BANDS_HZ, _band_masks

SR = 48000


def alloc_mb(fn: Any) -> float:
    """Memory allocated by one call (torch profiler, CPU, positive allocations), MB."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    total = sum(max(0, e.cpu_memory_usage) for e in prof.events() if e.cpu_memory_usage)
    return total / 2**20


def ours(nfft: int, delays: list[int], repeats: int) -> dict[str, Any]:
    grid = FrequencyGrid(nfft, SR, alias_decay_db=30.0)
    fdn = FDN(grid, [float(d) for d in delays], seed=0)
    params = [p for p in fdn.parameters() if p.requires_grad]
    from diffdsp.losses.acoustic import EDCLoss, sparsity_loss, spectral_flatness_loss

    def fwd() -> None:
        with torch.no_grad():
            fdn.transfer()

    def colourless() -> torch.Tensor:
        return spectral_flatness_loss(fdn.transfer()) + 0.1 * sparsity_loss(
            fdn.matrix.static_matrix())

    n_ir = nfft
    target = torch.randn(n_ir, generator=torch.Generator().manual_seed(0)) * torch.exp(
        -torch.arange(n_ir) / (0.3 * SR))
    bands = [c for c in METRIC_BANDS_HZ]
    masks = _band_masks(nfft, SR, bands, dtype=torch.float32)

    def edc_db_grid() -> torch.Tensor:
        spec = fdn.transfer()
        b = torch.fft.irfft(spec.unsqueeze(0) * masks, n=nfft) * grid.envelope
        e = b * b
        return 10 * torch.log10(torch.flip(torch.cumsum(torch.flip(e, [-1]), -1), [-1])
                                .clamp_min(1e-30))

    with torch.no_grad():
        tb = torch.fft.irfft(torch.fft.rfft(target, n=nfft).unsqueeze(0) * masks, n=nfft)
        edc_t = 10 * torch.log10(torch.flip(torch.cumsum(torch.flip(tb * tb, [-1]), -1), [-1])
                                 .clamp_min(1e-30))

    def edc_grid_loss() -> torch.Tensor:
        return (edc_db_grid() - edc_t).pow(2).mean()

    edc_mod = EDCLoss(SR, bands="octave")

    def edc_module_loss() -> torch.Tensor:
        h = fdn.impulse_response()
        return edc_mod(h.reshape(1, 1, -1), target.reshape(1, 1, -1))

    from diffdsp.functional.fdn import fdn_time

    imp = torch.zeros(n_ir)
    imp[0] = 1.0
    t60_sos = fdn.delays.samples.new_zeros(len(delays), 1, 6)
    t60_sos[:, 0, 0] = torch.pow(10.0, -3.0 * fdn.delays.samples / (SR * 1.0))
    t60_sos[:, 0, 3] = 1.0

    def time_loss() -> torch.Tensor:
        y = fdn_time(imp, delay_samples=delays, feedback_matrix=fdn.matrix.static_matrix(),
                     input_gains=fdn.input_gains, output_gains=fdn.output_gains,
                     attenuation_sos=t60_sos)
        return (y * target).sum()

    return {
        "time": (time_ms(fwd_bwd(time_loss, params), repeats=repeats),
                 alloc_mb(fwd_bwd(time_loss, params))),
        "fwd": (time_ms(fwd, repeats=repeats), alloc_mb(fwd)),
        "colourless": (time_ms(fwd_bwd(colourless, params), repeats=repeats),
                       alloc_mb(fwd_bwd(colourless, params))),
        "edc_grid": (time_ms(fwd_bwd(edc_grid_loss, params), repeats=repeats),
                     alloc_mb(fwd_bwd(edc_grid_loss, params))),
        "edc_module": (time_ms(fwd_bwd(edc_module_loss, params), repeats=repeats),
                       alloc_mb(fwd_bwd(edc_module_loss, params))),
    }


def _response_errors_db(mag: Any, x: torch.Tensor, nfft: int,
                        delays: list[int]) -> tuple[float, float]:
    """Largest |error| in dB of our float32 |H| and of FLAMO's (float32), both with FLAMO's own
    parameters, against our float64 response: the accuracy at which the two are timed."""
    from diffdsp.functional.fdn import fdn_transfer

    core = mag.get_core()
    fb = core.feedback_loop.feedback

    def ours_mag(dtype: torch.dtype) -> torch.Tensor:
        grid = FrequencyGrid(nfft, SR, alias_decay_db=30.0, dtype=dtype)
        return fdn_transfer(grid.delay(torch.tensor([float(d) for d in delays], dtype=dtype)),
                            feedback_matrix=fb.map(fb.param).to(dtype),
                            input_gains=core.input_gain.param.squeeze(-1).to(dtype),
                            output_gains=core.output_gain.param.squeeze(0).to(dtype)).abs()

    with torch.no_grad():
        ref = ours_mag(torch.float64)
        err = [float((20 * torch.log10(m.double() / ref)).abs().max())
               for m in (ours_mag(torch.float32), mag(x).squeeze())]
    return err[0], err[1]


def flamo_rows(nfft: int, delays: list[int], repeats: int) -> dict[str, Any] | None:
    flamo = try_import("flamo")
    if flamo is None:
        return None
    from flamo.optimize import loss as floss
    from flamo.processor import dsp, system

    n = len(delays)
    dev = "cpu"
    try:
        def build(output_layer: Any) -> Any:
            inp = dsp.Gain(size=(n, 1), nfft=nfft, requires_grad=True, alias_decay_db=30.0,
                           device=dev)
            out = dsp.Gain(size=(1, n), nfft=nfft, requires_grad=True, alias_decay_db=30.0,
                           device=dev)
            dl = dsp.parallelDelay(size=(n,), max_len=max(delays) + 1, nfft=nfft, isint=True,
                                   requires_grad=False, alias_decay_db=30.0, device=dev)
            dl.assign_value(dl.sample2s(torch.tensor([float(d) for d in delays])))
            mix = dsp.Matrix(size=(n, n), nfft=nfft, matrix_type="orthogonal",
                             requires_grad=True, alias_decay_db=30.0, device=dev)
            core = system.Series(OrderedDict({
                "input_gain": inp, "feedback_loop": system.Recursion(fF=dl, fB=mix),
                "output_gain": out}))
            return system.Shell(core=core, input_layer=dsp.FFT(nfft), output_layer=output_layer)

        mag = build(dsp.Transform(lambda x: torch.abs(x), device=dev))
        irm = build(dsp.iFFTAntiAlias(nfft=nfft, alias_decay_db=30.0, device=dev))
        x = torch.zeros(1, nfft, 1)
        x[:, 0] = 1.0
        params = [p for p in mag.parameters() if p.requires_grad]
        params_ir = [p for p in irm.parameters() if p.requires_grad]
        ones = torch.ones(1, nfft // 2 + 1, 1)
        mse = floss.mse_loss(nfft=nfft)

        def fwd() -> None:
            with torch.no_grad():
                mag(x)

        def colourless() -> torch.Tensor:
            return mse(mag(x), ones)

        target = (torch.randn(1, nfft, 1, generator=torch.Generator().manual_seed(0))
                  * torch.exp(-torch.arange(nfft) / (0.3 * SR))[None, :, None])
        edc = floss.edc_loss(sample_rate=SR, is_broadband=False, n_fractions=1,
                             convergence=True)

        def edc_loss() -> torch.Tensor:
            return edc(irm(x), target)

        return {
            "err_db": _response_errors_db(mag, x, nfft, delays),
            "fwd": (time_ms(fwd, repeats=repeats), alloc_mb(fwd)),
            "colourless": (time_ms(fwd_bwd(colourless, params), repeats=repeats),
                           alloc_mb(fwd_bwd(colourless, params))),
            "edc": (time_ms(fwd_bwd(edc_loss, params_ir), repeats=repeats),
                    alloc_mb(fwd_bwd(edc_loss, params_ir))),
        }
    except Exception as exc:  # API drift or missing optional deps: report ours only
        print(f"[FLAMO FDN failed: {type(exc).__name__}: {exc}]", file=sys.stderr)
        return None


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    nfft = 2**12 if args.quick else 2**18
    delays = coprime_delays(8, low=round(0.008 * SR), high=round(0.04 * SR), seed=0)
    o = ours(nfft, delays, args.repeats)
    f = flamo_rows(nfft, delays, args.repeats)
    m = nfft // 2 + 1
    rows = [
        Row(f"FDN N=8 response fwd, M={m}", o["fwd"][0], "flamo", f["fwd"][0] if f else None,
            "", f"alloc MB ours {o['fwd'][1]:.0f}"
            + (f", flamo {f['fwd'][1]:.0f}" if f else "")),
        Row(f"colourless loss fwd+bwd, M={m}", o["colourless"][0], "flamo",
            f["colourless"][0] if f else None, ">= 2x",
            f"alloc MB ours {o['colourless'][1]:.0f}"
            + (f", flamo {f['colourless'][1]:.0f}; max |H| error vs float64, same parameters: "
               f"ours {f['err_db'][0]:.1e} dB, flamo {f['err_db'][1]:.1e} dB" if f else "")),
        Row(f"octave EDC loss fwd+bwd (grid bands), T={nfft}", o["edc_grid"][0], "flamo",
            f["edc"][0] if f else None, ">= 5x",
            f"ours: reverb-task loss, bands on the grid; alloc MB ours {o['edc_grid'][1]:.0f}"
            + (f", flamo {f['edc'][1]:.0f}" if f else "")),
        Row(f"octave EDC loss fwd+bwd (EDCLoss on IR), T={nfft}", o["edc_module"][0], "flamo",
            f["edc"][0] if f else None, ">= 5x",
            f"ours: losses.acoustic.EDCLoss on the FS impulse response; alloc MB ours "
            f"{o['edc_module'][1]:.0f}"),
        Row(f"time-domain FDN (fdn_time) fwd+bwd, adjoint, T={nfft}", o["time"][0], "flamo",
            None, "", "ours only (FLAMO has no time-domain FDN); 1 s homogeneous decay; "
            f"alloc MB ours {o['time'][1]:.0f}"),
    ]
    report("lti", rows, args)


if __name__ == "__main__":
    main()
