"""``diffdsp demo``: run every task on built-in examples and write one ``report.html``.

Hook for task modules: a module ``diffdsp.tasks.<name>`` listed in :data:`DEMO_TASKS` that defines

    def demo(out_dir: Path, *, quick: bool, seed: int, progress: Progress | None) -> TaskResult

takes part: it writes its artefacts into ``out_dir`` (a sub-folder named after the task) and returns
a ``TaskResult`` whose ``sections`` (``diffdsp.report.Section``, links relative to ``out_dir``) are
added to the report with links rebased onto the demo folder. Modules that do not exist yet are
skipped, so the demo grows as tasks land.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import torch

from diffdsp import data
from diffdsp.io import load_audio, resample, save_audio
from diffdsp.report import Section, write_json, write_report
from diffdsp.report.plots import spectrograms
from diffdsp.tasks._common import Progress, TaskResult, prepare_out_dir, seed_all

__all__ = ["DEMO_TASKS", "run"]

#: Task modules whose ``demo`` function runs, in report order.
DEMO_TASKS = ("reverb", "match", "style", "align", "timbre", "landscape")

DEMO_SAMPLE_RATE = 44_100


def _intro(out_dir: Path) -> Section:
    """The built-in recordings the demo uses: a real piano note and speech, as heard and seen."""
    sub = out_dir / "signals"
    piano, sr = load_audio(data.path("notes/piano_salamander_C4_midi60.flac"))
    speech, sr_s = load_audio(data.path("speech_music/speech_cmu_arctic_a0007.flac"))
    speech = resample(speech, sr_s, DEMO_SAMPLE_RATE)
    piano = resample(piano, sr, DEMO_SAMPLE_RATE)
    save_audio(sub / "piano_C4.wav", piano, DEMO_SAMPLE_RATE)
    save_audio(sub / "speech.wav", speech, DEMO_SAMPLE_RATE)
    spectrograms(sub / "spectrograms.png", {"piano C4": piano, "speech": speech},
                 DEMO_SAMPLE_RATE, title="built-in recordings")
    return Section(
        title="Built-in recordings",
        text="Real recordings shipped with diffdsp (see diffdsp/data/README.md for sources and "
        f"licences), resampled to {DEMO_SAMPLE_RATE} Hz with diffdsp.io.resample.",
        images=[("signals/spectrograms.png", "log-magnitude spectrograms")],
        audio=[("piano C4 (Salamander)", "signals/piano_C4.wav"),
               ("speech (CMU ARCTIC)", "signals/speech.wav")],
    )


def _rebase(section: Any, prefix: str) -> Any:
    section.images = [(f"{prefix}/{p}", c) for p, c in section.images]
    section.audio = [(label, f"{prefix}/{p}") for label, p in section.audio]
    return section


def run(
    out_dir: Path | str,
    *,
    quick: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
    tasks: tuple[str, ...] = DEMO_TASKS,
) -> TaskResult:
    """Run the demo into ``out_dir`` and write ``out_dir/report.html``.

    Args:
        out_dir: output folder (created if missing; a second run replaces the files).
        quick: shorter fits (the test suite uses it).
        seed: random seed.
        progress: task progress callback.
        tasks: which task demos to run (those not installed are skipped).

    Returns:
        A TaskResult whose ``result`` lists each task's status and seconds.
    """
    out = prepare_out_dir(out_dir)
    seed_all(seed)
    torch.set_grad_enabled(True)
    sections = [_intro(out)]
    files = ["report.html", "signals/piano_C4.wav", "signals/speech.wav",
             "signals/spectrograms.png"]
    summary: dict[str, Any] = {}
    for name in tasks:
        try:
            module = importlib.import_module(f"diffdsp.tasks.{name}")
        except ModuleNotFoundError:
            continue
        fn = getattr(module, "demo", None)
        if fn is None:
            continue
        t0 = time.perf_counter()
        res: TaskResult = fn(out / name, quick=quick, seed=seed, progress=progress)
        summary[name] = {"seconds": round(time.perf_counter() - t0, 2),
                         "metrics": res.result.get("metrics", {})}
        sections.extend(_rebase(s, name) for s in res.sections)
        files.extend(f"{name}/{f}" for f in res.files)
    all_files = sorted({*files, "result.json"})
    result = {"task": "demo", "quick": quick, "seed": seed, "tasks": summary, "files": all_files}
    write_json(out / "result.json", result)
    write_report(
        out,
        "diffdsp demo",
        sections,
        intro="Every task of diffdsp run on built-in examples: what was fitted, how it sounds "
        "before and after, and the figures from each task's result.json.",
    )
    return TaskResult(task="demo", out_dir=out, result=result, files=all_files,
                      sections=sections)
