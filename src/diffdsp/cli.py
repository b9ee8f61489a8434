"""The ``diffdsp`` command line (typer + rich). Parses arguments, calls ``diffdsp.tasks``, maps
errors to exit codes. No DSP here.

Exit codes: 0 success; 2 bad input or usage (one plain line on stderr, no traceback); 1 unexpected
internal error (traceback only with ``--debug`` or ``DIFFDSP_DEBUG=1``); 130 interrupted.

Adding a task command: write ``run(...) -> TaskResult`` in ``diffdsp/tasks/<task>.py`` (taking a
``progress`` callback), then a thin command here that forwards its options through
:func:`run_task` with the common options (``OutOpt``, ``SeedOpt``, ``QuietOpt``, ``JsonOpt``,
``DeviceOpt``, ``ThreadsOpt``, ``ResumeOpt``) — see ``demo`` below.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

try:
    import typer
except ImportError as exc:  # pragma: no cover - depends on extras
    raise ImportError("the command line needs typer and rich: pip install 'diffdsp[cli]'") from exc

import diffdsp
from diffdsp._validation import InputError
from diffdsp.tasks._common import Progress, TaskResult

__all__ = ["app", "main", "run_task"]

app = typer.Typer(
    name="diffdsp",
    help="Differentiable audio signal processing: fit reverbs, match synths, transfer styles, "
    "align phase, and inspect losses, from the shell.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Common options of every task command (DESIGN.md, command line contract).
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (created if missing).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same result).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress output.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print result.json to stdout.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="CPU threads (0: torch default).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from DIR/checkpoint.pt.")]


def _debug_enabled(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("DIFFDSP_DEBUG", "0") not in ("", "0")


def _err(message: str) -> None:
    text = " ".join(str(message).split())  # one line, whatever the exception text held
    print(f"diffdsp: error: {text}", file=sys.stderr)


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress | None]:
    """A rich progress display on stderr, driven by the tasks' ``progress`` callbacks."""
    if quiet:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    console = Console(stderr=True)
    bars: dict[str, Any] = {}
    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
    )

    def update(stage: str, step: int, total: int, loss: float) -> None:
        if not bars:  # start drawing only once there is something to show
            bar.start()
        if stage not in bars:
            bars[stage] = bar.add_task(stage, total=total, loss="-")
        bar.update(bars[stage], completed=step, total=total, loss=f"{loss:.4g}")

    try:
        yield update
    finally:
        if bars:
            bar.stop()


def run_task(
    fn: Callable[..., TaskResult],
    *,
    quiet: bool = False,
    json_out: bool = False,
    threads: int = 0,
    **kwargs: Any,
) -> TaskResult:
    """Run a task with a progress display; print result.json (``--json``) or a summary line."""
    if threads < 0:
        raise InputError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    with _progress(quiet or json_out) as progress:
        result = fn(progress=progress, **kwargs)
    if json_out:
        print(json.dumps(result.result, indent=2))
    elif not quiet:
        print(f"diffdsp {result.task}: wrote {len(result.files)} files to {result.out_dir}",
              file=sys.stderr)
    return result


def _version(value: bool) -> None:
    if value:
        print(f"diffdsp {diffdsp.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
) -> None:
    """diffdsp: differentiable audio signal processing."""


@app.command()
def info(json_out: JsonOpt = False) -> None:
    """List the processors, losses and tasks this installation provides (read from the code)."""
    from diffdsp._registry import inventory

    inv = inventory()
    if json_out:
        print(json.dumps(inv, indent=2))
        return
    print(f"diffdsp {diffdsp.__version__}")
    for group, items in inv.items():
        print(f"\n{group} ({len(items)}):")
        for name, summary in items.items():
            print(f"  {name:40s} {summary}")


@app.command()
def demo(
    out: OutOpt = Path("diffdsp_demo"),
    quick: Annotated[bool, typer.Option("--quick", help="Shorter fits (for tests).")] = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Run every task on built-in examples and write DIR/report.html."""
    from diffdsp.tasks import demo as demo_task

    run_task(demo_task.run, quiet=quiet, json_out=json_out, threads=threads, out_dir=out,
             quick=quick, seed=seed)


@app.command()
def align(
    dry: Annotated[Path, typer.Argument(help="Dry (unprocessed) audio file.")],
    wet: Annotated[Path, typer.Argument(help="Wet (processed) audio file, same rate/length.")],
    out: OutOpt = Path("diffdsp_align"),
    order: Annotated[int, typer.Option("--order", help="All-pass order (7 = 3x2nd + 1st).")] = 7,
    method: Annotated[str, typer.Option(
        "--method", help="spectral (default), direct, biasnet-seq or biasnet-conn.")] = "spectral",
    loss: Annotated[str, typer.Option("--loss", help="mse or interference.")] = "mse",
    steps: Annotated[int, typer.Option("--steps", help="Gradient steps (0: default).")] = 0,
    time_budget: Annotated[float, typer.Option(
        "--time-budget", help="Wall-time cap of the fit in seconds (0: default).")] = 0.0,
    no_warp: Annotated[bool, typer.Option("--no-warp", help="Unwarped sections.")] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Fit all-pass filters so DRY lines up in phase with WET; write DIR/aligned.wav."""
    from diffdsp.tasks import align as align_task

    run_task(align_task.run, quiet=quiet, json_out=json_out, threads=threads, dry_path=dry,
             wet_path=wet, out_dir=out, order=order, method=method, loss=loss,
             warp=not no_warp, steps=steps or None, time_budget_s=time_budget or None,
             seed=seed, device=device)


@app.command()
def style(
    input: Annotated[Path, typer.Argument(help="Audio to process.")],
    reference: Annotated[Path, typer.Argument(help="Audio whose EQ/dynamics style to copy.")],
    out: OutOpt = Path("diffdsp_style"),
    model: Annotated[Path | None, typer.Option(
        "--model", help="Checkpoint of 'diffdsp train style' (one-pass learned mode).")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps (EQ stage).")] = 300,
    strategy: Annotated[str, typer.Option(
        "--strategy", help="Gradients: autodiff or spsa (per-example mode).")] = "autodiff",
    smoothing: Annotated[str, typer.Option(
        "--ballistics", help="Compressor ballistics: exact or fir.")] = "exact",
    time_budget: Annotated[float, typer.Option(
        "--time-budget", help="Wall-time cap of each fit stage in seconds (0: none).")] = 0.0,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Impose REFERENCE's EQ and dynamics on INPUT; write DIR/output.wav and DIR/params.json."""
    from diffdsp._validation import check_choice
    from diffdsp.tasks import style as style_task

    check_choice(strategy, "--strategy", ("autodiff", "spsa"))
    check_choice(smoothing, "--ballistics", ("exact", "fir"))
    run_task(style_task.run, quiet=quiet, json_out=json_out, threads=threads, input_path=input,
             reference_path=reference, out_dir=out, model=model, steps=steps, strategy=strategy,
             smoothing=smoothing, time_budget_s=time_budget or None, seed=seed, device=device)


@app.command()
def landscape(
    task: Annotated[str, typer.Option(
        "--task", help="Recipe: reverb, match, style, align or gain.")] = "reverb",
    params: Annotated[str, typer.Option(
        "--params", help="One or two parameter names, a,b (default: the recipe's pair).")] = "",
    out: OutOpt = Path("diffdsp_landscape"),
    config: Annotated[str, typer.Option(
        "--config", help="Overrides: a JSON object or a JSON file (losses, points, grid, "
        "truth, perturbations, ...).")] = "",
    quick: Annotated[bool, typer.Option("--quick", help="Coarse grids (for tests).")] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Loss landscapes of a built-in recipe; write DIR/landscape.json, landscape.png, report."""
    from diffdsp.tasks import landscape as landscape_task

    run_task(landscape_task.run, quiet=quiet, json_out=json_out, threads=threads, task=task,
             params=params or None, out_dir=out, config=config or None, seed=seed, quick=quick,
             device=device)


@app.command()
def match(
    target: Annotated[Path, typer.Argument(metavar="TARGET", help="Sound to match.")],
    patch: Annotated[str, typer.Option(
        "--patch", help="Preset name (subtractive, filter_envelope, fm, tremolo, dx7_4op, "
        "voice) or a patch JSON file.")] = "subtractive",
    out: OutOpt = Path("diffdsp_match"),
    steps: Annotated[int, typer.Option("--steps", help="Refinement steps.")] = 250,
    model: Annotated[Path | None, typer.Option(
        "--model", help="Learned matcher checkpoint ('train match') used as a start.")] = None,
    analysis_rate: Annotated[int, typer.Option(
        "--analysis-rate", help="Sample rate of the optimisation in Hz.")] = 22050,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
    resume: ResumeOpt = False,
) -> None:
    """Fit a synth patch to TARGET; write DIR/match.wav, patch.json, plots, result.json."""
    from diffdsp.tasks import match as match_task

    run_task(match_task.match, quiet=quiet, json_out=json_out, threads=threads,
             target_path=target, out_dir=out, patch=patch, steps=steps, seed=seed,
             device=device, model=model, analysis_rate=analysis_rate, resume=resume)


@app.command()
def render(
    patch_json: Annotated[Path, typer.Argument(metavar="PATCH_JSON", help="patch.json file.")],
    out: OutOpt = Path("diffdsp_render"),
    seconds: Annotated[float, typer.Option("--seconds", help="Length in seconds.")] = 2.0,
    note: Annotated[float | None, typer.Option(
        "--note", help="MIDI note overriding the stored pitch.")] = None,
    sample_rate: Annotated[int, typer.Option(
        "--sample-rate", help="Output sample rate (0: the patch's).")] = 0,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Render a saved patch with its parameters; write DIR/render.wav."""
    from diffdsp.tasks import match as match_task

    run_task(match_task.render, quiet=quiet, json_out=json_out, threads=threads,
             patch_json=patch_json, out_dir=out, seconds=seconds, note=note,
             sample_rate=sample_rate or None, seed=seed)


reverb_app = typer.Typer(help="Fit, render and apply feedback delay network reverbs.",
                         no_args_is_help=True)
app.add_typer(reverb_app, name="reverb")


@reverb_app.command("fit")
def reverb_fit(
    rir: Annotated[Path, typer.Argument(metavar="RIR", help="Room impulse response (mono).")],
    out: OutOpt = Path("diffdsp_reverb"),
    delays: Annotated[int, typer.Option("--delays", help="Number of delay lines N.")] = 8,
    steps: Annotated[int, typer.Option("--steps", help="Steps of the decay stage.")] = 200,
    time_budget: Annotated[float, typer.Option(
        "--time-budget", help="Wall-time budget of the fit in seconds (0: none).")] = 60.0,
    channel: Annotated[int, typer.Option(
        "--channel", help="Channel of a multi-channel RIR to fit (-1: refuse those).")] = -1,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
    resume: ResumeOpt = False,
) -> None:
    """Fit an FDN to RIR; write DIR/impulse_response.wav, fdn.json, plots, result.json."""
    from diffdsp.tasks import reverb as reverb_task

    run_task(reverb_task.fit, quiet=quiet, json_out=json_out, threads=threads, rir_path=rir,
             out_dir=out, n_lines=delays, steps=steps, time_budget_s=time_budget or None,
             channel=None if channel < 0 else channel, seed=seed, device=device, resume=resume)


@reverb_app.command("render")
def reverb_render(
    fdn_json: Annotated[Path, typer.Argument(metavar="FDN_JSON", help="fdn.json from 'fit'.")],
    out: OutOpt = Path("diffdsp_reverb_render"),
    seconds: Annotated[float, typer.Option(
        "--seconds", help="Length in seconds (0: the fitted RIR's).")] = 0.0,
    sample_rate: Annotated[int, typer.Option(
        "--sample-rate", help="Output sample rate (0: the FDN's).")] = 0,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Render the impulse response of a saved FDN; write DIR/impulse_response.wav."""
    from diffdsp.tasks import reverb as reverb_task

    run_task(reverb_task.render, quiet=quiet, json_out=json_out, threads=threads,
             fdn_json=fdn_json, out_dir=out, seconds=seconds or None,
             sample_rate=sample_rate or None)


@reverb_app.command("apply")
def reverb_apply(
    fdn_json: Annotated[Path, typer.Argument(metavar="FDN_JSON", help="fdn.json from 'fit'.")],
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="Audio to reverberate.")],
    out: OutOpt = Path("diffdsp_reverb_apply"),
    wet: Annotated[float, typer.Option("--wet", help="Wet/dry mix, 0..1.")] = 0.3,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Reverberate INPUT with a saved FDN; write DIR/output.wav."""
    from diffdsp.tasks import reverb as reverb_task

    run_task(reverb_task.apply, quiet=quiet, json_out=json_out, threads=threads,
             fdn_json=fdn_json, input_path=input, out_dir=out, wet=wet)


train_app = typer.Typer(
    help="Train learned controllers with Lightning (DDP with --devices N --strategy ddp).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")


@train_app.command("timbre")
def train_timbre(
    audio_dir: Annotated[Path, typer.Argument(
        help="Folder of audio of one monophonic instrument (or one file).")],
    out: OutOpt = Path("diffdsp_timbre_model"),
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.")] = 3000,
    time_budget: Annotated[float, typer.Option(
        "--time-budget", help="Stop training after this many seconds (0: no limit).")] = 0.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step.")] = 8,
    devices: Annotated[int, typer.Option("--devices", help="Processes/devices.")] = 1,
    strategy: Annotated[str, typer.Option("--strategy", help="auto or ddp.")] = "auto",
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Train a DDSP timbre model; write DIR/model.pt, curves and a held-out resynthesis."""
    from diffdsp.tasks import timbre as timbre_task

    run_task(timbre_task.train, quiet=quiet, json_out=json_out, threads=threads,
             audio_dir=audio_dir, out_dir=out, steps=steps, time_budget_s=time_budget or None,
             batch_size=batch_size, devices=devices, strategy=strategy, seed=seed, device=device)


@train_app.command("match")
def train_match(
    out: OutOpt = Path("diffdsp_match_model"),
    patch: Annotated[str, typer.Option(
        "--patch", help="Preset name or patch JSON the matcher predicts.")] = "subtractive",
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.")] = 2000,
    time_budget: Annotated[float, typer.Option(
        "--time-budget", help="Stop training after this many seconds (0: no limit).")] = 0.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Renders per step.")] = 16,
    devices: Annotated[int, typer.Option("--devices", help="Processes/devices.")] = 1,
    strategy: Annotated[str, typer.Option("--strategy", help="auto or ddp.")] = "auto",
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Train a learned sound matcher on random renders of a patch; write DIR/model.pt."""
    from diffdsp.train import match as train_match_mod

    run_task(train_match_mod.train, quiet=quiet, json_out=json_out, threads=threads,
             out_dir=out, patch=patch, steps=steps, time_budget_s=time_budget or None,
             batch_size=batch_size, devices=devices, strategy=strategy, seed=seed,
             device=device)


@train_app.command("style")
def train_style(
    out: OutOpt = Path("diffdsp_style_model"),
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.")] = 2000,
    grad: Annotated[str, typer.Option(
        "--grad", help="Gradient strategy of the EQ + compressor: autodiff, spsa, proxy, "
        "half_hybrid or full_hybrid.")] = "autodiff",
    data: Annotated[Path | None, typer.Option(
        "--data", help="Folder of source audio (default: the built-in speech and music), "
        "mixed with generated speech- and music-like signals.")] = None,
    proxy: Annotated[Path | None, typer.Option(
        "--proxy", help="model.pt of an earlier proxy-strategy run whose neural proxy to reuse "
        "(else the proxy strategies pre-train one).")] = None,
    proxy_steps: Annotated[int, typer.Option(
        "--proxy-steps", help="Proxy pre-training steps (proxy strategies).")] = 300,
    sample_rate: Annotated[int, typer.Option(
        "--sample-rate", help="Training sample rate in Hz (>= 8000).")] = 24000,
    segment: Annotated[float, typer.Option(
        "--segment", help="Seconds of input, reference and target per example.")] = 1.5,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 3e-3,
    eval_pairs: Annotated[int, typer.Option(
        "--eval-pairs", help="Held-out pairs measured after training (0: none).")] = 4,
    time_budget: Annotated[float, typer.Option(
        "--time-budget", help="Stop training after this many seconds (0: no limit).")] = 0.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per step.")] = 4,
    devices: Annotated[int, typer.Option("--devices", help="Processes/devices.")] = 1,
    strategy: Annotated[str, typer.Option("--strategy", help="auto or ddp.")] = "auto",
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Train a learned style-transfer model (DeepAFx-ST); write DIR/model.pt for 'style --model'."""
    from diffdsp._validation import check_choice
    from diffdsp.grad import STRATEGIES
    from diffdsp.train import style as train_style_mod

    if strategy not in ("auto", "ddp"):
        raise InputError(f"--strategy must be 'auto' or 'ddp' (the Lightning strategy; the "
                         f"gradient strategy is --grad), got {strategy!r}")
    check_choice(grad, "--grad", STRATEGIES)
    if not lr > 0:
        raise InputError(f"--lr must be > 0, got {lr}")
    cfg = train_style_mod.StyleConfig(sample_rate=sample_rate, segment_s=segment, lr=lr,
                                      strategy=grad, proxy_steps=proxy_steps)
    run_task(train_style_mod.train, quiet=quiet, json_out=json_out, threads=threads,
             out_dir=out, steps=steps, batch_size=batch_size, grad=grad, devices=devices,
             strategy=strategy, seed=seed, config=cfg, data_dir=data, proxy_path=proxy,
             eval_pairs=eval_pairs, time_budget_s=time_budget or None, device=device)


@app.command()
def timbre(
    input: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Monophonic audio to resynthesise.")],
    model: Annotated[Path, typer.Option("--model", help="Checkpoint from 'train timbre'.")],
    out: OutOpt = Path("diffdsp_timbre"),
    pitch_shift: Annotated[float, typer.Option(
        "--pitch-shift", help="Semitones added to the input's f0.")] = 0.0,
    loudness_shift: Annotated[float, typer.Option(
        "--loudness-shift", help="dB added to the input's loudness.")] = 0.0,
    auto_loudness: Annotated[bool, typer.Option(
        "--auto-loudness/--no-auto-loudness",
        help="Match the input's mean loudness to the training data first.")] = True,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Timbre transfer: resynthesise INPUT with a trained instrument; write DIR/output.wav."""
    from diffdsp.tasks import timbre as timbre_task

    run_task(timbre_task.transfer, quiet=quiet, json_out=json_out, threads=threads,
             input_path=input, model_path=model, out_dir=out, pitch_shift=pitch_shift,
             loudness_shift_db=loudness_shift, auto_loudness=auto_loudness, seed=seed,
             device=device)


@app.command()
def resynth(
    input: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Monophonic audio to analyse and resynthesise.")],
    out: OutOpt = Path("diffdsp_resynth"),
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = 0,
) -> None:
    """Harmonic-plus-noise analysis/resynthesis with no network; write DIR/output.wav."""
    from diffdsp.tasks import timbre as timbre_task

    run_task(timbre_task.resynth, quiet=quiet, json_out=json_out, threads=threads,
             input_path=input, out_dir=out, seed=seed)


@app.command()
def export(
    artefact: Annotated[Path, typer.Argument(
        metavar="ARTEFACT", help="fdn.json, allpass.json, params.json or patch.json, or the "
        "output folder of the task that wrote it.")],
    out: OutOpt = Path("diffdsp_export"),
    formats: Annotated[str, typer.Option(
        "--format", help="Comma-separated: json (always written), npz, c (C header).")] = "json",
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print export.json to stdout.")] = False,
) -> None:
    """Export fitted parameters as plain data for a real-time engine; write DIR/export.json."""
    from diffdsp import export as export_mod

    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    run_task(export_mod.run, quiet=quiet, json_out=json_out, artefact=artefact, out_dir=out,
             formats=fmts)


def cli_reference() -> str:
    """The command reference in Markdown, generated from the typer app (``docs/cli.md``)."""
    import typer.main

    root = typer.main.get_command(app)
    parts = ["# Command line reference", "",
             "Generated from the typer app by `diffdsp cli-reference`; do not edit by hand.", ""]

    def walk(cmd: Any, name: str, parent: Any) -> None:
        extra = {} if parent is not None else {"terminal_width": 100, "max_content_width": 100}
        ctx = cmd.make_context(name.split()[-1], [], parent=parent, resilient_parsing=True,
                               **extra)
        if getattr(cmd, "hidden", False):
            return
        parts.extend([f"## `{name}`", "", "```", cmd.get_help(ctx).rstrip(), "```", ""])
        for sub_name in getattr(cmd, "list_commands", lambda _ctx: [])(ctx):
            walk(cmd.get_command(ctx, sub_name), f"{name} {sub_name}", ctx)

    walk(root, "diffdsp", None)
    return "\n".join(parts)


@app.command("cli-reference", hidden=True)
def _cli_reference_command() -> None:
    """Print the Markdown command reference (used to generate docs/cli.md)."""
    print(cli_reference(), end="")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diffdsp`` console script; returns the exit code."""
    try:
        from click import exceptions as cx
    except ImportError:  # typer >= 0.2x vendors click
        from typer._click import exceptions as cx

    exits = tuple({typer.Exit, getattr(cx, "Exit", typer.Exit)})
    aborts = tuple({typer.Abort, getattr(cx, "Abort", typer.Abort)})

    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_enabled(args)
    try:
        rv = app(args=args, prog_name="diffdsp", standalone_mode=False)
        if rv == 130:  # typer turns KeyboardInterrupt into Exit(130), returned in this mode
            _err("interrupted (checkpoint saved where the task supports --resume)")
            return 130
        if isinstance(rv, int) and not isinstance(rv, bool):
            return rv
    except exits as exc:
        return int(getattr(exc, "exit_code", 0))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BrokenPipeError:  # output piped into head & co
        sys.stdout = open(os.devnull, "w")
        return 0
    except aborts:
        _err("interrupted")
        return 130
    except cx.NoArgsIsHelpError as exc:
        print(exc.format_message())
        return 0
    except cx.UsageError as exc:
        _err(exc.format_message())
        return 2
    except cx.ClickException as exc:
        _err(exc.format_message())
        return 2
    except KeyboardInterrupt:
        _err("interrupted (checkpoint saved where the task supports --resume)")
        return 130
    except (ValueError, OSError) as exc:
        # InputError and the other ValueErrors raised at the boundary, unreadable/unwritable paths.
        if debug:
            traceback.print_exc()
        _err(str(exc) or type(exc).__name__)
        return 2
    except ImportError as exc:
        _err(str(exc))
        return 2
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _err(f"internal error: {type(exc).__name__}: {exc} "
             "(run with --debug or DIFFDSP_DEBUG=1 for a traceback)")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
