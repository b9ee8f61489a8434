"""Losses side by side with auraloss (and FLAMO's octave-band EDC loss when installed).

Rows: MR-STFT forward+backward and forward only (batch 8, 5 s at 44.1 kHz, auraloss default
resolutions, gradient w.r.t. the input), with the values of both losses printed and checked to
agree (``sc_over_batch=True`` reproduces auraloss's batch-wide spectral convergence); our
octave-band EDC loss forward+backward (8 x 2 s RIRs at 48 kHz).

    .venv/bin/python benchmarks/losses.py            # full shapes, 7 repeats
    .venv/bin/python benchmarks/losses.py --quick    # smoke test (tiny shapes)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row, fwd_bwd, parse_args, report, time_ms, try_import

from diffdsp.losses.acoustic import EDCLoss
from diffdsp.losses.spectral import MultiResolutionSTFTLoss


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
    with torch.no_grad():
        ours_fwd_ms = time_ms(lambda: ours(x, y), repeats=args.repeats)
        v_ours = float(ours(x, y))
    auraloss = try_import("auraloss")
    peer_ms = peer_fwd_ms = None
    note = f"value ours {v_ours:.7f}"
    if auraloss is not None:
        peer = auraloss.freq.MultiResolutionSTFTLoss()
        peer_ms = time_ms(fwd_bwd(lambda: peer(x, y), [x]), repeats=args.repeats)
        with torch.no_grad():
            peer_fwd_ms = time_ms(lambda: peer(x, y), repeats=args.repeats)
            v_peer = float(peer(x, y))
        rel = abs(v_ours - v_peer) / abs(v_peer)
        note += f", auraloss {v_peer:.7f}, rel diff {rel:.1e}"
        if rel > 1e-5:
            raise SystemExit(f"values differ: ours {v_ours}, auraloss {v_peer} (rel {rel:.2e})")
    shape = f"({batch}, 1, {n})"
    rows.append(Row(f"MR-STFT fwd+bwd {shape}", ours_ms, "auraloss", peer_ms, ">= 2x", note))
    rows.append(Row(f"MR-STFT fwd {shape}", ours_fwd_ms, "auraloss", peer_fwd_ms, ""))

    n_rir = int((0.2 if args.quick else 2.0) * 48000)
    decay = torch.exp(-torch.arange(n_rir) / (0.3 * 48000))
    h = (torch.randn(batch, n_rir, generator=g) * decay).requires_grad_(True)
    h_t = torch.randn(batch, n_rir, generator=g) * decay
    edc = EDCLoss(48000, bands="octave")
    edc_ms = time_ms(fwd_bwd(lambda: edc(h, h_t), [h]), repeats=args.repeats)
    rows.append(Row(f"EDC loss octave fwd+bwd ({batch}, {n_rir})", edc_ms, "", None, "",
                    "filterbank cached, all bands in one batched FFT"))
    report("losses", rows, args)


if __name__ == "__main__":
    main()
