"""Argument parsing shared by every command: the command's own name, and "did you mean" for a misspelt flag or command.

The command is ``cip`` when installed (``pip install .`` / ``pipx install .``) and ``python -m cli`` in the
repository; hints name whichever one the person typed. argparse (Python 3.11) says only "unrecognized
arguments" or "invalid choice"; like ``az`` and git, the parser here adds the nearest known flag or command.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import NoReturn

_COMMAND = ["python -m cli"]


def command_name() -> str:
    """How the person started the command line (``cip`` or ``python -m cli``), for hints that name a command to run."""
    return _COMMAND[0]


def set_command_name(name: str) -> None:
    _COMMAND[0] = name


def closest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate nearest to ``word`` (difflib's ratio of at least 0.6), or None."""
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors name the nearest command for an invalid choice (sub-parsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            guess = closest(choice[1], re.findall(r"'([^']*)'", choice[2]))
            if guess:
                message += f"; did you mean {guess}?"
        super().error(message)

    def option_strings(self) -> list[str]:
        """Every long and short flag this parser takes."""
        return [option for action in self._actions for option in action.option_strings]


def reject_unknown(parser: Parser, extras: list[str], args: argparse.Namespace) -> None:
    """Exit with argparse's "unrecognized arguments" error from the sub-command that was meant, naming the nearest flags."""
    command = getattr(args, "command", None)
    target = parser
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of a parser's options
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:  # noqa: SLF001 - as above
            target = action.choices[command]
    known = target.option_strings() if isinstance(target, Parser) else []
    guesses = [f"{extra} -> {guess}" for extra in extras if extra.startswith("-")
               and (guess := closest(extra.split("=", 1)[0], known))]
    target.error(f"unrecognized arguments: {' '.join(extras)}" + (f" (did you mean {', '.join(guesses)}?)" if guesses else ""))


def help_text(doc: str | None, *, drop_first_paragraph: bool = False) -> str | None:
    """A module docstring as ``--help`` shows it: reStructuredText markup (````x````, ``:mod:`x```, ``*x*``) as plain text.

    ``drop_first_paragraph`` leaves out a summary line that only repeats the command's name.
    """
    if not doc:
        return None
    text = doc.split("\n\n", 1)[1] if drop_first_paragraph and "\n\n" in doc else doc
    text = re.sub(r":(?:mod|func|class|data|meth|attr):`~?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"\1", text)
    return text.replace("python -m cli", command_name()).strip()
