"""The alerts about protected images and lineage, and about failed requests.

Each function decides whether its condition holds, reads the affected pools'
node counts (ARM reads only when the condition is real) and raises one alert
through :func:`shared.alerts.raise_alert` (deduplicated; a failed publish raises).
"""

from __future__ import annotations

import logging

from .alerts import (
    DELETION_BLOCKED,
    IN_USE_IMAGE_DELETED,
    PIPELINE_SOURCE,
    PROTECTION_REMOVED,
    REQUEST_FAILED,
    PoolImpact,
    Severity,
    alert_log,
    raise_alert,
    resource_alert,
)
from .arm_calls import get_or_none
from .arm_ids import BATCH_POOL, GALLERY_IMAGE_VERSION, IMAGE, try_parse
from .dependencies import Dependencies
from .ledger import RequestRecord
from .protection import LOCK_NAME, ResourceUsers, protectable, users_of
from .resource_plan import METADATA_REQUEST, METADATA_TARGET_DEDICATED, METADATA_TARGET_LOW_PRIORITY

log = logging.getLogger(__name__)

RUNBOOK_PROTECTION_REMOVED = (
    "Someone removed the cip-protect lock from a resource a pool still uses: the delete is probably next. Ask who removed "
    "it (Activity Log, the lock's delete operation); if the resource must stay, re-create the lock (CanNotDelete, name "
    "cip-protect); if it must go, move the pools to a new image first.")
RUNBOOK_DELETION_BLOCKED = (
    "A delete of a protected resource was refused by its cip-protect lock: nothing broke. Tell the caller (Activity Log) "
    "that the pools listed still use it; delete the pools (or move them to a new image) before deleting it.")
RUNBOOK_IN_USE_IMAGE_DELETED = (
    "The pools listed can no longer grow: every resize will fail with AllocationFailed (running nodes keep working). "
    "Do not resize them. Restore the resource if you can (a snapshot or image with the same content), or submit a new "
    "pool request from a fresh image and move the workload, then delete these pools.")
RUNBOOK_REQUEST_FAILED = (
    "The pool request failed for the reason given; the resources it created so far stay. Fix the cause (quota, "
    "permissions, source VM prerequisites) and submit the request again with a new requestId.")


def on_protection_removed(deps: Dependencies, lock_id: str, scope: str, lock_name: str) -> bool:
    """Our lock on a resource a pool uses was deleted: the earliest warning of a delete."""
    resource = protectable(scope)
    if resource is None or lock_name.lower() != LOCK_NAME:
        return False
    users = users_of(deps, resource.id)
    if users is None:
        return False
    return _alert(deps, PROTECTION_REMOVED, Severity.WARNING, users, "protection-removed", RUNBOOK_PROTECTION_REMOVED, lockId=lock_id)


def on_deletion_blocked(deps: Dependencies, resource_id: str) -> bool:
    """A delete of a resource a pool uses failed (our lock, most likely)."""
    resource = protectable(resource_id)
    users = users_of(deps, resource.id) if resource is not None else None
    if users is None:
        return False
    return _alert(deps, DELETION_BLOCKED, Severity.WARNING, users, "deletion-blocked", RUNBOOK_DELETION_BLOCKED)


def on_resource_deleted(deps: Dependencies, resource_id: str, *, known_gone: bool = False, seen_by: dict | None = None) -> bool:
    """A resource a pool uses was deleted: critical, once per window.

    ``known_gone``: the caller just read it as missing. ``seen_by``: a pool the
    guard found using it, for a resource gone before it was ever recorded.
    """
    resource = protectable(resource_id)
    users = users_of(deps, resource.id) if resource is not None else None
    if users is None and resource is not None and seen_by is not None:
        users = ResourceUsers(resource.id, {seen_by["id"].lower(): seen_by})
    if users is None or alert_log(deps).recently_sent(IN_USE_IMAGE_DELETED, users.resource_id, deps.now()):
        return False
    if not known_gone and _exists(deps, resource_id):
        # The event is a hint: the resource is there (re-created, or a stale event).
        return False
    return _alert(deps, IN_USE_IMAGE_DELETED, Severity.CRITICAL, users, "in-use-image-deleted", RUNBOOK_IN_USE_IMAGE_DELETED)


def on_request_failed(deps: Dependencies, record: RequestRecord, reason: str) -> bool:
    """A request is about to be recorded FAILED."""
    plan = record.details.get("plan") or {}
    subject = plan.get("poolId") or f"requests/{record.request_id}"
    alert = resource_alert(
        REQUEST_FAILED, Severity.ERROR, subject, condition="request-failed", pools=[], request_ids=[record.request_id],
        runbook=RUNBOOK_REQUEST_FAILED, source=PIPELINE_SOURCE, reason=reason, stage=record.stage.value,
    )
    return raise_alert(deps, alert)


def _alert(deps: Dependencies, alert_type: str, severity: Severity, users: ResourceUsers, condition: str, runbook: str, **extra) -> bool:
    if alert_log(deps).recently_sent(alert_type, users.resource_id, deps.now()):
        return False
    pools = [impact for impact in (_impact(deps, p) for p in users.pools.values()) if impact is not None]
    if not pools:
        log.info("%s on %s: no pool that used it still exists; no alert", condition, users.resource_id)
        return False
    alert = resource_alert(alert_type, severity, users.resource_id, condition=condition, pools=pools,
                           request_ids=users.request_ids, runbook=runbook, **extra)
    return raise_alert(deps, alert)


def _impact(deps: Dependencies, entry: dict) -> PoolImpact | None:
    pool_id = try_parse(entry.get("id", ""), BATCH_POOL)
    if pool_id is None:
        return None
    batch = deps.clients.batch(pool_id.subscription)
    pool = get_or_none("read pool", lambda: batch.pool.get(pool_id.resource_group, pool_id.parent().name, pool_id.name))
    if pool is None:
        return None
    metadata = {m.name: m.value for m in pool.metadata or []}
    fixed = getattr(pool.scale_settings, "fixed_scale", None) if pool.scale_settings is not None else None

    def target(name: str, fallback: int | None) -> int:
        value = metadata.get(name)
        return int(value) if value is not None and value.isdigit() else (fallback or 0)

    return PoolImpact(
        id=pool.id,
        current_dedicated=pool.current_dedicated_nodes or 0,
        target_dedicated=target(METADATA_TARGET_DEDICATED, getattr(fixed, "target_dedicated_nodes", 0)),
        current_low_priority=pool.current_low_priority_nodes or 0,
        target_low_priority=target(METADATA_TARGET_LOW_PRIORITY, getattr(fixed, "target_low_priority_nodes", 0)),
        image_id=entry.get("imageId"),
        request_id=metadata.get(METADATA_REQUEST) or entry.get("requestId"),
    )


def _exists(deps: Dependencies, resource_id: str) -> bool:
    parsed = protectable(resource_id)
    assert parsed is not None
    compute = deps.clients.compute(parsed.subscription)
    if parsed.resource_type == GALLERY_IMAGE_VERSION:
        gallery, definition, version = parsed.names
        read = lambda: compute.gallery_image_versions.get(parsed.resource_group, gallery, definition, version)  # noqa: E731
    elif parsed.resource_type == IMAGE:
        read = lambda: compute.images.get(parsed.resource_group, parsed.name)  # noqa: E731
    else:
        read = lambda: compute.snapshots.get(parsed.resource_group, parsed.name)  # noqa: E731
    found = get_or_none(f"read {resource_id}", read)
    return found is not None and getattr(found, "provisioning_state", None) != "Deleting"
