"""``python -m cli verify``: check a fresh deployment the way the functions will use it.

Run by an operator after ``azd up`` (``set -a; eval "$(azd env get-values)"; set +a``). Each
check prints PASS or FAIL with what it saw and, when it fails, a hint. Checks:

- the app settings are present and well-formed (``shared.settings``), and the deployment's
  outputs ``verify`` needs are set;
- in every allowed scope the Function App's identity may do exactly what the code does: its
  role assignments at or above the scope (RoleAssignments_ListForScope, ``assignedTo``) and their
  role definitions are evaluated the way ARM does (actions minus notActions, ``*`` wildcards).
  The permissions API (``.../providers/Microsoft.Authorization/permissions``) answers for the
  *caller* only, so it is used when ``verify`` runs as the identity itself (``--as-identity``);
- the queues, the ledger table and the alerts topic exist, and the identity holds the data
  actions it needs on each;
- every watched source has a system topic, and each topic has the ``resource_events``
  subscription with the right destination and filters;
- optionally (``--canary VM_ID``) a real one-node request end to end, then removal of what it made
  (:mod:`cli.canary`);
- optionally (``--probe-events``) which ARM events Azure really raises for a deleted lock, a refused
  delete and a long-running PUT, written where the functions read them (:mod:`cli.probe`).

Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

# What the code does in each kind of scope: the same actions as infra/access/roles.bicep
# (tests/cli/test_verify.py keeps them equal), each checked for the identity.
IMAGING_ACTIONS = (
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/disks/beginGetAccess/action",
    "Microsoft.Compute/snapshots/read",
    "Microsoft.Compute/snapshots/write",
    "Microsoft.Compute/galleries/read",
    "Microsoft.Compute/images/read",
    "Microsoft.Compute/images/write",
    "Microsoft.Compute/galleries/images/read",
    "Microsoft.Compute/galleries/images/write",
    "Microsoft.Compute/galleries/images/versions/read",
    "Microsoft.Compute/galleries/images/versions/write",
    "Microsoft.Authorization/locks/read",
    "Microsoft.Authorization/locks/write",
    "Microsoft.Authorization/locks/delete",
)
BATCH_ACTIONS = (
    "Microsoft.Batch/batchAccounts/read",
    "Microsoft.Batch/batchAccounts/pools/read",
    "Microsoft.Batch/batchAccounts/pools/write",
)
SUBSCRIPTION_ACTIONS = ("Microsoft.Batch/locations/virtualMachineSkus/read",)
# On each subscription holding an imaging resource group: the guard's protection audit (shared/protection/audit.py).
AUDIT_ACTIONS = ("Microsoft.Authorization/locks/read", "Microsoft.Insights/eventtypes/values/read")
# What the identity must never be able to do: delete what it protects, or hand out access.
FORBIDDEN_ACTIONS = (
    "Microsoft.Compute/snapshots/delete",
    "Microsoft.Compute/images/delete",
    "Microsoft.Compute/galleries/images/versions/delete",
    "Microsoft.Batch/batchAccounts/pools/delete",
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Compute/virtualMachines/write",
)
RECEIVE = "Microsoft.ServiceBus/namespaces/messages/receive/action"
SEND = "Microsoft.ServiceBus/namespaces/messages/send/action"
LEDGER_DATA_ACTIONS = (
    "Microsoft.Storage/storageAccounts/tableServices/tables/entities/read",
    "Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action",
    "Microsoft.Storage/storageAccounts/tableServices/tables/entities/update/action",
)
PUBLISH = "Microsoft.EventGrid/events/send/action"

EVENT_SUBSCRIPTION_NAME = "resource-events-to-function"
EVENT_TYPES = frozenset(
    {
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.Resources.ResourceWriteFailure",
        "Microsoft.Resources.ResourceDeleteSuccess",
        "Microsoft.Resources.ResourceDeleteFailure",
    }
)
SUBJECT_PREFIXES = frozenset(
    {
        "/providers/Microsoft.Compute/snapshots/",
        "/providers/Microsoft.Compute/images/",
        "/providers/Microsoft.Compute/galleries/",
        "/providers/Microsoft.Batch/batchAccounts/",
        "/providers/Microsoft.Authorization/locks/",
    }
)

# azd outputs of infra/main.bicep that verify reads besides the app settings (azd sets AZURE_SUBSCRIPTION_ID).
OUTPUTS = (
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_FUNCTION_APP_ID",
    "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID",
    "SERVICEBUS_NAMESPACE_ID",
    "LEDGER_TABLE_ID",
    "ALERTS_TOPIC_ID",
    "EVENTGRID_SYSTEM_TOPIC_IDS",
)
REPROVISION = "run azd provision (then azd hooks run postdeploy) and verify again"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    hint: str | None = None


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "", hint: str | None = None) -> Check:
        check = Check(name, ok, detail, None if ok else hint)
        self.checks.append(check)
        return check

    def render(self, out: TextIO) -> None:
        for check in self.checks:
            print(f"{'PASS' if check.ok else 'FAIL'}  {check.name}" + (f": {check.detail}" if check.detail else ""), file=out)
            if check.hint:
                print(f"      hint: {check.hint}", file=out)
        failed = sum(not c.ok for c in self.checks)
        print(f"{len(self.checks) - failed} passed, {failed} failed", file=out)


def _matches(pattern: str, action: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), action, re.IGNORECASE) is not None


def _covers(outer: str, inner: str) -> bool:
    a, b = outer.rstrip("/").lower(), inner.rstrip("/").lower()
    return a == "" or b == a or b.startswith(a + "/")


@dataclass(frozen=True)
class Permission:
    """One role's permission block, as role definitions and the permissions API carry it."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allows(self, action: str, *, data: bool = False) -> bool:
        granted, denied = (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        return any(_matches(p, action) for p in granted) and not any(_matches(p, action) for p in denied)


def _permission(model: Any) -> Permission:
    return Permission(
        tuple(model.actions or ()), tuple(model.not_actions or ()), tuple(model.data_actions or ()), tuple(model.not_data_actions or ())
    )


class Access:
    """The identity's permissions at a scope, read the way ARM evaluates them."""

    def __init__(self, authorization: Callable[[str], Any], principal_id: str, *, as_identity: bool = False) -> None:
        self._authorization = authorization
        self._principal_id = principal_id
        self._as_identity = as_identity
        self._roles: dict[str, Permission] = {}

    def at(self, scope: str) -> list[Permission]:
        client = self._authorization(scope.split("/")[2])
        if self._as_identity:
            return [_permission(p) for p in _permissions_api(client, scope)]
        permissions = []
        for assignment in client.role_assignments.list_for_scope(scope, filter=f"assignedTo('{self._principal_id}')"):
            # The list holds assignments below the scope too; only those at or above it apply there.
            if not _covers(assignment.scope, scope):
                continue
            role_id = assignment.role_definition_id
            if role_id.lower() not in self._roles:
                definition = client.role_definitions.get_by_id(role_id)
                blocks = [_permission(p) for p in definition.permissions or ()]
                self._roles[role_id.lower()] = Permission(
                    tuple(a for b in blocks for a in b.actions),
                    tuple(a for b in blocks for a in b.not_actions),
                    tuple(a for b in blocks for a in b.data_actions),
                    tuple(a for b in blocks for a in b.not_data_actions),
                )
            permissions.append(self._roles[role_id.lower()])
        return permissions


def _permissions_api(client: Any, scope: str) -> Iterable[Any]:
    parts = scope.strip("/").split("/")
    resource_group = parts[3]
    if len(parts) == 4:
        return client.permissions.list_for_resource_group(resource_group)
    namespace, rest = parts[5], parts[6:]
    parent = "/".join(rest[:-2])
    return client.permissions.list_for_resource(resource_group, namespace, parent, rest[-2], rest[-1])


def _allowed(permissions: list[Permission], action: str, *, data: bool = False) -> bool:
    return any(p.allows(action, data=data) for p in permissions)


def _rg_of(resource_id: str) -> tuple[str, str, str]:
    parts = resource_id.strip("/").split("/")
    return parts[1], parts[3], parts[-1]


@dataclass
class Verifier:
    """Runs the checks with clients built by the factories (real Azure, or the emulator in tests)."""

    environ: Mapping[str, str]
    authorization: Callable[[str], Any]
    eventgrid: Callable[[str], Any]
    servicebus: Callable[[str], Any]
    ledger_table: Callable[[Any], Any]
    as_identity: bool = False
    report: Report = field(default_factory=Report)

    def run(self) -> Report:
        settings = self._settings()
        outputs = self._outputs()
        if settings is None or outputs is None:
            return self.report
        access = Access(self.authorization, outputs["AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID"], as_identity=self.as_identity)
        self._scopes(settings, access)
        self._queues(settings, outputs, access)
        self._ledger(settings, outputs, access)
        self._alerts(settings, outputs, access)
        self._event_subscriptions(settings, outputs)
        return self.report

    # -- settings and outputs -----------------------------------------------------------

    def _settings(self):
        from shared.settings import ALL_SETTING_NAMES, SettingError, Settings

        try:
            settings = Settings.from_environ(self.environ)
        except SettingError as exc:
            self.report.add("app settings", False, str(exc), "export the Function App's settings: set -a; eval \"$(azd env get-values)\"; set +a (README: Command line)")
            return None
        self.report.add("app settings", True, f"{len(ALL_SETTING_NAMES)} settings present and well-formed")
        return settings

    def _outputs(self) -> dict[str, str] | None:
        missing = [name for name in OUTPUTS if not self.environ.get(name, "").strip()]
        self.report.add(
            "deployment outputs", not missing, f"missing: {', '.join(missing)}" if missing else "all present", "load them with azd env get-values after azd up"
        )
        return None if missing else {name: self.environ[name].strip() for name in OUTPUTS}

    # -- the identity's permissions per scope ----------------------------------------------

    def _scopes(self, settings, access: Access) -> None:
        subscriptions: set[str] = set()
        audited: set[str] = set()
        for scope in settings.allowed_scopes:
            is_batch = "/providers/microsoft.batch/batchaccounts/" in scope.lower()
            needed = BATCH_ACTIONS if is_batch else IMAGING_ACTIONS
            (subscriptions if is_batch else audited).add("/subscriptions/" + scope.split("/")[2])
            self._actions_at(access, scope, needed, "batch" if is_batch else "imaging")
        for subscription in sorted(subscriptions):
            self._actions_at(access, subscription, SUBSCRIPTION_ACTIONS, "subscription", check_extra=False)
        for subscription in sorted(audited):
            self._actions_at(access, subscription, AUDIT_ACTIONS, "protection audit", check_extra=False)

    def _actions_at(self, access: Access, scope: str, needed: tuple[str, ...], kind: str, *, check_extra: bool = True) -> None:
        try:
            permissions = access.at(scope)
        except Exception as exc:  # noqa: BLE001 - an unreadable scope is a failed check, named
            self.report.add(f"identity in {scope}", False, _first_line(exc), "you need Reader (or User Access Administrator) on this scope to verify it")
            return
        missing = [a for a in needed if not _allowed(permissions, a)]
        self.report.add(
            f"identity may act in {scope}",
            not missing,
            f"missing: {', '.join(missing)}" if missing else f"{len(needed)} {kind} actions granted",
            f"the {kind} custom role (infra/access/roles.bicep) must be assigned here and hold these actions: {REPROVISION}",
        )
        if not check_extra:
            return
        forbidden = [a for a in FORBIDDEN_ACTIONS if _allowed(permissions, a)]
        # The subscription-wide roles (VM sizes, protection audit) are inherited by every scope below them: expected there too.
        expected = needed + SUBSCRIPTION_ACTIONS + AUDIT_ACTIONS
        extra = sorted({p for perm in permissions for p in perm.actions if not any(_matches(p, n) for n in expected)})
        self.report.add(
            f"identity holds nothing more in {scope}",
            not forbidden and not extra,
            f"can also: {', '.join(forbidden + [e for e in extra if e not in forbidden])}" if (forbidden or extra) else "least privilege",
            "remove the other role assignments of the Function App's identity on this scope (az role assignment list --assignee <principal id> --scope <scope>)",
        )

    # -- data plane ----------------------------------------------------------------------

    def _queues(self, settings, outputs: dict[str, str], access: Access) -> None:
        namespace_id = outputs["SERVICEBUS_NAMESPACE_ID"]
        subscription, resource_group, namespace = _rg_of(namespace_id)
        client = self.servicebus(subscription)
        seen: dict[str, bool] = {}
        for queue, action in ((settings.pool_requests_queue, RECEIVE), (settings.pool_checks_queue, RECEIVE), (settings.pool_checks_queue, SEND)):
            queue_id = f"{namespace_id}/queues/{queue}"
            verb = "receive from" if action == RECEIVE else "send to"
            if queue not in seen:
                try:
                    client.queues.get(resource_group, namespace, queue)
                    seen[queue] = True
                    self.report.add(f"queue {queue} exists", True, namespace)
                except Exception as exc:  # noqa: BLE001
                    seen[queue] = False
                    self.report.add(f"queue {queue} exists", False, _first_line(exc), f"create it (infra/core/servicebus.bicep) or fix the queue setting: {REPROVISION}")
            if not seen[queue]:
                continue
            ok = _allowed(access.at(queue_id), action, data=True)
            self.report.add(f"identity may {verb} {queue}", ok, action, f"assign Azure Service Bus Data {'Receiver' if action == RECEIVE else 'Sender'} to the identity: {REPROVISION}")

    def _ledger(self, settings, outputs: dict[str, str], access: Access) -> None:
        table_id = outputs["LEDGER_TABLE_ID"]
        try:
            next(iter(self.ledger_table(settings).query_entities("PartitionKey eq 'verify'", results_per_page=1).by_page()), None)
            self.report.add(f"ledger table {settings.ledger_table_name} exists", True, settings.ledger_table_endpoint)
        except Exception as exc:  # noqa: BLE001
            self.report.add(
                f"ledger table {settings.ledger_table_name} exists", False, _first_line(exc), f"check LEDGER_TABLE_ENDPOINT / LEDGER_TABLE_NAME; you need Storage Table Data Reader on it: {REPROVISION}"
            )
        permissions = access.at(table_id)
        missing = [a for a in LEDGER_DATA_ACTIONS if not _allowed(permissions, a, data=True)]
        self.report.add(
            "identity may write the ledger", not missing, f"missing: {', '.join(missing)}" if missing else "read, add, update", f"assign Storage Table Data Contributor on the table: {REPROVISION}"
        )

    def _alerts(self, settings, outputs: dict[str, str], access: Access) -> None:
        topic_id = outputs["ALERTS_TOPIC_ID"]
        subscription, resource_group, name = _rg_of(topic_id)
        try:
            topic = self.eventgrid(subscription).topics.get(resource_group, name)
        except Exception as exc:  # noqa: BLE001
            self.report.add("alerts topic exists", False, _first_line(exc), f"infra/app/alerts.bicep creates it: {REPROVISION}")
            return
        same = (topic.endpoint or "").rstrip("/").lower() == settings.alerts_topic_endpoint.rstrip("/").lower()
        self.report.add("alerts topic exists", same, topic.endpoint or "", "ALERTS_TOPIC_ENDPOINT must be this topic's endpoint")
        ok = _allowed(access.at(topic_id), PUBLISH, data=True)
        self.report.add("identity may publish alerts", ok, PUBLISH, f"assign EventGrid Data Sender on the topic: {REPROVISION}")

    # -- ARM events --------------------------------------------------------------------

    def _event_subscriptions(self, settings, outputs: dict[str, str]) -> None:
        topic_ids = [t for t in outputs["EVENTGRID_SYSTEM_TOPIC_IDS"].split(",") if t.strip()]
        endpoint = f"{outputs['AZURE_FUNCTION_APP_ID']}/functions/resource_events".lower()
        sources: list[str] = []
        for topic_id in topic_ids:
            subscription, resource_group, name = _rg_of(topic_id)
            client = self.eventgrid(subscription)
            try:
                topic = client.system_topics.get(resource_group, name)
            except Exception as exc:  # noqa: BLE001
                self.report.add(f"system topic {name} exists", False, _first_line(exc), f"{REPROVISION} (scripts/preprovision finds the topics that exist)")
                continue
            sources.append(topic.source or "")
            try:
                found = client.system_topic_event_subscriptions.get(resource_group, name, EVENT_SUBSCRIPTION_NAME)
            except Exception as exc:  # noqa: BLE001
                self.report.add(
                    f"events of {topic.source} reach resource_events", False, f"no subscription {EVENT_SUBSCRIPTION_NAME} on {name}: {_first_line(exc)}", "run azd hooks run postdeploy"
                )
                continue
            problems = _subscription_problems(found, endpoint)
            self.report.add(
                f"events of {topic.source} reach resource_events",
                not problems,
                "; ".join(problems) if problems else f"{name}/{EVENT_SUBSCRIPTION_NAME}",
                "run azd hooks run postdeploy (it re-deploys infra/events/resource-events-subscription.bicep)",
            )
        for scope in settings.allowed_scopes:
            group = "/".join(scope.split("/")[:5])
            watched = any(_covers(source, group) for source in sources)
            self.report.add(f"ARM events of {group} are watched", watched, "", f"no system topic covers it: {REPROVISION}")


def _subscription_problems(subscription: Any, endpoint: str) -> list[str]:
    problems = []
    destination = subscription.destination
    resource_id = (getattr(destination, "resource_id", None) or "").lower()
    if getattr(destination, "endpoint_type", None) != "AzureFunction" or resource_id != endpoint:
        problems.append(f"destination is {resource_id or destination}, not {endpoint}")
    filters = subscription.filter
    included = set(getattr(filters, "included_event_types", None) or ())
    if included != EVENT_TYPES:
        problems.append(f"event types {sorted(included)} instead of {sorted(EVENT_TYPES)}")
    prefixes = {v for f in getattr(filters, "advanced_filters", None) or () if getattr(f, "key", None) == "subject" for v in getattr(f, "values", None) or ()}
    if not SUBJECT_PREFIXES <= prefixes:
        problems.append(f"subject filter lacks {sorted(SUBJECT_PREFIXES - prefixes)}")
    return problems


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- the command ----------------------------------------------------------------------


def factories(credential: Any, **client_kwargs: Any) -> dict[str, Callable[[str], Any]]:
    """Client factories per subscription, with azure-core keywords (``transport=`` on the emulator)."""
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.eventgrid import EventGridManagementClient
    from azure.mgmt.servicebus import ServiceBusManagementClient

    def cached(build):
        made: dict[str, Any] = {}
        return lambda subscription: made.setdefault(subscription.lower(), build(subscription))

    return {
        "authorization": cached(lambda s: AuthorizationManagementClient(credential, s, **client_kwargs)),
        "eventgrid": cached(lambda s: EventGridManagementClient(credential, s, **client_kwargs)),
        "servicebus": cached(lambda s: ServiceBusManagementClient(credential, s, **client_kwargs)),
    }


def verify(
    environ: Mapping[str, str],
    credential: Any,
    out: TextIO,
    *,
    as_identity: bool = False,
    canary_vm_id: str | None = None,
    canary: Callable[..., None] | None = None,
    probe: Callable[..., Any] | None = None,
    **client_kwargs: Any,
) -> Report:
    """Run every check (then the canary and the event probe when asked), print them, return the report."""
    from shared.clients import AzureClients

    arm_kwargs = {"base_url": environ.get("ARM_ENDPOINT") or "https://management.azure.com", **client_kwargs}
    made = factories(credential, **arm_kwargs)

    def ledger_table(settings):
        return AzureClients(settings, credential=credential).ledger_table()

    report = Verifier(environ, made["authorization"], made["eventgrid"], made["servicebus"], ledger_table, as_identity=as_identity).run()
    if canary_vm_id and report.ok and canary is not None:
        canary(environ, credential, canary_vm_id, report, **client_kwargs)
    elif canary_vm_id and not report.ok:
        report.add("canary request", False, "not sent: fix the failed checks first", "a canary on a broken deployment would only fail")
    if probe is not None and report.ok:
        probed = probe(environ, credential, out, **client_kwargs)
        report.add("event probe", probed.problem is None,
                   f"probe {probed.probe_id}: findings written" if probed.written else (probed.problem or ""),
                   "the table above says which event did not come; README: Probing Azure's events")
    elif probe is not None:
        report.add("event probe", False, "not run: fix the failed checks first", "a probe on a broken deployment would learn nothing")
    report.render(out)
    return report


def run(args: Any) -> int:
    """The ``verify`` sub-command (registered in cli/__main__.py)."""
    import sys
    from functools import partial

    from cli.canary import run_canary
    from cli.probe import run_probe

    probe = partial(run_probe, resource_group_id=args.probe_resource_group) if args.probe_events else None
    report = verify(os.environ, _credential(), sys.stdout, as_identity=args.as_identity, canary_vm_id=args.canary, canary=run_canary,
                    probe=probe)
    return 0 if report.ok else 1


def _credential():
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def register(commands: Any) -> None:
    """Add ``verify`` to the command line's sub-commands."""
    import argparse

    parser = commands.add_parser(
        "verify",
        help="check a deployment after azd up: settings, the identity's permissions, queues, ledger, alerts topic, event subscriptions",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--canary", metavar="VM_ID", help="also send a real 1-node request from this (small) VM, follow it to READY, then remove what it made")
    parser.add_argument("--probe-events", action="store_true",
                        help="also measure which ARM events Azure raises for a deleted lock, a refused delete and a long-running PUT "
                             "(a tiny disk and snapshot, minutes), and write the findings where the functions read them")
    parser.add_argument("--probe-resource-group", metavar="RG_ID",
                        help="where the probe makes its resources (default: the first resource group in ALLOWED_SCOPES); "
                             "its events must reach resource_events")
    parser.add_argument("--as-identity", action="store_true", help="running as the Function App's identity: read its permissions with the ARM permissions API")
    parser.set_defaults(run=run)
