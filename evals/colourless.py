"""Quality bar of issue #5: colourless optimisation of a lossless FDN (spectral flatness).

A lossless 8-line FDN (co-prime delays of 8-40 ms at 48 kHz, random orthogonal matrix, random
+-1/sqrt(N) input and output gains) is optimised with the colourless objective of Dal Santo et al.
(DAFx 2023): ``mean (|H| - 1)^2`` on random frequencies each step + 0.1 x matrix sparsity
(``diffdsp.tasks.reverb.optimise_colourless``). Spectral flatness = geometric / arithmetic mean of
``|H|^2`` over the 2^16 + 1 bins of a 2^17-point frequency-sampling grid with FLAMO's
anti-aliasing gamma (``alias_decay_db = 30``, i.e. sampled just outside the unit circle, where the
lossless network's poles keep the response finite), before and after, averaged over seeds.
FLAMO's shipped recipe moves it from 0.17 to 0.28
(issue #5); the bar is "clearly beyond" that.

    .venv/bin/python evals/colourless.py            # the figure (5 seeds, 400 steps)
    .venv/bin/python evals/colourless.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from diffdsp.lti import FrequencyGrid, build_fdn
from diffdsp.tasks.reverb import optimise_colourless, spectral_flatness

FLAMO_AFTER = 0.28
#: The lossless network is sampled just outside the unit circle (FLAMO's anti-aliasing gamma):
#: on the circle itself its poles make |H|^2 unbounded and the flatness meaningless.
ALIAS_DB = 30.0


def flatness(fdn: torch.nn.Module, nfft: int) -> float:
    from diffdsp.functional.fdn import fdn_transfer

    grid = FrequencyGrid(nfft, fdn.grid.sample_rate, alias_decay_db=ALIAS_DB, dtype=torch.float64)
    m = fdn.delays.samples.detach().double()
    with torch.no_grad():
        g = grid.delay(m)
        h = fdn_transfer(g, feedback_matrix=fdn.matrix.static_matrix().double(),
                         input_gains=fdn.input_gains.double(),
                         output_gains=fdn.output_gains.double())
    return float(spectral_flatness(h))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    steps = 20 if args.quick else args.steps
    seeds = 1 if args.quick else args.seeds
    nfft = 2**14 if args.quick else 2**17
    print(f"settings: N=8 fs=48000 steps={steps} seeds={seeds} nfft={nfft} "
          f"threads={args.threads} torch={torch.__version__}")
    before, after = [], []
    for s in range(args.seed, args.seed + seeds):
        fdn = build_fdn(48000, n_lines=8, nfft=2**12, attenuation="none", seed=s)
        sf0 = flatness(fdn, nfft)
        t0 = time.perf_counter()
        info = optimise_colourless(fdn, steps=steps, seed=s)
        sf1 = flatness(fdn, nfft)
        before.append(sf0)
        after.append(sf1)
        print(f"seed {s}: flatness {sf0:.3f} -> {sf1:.3f}  loss {info['losses'][0]:.3f} -> "
              f"{info['final_loss']:.3f}  ({time.perf_counter() - t0:.1f} s)")
    b, a = statistics.fmean(before), statistics.fmean(after)
    ok = a > FLAMO_AFTER + 0.1
    verdict = "not judged (quick)" if args.quick else ("MET" if ok else "NOT MET")
    print(f"FIGURE colourless_spectral_flatness before={b:.3f} after={a:.3f} over {seeds} seeds "
          f"(FLAMO recipe 0.17 -> {FLAMO_AFTER}; bar: clearly beyond, > {FLAMO_AFTER + 0.1:.2f}):"
          f" {verdict}")
    return 0 if (args.quick or ok) else 1


if __name__ == "__main__":
    sys.exit(main())
