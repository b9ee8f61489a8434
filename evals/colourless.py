"""Quality bar of issue #5: colourless optimisation of a lossless FDN (spectral flatness).

A lossless 8-line FDN (co-prime delays of 8-40 ms at 48 kHz, random orthogonal matrix, random
+-1/sqrt(N) input and output gains; ``build_fdn(seed=s)``) is optimised from the same start by:

- **FLAMO's shipped recipe** (``examples/e8_colorless_fdn.py`` of FLAMO 0.2.x, re-run here with
  our kernels on our delays and initial values): ``MSE(|H|, 1)`` on all 48001 bins of a
  96000-point grid with ``alias_decay_db = 30``, + 0.2 x sparsity, Adam lr 1e-3, 10 epochs of
  204 steps (its dataset of 256 impulses split 0.8/0.2, batch 1), its early stop (patience 5
  epochs, delta 0.01; StepLR(50) never decays within 10 epochs);
- **ours**: ``diffdsp.tasks.reverb.optimise_colourless(objective="log_flatness")``: the
  spectral flatness itself (``log mean |H|^2 - mean log |H|^2``) on 8192 stratified random
  frequencies per step at the evaluation damping, + w x sparsity, Adam lr 0.03 with a cosine
  schedule, 800 steps; at w = 0.5 (flattest) and w = 2.0 (dense matrix).

Spectral flatness = geometric / arithmetic mean of ``|H|^2`` over the 2^16 + 1 bins of a
2^17-point grid with FLAMO's anti-aliasing gamma (``alias_decay_db = 30``, i.e. just outside the
unit circle, where the lossless network's poles keep the response finite). Matrix sparsity
(Dal Santo et al., 0 = maximally dense, 1 = permutation) is reported next to it because the two
trade off: a sparser matrix makes the network more comb-like and flatter. ``comb`` is the
flatness of an ideal comb with the same total delay, ``1 - gamma^(2 sum m)``, for scale.

    .venv/bin/python evals/colourless.py            # the figure (3 seeds in 3 processes)
    .venv/bin/python evals/colourless.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from diffdsp.functional.fdn import fdn_transfer
from diffdsp.losses.acoustic import sparsity_loss
from diffdsp.lti import FDN, FrequencyGrid, build_fdn
from diffdsp.tasks.reverb import optimise_colourless, spectral_flatness

#: The issue's figure for FLAMO's recipe on FLAMO's own example (0.17 -> 0.28).
FLAMO_ISSUE_AFTER = 0.28
ALIAS_DB = 30.0
OURS = {"ours (flatness, w=0.5)": 0.5, "ours (flatness, w=2.0)": 2.0}


def flatness(fdn: FDN, nfft: int) -> float:
    """Spectral flatness of |H|^2 on the 2^17-point evaluation grid (float64)."""
    grid = FrequencyGrid(nfft, fdn.grid.sample_rate, alias_decay_db=ALIAS_DB, dtype=torch.float64)
    m = fdn.delays.samples.detach().double()
    with torch.no_grad():
        g = grid.delay(m)
        h = fdn_transfer(g, feedback_matrix=fdn.matrix.static_matrix().double(),
                         input_gains=fdn.input_gains.double(),
                         output_gains=fdn.output_gains.double())
    return float(spectral_flatness(h))


def sparsity(fdn: FDN) -> float:
    return float(sparsity_loss(fdn.matrix.static_matrix().detach()))


def flamo_recipe(fdn: FDN, *, nfft: int = 96000, epochs: int = 10, per_epoch: int = 204,
                 lr: float = 1e-3) -> int:
    """FLAMO's e8_colorless_fdn recipe on our network (see the module docstring); returns steps."""
    grid = FrequencyGrid(nfft, fdn.grid.sample_rate, alias_decay_db=ALIAS_DB,
                         dtype=fdn.grid.dtype)
    g = grid.delay(fdn.delays.samples.detach())
    params = [p for p in (*fdn.matrix.parameters(), fdn.input_gains, fdn.output_gains)
              if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)

    def loss_fn() -> torch.Tensor:
        a = fdn.matrix.static_matrix()
        h = fdn_transfer(g, feedback_matrix=a, input_gains=fdn.input_gains,
                         output_gains=fdn.output_gains)
        return (h.abs() - 1.0).pow(2).mean() + 0.2 * sparsity_loss(a)

    min_val, counter, steps = math.inf, 0, 0
    for _ in range(epochs):
        for _ in range(per_epoch):
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
            steps += 1
        with torch.no_grad():
            v = float(loss_fn())
        if v < min_val - 0.01:
            min_val, counter = v, 0
        elif min_val - 0.01 < v < min_val + 0.01:
            counter += 1
            if counter >= 5:
                break
    return steps


def one_seed(seed: int, quick: bool, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    nfft = 2**13 if quick else 2**17
    comb_log_gamma = -ALIAS_DB / 20.0 * math.log(10.0) / nfft
    row: dict[str, Any] = {"seed": seed}
    base = build_fdn(48000, n_lines=8, nfft=2**12, attenuation="none", seed=seed)
    row["delays"] = [int(v) for v in base.delays.samples.tolist()]
    row["comb"] = 1.0 - math.exp(2.0 * comb_log_gamma * sum(row["delays"]))
    row["before"] = (flatness(base, nfft), sparsity(base))
    t0 = time.perf_counter()
    fdn = build_fdn(48000, n_lines=8, nfft=2**12, attenuation="none", seed=seed)
    if quick:
        flamo_recipe(fdn, nfft=2**12, epochs=1, per_epoch=5)
    else:
        flamo_recipe(fdn)
    row["FLAMO recipe"] = (flatness(fdn, nfft), sparsity(fdn), time.perf_counter() - t0)
    for name, w in OURS.items():
        t0 = time.perf_counter()
        fdn = build_fdn(48000, n_lines=8, nfft=2**12, attenuation="none", seed=seed)
        optimise_colourless(fdn, steps=10 if quick else 800, n_freqs=512 if quick else 8192,
                            lr=0.03, sparsity_weight=w, objective="log_flatness", seed=seed)
        row[name] = (flatness(fdn, nfft), sparsity(fdn), time.perf_counter() - t0)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=3, help="processes (one thread each)")
    args = p.parse_args()
    seeds = list(range(args.seed, args.seed + (1 if args.quick else args.seeds)))
    print(f"settings: N=8 fs=48000 seeds={seeds} quick={args.quick} jobs={args.jobs} "
          f"torch={torch.__version__}")
    if args.quick or args.jobs <= 1:
        rows = [one_seed(s, args.quick, 1) for s in seeds]
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            rows = list(ex.map(one_seed, seeds, [args.quick] * len(seeds), [1] * len(seeds)))
    names = ["FLAMO recipe", *OURS]
    for r in rows:
        parts = [f"{n}: {r[n][0]:.3f} (sparsity {r[n][1]:.2f}, {r[n][2]:.0f} s)" for n in names]
        print(f"seed {r['seed']} delays {r['delays']}: before {r['before'][0]:.3f} (sparsity "
              f"{r['before'][1]:.2f}); " + "; ".join(parts) + f"; ideal comb {r['comb']:.3f}")

    def stat(vals: list[float]) -> str:
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{statistics.fmean(vals):.3f} +- {sd:.3f}"

    before = [r["before"][0] for r in rows]
    summary = {n: [r[n][0] for r in rows] for n in names}
    for n in names:
        print(f"FIGURE colourless_flatness[{n}] before={stat(before)} after={stat(summary[n])} "
              f"sparsity={stat([r[n][1] for r in rows])} over {len(rows)} seeds")
    best = max(OURS, key=lambda n: statistics.fmean(summary[n]))
    gain = [a - b for a, b in zip(summary[best], summary["FLAMO recipe"], strict=True)]
    ok = min(gain) > 0.02 and statistics.fmean(gain) > 0.03
    verdict = "not judged (quick)" if args.quick else ("MET" if ok else "NOT MET")
    print(f"FIGURE colourless_vs_flamo best={best} flatness gain over FLAMO's recipe on the same "
          f"seeds {stat(gain)} (min {min(gain):+.3f}; bar 'clearly beyond': every seed > +0.02, "
          f"mean > +0.03): {verdict}; see the sparsity columns for the density it costs (the issue "
          f"quotes 0.17 -> {FLAMO_ISSUE_AFTER} for FLAMO's recipe on its own example)")
    return 0 if (args.quick or ok) else 1


if __name__ == "__main__":
    sys.exit(main())
