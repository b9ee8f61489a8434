"""Losses side by side with auraloss (and FLAMO's octave-band EDC loss when installed).

Rows: MR-STFT forward+backward and forward only (batch 8, 5 s at 44.1 kHz, auraloss default
resolutions, gradient w.r.t. the input), with the values printed and ours checked against the
same auraloss computation run in float64 (to 1e-5 relative; ``sc_over_batch=True`` reproduces
auraloss's batch-wide spectral convergence; auraloss's own float32 value drifts ~1e-4 at this
size from float32 accumulation); our
octave-band EDC loss forward+backward (8 x 2 s RIRs at 48 kHz).

    .venv/bin/python benchmarks/losses.py            # full shapes, 7 repeats
    .venv/bin/python benchmarks/losses.py --quick    # smoke test (tiny shapes)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row, fwd_bwd, parse_args, report, time_ms, try_import

from diffdsp.losses.acoustic import EDCLoss
from diffdsp.losses.spectral import MultiResolutionSTFTLoss


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median process CPU time (all threads) of ``fn()`` in ms: robust to other load on a
    shared machine, where wall time is not."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        c0 = time.process_time()
        fn()
        times.append((time.process_time() - c0) * 1e3)
    return statistics.median(times)


def main() -> None:
    args = parse_args(__doc__ or "")
    batch, seconds, sr = (2, 0.5, 44100) if args.quick else (8, 5.0, 44100)
    n = int(seconds * sr)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, n, generator=g).requires_grad_(True)
    y = torch.randn(batch, 1, n, generator=g)
    rows: list[Row] = []

    ours = MultiResolutionSTFTLoss.auraloss_default(sc_over_batch=True)
    ours_ms = time_ms(fwd_bwd(lambda: ours(x, y), [x]), repeats=args.repeats)
    ours_cpu = cpu_ms(fwd_bwd(lambda: ours(x, y), [x]), args.repeats)
    peer_cpu = None
    with torch.no_grad():
        ours_fwd_ms = time_ms(lambda: ours(x, y), repeats=args.repeats)
        v_ours = float(ours(x, y))
    auraloss = try_import("auraloss")
    peer_ms = peer_fwd_ms = None
    note = f"value ours {v_ours:.7f}"
    if auraloss is not None:
        peer = auraloss.freq.MultiResolutionSTFTLoss()
        peer_ms = time_ms(fwd_bwd(lambda: peer(x, y), [x]), repeats=args.repeats)
        peer_cpu = cpu_ms(fwd_bwd(lambda: peer(x, y), [x]), args.repeats)
        with torch.no_grad():
            peer_fwd_ms = time_ms(lambda: peer(x, y), repeats=args.repeats)
            v_peer = float(peer(x, y))
            # the same auraloss computation in float64 is the reference value: in float32,
            # auraloss's large means lose ~1e-4 relative at this size, ours ~1e-7
            ref64 = auraloss.freq.MultiResolutionSTFTLoss()
            for f in ref64.stft_losses:
                f.window = f.window.double()
            v_ref = float(ref64(x.detach().double(), y.double()))
        rel = abs(v_ours - v_ref) / abs(v_ref)
        rel_peer = abs(v_peer - v_ref) / abs(v_ref)
        note += (f", auraloss f32 {v_peer:.7f}, auraloss f64 {v_ref:.7f}; rel diff vs f64: "
                 f"ours {rel:.1e}, auraloss f32 {rel_peer:.1e}")
        if rel > 1e-5:
            raise SystemExit(f"values differ: ours {v_ours}, auraloss(f64) {v_ref} (rel {rel:.2e})")
    shape = f"({batch}, 1, {n})"
    if peer_cpu is not None:
        note += f"; CPU time ours {ours_cpu:.0f} ms, auraloss {peer_cpu:.0f} ms " \
                f"({peer_cpu / ours_cpu:.2f}x)"
    rows.append(Row(f"MR-STFT fwd+bwd {shape}", ours_ms, "auraloss", peer_ms, ">= 2x", note,
                    extra={"ours_cpu_ms": ours_cpu, "peer_cpu_ms": peer_cpu}))
    rows.append(Row(f"MR-STFT fwd {shape}", ours_fwd_ms, "auraloss", peer_fwd_ms, ""))

    n_rir = int((0.2 if args.quick else 2.0) * 48000)
    decay = torch.exp(-torch.arange(n_rir) / (0.3 * 48000))
    h = (torch.randn(batch, n_rir, generator=g) * decay).requires_grad_(True)
    h_t = torch.randn(batch, n_rir, generator=g) * decay
    edc = EDCLoss(48000, bands="octave")
    edc_ms = time_ms(fwd_bwd(lambda: edc(h, h_t), [h]), repeats=args.repeats)
    flamo_ms = None
    flamo_loss = try_import("flamo.optimize.loss")
    if flamo_loss is not None:
        try:
            peer_edc = flamo_loss.edc_loss(sample_rate=48000, is_broadband=False, n_fractions=1,
                                           convergence=True)
            hp = h.detach().unsqueeze(-1).requires_grad_(True)  # FLAMO: (batch, time, channels)
            ht = h_t.unsqueeze(-1)
            flamo_ms = time_ms(fwd_bwd(lambda: peer_edc(hp, ht), [hp]), repeats=args.repeats)
        except Exception as exc:  # pyfar missing or API drift: report ours only
            print(f"[FLAMO edc_loss failed: {type(exc).__name__}: {exc}]", file=sys.stderr)
    rows.append(Row(f"EDC loss octave fwd+bwd ({batch}, {n_rir})", edc_ms, "flamo", flamo_ms,
                    "", "speed only: FLAMO's loss has no 0 dB normalisation; ours: filterbank "
                    "cached, all bands in one batched FFT"))
    report("losses", rows, args)


if __name__ == "__main__":
    main()
