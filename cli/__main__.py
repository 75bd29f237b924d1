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
    from cli.output import emit, palette
    from rehearsal.observe import handled_errors_line
    from rehearsal.report import build_report, render_timeline

    if args.json:
        args.output = "json"
    rehearsal = _play(args.scenario)
    report = build_report(rehearsal)
    if args.html:
        from rehearsal.html import render_html

        with open(args.html, "w", encoding="utf-8") as page:
            page.write(render_html(report))
        print(f"wrote {args.html}", file=sys.stderr)
    emit(report, args, table=lambda data: render_timeline(data, palette(sys.stdout)))
    note = handled_errors_line(report["handledErrors"])
    if note and not args.verbose:
        print(palette(sys.stderr).dim(note), file=sys.stderr)
    return EXIT_OK


def _play(scenario_file: str | None):
    """Load (or take the default) scenario and play it; an invalid file is a CliError naming the one problem."""
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import ScenarioError, default_scenario, load_scenario

    try:
        scenario = load_scenario(scenario_file) if scenario_file else default_scenario()
    except ScenarioError as exc:
        raise CliError(f"invalid scenario: {exc}", EXIT_INVALID, "the README's section \"The offline rehearsal and scenario files\" lists every field; examples/ has one file per case") from exc
    return Rehearsal(scenario).run()


def _images(args: argparse.Namespace) -> int:
    from cli.images import inventory, inventory_table
    from cli.output import emit

    if args.rehearsal or args.scenario:
        rehearsal = _play(args.scenario)
        deps = rehearsal.dependencies
        items = inventory(deps.clients, deps.ledger, deps.records, resource_groups=_rehearsal_groups(rehearsal, args.resource_group),
                          batch_accounts=_accounts(deps.settings), now=rehearsal.emulator.now(), alert_window_minutes=deps.settings.alert_dedup_minutes,
                          unused_only=args.unused)
    else:
        from shared import settings as names
        from shared.store.tables import TableLedger

        settings = _settings(names.LEDGER_TABLE_ENDPOINT, *(() if args.resource_group and "/" in args.resource_group else (names.ALLOWED_SCOPES,)))
        clients = _clients(settings)
        ledger = TableLedger(clients.ledger_table())
        items = inventory(clients, ledger, ledger.records(), resource_groups=_resource_groups(settings, args.resource_group),
                          batch_accounts=_accounts(settings), alert_window_minutes=settings.alert_dedup_minutes, unused_only=args.unused)
    emit(items, args, table=inventory_table)
    return EXIT_OK


def _accounts(settings) -> list[str]:
    """Batch accounts whose pools may use the images: those in the allowed scopes and the guarded ones."""
    from shared.arm.ids import BATCH_ACCOUNT, try_parse

    found: dict[str, str] = {}
    for scope in (*settings.allowed_scopes, *settings.guarded_batch_accounts):
        account = try_parse(scope, BATCH_ACCOUNT)
        if account is not None:
            found.setdefault(account.key(), account.id)
    return list(found.values())


def _resource_groups(settings, wanted: str | None) -> list[str]:
    """Resource group ids to list: ``wanted`` (an id, or a name matched against the allowed scopes), else every allowed one."""
    import re

    scopes = [s for s in settings.allowed_scopes if re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/[^/]+", s, re.IGNORECASE)]
    if wanted is None:
        return scopes
    if "/" in wanted:
        return [wanted.rstrip("/")]
    matches = [s for s in scopes if s.rsplit("/", 1)[-1].lower() == wanted.lower()]
    if not matches:
        raise CliError(f"resource group {wanted!r} is not in ALLOWED_SCOPES", EXIT_INVALID,
                       "give its full id (/subscriptions/<sub>/resourceGroups/<name>) or one of: " + ", ".join(s.rsplit("/", 1)[-1] for s in scopes))
    return matches


def _rehearsal_groups(rehearsal, wanted: str | None) -> list[str]:
    groups = sorted({"/".join(resource.id.split("/")[:5]) for resource in rehearsal.emulator.store
                     if resource.type.lower().startswith("microsoft.compute/")})
    if wanted is None:
        return groups
    return [g for g in groups if g.lower() == wanted.lower().rstrip("/") or g.rsplit("/", 1)[-1].lower() == wanted.lower()]


class CliError(Exception):
    """A failure to report: a message, an optional hint and the exit code."""

    def __init__(self, message: str, code: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


# Values for the settings a command does not use: Settings wants every one, a command reads only
# its own (a team member needs only what submit or status use). Never used to reach anything.
_UNUSED_SETTING_PLACEHOLDERS = {
    "SERVICEBUS__fullyQualifiedNamespace": "unused.servicebus.windows.net",
    "POOL_REQUESTS_QUEUE": "unused",
    "ALERTS_TOPIC_ENDPOINT": "https://unused.invalid",
    "LEDGER_TABLE_ENDPOINT": "https://unused.invalid",
    "ALLOWED_SCOPES": "/subscriptions/00000000-0000-0000-0000-000000000000",
    "POOL_CHECKS_QUEUE": "unused",
}

NO_AZD_HINT = (
    "export them in this shell. With an azd environment: set -a; eval \"$(azd env get-values)\"; set +a. "
    "Without one (a team member), ask ops for the values or read them from the Function App: "
    "az functionapp config appsettings list -g <resource group> -n <function app> -o table")


def _settings(*needed: str):
    """The settings a command uses; every missing one is named at once."""
    import os

    from shared.settings import Settings

    missing = [name for name in needed if not os.environ.get(name, "").strip()]
    if missing:
        raise CliError(f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)}", EXIT_SETTINGS, NO_AZD_HINT)
    return Settings.from_environ({**_UNUSED_SETTING_PLACEHOLDERS, **os.environ})


def _clients(settings):
    from shared.clients import AzureClients

    return AzureClients(settings)


def _submit(args: argparse.Namespace) -> int:
    from cli.operations import load_request, submit
    from shared import settings as names

    request = load_request(args.file)
    settings = _settings(names.SERVICEBUS_NAMESPACE, *(() if args.queue else (names.POOL_REQUESTS_QUEUE,)))
    clients = _clients(settings)
    queue = args.queue or clients.settings.pool_requests_queue
    sender = clients.message_sender()
    from shared.messaging import ServiceBusMessageSender

    if isinstance(sender, ServiceBusMessageSender):
        # Fail within seconds, with a hint, rather than after the SDK's long AMQP retries.
        from cli.reach import check_reachable

        check_reachable(settings.servicebus_namespace)
        sender = ServiceBusMessageSender(settings.servicebus_namespace, clients.credential, retry_total=1, retry_backoff_factor=0.5, retry_backoff_max=2)
    sent = submit(request, sender, queue, reply_to=args.reply_to)
    print(sent.request_id)
    print(f"sent to {sent.queue}; follow it with: python -m cli status {sent.request_id} --watch", file=sys.stderr)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from cli.operations import describe, record_json, table, watch
    from cli.output import emit
    from shared import settings as names
    from shared.store.ledger import RequestRecord, Stage
    from shared.store.tables import TableLedger

    if args.request_id is None and args.watch:
        raise CliError("--watch needs a request id", EXIT_INVALID, "python -m cli status lists recent requests and their ids")
    clients = _clients(_settings(names.LEDGER_TABLE_ENDPOINT))
    ledger = TableLedger(clients.ledger_table())
    if args.request_id is None:
        records = ledger.list_recent(args.limit)
        by_id = {r.request_id: r for r in records}
        emit([record_json(r) for r in records], args,
             table=lambda rows: table([by_id[row["requestId"]] for row in rows]))
        return EXIT_OK
    if args.watch:
        record = watch(ledger, clients, args.request_id, sys.stdout, interval=args.interval)
        return EXIT_OK if record.stage is Stage.READY else EXIT_FAILED
    found: RequestRecord = ledger.get(args.request_id)
    emit(record_json(found), args, table=lambda _: describe(found))
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
    from cli.output import palette

    paint = palette(sys.stderr)
    print(f"{paint.red('error:')} {message}", file=sys.stderr)
    print(f"{paint.yellow('hint:')} {hint or 'python -m cli --help lists the commands and exit codes; --verbose (rehearse) shows the details'}", file=sys.stderr)
    return code


def _classify(exc: BaseException) -> CliError | None:
    """Map an exception (or what it wraps) onto a CliError; None if unknown."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    from cli.operations import InvalidRequestFile
    from cli.output import OutputError
    from cli.reach import Unreachable
    from shared.settings import SettingError
    from shared.store.ledger import LedgerError, RequestNotFound

    chain = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for error in chain:
        if isinstance(error, OutputError):
            return CliError(str(error), EXIT_INVALID, error.hint)
        if isinstance(error, Unreachable):
            return CliError(str(error), EXIT_FAILED, error.hint)
        if isinstance(error, InvalidRequestFile):
            return CliError(f"invalid request, not sent: {error}", EXIT_INVALID, "python -m cli schema prints the request format")
        if isinstance(error, SettingError):
            return CliError(str(error).replace("; set it in the Function App configuration", ""), EXIT_SETTINGS, NO_AZD_HINT)
        if isinstance(error, ClientAuthenticationError) or type(error).__name__ == "CredentialUnavailableError":
            return CliError(f"not signed in to Azure ({_first_line(error)})", EXIT_NOT_SIGNED_IN, "sign in with az login (or azd auth login), then retry")
        if type(error).__name__ == "MessagingEntityNotFoundError":
            return CliError(f"the queue does not exist ({_first_line(error)})", EXIT_NOT_FOUND, "check POOL_REQUESTS_QUEUE / --queue and SERVICEBUS__fullyQualifiedNamespace against the deployment")
        if isinstance(error, RequestNotFound):
            return CliError(str(error) or "no such request", EXIT_NOT_FOUND, "python -m cli status lists recent requests")
    for error in chain:
        if type(error).__module__.startswith("azure.servicebus"):
            return CliError(_first_line(error), EXIT_FAILED, "check SERVICEBUS__fullyQualifiedNamespace and your network (AMQP port 5671, or 443); python -m cli status shows what arrived")
        if isinstance(error, (AzureError, LedgerError)):
            return CliError(_first_line(error), EXIT_FAILED, "check the endpoint in the message and your network; retry in a minute if Azure answered 429 or 5xx")
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    from cli.output import add_output_arguments

    parser = argparse.ArgumentParser(
        prog="python -m cli",
        description="Custom-image Batch pools: submit and follow requests on Azure, rehearse offline, print the request format.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rehearse = commands.add_parser("rehearse", help="run the whole pipeline offline on the local Azure emulator")
    rehearse.add_argument("--scenario", metavar="FILE", help="scenario file (JSON); default: a 600-node pool from a VM with two data disks")
    rehearse.add_argument("--json", action="store_true", help="the report as JSON (same as -o json)")
    rehearse.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with a Gantt chart and each pool's node count")
    rehearse.add_argument("--verbose", action="store_true", help="show the functions' log lines (each handled error with its traceback)")
    rehearse.add_argument("--debug", action="store_true", help="--verbose plus the Azure SDK's HTTP logging")
    add_output_arguments(rehearse)
    rehearse.set_defaults(run=_guarded(_rehearse))
    schema = commands.add_parser("schema", help="print the pool request JSON Schema")
    schema.set_defaults(run=_schema)

    images = commands.add_parser(
        "images",
        help="image lineage resources (gallery versions, managed images, snapshots), the pools using them, locks and alerts",
        description="Every image lineage resource the project knows: gallery image versions, managed images and snapshots in the imaging "
                    "resource groups (ALLOWED_SCOPES, or --resource-group), the pools that use each (node counts), its cip-protect lock "
                    "and open alerts. --unused lists what no pool uses any more: candidates for deletion, with size and age. "
                    "Reads the usage records beside the ledger (LEDGER_TABLE_ENDPOINT) and ARM. --rehearsal shows the same for a rehearsal.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    images.add_argument("-g", "--resource-group", metavar="RG", help="only this resource group (a name in ALLOWED_SCOPES, or a full id)")
    images.add_argument("--unused", action="store_true", help="only what no pool uses: candidates for deletion")
    images.add_argument("--rehearsal", action="store_true", help="play the default rehearsal (or --scenario) and list its images instead of Azure's")
    images.add_argument("--scenario", metavar="FILE", help="with --rehearsal: the scenario to play")
    add_output_arguments(images)
    images.set_defaults(run=_guarded(_images))

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
    add_output_arguments(status)
    status.set_defaults(run=_guarded(_status))

    from cli.verify import register as register_verify

    register_verify(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cli.output import quiet_on_closed_pipe

    args = build_parser().parse_args(argv)
    _configure_logging(verbose=getattr(args, "verbose", False), debug=getattr(args, "debug", False))
    return quiet_on_closed_pipe(lambda: args.run(args))


# The Function App's own loggers, and the root logger azure-functions warns on when the app is indexed.
_FUNCTION_LOGGERS = ("shared", "handlers", "function_app", "root")


def _configure_logging(*, verbose: bool, debug: bool) -> None:
    """Quiet by default: warnings of the command itself only.

    --verbose adds the functions' own log lines (INFO and up, each handled error
    with its traceback); --debug adds the Azure SDK's HTTP logging, as az --debug.
    """
    from cli.output import palette

    paint = palette(sys.stderr)
    colours = {"DEBUG": "dim", "INFO": "cyan", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}

    class Coloured(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            return paint.paint(record.levelname, colours.get(record.levelname, "bold")) + text[len(record.levelname):]

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Coloured("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    if not (verbose or debug):
        handler.addFilter(lambda record: record.name.split(".", 1)[0] not in _FUNCTION_LOGGERS)
    if not debug:
        handler.addFilter(lambda record: not record.name.startswith("azure") or record.levelno >= logging.ERROR)
    handler.set_name("cli")
    root = logging.getLogger()
    # Replace only our own handler (main() may run more than once in a process, e.g. in tests).
    for existing in [h for h in root.handlers if h.get_name() == "cli"]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
