"""Image protection: which pools use which image and lineage resources, and the locks that keep them.

When a pool starts using an image (the pipeline sees its pool created, or the
guard meets a guarded pool), every resource the pool depends on (the gallery
image version or managed image, the managed image a version came from, the
snapshots) gets a ``CanNotDelete`` lock named ``cip-protect`` whose notes
name the first pools (then "and others"); Azure then refuses to delete it (409 ScopeLocked). Use is counted
per resource: when a pool is deleted (or moves to another image, :func:`move`), each resource it used is
released on its own, and only once no other pool uses it, whichever pool goes first; then its lock goes
(unless ``KEEP_IMAGE_LOCKS``). Locks are only ever deleted when their notes carry
the project's marker, so a lock someone else placed (even under our name) stays.

Usage is recorded in the ledger's store (:mod:`shared.store.records`): per
resource a small summary (``image-use``: the first pools, whether there are
more, the notes last written to its lock), per pool and resource one row
(``image-user``, listed together when an alert must name every pool) and per
pool its resources (``pool-use``). Every record stays small however many pools
share an image. An ARM event about a resource is matched with one point read of
the store and no ARM call, whether or not the resource still exists; a lock is
written only when its notes change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..arm.ids import resource_key
from ..gateway.failures import StepFailed
from ..gateway.protocol import LockGateway
from ..naming import LOCK_NAME, LOCK_NOTES_MARKER
from ..store.records import KeyedRecord, RecordConflict, RecordStore, delete_record, member_key, update_record
from .lineage import lineage_resource

log = logging.getLogger(__name__)

# Per resource: a bounded summary (the first pools by name, whether there are more, the lock notes last written).
IMAGE_USE = "image-use"
# Per pool: its image and every resource it uses (bounded by the lineage's length).
POOL_USE = "pool-use"
# Per (resource, pool): one small row each, listed together (RecordStore.list) when an alert must name every pool.
IMAGE_USER = "image-user"
# Pools named in a lock's notes; past them the notes say "and others" and stop changing, so the lock is not rewritten.
_NAMED_POOLS = 4
# Azure caps a management lock's notes at 512 characters (Microsoft.Authorization/locks REST spec, ManagementLockProperties.notes).
_MAX_NOTES = 512
_LOCK_SEGMENT = "/providers/microsoft.authorization/locks/"


@dataclass(frozen=True)
class ImageUse:
    """One pool using one image: the image first, then every resource it was made from."""

    pool_id: str
    image_id: str
    lineage: tuple[str, ...]
    request_id: str | None = None

    @property
    def resources(self) -> tuple[str, ...]:
        seen: dict[str, str] = {}
        for resource in (self.image_id, *self.lineage):
            seen.setdefault(resource_key(resource), resource)
        return tuple(seen.values())


@dataclass(frozen=True)
class ResourceUsers:
    """The pools that use one resource, as recorded."""

    resource_id: str
    pools: dict[str, dict[str, Any]]  # lower-case pool id -> {"id", "requestId", "imageId"}

    @property
    def request_ids(self) -> list[str]:
        return sorted({p["requestId"] for p in self.pools.values() if p.get("requestId")})


def lock_scope(lock_id: str) -> tuple[str, str] | None:
    """``(scope, lock name)`` of a lock resource id; None when it is not one."""
    at = lock_id.lower().rfind(_LOCK_SEGMENT)
    if at <= 0:
        return None
    name = lock_id[at + len(_LOCK_SEGMENT):]
    return (lock_id[:at], name) if name and "/" not in name else None


def users_of(records: RecordStore, resource_id: str) -> ResourceUsers | None:
    """Every pool recorded as using ``resource_id`` (no ARM call); None when none.

    One point read of the resource's summary answers "not in use" (every delete event of
    a resource nobody uses); only a resource in use costs the query of its per-pool rows.
    """
    summary = records.get(IMAGE_USE, resource_id)
    if summary is None:
        return None
    pools = dict(summary.data.get("pools") or {})  # a summary written before per-pool rows listed its pools itself
    for row in records.list(IMAGE_USER, resource_id):
        pools[resource_key(row.data["id"])] = {k: row.data.get(k) for k in ("id", "requestId", "imageId")}
    return ResourceUsers(summary.data["resourceId"], pools) if pools else None


def recorded_request(records: RecordStore, pool_id: str) -> str | None:
    """The request a protected pool was made for, as recorded (one store read, no ARM call); None when not recorded."""
    record = records.get(POOL_USE, pool_id)
    request_id = record.data.get("requestId") if record is not None else None
    return request_id if isinstance(request_id, str) else None


def recorded_lineage(records: RecordStore, pool_id: str, image_id: str) -> tuple[str, ...] | None:
    """What ``image_id`` was made from, as recorded when ``pool_id`` was protected; None when not recorded for that image.

    One store read: after its first protection a pool's lineage never needs an ARM read again.
    """
    record = records.get(POOL_USE, pool_id)
    if record is None or resource_key(str(record.data.get("imageId", ""))) != resource_key(image_id):
        return None
    return tuple(r for r in record.data.get("resources", []) if resource_key(r) != resource_key(image_id))


def mark_gone(records: RecordStore, resource_id: str, pool_ids: list[str]) -> None:
    """Note on each pool's usage record that ``resource_id`` was found gone: a look at the pool that reads nothing from
    ARM (a scheduled pool check) then confirms its whole lineage before it would resize. Pools not recorded are skipped."""
    for pool_id in pool_ids:
        if records.get(POOL_USE, pool_id) is None:
            continue
        update_record(records, POOL_USE, pool_id, lambda data: {
            **(data or {}), "gone": sorted({*((data or {}).get("gone") or []), resource_key(resource_id)})})


def recorded_gone(records: RecordStore, pool_id: str) -> list[str]:
    """The resources of the pool's lineage noted as gone (:func:`mark_gone`); one point read, no ARM call."""
    record = records.get(POOL_USE, pool_id)
    return list(record.data.get("gone") or []) if record is not None else []


def recorded_pools(records: RecordStore) -> list[str]:
    """Every pool recorded as using an image (one query, no ARM call)."""
    return [str(record.data["poolId"]) for record in records.list(POOL_USE) if record.data.get("poolId")]


def in_use_summaries(records: RecordStore) -> list[KeyedRecord]:
    """The usage summary of every resource some pool is recorded as using: one query, no ARM call."""
    return [record for record in records.list(IMAGE_USE) if record.data.get("resourceId")]


def protect(records: RecordStore, locks: LockGateway, use: ImageUse) -> list[str]:
    """Record the use and lock every resource of it; the ids locked now. Idempotent.

    Bounded whatever the number of pools: one row per (resource, pool), a small summary per
    resource, and a lock written only when its notes change (at most ``_NAMED_POOLS`` + 1
    times in a resource's life). A scope we may not lock (403, gone) is logged and skipped:
    protection never fails a pool. Transient ARM errors raise, so the delivery is retried.
    """
    resources = _lineage_resources(use)
    update_record(records, POOL_USE, use.pool_id, _pool_use(use, resources))
    return _use_each(records, locks, use, resources)


def move(records: RecordStore, locks: LockGateway, use: ImageUse, *, keep_locks: bool) -> tuple[list[str], list[str]]:
    """A pool now uses another image (a refresh): protect the new lineage, then release each resource of the old one
    that the pool no longer uses, per resource and only where no other pool uses it. ``(locked, unlocked)``. Idempotent.

    The new lineage is locked before anything of the old is released, and the pool's record names the new image only
    once the old is released: a delivery that dies half way leaves both locked, and the next one finishes the move.
    """
    resources = _lineage_resources(use)
    locked = _use_each(records, locks, use, resources)
    current = records.get(POOL_USE, use.pool_id)
    kept = {resource_key(resource) for resource in resources}
    left = [r for r in (current.data.get("resources", []) if current is not None else []) if resource_key(r) not in kept]
    unlocked = _release_each(records, locks, use.pool_id, left, keep_locks=keep_locks)
    update_record(records, POOL_USE, use.pool_id, _pool_use(use, resources))
    return locked, unlocked


def release(records: RecordStore, locks: LockGateway, pool_id: str, *, keep_locks: bool) -> list[str]:
    """Forget a deleted pool; unlock each resource no pool uses any more (unless ``keep_locks``). The ids unlocked."""
    pool_record = records.get(POOL_USE, pool_id)
    if pool_record is None:
        return []
    unlocked = _release_each(records, locks, pool_id, pool_record.data.get("resources", []), keep_locks=keep_locks)
    delete_record(records, POOL_USE, pool_id)
    return unlocked


def _lineage_resources(use: ImageUse) -> list[str]:
    return [r for r in use.resources if lineage_resource(r) is not None]


def _pool_use(use: ImageUse, resources: list[str]) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """The change that makes a pool's record name ``use``: its image, every resource it uses, its request."""
    return lambda _: {"poolId": use.pool_id, "imageId": use.image_id, "resources": resources, "requestId": use.request_id}


def _use_each(records: RecordStore, locks: LockGateway, use: ImageUse, resources: list[str]) -> list[str]:
    """Count the pool in as a user of each resource (its row, the resource's summary) and lock it; the ids locked now."""
    entry = {"id": use.pool_id, "requestId": use.request_id, "imageId": use.image_id}
    locked = []
    for resource in resources:
        update_record(records, IMAGE_USER, member_key(resource, use.pool_id), _row({"resourceId": resource, **entry}))
        summary = update_record(records, IMAGE_USE, resource, _with_pool(resource, use.pool_id))
        if _sync_lock(records, locks, resource, summary):
            locked.append(resource)
    return locked


def _release_each(records: RecordStore, locks: LockGateway, pool_id: str, resources: list[str], *, keep_locks: bool) -> list[str]:
    """Count the pool out of each resource; unlock each that no pool uses any more (unless ``keep_locks``). The ids unlocked.

    Per resource, whichever pool goes first: a resource another pool still uses keeps its lock (its notes renamed).
    """
    unlocked = []
    for resource in resources:
        delete_record(records, IMAGE_USER, member_key(resource, pool_id))
        remaining = [row.data["id"] for row in records.list(IMAGE_USER, resource)]
        data = update_record(records, IMAGE_USE, resource, _without_pool(resource, pool_id, remaining))
        if data.get("named") or data.get("pools"):
            _sync_lock(records, locks, resource, data)
            continue
        # The record goes first: the lock's delete event must not read as "protection removed".
        delete_record(records, IMAGE_USE, resource, only_if=lambda d: not d.get("named") and not d.get("pools"))
        if not keep_locks and _remove_our_lock(locks, resource):
            unlocked.append(resource)
    return unlocked


def forget_lock(records: RecordStore, resource_id: str) -> None:
    """Our lock on an in-use resource is gone: forget its notes, so it is alerted once and the next protect places it again."""
    current = records.get(IMAGE_USE, resource_id)
    if current is None or "notes" not in current.data:
        return
    try:
        records.replace(current, {k: v for k, v in current.data.items() if k != "notes"})
    except RecordConflict:
        pass  # changed meanwhile (a protect re-synced the lock, or a release): nothing left to forget


def _row(data: dict[str, Any]) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """The change that makes a (resource, pool) row ``data``, whatever it held (unchanged: no write)."""
    return lambda _: data


def _with_pool(resource_id: str, pool_id: str) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """The change to a resource's summary that counts ``pool_id`` in: named while fewer than _NAMED_POOLS are, else "more"."""

    def change(data: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(data or {"resourceId": resource_id, "named": [], "more": False})
        named = list(data.get("named") or [])
        if resource_key(pool_id) not in {resource_key(p) for p in named}:
            if len(named) < _NAMED_POOLS:
                named.append(pool_id)
            else:
                data["more"] = True
        data["named"] = named
        return data

    return change


def _without_pool(resource_id: str, pool_id: str, remaining: list[str]) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """The change to a resource's summary once ``pool_id`` is gone: the pools that remain (their rows) renamed."""

    def change(data: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(data or {"resourceId": resource_id})
        legacy = {key: pool for key, pool in (data.get("pools") or {}).items() if key != resource_key(pool_id)}
        if legacy:
            data["pools"] = legacy
        else:
            data.pop("pools", None)
        others = [p for p in remaining if resource_key(p) != resource_key(pool_id)]
        data["named"], data["more"] = others[:_NAMED_POOLS], len(others) > _NAMED_POOLS
        return data

    return change


def _notes(summary: dict[str, Any]) -> str:
    pools = list(summary.get("named") or []) or [p["id"] for p in (summary.get("pools") or {}).values()]
    names = ", ".join(p.rsplit("/pools/", 1)[-1] for p in pools[:_NAMED_POOLS])
    more = " and others" if summary.get("more") or len(pools) > _NAMED_POOLS else ""
    text = f"{LOCK_NOTES_MARKER} in use by Batch pool(s) {names}{more}; deleting it makes their resizes fail with AllocationFailed"
    return text if len(text) <= _MAX_NOTES else text[: _MAX_NOTES - 3] + "..."


def _sync_lock(records: RecordStore, locks: LockGateway, resource_id: str, summary: dict[str, Any]) -> bool:
    """Write the lock when its notes would change (the summary remembers what was last written); True when written."""
    notes = _notes(summary)
    if summary.get("notes") == notes:
        return False
    if not _place_lock(locks, resource_id, notes):
        return False
    # Only if nothing changed the notes meanwhile: a concurrent writer's newer notes must not be marked as written,
    # nor a summary released meanwhile brought back. A lost race leaves it unmarked: the next protect compares again.
    current = records.get(IMAGE_USE, resource_id)
    if current is not None and _notes(current.data) == notes and current.data.get("notes") != notes:
        try:
            records.replace(current, {**current.data, "notes": notes})
        except RecordConflict:
            pass
    return True


def _place_lock(locks: LockGateway, resource_id: str, notes: str) -> bool:
    parsed = lineage_resource(resource_id)
    assert parsed is not None
    try:
        locks.create_lock(parsed, LOCK_NAME, notes)
    except StepFailed as exc:
        log.warning("image protection: %s could not be locked: %s", resource_id, exc)
        return False
    return True


def _remove_our_lock(locks: LockGateway, resource_id: str) -> bool:
    parsed = lineage_resource(resource_id)
    assert parsed is not None
    try:
        lock = locks.lock(parsed, LOCK_NAME)
        if lock is None:
            return False
        if not lock.notes.startswith(LOCK_NOTES_MARKER):
            log.info("image protection: lock %s was not placed by us; left in place", lock.id)
            return False
        locks.delete_lock(parsed, LOCK_NAME)
    except StepFailed as exc:
        log.warning("image protection: the lock on %s could not be released: %s", resource_id, exc)
        return False
    return True
