"""Built-in real recordings (room impulse responses, instrument notes, speech, music).

Sources and licences are in ``README.md`` next to the files.

Examples:
    >>> from diffdsp import data
    >>> data.path("rir/seminar_room_clap.flac").name
    'seminar_room_clap.flac'
    >>> "notes/fluidr3_violin_midi69.flac" in data.files()
    True
"""

from __future__ import annotations

from pathlib import Path

from diffdsp._validation import InputError

__all__ = ["NOTE_MIDI", "files", "path"]

_ROOT = Path(__file__).resolve().parent

#: Nominal MIDI pitch of each built-in instrument note.
NOTE_MIDI: dict[str, int] = {
    "notes/piano_salamander_C4_midi60.flac": 60,
    "notes/fluidr3_nylon_guitar_midi55.flac": 55,
    "notes/fluidr3_violin_midi69.flac": 69,
    "notes/fluidr3_trumpet_midi70.flac": 70,
}


def files() -> list[str]:
    """Relative names of every built-in recording, e.g. ``"rir/seminar_room_clap.flac"``."""
    return sorted(p.relative_to(_ROOT).as_posix() for p in _ROOT.glob("*/*.flac"))


def path(name: str) -> Path:
    """Absolute path of a built-in recording given its relative name (see :func:`files`)."""
    p = _ROOT / name
    if not p.is_file() or p.suffix != ".flac":
        raise InputError(f"no built-in recording named {name!r}; expected one of {files()}")
    return p
