"""What the capabilities may ask of Azure: one protocol per service, typed views in, typed views out.

The capabilities depend on these protocols only. :class:`shared.gateway.sdk.SdkGateway` answers them
with the real ``azure-mgmt-*`` clients (in production, and on the local emulator); the tests' in-memory
fake answers them for fast unit tests, and one contract test holds both to the same expectations.

Every method is one ARM call (or one paged list), its failure sorted as :mod:`shared.gateway.failures`
says: a read answers a view or None (not found); a write answers None once sent, or :class:`Waiting`
when Azure says the same thing is already under way (or a conditional write lost a race); anything
else raises :class:`TransientAzureError` (retry later) or :class:`StepFailed` (refused for good).
Long-running PUTs are sent, not waited for: an event (or a scheduled look) says when they are done.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from ..arm.ids import ArmId
from ..arm.pools import PoolView, Targets
from ..arm.views import (
    ActivityLogEntry,
    BatchAccountView,
    GalleryView,
    ImageDefinitionView,
    ImageVersionView,
    ImageView,
    Listing,
    LockView,
    SnapshotView,
    VirtualMachineView,
    VmSkuView,
)
from .failures import Waiting

# A PUT body in ARM's REST shape (camelCase, ``properties``), as :mod:`shared.model.plan` builds it.
ArmBody = Mapping[str, Any]


class PoolUpdate(str, Enum):
    """How a conditional PATCH of a pool ended."""

    UPDATED = "updated"
    # The pool changed since it was read (412 on If-Match): read it again next round.
    CHANGED = "changed"
    # The pool is gone (404).
    GONE = "gone"
    # Batch refused the change for now (409, e.g. PoolBeingResized; 400 PropertyCannotBeUpdated: an image change while
    # the pool is not Steady at zero nodes).
    REFUSED = "refused"
    # A ReadOnly lock refuses every change to the pool (409 ScopeLocked) until a person removes it.
    LOCKED = "locked"


@dataclass(frozen=True)
class FixedScale:
    """A fixed-scale resize: the node targets and how long Batch may take to reach them."""

    targets: Targets
    resize_timeout: timedelta
    # What Batch does with the nodes a shrink removes and their running tasks (Requeue, Terminate, TaskCompletion,
    # RetainedData); None leaves it to Batch (Requeue).
    node_deallocation_option: str | None = None


@dataclass(frozen=True)
class PresentResources:
    """Which of the asked ids Resource Graph lists (not being deleted), and how many queries that took."""

    present: frozenset[str]  # resource keys (:func:`shared.arm.ids.resource_key`)
    queries: int


class ComputeGateway(Protocol):
    """Microsoft.Compute: VMs, snapshots, managed images, galleries, image definitions and versions."""

    def virtual_machine(self, vm: ArmId) -> VirtualMachineView | None:
        """The VM, or None when it does not exist."""
        ...

    def snapshot(self, snapshot: ArmId) -> SnapshotView | None:
        """The snapshot, or None when it does not exist."""
        ...

    def create_snapshot(self, snapshot: ArmId, body: ArmBody) -> Waiting | None:
        """Send the snapshot's PUT."""
        ...

    def image(self, image: ArmId) -> ImageView | None:
        """The managed image, or None when it does not exist."""
        ...

    def create_image(self, image: ArmId, body: ArmBody) -> Waiting | None:
        """Send the managed image's PUT."""
        ...

    def gallery(self, gallery: ArmId) -> GalleryView | None:
        """The gallery, or None when it does not exist."""
        ...

    def image_definition(self, definition: ArmId) -> ImageDefinitionView | None:
        """The gallery image definition, or None when it does not exist."""
        ...

    def create_image_definition(self, definition: ArmId, body: ArmBody) -> Waiting | None:
        """Send the gallery image definition's PUT."""
        ...

    def image_version(self, version: ArmId) -> ImageVersionView | None:
        """The gallery image version, or None when it does not exist."""
        ...

    def create_image_version(self, version: ArmId, body: ArmBody) -> Waiting | None:
        """Send the gallery image version's PUT."""
        ...

    def replicate_image_version(self, version: ArmId, as_read: ImageVersionView, regions: Sequence[tuple[str, int]]) -> Waiting | None:
        """Send the version back as it was read (``as_read``), with ``regions`` as its target regions and replica counts."""
        ...

    def retire_image_version(self, version: ArmId, as_read: ImageVersionView, end_of_life: datetime) -> Waiting | None:
        """Send the version back as it was read, excluded from its definition's latest and given ``end_of_life``."""
        ...


class BatchGateway(Protocol):
    """Microsoft.Batch management plane: accounts, their pools, and the VM sizes of a region."""

    def account(self, account: ArmId) -> BatchAccountView | None:
        """The Batch account, or None when it does not exist."""
        ...

    def pools(self, account: ArmId) -> Iterator[PoolView]:
        """Every pool of the account, page by page as it is iterated (a failed page raises where it is met)."""
        ...

    def pool(self, pool: ArmId) -> PoolView | None:
        """The pool, or None when it does not exist."""
        ...

    def create_pool(self, pool: ArmId, body: ArmBody) -> Waiting | None:
        """Create the pool only if no pool of that name exists (If-None-Match: *); Waiting when one does."""
        ...

    def update_pool(self, pool: ArmId, etag: str | None, metadata: Mapping[str, str], scale: FixedScale | None = None) -> PoolUpdate:
        """PATCH the pool's metadata (the whole list) and, when given, its fixed scale, only if its ETag is
        still ``etag`` (If-Match): a pool changed or deleted meanwhile, or busy, is left for the next round."""
        ...

    def stop_resize(self, pool: ArmId) -> PoolUpdate:
        """Stop the pool's resize in progress (Pools_StopResize): the pool keeps the nodes it has, goes Stopping, then
        Steady with the resize error ``ResizeStopped``. UPDATED once Batch took it, GONE when the pool is gone,
        REFUSED when Batch refuses it for now (409, e.g. a pool being deleted)."""
        ...

    def update_pool_image(self, pool: ArmId, etag: str | None, vm_configuration: Mapping[str, Any], metadata: Mapping[str, str]) -> PoolUpdate:
        """PATCH the pool's ``deploymentConfiguration.virtualMachineConfiguration`` (the whole object: its image, node agent,
        security profile) and its metadata, only if its ETag is still ``etag``. Batch takes it only while the pool is Steady
        at zero nodes (Pool - Update, 2024-07-01 or later): otherwise REFUSED."""
        ...

    def vm_skus(self, subscription: str, region: str) -> list[VmSkuView]:
        """The VM sizes Batch offers in ``region`` (Location_ListSupportedVirtualMachineSkus)."""
        ...


class LockGateway(Protocol):
    """Microsoft.Authorization/locks on resources."""

    def lock(self, scope: ArmId, name: str) -> LockView | None:
        """The lock ``name`` on ``scope``, or None."""
        ...

    def create_lock(self, scope: ArmId, name: str, notes: str) -> Waiting | None:
        """Create or update a ``CanNotDelete`` lock ``name`` on ``scope``."""
        ...

    def delete_lock(self, scope: ArmId, name: str) -> Waiting | None:
        """Delete the lock ``name`` on ``scope``."""
        ...

    def subscription_locks(self, subscription: str) -> Listing[LockView]:
        """Every lock in the subscription, resource-level ones included (ManagementLocks_ListAtSubscriptionLevel)."""
        ...


class MonitorGateway(Protocol):
    """Azure Monitor: the Activity Log."""

    def activity_log(self, subscription: str, resource_group: str, start: datetime, end: datetime) -> Listing[ActivityLogEntry]:
        """The resource group's Activity Log events from ``start`` to ``end`` (ActivityLogs_List)."""
        ...


class ResourceGraphGateway(Protocol):
    """Azure Resource Graph: fleet-wide questions in few queries."""

    def present(self, resources: Sequence[ArmId]) -> PresentResources:
        """Which of ``resources`` exist and are not being deleted, one query per page of ids."""
        ...


class AzureGateway(Protocol):
    """Every Azure service the app uses, one gateway each."""

    @property
    def compute(self) -> ComputeGateway: ...

    @property
    def batch(self) -> BatchGateway: ...

    @property
    def locks(self) -> LockGateway: ...

    @property
    def monitor(self) -> MonitorGateway: ...

    @property
    def graph(self) -> ResourceGraphGateway: ...
