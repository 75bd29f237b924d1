"""The sweep's own look at protection, where ARM's events are not known to tell (:mod:`shared.eventfacts.findings`).

Two facts the event path relies on are unproven until a deployment is probed: that deleting a lock
raises an event, and that a delete refused by a lock raises one. Until a probe says they do, each
sweep looks for itself, at a cost bounded by what changed, not by what exists:

- one Activity Log list per resource group holding in-use resources, over the time since the previous
  look (ActivityLogs_List, filter "eventTimestamp ge/le and resourceGroupName eq"). Entries appear
  "within 3 to 20 minutes of the event occurring" (Azure Monitor, Activity log page), so each look
  reaches back :data:`ACTIVITY_LOG_LAG` before where the previous one ended;
- refused deletes: a failed ``.../delete`` of an in-use resource in those entries is a DeletionBlocked
  (remembered, so it is alerted once);
- removed locks: deleting a lock is a control-plane write the Activity Log records like any other, with
  the operation ``Microsoft.Authorization/locks/delete`` and the lock's own id as the resource (the
  Administrative sample of DataDog/stratus-red-team's azure.impact.resource-lock technique:
  ``operationName.value`` "Microsoft.Authorization/locks/delete", ``properties.entity`` the lock's id
  ".../providers/Microsoft.Authorization/locks/<name>"; the Activity log schema page's Administrative
  sample carries the same id as ``resourceId`` and ``properties.entity``). Each such entry naming our
  ``cip-protect`` lock on an in-use resource is a candidate, confirmed with one read of the lock
  (ManagementLocks_GetByScope: 404 is gone), so a lock deleted and placed again raises nothing. A lock
  found gone is a ProtectionRemoved, once (the usage summary forgets the lock's notes, so the next pool
  to use the resource places it again).
- a full reconciliation, the backstop: one paged list of the management locks of the subscription
  (ManagementLocks_ListAtSubscriptionLevel; its answers list resource-level locks too: recorded in
  Azure/azure-cli, resource module, test_lock_commands_with_ids.yaml and test_cannotdelete_resource_lock.yaml),
  at a subscription's first look (nothing before it was seen) and then every :data:`RECONCILE_EVERY`,
  for an entry the Activity Log lists late or never ("usually" within 20 minutes is not "always").
  When several subscriptions are due, one is listed per look (the others wait for the next looks).

Each subscription's locks and each resource group's Activity Log is read on its own: one that cannot be
read (a 403 where the app's role does not reach, a throttled read) is logged and reported, the rest are
audited, and the unread window (or the lock not confirmed) is read the next time. A scope that stays
unreadable for :data:`UNREADABLE_LOOKS_BEFORE_ALERT` looks in a row raises ProtectionAuditBlind once,
until a look reads it again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..arm.ids import ArmId, resource_key
from ..arm.views import ActivityLogEntry
from ..errors import PermanentError, TransientError
from ..eventfacts.findings import EventFindings
from ..gateway.failures import StepFailed, TransientAzureError
from ..gateway.protocol import LockGateway, MonitorGateway
from ..naming import LOCK_NAME
from ..store.records import KeyedRecord, RecordStore, delete_record, update_record
from .alerts import ProtectionAlerts
from .lineage import lineage_resource
from .locks import forget_lock, in_use_summaries, lock_scope

log = logging.getLogger(__name__)

# Where each resource group's Activity Log was read up to, and the refused deletes already alerted on.
AUDIT_KIND = "protection-audit"
# Per subscription: when its locks were last listed in full, and locks found gone whose alert could not go out yet.
LOCKS_KIND = "protection-audit-locks"
# Per scope the audit could not read: how many looks in a row, and whether ops heard of it.
UNREADABLE_KIND = "protection-audit-unreadable"
ACTIVITY_LOG_LAG = timedelta(minutes=20)
# The first look at a resource group reaches back this far (a refused delete older than that is history).
FIRST_LOOKBACK = timedelta(hours=1)
# How often each subscription's locks are listed in full, against Activity Log entries that come later than
# ACTIVITY_LOG_LAG or never: a day keeps the backstop's cost (one listing) under 1% of the looks.
RECONCILE_EVERY = timedelta(hours=24)
# The Activity Log refuses a start more than 90 days back (400 BadRequest "The start time cannot be more than 90 days in
# the past", recorded in Azure/azure-cli, monitor module, test_activity_log_list_scenario.yaml): after a long stop a look
# starts a little inside that window instead (what fell out of it cannot be read anyway).
ACTIVITY_LOG_RETENTION = timedelta(days=90)
_RETENTION_MARGIN = timedelta(hours=1)
# Refused deletes remembered per resource group (enough for the overlap between two looks).
_REMEMBERED = 200
# A scope unreadable in this many looks in a row is not a passing hiccup: a person should hear of it.
UNREADABLE_LOOKS_BEFORE_ALERT = 2
_LOCK_DELETE = "microsoft.authorization/locks/delete"


@dataclass
class AuditReport:
    """What one look found: lock list pages and lock reads, Activity Log pages read, and the alerts raised."""

    lock_lists: int = 0
    lock_reads: int = 0
    activity_reads: int = 0
    # The subscriptions whose locks this look listed in full (their first look, or RECONCILE_EVERY since the last).
    reconciled: list[str] = field(default_factory=list)
    protection_removed: list[str] = field(default_factory=list)
    deletion_blocked: list[str] = field(default_factory=list)
    # Each scope (a subscription's locks, a resource group's Activity Log) this look could not read, and why.
    unreadable: dict[str, str] = field(default_factory=dict)
    audit_blind: list[str] = field(default_factory=list)


def audit_protection(findings: EventFindings, *, records: RecordStore, locks: LockGateway, monitor: MonitorGateway, alerts: ProtectionAlerts,
                     now: Callable[[], datetime], in_use: list[KeyedRecord] | None = None) -> AuditReport:
    """Look for removed locks and refused deletes of in-use resources, as far as ``findings`` leave it to us.

    ``in_use``: the usage summaries as the sweep read them at its start (read here when not given). They
    must be read before the locks are read: a lock written since shows, one removed is missed.
    """
    report = AuditReport()
    if not (findings.sweep_checks_locks or findings.sweep_checks_refused_deletes):
        return report
    # Each in-use resource parsed once (a fleet's audit meets tens of thousands).
    summaries = [(s, resource) for s in (in_use_summaries(records) if in_use is None else in_use)
                 if (resource := lineage_resource(s.data["resourceId"])) is not None]
    if not summaries:
        return report
    scopes = _Scopes(records, alerts, report)
    moment = now()
    # Lock deletes the Activity Log lists, by the lower-case id of the resource whose lock it names.
    lock_deletes: set[str] = set()
    _read_activity(records, monitor, alerts, moment, summaries, report, scopes, lock_deletes,
                   refused_deletes=findings.sweep_checks_refused_deletes)
    if findings.sweep_checks_locks:
        _removed_locks(records, locks, alerts, moment, [resource for s, resource in summaries if s.data.get("notes")], lock_deletes, report, scopes)
    return report


class _Scopes:
    """Which scopes a look could read: a failure is kept to its scope, counted across looks, alerted once when it persists."""

    def __init__(self, records: RecordStore, alerts: ProtectionAlerts, report: AuditReport) -> None:
        self._records = records
        self._alerts = alerts
        self._report = report
        # One query for every scope unreadable before, not one read per scope per look.
        self._unreadable_before = {record.key for record in records.list(UNREADABLE_KIND)}

    def unreadable(self, scope: str, what: str, error: Exception) -> None:
        log.warning("protection audit: could not read %s of %s (the other scopes are audited; this one is read again next look): %s",
                    what, scope, error)
        self._report.unreadable[scope] = f"{what}: {error}"
        state = update_record(self._records, UNREADABLE_KIND, scope, lambda data: {
            **(data or {}), "unreadableLooks": int((data or {}).get("unreadableLooks") or 0) + 1})
        if state["unreadableLooks"] < UNREADABLE_LOOKS_BEFORE_ALERT or state.get("alerted"):
            return
        if self._alerts.on_audit_blind(scope, what, str(error), state["unreadableLooks"]):
            self._report.audit_blind.append(scope)
        update_record(self._records, UNREADABLE_KIND, scope, lambda data: {**(data or {}), "alerted": True})

    def read(self, scope: str) -> None:
        if scope in self._unreadable_before:
            delete_record(self._records, UNREADABLE_KIND, scope)


def _read_activity(records: RecordStore, monitor: MonitorGateway, alerts: ProtectionAlerts, now: datetime,
                   summaries: list[tuple[KeyedRecord, ArmId]],
                   report: AuditReport, scopes: _Scopes, lock_deletes: set[str], *, refused_deletes: bool) -> None:
    """Read each resource group's Activity Log since the previous look: alert refused deletes (when ``refused_deletes``) and
    collect the lock deletes into ``lock_deletes``."""
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _, resource in summaries:
        groups[(resource.subscription.lower(), resource.resource_group.lower())].add(resource.key())
    for (subscription, group), in_use in sorted(groups.items()):
        key = f"/subscriptions/{subscription}/resourcegroups/{group}"
        state = records.get(AUDIT_KIND, key)
        read_until = state.data.get("activityReadUntil") if state is not None else None
        start = (datetime.fromisoformat(read_until) - ACTIVITY_LOG_LAG) if isinstance(read_until, str) else now - FIRST_LOOKBACK
        start = max(start, now - ACTIVITY_LOG_RETENTION + _RETENTION_MARGIN)
        seen = list(state.data.get("alerted") or []) if state is not None else []
        read_up_to: str | None = now.isoformat()
        try:
            activity = monitor.activity_log(subscription, group, start, now)
        except (StepFailed, TransientAzureError) as error:
            # Where it was read up to stays: the next look reads the window this one missed.
            scopes.unreadable(key, "the Activity Log", error)
            continue
        scopes.read(key)
        report.activity_reads += activity.pages
        for entry in activity.items:
            if entry.operation.lower() == _LOCK_DELETE:
                _note_lock_delete(entry, lock_deletes)
                continue
            if not refused_deletes:
                continue
            if entry.status != "Failed" or not entry.operation.lower().endswith("/delete") or resource_key(entry.resource_id) not in in_use:
                continue
            if entry.event_data_id in seen:
                continue
            raised = _alerted(report, entry.resource_id, lambda: alerts.on_deletion_blocked(entry.resource_id))  # noqa: B023
            if raised is None:
                # Read this window again next look (what was alerted on is remembered, so only this entry is raised again).
                read_up_to = read_until if isinstance(read_until, str) else None
                continue
            if raised:
                report.deletion_blocked.append(entry.resource_id)
            seen.append(entry.event_data_id)
        update_record(records, AUDIT_KIND, key, lambda _: {"activityReadUntil": read_up_to, "alerted": seen[-_REMEMBERED:]})  # noqa: B023


def _note_lock_delete(entry: ActivityLogEntry, lock_deletes: set[str]) -> None:
    """A lock delete (started, succeeded or failed: the lock's own read says what is left) naming our lock."""
    scope = lock_scope(entry.resource_id)
    if scope is not None and scope[1].lower() == LOCK_NAME.lower():
        lock_deletes.add(resource_key(scope[0]))


def _removed_locks(records: RecordStore, locks: LockGateway, alerts: ProtectionAlerts, now: datetime, locked: list[ArmId],
                   lock_deletes: set[str], report: AuditReport, scopes: _Scopes) -> None:
    by_subscription: dict[str, dict[str, ArmId]] = defaultdict(dict)
    for resource in locked:
        by_subscription[resource.subscription.lower()][resource.key()] = resource
    states = {subscription: records.get(LOCKS_KIND, f"/subscriptions/{subscription}") for subscription in by_subscription}
    reconcile = _to_reconcile(states, now)
    for subscription, resources in sorted(by_subscription.items()):
        scope = f"/subscriptions/{subscription}"
        state = states[subscription]
        pending = set(state.data.get("pending") or []) if state is not None else set()
        if subscription in reconcile:
            try:
                listed = locks.subscription_locks(subscription)
            except (StepFailed, TransientAzureError) as error:
                # Still due: the next look lists it again, which finds whatever the Activity Log named meanwhile.
                scopes.unreadable(scope, "management locks", error)
                continue
            scopes.read(scope)
            report.lock_lists += listed.pages
            report.reconciled.append(subscription)
            present = {resource_key(lock.id) for lock in listed.items if lock.id}
            listed_gone = [r for _, r in sorted(resources.items()) if resource_key(_lock_id(r.id)) not in present]
            _alert_gone(records, alerts, scope, state, listed_gone, [], report, reconciled_at=now)
            continue
        gone: list[ArmId] = []
        unconfirmed: list[ArmId] = []
        confirmed = 0
        for key, resource in sorted(resources.items()):
            if key not in lock_deletes and key not in pending:
                continue
            if unconfirmed:  # the locks of this subscription could not be read this look: the rest wait too
                unconfirmed.append(resource)
                continue
            try:
                found = locks.lock(resource, LOCK_NAME)
            except (StepFailed, TransientAzureError) as error:
                scopes.unreadable(scope, "management locks", error)
                unconfirmed.append(resource)
                continue
            report.lock_reads += 1
            confirmed += 1
            if found is None:
                gone.append(resource)
        if confirmed and not unconfirmed:
            scopes.read(scope)
        _alert_gone(records, alerts, scope, state, gone, unconfirmed, report, reconciled_at=None)


def _to_reconcile(states: dict[str, KeyedRecord | None], now: datetime) -> set[str]:
    """The subscriptions whose locks this look lists in full: every one never listed, and the one listed longest ago
    among those due again (one a look: the others wait for the next looks)."""
    never = {subscription for subscription, state in states.items() if _reconciled_at(state) is None}
    due = sorted((when, subscription) for subscription, state in states.items()
                 if (when := _reconciled_at(state)) is not None and now - when >= RECONCILE_EVERY)
    return never | {subscription for _, subscription in due[:1]}


def _reconciled_at(state: KeyedRecord | None) -> datetime | None:
    when = state.data.get("reconciledAt") if state is not None else None
    return datetime.fromisoformat(when) if isinstance(when, str) else None


def _lock_id(resource_id: str) -> str:
    return f"{resource_id}/providers/Microsoft.Authorization/locks/{LOCK_NAME}"


def _alert_gone(records: RecordStore, alerts: ProtectionAlerts, scope: str, state: KeyedRecord | None, gone: list[ArmId],
                unconfirmed: list[ArmId], report: AuditReport, *, reconciled_at: datetime | None) -> None:
    """Alert each resource whose lock is gone, once; keep for the next look those whose alert could not go out and those
    whose lock could not be read (``unconfirmed``); note when the subscription's locks were listed in full."""
    pending = {resource.key() for resource in unconfirmed}
    for resource in gone:
        lock_id = _lock_id(resource.id)
        log.warning("protection audit: the %s lock on %s is gone", LOCK_NAME, resource.id)
        raised = _alerted(report, resource.id, lambda: alerts.on_protection_removed(lock_id, resource.id, LOCK_NAME))  # noqa: B023
        if raised is None:
            pending.add(resource.key())  # the lock is still noted: the next look reads it again and alerts then
            continue
        if raised:
            report.protection_removed.append(resource.id)
        forget_lock(records, resource.id)
    before = sorted(state.data.get("pending") or []) if state is not None else []
    if reconciled_at is None and sorted(pending) == before:
        return  # nothing to note: no write

    def change(data: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(data or {})
        if reconciled_at is not None:
            data["reconciledAt"] = reconciled_at.isoformat()
        data["pending"] = sorted(pending)
        return data

    update_record(records, LOCKS_KIND, scope, change)


def _alerted(report: AuditReport, resource_id: str, raise_alert: Callable[[], bool]) -> bool | None:
    """Whether the alert was raised; None when raising it failed (a pool at risk unreadable, the topic down): the rest
    of the look goes on, and the next look tries this one again."""
    try:
        return raise_alert()
    except (PermanentError, TransientError) as error:
        log.warning("protection audit: could not alert about %s (tried again next look): %s", resource_id, error)
        report.unreadable[resource_id] = f"alert: {error}"
        return None
