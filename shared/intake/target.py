"""What intake reads of where the pool goes: the Batch account, its pools, its quotas and VM sizes.

Everything a request could collide with is found here, before any write:
a pool name already taken, a pool too large for the account's core quotas, a
VM size the region does not offer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arm.calls import call_arm, get_or_none
from ..arm.ids import ArmId
from ..arm.pools import PoolView
from ..clients import AzureClients
from ..model.request import PoolRequest, RequestRejected


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


@dataclass(frozen=True)
class VmSize:
    name: str
    family: str
    cores: int


def region_key(location: str | None) -> str:
    """A region name as ARM compares them: ``West Europe`` and ``westeurope`` are one region."""
    return (location or "").replace(" ", "").lower()


def read_account(request: PoolRequest, account_id: ArmId, clients: AzureClients) -> AccountFacts:
    """The Batch account and its pools (one GET, one paged list)."""
    batch = clients.batch(account_id.subscription)
    account = get_or_none("read Batch account", lambda: batch.batch_account.get(account_id.resource_group, account_id.name))
    if account is None:
        raise RequestRejected(f"pool.batchAccountId: {account_id.id} does not exist", request.id)
    pools = call_arm("list pools", lambda: list(batch.pool.list_by_batch_account(account_id.resource_group, account_id.name)))
    props = account.properties if getattr(account, "properties", None) is not None else account
    return AccountFacts(
        id=account_id,
        location=account.location,
        dedicated_core_quota=getattr(props, "dedicated_core_quota", None),
        low_priority_core_quota=getattr(props, "low_priority_core_quota", None),
        family_core_quotas={q.name.lower(): q.core_quota or 0 for q in getattr(props, "dedicated_core_quota_per_vm_family", None) or [] if q.name},
        family_quotas_enforced=bool(getattr(props, "dedicated_core_quota_per_vm_family_enforced", False)),
        pools=tuple(PoolView.from_sdk(pool) for pool in pools),
    )


def read_vm_sizes(account: AccountFacts, clients: AzureClients) -> dict[str, VmSize]:
    """The VM sizes Batch offers in the account's region, by lower-case name (Location_ListSupportedVirtualMachineSkus)."""
    batch = clients.batch(account.id.subscription)
    skus = call_arm("list Batch VM sizes", lambda: list(batch.location.list_supported_virtual_machine_skus(account.region)))
    sizes: dict[str, VmSize] = {}
    for sku in skus:
        capabilities = {c.name.lower(): c.value for c in sku.capabilities or [] if c.name}
        cores = capabilities.get("vcpus", "")
        if sku.name and cores.isdigit():
            sizes[sku.name.lower()] = VmSize(sku.name, sku.family_name or "", int(cores))
    return sizes


def check_pool_name_free(request: PoolRequest, account: AccountFacts) -> None:
    """A pool id is unique in its account, case-insensitively (Batch docs: pool ids are case-preserving, case-insensitive)."""
    wanted = request.pool.pool_name.lower()
    for pool in account.pools:
        if pool.name.lower() == wanted:
            owner = f"request {pool.request_id}" if pool.request_id else "someone outside this automation"
            raise RequestRejected(f"pool.poolName: {request.pool.pool_name} is already used in {account.id.name} (by {owner})", request.id)


def check_core_quotas(request: PoolRequest, account: AccountFacts, sizes: dict[str, VmSize]) -> None:
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
    wanted_dedicated = size.cores * request.pool.target_dedicated_nodes
    wanted_low_priority = size.cores * request.pool.target_low_priority_nodes
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


def _pool_cores(pool: PoolView, sizes: dict[str, VmSize]) -> int:
    size = sizes.get((pool.vm_size or "").lower())
    return size.cores if size is not None else 0


def _pool_family(pool: PoolView, sizes: dict[str, VmSize]) -> str:
    size = sizes.get((pool.vm_size or "").lower())
    return size.family.lower() if size is not None else ""
