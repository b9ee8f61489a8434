"""`diffdsp demo --quick` end to end, and its report.html in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    code, stdout, err = run_cli(["demo", "--out", str(out), "--quick", "--json"])
    assert code == 0, err
    assert json.loads(stdout)["task"] == "demo"
    return out


def test_demo_writes_every_listed_file(demo_dir: Path) -> None:
    result = json.loads((demo_dir / "result.json").read_text())
    for f in result["files"]:
        assert (demo_dir / f).is_file(), f
    html = (demo_dir / "report.html").read_text()
    links = re.findall(r"(?:src|href)='([^']+)'", html)
    local = [x for x in links if not x.startswith("data:")]
    assert local, "the report links no files"
    for link in local:
        assert not link.startswith(("/", "http")), link
        assert (demo_dir / link).is_file(), link


def test_demo_runs_twice(demo_dir: Path) -> None:
    code, _, err = run_cli(["demo", "--out", str(demo_dir), "--quick", "--quiet"])
    assert code == 0, err
    assert not [p for p in demo_dir.rglob(".*") if p.is_file()], "temporary files left behind"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test installs it as root)")
def test_report_in_headless_chromium(demo_dir: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            # preload='metadata' makes Chromium abort a media request once it has the header:
            # ERR_ABORTED is that, not a missing file (which is ERR_FILE_NOT_FOUND).
            page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "")
                    else problems.append(f"failed: {r.url} {r.failure}"))
            page.goto((demo_dir / "report.html").as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete,"
                " i.naturalWidth])"
            )
            assert images and all(ok and width > 0 for _, ok, width in images), images
            page.wait_for_function(
                "Array.from(document.querySelectorAll('audio'))"
                ".every(a => a.readyState >= 1 || a.error)",
                timeout=20000,
            )
            audio = page.evaluate(
                "Array.from(document.querySelectorAll('audio')).map(a => [a.getAttribute('src'),"
                " a.readyState, a.error ? a.error.code : null, a.duration])"
            )
            assert audio and all(err is None and state >= 1 and dur > 0
                                 for _, state, err, dur in audio), audio
            assert not problems, problems
        finally:
            browser.close()
