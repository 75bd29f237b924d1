"""The HTML report in a real browser: alerts named where they happen, never on top of one another; and the README's
picture is the current default run.

Headless Chromium renders each page (``rehearsal/browser.py``); the page itself reports how many alert labels
overlap, from the browser's own layout boxes. The README's picture is compared with one taken now from the
default run by what it shows (which colour of bar or line is in each cell of a grid), not pixel by pixel: text
antialiasing may vary between machines, the chart's shapes may not.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import pytest
from PIL import Image

from rehearsal.browser import PICTURE_SIZE, README_PICTURE, BrowserUnavailable, dump_dom, find_chromium, picture, screenshot
from rehearsal.html import render_html
from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import load_scenario
from tests.support import PROJECT_ROOT

# The chart's colours (rehearsal/html.py's stylesheet): what the picture shows, by what it means.
MEANINGS = {
    "request stage": (0x54, 0xAE, 0xFF), "final stage": (0x2D, 0xA4, 0x4E), "long-running operation": (0xA4, 0x75, 0xF9),
    "pool resizing": (0xFB, 0x8F, 0x44), "nodes": (0x09, 0x69, 0xDA), "critical alert": (0x82, 0x07, 0x1E),
    "warning alert": (0xBF, 0x87, 0x00),
}
CELL = 20


@pytest.fixture(scope="module", autouse=True)
def chromium() -> None:
    try:
        find_chromium()
    except BrowserUnavailable as exc:
        pytest.fail(str(exc))


def meanings_by_cell(png: Path) -> dict[tuple[int, int], frozenset[str]]:
    """For each CELL x CELL square of the picture, which of the chart's colours appear in it."""
    image = Image.open(png).convert("RGB")
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    cells: dict[tuple[int, int], set[str]] = {}
    for y in range(0, height, 2):
        for x in range(0, width, 2):
            r, g, b = cast(tuple[int, int, int], pixels[x, y])
            for meaning, (mr, mg, mb) in MEANINGS.items():
                if abs(r - mr) < 10 and abs(g - mg) < 10 and abs(b - mb) < 10:
                    cells.setdefault((x // CELL, y // CELL), set()).add(meaning)
    return {cell: frozenset(found) for cell, found in cells.items()}


def test_given_the_readme_picture_when_the_default_run_is_pictured_now_then_it_shows_the_same_chart(tmp_path):
    fresh = picture(tmp_path / "now.png")

    assert Image.open(README_PICTURE).size == Image.open(fresh).size == PICTURE_SIZE
    committed, now = meanings_by_cell(README_PICTURE), meanings_by_cell(fresh)
    differing = {cell for cell in committed.keys() | now.keys() if committed.get(cell) != now.get(cell)}
    assert {m for found in now.values() for m in found} >= {"request stage", "final stage", "long-running operation", "pool resizing", "nodes"}
    assert len(differing) <= len(now) // 50, (
        f"docs/rehearsal-default.png is out of date ({len(differing)} of {len(now)} cells differ): "
        "regenerate it with python -m rehearsal.browser docs/rehearsal-default.png")


def test_given_the_readme_when_read_then_it_shows_the_picture_and_names_the_command_that_makes_it():
    readme = (PROJECT_ROOT / "README.md").read_text()
    docs = "\n".join(path.read_text() for path in (PROJECT_ROOT / "docs").glob("*.md"))

    assert "](docs/rehearsal-default.png)" in readme
    assert "python -m rehearsal.browser docs/rehearsal-default.png" in readme + docs


def test_given_alerts_about_a_pool_when_the_report_is_opened_then_each_is_labelled_where_it_happened_and_none_overlap(tmp_path):
    # GIVEN the image of a growing pool unlocked and deleted: a warning and a critical alert 20 s apart
    report = build_report(Rehearsal(load_scenario(PROJECT_ROOT / "examples" / "guard-image-deleted.json")).run())
    page = tmp_path / "alerts.html"
    page.write_text(render_html(report), encoding="utf-8")
    # WHEN headless Chromium renders it
    dom = dump_dom(page)
    # THEN each alert has a label naming its severity, type and time, and no label or marker covers another
    labels = re.findall(r'<text class="alert-label (\w+)"[^>]*>([^<]*)</text>', dom)
    assert sorted(labels) == [("critical", "critical InUseImageDeleted +0:23"), ("warning", "warning ProtectionRemoved +0:23")]
    assert 'data-alert-overlaps="0"' in dom
    assert dom.count('class="alert-line') == 2 and dom.count('class="alert-marker') == 2
    # AND the picture shows them in their severity's colours
    colours = {meaning for found in meanings_by_cell(screenshot(page, tmp_path / "alerts.png")).values() for meaning in found}
    assert {"critical alert", "warning alert"} <= colours
