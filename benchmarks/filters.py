"""Filters side by side: parametric EQ vs dasp-pytorch, exact recursions vs torchlpc.

Shapes (issue #3): batch 8, 5 s mono at 44.1 kHz = (8, 220500), float32, ``--threads`` (2).
Gradients flow to the signal and to every coefficient / design parameter; the loss is
``y.square().mean()``.

Rows:

* 6-band parametric EQ (low shelf, 4 peaking, high shelf; DeepAFx-ST's EQ) with the same physical
  parameters: ours ``ParametricEQ(method="exact")`` (recursive, fused second-order kernels) and
  ``method="freq"`` (frequency sampling padded for a linear convolution) against
  ``dasp_pytorch.functional.parametric_eq`` (frequency sampling at 2T, IIR tails alias). Goal:
  >= 2.5x forward+backward.
* The same 6 exact biquads through torchlpc (``sample_wise_lpc`` per section on the coefficient
  tensor expanded over time, FIR part in torch) against our ``sosfilt``. Goal: >= 1x.
* Time-invariant all-pole filters of order 2 and 16 (torchlpc needs ``(B, T, K)`` coefficients:
  the learnable ``(B, K)`` tensor is expanded) and a time-varying order-2 filter. Goal: >= 1x.

The outputs of both sides are compared (max abs difference in the note).

    .venv-bench/bin/python benchmarks/filters.py     # full shapes, side by side
    .venv/bin/python benchmarks/filters.py --quick   # smoke test (tiny shapes, ours only)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row, parse_args, report, time_ms
from benchmarks._peers import import_dasp, import_torchlpc

from diffdsp.effects.eq import ParametricEQ
from diffdsp.functional import iir
from diffdsp.functional.filters import parametric_eq_sos

SR = 44100


def step(loss: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Callable[[], None]:
    def run() -> None:
        for p in params:
            p.grad = None
        loss().backward()

    return run


def no_grad(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            fn()

    return run


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def main() -> None:
    args = parse_args(__doc__ or "")
    batch, n = (2, 4410) if args.quick else (8, int(5.0 * SR))
    r = args.repeats
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, n, generator=g) * 0.1
    xg = x.clone().requires_grad_(True)
    rows: list[Row] = []
    dasp = import_dasp()
    lpc = import_torchlpc()
    shape = f"({batch}, 1, {n})"

    # ----------------------------------------------------------------- parametric EQ
    eq_exact = ParametricEQ(SR, method="exact")
    eq_freq = ParametricEQ(SR, method="freq")
    u = torch.rand(batch, eq_exact.n_params, generator=g)
    phys = {k: v.detach().clone().requires_grad_(True) for k, v in eq_exact.denormalise(u).items()}
    plist = list(phys.values())

    def ours_eq(eq: ParametricEQ) -> torch.Tensor:
        return eq(xg, **phys)

    dasp_names = {"low_shelf": "low_shelf", "band1": "band0", "band2": "band1",
                  "band3": "band2", "band4": "band3", "high_shelf": "high_shelf"}

    def dasp_eq() -> torch.Tensor:
        assert dasp is not None
        kw = {}
        for ours_b, their_b in dasp_names.items():
            kw[f"{their_b}_gain_db"] = phys[f"{ours_b}_gain_db"]
            kw[f"{their_b}_cutoff_freq"] = phys[f"{ours_b}_cutoff_hz"]
            kw[f"{their_b}_q_factor"] = phys[f"{ours_b}_q"]
        return dasp.functional.parametric_eq(xg, SR, **kw)

    fb = {m: time_ms(step(lambda m=m: ours_eq(m).square().mean(), [xg, *plist]), repeats=r)
          for m in (eq_exact, eq_freq)}
    fw = {m: time_ms(no_grad(lambda m=m: ours_eq(m)), repeats=r) for m in (eq_exact, eq_freq)}
    peer_fb = peer_fw = None
    note_exact = note_freq = ""
    if dasp is not None:
        peer_fb = time_ms(step(lambda: dasp_eq().square().mean(), [xg, *plist]), repeats=r)
        peer_fw = time_ms(no_grad(dasp_eq), repeats=r)
        with torch.no_grad():
            y_d, y_e, y_f = dasp_eq(), ours_eq(eq_exact), ours_eq(eq_freq)
        note_exact = f"max |ours - dasp| {maxdiff(y_e, y_d):.1e} (dasp pads to 2T: tails alias)"
        note_freq = f"max |freq - exact| {maxdiff(y_f, y_e):.1e}"
    rows.append(Row(f"parametric EQ 6 bands exact fwd+bwd {shape}", fb[eq_exact], "dasp",
                    peer_fb, ">= 2.5x", note_exact))
    rows.append(Row(f"parametric EQ 6 bands exact fwd {shape}", fw[eq_exact], "dasp", peer_fw, ""))
    rows.append(Row(f"parametric EQ 6 bands freq-sampling fwd+bwd {shape}", fb[eq_freq], "dasp",
                    peer_fb, ">= 2.5x", note_freq))
    rows.append(Row(f"parametric EQ 6 bands freq-sampling fwd {shape}", fw[eq_freq], "dasp",
                    peer_fw, ""))

    # ----------------------------------------------------------------- exact biquads vs torchlpc
    x2 = x[:, 0].clone().requires_grad_(True)
    sos = parametric_eq_sos(eq_exact.controls(x, u), sample_rate=SR).detach()
    sos_p = sos.clone().requires_grad_(True)

    def ours_sos() -> torch.Tensor:
        return iir.sosfilt(sos_p, x2)

    def lpc_sos() -> torch.Tensor:
        assert lpc is not None
        y = x2
        for s in range(sos_p.shape[1]):
            sec = sos_p[:, s]
            b, a = sec[:, :3] / sec[:, 3:4], sec[:, 4:] / sec[:, 3:4]
            w = b[:, :1] * y
            w = w + b[:, 1:2] * torch.nn.functional.pad(y, (1, 0))[:, :-1]
            w = w + b[:, 2:3] * torch.nn.functional.pad(y, (2, 0))[:, :-2]
            y = lpc.sample_wise_lpc(w, a[:, None, :].expand(-1, n, -1))
        return y

    def pair(name: str, ours: Callable[[], torch.Tensor], peer: Callable[[], torch.Tensor] | None,
             params: list[torch.Tensor], goal: str, note: str = "") -> None:
        o_fb = time_ms(step(lambda: ours().square().mean(), params), repeats=r)
        o_fw = time_ms(no_grad(ours), repeats=r)
        p_fb = p_fw = None
        if peer is not None:
            p_fb = time_ms(step(lambda: peer().square().mean(), params), repeats=r)
            p_fw = time_ms(no_grad(peer), repeats=r)
            with torch.no_grad():
                note = f"max |ours - torchlpc| {maxdiff(ours(), peer()):.1e}" + (
                    f"; {note}" if note else "")
        rows.append(Row(f"{name} fwd+bwd", o_fb, "torchlpc", p_fb, goal, note))
        rows.append(Row(f"{name} fwd", o_fw, "torchlpc", p_fw, ""))

    pair(f"6 exact biquads (EQ sections) ({batch}, {n})", ours_sos,
         lpc_sos if lpc is not None else None, [x2, sos_p], ">= 1x")

    # ----------------------------------------------------------------- all-pole filters
    for order in (2, 16):
        # stable denominator: conjugate pole pairs of radius 0.95 spread over (0.2, 2.8) rad
        angles = np.linspace(0.2, 2.8, order // 2)
        poles = np.concatenate([0.95 * np.exp(1j * angles), 0.95 * np.exp(-1j * angles)])
        a_np = torch.tensor(np.real(np.poly(poles)), dtype=torch.float32)
        a_ti = a_np[1:].repeat(batch, 1).clone().requires_grad_(True)

        def ours_ap(a_ti: torch.Tensor = a_ti) -> torch.Tensor:
            return iir.allpole(x2, a_ti)

        def lpc_ap(a_ti: torch.Tensor = a_ti) -> torch.Tensor:
            assert lpc is not None
            return lpc.sample_wise_lpc(x2, a_ti[:, None, :].expand(-1, n, -1))

        pair(f"all-pole order {order}, time-invariant ({batch}, {n})", ours_ap,
             lpc_ap if lpc is not None else None, [x2, a_ti], ">= 1x",
             "torchlpc gets the (B, K) coefficients expanded to (B, T, K)")

    t = torch.linspace(0, 1, n)
    radius = 0.9 + 0.08 * torch.sin(2 * torch.pi * 3 * t)
    theta = 0.3 + 0.2 * t
    a_tv = torch.stack([-2 * radius * torch.cos(theta), radius**2], -1)
    a_tv = a_tv.expand(batch, n, 2).clone().requires_grad_(True)
    pair(f"all-pole order 2, time-varying ({batch}, {n})", lambda: iir.allpole(x2, a_tv),
         (lambda: lpc.sample_wise_lpc(x2, a_tv)) if lpc is not None else None, [x2, a_tv],
         ">= 1x")
    report("filters", rows, args)


if __name__ == "__main__":
    main()
