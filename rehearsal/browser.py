"""Headless Chromium for the HTML report: a screenshot and the DOM after its script ran.

Used by the test that checks the report renders in a real browser and by the
command that makes the README's picture. Chromium comes from the system
(Debian's ``chromium`` package; ``scripts/bootstrap --test-tools`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags that let Chromium run headless in a container or CI: no sandbox (no user namespaces),
# no GPU, and nothing that reaches the network on its own.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--run-all-compositor-stages-before-draw")


class BrowserUnavailable(RuntimeError):
    """No headless Chromium on this machine; the message says how to get one."""


def find_chromium() -> str:
    """The Chromium executable (``CHROMIUM`` overrides the search)."""
    for name in (os.environ.get("CHROMIUM"), *CANDIDATES):
        if name and (found := shutil.which(name)):
            return found
    raise BrowserUnavailable(
        "headless Chromium is not installed: run ./scripts/bootstrap --test-tools as root (it runs apt-get install -y chromium), "
        "or install the chromium package yourself, or point CHROMIUM at a Chromium or Chrome executable")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    # No wall-clock limit: the page's own time is virtual (--virtual-time-budget), and a slow machine is not a failure.
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([find_chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, check=False)


def screenshot(page: Path, png: Path, *, width: int = 1160, height: int = 900) -> Path:
    """A PNG of ``page`` at ``width`` x ``height`` CSS pixels."""
    completed = _run([f"--screenshot={png}", f"--window-size={width},{height}", "--virtual-time-budget=2000", page.resolve().as_uri()])
    if not png.exists():
        raise RuntimeError(f"chromium made no screenshot (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return png


def dump_dom(page: Path) -> str:
    """The page's DOM after its scripts ran."""
    completed = _run(["--dump-dom", "--virtual-time-budget=2000", page.resolve().as_uri()])
    if completed.returncode != 0 or not completed.stdout:
        raise RuntimeError(f"chromium could not load {page} (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return completed.stdout


# The README's picture: the default rehearsal at this size (tests/cli/test_html_report.py compares it with a fresh one).
README_PICTURE = Path(__file__).resolve().parent.parent / "docs" / "rehearsal-default.png"
PICTURE_SIZE = (1160, 860)


def picture(png: Path, *, scenario_file: str | None = None, size: tuple[int, int] = PICTURE_SIZE) -> Path:
    """Play the default rehearsal (or ``scenario_file``), write its HTML report and take the report's picture."""
    from .html import render_html
    from .report import build_report
    from .runner import Rehearsal
    from .scenario import default_scenario, load_scenario

    scenario = load_scenario(scenario_file) if scenario_file else default_scenario()
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "rehearsal.html"
        page.write_text(render_html(build_report(Rehearsal(scenario).run())), encoding="utf-8")
        return screenshot(page, png, width=size[0], height=size[1])


def main(argv: list[str] | None = None) -> int:
    """The README's picture: the default rehearsal's HTML report as a PNG, taken by headless Chromium."""
    import argparse
    import logging

    parser = argparse.ArgumentParser(prog="python -m rehearsal.browser", description=main.__doc__)
    parser.add_argument("png", type=Path, nargs="?", default=README_PICTURE, help="where to write it (default: docs/rehearsal-default.png)")
    parser.add_argument("--scenario", metavar="FILE", help="picture this scenario instead of the default run")
    parser.add_argument("--height", type=int, default=PICTURE_SIZE[1], help=f"picture height in pixels (default {PICTURE_SIZE[1]})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    print(picture(args.png, scenario_file=args.scenario, size=(PICTURE_SIZE[0], args.height)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
