"""Quality bar of issue #5: colourless optimisation of a lossless FDN (spectral flatness).

The issue asks that our colourless optimisation raise the spectral flatness of a lossless FDN
"clearly beyond FLAMO's shipped recipe (which moves it only from 0.17 to 0.28)". Two comparisons,
both paired (same delays, same initial matrix and gains for every method):

1. **FLAMO's own example** (``examples/e8_colorless_fdn.py`` of FLAMO 0.2.x), run with FLAMO
   itself when ``flamo`` is importable (the bench venv): N = 6, delays 887, 911, 941, 1699,
   1951, 2053, ``alias_decay_db = 30``, nfft 96000, float64, ``torch.manual_seed(130709)``,
   ``DatasetColorless`` of 256 impulses (split 0.8/0.2, batch 1), FLAMO's ``Trainer`` (Adam lr
   1e-3, 10 epochs, its early stop and StepLR), ``mse_loss`` + 0.2 x ``sparsity_loss``, on the CPU
   with one thread. The driver here builds that model with FLAMO's classes, records the initial
   and final feedback matrix (the orthogonal matrix FLAMO maps from its parameter), input and
   output gains, and times ``Trainer.train``. Ours starts from FLAMO's initial raw matrix
   parameter (same ``expm(triu - triu^T)`` map) and gains, in float64. Without ``flamo`` this
   part is skipped with a message.
2. **Paired seeds of our own networks**: a lossless 8-line FDN (``build_fdn(seed=s)``, co-prime
   delays of 8-40 ms at 48 kHz, random orthogonal matrix, +-1/sqrt(N) gains), seeds 0-9, each
   optimised by FLAMO's recipe rebuilt with our kernels (``MSE(|H|, 1)`` on all 48001 bins of a
   96000-point grid, + 0.2 x sparsity, Adam lr 1e-3, 10 epochs of 204 steps, FLAMO's early stop)
   and by ours, from the same start.

Ours: ``diffdsp.tasks.reverb.optimise_colourless(objective="log_flatness")``, the spectral
flatness itself (``log mean |H|^2 - mean log |H|^2``) on 8192 stratified random frequencies per
step at the damping of a 2^17-point grid, Adam with a cosine schedule, 2000 steps, in three
configurations:

- **ours (density-matched)**, the one the verdict judges: ``max_sparsity`` = the sparsity of
  FLAMO's *result* on that case (a density constraint: the flattest network whose matrix is no
  sparser than FLAMO's), no sparsity weight, lr 0.1, ``restarts=4`` (the flattest of four fits
  from the same start with different frequency draws);
- ours (w = 0.5) and ours (w = 2.0): sparsity *weights* (a trade-off, lr 0.03, one run); the
  session-3 rows, reported for comparison.

Metric: spectral flatness = geometric / arithmetic mean of ``|H|^2`` over the bins 0..nfft/2 of
an nfft-point grid with FLAMO's anti-aliasing ``gamma = 10^(-30 / (20 nfft))`` (the lossless
network sampled just outside the unit circle, where it is finite), reported at nfft = 2^17 and at
FLAMO's nfft = 96000 (which gives higher figures: a larger damping). At 96000 it equals the
flatness of FLAMO's own model output to ~1e-12. Matrix sparsity (Dal Santo et al.: 0 = maximally
dense, 1 = permutation) is reported next to it because the two trade off: a sparser matrix makes
the network more comb-like and flatter. ``comb`` = ``1 - gamma^(2 sum m)``, the flatness of one
ideal comb with the network's total delay (what a cyclic permutation matrix with one input and
one output line reaches), for scale.

Verdict criterion (session 4; fixed in this docstring before the reported run, on seeds it had
not seen). With ``gain = after - before`` in flatness, ours (density-matched) is "clearly beyond"
FLAMO's recipe when

1. on every case (FLAMO's own example and each paired seed) its matrix is no sparser than
   FLAMO's result and its flatness is higher than FLAMO's, at both grids; and
2. at both grids, its gain is at least 1.5 x FLAMO's gain on FLAMO's own example, and its mean
   gain over the paired seeds is at least 1.5 x FLAMO's mean gain.

MET when all hold, NOT MET otherwise (exit status 1). Without ``flamo`` the example part is not
run and the verdict is reported for the seeds only (the bar "not judged").

Why this rule and not session 3's (1.5 x FLAMO's gain on *every* case, with fixed sparsity
weights): per case it is infeasible where FLAMO's recipe already gets close to the comb figure
(seed 0: 1.5 x its gain means 0.342 at 2^17 against a comb figure of 0.335), and a sparsity
weight trades density for flatness case by case, so "no sparser" was a coin toss; the density
constraint compares the flatness at equal (or higher) density directly. The density-matched
settings (lr 0.1, four restarts, the penalty margin in ``optimise_colourless``) were chosen on
the development seeds 0-9 (session 3's seeds; mean gain ratio 1.74 / 1.70 there, flatter on
every seed) and FLAMO's example; the reported run uses fresh seeds 10-19 (``--seed 10``, the
default).

    .venv-bench/bin/python evals/colourless.py   # the figure (FLAMO's example + 10 seeds)
    .venv/bin/python evals/colourless.py         # seeds only (no flamo in the main venv)
    .venv/bin/python evals/colourless.py --quick # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from diffdsp.functional.fdn import fdn_transfer
from diffdsp.losses.acoustic import sparsity_loss
from diffdsp.lti import FDN, FrequencyGrid, build_fdn
from diffdsp.tasks.reverb import optimise_colourless, spectral_flatness

#: The issue's figure for FLAMO's recipe on FLAMO's own example (0.17 -> 0.28).
FLAMO_ISSUE = (0.17, 0.28)
ALIAS_DB = 30.0
GRIDS = (2**17, 96000)
OURS = {"ours (w=0.5)": 0.5, "ours (w=2.0)": 2.0}
MATCHED = "ours (density-matched)"
STEPS, N_FREQS, LR = 2000, 8192, 0.03
MATCHED_LR, MATCHED_RESTARTS = 0.1, 4
RATIO = 1.5
#: FLAMO's examples/e8_colorless_fdn.py settings.
E8: dict[str, Any] = {"delays": [887, 911, 941, 1699, 1951, 2053], "nfft": 96000, "seed": 130709,
                      "num": 256, "lr": 1e-3, "max_epochs": 10, "sparsity_weight": 0.2,
                      "batch_size": 1, "sample_rate": 48000}


# --------------------------------------------------------------------------- metric

def _t(x: Any) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def response(delays: Sequence[float], a: Any, b: Any, c: Any, nfft: int) -> torch.Tensor:
    """H on the bins 0..nfft/2 of an nfft-point grid with FLAMO's gamma (float64)."""
    grid = FrequencyGrid(nfft, 48000, alias_decay_db=ALIAS_DB, dtype=torch.float64)
    with torch.no_grad():
        return fdn_transfer(grid.delay(_t(delays)), feedback_matrix=_t(a), input_gains=_t(b),
                            output_gains=_t(c))


def flatness(delays: Sequence[float], a: Any, b: Any, c: Any, nfft: int) -> float:
    """Spectral flatness of |H|^2 on an nfft-point grid with FLAMO's gamma (float64)."""
    return float(spectral_flatness(response(delays, a, b, c, nfft)))


def comb(delays: Sequence[float], nfft: int) -> float:
    log_gamma = -ALIAS_DB / 20.0 * math.log(10.0) / nfft
    return 1.0 - math.exp(2.0 * log_gamma * float(sum(delays)))


def state(fdn: FDN) -> dict[str, Any]:
    with torch.no_grad():
        return {"A": fdn.matrix.static_matrix().double().tolist(),
                "B": fdn.input_gains.double().tolist(), "C": fdn.output_gains.double().tolist()}


def measure(delays: Sequence[float], st: dict[str, Any]) -> dict[str, Any]:
    """Flatness at both grids and sparsity of a state ``{"A", "B", "C", ...}``."""
    out = dict(st)
    out["flatness"] = {str(n): flatness(delays, st["A"], st["B"], st["C"], n) for n in GRIDS}
    out["sparsity"] = float(sparsity_loss(_t(st["A"])))
    return out


# --------------------------------------------------------------------------- FLAMO itself

def flamo_available() -> bool:
    try:
        import flamo  # noqa: F401
    except ImportError:
        return False
    return True


def _build_flamo_e8(nfft: int) -> tuple[Any, Any, Any, Any]:
    """FLAMO's e8 model built with FLAMO's classes, in the example's order (same RNG draws)."""
    from collections import OrderedDict

    from flamo.processor import dsp, system

    torch.manual_seed(E8["seed"])
    n, dt, kw = len(E8["delays"]), torch.float64, {"alias_decay_db": ALIAS_DB, "device": "cpu"}
    ig = dsp.Gain(size=(n, 1), nfft=nfft, requires_grad=True, dtype=dt, **kw)
    og = dsp.Gain(size=(1, n), nfft=nfft, requires_grad=True, dtype=dt, **kw)
    d = torch.tensor(E8["delays"])
    de = dsp.parallelDelay(size=(n,), max_len=d.max(), nfft=nfft, isint=True,
                           requires_grad=False, dtype=dt, **kw)
    de.assign_value(de.sample2s(d))
    fb = dsp.Matrix(size=(n, n), nfft=nfft, matrix_type="orthogonal", requires_grad=True,
                    dtype=dt, **kw)
    core = system.Series(OrderedDict({"input_gain": ig,
                                      "feedback_loop": system.Recursion(fF=de, fB=fb),
                                      "output_gain": og}))
    model = system.Shell(core=core, input_layer=dsp.FFT(nfft, dtype=dt),
                         output_layer=dsp.Transform(transform=torch.abs, dtype=dt))
    return model, ig, og, fb


def _flamo_state(ig: Any, og: Any, fb: Any) -> dict[str, Any]:
    with torch.no_grad():
        return {"A": fb.map(fb.param).tolist(), "B": ig.param.squeeze().tolist(),
                "C": og.param.squeeze().tolist(), "raw": fb.param.tolist()}


def flamo_e8_start() -> dict[str, Any]:
    """FLAMO's initial A (mapped), B, C and raw matrix parameter on its own example."""
    _, ig, og, fb = _build_flamo_e8(E8["nfft"])
    return _flamo_state(ig, og, fb)


def run_flamo_e8(quick: bool) -> dict[str, Any]:
    """Train FLAMO's e8 example with FLAMO's Trainer; the initial and final states, the time."""
    torch.set_num_threads(1)
    from importlib.metadata import version

    from flamo.optimize.dataset import DatasetColorless, load_dataset
    from flamo.optimize.loss import mse_loss
    from flamo.optimize.loss import sparsity_loss as flamo_sparsity
    from flamo.optimize.trainer import Trainer

    nfft = E8["nfft"]
    model, ig, og, fb = _build_flamo_e8(nfft)
    with torch.no_grad():  # the example renders the initial IR here (no RNG involved)
        model.get_time_response(identity=False, fs=E8["sample_rate"])
    before = _flamo_state(ig, og, fb)
    shape = (1, nfft // 2 + 1, 1)
    ds = DatasetColorless(input_shape=shape, target_shape=shape, expand=10 if quick else E8["num"],
                          device="cpu", dtype=torch.float64)
    train, valid = load_dataset(ds, batch_size=E8["batch_size"])
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(model, max_epochs=1 if quick else E8["max_epochs"], lr=E8["lr"],
                     train_dir=tmp, device="cpu")
        tr.register_criterion(mse_loss(nfft=nfft, device="cpu"), 1)
        tr.register_criterion(flamo_sparsity(), E8["sparsity_weight"], requires_model=True)
        t0 = time.perf_counter()
        tr.train(train, valid)
        seconds = time.perf_counter() - t0
    after = _flamo_state(ig, og, fb)
    x = torch.zeros(shape, dtype=torch.float64)
    x[:, 0, :] = 1.0
    with torch.no_grad():
        p = model(x).squeeze().pow(2)
    own = float(torch.exp(torch.log(p).mean()) / p.mean())
    return {"before": before, "after": after, "seconds": seconds, "epochs": len(tr.train_loss),
            "steps": len(tr.train_loss) * len(train), "flamo_version": version("flamo"),
            "flamo_own_output_flatness_after": own}


def run_ours(fdn: FDN, *, seed: int, quick: bool, w: float = 0.0,
             max_sparsity: float | None = None) -> dict[str, Any]:
    """One configuration of ours on ``fdn`` (in place): a sparsity weight ``w`` or, with
    ``max_sparsity``, the density-matched configuration; returns the state and the time."""
    matched = max_sparsity is not None
    t0 = time.perf_counter()
    optimise_colourless(fdn, steps=10 if quick else STEPS, n_freqs=512 if quick else N_FREQS,
                        lr=MATCHED_LR if matched else LR, sparsity_weight=0.0 if matched else w,
                        objective="log_flatness", seed=seed, max_sparsity=max_sparsity,
                        restarts=(2 if quick else MATCHED_RESTARTS) if matched else 1)
    return {**state(fdn), "seconds": time.perf_counter() - t0}


def ours_e8(start: dict[str, Any], w: float, quick: bool,
            max_sparsity: float | None = None) -> dict[str, Any]:
    """Ours from FLAMO's initial raw matrix parameter and gains (float64)."""
    torch.set_num_threads(1)
    grid = FrequencyGrid(2**12, E8["sample_rate"], alias_decay_db=ALIAS_DB, dtype=torch.float64)
    fdn = FDN(grid, [float(v) for v in E8["delays"]], matrix_init=_t(start["raw"]),
              input_gains=start["B"], output_gains=start["C"])
    return run_ours(fdn, seed=0, quick=quick, w=w, max_sparsity=max_sparsity)


# --------------------------------------------------------------------------- our networks

def flamo_recipe(fdn: FDN, *, nfft: int = 96000, epochs: int = 10, per_epoch: int = 204,
                 lr: float = 1e-3) -> int:
    """FLAMO's e8_colorless_fdn recipe on our network with our kernels; returns steps."""
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


def one_seed(seed: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)

    def net() -> FDN:
        return build_fdn(48000, n_lines=8, nfft=2**12, attenuation="none", seed=seed)

    base = net()
    delays = [int(v) for v in base.delays.samples.tolist()]
    row: dict[str, Any] = {"seed": seed, "delays": delays,
                           "comb": {str(n): comb(delays, n) for n in GRIDS},
                           "before": measure(delays, state(base))}
    t0 = time.perf_counter()
    fdn = net()
    steps = flamo_recipe(fdn, nfft=2**12, epochs=1, per_epoch=5) if quick else flamo_recipe(fdn)
    row["FLAMO"] = {**measure(delays, state(fdn)), "seconds": time.perf_counter() - t0,
                    "steps": steps}
    row[MATCHED] = measure(delays, run_ours(net(), seed=seed, quick=quick,
                                            max_sparsity=row["FLAMO"]["sparsity"]))
    for name, w in OURS.items():
        row[name] = measure(delays, run_ours(net(), seed=seed, quick=quick, w=w))
    return row


# --------------------------------------------------------------------------- verdict

def gains(case: dict[str, Any], name: str, grid: str) -> tuple[float, float]:
    """(our gain, FLAMO's gain) in flatness from the common start, on one grid."""
    before = case["before"]["flatness"][grid]
    return case[name]["flatness"][grid] - before, case["FLAMO"]["flatness"][grid] - before


def dominates(case: dict[str, Any], name: str) -> bool:
    """Criterion 1 of the docstring on one case: no sparser and flatter at both grids."""
    flatter = all(g_o > g_f for g_o, g_f in (gains(case, name, n) for n in map(str, GRIDS)))
    return flatter and case[name]["sparsity"] <= case["FLAMO"]["sparsity"]


def mean_gain_ratio(rows: list[dict[str, Any]], name: str, grid: str) -> float:
    """Mean gain of ours over the seeds / mean gain of FLAMO's recipe."""
    g = [gains(r, name, grid) for r in rows]
    return sum(o for o, _ in g) / sum(f for _, f in g)


def verdict(e8: dict[str, Any] | None, rows: list[dict[str, Any]], name: str) -> bool:
    """The whole criterion of the docstring (``e8`` None: the seeds part only)."""
    ok = all(dominates(r, name) for r in rows) and all(
        mean_gain_ratio(rows, name, n) >= RATIO for n in map(str, GRIDS))
    if e8 is not None:
        ok = ok and dominates(e8, name) and all(
            gains(e8, name, n)[0] >= RATIO * gains(e8, name, n)[1] for n in map(str, GRIDS))
    return ok


def _fmt(m: dict[str, Any]) -> str:
    f = m["flatness"]
    s = f"{f[str(GRIDS[0])]:.3f} | {f[str(GRIDS[1])]:.3f} (sparsity {m['sparsity']:.2f}"
    return s + (f", {m['seconds']:.0f} s)" if "seconds" in m else ")")


def _stat(vals: list[float]) -> str:
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.3f} +- {sd:.3f}"


class _Inline:
    """A stand-in for the process pool that runs each call at once (quick mode, --jobs 1)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Any, *a: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_result(fn(*a))
        return fut


def plot_example(e8: dict[str, Any], path: Path, nfft: int = 2**17) -> None:
    """FLAMO's example before / FLAMO / ours: a slice of ``|H|^2`` in dB and the distribution of
    ``|H|^2`` in dB over all bins (a flatter response has a narrower distribution)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [("before", "before"), ("FLAMO 0.2.20", "FLAMO"), ("ours (density-matched)", MATCHED)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    f_hz = np.arange(nfft // 2 + 1) * 48000 / nfft
    sl = (f_hz >= 1000) & (f_hz <= 1050)
    for label, key in rows:
        st = e8[key]
        h = response(e8["delays"], st["A"], st["B"], st["C"], nfft)
        p_db = 10 * np.log10(np.maximum(h.abs().square().numpy(), 1e-30))
        p_db -= 10 * np.log10(np.mean(10 ** (p_db / 10)))  # 0 dB = the mean power
        fl = st["flatness"][str(nfft)]
        ax1.plot(f_hz[sl], p_db[sl], lw=0.8, label=f"{label}: flatness {fl:.3f}")
        ax2.hist(p_db, bins=200, range=(-60, 20), histtype="step", density=True,
                 label=f"{label} (sparsity {st['sparsity']:.2f})")
    ax1.set(xlabel="frequency (Hz)", ylabel="|H|^2 (dB re mean power)",
            title="FLAMO's e8 example, 1000-1050 Hz")
    ax2.set(xlabel="|H|^2 (dB re mean power), all bins", ylabel="density",
            title="distribution over the 2^17-point grid")
    ax1.legend(fontsize=7, loc="lower left")
    ax2.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=10,
                   help="first seed of our networks (0-9 were the development seeds)")
    p.add_argument("--seeds", type=int, default=10, help="number of paired seeds")
    p.add_argument("--jobs", type=int, default=2, help="processes (one thread each)")
    p.add_argument("--no-flamo", action="store_true", help="skip FLAMO's own example")
    p.add_argument("--out", type=Path, default=None, help="write DIR/colourless.json")
    p.add_argument("--plot", type=Path, nargs=2, metavar=("JSON", "PNG"), default=None,
                   help="only plot FLAMO's example from a saved colourless.json, then exit")
    args = p.parse_args()
    if args.plot is not None:
        saved = json.loads(args.plot[0].read_text())
        if not saved.get("flamo_example"):
            print(f"{args.plot[0]}: no FLAMO example in it (run with flamo installed)")
            return 2
        plot_example(saved["flamo_example"], args.plot[1])
        print(f"wrote {args.plot[1]}")
        return 0
    seeds = list(range(args.seed, args.seed + (1 if args.quick else args.seeds)))
    have_flamo = flamo_available() and not args.no_flamo
    names = ["FLAMO", MATCHED, *OURS]
    print(f"settings: seeds={seeds} (N=8, fs=48000) quick={args.quick} jobs={args.jobs} "
          f"steps={STEPS} n_freqs={N_FREQS} lr={LR} grids={GRIDS} torch={torch.__version__} "
          f"flamo={'yes' if have_flamo else 'no'}")
    if not have_flamo:
        print("FLAMO's own example: SKIPPED (flamo is not importable here; run this script with "
              ".venv-bench/bin/python for FLAMO's own run on its own example)")

    start = flamo_e8_start() if have_flamo else None
    t_all = time.perf_counter()
    pool: Any = _Inline() if args.quick or args.jobs <= 1 else ProcessPoolExecutor(args.jobs)
    with pool as ex:
        fut_fl: Future[dict[str, Any]] | None = None
        fut_e8: dict[str, Future[dict[str, Any]]] = {}
        if start is not None:
            fut_fl = ex.submit(run_flamo_e8, args.quick)
            fut_e8 = {n: ex.submit(ours_e8, start, w, args.quick) for n, w in OURS.items()}
        rows = [f.result() for f in [ex.submit(one_seed, s, args.quick) for s in seeds]]
        e8: dict[str, Any] | None = None
        if fut_fl is not None:
            fl = fut_fl.result()
            d = E8["delays"]
            e8 = {"delays": d, "comb": {str(n): comb(d, n) for n in GRIDS},
                  "before": measure(d, fl["before"]),
                  "FLAMO": {**measure(d, fl["after"]),
                            **{k: v for k, v in fl.items() if k not in ("before", "after")}},
                  **{n: measure(d, f.result()) for n, f in fut_e8.items()}}
            assert start is not None
            e8[MATCHED] = measure(d, ex.submit(ours_e8, start, 0.0, args.quick,
                                               e8["FLAMO"]["sparsity"]).result())
    print(f"wall time {time.perf_counter() - t_all:.0f} s")

    cols = "flatness 2^17 | 96000"
    if e8 is not None:
        fl = e8["FLAMO"]
        print(f"FLAMO's own example (e8_colorless_fdn, flamo {fl['flamo_version']}), delays "
              f"{e8['delays']}, {cols}:")
        print(f"  before: {_fmt(e8['before'])}")
        print(f"  FLAMO (its Trainer, {fl['epochs']} epochs, {fl['steps']} steps, CPU 1 thread): "
              f"{_fmt(fl)}; FLAMO's own output |H| at 96000: "
              f"{fl['flamo_own_output_flatness_after']:.3f}")
        for n in (MATCHED, *OURS):
            print(f"  {n}, same start: {_fmt(e8[n])}")
        print(f"  ideal comb: {e8['comb'][str(GRIDS[0])]:.3f} | {e8['comb'][str(GRIDS[1])]:.3f}")
    print(f"paired seeds of our networks, {cols}:")
    for r in rows:
        print(f"  seed {r['seed']} delays {r['delays']}: before {_fmt(r['before'])}; "
              + "; ".join(f"{n}: {_fmt(r[n])}" for n in names)
              + f"; comb {r['comb'][str(GRIDS[0])]:.3f} | {r['comb'][str(GRIDS[1])]:.3f}")

    if e8 is not None:
        for n in names:
            f, b = e8[n]["flatness"], e8["before"]["flatness"]
            print(f"FIGURE colourless_flamo_example[{n}] flatness 2^17: "
                  f"{b[str(GRIDS[0])]:.3f} -> {f[str(GRIDS[0])]:.3f}, 96000: "
                  f"{b[str(GRIDS[1])]:.3f} -> {f[str(GRIDS[1])]:.3f}, sparsity "
                  f"{e8['before']['sparsity']:.2f} -> {e8[n]['sparsity']:.2f} (issue quotes "
                  f"{FLAMO_ISSUE[0]} -> {FLAMO_ISSUE[1]} for FLAMO; ideal comb "
                  f"{e8['comb'][str(GRIDS[0])]:.3f} | {e8['comb'][str(GRIDS[1])]:.3f})")
    for n in names:
        for grid in map(str, GRIDS):
            print(f"FIGURE colourless_flatness[{n}] grid={grid} before="
                  f"{_stat([r['before']['flatness'][grid] for r in rows])} after="
                  f"{_stat([r[n]['flatness'][grid] for r in rows])} sparsity="
                  f"{_stat([r[n]['sparsity'] for r in rows])} over {len(rows)} seeds")
    for n in (MATCHED, *OURS):
        ratios = " ".join(f"{g}: {mean_gain_ratio(rows, n, g):.2f}x" for g in map(str, GRIDS))
        ex_txt = "" if e8 is None else " | FLAMO's example gain ratio " + " ".join(
            f"{g}: {gains(e8, n, g)[0] / gains(e8, n, g)[1]:.2f}x" for g in map(str, GRIDS)) + (
            ", flatter and no sparser" if dominates(e8, n) else ", NOT (flatter and no sparser)")
        print(f"FIGURE colourless_vs_flamo[{n}] mean gain over seeds / FLAMO's {ratios}; flatter "
              f"and no sparser than FLAMO on {sum(dominates(r, n) for r in rows)}/{len(rows)} "
              f"seeds{ex_txt}")
    seeds_ok = verdict(None, rows, MATCHED)
    if args.quick:
        text = "not judged (quick)"
    elif e8 is None:
        text = ("not judged (FLAMO's own example not run); seeds part "
                + ("met" if seeds_ok else "NOT MET"))
    else:
        text = "MET" if verdict(e8, rows, MATCHED) else "NOT MET"
    print(f"FIGURE colourless_verdict clearly beyond FLAMO's recipe ({MATCHED}, criterion of the "
          f"docstring): {text}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "colourless.json").write_text(json.dumps(
            {"settings": vars(args) | {"out": str(args.out)}, "flamo_example": e8,
             "seeds": rows, "verdict": text}, indent=1))
    if args.quick:
        return 0
    return 0 if (seeds_ok if e8 is None else verdict(e8, rows, MATCHED)) else 1


if __name__ == "__main__":
    sys.exit(main())
