"""Quality bar of issue #5: octave-band T60 error of FDN fits to real and synthetic RIRs.

Fits an 8-line FDN (``diffdsp.tasks.reverb.fit_rir``, default settings, 60 s budget) to the two
shipped measured RIRs and to image-source synthetic rooms generated here, and reports the mean
absolute octave-band T60 error (T30, 250 Hz - 8 kHz, measured on the target RIR and on the written
impulse response with one estimator, ``diffdsp.functional.analysis.t60_per_band``: ISO 3382-1,
Lundeby truncation and compensation; T20 in a band whose dynamic range is too short for T30) and
the wall time per fit.

    .venv/bin/python evals/reverb_fit.py            # the figure (bar: < 5 %, <= 60 s per RIR)
    .venv/bin/python evals/reverb_fit.py --quick    # smoke run (one short synthetic room)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from diffdsp import data
from diffdsp.io import load_audio
from diffdsp.tasks import reverb

BAR_PCT = 5.0
BAR_S = 60.0


def _cases(quick: bool, seed: int) -> list[tuple[str, torch.Tensor, int]]:
    if quick:
        h = reverb.synthetic_rir(16000, seconds=0.5, t60_s=[0.6, 0.5, 0.45, 0.4, 0.3], seed=seed,
                                 image_order=1)
        return [("synthetic quick 16 kHz", h, 16000)]
    cases = []
    for name in ("rir/aalto_arni_35_3541_4_2.flac", "rir/seminar_room_clap.flac"):
        x, sr = load_audio(data.path(name))
        cases.append((name, x[0], sr))
    rooms = [
        ((6.0, 4.5, 3.0), [0.9, 0.8, 0.7, 0.6, 0.5, 0.35]),
        ((10.0, 7.0, 4.0), [1.4, 1.3, 1.2, 1.0, 0.8, 0.6]),
        ((4.0, 3.0, 2.5), [0.5, 0.45, 0.4, 0.35, 0.3, 0.25]),
    ]
    for i, (room, t60) in enumerate(rooms):
        h = reverb.synthetic_rir(48000, seconds=max(1.0, 1.2 * max(t60)), t60_s=t60,
                                 seed=seed + i, room_m=room, image_order=3)
        cases.append((f"image-source room {room} m", h, 48000))
    return cases


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"settings: seed={args.seed} threads={args.threads} torch={torch.__version__} "
          f"quick={args.quick} N=8 budget={BAR_S} s")
    rows = []
    for name, h, sr in _cases(args.quick, args.seed):
        t0 = time.perf_counter()
        c0 = time.process_time()
        if args.quick:
            r = reverb.fit_rir(h, sr, n_lines=4, steps=10, colourless_steps=20,
                               calibration_passes=2, time_budget_s=20.0, seed=args.seed)
        else:
            r = reverb.fit_rir(h, sr, seed=args.seed, time_budget_s=BAR_S)
        sec = time.perf_counter() - t0
        cpu = time.process_time() - c0
        rows.append({"case": name, "sample_rate": sr, "seconds": sec, "cpu_seconds": cpu,
                     "bands_hz": r.bands_hz, "target_t60_s": r.target_t60_s,
                     "fitted_t60_s": r.fitted_t60_s, "error_pct": r.t60_error_pct,
                     "mean_abs_error_pct": r.mean_t60_error_pct,
                     "colourless": {k: r.fit.get("colourless", {}).get(k)
                                    for k in ("flatness", "sparsity")}})
        col = rows[-1]["colourless"]
        col_txt = "" if col["flatness"] is None else (
            f"  colourless flatness {col['flatness']:.3f} (sparsity {col['sparsity']:.2f})")
        print(f"{name:45s} {sr:6d} Hz  {sec:6.1f} s (CPU {cpu:6.1f} s)  "
              f"mean |err| {r.mean_t60_error_pct:5.2f} %  "
              f"per band {[round(e, 1) for e in r.t60_error_pct]}{col_txt}")
    errs = [r["mean_abs_error_pct"] for r in rows]
    secs = [r["seconds"] for r in rows]
    mean_err = statistics.fmean(errs)
    worst = max(errs)
    worst_s = max(secs)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "reverb_fit.json").write_text(json.dumps({"rows": rows}, indent=2))
    ok_err = math.isfinite(worst) and worst < BAR_PCT
    ok_time = worst_s <= BAR_S  # the whole fit_rir call, analysis and rendering included
    verdict_e = "not judged (quick)" if args.quick else ("MET" if ok_err else "NOT MET")
    verdict_t = "not judged (quick)" if args.quick else ("MET" if ok_time else "NOT MET")
    print(f"FIGURE reverb_t60_error_pct mean={mean_err:.2f} % worst={worst:.2f} % over "
          f"{len(rows)} RIRs (bar < {BAR_PCT} % each): {verdict_e}")
    cpus = [r["cpu_seconds"] for r in rows]
    print(f"FIGURE reverb_fit_cpu_seconds mean={statistics.fmean(cpus):.1f} s "
          f"worst={max(cpus):.1f} s (process CPU time over all threads; informative: on a loaded "
          f"machine wall time exceeds it, load {os.getloadavg()[0]:.1f})")
    print(f"FIGURE reverb_fit_seconds mean={statistics.fmean(secs):.1f} s worst={worst_s:.1f} s "
          f"on {args.threads} threads (bar <= {BAR_S} s per RIR): {verdict_t}")
    if not args.quick and not (ok_err and ok_time):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
