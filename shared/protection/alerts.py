"""The alerts about protected images and their lineage, and about failed requests.

Each ``on_*`` decides whether its condition holds, reads the affected pools'
node counts (ARM reads only when the condition is real) and raises one alert
through :meth:`shared.alerts.Alerts.raise_alert` (deduplicated; a failed
publish raises, so the delivery is retried).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ..alerts import (
    DELETION_BLOCKED,
    IN_USE_IMAGE_DELETED,
    PROTECTION_AUDIT_BLIND,
    PROTECTION_REMOVED,
    REQUEST_FAILED,
    AlertKind,
    Alerts,
    PoolImpact,
    resource_alert,
)
from ..arm.ids import BATCH_POOL, resource_key, try_parse
from ..arm.pools import BadPoolMetadata, PoolView
from ..gateway.protocol import BatchGateway, ComputeGateway
from ..naming import LOCK_NAME, METADATA_TARGET_DEDICATED, METADATA_TARGET_LOW_PRIORITY
from ..store.ledger import RequestRecord
from ..store.records import RecordStore
from .lineage import LineageReader, lineage_resource
from .locks import ResourceUsers, mark_gone, users_of

log = logging.getLogger(__name__)


class ProtectionAlerts:
    """The alerts about in-use resources: from the usage records (no ARM call) and, only when the condition
    is real, the affected pools' node counts (Batch) and the resource's existence (Compute)."""

    def __init__(self, records: RecordStore, alerts: Alerts, batch: BatchGateway, compute: ComputeGateway) -> None:
        self._records = records
        self._alerts = alerts
        self._batch = batch
        self._compute = compute

    def on_protection_removed(self, lock_id: str, scope: str, lock_name: str) -> bool:
        """Our lock on a resource a pool uses was deleted: the earliest warning of a delete."""
        resource = lineage_resource(scope)
        if resource is None or lock_name.lower() != LOCK_NAME:
            return False
        users = users_of(self._records, resource.id)
        if users is None:
            return False
        return self._alert(PROTECTION_REMOVED, users, lockId=lock_id)

    def on_deletion_blocked(self, resource_id: str) -> bool:
        """A delete of a resource a pool uses failed (our lock, most likely)."""
        resource = lineage_resource(resource_id)
        users = users_of(self._records, resource.id) if resource is not None else None
        if users is None:
            return False
        return self._alert(DELETION_BLOCKED, users)

    def on_resource_deleted(self, resource_id: str, *, known_gone: bool = False, seen_by: dict | None = None) -> bool:
        """A resource a pool uses was deleted: critical, once per window.

        ``known_gone``: the caller just read it as missing. ``seen_by``: a pool the
        guard found using it, for a resource gone before it was ever recorded.
        """
        resource = lineage_resource(resource_id)
        users = users_of(self._records, resource.id) if resource is not None else None
        if users is None and resource is not None and seen_by is not None:
            users = ResourceUsers(resource.id, {resource_key(seen_by["id"]): seen_by})
        if users is None or self._alerts.recently_sent(IN_USE_IMAGE_DELETED, users.resource_id):
            return False
        if not known_gone and LineageReader(self._compute).exists(resource_id):
            # The event is a hint: the resource is there (re-created, or a stale event).
            return False
        # Each pool's next look confirms its lineage before any resize (every resize could only fail now).
        mark_gone(self._records, users.resource_id, [entry["id"] for entry in users.pools.values() if entry.get("id")])
        return self._alert(IN_USE_IMAGE_DELETED, users)

    def on_audit_blind(self, scope: str, what: str, error: str, looks: int) -> bool:
        """The audit could not read ``what`` of ``scope`` for ``looks`` looks in a row: removed locks or refused deletes
        there go unseen until it can."""
        return self._alerts.raise_alert(resource_alert(PROTECTION_AUDIT_BLIND, scope, pools=[], request_ids=[], unreadable=what, looks=looks,
                                                       reason=f"{looks} looks in a row could not read {what}: {error}"))

    def _alert(self, kind: AlertKind, users: ResourceUsers, **extra: Any) -> bool:
        if self._alerts.recently_sent(kind, users.resource_id):
            return False
        pools = [impact for impact in (self._impact(p) for p in users.pools.values()) if impact is not None]
        if not pools:
            log.info("%s on %s: no pool that used it still exists; no alert", kind.condition, users.resource_id)
            return False
        return self._alerts.raise_alert(resource_alert(kind, users.resource_id, pools=pools, request_ids=users.request_ids, **extra))

    def _impact(self, entry: dict) -> PoolImpact | None:
        pool_id = try_parse(entry.get("id", ""), BATCH_POOL)
        if pool_id is None:
            return None
        pool = self._batch.pool(pool_id)
        if pool is None:
            return None
        return PoolImpact(
            id=pool.id,
            current_dedicated=pool.current_dedicated,
            target_dedicated=_target(pool, METADATA_TARGET_DEDICATED, pool.target_dedicated),
            current_low_priority=pool.current_low_priority,
            target_low_priority=_target(pool, METADATA_TARGET_LOW_PRIORITY, pool.target_low_priority),
            image_id=entry.get("imageId"),
            request_id=pool.request_id or entry.get("requestId"),
        )


def on_request_failed(alerts: Alerts, record: RequestRecord, reason: str, *, owns_subject: bool = True) -> bool:
    """A request is about to be recorded FAILED: one alert per request per window.

    The subject is the request's pool when the request owns it, else the request itself: an alert
    never names another team's resource (a pool of the same name made by someone else, say).
    """
    subject = record.pool_id if owns_subject and record.pool_id else f"requests/{record.request_id}"
    alert = resource_alert(REQUEST_FAILED, subject, pools=[], request_ids=[record.request_id], reason=reason, stage=record.stage.value)
    # Per request, not per pool: a resubmission that fails the same way is a new failure to hear about.
    return alerts.raise_alert(replace(alert, dedup_key=f"{REQUEST_FAILED.type}|requests/{record.request_id}"))


def _target(pool: PoolView, name: str, fallback: int) -> int:
    """The requested target kept in metadata; the pool's own target when absent or unreadable (an alert must still go out)."""
    try:
        requested = pool.metadata_count(name)
    except BadPoolMetadata:
        requested = None
    return requested if requested is not None else fallback
