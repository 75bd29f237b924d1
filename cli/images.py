"""The image inventory: which image lineage resources exist, which pools use them, and is it safe to delete one.

Ops' everyday question. For every gallery image version, managed image and
snapshot in the imaging resource groups that the project knows (it made it:
tag ``cip-request``; or a pool uses it; or the usage records name it), this
lists the pools that use it (directly, or through what was made from it) with
their node counts, its ``cip-protect`` lock and its open alerts. ``unused_only``
keeps what no pool uses any more: candidates for deletion, with size and age.

Plain code taking its clients and records: the command line passes the real
ones (a deployment) or the rehearsal's emulator-backed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.alerts import (
    ALERT_KINDS,
    ALERT_LOG_KIND,
    IN_USE_IMAGE_DELETED,
    Severity,
)
from shared.arm.ids import resource_key, try_parse
from shared.arm.pools import PoolView
from shared.gateway.sdk import SdkGateway
from shared.naming import LOCK_NAME, LOCK_NOTES_MARKER, TAG_REQUEST
from shared.protection.lineage import LineageReader, lineage_resource
from shared.protection.locks import IMAGE_USE, IMAGE_USER, POOL_USE

if TYPE_CHECKING:
    from shared.clients import AzureClients
    from shared.store.ledger import Ledger
    from shared.store.records import RecordStore

# The alert log keys its records in lower case: the type and severity of each kind, by its lower-case type.
_KINDS = {kind.type.lower(): kind for kind in ALERT_KINDS}
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.ERROR: 1, Severity.WARNING: 2}


@dataclass
class ImageResource:
    id: str
    kind: str  # galleryImageVersion | managedImage | snapshot
    request_id: str | None = None
    size_gb: int | None = None
    created_at: datetime | None = None
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: str | None = None
    alerts: list[str] = field(default_factory=list)
    # Resources its pools need that no longer exist: this one may be what they can be restored from.
    missing_downstream: list[str] = field(default_factory=list)
    # A gallery version excluded from its definition's latest (a refresh moved its pool off it), and its end of life.
    retired: bool = False
    end_of_life: datetime | None = None

    def to_json(self, now: datetime) -> dict[str, Any]:
        in_use = bool(self.pools)
        return {
            "name": self.id.rsplit("/", 1)[-1],
            "kind": self.kind,
            "inUse": in_use,
            "pools": sorted(self.pools.values(), key=lambda p: p["id"].lower()),
            "lock": self.lock,
            "alerts": self.alerts,
            "sizeGb": self.size_gb,
            "createdAt": self.created_at.isoformat(timespec="seconds") if self.created_at else None,
            "ageDays": round((now - self.created_at).total_seconds() / 86400, 1) if self.created_at else None,
            "requestId": self.request_id,
            "retired": self.retired,
            "endOfLife": self.end_of_life.isoformat(timespec="seconds") if self.end_of_life else None,
            "safeToDelete": not in_use and not self.missing_downstream,
            "advice": _advice(self, in_use),
            "id": self.id,
        }


def _advice(resource: ImageResource, in_use: bool) -> str:
    if resource.missing_downstream:
        gone = ", ".join(r.rsplit("/", 1)[-1] for r in resource.missing_downstream)
        return (f"keep: its pools need {gone}, which is gone; restore it from this one (runbook of "
                f"{IN_USE_IMAGE_DELETED.type}) or move the pools to a new image")
    if in_use:
        if resource.retired:
            return "retired, but still in use: keep it until its pools move to a new image (a refresh) or are deleted"
        return "in use: keep (deleting it makes its pools' resizes fail); move or delete the pools first"
    if resource.retired and not resource.lock:
        return "retired and unused: safe to delete"
    if resource.lock and resource.lock.startswith(LOCK_NAME) and "not ours" not in resource.lock:
        return f"unused; remove the {LOCK_NAME} lock, then delete it"
    if resource.lock:
        return f"unused, but a lock ({resource.lock}) someone else placed stays: ask its owner"
    return "unused: a candidate for deletion"


def inventory(
    clients: AzureClients,
    ledger: Ledger,
    records: RecordStore,
    *,
    resource_groups: list[str],
    batch_accounts: list[str],
    now: datetime | None = None,
    alert_window_minutes: int = 60,
    unused_only: bool = False,
) -> list[dict[str, Any]]:
    """Every known image lineage resource in ``resource_groups`` with its pools, lock and open alerts."""
    now = now or datetime.now(UTC)
    found: dict[str, ImageResource] = {}
    for group in resource_groups:
        for resource in _list_group(clients, group):
            found.setdefault(resource_key(resource.id), resource)
    accounts = dict.fromkeys(batch_accounts)
    for record in ledger.list_recent(1000):
        if record.pool_id:
            accounts.setdefault(record.pool_id.rsplit("/pools/", 1)[0])
    lineage = LineageReader(SdkGateway(clients).compute)
    listed: dict[str, dict[str, Any]] = {}
    for pool in _pools(clients, list(accounts)):
        if not pool.image_id:
            continue
        entry = listed[resource_key(pool.id)] = _pool_entry(pool)
        for index, resource_id in enumerate([pool.image_id, *lineage.lineage(pool.image_id)]):
            used = found.get(resource_key(resource_id))
            if used is not None:
                used.pools[resource_key(pool.id)] = {**entry, "via": "image" if index == 0 else "lineage"}
    published = _published_alerts(records, now, timedelta(minutes=alert_window_minutes))
    for resource in found.values():
        _add_recorded_users(records, resource, listed)
        needed = _recorded_lineages(records, resource)
        resource.missing_downstream = sorted(r for r in needed if resource_key(r) not in found and _is_downstream(r, resource))
        subjects = {resource_key(resource.id), *resource.pools, *(resource_key(r) for r in needed)}
        resource.alerts = _alerts_about(published, subjects)
    _add_locks(clients, resource_groups, found)
    known = [r for r in found.values() if r.request_id or r.pools or r.lock or r.alerts or _recorded(records, r.id)]
    items = [r.to_json(now) for r in sorted(known, key=lambda r: (_ORDER[r.kind], r.id.lower()))]
    return [item for item in items if not item["inUse"]] if unused_only else items


_ORDER = {"galleryImageVersion": 0, "managedImage": 1, "snapshot": 2}


def _created(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _listed(value: str | None) -> str:
    """An id or name of a resource ARM listed: always there (the SDK types it optional, as it is read-only)."""
    if value is None:
        raise ValueError("ARM listed a resource without its id or name")
    return value


def _list_group(clients: AzureClients, group_id: str) -> list[ImageResource]:
    parts = group_id.split("/")
    subscription, group = parts[2], parts[4]
    compute = clients.compute(subscription)
    resources = []
    for snapshot in compute.snapshots.list_by_resource_group(group):
        resources.append(ImageResource(_listed(snapshot.id), "snapshot", (snapshot.tags or {}).get(TAG_REQUEST), snapshot.disk_size_gb,
                                       _created(snapshot.time_created)))
    for image in compute.images.list_by_resource_group(group):
        profile = image.storage_profile
        sizes = [d.disk_size_gb for d in ([profile.os_disk] if profile and profile.os_disk else []) + list((profile.data_disks if profile else None) or [])]
        resources.append(ImageResource(_listed(image.id), "managedImage", (image.tags or {}).get(TAG_REQUEST), _total(sizes),
                                       _created(getattr(image.system_data, "created_at", None) if getattr(image, "system_data", None) else None)))
    for gallery in compute.galleries.list_by_resource_group(group):
        gallery_name = _listed(gallery.name)
        for definition in compute.gallery_images.list_by_gallery(group, gallery_name):
            for version in compute.gallery_image_versions.list_by_gallery_image(group, gallery_name, _listed(definition.name)):
                storage = version.storage_profile
                sizes = ([storage.os_disk_image.size_in_gb] if storage and storage.os_disk_image else []) + [
                    d.size_in_gb for d in ((storage.data_disk_images if storage else None) or [])]
                profile = version.publishing_profile
                published = profile.published_date if profile else None
                resources.append(ImageResource(_listed(version.id), "galleryImageVersion", (version.tags or {}).get(TAG_REQUEST), _total(sizes),
                                               _created(published), retired=bool(profile and profile.exclude_from_latest),
                                               end_of_life=_created(profile.end_of_life_date if profile else None)))
    return resources


def _total(sizes: list[Any]) -> int | None:
    known = [int(s) for s in sizes if s is not None]
    return sum(known) if known else None


def _pools(clients: AzureClients, accounts: list[str]) -> list[PoolView]:
    from shared.arm.ids import BATCH_ACCOUNT

    views = []
    for account_id in accounts:
        account = try_parse(account_id, BATCH_ACCOUNT)
        if account is None:
            continue
        for pool in clients.batch(account.subscription).pool.list_by_batch_account(account.resource_group, account.name):
            views.append(PoolView.from_sdk(pool))
    return views


def _pool_entry(pool: PoolView) -> dict[str, Any]:
    return {
        "id": pool.id,
        "name": pool.id.rsplit("/", 1)[-1],
        "currentDedicatedNodes": pool.current_dedicated,
        "targetDedicatedNodes": pool.target_dedicated,
        "currentLowPriorityNodes": pool.current_low_priority,
        "targetLowPriorityNodes": pool.target_low_priority,
        "allocationState": pool.allocation_state,
        "requestId": pool.request_id,
    }


def _recorded(records: RecordStore, resource_id: str) -> bool:
    record = records.get(IMAGE_USE, resource_id)
    return record is not None and bool(record.data.get("pools"))


def _add_recorded_users(records: RecordStore, resource: ImageResource, listed: dict[str, dict[str, Any]]) -> None:
    """Pools the usage records name that the listing did not meet: through a lineage it can no longer read (a resource
    between them was deleted), in another account, or gone without its delete event."""
    summary = records.get(IMAGE_USE, resource.id)
    recorded = dict((summary.data.get("pools") or {}) if summary else {})  # summaries that listed their pools themselves
    for row in records.list(IMAGE_USER, resource.id):
        recorded[resource_key(str(row.data.get("id", "")))] = row.data
    for key, pool in recorded.items():
        if key in resource.pools:
            continue
        if key in listed:
            resource.pools[key] = {**listed[key], "via": "record"}
        else:
            resource.pools[key] = {"id": pool.get("id"), "name": str(pool.get("id", "")).rsplit("/", 1)[-1], "requestId": pool.get("requestId"),
                                   "currentDedicatedNodes": None, "targetDedicatedNodes": None, "currentLowPriorityNodes": None,
                                   "targetLowPriorityNodes": None, "allocationState": "recorded, not listed", "via": "record"}


def _recorded_lineages(records: RecordStore, resource: ImageResource) -> list[str]:
    """Every resource the pools using ``resource`` were recorded as needing (their images and lineages)."""
    needed: dict[str, str] = {}
    for pool in resource.pools.values():
        record = records.get(POOL_USE, str(pool.get("id") or ""))
        for resource_id in (record.data.get("resources") or []) if record is not None else []:
            needed.setdefault(resource_key(resource_id), resource_id)
    return list(needed.values())


# Made from one another in this order: a snapshot can restore an image and a version, an image a version.
_LINEAGE_ORDER = {"snapshots": 0, "images": 1, "versions": 2}


def _is_downstream(resource_id: str, of: ImageResource) -> bool:
    """Whether ``resource_id`` stands after ``of`` in a lineage (so ``of`` is among what it was made from)."""
    kind = {"snapshot": 0, "managedImage": 1, "galleryImageVersion": 2}[of.kind]
    segment = resource_id.rstrip("/").rsplit("/", 2)[-2].lower()
    return _LINEAGE_ORDER.get(segment, -1) > kind


def _published_alerts(records: RecordStore, now: datetime, window: timedelta) -> dict[str, list[tuple[str, str]]]:
    """Alerts published within the window (the alert log's records), by the lower-case subject they were about."""
    published: dict[str, list[tuple[str, str]]] = {}
    for record in records.list(ALERT_LOG_KIND):
        data = record.data
        if data.get("state") != "sent" or now - datetime.fromisoformat(str(data.get("sentAt"))) >= window:
            continue
        alert_type, _, rest = record.key.partition("|")
        subject = rest.split("|", 1)[0]
        published.setdefault(resource_key(subject), []).append((alert_type, subject))
    return published


def _alerts_about(published: dict[str, list[tuple[str, str]]], subjects: set[str]) -> list[str]:
    """The published alerts about any of ``subjects``, critical first, each once: ``type (severity) on name``."""
    found = {(alert_type, subject) for key in subjects for alert_type, subject in published.get(key, [])}
    kinds = {alert_type: _KINDS.get(alert_type) for alert_type, _ in found}

    def severity(alert_type: str) -> Severity:
        kind = kinds[alert_type]
        return kind.severity if kind is not None else Severity.WARNING

    ordered = sorted(found, key=lambda a: (_SEVERITY_ORDER[severity(a[0])], a[0], a[1]))
    return [f"{getattr(kinds[alert_type], 'type', alert_type)} ({severity(alert_type).value}) on {subject.rsplit('/', 1)[-1]}"
            for alert_type, subject in ordered]


def _add_locks(clients: AzureClients, resource_groups: list[str], found: dict[str, ImageResource]) -> None:
    """One lock list per subscription: it includes the locks on resources (ManagementLocks_ListAtSubscriptionLevel)."""
    for subscription in sorted({group.split("/")[2].lower() for group in resource_groups}):
        for lock in clients.locks(subscription).management_locks.list_at_subscription_level():
            scope = _listed(lock.id).rsplit("/providers/Microsoft.Authorization/locks/", 1)[0]
            resource = found.get(resource_key(scope))
            if resource is None or lineage_resource(scope) is None:
                continue
            ours = lock.name == LOCK_NAME and (lock.notes or "").startswith(LOCK_NOTES_MARKER)
            label = f"{lock.name} ({lock.level})" + ("" if ours else ", not ours")
            resource.lock = label if resource.lock is None else f"{resource.lock}; {label}"


def inventory_table(items: list[dict[str, Any]]) -> str:
    """The inventory for a person: one line per resource, its pools and what to do."""
    if not items:
        return "no image lineage resources found"
    header = ("KIND", "NAME", "POOLS (nodes)", "LOCK", "ALERTS", "SIZE GB", "AGE DAYS", "ADVICE")
    rows = []
    for item in items:
        pools = ", ".join(
            f"{p['name']} ({_nodes(p)})" + ("" if p.get("via") == "image" else f" via {p.get('via')}") for p in item["pools"]) or "-"
        rows.append((item["kind"] + (" (retired)" if item.get("retired") else ""), item["name"], pools, item["lock"] or "-", ", ".join(item["alerts"]) or "-",
                     "-" if item["sizeGb"] is None else str(item["sizeGb"]), "-" if item["ageDays"] is None else str(item["ageDays"]),
                     item["advice"]))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [header, *rows])


def _nodes(pool: dict[str, Any]) -> str:
    if pool.get("currentDedicatedNodes") is None:
        return "not listed"
    text = f"{pool['currentDedicatedNodes']}/{pool['targetDedicatedNodes']}"
    if pool.get("targetLowPriorityNodes"):
        text += f" + {pool['currentLowPriorityNodes']}/{pool['targetLowPriorityNodes']} low-priority"
    return text
