"""``python -m cli``: rehearse offline, print the request schema."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _schema(args: argparse.Namespace) -> int:
    from shared.pool_request import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from rehearsal.report import build_report, render_timeline
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import ScenarioError, default_scenario, load_scenario

    try:
        scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    except ScenarioError as exc:
        print(f"error: invalid scenario: {exc}", file=sys.stderr)
        return 2
    report = build_report(Rehearsal(scenario).run())
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render_timeline(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cli", description="Custom-image Batch pools: rehearse offline, inspect the request format.")
    commands = parser.add_subparsers(dest="command", required=True)
    rehearse = commands.add_parser("rehearse", help="run the whole pipeline offline on the local Azure emulator")
    rehearse.add_argument("--scenario", metavar="FILE", help="scenario file (JSON); default: a 600-node pool from a VM with two data disks")
    rehearse.add_argument("--json", action="store_true", help="print the report as JSON instead of a timeline")
    rehearse.add_argument("--verbose", action="store_true", help="show the functions' log lines")
    rehearse.set_defaults(run=_rehearse)
    schema = commands.add_parser("schema", help="print the pool request JSON Schema")
    schema.set_defaults(run=_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
