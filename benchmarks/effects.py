"""Effects side by side: compressor vs torchcomp / dasp-pytorch / pedalboard, EQ+compressor chain.

Rows (batch 8, 5 s mono at 44.1 kHz, 2 threads, float32):

- compressor forward+backward (gradient w.r.t. input and every parameter): ours (exact switching
  attack/release ballistics, compiled kernel + adjoint) vs torchcomp ``compexp_gain`` (exact, with
  a peak level; goal >= 1x) and dasp-pytorch ``compressor`` (FIR single-pole approximation;
  goal >= 4x);
- pedalboard ``Compressor`` forward (C++, no gradient: the non-differentiable floor);
- a style-transfer training step: 6-band EQ + compressor + MR-STFT loss forward+backward, ours
  (frequency-sampled EQ, exact compressor, our MR-STFT) vs dasp ``parametric_eq`` +
  ``compressor`` + auraloss ``MultiResolutionSTFTLoss`` (goal >= 3x).

Times are medians of process CPU time (all threads), which is robust to other load on a shared
machine where wall time is not (as in ``benchmarks/losses.py``).

    .venv-bench/bin/python benchmarks/effects.py          # with the peers
    .venv/bin/python benchmarks/effects.py --quick        # smoke test, ours only if peers absent
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row, parse_args, report, try_import

from diffdsp.effects.dynamics import Compressor
from diffdsp.losses.spectral import MultiResolutionSTFTLoss
from diffdsp.tasks.style import style_chain


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median process CPU time (all threads) of ``fn()`` in ms, after one warm-up call."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        c0 = time.process_time()
        fn()
        times.append((time.process_time() - c0) * 1e3)
    return statistics.median(times)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    batch, seconds, sr = (2, 0.25, 44100) if args.quick else (8, 5.0, 44100)
    n = int(seconds * sr)
    shape = f"({batch}, {n})"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, n, generator=g) * 0.2
    rows: list[Row] = []

    # ---------------------------------------------------------------- compressor fwd+bwd
    comp = Compressor(sr, stereo_link=False)
    vals = {"threshold_db": -24.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0,
            "knee_db": 6.0, "makeup_db": 3.0}
    params = {k: torch.full((batch,), v, requires_grad=True) for k, v in vals.items()}
    xg = x.clone().requires_grad_()

    def ours_comp() -> None:
        for p in [xg, *params.values()]:
            p.grad = None
        comp(xg, **params).sum().backward()

    ours_ms = cpu_ms(ours_comp, args.repeats)

    tc = try_import("torchcomp")
    tc_ms = None
    note = ""
    if tc is not None:
        x2 = x[:, 0].clone().requires_grad_()
        thr = torch.full((batch,), -24.0, requires_grad=True)
        ratio = torch.full((batch,), 4.0, requires_grad=True)
        at = torch.full((batch,), float(tc.ms2coef(torch.tensor(5.0), sr)), requires_grad=True)
        rt = torch.full((batch,), float(tc.ms2coef(torch.tensor(100.0), sr)), requires_grad=True)
        exp_thr = torch.full((batch,), -120.0)
        exp_ratio = torch.full((batch,), 0.999)

        def peer_tc() -> None:
            for p in (x2, thr, ratio, at, rt):
                p.grad = None
            level = x2.abs().clamp_min(1e-7)
            gain = tc.compexp_gain(level, thr, ratio, exp_thr, exp_ratio, at, rt)
            (x2 * gain).sum().backward()

        try:
            tc_ms = cpu_ms(peer_tc, args.repeats)
        except Exception as exc:  # report, do not hide
            note = f"torchcomp failed: {type(exc).__name__}"
    rows.append(Row(f"compressor fwd+bwd {shape}", ours_ms, "torchcomp", tc_ms, ">= 1x", note))

    dasp = try_import("dasp_pytorch.functional")
    dasp_ms = None
    if dasp is not None:
        xd = x.clone().requires_grad_()
        dp = {k: torch.full((batch,), v, requires_grad=True) for k, v in vals.items()}

        def peer_dasp() -> None:
            for p in [xd, *dp.values()]:
                p.grad = None
            y = dasp.compressor(xd, sr, dp["threshold_db"], dp["ratio"], dp["attack_ms"],
                                dp["release_ms"], dp["knee_db"], dp["makeup_db"])
            y.sum().backward()

        dasp_ms = cpu_ms(peer_dasp, args.repeats)
    rows.append(Row(f"compressor fwd+bwd {shape}", ours_ms, "dasp-pytorch", dasp_ms, ">= 4x",
                    "dasp: FIR single-pole, release_ms ignored"))

    # ---------------------------------------------------------------- forward only vs pedalboard
    with torch.no_grad():
        ours_fwd = cpu_ms(lambda: comp(x, **vals), args.repeats)
    pb = try_import("pedalboard")
    pb_ms = None
    if pb is not None:
        board = pb.Pedalboard([pb.Compressor(threshold_db=-24.0, ratio=4.0, attack_ms=5.0,
                                             release_ms=100.0)])
        xn = x[:, 0].numpy().astype(np.float32)

        def peer_pb() -> None:
            for b in range(batch):
                board(xn[b:b + 1], sr)

        pb_ms = cpu_ms(peer_pb, args.repeats)
    rows.append(Row(f"compressor fwd (no grad) {shape}", ours_fwd, "pedalboard", pb_ms,
                    "reference", "pedalboard: C++, not differentiable"))

    # ---------------------------------------------------------------- chain + MR-STFT step
    chain = style_chain(sr)
    u = torch.full((batch, chain.n_params), 0.5, requires_grad=True)
    target = torch.randn(batch, 1, n, generator=g) * 0.2
    mr = MultiResolutionSTFTLoss.auraloss_default()

    def ours_step() -> None:
        u.grad = None
        mr(chain(x, u), target).backward()

    ours_chain = cpu_ms(ours_step, args.repeats)
    aura = try_import("auraloss")
    peer_chain = None
    if dasp is not None and aura is not None:
        mr_peer = aura.freq.MultiResolutionSTFTLoss()
        names = (["low_shelf"] + [f"band{i}" for i in range(4)] + ["high_shelf"])
        freqs = [80.0, 250.0, 700.0, 1800.0, 4500.0, 8000.0]
        eqp = {}
        for nm, f in zip(names, freqs, strict=True):
            eqp[f"{nm}_gain_db"] = torch.full((batch,), 0.0, requires_grad=True)
            eqp[f"{nm}_cutoff_freq"] = torch.full((batch,), f, requires_grad=True)
            eqp[f"{nm}_q_factor"] = torch.full((batch,), 0.707, requires_grad=True)
        dp2 = {k: torch.full((batch,), v, requires_grad=True) for k, v in vals.items()}

        def peer_step() -> None:
            for p in [*eqp.values(), *dp2.values()]:
                p.grad = None
            y = dasp.parametric_eq(x, sr, **eqp)
            y = dasp.compressor(y, sr, dp2["threshold_db"], dp2["ratio"], dp2["attack_ms"],
                                dp2["release_ms"], dp2["knee_db"], dp2["makeup_db"])
            mr_peer(y, target).backward()

        peer_chain = cpu_ms(peer_step, args.repeats)
    rows.append(Row(f"EQ+compressor+MR-STFT train step {shape}", ours_chain,
                    "dasp+auraloss", peer_chain, ">= 3x"))
    report("effects", rows, args)


if __name__ == "__main__":
    main()
