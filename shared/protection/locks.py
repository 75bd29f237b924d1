"""Image protection: which pools use which image and lineage resources, and the locks that keep them.

When a pool starts using an image (the pipeline sees its pool created, or the
guard meets a guarded pool), every resource the pool depends on (the gallery
image version or managed image, the managed image a version came from, the
snapshots) gets a ``CanNotDelete`` lock named ``cip-protect`` whose notes
name the pools; Azure then refuses to delete it (409 ScopeLocked). When the
last pool using a resource is deleted, the lock is released (unless
``KEEP_IMAGE_LOCKS``). Locks are only ever deleted when their notes carry
the project's marker, so a lock someone else placed (even under our name) stays.

Usage is recorded in the ledger's store (:mod:`shared.store.records`), keyed by
resource id (``image-use``: which pools) and by pool id (``pool-use``: which
resources). An ARM event about a resource is then matched with one point read
of the store and no ARM call, whether or not the resource still exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..arm.calls import StepFailed, call_arm, get_or_none
from ..arm.ids import resource_key
from ..dependencies import Dependencies
from ..naming import LOCK_NAME, LOCK_NOTES_MARKER
from ..store.records import delete_record, update_record
from .lineage import lineage_resource

log = logging.getLogger(__name__)

IMAGE_USE = "image-use"
POOL_USE = "pool-use"
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


def users_of(deps: Dependencies, resource_id: str) -> ResourceUsers | None:
    """The pools recorded as using ``resource_id`` (one store read, no ARM call); None when none."""
    record = deps.records.get(IMAGE_USE, resource_id)
    if record is None or not record.data.get("pools"):
        return None
    return ResourceUsers(record.data["resourceId"], record.data["pools"])


def is_recorded(deps: Dependencies, pool_id: str, image_id: str) -> bool:
    """Whether ``pool_id`` is already recorded as using ``image_id`` (so its protection is in place)."""
    record = deps.records.get(POOL_USE, pool_id)
    return record is not None and resource_key(str(record.data.get("imageId", ""))) == resource_key(image_id)


def protect(deps: Dependencies, use: ImageUse) -> list[str]:
    """Record the use and lock every resource of it; the ids locked. Idempotent.

    A scope we may not lock (403, gone) is logged and skipped: protection never
    fails a pool. Transient ARM errors raise, so the delivery is retried.
    """
    records = deps.records
    resources = [r for r in use.resources if lineage_resource(r) is not None]
    update_record(records, POOL_USE, use.pool_id, lambda data: {
        "poolId": use.pool_id, "imageId": use.image_id, "resources": resources, "requestId": use.request_id})
    entry = {"id": use.pool_id, "requestId": use.request_id, "imageId": use.image_id}
    locked = []
    for resource in resources:
        data = update_record(records, IMAGE_USE, resource, _with_pool(resource, entry))
        if _place_lock(deps, resource, [p["id"] for p in data["pools"].values()]):
            locked.append(resource)
    return locked


def release(deps: Dependencies, pool_id: str) -> list[str]:
    """Forget a deleted pool; unlock each resource no pool uses any more. The ids unlocked."""
    records = deps.records
    pool_record = records.get(POOL_USE, pool_id)
    if pool_record is None:
        return []
    unlocked = []
    for resource in pool_record.data.get("resources", []):
        data = update_record(records, IMAGE_USE, resource, _without_pool(resource, pool_id))
        if data["pools"]:
            _place_lock(deps, resource, [p["id"] for p in data["pools"].values()])
            continue
        # The record goes first: the lock's delete event must not read as "protection removed".
        delete_record(records, IMAGE_USE, resource, only_if=lambda d: not d.get("pools"))
        if not deps.settings.keep_image_locks and _remove_our_lock(deps, resource):
            unlocked.append(resource)
    delete_record(records, POOL_USE, pool_id)
    return unlocked


def _with_pool(resource_id: str, entry: dict[str, Any]) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """The change to a resource's usage record that adds the pool ``entry`` describes."""
    return lambda data: {"resourceId": resource_id, "pools": {**(data or {}).get("pools", {}), resource_key(entry["id"]): entry}}


def _without_pool(resource_id: str, pool_id: str) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """The change to a resource's usage record that forgets ``pool_id``."""
    return lambda data: {
        "resourceId": resource_id,
        "pools": {key: pool for key, pool in (data or {}).get("pools", {}).items() if key != resource_key(pool_id)},
    }


def _notes(pools: list[str]) -> str:
    names = ", ".join(sorted(p.rsplit("/pools/", 1)[-1] for p in pools))
    text = f"{LOCK_NOTES_MARKER} in use by Batch pool(s) {names}; deleting it makes their resizes fail with AllocationFailed"
    return text if len(text) <= _MAX_NOTES else text[: _MAX_NOTES - 3] + "..."


def _place_lock(deps: Dependencies, resource_id: str, pools: list[str]) -> bool:
    from azure.mgmt.resource.locks.models import ManagementLockObject  # Azure SDK: first use (cold start)

    parsed = lineage_resource(resource_id)
    assert parsed is not None
    locks = deps.clients.locks(parsed.subscription).management_locks
    try:
        call_arm(f"lock {resource_id}", lambda: locks.create_or_update_by_scope(
            parsed.id, LOCK_NAME, ManagementLockObject(level="CanNotDelete", notes=_notes(pools))))
    except StepFailed as exc:
        log.warning("image protection: %s could not be locked: %s", resource_id, exc)
        return False
    return True


def _remove_our_lock(deps: Dependencies, resource_id: str) -> bool:
    parsed = lineage_resource(resource_id)
    assert parsed is not None
    locks = deps.clients.locks(parsed.subscription).management_locks
    try:
        lock = get_or_none(f"read lock on {resource_id}", lambda: locks.get_by_scope(parsed.id, LOCK_NAME))
        if lock is None:
            return False
        if not (lock.notes or "").startswith(LOCK_NOTES_MARKER):
            log.info("image protection: lock %s was not placed by us; left in place", lock.id)
            return False
        call_arm(f"unlock {resource_id}", lambda: locks.delete_by_scope(parsed.id, LOCK_NAME))
    except StepFailed as exc:
        log.warning("image protection: the lock on %s could not be released: %s", resource_id, exc)
        return False
    return True
