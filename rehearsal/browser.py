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


def main(argv: list[str] | None = None) -> int:
    """``python -m rehearsal.browser PNG``: the default rehearsal's chart as a PNG (the README's picture)."""
    import argparse
    import logging

    from .html import render_html
    from .report import build_report
    from .runner import Rehearsal
    from .scenario import default_scenario, load_scenario

    parser = argparse.ArgumentParser(prog="python -m rehearsal.browser", description=main.__doc__)
    parser.add_argument("png", type=Path)
    parser.add_argument("--scenario", metavar="FILE")
    parser.add_argument("--height", type=int, default=860)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "rehearsal.html"
        page.write_text(render_html(build_report(Rehearsal(scenario).run())), encoding="utf-8")
        screenshot(page, args.png, height=args.height)
    print(args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
