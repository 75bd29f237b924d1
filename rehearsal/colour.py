"""ANSI colour for terminal text: the rehearsal's timeline and every command's output.

Colour only when the stream is a terminal and ``NO_COLOR`` is unset
(https://no-color.org); otherwise text passes through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TextIO

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36", "dim": "2", "bold": "1"}


def colour_enabled(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (to anything non-empty)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Palette:
    """Wraps text in ANSI colours, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def paint(self, text: str, colour: str) -> str:
        return f"\033[{_CODES[colour]}m{text}\033[0m" if self.enabled and text else text

    def __getattr__(self, colour: str) -> Callable[[str], str]:
        if colour not in _CODES:
            raise AttributeError(colour)
        return lambda text: self.paint(text, colour)


def palette(stream: TextIO) -> Palette:
    """The palette for ``stream``: colours on a terminal, plain text anywhere else."""
    return Palette(colour_enabled(stream))
