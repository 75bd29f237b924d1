"""What intake reads of where the pool goes: the Batch account, its pools, its quotas and VM sizes.

Everything a request could collide with is found here, before any write:
a pool name already taken, a pool too large for the account's core quotas, a
VM size the region does not offer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arm.ids import ArmId
from ..arm.pools import PoolView
from ..arm.values import region_key
from ..arm.views import VmSkuView
from ..gateway.protocol import BatchGateway
from ..model.request import ImageRequest, PoolRequest, RequestRejected


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


def check_core_quotas(request: PoolRequest, account: AccountFacts, sizes: dict[str, VmSkuView]) -> None:
    """The pool fits in what the account's core quotas leave after its other pools (Batch service quotas and limits).

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
    wanted_dedicated = (size.cores or 0) * request.pool.target_dedicated_nodes
    wanted_low_priority = (size.cores or 0) * request.pool.target_low_priority_nodes
    nodes = f"{request.pool.target_dedicated_nodes} dedicated / {request.pool.target_low_priority_nodes} low-priority {size.name} nodes"
    if account.dedicated_core_quota is not None and used_dedicated + wanted_dedicated > account.dedicated_core_quota:
        raise RequestRejected(
            f"pool.targetDedicatedNodes: {nodes} need {wanted_dedicated} dedicated cores; the account's quota is "
            f"{account.dedicated_core_quota} with {used_dedicated} in use", request.id)
    family_quota = account.family_core_quotas.get(size.family.lower())
    if account.family_quotas_enforced and family_quota is not None and used_family + wanted_dedicated > family_quota:
        raise RequestRejected(
            f"pool.targetDedicatedNodes: {nodes} need {wanted_dedicated} cores of {size.family}; the account's family quota is "
            f"{family_quota} with {used_family} in use", request.id)
    if account.low_priority_core_quota is not None and used_low_priority + wanted_low_priority > account.low_priority_core_quota:
        raise RequestRejected(
            f"pool.targetLowPriorityNodes: {nodes} need {wanted_low_priority} low-priority cores; the account's quota is "
            f"{account.low_priority_core_quota} with {used_low_priority} in use", request.id)


def _pool_cores(pool: PoolView, sizes: dict[str, VmSkuView]) -> int:
    size = sizes.get((pool.vm_size or "").lower())
    return (size.cores or 0) if size is not None else 0


def _pool_family(pool: PoolView, sizes: dict[str, VmSkuView]) -> str:
    size = sizes.get((pool.vm_size or "").lower())
    return size.family.lower() if size is not None else ""
