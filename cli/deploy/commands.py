"""``python -m cli deploy prepare|subscribe`` (azd's hooks) and ``python -m cli teardown``: argument parsing and clients.

The hooks pass azd's subscription (``--subscription "$AZURE_SUBSCRIPTION_ID"``); everything else comes from the
azd environment azd hands a hook (its values and the provision outputs). A failure prints what went wrong and
the fix, and exits non-zero, which stops ``azd up``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from cli.deploy import events, roles, topics
from cli.deploy.environment import Clock, DeployError, EnvWriter, RealClock, azd_env_writer, check_subscription_id, comma_list, id_list, required

EXIT_FAILED = 1
EXIT_NOT_SIGNED_IN = 4


@dataclass
class Clients:
    """Management clients per subscription, built with the same azure-core keywords (``transport=`` on the emulator)."""

    credential: Any
    kwargs: dict[str, Any]

    def __post_init__(self) -> None:
        self._made: dict[tuple[str, str], Any] = {}

    def _client(self, kind: str, subscription: str) -> Any:
        key = (kind, subscription.lower())
        if key not in self._made:
            # cold start: the management SDKs load only for the command that uses them
            if kind == "authorization":
                from azure.mgmt.authorization import AuthorizationManagementClient as Client
            elif kind == "eventgrid":
                from azure.mgmt.eventgrid import EventGridManagementClient as Client  # type: ignore[assignment]
            elif kind == "locks":
                from azure.mgmt.resource.locks import ManagementLockClient as Client  # type: ignore[assignment]
            else:
                from azure.mgmt.web import WebSiteManagementClient as Client  # type: ignore[assignment]
            self._made[key] = Client(self.credential, subscription, **self.kwargs)
        return self._made[key]

    def authorization(self, subscription: str) -> Any:
        return self._client("authorization", subscription)

    def eventgrid(self, subscription: str) -> Any:
        return self._client("eventgrid", subscription)

    def web(self, subscription: str) -> Any:
        return self._client("web", subscription)

    def locks(self, subscription: str) -> Any:
        return self._client("locks", subscription)


def prepare(environ: Mapping[str, str], subscription: str, clients: Clients, clock: Clock, write_env: EnvWriter, out: TextIO) -> None:
    """preprovision: create the custom roles, wait until each can be read by id, find the system topics that exist."""
    values = required(environ, "AZURE_ENV_NAME", "IMAGING_RESOURCE_GROUP_IDS", "BATCH_ACCOUNT_IDS")
    imaging, accounts = id_list(environ, "IMAGING_RESOURCE_GROUP_IDS"), id_list(environ, "BATCH_ACCOUNT_IDS")
    if not imaging or not accounts:
        raise DeployError("IMAGING_RESOURCE_GROUP_IDS and BATCH_ACCOUNT_IDS need at least one id each", "azd env set them (docs/deploy.md)")
    wanted = roles.custom_roles(subscription, values["AZURE_ENV_NAME"], imaging, accounts)
    authorization = clients.authorization(subscription)
    roles.ensure_roles(authorization, wanted)
    waited = roles.wait_until_readable(authorization, wanted, clock)
    for role in wanted:
        print(f"role {role.role_name}: {role.id} (readable" + (f" after {waited[role.key]:.0f} s)" if waited[role.key] else ")"), file=out)
        write_env(roles.ENV_NAMES[role.key], role.id)
    sources = topics.watched_sources(imaging, accounts, environ.get("WATCH_SCOPE", "").strip() or "resourceGroups")
    found = topics.existing_topics(clients.eventgrid, sources)
    for source, topic_id in found.items():
        print(f"reusing system topic {topic_id} for {source}", file=out)
    write_env("EXISTING_SYSTEM_TOPICS", json.dumps(found, separators=(",", ":")))


def subscribe(environ: Mapping[str, str], subscription: str, clients: Clients, clock: Clock, out: TextIO) -> None:
    """postdeploy: subscribe ``resource_events`` to every system topic, once the function is listed in ARM."""
    values = required(environ, "AZURE_ENV_NAME", "AZURE_FUNCTION_APP_ID", "EVENTGRID_DEADLETTER_STORAGE_ID", "EVENTGRID_DEADLETTER_CONTAINER",
                      "EVENTGRID_IDENTITY_ID")
    if values["AZURE_FUNCTION_APP_ID"].strip("/").split("/")[1].lower() != subscription.lower():
        raise DeployError(f"the Function App {values['AZURE_FUNCTION_APP_ID']} is not in subscription {subscription}",
                          "pass azd's subscription: --subscription \"$AZURE_SUBSCRIPTION_ID\"")
    topic_ids = comma_list(environ, "EVENTGRID_SYSTEM_TOPIC_IDS")
    if not topic_ids:
        raise DeployError("EVENTGRID_SYSTEM_TOPIC_IDS is empty", "run azd provision first: its output lists the system topics")
    deployment = events.Deployment(values["AZURE_ENV_NAME"], values["AZURE_FUNCTION_APP_ID"], values["EVENTGRID_DEADLETTER_STORAGE_ID"],
                                   values["EVENTGRID_DEADLETTER_CONTAINER"], values["EVENTGRID_IDENTITY_ID"], tuple(topic_ids))
    events.subscribe(deployment, clients.eventgrid, clients.web(subscription), clock, lambda line: print(line, file=out))


def run_guarded(action: Callable[[], None], err: TextIO) -> int:
    """Run a command; a DeployError or a missing sign-in becomes its message, the fix and an exit code."""
    from azure.core.exceptions import ClientAuthenticationError  # cold start: only the deployment commands use it

    try:
        action()
    except DeployError as exc:
        print(f"error: {exc}\nfix: {exc.fix}", file=err)
        return EXIT_FAILED
    except ClientAuthenticationError as exc:
        print(f"error: not signed in to Azure ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})\n"
              "fix: azd auth login (or az login), then run the command again", file=err)
        return EXIT_NOT_SIGNED_IN
    return 0


def _credential() -> Any:
    from azure.identity import DefaultAzureCredential  # cold start: only the commands that reach Azure load it

    return DefaultAzureCredential()


def _run(args: argparse.Namespace) -> int:
    environ = os.environ

    def action() -> None:
        clients = Clients(_credential(), {})
        if args.deploy_command == "prepare":
            subscription = check_subscription_id(args.subscription)
            prepare(environ, subscription, clients, RealClock(), azd_env_writer(required(environ, "AZURE_ENV_NAME")["AZURE_ENV_NAME"]), sys.stdout)
        else:
            subscribe(environ, check_subscription_id(args.subscription), clients, RealClock(), sys.stdout)

    return run_guarded(action, sys.stderr)


def register(commands: Any) -> None:
    """Add ``deploy`` (the hooks' commands) to the command line's sub-commands."""
    from cli.arguments import help_text

    parser = commands.add_parser("deploy", help="what azd's hooks run: create the custom roles before provisioning, subscribe the events after deploying",
                                 description=help_text(__doc__, drop_first_paragraph=True), formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="deploy_command", required=True)
    prepare_parser = steps.add_parser("prepare", help="preprovision: create the custom roles, wait until ARM can read each by id, find existing system topics")
    subscribe_parser = steps.add_parser("subscribe", help="postdeploy: wait until resource_events is listed, subscribe it to every system topic")
    for step in (prepare_parser, subscribe_parser):
        step.add_argument("--subscription", required=True, metavar="ID", help="azd's subscription (the hooks pass \"$AZURE_SUBSCRIPTION_ID\")")
    parser.set_defaults(run=_run)
