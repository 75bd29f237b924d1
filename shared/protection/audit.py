"""The sweep's own look at protection, where ARM's events are not known to tell (:mod:`shared.eventfacts.findings`).

Two facts the event path relies on are unproven until a deployment is probed: that deleting a lock
raises an event, and that a delete refused by a lock raises one. Until a probe says they do, each
sweep looks for itself, at a cost that grows with the resources in use, not with the pools using them:

- removed locks: one paged list of the management locks of each subscription holding an in-use
  resource (ManagementLocks_ListAtSubscriptionLevel; its answers list resource-level locks too:
  recorded in Azure/azure-cli, resource module, test_lock_commands_with_ids.yaml and
  test_cannotdelete_resource_lock.yaml). An in-use resource whose ``cip-protect`` lock we wrote and
  that lists none lost its protection: ProtectionRemoved, once (the usage summary forgets the lock's
  notes, so the next pool to use the resource places it again);
- refused deletes: one Activity Log list per resource group holding in-use resources, over the time
  since the previous look (ActivityLogs_List, filter "eventTimestamp ge/le and resourceGroupName eq").
  A failed ``.../delete`` of an in-use resource is a DeletionBlocked. Entries appear "within 3 to 20
  minutes of the event occurring" (Azure Monitor, Activity log page), so each look reaches back
  :data:`ACTIVITY_LOG_LAG` before where the previous one ended, and remembers what it alerted on.

Each subscription's lock list and each resource group's Activity Log is read on its own: one that
cannot be read (a 403 where the app's role does not reach, a throttled read) is logged and reported,
the rest are audited, and the unread window is read the next time. A scope that stays unreadable
for :data:`UNREADABLE_LOOKS_BEFORE_ALERT` looks in a row raises ProtectionAuditBlind once, until a
look reads it again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..arm.ids import resource_key
from ..errors import PermanentError, TransientError
from ..eventfacts.findings import EventFindings
from ..gateway.failures import StepFailed, TransientAzureError
from ..gateway.protocol import LockGateway, MonitorGateway
from ..naming import LOCK_NAME
from ..store.records import KeyedRecord, RecordStore, delete_record, update_record
from .alerts import ProtectionAlerts
from .lineage import lineage_resource
from .locks import forget_lock, in_use_summaries

log = logging.getLogger(__name__)

# Where each resource group's Activity Log was read up to, and the refused deletes already alerted on.
AUDIT_KIND = "protection-audit"
# Per scope the audit could not read: how many looks in a row, and whether ops heard of it.
UNREADABLE_KIND = "protection-audit-unreadable"
ACTIVITY_LOG_LAG = timedelta(minutes=20)
# The first look at a resource group reaches back this far (a refused delete older than that is history).
FIRST_LOOKBACK = timedelta(hours=1)
# The Activity Log refuses a start more than 90 days back (400 BadRequest "The start time cannot be more than 90 days in
# the past", recorded in Azure/azure-cli, monitor module, test_activity_log_list_scenario.yaml): after a long stop a look
# starts a little inside that window instead (what fell out of it cannot be read anyway).
ACTIVITY_LOG_RETENTION = timedelta(days=90)
_RETENTION_MARGIN = timedelta(hours=1)
# Refused deletes remembered per resource group (enough for the overlap between two looks).
_REMEMBERED = 200
# A scope unreadable in this many looks in a row is not a passing hiccup: a person should hear of it.
UNREADABLE_LOOKS_BEFORE_ALERT = 2


@dataclass
class AuditReport:
    """What one look found: locks listed, Activity Log pages read, and the alerts raised."""

    lock_lists: int = 0
    activity_reads: int = 0
    protection_removed: list[str] = field(default_factory=list)
    deletion_blocked: list[str] = field(default_factory=list)
    # Each scope (a subscription's locks, a resource group's Activity Log) this look could not read, and why.
    unreadable: dict[str, str] = field(default_factory=dict)
    audit_blind: list[str] = field(default_factory=list)


def audit_protection(findings: EventFindings, *, records: RecordStore, locks: LockGateway, monitor: MonitorGateway, alerts: ProtectionAlerts,
                     now: Callable[[], datetime], in_use: list[KeyedRecord] | None = None) -> AuditReport:
    """Look for removed locks and refused deletes of in-use resources, as far as ``findings`` leave it to us.

    ``in_use``: the usage summaries as the sweep read them at its start (read here when not given). They
    must be read before the locks are listed: a lock written since shows in the list, one removed is missed.
    """
    report = AuditReport()
    if not (findings.sweep_checks_locks or findings.sweep_checks_refused_deletes):
        return report
    summaries = [s for s in (in_use_summaries(records) if in_use is None else in_use) if lineage_resource(s.data["resourceId"])]
    if not summaries:
        return report
    scopes = _Scopes(records, alerts, report)
    if findings.sweep_checks_locks:
        _removed_locks(records, locks, alerts, [s for s in summaries if s.data.get("notes")], report, scopes)
    if findings.sweep_checks_refused_deletes:
        _refused_deletes(records, monitor, alerts, now(), summaries, report, scopes)
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


def _removed_locks(records: RecordStore, locks: LockGateway, alerts: ProtectionAlerts, locked: list[KeyedRecord], report: AuditReport,
                   scopes: _Scopes) -> None:
    by_subscription: dict[str, list[str]] = defaultdict(list)
    for summary in locked:
        resource = lineage_resource(summary.data["resourceId"])
        assert resource is not None
        by_subscription[resource.subscription.lower()].append(resource.id)
    for subscription, resources in sorted(by_subscription.items()):
        scope = f"/subscriptions/{subscription}"
        try:
            listed = locks.subscription_locks(subscription)
        except (StepFailed, TransientAzureError) as error:
            scopes.unreadable(scope, "management locks", error)
            continue
        scopes.read(scope)
        report.lock_lists += listed.pages
        present = {resource_key(lock.id) for lock in listed.items if lock.id}
        for resource_id in resources:
            lock_id = f"{resource_id}/providers/Microsoft.Authorization/locks/{LOCK_NAME}"
            if resource_key(lock_id) in present:
                continue
            log.warning("protection audit: the %s lock on %s is gone", LOCK_NAME, resource_id)
            raised = _alerted(report, resource_id, lambda: alerts.on_protection_removed(lock_id, resource_id, LOCK_NAME))  # noqa: B023
            if raised is None:
                continue  # the lock is still noted: the next look finds it gone again and alerts then
            if raised:
                report.protection_removed.append(resource_id)
            forget_lock(records, resource_id)


def _refused_deletes(records: RecordStore, monitor: MonitorGateway, alerts: ProtectionAlerts, now: datetime, summaries: list[KeyedRecord],
                     report: AuditReport, scopes: _Scopes) -> None:
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for summary in summaries:
        resource = lineage_resource(summary.data["resourceId"])
        assert resource is not None
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


def _alerted(report: AuditReport, resource_id: str, raise_alert: Callable[[], bool]) -> bool | None:
    """Whether the alert was raised; None when raising it failed (a pool at risk unreadable, the topic down): the rest
    of the look goes on, and the next look tries this one again."""
    try:
        return raise_alert()
    except (PermanentError, TransientError) as error:
        log.warning("protection audit: could not alert about %s (tried again next look): %s", resource_id, error)
        report.unreadable[resource_id] = f"alert: {error}"
        return None
