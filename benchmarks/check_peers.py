"""Smoke-check the bench venv: import every peer and run one tiny operation of each.

Prints ``OK`` or ``FAIL`` per peer (with its version and what was run) and exits 1 if any failed.
Run by ``setup_bench_venv.sh`` after the install; run it by hand with
``.venv-bench/bin/python benchmarks/check_peers.py``.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import IMPORTERS, peer_version

SR = 44100


class PeerMissing(ImportError):
    pass


def _need(name: str):  # type: ignore[no-untyped-def]
    mod = IMPORTERS[name]()
    if mod is None:
        raise PeerMissing(f"{name} did not import (see the line above)")
    return mod


def _finite_grad(*tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.grad is None or not torch.isfinite(t.grad).all():
            raise AssertionError("gradient missing or not finite")


def check_flamo() -> str:
    flamo = _need("flamo")
    dsp, system, loss = flamo.processor.dsp, flamo.processor.system, flamo.optimize.loss
    n, nfft, dev = 4, 2**12, "cpu"  # (FLAMO's Shell requires an explicit device)
    delay_samples = torch.tensor([149.0, 211.0, 263.0, 293.0])
    input_gain = dsp.Gain(size=(n, 1), nfft=nfft, requires_grad=True, device=dev)
    output_gain = dsp.Gain(size=(1, n), nfft=nfft, requires_grad=True, device=dev)
    delays = dsp.parallelDelay(
        size=(n,), max_len=400, nfft=nfft, isint=True, requires_grad=False, device=dev
    )
    delays.assign_value(delays.sample2s(delay_samples))
    mixing = dsp.Matrix(
        size=(n, n), nfft=nfft, matrix_type="orthogonal", requires_grad=True, device=dev
    )
    fdn = system.Series(
        OrderedDict(
            {
                "input_gain": input_gain,
                "feedback_loop": system.Recursion(fF=delays, fB=mixing),
                "output_gain": output_gain,
            }
        )
    )
    model = system.Shell(
        core=fdn,
        input_layer=dsp.FFT(nfft),
        output_layer=dsp.Transform(lambda x: torch.abs(x), device=dev),
    )
    h = model.get_freq_response(identity=False)
    if not torch.isfinite(h).all():
        raise AssertionError("FDN frequency response not finite")
    # the colourless-FDN loss on the magnitude response, with its gradient
    x = torch.zeros(1, nfft, 1)
    x[:, 0] = 1.0
    y = model(x)
    target = torch.ones(1, nfft // 2 + 1, 1)
    value = loss.mse_loss(nfft=nfft)(y, target)
    value.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    if not grads or any(g is None or not torch.isfinite(g).all() for g in grads):
        raise AssertionError("FDN loss gradient missing or not finite")
    # octave-band EDC loss (pyfar filterbank)
    pred = (torch.randn(1, 4800, 1) * torch.exp(-torch.arange(4800.0) / 800)[None, :, None])
    pred.requires_grad_(True)
    true = torch.randn(1, 4800, 1) * torch.exp(-torch.arange(4800.0) / 1200)[None, :, None]
    edc = loss.edc_loss(sample_rate=48000)(pred, true)
    edc.backward()
    _finite_grad(pred)
    return f"FDN N={n} freq response {tuple(h.shape)}, mse + EDC loss backward"


def check_auraloss() -> str:
    auraloss = _need("auraloss")
    x = torch.randn(1, 1, 8192, requires_grad=True)
    y = torch.randn(1, 1, 8192)
    value = auraloss.freq.MultiResolutionSTFTLoss()(x, y)
    value.backward()
    _finite_grad(x)
    return f"MultiResolutionSTFTLoss = {value.item():.3f}, backward"


def check_dasp() -> str:
    dasp = _need("dasp_pytorch")
    x = torch.randn(1, 1, 8192) * 0.5
    p = {k: torch.tensor([v]) for k, v in
         dict(threshold_db=-20.0, ratio=4.0, attack_ms=5.0, release_ms=50.0, knee_db=6.0,
              makeup_gain_db=0.0).items()}
    for k in ("threshold_db", "ratio", "attack_ms"):  # (release_ms is unused by dasp 0.0.1)
        p[k].requires_grad_(True)
    y = dasp.functional.compressor(x, SR, **p)
    y.abs().mean().backward()
    _finite_grad(p["threshold_db"], p["ratio"], p["attack_ms"])
    return f"functional.compressor {tuple(y.shape)}, backward"


def check_torchcomp() -> str:
    torchcomp = _need("torchcomp")
    x = torch.randn(2, 8192)
    comp_thresh = torch.tensor(-20.0, requires_grad=True)
    x_rms = torchcomp.avg(x.square(), 0.01).clamp_min(1e-8)
    at = torchcomp.ms2coef(torch.tensor(5.0), SR)
    rt = torchcomp.ms2coef(torch.tensor(50.0), SR)
    g = torchcomp.compexp_gain(x_rms, comp_thresh, 4.0, -60.0, 0.5, at, rt)
    (x * g).abs().mean().backward()
    _finite_grad(comp_thresh)
    return f"compexp_gain {tuple(g.shape)}, backward"


def check_torchlpc() -> str:
    torchlpc = _need("torchlpc")
    x = torch.randn(2, 4096, requires_grad=True)
    a = torch.tensor([-1.6, 0.81]).expand(2, 4096, 2).clone().requires_grad_(True)
    y = torchlpc.sample_wise_lpc(x, a)
    y.square().mean().backward()
    _finite_grad(x, a)
    if not getattr(torchlpc, "EXTENSION_LOADED", False):
        # it would still run (numba fallback), but the benchmark rows are about the C++ build
        raise AssertionError("torchlpc's C++ extension did not load (rebuild, no isolation)")
    return f"sample_wise_lpc order 2 {tuple(y.shape)}, backward (C++ extension loaded)"


def check_torchsynth() -> str:
    torchsynth = _need("torchsynth")
    cfg = torchsynth.config.SynthConfig(
        batch_size=2, sample_rate=SR, buffer_size_seconds=0.1, reproducible=False
    )
    voice = torchsynth.synth.Voice(cfg)  # loads the "default" nebula (pkg_resources path)
    audio, params, _ = voice()
    if audio.shape != (2, int(0.1 * SR)) or not torch.isfinite(audio).all():
        raise AssertionError(f"unexpected Voice output {tuple(audio.shape)}")
    return f"Voice batch 2 x 0.1 s -> {tuple(audio.shape)}, {params.shape[1]} params"


def check_pedalboard() -> str:
    pedalboard = _need("pedalboard")
    x = (np.random.default_rng(0).standard_normal((1, 8192)) * 0.5).astype(np.float32)
    y = pedalboard.Compressor(threshold_db=-20, ratio=4, attack_ms=5, release_ms=50)(x, SR)
    if y.shape != x.shape or not np.isfinite(y).all():
        raise AssertionError("unexpected Compressor output")
    return f"Compressor {y.shape}"


CHECKS: dict[str, Callable[[], str]] = {
    "flamo": check_flamo,
    "auraloss": check_auraloss,
    "dasp_pytorch": check_dasp,
    "torchcomp": check_torchcomp,
    "torchlpc": check_torchlpc,
    "torchsynth": check_torchsynth,
    "pedalboard": check_pedalboard,
}


def main() -> int:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    print(f"python {sys.version.split()[0]}, torch {torch.__version__} (cuda={torch.version.cuda})")
    failed = []
    for name, check in CHECKS.items():
        t0 = time.perf_counter()
        version = peer_version(name) or "not installed"
        try:
            what = check()
        except Exception as exc:
            failed.append(name)
            print(f"FAIL {name:13s} {version:10s} {type(exc).__name__}: {exc}")
            if not isinstance(exc, PeerMissing):
                traceback.print_exc(limit=4, file=sys.stderr)
            continue
        print(f"OK   {name:13s} {version:10s} {what}  ({time.perf_counter() - t0:.1f} s)")
    try:
        import diffdsp

        print(f"OK   {'diffdsp':13s} {getattr(diffdsp, '__version__', '?'):10s} {diffdsp.__file__}")
    except Exception as exc:
        failed.append("diffdsp")
        print(f"FAIL diffdsp: {type(exc).__name__}: {exc}")
    n_ok = len(CHECKS) + 1 - len(failed)
    print(f"{n_ok} OK, {len(failed)} FAIL" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
