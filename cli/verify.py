"""``python -m cli verify``: check a deployment after ``azd up`` the way the functions will use it, as a table.

Run by an operator (``set -a; eval "$(azd env get-values)"; set +a``, signed in with ``az login``). Every check
is one row, PASS, FAIL or UNKNOWN (could not be checked: the reason says why), with what it saw and, when not
PASS, the fix. It never stops on an error: a refused or failed read is that row's UNKNOWN or FAIL, and the
exit code is 1 unless every row passed (the last line names the rows that did not). It checks:

- the azd outputs it needs are set, and a credential signs in;
- the Function App as ARM shows it: its app settings (read from ARM, not from this shell) are present and
  well-formed; every function of function_app.py is listed for the app (a package missing what
  function_app imports lists none); the Functions host reports ``Running``;
- in every allowed scope the Function App's identity may do exactly what the code does: its role
  assignments at or above the scope (RoleAssignments_ListForScope, ``assignedTo``) and their role
  definitions are evaluated the way ARM does (actions minus notActions, ``*`` wildcards). The permissions
  API answers for the *caller* only, so it is used when ``verify`` runs as the identity (``--as-identity``);
- the data roles the deployment grants: the queues (receive, send), the ledger table, the alerts topic,
  host storage (the Functions host's blobs), Application Insights (telemetry), and the Event Grid
  identity's (dead-letter blobs, the alerts queue);
- every watched source has a system topic carrying the Event Grid identity, and each topic has this
  environment's ``resource_events`` subscription with the right destination, event types and filters;
- optionally (``--canary VM_ID``) a real one-node request end to end, then removal of what it made
  (:mod:`cli.canary`);
- optionally (``--probe-events``) which ARM events Azure really raises for a deleted lock, a refused delete
  and a long-running PUT (:mod:`cli.probe`), after checking that the operator may make and remove the probe's
  resources and write its findings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TextIO

from cli.deploy import events, roles

# What the code does in each kind of scope: the custom roles' actions (cli/deploy/roles.py).
IMAGING_ACTIONS = roles.actions(roles.IMAGING)
BATCH_ACTIONS = roles.actions(roles.BATCH)
SUBSCRIPTION_ACTIONS = roles.actions(roles.BATCH_SKUS)
# On each subscription holding an imaging resource group: the guard's protection audit (shared/protection/audit.py).
AUDIT_ACTIONS = roles.actions(roles.PROTECTION_AUDIT)
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
# The Functions host's own storage: blobs it reads and writes, containers it creates (Storage Blob Data Owner,
# "Connecting to host storage with an identity", Azure Functions developer guide).
HOST_STORAGE_DATA_ACTIONS = (
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
)
HOST_STORAGE_ACTIONS = ("Microsoft.Storage/storageAccounts/blobServices/containers/write",)
# Telemetry with Entra authentication (Monitoring Metrics Publisher on the Application Insights resource).
TELEMETRY = "Microsoft.Insights/Telemetry/Write"
GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
DEAD_LETTER_WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
# What the event probe does as the operator (cli/probe.py): disk, snapshot and lock made and removed, the
# Activity Log read; then the findings written to the ledger.
PROBE_ACTIONS = (
    "Microsoft.Compute/disks/write",
    "Microsoft.Compute/disks/delete",
    "Microsoft.Compute/snapshots/write",
    "Microsoft.Compute/snapshots/delete",
    "Microsoft.Authorization/locks/write",
    "Microsoft.Authorization/locks/delete",
    "Microsoft.Insights/eventtypes/values/read",
)

EVENT_TYPES = frozenset(events.EVENT_TYPES)
SUBJECT_PREFIXES = frozenset(events.SUBJECT_CONTAINS)

# azd outputs of infra/main.bicep (and azd's own AZURE_SUBSCRIPTION_ID, AZURE_ENV_NAME) that verify reads.
OUTPUTS = (
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_ENV_NAME",
    "AZURE_FUNCTION_APP_ID",
    "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID",
    "SERVICEBUS_NAMESPACE_ID",
    "LEDGER_TABLE_ID",
    "ALERTS_TOPIC_ID",
    "EVENTGRID_SYSTEM_TOPIC_IDS",
    "HOST_STORAGE_ID",
    "APPLICATIONINSIGHTS_ID",
    "EVENTGRID_IDENTITY_ID",
    "EVENTGRID_IDENTITY_PRINCIPAL_ID",
    "EVENTGRID_DEADLETTER_CONTAINER",
    "KEY_VAULT_ID",
)
REPROVISION = "run azd provision (then azd hooks run postdeploy) and verify again"
READER = "you need Reader on this scope to verify it (az role assignment create --assignee <you> --role Reader --scope <scope>)"
ARM_SCOPE = "https://management.azure.com/.default"
# azure-mgmt-web 11.0.1's api-version (its _configuration.py default), used for the host status it has no operation for.
WEB_API_VERSION = "2025-05-01"


class Status(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str = ""
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.PASS


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool | Status, detail: str = "", hint: str | None = None) -> Check:
        """One row: ``ok`` is PASS (True), FAIL (False) or a Status; ``hint`` is the fix, shown unless it passed."""
        status = ok if isinstance(ok, Status) else (Status.PASS if ok else Status.FAIL)
        check = Check(name, status, detail, None if status is Status.PASS else hint)
        self.checks.append(check)
        return check

    def unknown(self, name: str, error: BaseException, fix: str) -> Check:
        """A check that could not be made: the error's code and first line are the reason."""
        return self.add(name, Status.UNKNOWN, f"could not check: {_describe(error)}", fix)

    def to_json(self) -> dict[str, Any]:
        """The report as ``verify -o json`` prints it (``--query`` filters it)."""
        return {"ok": self.ok, "checks": [{"check": c.name, "status": c.status.value, "detail": c.detail, "fix": c.fix} for c in self.checks]}

    def render(self, out: TextIO) -> None:
        for check in self.checks:
            print(f"{check.status.value:<7} {check.name}" + (f": {check.detail}" if check.detail else ""), file=out)
            if check.fix:
                print(f"        fix: {check.fix}", file=out)
        counts = {s: sum(c.status is s for c in self.checks) for s in Status}
        print(f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.UNKNOWN]} unknown", file=out)
        if not self.ok:
            names = "; ".join(f"{c.status.value} {c.name}" for c in self.checks if not c.ok)
            print(f"not passed: {names}", file=out)


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


Factory = Callable[[str], Any]


@dataclass
class Verifier:
    """Runs the checks with clients built by the factories (real Azure, or the emulator in tests)."""

    environ: Mapping[str, str]
    credential: Any
    authorization: Factory
    eventgrid: Factory
    servicebus: Factory
    web: Factory
    ledger_table: Callable[[Any], Any]
    as_identity: bool = False
    report: Report = field(default_factory=Report)
    settings: Any = None
    app_settings: dict[str, str] = field(default_factory=dict)

    def run(self) -> Report:
        outputs = self._outputs()
        if outputs is None or not self._signed_in():
            return self.report
        self.settings = self._app_settings(outputs)
        self._functions(outputs)
        self._host(outputs)
        if self.settings is None:
            return self.report
        access = Access(self.authorization, outputs["AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID"], as_identity=self.as_identity)
        for step in (self._scopes, self._queues, self._ledger, self._alerts, self._platform_roles, self._event_grid_identity, self._event_subscriptions):
            try:
                step(outputs, access)
            except Exception as exc:  # noqa: BLE001 - never a traceback: a check that broke is UNKNOWN, named
                self.report.unknown(step.__name__.strip("_").replace("_", " "), exc, "rerun with the message above; if it persists, report it")
        return self.report

    # -- outputs, sign-in, the Function App as ARM shows it -------------------------------------

    def _outputs(self) -> dict[str, str] | None:
        missing = [name for name in OUTPUTS if not self.environ.get(name, "").strip()]
        self.report.add("deployment outputs", not missing, f"missing: {', '.join(missing)}" if missing else "all present",
                        "load them after azd up: set -a; eval \"$(azd env get-values)\"; set +a")
        return None if missing else {name: self.environ[name].strip() for name in OUTPUTS}

    def _signed_in(self) -> bool:
        try:
            self.credential.get_token(ARM_SCOPE)
        except Exception as exc:  # noqa: BLE001 - every credential failure means the same to the operator
            self.report.add("signed in to Azure", False, _describe(exc), "az login (or azd auth login), then verify again")
            return False
        self.report.add("signed in to Azure", True, "a token for Azure Resource Manager")
        return True

    def _site(self, outputs: dict[str, str]) -> tuple[Any, str, str]:
        subscription, resource_group, name = _rg_of(outputs["AZURE_FUNCTION_APP_ID"])
        return self.web(subscription), resource_group, name

    def _app_settings(self, outputs: dict[str, str]) -> Any:
        from shared.settings import ALL_SETTING_NAMES, SettingError, Settings

        name = "app settings of the Function App"
        try:
            client, resource_group, site = self._site(outputs)
            self.app_settings = dict(client.web_apps.list_application_settings(resource_group, site).properties or {})
        except Exception as exc:  # noqa: BLE001 - a refused or failed read is this row's answer
            if _status(exc) == 404:
                self.report.add(name, False, _describe(exc), f"the Function App {outputs['AZURE_FUNCTION_APP_ID']} does not exist: {REPROVISION}")
            else:
                self.report.unknown(name, exc, "you need Website Contributor (or Contributor) on the Function App to read its settings")
            return None
        try:
            settings = Settings.from_environ(self.app_settings)
        except SettingError as exc:
            self.report.add(name, False, str(exc), f"infra/main.bicep sets every app setting: {REPROVISION}")
            return None
        self.report.add(name, True, f"{len(ALL_SETTING_NAMES)} settings present and well-formed (read from ARM)")
        return settings

    def _functions(self, outputs: dict[str, str]) -> None:
        import function_app
        from rehearsal.host import indexed_functions

        expected = sorted(indexed_functions(function_app.app))
        name = "functions of function_app.py listed by ARM"
        try:
            client, resource_group, site = self._site(outputs)
            listed = sorted({f.name.rsplit("/", 1)[-1] for f in client.web_apps.list_functions(resource_group, site)})
        except Exception as exc:  # noqa: BLE001
            self.report.unknown(name, exc, "you need Reader on the Function App to list its functions")
            return
        missing = [f for f in expected if f not in listed]
        self.report.add(name, not missing,
                        f"missing: {', '.join(missing)} (listed: {', '.join(listed) or 'none'})" if missing else ", ".join(listed),
                        "the deployed package lacks what function_app.py imports, or the host failed to index it: check that .funcignore "
                        "keeps handlers/ and shared/ (tests/foundation/test_package.py), redeploy with azd deploy, then read the host's "
                        "errors in Application Insights")

    def _host(self, outputs: dict[str, str]) -> None:
        from azure.core.rest import HttpRequest  # cold start: verify only

        name = "Functions host running"
        try:
            client, resource_group, site = self._site(outputs)
            # No SDK operation reads it; the Azure portal reads {site}/host/default/properties/status (azure-functions-ux
            # FunctionsService.getHostStatus). Sent through the client's own pipeline (credential, retries) with its api-version.
            response = client.send_request(HttpRequest("GET", f"{outputs['AZURE_FUNCTION_APP_ID']}/host/default/properties/status",
                                                        params={"api-version": WEB_API_VERSION}))
            response.raise_for_status()
            status = (response.json() or {}).get("properties") or {}
        except Exception as exc:  # noqa: BLE001
            self.report.unknown(name, exc, "you need Reader on the Function App to read its host status")
            return
        state, errors = status.get("state") or "unknown", status.get("errors") or []
        self.report.add(name, state == "Running", f"state {state}" + (f"; errors: {'; '.join(errors)}" if errors else ""),
                        "read the host's errors above and in Application Insights; restart the app (az functionapp restart) after fixing them")

    # -- the identity's permissions per scope ---------------------------------------------------

    def _scopes(self, outputs: dict[str, str], access: Access) -> None:
        subscriptions: set[str] = set()
        audited: set[str] = set()
        for scope in self.settings.allowed_scopes:
            is_batch = "/providers/microsoft.batch/batchaccounts/" in scope.lower()
            needed = BATCH_ACTIONS if is_batch else IMAGING_ACTIONS
            (subscriptions if is_batch else audited).add("/subscriptions/" + scope.split("/")[2])
            self._actions_at(access, scope, needed, "batch" if is_batch else "imaging")
        for subscription in sorted(subscriptions):
            self._actions_at(access, subscription, SUBSCRIPTION_ACTIONS, "Batch VM sizes", check_extra=False)
        for subscription in sorted(audited):
            self._actions_at(access, subscription, AUDIT_ACTIONS, "protection audit", check_extra=False)

    def _actions_at(self, access: Access, scope: str, needed: tuple[str, ...], kind: str, *, check_extra: bool = True) -> None:
        try:
            permissions = access.at(scope)
        except Exception as exc:  # noqa: BLE001 - an unreadable scope is an UNKNOWN row, named
            self.report.unknown(f"identity may act in {scope}", exc, READER)
            return
        missing = [a for a in needed if not _allowed(permissions, a)]
        self.report.add(
            f"identity may act in {scope}",
            not missing,
            f"missing: {', '.join(missing)}" if missing else f"{len(needed)} {kind} actions granted",
            f"the {kind} custom role (cli/deploy/roles.py) must be assigned here and hold these actions: {REPROVISION}",
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

    def _data_actions(self, name: str, access: Access, scope: str, wanted: Iterable[str], fix: str, *, control: Iterable[str] = ()) -> None:
        """One row: the principal of ``access`` holds these data actions (and control actions) at ``scope``."""
        try:
            permissions = access.at(scope)
        except Exception as exc:  # noqa: BLE001
            self.report.unknown(name, exc, READER)
            return
        missing = [a for a in wanted if not _allowed(permissions, a, data=True)] + [a for a in control if not _allowed(permissions, a)]
        self.report.add(name, not missing, f"missing: {', '.join(missing)}" if missing else scope.rsplit("/", 1)[-1], fix)

    # -- data plane ---------------------------------------------------------------------------

    def _queues(self, outputs: dict[str, str], access: Access) -> None:
        namespace_id = outputs["SERVICEBUS_NAMESPACE_ID"]
        subscription, resource_group, namespace = _rg_of(namespace_id)
        client = self.servicebus(subscription)
        seen: dict[str, bool] = {}
        settings = self.settings
        # It sends to its own requests queue too: a request retried later while Azure or the ledger is down.
        for queue, action in ((settings.pool_requests_queue, RECEIVE), (settings.pool_requests_queue, SEND),
                              (settings.pool_checks_queue, RECEIVE), (settings.pool_checks_queue, SEND)):
            if queue not in seen:
                try:
                    client.queues.get(resource_group, namespace, queue)
                    seen[queue] = True
                    self.report.add(f"queue {queue} exists", True, namespace)
                except Exception as exc:  # noqa: BLE001
                    seen[queue] = False
                    if _status(exc) == 404:
                        self.report.add(f"queue {queue} exists", False, _describe(exc), f"create it (infra/core/servicebus.bicep) or fix the queue setting: {REPROVISION}")
                    else:
                        self.report.unknown(f"queue {queue} exists", exc, READER)
            if not seen[queue]:
                continue
            verb = "receive from" if action == RECEIVE else "send to"
            self._data_actions(f"identity may {verb} {queue}", access, f"{namespace_id}/queues/{queue}", (action,),
                               f"assign Azure Service Bus Data {'Receiver' if action == RECEIVE else 'Sender'} to the identity: {REPROVISION}")

    def _ledger(self, outputs: dict[str, str], access: Access) -> None:
        settings = self.settings
        name = f"ledger table {settings.ledger_table_name} exists"
        try:
            next(iter(self.ledger_table(settings).query_entities("PartitionKey eq 'verify'", results_per_page=1).by_page()), None)
            self.report.add(name, True, settings.ledger_table_endpoint)
        except Exception as exc:  # noqa: BLE001
            self.report.add(name, False, _describe(exc),
                            f"check LEDGER_TABLE_ENDPOINT / LEDGER_TABLE_NAME; you need Storage Table Data Reader on it: {REPROVISION}")
        self._data_actions("identity may write the ledger", access, outputs["LEDGER_TABLE_ID"], LEDGER_DATA_ACTIONS,
                           f"assign Storage Table Data Contributor on the table: {REPROVISION}")

    def _alerts(self, outputs: dict[str, str], access: Access) -> None:
        topic_id = outputs["ALERTS_TOPIC_ID"]
        subscription, resource_group, name = _rg_of(topic_id)
        try:
            topic = self.eventgrid(subscription).topics.get(resource_group, name)
        except Exception as exc:  # noqa: BLE001
            self.report.add("alerts topic exists", False, _describe(exc), f"infra/app/alerts.bicep creates it: {REPROVISION}")
            return
        same = (topic.endpoint or "").rstrip("/").lower() == self.settings.alerts_topic_endpoint.rstrip("/").lower()
        self.report.add("alerts topic exists", same, topic.endpoint or "", "ALERTS_TOPIC_ENDPOINT must be this topic's endpoint")
        self._data_actions("identity may publish alerts", access, topic_id, (PUBLISH,), f"assign EventGrid Data Sender on the topic: {REPROVISION}")

    def _platform_roles(self, outputs: dict[str, str], access: Access) -> None:
        """What the Functions platform does as the identity: host storage, Application Insights, the Key Vault reference."""
        # The platform resolves MESSAGE_SIGNING_KEY's Key Vault reference as the identity (keyVaultReferenceIdentity).
        self._data_actions("identity may read the message signing key", access, f"{outputs['KEY_VAULT_ID']}/secrets/message-signing-key",
                           (GET_SECRET,), f"assign Key Vault Secrets User on the secret (infra/core/keyvault.bicep): {REPROVISION}")
        self._data_actions("identity may use host storage", access, outputs["HOST_STORAGE_ID"], HOST_STORAGE_DATA_ACTIONS,
                           f"assign Storage Blob Data Owner on the storage account (infra/core/storage.bicep): {REPROVISION}", control=HOST_STORAGE_ACTIONS)
        self._data_actions("identity may send telemetry", access, outputs["APPLICATIONINSIGHTS_ID"], (TELEMETRY,),
                           f"assign Monitoring Metrics Publisher on Application Insights (infra/core/monitoring.bicep): {REPROVISION}")

    def _event_grid_identity(self, outputs: dict[str, str], access: Access) -> None:
        """What Event Grid does as the deployment's Event Grid identity: dead-letter blobs, alerts into the ops queue."""
        event_grid = Access(self.authorization, outputs["EVENTGRID_IDENTITY_PRINCIPAL_ID"])
        container = f"{outputs['HOST_STORAGE_ID']}/blobServices/default/containers/{outputs['EVENTGRID_DEADLETTER_CONTAINER']}"
        self._data_actions("Event Grid identity may dead-letter", event_grid, container, (DEAD_LETTER_WRITE,),
                           f"assign Storage Blob Data Contributor on the dead-letter container to the Event Grid identity: {REPROVISION}")
        self._data_actions("Event Grid identity may deliver alerts", event_grid, f"{outputs['SERVICEBUS_NAMESPACE_ID']}/queues/alerts", (SEND,),
                           f"assign Azure Service Bus Data Sender on the alerts queue to the Event Grid identity: {REPROVISION}")

    # -- ARM events -----------------------------------------------------------------------------

    def _event_subscriptions(self, outputs: dict[str, str], access: Access) -> None:
        topic_ids = [t for t in outputs["EVENTGRID_SYSTEM_TOPIC_IDS"].split(",") if t.strip()]
        endpoint = f"{outputs['AZURE_FUNCTION_APP_ID']}/functions/{events.FUNCTION_NAME}".lower()
        wanted = events.subscription_name(outputs["AZURE_ENV_NAME"])
        identity = outputs["EVENTGRID_IDENTITY_ID"].lower()
        sources: list[str] = []
        for topic_id in topic_ids:
            subscription, resource_group, name = _rg_of(topic_id)
            client = self.eventgrid(subscription)
            try:
                topic = client.system_topics.get(resource_group, name)
            except Exception as exc:  # noqa: BLE001
                self.report.add(f"system topic {name} exists", False, _describe(exc), f"{REPROVISION} (the preprovision hook finds the topics that exist)")
                continue
            sources.append(topic.source or "")
            assigned = {k.lower() for k in ((topic.identity.user_assigned_identities or {}) if topic.identity is not None else {})}
            row = f"events of {topic.source} reach resource_events"
            try:
                found = client.system_topic_event_subscriptions.get(resource_group, name, wanted)
            except Exception as exc:  # noqa: BLE001
                self.report.add(row, False, f"no subscription {wanted} on {name}: {_describe(exc)}", "run azd hooks run postdeploy")
                continue
            problems = _subscription_problems(found, endpoint)
            if identity not in assigned:
                problems.append(f"the topic lacks the Event Grid identity {identity.rsplit('/', 1)[-1]} its dead-lettering uses")
            self.report.add(row, not problems, "; ".join(problems) if problems else f"{name}/{wanted}",
                            "run azd hooks run postdeploy (it gives the topic the identity and re-creates the subscription)")
        for scope in self.settings.allowed_scopes:
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


def _status(error: BaseException) -> int | None:
    return getattr(error, "status_code", None)


def _describe(error: BaseException) -> str:
    """An error as one line: ARM's code when there is one, then the first line of the message."""
    code = getattr(getattr(error, "error", None), "code", None)
    text = _first_line(error)
    return f"{code}: {text}" if code and code not in text else text


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _operator_may_probe(environ: Mapping[str, str], authorization: Factory, resource_group_id: str | None, settings: Any, report: Report) -> bool:
    """Before the probe: the operator (the caller: the permissions API) may make and remove its resources and write the findings."""
    group = resource_group_id or next((s for s in settings.allowed_scopes if "/providers/" not in s.lower()), None)
    if group is None:
        report.add("operator may run the event probe", False, "no resource group to probe in", "pass --probe-resource-group")
        return False
    try:
        caller = Access(authorization, "", as_identity=True)
        missing = [a for a in PROBE_ACTIONS if not _allowed(caller.at(group), a)]
        ledger = caller.at(environ["LEDGER_TABLE_ID"])
        missing += [a for a in LEDGER_DATA_ACTIONS if not _allowed(ledger, a, data=True)]
    except Exception as exc:  # noqa: BLE001
        report.unknown("operator may run the event probe", exc, READER)
        return False
    report.add("operator may run the event probe", not missing, f"missing: {', '.join(missing)}" if missing else f"in {group}",
               "the probe needs, as you: Contributor (or disk, snapshot and lock write and delete) on the probed resource group, Monitoring "
               "Reader on its subscription and Storage Table Data Contributor on the ledger table (infra/core/storage.bicep grants it to "
               "the person running azd)")
    return not missing


# -- the command ----------------------------------------------------------------------


def factories(credential: Any, **client_kwargs: Any) -> dict[str, Factory]:
    """Client factories per subscription, with azure-core keywords (``transport=`` on the emulator)."""
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.eventgrid import EventGridManagementClient
    from azure.mgmt.servicebus import ServiceBusManagementClient
    from azure.mgmt.web import WebSiteManagementClient

    def cached(build: Factory) -> Factory:
        made: dict[str, Any] = {}
        return lambda subscription: made.setdefault(subscription.lower(), build(subscription))

    return {
        "authorization": cached(lambda s: AuthorizationManagementClient(credential, s, **client_kwargs)),
        "eventgrid": cached(lambda s: EventGridManagementClient(credential, s, **client_kwargs)),
        "servicebus": cached(lambda s: ServiceBusManagementClient(credential, s, **client_kwargs)),
        "web": cached(lambda s: WebSiteManagementClient(credential, s, **client_kwargs)),
    }


def verify(
    environ: Mapping[str, str],
    credential: Any,
    out: TextIO,
    *,
    as_identity: bool = False,
    canary_vm_id: str | None = None,
    canary: Callable[..., Any] | None = None,
    probe: Callable[..., Any] | None = None,
    probe_resource_group: str | None = None,
    **client_kwargs: Any,
) -> Report:
    """Run every check (then the canary and the event probe when asked), print the table, return the report."""
    from shared.clients import AzureClients

    arm_kwargs = {"base_url": environ.get("ARM_ENDPOINT") or "https://management.azure.com", **client_kwargs}
    made = factories(credential, **arm_kwargs)

    def ledger_table(settings: Any) -> Any:
        return AzureClients(settings, credential=credential).ledger_table()

    verifier = Verifier(environ, credential, made["authorization"], made["eventgrid"], made["servicebus"], made["web"], ledger_table, as_identity=as_identity)
    report = verifier.run()
    # The canary and the probe read the Function App's settings (from ARM) and the azd outputs.
    deployment = {**environ, **verifier.app_settings}
    try:
        if canary_vm_id and report.ok and canary is not None:
            canary(deployment, credential, canary_vm_id, report, **client_kwargs)
        elif canary_vm_id:
            report.add("canary request", False, "not sent: fix the failed checks first", "a canary on a broken deployment would only fail")
        if probe is not None and report.ok and _operator_may_probe(deployment, made["authorization"], probe_resource_group, verifier.settings, report):
            probed = probe(deployment, credential, out, **client_kwargs)
            report.add("event probe", probed.problem is None,
                       f"probe {probed.probe_id}: findings written" if probed.written else (probed.problem or ""),
                       "the table above says which event did not come; docs/deploy.md: Probing Azure's events")
        elif probe is not None and not any(c.name == "operator may run the event probe" for c in report.checks):
            report.add("event probe", False, "not run: fix the failed checks first", "a probe on a broken deployment would learn nothing")
    except Exception as exc:  # noqa: BLE001 - never a traceback
        report.unknown("canary or event probe", exc, "rerun with --verbose for the details")
    report.render(out)
    return report


def run(args: Any) -> int:
    """The ``verify`` sub-command (registered in cli/__main__.py)."""
    import sys
    from functools import partial

    from cli.canary import run_canary
    from cli.output import emit
    from cli.probe import run_probe

    probe = partial(run_probe, resource_group_id=args.probe_resource_group) if args.probe_events else None
    # The table is the default output; asked for another format, the table (and the probe's progress) goes to stderr.
    as_table = args.output == "table" and not args.query
    report = verify(os.environ, _credential(), sys.stdout if as_table else sys.stderr, as_identity=args.as_identity,
                    canary_vm_id=args.canary, canary=run_canary, probe=probe, probe_resource_group=args.probe_resource_group)
    if not as_table:
        emit(report.to_json(), args)
    return 0 if report.ok else 1


def _credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def register(commands: Any) -> None:
    """Add ``verify`` to the command line's sub-commands."""
    import argparse

    from cli.arguments import help_text

    parser = commands.add_parser(
        "verify",
        help="check a deployment after azd up, as a table: outputs, sign-in, the Function App's settings, functions and host, "
             "the identities' permissions, queues, ledger, alerts topic, event subscriptions",
        description=help_text(__doc__, drop_first_paragraph=True),
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
    from cli.output import add_output_arguments

    add_output_arguments(parser)
    parser.set_defaults(run=run)
