"""What intake reads of where the pool goes: the Batch account, its pools, its quotas and VM sizes.

Everything a request could collide with is found here, before any write:
a pool name already taken, a pool too large for the account's core quotas, a
VM size the region does not offer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..arm.ids import ArmId
from ..arm.pools import PoolView
from ..arm.values import region_key
from ..arm.views import VmSkuView
from ..gateway.protocol import BatchGateway
from ..model.request import ImageRequest, PoolRequest, RequestRejected
from ..store.ledger import Stage
from ..store.records import RecordStore, update_record


@dataclass(frozen=True)
class AccountFacts:
    """A Batch account as read at intake: where it is, what it may run, what runs there."""

    id: ArmId
    location: str
    # Core quotas (BatchService allocation mode only; None in UserSubscription mode, where the subscription's apply).
    dedicated_core_quota: int | None
    low_priority_core_quota: int | None
    family_core_quotas: dict[str, int]
    family_quotas_enforced: bool
    pools: tuple[PoolView, ...]

    @property
    def region(self) -> str:
        return region_key(self.location)


def read_account(request: ImageRequest, account_id: ArmId, batch: BatchGateway) -> AccountFacts:
    """The Batch account and its pools (one GET, one paged list)."""
    account = batch.account(account_id)
    if account is None:
        raise RequestRejected(f"pool.batchAccountId: {account_id.id} does not exist", request.id)
    return AccountFacts(
        id=account_id,
        location=account.location,
        dedicated_core_quota=account.dedicated_core_quota,
        low_priority_core_quota=account.low_priority_core_quota,
        family_core_quotas=dict(account.family_core_quotas),
        family_quotas_enforced=account.family_quotas_enforced,
        pools=tuple(batch.pools(account_id)),
    )


def read_vm_sizes(account: AccountFacts, batch: BatchGateway) -> dict[str, VmSkuView]:
    """The VM sizes Batch offers in the account's region with their cores, by lower-case name."""
    return {sku.name.lower(): sku for sku in batch.vm_skus(account.id.subscription, account.region) if sku.name and sku.cores is not None}


def check_pool_name_free(request: PoolRequest, account: AccountFacts) -> None:
    """A pool id is unique in its account, case-insensitively (Batch docs: pool ids are case-preserving, case-insensitive)."""
    wanted = request.pool.pool_name.lower()
    for pool in account.pools:
        if pool.name.lower() == wanted:
            owner = f"request {pool.request_id}" if pool.request_id else "someone outside this automation"
            raise RequestRejected(f"pool.poolName: {request.pool.pool_name} is already used in {account.id.name} (by {owner})", request.id)


@dataclass(frozen=True)
class CoreDemand:
    """Cores a pool will take: dedicated (and of which VM family), low-priority."""

    dedicated: int = 0
    low_priority: int = 0
    family: str = ""


def core_demand(request: PoolRequest, size: VmSkuView) -> CoreDemand:
    """The cores the request's pool takes at its target."""
    return CoreDemand((size.cores or 0) * request.pool.target_dedicated_nodes, (size.cores or 0) * request.pool.target_low_priority_nodes,
                      size.family.lower())


def check_core_quotas(request: PoolRequest, account: AccountFacts, sizes: dict[str, VmSkuView],
                      in_flight: dict[str, CoreDemand] | None = None) -> CoreDemand:
    """The pool fits in what the account's core quotas leave after its other pools (Batch service quotas and limits),
    and after the pools that requests still in flight will create (``in_flight``: request id -> its cores). Its demand.

    Dedicated nodes count against the account's dedicated quota (and its VM family's, where the account
    enforces family quotas); Spot/low-priority nodes against the low-priority quota. Each other pool
    counts at the larger of its current and target nodes.
    """
    size = sizes.get(request.pool.vm_size.lower())
    if size is None:
        raise RequestRejected(
            f"pool.vmSize: {request.pool.vm_size} is not a VM size Batch offers in {account.location}", request.id)
    used_dedicated = used_low_priority = used_family = 0
    for pool in account.pools:
        cores = _pool_cores(pool, sizes)
        used_dedicated += cores * max(pool.current_dedicated, pool.target_dedicated)
        used_low_priority += cores * max(pool.current_low_priority, pool.target_low_priority)
        if _pool_family(pool, sizes) == size.family.lower():
            used_family += cores * max(pool.current_dedicated, pool.target_dedicated)
    flying = in_flight or {}
    used_dedicated += sum(d.dedicated for d in flying.values())
    used_low_priority += sum(d.low_priority for d in flying.values())
    used_family += sum(d.dedicated for d in flying.values() if d.family == size.family.lower())
    also = f" and by the pools of {len(flying)} request(s) in flight ({', '.join(sorted(flying)[:5])}{', ...' if len(flying) > 5 else ''})" \
        if flying else ""
    wanted = core_demand(request, size)
    nodes = f"{request.pool.target_dedicated_nodes} dedicated / {request.pool.target_low_priority_nodes} low-priority {size.name} nodes"
    if account.dedicated_core_quota is not None and used_dedicated + wanted.dedicated > account.dedicated_core_quota:
        raise RequestRejected(
            f"pool.targetDedicatedNodes: {nodes} need {wanted.dedicated} dedicated cores; the account's quota is "
            f"{account.dedicated_core_quota} with {used_dedicated} in use{also}", request.id)
    family_quota = account.family_core_quotas.get(size.family.lower())
    if account.family_quotas_enforced and family_quota is not None and used_family + wanted.dedicated > family_quota:
        raise RequestRejected(
            f"pool.targetDedicatedNodes: {nodes} need {wanted.dedicated} cores of {size.family}; the account's family quota is "
            f"{family_quota} with {used_family} in use{also}", request.id)
    if account.low_priority_core_quota is not None and used_low_priority + wanted.low_priority > account.low_priority_core_quota:
        raise RequestRejected(
            f"pool.targetLowPriorityNodes: {nodes} need {wanted.low_priority} low-priority cores; the account's quota is "
            f"{account.low_priority_core_quota} with {used_low_priority} in use{also}", request.id)
    return wanted


# Cores held for requests accepted into an account whose pools do not exist yet: one record per account, written with
# its ETag, so requests accepted at once count each other (a listing of the account's pools cannot: none exists yet).
CORE_RESERVATIONS = "core-reservations"
# A reservation whose request the ledger does not know (its record was never written) is dropped after this long.
_UNRECORDED_RESERVATION = timedelta(minutes=10)


def reserve_cores(records: RecordStore, stage_of: Callable[[str], Stage | None], request: PoolRequest, account: AccountFacts,
                  sizes: dict[str, VmSkuView], now: datetime) -> None:
    """Check the pool against the quotas less every other request in flight into the account, and hold its cores.

    A held entry goes once its pool is listed in the account (its cores are then counted as a pool's), once its request
    is final or SCALING (its pool exists), or when no record of its request was written within minutes. Raises
    :class:`RequestRejected` (nothing held) when the pool does not fit.
    """
    key = account.id.key()
    current = records.get(CORE_RESERVATIONS, key)
    listed = {pool.name.lower() for pool in account.pools}
    gone: set[str] = set()
    for request_id, entry in ((current.data.get("requests") or {}) if current is not None else {}).items():
        if request_id == request.id:
            continue
        stage = stage_of(request_id)
        unrecorded = stage is None and now - datetime.fromisoformat(str(entry.get("at"))) > _UNRECORDED_RESERVATION
        if entry.get("pool") in listed or unrecorded or (stage is not None and (stage.is_final or stage is Stage.SCALING)):
            gone.add(request_id)

    def hold(data: dict[str, Any] | None) -> dict[str, Any]:
        entries = {rid: entry for rid, entry in ((data or {}).get("requests") or {}).items() if rid not in gone and rid != request.id}
        flying = {rid: CoreDemand(int(e.get("dedicated", 0)), int(e.get("lowPriority", 0)), str(e.get("family", "")))
                  for rid, e in entries.items()}
        wanted = check_core_quotas(request, account, sizes, flying)
        entries[request.id] = {"dedicated": wanted.dedicated, "lowPriority": wanted.low_priority, "family": wanted.family,
                               "pool": request.pool.pool_name.lower(), "at": now.isoformat()}
        return {"requests": entries}

    update_record(records, CORE_RESERVATIONS, key, hold)


def _pool_cores(pool: PoolView, sizes: dict[str, VmSkuView]) -> int:
    size = sizes.get((pool.vm_size or "").lower())
    return (size.cores or 0) if size is not None else 0


def _pool_family(pool: PoolView, sizes: dict[str, VmSkuView]) -> str:
    size = sizes.get((pool.vm_size or "").lower())
    return size.family.lower() if size is not None else ""
