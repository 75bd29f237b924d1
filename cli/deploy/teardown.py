"""``python -m cli teardown``: remove what the deployment made outside azd's resource group, which ``azd down`` leaves.

``azd down`` deletes the resource group ``rg-<env>`` and everything in it. It leaves:

- the ``resource-events-<env>`` event subscriptions of every watched system topic;
- the system topics main.bicep created in the teams' resource groups (tagged ``azd-env-name``), and on the
  topics it reused, the Event Grid identity the postdeploy hook added;
- the role assignments of the four custom roles (imaging resource groups, Batch accounts, subscriptions), and
  the custom roles themselves, at subscription scope;
- the ``cip-protect`` locks the functions placed on images and their lineage (only with ``--remove-locks``:
  a lock is what keeps an image a pool still uses from being deleted).

Dry run by default: it lists each item with what it would do and why. ``--yes`` removes them, in that order
(a role can be deleted only once its assignments are gone). Nothing a team made is touched: a topic this
deployment did not create, or one that carries other event subscriptions, is kept; an assignment of one of
the roles to another principal is kept (and so is the role), and each is listed as kept with the reason.
Run it before or after ``azd down``, with the same azd environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TextIO

from cli.deploy import events, roles
from cli.deploy.environment import DeployError, comma_list, id_list, required, subscription_of
from shared.naming import LOCK_NAME


@dataclass(frozen=True)
class Item:
    """One thing teardown found: what it is, its id, whether it goes, why, and how to remove it."""

    kind: str
    id: str
    remove: bool
    reason: str
    action: Callable[[], Any] | None = None


def plan(environ: Mapping[str, str], subscription: str, clients: Any, *, remove_locks: bool) -> list[Item]:
    """Everything the deployment made outside its resource group, each marked remove or keep, in removal order."""
    values = required(environ, "AZURE_ENV_NAME", "IMAGING_RESOURCE_GROUP_IDS", "BATCH_ACCOUNT_IDS")
    environment = values["AZURE_ENV_NAME"]
    imaging, accounts = id_list(environ, "IMAGING_RESOURCE_GROUP_IDS"), id_list(environ, "BATCH_ACCOUNT_IDS")
    reused = {v.lower() for v in _json_object(environ, "EXISTING_SYSTEM_TOPICS").values()}
    topic_ids = list(dict.fromkeys([*comma_list(environ, "EVENTGRID_SYSTEM_TOPIC_IDS"), *_json_object(environ, "EXISTING_SYSTEM_TOPICS").values()]))
    identity_id = environ.get("EVENTGRID_IDENTITY_ID", "").strip()
    principal = environ.get("AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID", "").strip().lower()
    items: list[Item] = []
    items += _topic_items(clients, topic_ids, reused, environment, identity_id)
    wanted = roles.custom_roles(subscription, environment, imaging, accounts)
    assignment_items = _assignment_items(clients, wanted, imaging, accounts, principal)
    items += assignment_items
    items += _role_items(clients, wanted, assignment_items)
    items += _lock_items(clients, imaging, remove_locks)
    return items


def _json_object(environ: Mapping[str, str], name: str) -> dict[str, str]:
    raw = environ.get(name, "").strip() or "{}"
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise DeployError(f"{name} is not a JSON object", "the preprovision hook writes it; run azd provision once, or azd env set it to {}") from exc
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _wait(begin: Callable[..., Any], *args: Any) -> None:
    """Start a long-running operation and wait for it to finish."""
    begin(*args).result()


def _parts(resource_id: str) -> list[str]:
    return resource_id.strip("/").split("/")


def _topic_items(clients: Any, topic_ids: list[str], reused: set[str], environment: str, identity_id: str) -> list[Item]:
    from azure.core.exceptions import ResourceNotFoundError  # cold start: only the deployment commands use it
    from azure.mgmt.eventgrid import models  # cold start: only the deployment commands use it

    name = events.subscription_name(environment)
    items: list[Item] = []
    later: list[Item] = []
    for topic_id in topic_ids:
        parts = _parts(topic_id)
        client = clients.eventgrid(parts[1])
        try:
            topic = client.system_topics.get(parts[3], parts[-1])
        except ResourceNotFoundError:
            continue
        subscriptions = [s.name for s in client.system_topic_event_subscriptions.list_by_system_topic(parts[3], parts[-1])]
        if name in subscriptions:
            items.append(Item("event subscription", f"{topic.id}/eventSubscriptions/{name}", True, "this environment's subscription to resource_events",
                              partial(_wait, client.system_topic_event_subscriptions.begin_delete, parts[3], parts[-1], name)))
        others = [s for s in subscriptions if s != name]
        if topic_id.lower() in reused:
            assigned = dict((topic.identity.user_assigned_identities or {}) if topic.identity is not None else {})
            ours = [k for k in assigned if identity_id and k.lower() == identity_id.lower()]
            if ours:
                rest = {k: models.UserIdentityProperties() for k in assigned if k not in ours}
                kind = topic.identity.type if topic.identity is not None else "None"
                kept_kind = ("SystemAssigned, UserAssigned" if rest else "SystemAssigned") if "SystemAssigned" in (kind or "") else ("UserAssigned" if rest else "None")
                update = models.SystemTopicUpdateParameters(identity=models.IdentityInfo(type=kept_kind, user_assigned_identities=rest or None))
                later.append(Item("identity on a reused topic", f"{topic.id} ({identity_id.rsplit('/', 1)[-1]})", True,
                                  "the postdeploy hook added it for dead-lettering; the topic itself is not this deployment's",
                                  partial(_wait, client.system_topics.begin_update, parts[3], parts[-1], update)))
            later.append(Item("system topic", topic.id, False, "reused: it existed before this deployment"))
            continue
        if (topic.tags or {}).get("azd-env-name") != environment:
            later.append(Item("system topic", topic.id, False, f"not tagged azd-env-name={environment}: not made by this deployment"))
        elif others:
            later.append(Item("system topic", topic.id, False, f"carries event subscriptions of others: {', '.join(sorted(others))}"))
        else:
            later.append(Item("system topic", topic.id, True, "created by this deployment for a watched source",
                              partial(_wait, client.system_topics.begin_delete, parts[3], parts[-1])))
    return items + later


def _assignment_scopes(imaging: list[str], accounts: list[str]) -> list[str]:
    """Where main.bicep assigns the custom roles: imaging resource groups, Batch accounts, their subscriptions."""
    scopes = [*imaging, *accounts, *(f"/subscriptions/{subscription_of(a)}" for a in accounts), *(f"/subscriptions/{subscription_of(g)}" for g in imaging)]
    return list(dict.fromkeys(s.lower() for s in scopes))


def _assignment_items(clients: Any, wanted: list[roles.CustomRole], imaging: list[str], accounts: list[str], principal: str) -> list[Item]:
    ours = {role.name.lower(): role for role in wanted}
    items: list[Item] = []
    for scope in _assignment_scopes(imaging, accounts):
        client = clients.authorization(subscription_of(scope))
        for assignment in client.role_assignments.list_for_scope(scope, filter="atScope()"):
            if (assignment.scope or "").lower().rstrip("/") != scope:
                continue
            role = ours.get((assignment.role_definition_id or "").rsplit("/", 1)[-1].lower())
            if role is None:
                continue
            title = roles.TITLES[role.key]
            if principal and (assignment.principal_id or "").lower() != principal:
                items.append(Item("role assignment", assignment.id, False, f"the {title} role assigned to another principal ({assignment.principal_id}): not this deployment's"))
                continue
            items.append(Item("role assignment", assignment.id, True, f"the {title} role for the Function App's identity",
                              partial(client.role_assignments.delete_by_id, assignment.id)))
    return items


def _role_items(clients: Any, wanted: list[roles.CustomRole], assignments: list[Item]) -> list[Item]:
    from azure.core.exceptions import ResourceNotFoundError  # cold start: only the deployment commands use it

    items: list[Item] = []
    for role in wanted:
        client = clients.authorization(role.subscription)
        try:
            client.role_definitions.get_by_id(role.id)
        except ResourceNotFoundError:
            continue
        kept = [a for a in assignments if not a.remove and roles.TITLES[role.key] in a.reason]
        if kept:
            items.append(Item("custom role", role.id, False, f"{role.role_name}: still assigned to another principal"))
            continue
        items.append(Item("custom role", role.id, True, role.role_name,
                          partial(client.role_definitions.delete, f"/subscriptions/{role.subscription}", role.name)))
    return items


def _lock_items(clients: Any, imaging: list[str], remove_locks: bool) -> list[Item]:
    """The cip-protect locks in the imaging resource groups: one subscription-level list each (ManagementLocks_ListAtSubscriptionLevel
    lists the resource-group and resource locks of the subscription too, as its REST spec example shows)."""
    groups = [g.lower() + "/" for g in imaging]
    items: list[Item] = []
    for subscription in dict.fromkeys(subscription_of(g) for g in imaging):
        client = clients.locks(subscription)
        for lock in client.management_locks.list_at_subscription_level():
            if lock.name != LOCK_NAME or not any(lock.id.lower().startswith(g) for g in groups):
                continue
            scope = lock.id[: lock.id.lower().rindex("/providers/microsoft.authorization/locks/")]
            if remove_locks:
                items.append(Item("lock", lock.id, True, "placed by the functions on what a pool used (--remove-locks)",
                                  partial(client.management_locks.delete_by_scope, scope, LOCK_NAME)))
            else:
                items.append(Item("lock", lock.id, False, "protects an image a pool may still use: pass --remove-locks to remove"))
    return items


def render(items: list[Item], *, applied: bool, out: TextIO) -> None:
    """One row per item: what teardown does (or would do) with it, what it is, its id and why."""
    verb = "removed" if applied else "would remove"
    rows = [(verb if item.remove else "kept", item.kind, item.id, item.reason) for item in items]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("ACTION", "WHAT", "ID", "WHY"))]
    for row in [("ACTION", "WHAT", "ID", "WHY"), *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=out)
    removing = sum(item.remove for item in items)
    if not items:
        print("nothing left outside azd's resource group", file=out)
    elif applied:
        print(f"removed {removing}, kept {len(items) - removing}", file=out)
    else:
        print(f"{removing} to remove, {len(items) - removing} kept: run again with --yes to remove them", file=out)


def apply(items: list[Item]) -> list[Item]:
    """Remove every item marked remove, in order; the ones that failed (the error in the reason)."""
    from azure.core.exceptions import HttpResponseError  # cold start: only the deployment commands use it

    failed = []
    for item in items:
        if item.remove and item.action is not None:
            try:
                item.action()
            except HttpResponseError as exc:
                failed.append(Item(item.kind, item.id, False, f"FAILED: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"))
    return failed


def teardown(environ: Mapping[str, str], subscription: str, clients: Any, out: TextIO, *, yes: bool, remove_locks: bool) -> int:
    """List (and with ``yes`` remove) what the deployment left outside its resource group; 1 if a removal failed."""
    items = plan(environ, subscription, clients, remove_locks=remove_locks)
    if not yes:
        render(items, applied=False, out=out)
        return 0
    failed = apply(items)
    failed_ids = {f.id for f in failed}
    render([i for i in items if i.id not in failed_ids] + failed, applied=True, out=out)
    return 1 if failed else 0


def _run(args: argparse.Namespace) -> int:
    from cli.deploy.commands import Clients, _credential, run_guarded
    from cli.deploy.environment import check_subscription_id

    code = [0]

    def action() -> None:
        subscription = check_subscription_id(args.subscription or os.environ.get("AZURE_SUBSCRIPTION_ID", ""))
        code[0] = teardown(os.environ, subscription, Clients(_credential(), {}), sys.stdout, yes=args.yes, remove_locks=args.remove_locks)

    return run_guarded(action, sys.stderr) or code[0]


def register(commands: Any) -> None:
    """Add ``teardown`` to the command line's sub-commands."""
    from cli.arguments import help_text

    parser = commands.add_parser("teardown", help="list (--yes: remove) what the deployment made outside azd's resource group, which azd down leaves",
                                 description=help_text(__doc__, drop_first_paragraph=True), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yes", action="store_true", help="remove what is listed (default: only list it)")
    parser.add_argument("--remove-locks", action="store_true", help="also remove the cip-protect locks on images and their lineage")
    parser.add_argument("--subscription", metavar="ID", help="where the custom roles are (default: AZURE_SUBSCRIPTION_ID of the azd environment)")
    parser.set_defaults(run=_run)
