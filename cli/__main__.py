"""``python -m cli``: submit and follow pool requests on Azure; rehearse offline; print the request schema.

``submit`` and ``status`` run against real Azure with ``DefaultAzureCredential``
(``az login`` locally) and read the same settings as the Function App from the
environment (``shared/settings.py``). The work itself is in :mod:`cli.operations`;
this module parses arguments, builds the clients and turns failures into a
message with a hint and an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

# Exit codes (also listed in --help).
EXIT_OK = 0
EXIT_FAILED = 1  # an Azure call failed, or the watched request ended FAILED/REJECTED
EXIT_INVALID = 2  # bad arguments or an invalid request file
EXIT_SETTINGS = 3  # an app setting is missing or malformed
EXIT_NOT_SIGNED_IN = 4
EXIT_NOT_FOUND = 5  # the queue or the request does not exist

EXIT_CODES_HELP = """exit codes:
  0  done
  1  an Azure call failed, or the watched request ended FAILED or REJECTED
  2  invalid arguments or request file
  3  an app setting is missing or malformed (see the README settings table)
  4  not signed in to Azure
  5  the queue or the request does not exist"""


def _schema(args: argparse.Namespace) -> int:
    from shared.model.request import json_schema

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


class CliError(Exception):
    """A failure to report: a message, an optional hint and the exit code."""

    def __init__(self, message: str, code: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


def _settings():
    from shared.settings import Settings

    return Settings.from_environ()


def _clients(settings):
    from shared.clients import AzureClients

    return AzureClients(settings)


def _submit(args: argparse.Namespace) -> int:
    from cli.operations import load_request, submit

    request = load_request(args.file)
    clients = _clients(_settings())
    queue = args.queue or clients.settings.pool_requests_queue
    sent = submit(request, clients.message_sender(), queue, reply_to=args.reply_to)
    print(sent.request_id)
    print(f"sent to {sent.queue}; follow it with: python -m cli status {sent.request_id} --watch", file=sys.stderr)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from cli.operations import describe, table, watch
    from shared.store.ledger import Stage
    from shared.store.tables import TableLedger

    clients = _clients(_settings())
    ledger = TableLedger(clients.ledger_table())
    if args.request_id is None:
        if args.watch:
            raise CliError("--watch needs a request id", EXIT_INVALID)
        print(table(ledger.list_recent(args.limit)))
        return EXIT_OK
    if args.watch:
        record = watch(ledger, clients, args.request_id, sys.stdout, interval=args.interval)
        return EXIT_OK if record.stage is Stage.READY else EXIT_FAILED
    print(describe(ledger.get(args.request_id)))
    return EXIT_OK


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the failures a person can fix into a message, a hint and an exit code."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CliError as exc:
            return _report(str(exc), exc.code, exc.hint)
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised when unknown
            failure = _classify(exc)
            if failure is None:
                raise
            return _report(str(failure), failure.code, failure.hint)
        except KeyboardInterrupt:
            return 130

    return guarded


def _report(message: str, code: int, hint: str | None) -> int:
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return code


def _classify(exc: BaseException) -> CliError | None:
    """Map an exception (or what it wraps) onto a CliError; None if unknown."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    from cli.operations import InvalidRequestFile
    from shared.settings import SettingError
    from shared.store.ledger import LedgerError, RequestNotFound

    chain = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for error in chain:
        if isinstance(error, InvalidRequestFile):
            return CliError(f"invalid request, not sent: {error}", EXIT_INVALID, "python -m cli schema prints the request format")
        if isinstance(error, SettingError):
            return CliError(str(error), EXIT_SETTINGS, "the command line reads the Function App's settings from the environment; after azd up: set -a; eval \"$(azd env get-values)\"; set +a; export SERVICEBUS__fullyQualifiedNamespace=$SERVICEBUS_NAMESPACE")
        if isinstance(error, ClientAuthenticationError) or type(error).__name__ == "CredentialUnavailableError":
            return CliError(f"not signed in to Azure ({_first_line(error)})", EXIT_NOT_SIGNED_IN, "sign in with az login (or azd auth login), then retry")
        if type(error).__name__ == "MessagingEntityNotFoundError":
            return CliError(f"the queue does not exist ({_first_line(error)})", EXIT_NOT_FOUND, "check POOL_REQUESTS_QUEUE / --queue and SERVICEBUS__fullyQualifiedNamespace against the deployment")
        if isinstance(error, RequestNotFound):
            return CliError(str(error) or "no such request", EXIT_NOT_FOUND, "python -m cli status lists recent requests")
    for error in chain:
        if isinstance(error, (AzureError, LedgerError)) or type(error).__module__.startswith("azure.servicebus"):
            return CliError(_first_line(error), EXIT_FAILED)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cli",
        description="Custom-image Batch pools: submit and follow requests on Azure, rehearse offline, print the request format.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rehearse = commands.add_parser("rehearse", help="run the whole pipeline offline on the local Azure emulator")
    rehearse.add_argument("--scenario", metavar="FILE", help="scenario file (JSON); default: a 600-node pool from a VM with two data disks")
    rehearse.add_argument("--json", action="store_true", help="print the report as JSON instead of a timeline")
    rehearse.add_argument("--verbose", action="store_true", help="show the functions' log lines")
    rehearse.set_defaults(run=_rehearse)
    schema = commands.add_parser("schema", help="print the pool request JSON Schema")
    schema.set_defaults(run=_schema)

    azure_note = "Runs against Azure as you (DefaultAzureCredential: az login locally) with the Function App's settings from the environment."
    submit = commands.add_parser(
        "submit",
        help="validate a pool request file and send it to the requests queue",
        description="Validate FILE with the model the function uses (an invalid file is not sent), send it to POOL_REQUESTS_QUEUE and print the request id. " + azure_note,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("file", metavar="FILE", help="the request (JSON); see python -m cli schema")
    submit.add_argument("--reply-to", metavar="QUEUE", help="queue the function answers on (the message's ReplyTo)")
    submit.add_argument("--queue", metavar="QUEUE", help="send here instead of POOL_REQUESTS_QUEUE")
    submit.set_defaults(run=_guarded(_submit))

    status = commands.add_parser(
        "status",
        help="one request in detail, or the recent ones as a table",
        description="Read the request ledger. With ID: that request in detail; --watch follows its pool's node count until READY or FAILED. Without: the most recent requests. " + azure_note,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("request_id", metavar="ID", nargs="?", help="request id (what submit printed)")
    status.add_argument("--watch", action="store_true", help="show the pool's node count as a progress bar until READY, FAILED or REJECTED")
    status.add_argument("--interval", type=float, default=15.0, metavar="SECONDS", help="seconds between polls with --watch (default 15)")
    status.add_argument("--limit", type=int, default=20, metavar="N", help="how many recent requests to list (default 20)")
    status.set_defaults(run=_guarded(_status))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
