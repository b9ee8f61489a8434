"""Synth rendering throughput: our `voice` patch vs torchsynth `Voice`, and patch + MR-STFT grads.

Rows (44.1 kHz, float32, 2 threads):

- render a batch of 128 x 4 s of the ``voice`` preset (torchsynth Voice's structure: LFO and pitch
  ADSR modulating two VCOs, noise, 3-input mixer, VCA with an amp ADSR), random parameters, no
  gradient; side by side with torchsynth 1.0.2 ``Voice`` (same batch and length). Throughput in
  seconds of audio per second is in the note; goal >= 2x under the same allocator settings (run
  both sides in one process, so they share ``MALLOC_MMAP_MAX_`` etc.).
- forward+backward of the ``subtractive`` patch (with its time-varying resonant filter) + our
  MR-STFT loss, batch 8 x 4 s (no peer: torchsynth is not differentiable end to end).

Times are medians of process CPU time (all threads), robust to other load on a shared machine;
the note also gives wall-clock throughput. The two sides alternate call by call, so that both see
the same machine load. Run it once as is and once with ``MALLOC_MMAP_MAX_=0`` (torchsynth's
many temporaries gain most from keeping freed memory in the heap).

    .venv-bench/bin/python benchmarks/synth.py         # with torchsynth
    .venv/bin/python benchmarks/synth.py --quick       # smoke test, ours only if peers absent
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row, parse_args, report

from diffdsp.losses.spectral import multi_resolution_stft_loss
from diffdsp.synth.presets import get_preset


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median process CPU time (all threads) of ``fn()`` in ms, after one warm-up call."""
    return cpu_wall_ms(fn, repeats)[0]


def cpu_wall_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Medians of process CPU time (all threads) and of wall time of ``fn()`` in ms."""
    fn()
    cpu, wall = [], []
    for _ in range(max(1, repeats)):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append((time.process_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return statistics.median(cpu), statistics.median(wall)


def _torchsynth_voice(batch: int, seconds: float, sr: int) -> Callable[[], object] | None:
    try:
        from benchmarks._peers import import_torchsynth

        ts = import_torchsynth()
    except Exception as exc:  # peers fail in many ways
        print(f"[torchsynth unavailable: {type(exc).__name__}: {exc}]", file=sys.stderr)
        return None
    if ts is None:
        return None
    cfg = ts.config.SynthConfig(batch_size=batch, sample_rate=sr, buffer_size_seconds=seconds,
                                reproducible=False)
    voice = ts.synth.Voice(cfg)

    def run() -> object:
        with torch.no_grad():
            return voice()

    return run


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sr = 44100
    batch, seconds = (2, 0.25) if args.quick else (128, 4.0)
    gbatch = 2 if args.quick else 8
    n = int(seconds * sr)
    voice = get_preset("voice", sr)
    u = voice.sample(batch, generator=torch.Generator().manual_seed(0))

    def ours() -> object:
        with torch.no_grad():
            return voice(u, n_samples=n, generator=torch.Generator().manual_seed(1))

    rows: list[Row] = []
    audio_s = batch * seconds
    peer = _torchsynth_voice(batch, seconds, sr)
    # interleave the two sides so that both see the same machine load
    ours_cpu, ours_wall, peer_cpu, peer_wall = [], [], [], []
    for _ in range(max(1, args.repeats)):
        c, w = cpu_wall_ms(ours, 1)
        ours_cpu.append(c)
        ours_wall.append(w)
        if peer is not None:
            c, w = cpu_wall_ms(peer, 1)
            peer_cpu.append(c)
            peer_wall.append(w)
    ours_ms = statistics.median(ours_cpu)
    peer_ms = statistics.median(peer_cpu) if peer_cpu else None
    ow = statistics.median(ours_wall)
    note = (f"ours {audio_s / (ours_ms / 1e3):.0f} s/s per CPU-s, {audio_s / (ow / 1e3):.0f} s/s "
            f"wall")
    if peer_ms is not None:
        pw = statistics.median(peer_wall)
        note += (f"; torchsynth {audio_s / (peer_ms / 1e3):.0f} s/s per CPU-s, "
                 f"{audio_s / (pw / 1e3):.0f} s/s wall (wall ratio {pw / ow:.2f})")
    rows.append(Row(f"voice render ({batch}, {n}) no grad", ours_ms, "torchsynth Voice",
                    peer_ms, ">= 2x", note))

    sub = get_preset("subtractive", sr)
    ug = sub.sample(gbatch, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    with torch.no_grad():
        y_t = sub(sub.sample(gbatch, generator=torch.Generator().manual_seed(3)), n_samples=n)
    assert isinstance(y_t, torch.Tensor)

    def step() -> None:
        ug.grad = None
        y = sub(ug, n_samples=n)
        assert isinstance(y, torch.Tensor)
        loss = multi_resolution_stft_loss(y, y_t)
        assert isinstance(loss, torch.Tensor)
        loss.backward()

    rows.append(Row(f"subtractive patch + MR-STFT fwd+bwd ({gbatch}, {n})",
                    cpu_ms(step, args.repeats), note="no differentiable peer"))
    report("synth", rows, args)


if __name__ == "__main__":
    main()
