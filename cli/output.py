"""Output in the Azure CLI's habits, shared by every command: ``-o``, ``--query``, colour, closed pipes.

``-o json|jsonc|table|tsv|yaml|none`` and ``--query`` (JMESPath, applied before
formatting) behave as in ``az``: ``json`` is indented, ``jsonc`` is JSON
coloured when the output is a terminal, ``tsv`` prints bare values one row per
line (for shell scripts), ``table`` prints what a person reads. A command may
give its own table for its unqueried output (a timeline, a request in
detail); anything else shown as a table gets the generic one below.

Colour (``rehearsal/colour.py``): only when the stream is a terminal and
``NO_COLOR`` is unset (https://no-color.org). A pipe closed by the reader
(``| head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from rehearsal.colour import Palette, palette

FORMATS = ("json", "jsonc", "table", "tsv", "yaml", "none")


class OutputError(ValueError):
    """A bad ``--query`` or an output that cannot be shown; carries a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def add_output_arguments(parser: argparse.ArgumentParser, *, default: str = "table", formats: tuple[str, ...] = FORMATS) -> None:
    """``-o/--output`` and ``--query`` on a command, as in ``az``; :func:`resolve_output` fills in the default after parsing."""
    group = parser.add_argument_group("output arguments")
    group.add_argument("-o", "--output", choices=formats, default=None, help=f"output format (default {default})")
    group.add_argument("--query", metavar="JMESPATH", help="JMESPath query applied before formatting, as in az (https://jmespath.org)")
    parser.set_defaults(output_default=default)


def resolve_output(args: argparse.Namespace) -> None:
    """``args.output_given`` says whether ``-o`` was typed (``--json -o table`` is a contradiction); ``args.output`` gets its default."""
    if hasattr(args, "output_default"):
        args.output_given = args.output is not None
        args.output = args.output or args.output_default


# -- formats -----------------------------------------------------------------------


def apply_query(data: Any, query: str | None) -> Any:
    if not query:
        return data
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(query, data)
    except JMESPathError as exc:
        raise OutputError(f"invalid --query {query!r}: {str(exc).splitlines()[0]}",
                          "JMESPath as in az, e.g. --query \"[?stage=='READY'].id\"; https://jmespath.org/tutorial.html") from exc


def render(data: Any, output: str, *, query: str | None = None, table: Callable[[Any], str] | None = None,
           colour: Palette | None = None) -> str:
    """``data`` (JSON-able) as text in ``output`` format; ``table`` renders the unqueried table form."""
    colour = colour or Palette(False)
    queried = apply_query(data, query)
    if output == "none":
        return ""
    if output == "json":
        return json.dumps(queried, indent=2, ensure_ascii=False, default=str)
    if output == "jsonc":
        return coloured_json(queried, colour)
    if output == "yaml":
        import yaml

        return yaml.safe_dump(_plain(queried), sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
    if output == "tsv":
        return tsv(queried)
    if table is not None and query is None:
        return table(queried)
    return generic_table(queried)


def emit(data: Any, args: argparse.Namespace, *, table: Callable[[Any], str] | None = None, stream: TextIO | None = None) -> None:
    """Print ``data`` as ``args.output`` after ``args.query``."""
    stream = stream or sys.stdout
    text = render(data, getattr(args, "output", "json"), query=getattr(args, "query", None), table=table, colour=palette(stream))
    if text:
        print(text, file=stream)


def _plain(data: Any) -> Any:
    """Through JSON, so YAML sees only plain types (datetimes as ISO strings, as in JSON)."""
    return json.loads(json.dumps(data, default=str))


def coloured_json(data: Any, colour: Palette) -> str:
    """Indented JSON with keys, strings and numbers coloured (plain when colour is off)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if not colour.enabled:
        return text
    import re

    token = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|\b(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\b|\b(true|false|null)\b')

    def paint(match: re.Match[str]) -> str:
        string, colon, number, literal = match.groups()
        if string is not None:
            return colour.blue(string) + colon if colon else colour.green(string)
        if number is not None:
            return colour.cyan(number)
        return colour.magenta(literal)

    return token.sub(paint, text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def _rows(data: Any) -> tuple[list[str], list[list[str]]]:
    """Columns and rows as az's table format builds them: scalar fields of each object, in first-seen order."""
    items = data if isinstance(data, list) else [data]
    columns: list[str] = []
    for item in items:
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(value, (dict, list)) and key not in columns:
                    columns.append(key)
    if not columns:
        return ["Result"], [[_cell(item)] for item in items]
    return columns, [[_cell(item.get(c)) if isinstance(item, dict) else "" for c in columns] for item in items]


def generic_table(data: Any) -> str:
    """A table of the scalar fields (az: nested objects are left out of tables; use --query to pick them)."""
    if data is None or data == [] or data == {}:
        return ""
    columns, rows = _rows(data)
    headers = [_header(c) for c in columns]
    widths = [max(len(str(x)) for x in [h, *(r[i] for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _header(key: str) -> str:
    """``currentDedicatedNodes`` -> ``CurrentDedicatedNodes`` (az capitalises column names)."""
    return key[:1].upper() + key[1:]


def tsv(data: Any) -> str:
    """Tab-separated values, no header: one line per item, scalar fields in order (as az -o tsv)."""
    if data is None:
        return ""
    items = data if isinstance(data, list) else [data]
    lines = []
    for item in items:
        if isinstance(item, dict):
            lines.append("\t".join(_cell(v) for v in item.values() if not isinstance(v, (dict, list))))
        elif isinstance(item, list):
            lines.append("\t".join(_cell(v) for v in item))
        else:
            lines.append(_cell(item))
    return "\n".join(lines)


# -- a closed pipe -------------------------------------------------------------------


def quiet_on_closed_pipe(run: Callable[[], int]) -> int:
    """Run ``run``; when the reader closes the pipe (``| head``), stop without a traceback.

    Python's own advice (signal docs, "Note on SIGPIPE"): point stdout at devnull so the
    interpreter's final flush does not raise again, and exit non-zero.
    """
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
