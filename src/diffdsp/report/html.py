"""``report.html``: a self-contained page (relative links only, no network) with each task's
plots, before/after audio players and the figures of its ``result.json``."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffdsp.io import PathLike, atomic_write_text

__all__ = ["Section", "render_report", "write_report"]


@dataclass
class Section:
    """One block of the report.

    Attributes:
        title: heading.
        text: one or two sentences on what was fitted (plain text).
        metrics: ``{"before": {...}, "after": {...}}`` or a flat mapping name -> value.
        images: ``(relative path, caption)`` pairs.
        audio: ``(label, relative path)`` pairs.
        details: extra name -> value rows (settings, fitted parameters).
    """

    title: str
    text: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    images: list[tuple[str, str]] = field(default_factory=list)
    audio: list[tuple[str, str]] = field(default_factory=list)
    details: Mapping[str, Any] = field(default_factory=dict)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:520px;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.audio{display:inline-block;margin:.3em 1.2em .3em 0}.audio span{display:block;font-size:.85em}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "–"
    return html.escape(str(v))


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    if not metrics:
        return ""
    if set(metrics) <= {"before", "after"}:
        before = dict(metrics.get("before") or {})
        after = dict(metrics.get("after") or {})
        names = list(dict.fromkeys([*before, *after]))
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{_fmt(before.get(n))}</td>"
            f"<td>{_fmt(after.get(n))}</td></tr>"
            for n in names
        )
        return f"<table><tr><th>metric</th><th>before</th><th>after</th></tr>{rows}</table>"
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>"
                   for k, v in metrics.items())
    return f"<table><tr><th>name</th><th>value</th></tr>{rows}</table>"


def render_report(title: str, sections: Iterable[Section], *, intro: str = "") -> str:
    """The HTML text of a report."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<link rel='icon' href='data:,'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        parts.append(_metrics_table(s.metrics))
        if s.details:
            parts.append(_metrics_table(dict(s.details)))
        for label, src in s.audio:
            parts.append(
                f"<div class='audio'><span>{html.escape(label)}</span>"
                f"<audio controls preload='metadata' src='{html.escape(src, quote=True)}'></audio>"
                "</div>"
            )
        for src, caption in s.images:
            parts.append(
                f"<figure><img src='{html.escape(src, quote=True)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    out_dir: PathLike, title: str, sections: Iterable[Section], *, intro: str = "",
    name: str = "report.html",
) -> Path:
    """Write ``out_dir/report.html``; every link in ``sections`` must be relative to ``out_dir``."""
    sections = list(sections)
    for s in sections:
        for src in [p for p, _ in s.images] + [p for _, p in s.audio]:
            if Path(src).is_absolute() or "://" in src:
                raise ValueError(f"report links must be relative paths, got {src!r}")
    return atomic_write_text(Path(out_dir) / name, render_report(title, sections, intro=intro))
