"""On a GPU: our recursions, FDN and losses on CUDA against the CUDA paths of the peers and our CPU.

The peers' GPU paths: torchlpc's and torchcomp's numba-CUDA recursion kernels, auraloss's
MR-STFT (torch.stft). Our CUDA paths: the chunked scan of :mod:`diffdsp.functional.iir` (the
numba kernels are CPU-only), the block recursion of ``fdn_time``, the fused STFT-loss terms.
"Ours CPU" rows time the same call on the host's cores (numba kernels, ``--threads``), so the
ratio says what moving to the GPU buys. Shapes: batch 8 (and 64) x 5 s at 44.1 kHz, float32;
fwd+bwd with gradients to the signal and every coefficient, loss ``y.square().mean()``.

    python benchmarks/gpu.py --threads 16            # on a CUDA machine (peers where installed)
    .venv/bin/python benchmarks/gpu.py --quick       # smoke test: tiny shapes, on the CPU here
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row, fwd_bwd, parse_args, report, time_ms, try_import

from diffdsp.functional import dynamics, fdn, iir
from diffdsp.losses.spectral import MultiResolutionSTFTLoss

SR = 44100

# numba-cuda (the peers' GPU kernels) registers an overload of np.row_stack, which numpy 2.4
# removed; where it is missing, the alias it always was lets numba-cuda import. Benchmark only.
if not hasattr(np, "row_stack"):
    setattr(np, "row_stack", np.vstack)  # noqa: B010 (ruff's NPY201 rewrites the plain form)


def peer_time(fn: Callable[[], None], repeats: int) -> tuple[float | None, str]:
    """A peer's median time, or None and why it failed (reported, never hidden)."""
    try:
        return time_ms(fn, repeats=repeats), ""
    except Exception as exc:  # peers fail in many ways on other versions
        return None, f"peer failed: {type(exc).__name__}: {str(exc)[:80]}"


def _allpole_coefficients(order: int, batch: int) -> torch.Tensor:
    # conjugate pole pairs of radius 0.95 spread over (0.2, 2.8) rad (as benchmarks/filters.py)
    angles = np.linspace(0.2, 2.8, order // 2)
    poles = np.concatenate([0.95 * np.exp(1j * angles), 0.95 * np.exp(-1j * angles)])
    a = torch.tensor(np.real(np.poly(poles))[1:], dtype=torch.float32)
    return a.repeat(batch, 1)


Maker = Callable[[torch.device], tuple[Callable[[], torch.Tensor], list[torch.Tensor]]]


def leaf(t: torch.Tensor, device: torch.device, grad: bool = True) -> torch.Tensor:
    """A fresh leaf copy on ``device`` (never the caller's tensor, which stays grad-free)."""
    return t.detach().to(device).clone().requires_grad_(grad)


def batch_rows(batch: int, n: int, dev: torch.device, args: Any, first: bool) -> list[Row]:
    """The rows of one batch size (CPU comparisons only for the ``first``)."""
    cpu = torch.device("cpu")
    r, where, shape = args.repeats, dev.type, f"({batch}, {n})"
    lpc, tcomp = try_import("torchlpc"), try_import("torchcomp")
    aura = try_import("auraloss.freq")
    on_gpu = dev.type == "cuda"
    x_cpu = torch.randn(batch, n, generator=torch.Generator().manual_seed(0)) * 0.1
    rows: list[Row] = []

    def timed(make: Maker, device: torch.device) -> float:
        loss, params = make(device)
        return time_ms(fwd_bwd(loss, params), repeats=r)

    def versus_cpu(name: str, make: Maker) -> None:
        if first:
            rows.append(Row(f"{name} fwd+bwd, ours {where}", timed(make, dev), "ours CPU",
                            timed(make, cpu), ""))

    # ------------------------------------------------------------- all-pole, time-invariant
    for order in (2, 16):
        a_cpu = _allpole_coefficients(order, batch)

        def make_ap(device: torch.device, a_cpu: torch.Tensor = a_cpu
                    ) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
            x, a = leaf(x_cpu, device), leaf(a_cpu, device)
            return (lambda: iir.allpole(x, a).square().mean()), [x, a]

        peer_ms, note = None, ""
        if lpc is not None and on_gpu:
            x, a = leaf(x_cpu, dev), leaf(a_cpu, dev)

            def peer(x: torch.Tensor = x, a: torch.Tensor = a) -> torch.Tensor:
                return lpc.sample_wise_lpc(x, a[:, None, :].expand(-1, n, -1))

            peer_ms, note = peer_time(fwd_bwd(lambda peer=peer: peer().square().mean(), [x, a]),
                                      r)
            if peer_ms is not None:
                with torch.no_grad():
                    diff = float((iir.allpole(x, a) - peer()).abs().max())
                note = f"max |ours - torchlpc| {diff:.1e}"
        rows.append(Row(f"all-pole order {order} {shape} fwd+bwd, {where}", timed(make_ap, dev),
                        "torchlpc", peer_ms, "", note))
        versus_cpu(f"all-pole order {order} {shape}", make_ap)

    # ------------------------------------------------------------- 6 biquads (sosfilt)
    gs = torch.Generator().manual_seed(1)
    radius = 0.5 + 0.45 * torch.rand(batch, 6, generator=gs)
    angle = torch.pi * torch.rand(batch, 6, generator=gs)
    sos_cpu = torch.cat([torch.randn(batch, 6, 3, generator=gs), torch.stack(
        [torch.ones_like(radius), -2 * radius * torch.cos(angle), radius**2], -1)], -1)

    def make_sos(device: torch.device) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
        x, s = leaf(x_cpu, device), leaf(sos_cpu, device)
        return (lambda: iir.sosfilt(s, x).square().mean()), [x, s]

    versus_cpu(f"sosfilt 6 sections {shape}", make_sos)

    # ------------------------------------------------------------- FDN N = 8
    gf = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=gf))
    gains = torch.randn(2, 8, generator=gf)
    length = 4410 if args.quick else 1 << 18
    delays = fdn.coprime_delays(8, low=500, high=2000, seed=0)

    def make_fdn(device: torch.device) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
        imp = torch.zeros(batch, length, device=device)
        imp[:, 0] = 1.0
        mat, b, c = leaf(0.97 * q, device), leaf(gains[0], device), leaf(gains[1], device)
        return (lambda: fdn.fdn_time(imp, delay_samples=delays, feedback_matrix=mat,
                                     input_gains=b, output_gains=c).square().mean(), [mat, b, c])

    versus_cpu(f"FDN N=8 impulse response ({batch}, {length})", make_fdn)

    # ------------------------------------------------------------- compressor
    settings = {"threshold_db": -24.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}

    def make_comp(device: torch.device) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
        x = leaf(2 * x_cpu, device)
        p = {k: torch.full((batch,), v, device=device, requires_grad=True)
             for k, v in settings.items()}
        return (lambda: dynamics.compressor(x, sample_rate=SR, **p).square().mean(),
                [x, *p.values()])

    peer_ms, note = None, ""
    if tcomp is not None and on_gpu:
        x = leaf(2 * x_cpu, dev)
        full = {k: torch.full((batch,), v, device=dev) for k, v in {
            "thr": -24.0, "ratio": 4.0, "at": float(tcomp.ms2coef(torch.tensor(5.0), SR)),
            "rt": float(tcomp.ms2coef(torch.tensor(100.0), SR)), "e_thr": -120.0,
            "e_ratio": 0.999}.items()}
        learn = [full[k].requires_grad_(True) for k in ("thr", "ratio", "at", "rt")]

        def peer_comp() -> torch.Tensor:
            gain = tcomp.compexp_gain(x.abs().clamp_min(1e-7), full["thr"], full["ratio"],
                                      full["e_thr"], full["e_ratio"], full["at"], full["rt"])
            return (x * gain).square().mean()

        peer_ms, note = peer_time(fwd_bwd(peer_comp, [x, *learn]), r)
    rows.append(Row(f"compressor {shape} fwd+bwd, {where}", timed(make_comp, dev), "torchcomp",
                    peer_ms, "", note))
    versus_cpu(f"compressor {shape}", make_comp)

    # ------------------------------------------------------------- MR-STFT (auraloss default)
    y_cpu = torch.roll(x_cpu, 7, -1)[:, None]

    def make_mr(device: torch.device) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
        loss = MultiResolutionSTFTLoss.auraloss_default().to(device)
        x, y = leaf(x_cpu[:, None], device), y_cpu.to(device)
        return (lambda: loss(x, y)), [x]

    peer_ms = None
    if aura is not None:
        a_loss = aura.MultiResolutionSTFTLoss().to(dev)
        xa, ya = leaf(x_cpu[:, None], dev), y_cpu.to(dev)
        peer_ms = time_ms(fwd_bwd(lambda: a_loss(xa, ya), [xa]), repeats=r)
    rows.append(Row(f"MR-STFT default {shape} fwd+bwd, {where}", timed(make_mr, dev), "auraloss",
                    peer_ms, ""))
    versus_cpu(f"MR-STFT default {shape}", make_mr)
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cpu" and not args.quick:
        # nothing to compare (and benchmarks/results/gpu.json, measured on a GPU, stays)
        print("gpu: no CUDA device here; this benchmark runs on a GPU machine (--quick: smoke)")
        return
    batches, n = ((2,), 4410) if args.quick else ((8, 64), int(5.0 * SR))
    rows: list[Row] = []
    for i, batch in enumerate(batches):
        rows += batch_rows(batch, n, dev, args, first=i == 0)
    report("gpu", rows, args)


if __name__ == "__main__":
    main()
