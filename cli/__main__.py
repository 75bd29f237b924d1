"""``cip`` (``pip install .``; ``python -m cli`` in the repository): submit, validate and follow pool requests, rehearse offline.

``submit`` and ``status`` run against real Azure with ``DefaultAzureCredential``
(``az login`` locally) and read the same settings as the Function App from the
environment (``shared/settings.py``). The work itself is in :mod:`cli.operations`;
this module parses arguments, builds the clients and turns failures into a
message with a hint and an exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from cli.arguments import Parser, command_name

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
  3  an app setting is missing or malformed (docs/deploy.md lists every setting)
  4  not signed in to Azure
  5  the queue or the request does not exist"""


def _schema(args: argparse.Namespace) -> int:
    from cli.output import emit
    from shared.model.request import json_schema

    emit(json_schema(), args)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from cli.operations import check_request_file, checked_lines
    from cli.output import emit

    checked = [check_request_file(path, _allowed_scopes()) for path in args.files]
    emit([item.to_json() for item in checked], args, table=lambda _: checked_lines(checked))
    return EXIT_OK if all(item.valid for item in checked) else EXIT_INVALID


def _allowed_scopes() -> tuple[str, ...] | None:
    """``ALLOWED_SCOPES`` parsed as the function parses it, or None when it is not set (ids are then checked for shape only)."""
    from shared import settings as names

    if not _environ().get(names.ALLOWED_SCOPES, "").strip():
        return None
    return _settings(names.ALLOWED_SCOPES).allowed_scopes


def _rehearse(args: argparse.Namespace) -> int:
    from cli.output import emit, palette
    from rehearsal.observe import handled_errors_line
    from rehearsal.report import build_report, render_timeline

    if args.json:
        if args.output_given and args.output != "json":
            raise CliError(f"--json and -o {args.output} ask for two formats", EXIT_INVALID, f"give one: --json (the same as -o json) or -o {args.output}")
        args.output = "json"
    if args.list:
        return _list_scenarios(args)
    files = args.scenario or [None]
    if args.html and len(files) > 1:
        raise CliError("--html writes one scenario's page; give one --scenario", EXIT_INVALID, "run rehearse once per scenario with --html")
    if args.html and not os.path.isdir(os.path.dirname(os.path.abspath(args.html))):
        # Checked before the run: a missing folder found after minutes of rehearsal would throw the run away.
        raise CliError(f"--html {args.html}: the folder {os.path.dirname(os.path.abspath(args.html))} does not exist", EXIT_INVALID,
                       "create it, or name a file in an existing folder")
    reports = [build_report(_play(scenario_file)) for scenario_file in files]
    if args.html:
        from rehearsal.html import render_html

        with open(args.html, "w", encoding="utf-8") as page:
            page.write(render_html(reports[0]))
        print(f"wrote {args.html}", file=sys.stderr)
    if len(reports) == 1:
        emit(reports[0], args, table=lambda data: render_timeline(data, palette(sys.stdout)))
    else:
        emit(reports, args, table=lambda data: "\n\n".join(
            f"== {report['scenario']}\n{render_timeline(report, palette(sys.stdout))}" for report in data))
    for report in reports:
        note = handled_errors_line(report["handledErrors"])
        if note and not args.verbose:
            print(palette(sys.stderr).dim(note), file=sys.stderr)
    return EXIT_OK


def _list_scenarios(args: argparse.Namespace) -> int:
    """The shipped scenarios: file, name and description (a table, or -o json)."""
    from cli.output import emit
    from rehearsal.scenario import ScenarioError, shipped_scenarios

    try:
        listed = [{"file": str(path.relative_to(path.parent.parent)), "name": scenario.name, "description": scenario.description}
                  for path, scenario in shipped_scenarios()]
    except ScenarioError as exc:
        raise CliError(f"a shipped scenario does not load: {exc}", EXIT_FAILED) from exc
    if args.output == "table" and not args.query:
        width = max(len(item["file"]) for item in listed)
        print("\n".join(f"{item['file'].ljust(width)}  {item['description']}" for item in listed))
        return EXIT_OK
    emit(listed, args)
    return EXIT_OK


def _play(scenario_file: str | None):
    """Load (or take the default) scenario and play it; an invalid file is a CliError naming the one problem."""
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import ScenarioError, default_scenario, load_scenario

    try:
        scenario = load_scenario(scenario_file) if scenario_file else default_scenario()
    except ScenarioError as exc:
        raise CliError(f"invalid scenario: {exc}", EXIT_INVALID, "docs/rehearsal.md lists every field; rehearse --list names the shipped examples") from exc
    return Rehearsal(scenario).run()


def _images(args: argparse.Namespace) -> int:
    from cli.images import inventory, inventory_table
    from cli.output import emit

    if args.rehearsal or args.scenario:
        rehearsal = _play(args.scenario)
        deps = rehearsal.services
        items = inventory(rehearsal.clients, deps.ledger, deps.records, resource_groups=_rehearsal_groups(rehearsal, args.resource_group),
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
    "MESSAGE_SIGNING_KEY": "unused-by-the-command-line-0000000000",
}

NO_AZD_HINT = (
    "export them in this shell. With an azd environment: set -a; eval \"$(azd env get-values)\"; set +a. "
    "Without one (a team member), ask ops for the values or read them from the Function App: "
    "az functionapp config appsettings list -g <resource group> -n <function app> -o table")

# App settings whose value azd's environment holds under the name of a provision output (infra/main.bicep):
# `azd env get-values` gives SERVICEBUS_NAMESPACE, the app reads SERVICEBUS__fullyQualifiedNamespace.
AZD_OUTPUT_NAMES = {"SERVICEBUS__fullyQualifiedNamespace": "SERVICEBUS_NAMESPACE"}


def _environ() -> dict[str, str]:
    """The shell's environment, with an app setting taken from its azd output name when only that is set."""
    environ = dict(os.environ)
    for setting, output in AZD_OUTPUT_NAMES.items():
        if not environ.get(setting, "").strip() and environ.get(output, "").strip():
            environ[setting] = environ[output]
    return environ


def _settings(*needed: str):
    """The settings a command uses; every missing one is named at once (with its azd output name where it has one)."""
    from shared.settings import Settings

    environ = _environ()
    missing = [name + (f" (or azd's {AZD_OUTPUT_NAMES[name]})" if name in AZD_OUTPUT_NAMES else "")
               for name in needed if not environ.get(name, "").strip()]
    if missing:
        raise CliError(f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)}", EXIT_SETTINGS, NO_AZD_HINT)
    return Settings.from_environ({**_UNUSED_SETTING_PLACEHOLDERS, **environ})


def _clients(settings):
    from shared.clients import AzureClients

    return AzureClients(settings)


def _submit(args: argparse.Namespace) -> int:
    from cli.operations import load_request, submit
    from shared import settings as names

    request = load_request(args.file, _allowed_scopes())
    settings = _settings(names.SERVICEBUS_NAMESPACE, *(() if args.queue else (names.POOL_REQUESTS_QUEUE,)))
    if args.reply_to and settings.reply_queues and not settings.may_reply_to(args.reply_to):
        print(f"warning: --reply-to {args.reply_to} is not one of REPLY_QUEUES ({', '.join(settings.reply_queues)}): "
              "the function will handle the request but send no reply there", file=sys.stderr)
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
    print(f"sent to {sent.queue}; follow it with: {command_name()} status {sent.request_id} --watch", file=sys.stderr)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from cli.operations import describe, record_json, table, watch
    from cli.output import emit
    from shared import settings as names
    from shared.store.ledger import RequestRecord, Stage
    from shared.store.tables import TableLedger

    if args.request_id is None and args.watch:
        raise CliError("--watch needs a request id", EXIT_INVALID, f"{command_name()} status lists recent requests and their ids")
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
    print(f"{paint.yellow('hint:')} {hint or command_name() + ' --help lists the commands and exit codes; --verbose (rehearse) shows the details'}", file=sys.stderr)
    return code


def local_setting_message(error: BaseException) -> str:
    """A SettingError's message for a command run in a shell: the settings come from its environment, not the Function App."""
    from shared.settings import SettingError

    return str(error).replace(f"; {SettingError.where_to_set}", "") + " (in this shell's environment)"


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
            return CliError(f"invalid request, not sent: {error}", EXIT_INVALID, f"{command_name()} validate FILE names each problem; {command_name()} schema prints the format")
        if isinstance(error, SettingError):
            return CliError(local_setting_message(error), EXIT_SETTINGS, NO_AZD_HINT)
        if isinstance(error, ClientAuthenticationError) or type(error).__name__ == "CredentialUnavailableError":
            return CliError(f"not signed in to Azure ({_first_line(error)})", EXIT_NOT_SIGNED_IN, "sign in with az login (or azd auth login), then retry")
        if type(error).__name__ == "MessagingEntityNotFoundError":
            return CliError(f"the queue does not exist ({_first_line(error)})", EXIT_NOT_FOUND, "check POOL_REQUESTS_QUEUE / --queue and SERVICEBUS__fullyQualifiedNamespace against the deployment")
        if isinstance(error, RequestNotFound):
            return CliError(str(error) or "no such request", EXIT_NOT_FOUND, f"{command_name()} status lists recent requests")
    for error in chain:
        if type(error).__module__.startswith("azure.servicebus"):
            return CliError(_first_line(error), EXIT_FAILED, "check SERVICEBUS__fullyQualifiedNamespace and your network (AMQP port 5671, or 443); status shows what arrived")
        if isinstance(error, (AzureError, LedgerError)):
            return CliError(_first_line(error), EXIT_FAILED, "check the endpoint in the message and your network; retry in a minute if Azure answered 429 or 5xx")
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def build_parser(prog: str = "python -m cli") -> Parser:
    from cli.output import add_output_arguments

    parser = Parser(
        prog=prog,
        description="Custom-image Batch pools: submit, validate and follow requests on Azure, list images and their pools, "
                    "check a deployment, rehearse offline.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate",
        help="check request files as the function would before it needs Azure; print valid or each problem",
        description="Check each FILE with the model the function parses requests with (fields, types, limits, durations), then every "
                    "resource id's shape and type, and, when ALLOWED_SCOPES is set in the environment, that it lies inside those "
                    "scopes: every check the function runs before it reads Azure. Prints \"valid\" or one line per problem; "
                    "nothing is sent and no Azure sign-in is needed. Exit code 2 when a file is invalid.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("files", metavar="FILE", nargs="+", help="request file(s) (JSON)")
    add_output_arguments(validate)
    validate.set_defaults(run=_guarded(_validate))

    azure_note = "Runs against Azure as you (DefaultAzureCredential: az login locally) with the Function App's settings from the environment."
    submit = commands.add_parser(
        "submit",
        help="validate a pool request file and send it to the requests queue",
        description="Check FILE as validate does (an invalid file is not sent), send it to POOL_REQUESTS_QUEUE and print the request id. " + azure_note,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("file", metavar="FILE", help="the request (JSON); its format: schema")
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

    schema = commands.add_parser("schema", help="print the pool request JSON Schema")
    add_output_arguments(schema, default="json", formats=("json", "jsonc", "yaml", "none"))
    schema.set_defaults(run=_guarded(_schema))

    rehearse = commands.add_parser("rehearse", help="run the whole pipeline offline on the local Azure emulator")
    rehearse.add_argument("--scenario", metavar="FILE", nargs="+",
                          help="scenario file(s) (JSON), each played in turn (a shell pattern such as examples/guard-*.json works); "
                               "default: a 600-node pool from a VM with two data disks")
    rehearse.add_argument("--list", action="store_true", help="list the shipped scenarios (examples/) with what each shows, and exit")
    rehearse.add_argument("--json", action="store_true", help="the report as JSON (same as -o json)")
    rehearse.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with a Gantt chart and each pool's node count")
    rehearse.add_argument("--verbose", action="store_true", help="show the functions' log lines (each handled error with its traceback)")
    rehearse.add_argument("--debug", action="store_true", help="--verbose plus the Azure SDK's HTTP logging")
    add_output_arguments(rehearse)
    rehearse.set_defaults(run=_guarded(_rehearse))
    from cli.verify import register as register_verify

    register_verify(commands)
    from cli.deploy.commands import register as register_deploy
    from cli.deploy.teardown import register as register_teardown

    register_deploy(commands)
    register_teardown(commands)
    return parser


def main(argv: list[str] | None = None, *, prog: str = "python -m cli") -> int:
    from cli.arguments import reject_unknown, set_command_name
    from cli.output import quiet_on_closed_pipe, resolve_output

    set_command_name(prog)
    parser = build_parser(prog)
    args, extras = parser.parse_known_args(argv)
    if extras:
        reject_unknown(parser, extras, args)
    resolve_output(args)
    _configure_logging(verbose=getattr(args, "verbose", False), debug=getattr(args, "debug", False))
    return quiet_on_closed_pipe(lambda: args.run(args))


def cip() -> int:
    """The installed command (``[project.scripts]`` in pyproject.toml)."""
    return main(prog="cip")


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
