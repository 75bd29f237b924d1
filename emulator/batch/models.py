"""Microsoft.Batch: Batch accounts (seeded) and pools whose nodes arrive on virtual time.

A pool is created, read, listed and updated synchronously (200 + ``ETag``);
only DELETE is long-running, polled through the ``Location`` header as the
Batch resource provider does (``.../poolOperationResults/delete-{pool}``).

Node allocation follows what the Batch docs describe for fixed-size pools:

- a resize starts when ``scaleSettings.fixedScale`` targets differ from the
  current node counts (at creation, or by PATCH/PUT while the pool is Steady);
  changing scale settings while Resizing/Stopping is 409 ``PoolBeingResized``;
- nodes arrive in steps (``AllocationModel.step_seconds``), at most
  ``max_nodes_per_resize`` per resize (dedicated + low-priority together):
  batch-custom-images, "Considerations for large pools": "If you plan a pool with more than 300 compute
  nodes, you might need to resize the pool multiple times to reach the target size"; how often nodes
  arrive within a resize is not documented (the step is the emulator's own);
- the resize ends Steady with no errors when the targets are reached, or with
  ``AllocationTimedout`` (the service's spelling) once ``resizeTimeout`` has
  passed ("If Batch can't obtain the target number of nodes during the resize timeout period the pool goes
  into a steady state and reports resize errors", batch-pool-node-error-checking); a resize that has hit
  ``max_nodes_per_resize`` keeps "trying" until that timeout, as the service does;
- the region can run out of capacity for a while (``AllocationModel.capacity_pauses``): no node arrives
  during a pause, the resize keeps trying until its timeout, and nodes arrive again once capacity returns
  (a pause with no end never ends). Allocation failures for lack of capacity and "retry later when capacity
  frees up" are Azure's documented behaviour (learn.microsoft.com/troubleshoot/azure/virtual-machines/
  allocation-failure); when and for how long a region runs short is not, so pauses are what a scenario says;
- POST ``stopResize`` (Pools_StopResize, Batch management REST spec 2025-06-01, example PoolStopResize.json:
  200 with the pool and its ETag): "This does not restore the pool to its previous state before the resize
  operation: it only stops any further changes being made, and the pool maintains its current state. After
  stopping, the pool stabilizes at the number of nodes it was at when the stop operation was done. During the
  stop operation, the pool allocation state changes first to stopping and then to steady." The stopped resize
  reports ``ResizeStopped`` (a documented resize error code: PoolResizeErrorCodes in the Batch Java SDK). How
  long Stopping lasts is not documented (``AllocationModel.stop_seconds``); a stop of a Steady pool changes
  nothing (the sources are silent; no recorded traffic of either was found);
- a custom image whose lineage is gone fails the resize with ``AllocationFailed``;
  account core quotas (or a configured quota error) end it with the quota code;
- errors stay in ``resizeOperationStatus.errors`` until the next resize
  (stale errors), as the REST spec says;
- shrinking removes nodes within one step;
- Pool - Update (PATCH, and a PUT that replaces the pool) changes ``vmSize`` and ``deploymentConfiguration``
  (the image, the node agent, the ``securityProfile`` inside it) only while the pool is Steady at zero nodes
  (:func:`_ensure_changeable_at_size`); the nodes a later resize brings come up on the new configuration.
  Each node keeps the image it was deployed from (:meth:`BatchBackend.nodes_by_image`).

``lastModified`` and the ETag change on writes (PUT/PATCH), never on node
arrival: the REST spec says lastModified "does not factor in node-level changes".
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import isodate

from ..errors import ArmError, Conflict, InvalidParameter, PreconditionFailed, ResourceNotFound
from ..faults import FaultKind
from ..http import ArmResponse
from ..store import ArmResource, new_etag

ACCOUNT = "Microsoft.Batch/batchAccounts"
POOL = "Microsoft.Batch/batchAccounts/pools"
VIRTUAL_MACHINE_SKUS = "Microsoft.Batch/locations/virtualMachineSkus"
# The VM sizes the emulated Batch service offers, with their capabilities, copied from published sources into
# vm_skus.json (its "sources" say from where: recorded real traffic of Location - List Supported Virtual Machine Skus,
# and Microsoft's pages for the sizes the recording lacks). Every region offers all of them unless a scenario says
# which sizes a region offers (:meth:`BatchBackend.set_region_vm_sizes`). A size not in the file is not offered: its
# capabilities would be the emulator's invention.
_VM_SKUS_FILE = Path(__file__).with_name("vm_skus.json")


def _published_vm_skus() -> dict[str, dict]:
    data = json.loads(_VM_SKUS_FILE.read_text(encoding="utf-8"))
    return {sku["name"].lower(): sku for sku in (*data["recorded"], *data["documented"])}


PUBLISHED_VM_SKUS = _published_vm_skus()


def vm_sku_capability(vm_size: str | None, name: str) -> str | None:
    """A capability of a published VM size (e.g. ``HyperVGenerations``), or None when the size or the capability is not listed."""
    sku = PUBLISHED_VM_SKUS.get((vm_size or "").lower())
    for capability in (sku or {}).get("capabilities", []):
        if capability["name"].lower() == name.lower():
            return capability["value"]
    return None


POOL_OPERATION_RESULTS = "Microsoft.Batch/batchAccounts/poolOperationResults"
GALLERY_IMAGE_VERSION = "Microsoft.Compute/galleries/images/versions"
MANAGED_IMAGE = "Microsoft.Compute/images"
ARM_BASE_URL = "https://management.azure.com"

STEADY, RESIZING, STOPPING = "Steady", "Resizing", "Stopping"
# Batch docs (batch-custom-image-pools-to-azure-compute-gallery-migration-guide): managed-image custom pools retire on this day.
MANAGED_IMAGE_POOLS_RETIRED = datetime(2026, 3, 31, tzinfo=UTC)
DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=15)
MIN_RESIZE_TIMEOUT = timedelta(minutes=5)
MAX_RESIZE_TIMEOUT = timedelta(days=7)
NODE_DEALLOCATION_OPTIONS = ("Requeue", "Terminate", "TaskCompletion", "RetainedData")

# Resize error codes as the service writes them (compare case-insensitively:
# the service says "AllocationTimedout", the SDK enums "AllocationTimedOut").
ALLOCATION_TIMED_OUT = "AllocationTimedout"
ALLOCATION_FAILED = "AllocationFailed"
RESIZE_STOPPED = "ResizeStopped"
ACCOUNT_CORE_QUOTA_REACHED = "AccountCoreQuotaReached"
ACCOUNT_LOW_PRIORITY_CORE_QUOTA_REACHED = "AccountLowPriorityCoreQuotaReached"

# Pool properties that change only while the pool is Steady with zero dedicated and zero Spot/low-priority nodes
# (Pool - Update, api-version 2024-07-01 or later). MicrosoftDocs azure-docs articles/batch/batch-pool-update-properties.md:
# "The properties that don't require the pool to be size zero for the new value to take effect are: applicationPackages,
# certificates, metadata, scaleSettings, startTask ... All other updateable pool properties require the pool to be of size
# zero nodes to be accepted as part of the request to update"; the current Learn page of the same article adds "changes to
# vmSize, deploymentConfiguration, diskEncryptionConfiguration, or securityProfile require the pool to be in the Steady
# allocation state with zero dedicated and zero Spot/low-priority nodes" and that "when the pool is resized after the
# update, Batch creates a new underlying compute deployment with the updated configuration". In the 2025-06-01 REST spec
# the securityProfile (and the OS disk's encryption) live inside deploymentConfiguration.virtualMachineConfiguration.
ZERO_SIZE_PROPERTIES = ("vmSize", "deploymentConfiguration")


class PropertyCannotBeUpdated(ArmError):
    """Batch's refusal of a pool property it will not change now, in the body recorded from the service.

    Recorded answers (Azure/azure-sdk-for-net issue 40325, a PATCH of deploymentConfiguration in 2023; opencb/opencga
    issue 1235, a PUT of a pool in 2019; Azure/Batch issue 85): HTTP 400, code ``PropertyCannotBeUpdated``, message "A
    property that cannot be updated was specified as part of the request.", target ``BatchAccount`` and details naming
    the property and its path. Those were sent with api-versions before 2024-07-01, when these properties could not be
    changed at all; no source found records what Batch answers with 2024-07-01 or later when the pool is not Steady at
    zero nodes, so the emulator answers with this recorded refusal.
    """

    status = 400
    code = "PropertyCannotBeUpdated"

    def __init__(self, property_name: str) -> None:
        super().__init__("A property that cannot be updated was specified as part of the request.")
        self.property_name = property_name

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "target": "BatchAccount", "details": [
            {"code": "Reason", "message": self.message},
            {"code": "PropertyName", "message": self.property_name},
            {"code": "PropertyPath", "message": f"properties.{self.property_name}"},
        ]}}


# Properties the service owns: ignored when a client sends them back.
_READ_ONLY = frozenset({
    "lastModified", "creationTime", "provisioningState", "provisioningStateTransitionTime", "allocationState",
    "allocationStateTransitionTime", "currentDedicatedNodes", "currentLowPriorityNodes", "resizeOperationStatus",
    "autoScaleRun",
})
_POOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VM_SIZE_CORES = re.compile(r"^(?:standard|basic)_[a-z]+?(\d+)", re.IGNORECASE)

_DEDICATED = ("currentDedicatedNodes", "targetDedicatedNodes", "dedicated", ACCOUNT_CORE_QUOTA_REACHED, "dedicatedCoreQuota")
_LOW_PRIORITY = ("currentLowPriorityNodes", "targetLowPriorityNodes", "low-priority", ACCOUNT_LOW_PRIORITY_CORE_QUOTA_REACHED, "lowPriorityCoreQuota")
_KINDS = (_DEDICATED, _LOW_PRIORITY)


@dataclass
class AllocationModel:
    """How the emulated Batch service allocates nodes. Durations are virtual seconds.

    ``quota_error``: when set, every resize that adds nodes ends after one step
    with that code and no new nodes (see also :meth:`BatchBackend.set_quota_error`).
    ``cores_per_vm_size``: cores per node for the account core-quota check;
    sizes not listed use their published vCPUs (vm_skus.json), else the digits of the size name
    (``Standard_D16ds_v5`` -> 16), else ``default_cores_per_node``.
    ``capacity_pauses``: (start, length) in virtual seconds since the emulator started, during which the region
    has no capacity: no node arrives; a length of None means capacity never returns.

    Sources: ``max_nodes_per_resize`` follows batch-custom-images ("If you plan to create a pool with more than 300
    compute nodes, you might need to resize the pool multiple times to reach the target size"). How fast nodes
    arrive within a resize is not documented anywhere we found (the Batch docs and the REST spec give only the
    resize timeout): nodes come in steps of ``step_seconds``, ``nodes_per_minute`` a minute, the model's own
    choice; the guard's stall policy (shared/guard/rules.py) is stated against this step.
    """

    max_nodes_per_resize: int = 300
    nodes_per_minute: int = 100
    quota_error: str | None = None
    step_seconds: float = 60
    stop_seconds: float = 30
    delete_seconds: float = 60
    default_cores_per_node: int = 4
    cores_per_vm_size: dict[str, int] = field(default_factory=dict)
    capacity_pauses: tuple[tuple[float, float | None], ...] = ()
    # Cores per size as answered so far (the model's fields are fixed once made: configure_allocation makes a new one).
    _cores_seen: dict[str | None, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def cores_for(self, vm_size: str | None) -> int:
        known = self._cores_seen.get(vm_size)
        if known is not None:
            return known
        sizes = {k.lower(): v for k, v in self.cores_per_vm_size.items()}
        published = vm_sku_capability(vm_size, "vCPUs")
        if vm_size and vm_size.lower() in sizes:
            cores = sizes[vm_size.lower()]
        elif published is not None and published.isdigit():
            cores = int(published)
        else:
            found = _VM_SIZE_CORES.match(vm_size or "")
            cores = int(found.group(1)) if found and int(found.group(1)) > 0 else self.default_cores_per_node
        self._cores_seen[vm_size] = cores
        return cores

    @property
    def nodes_per_step(self) -> int:
        return max(1, round(self.nodes_per_minute * self.step_seconds / 60))

    def has_capacity(self, elapsed_seconds: float) -> bool:
        """Whether the region can allocate nodes ``elapsed_seconds`` after the emulator started."""
        return not any(start <= elapsed_seconds and (length is None or elapsed_seconds < start + length)
                       for start, length in self.capacity_pauses)


@dataclass(eq=False)
class _Resize:
    """One resize in flight; callbacks of a superseded resize see it is no longer current."""

    deadline: datetime
    added: int = 0


@dataclass(eq=False)
class _Stop:
    """A stopResize in flight."""


@dataclass
class _Deletion:
    pool_id: str
    status: str = "InProgress"
    error: ArmError | None = None


class BatchBackend:
    """State and operations of the Batch resource provider (accounts and pools)."""

    def __init__(self, emulator) -> None:
        self._emulator = emulator
        self.allocation = AllocationModel()
        self._runs: dict[str, _Resize | _Stop] = {}
        self._quota_errors: dict[str, str] = {}
        self._deletions: dict[str, _Deletion] = {}
        # (pool id, start, end) of every finished resize: what benchmarks measure time-to-target against.
        self.resize_history: list[tuple[str, datetime, datetime]] = []
        self._resize_started: dict[str, datetime] = {}
        # When Batch stopped accepting pools straight from a managed image; None plays a cloud that still accepts them.
        self.managed_image_pools_retired_on: datetime | None = MANAGED_IMAGE_POOLS_RETIRED
        # Per pool (lower-case id): its nodes by the image each was deployed from (a node keeps its image until it goes).
        self._node_images: dict[str, dict[str, int]] = {}
        # The VM sizes a region offers (region key -> lower-case names); a region not here offers every published size.
        self._region_vm_sizes: dict[str, frozenset[str]] = {}
        # Per pool (lower-case id): its Spot/low-priority nodes in state Preempted (still counted as current nodes).
        self._preempted: dict[str, int] = {}
        # Cores in use per (account key, node-count property): (the account's pool count when summed, cores). Every step
        # of a resize asks for its account's quota room: a step's own node changes are added here, and the sum is taken
        # again when the account gains or loses a pool, or a PUT or PATCH may have changed a pool's VM size.
        self._cores_in_use: dict[tuple[str, str], tuple[int, int]] = {}

    @property
    def _store(self):
        return self._emulator.store

    # -- seeding and configuration (not an API) ------------------------------

    def add_account(
        self,
        account_id: str,
        *,
        location: str = "westeurope",
        dedicated_core_quota: int = 100_000,
        low_priority_core_quota: int = 100_000,
        pool_quota: int = 100,
        pool_allocation_mode: str = "BatchService",
        tags: dict | None = None,
    ) -> ArmResource:
        """Seed a Batch account shaped like the real GET."""
        name = account_id.rstrip("/").rsplit("/", 1)[-1]
        region = location.replace(" ", "").lower()
        properties: dict = {
            "accountEndpoint": f"{name}.{region}.batch.azure.com",
            "nodeManagementEndpoint": f"{name}.{region}.service.batch.azure.com",
            "provisioningState": "Succeeded",
            "poolAllocationMode": pool_allocation_mode,
            "publicNetworkAccess": "Enabled",
            "encryption": {"keySource": "Microsoft.Batch"},
            "allowedAuthenticationModes": ["SharedKey", "AAD", "TaskAuthenticationToken"],
        }
        if pool_allocation_mode == "BatchService":
            # Core quotas are reported (and enforced) only in BatchService mode.
            properties.update({
                "dedicatedCoreQuota": dedicated_core_quota,
                "dedicatedCoreQuotaPerVMFamily": [],
                "dedicatedCoreQuotaPerVMFamilyEnforced": False,
                "lowPriorityCoreQuota": low_priority_core_quota,
            })
        properties.update({"poolQuota": pool_quota, "activeJobAndJobScheduleQuota": 300})
        resource = ArmResource(account_id.rstrip("/"), ACCOUNT, location, properties, dict(tags or {}),
                               extra={"identity": {"type": "None"}}, created_at=self._emulator.now())
        return self._store.put(resource)

    def configure_allocation(self, **changes) -> AllocationModel:
        """Change the allocation model (any :class:`AllocationModel` field); returns it."""
        self.allocation = dataclasses.replace(self.allocation, **changes)
        self._cores_in_use.clear()  # the cores per VM size may have changed
        return self.allocation

    def resize_exhausted(self, pool_id: str) -> bool:
        """Whether the pool's resize in flight has allocated every node it will (not an API: what benchmarks' ideal
        drivers know and a client cannot)."""
        run = self._runs.get(pool_id.lower())
        return isinstance(run, _Resize) and self._budget(run) == 0

    def set_core_quotas(self, account_id: str, *, dedicated: int | None = None, low_priority: int | None = None) -> None:
        """Change an account's core quotas (Azure changes them through support requests, not ARM writes)."""
        account = self.get_account(account_id.rstrip("/"))
        if dedicated is not None:
            account.properties["dedicatedCoreQuota"] = dedicated
        if low_priority is not None:
            account.properties["lowPriorityCoreQuota"] = low_priority

    def set_region_vm_sizes(self, location: str, vm_sizes: list[str] | None) -> None:
        """Make a region offer only ``vm_sizes`` (None: every published size). A size without published capabilities
        cannot be offered: the emulator would have to invent them."""
        if vm_sizes is None:
            self._region_vm_sizes.pop(_region(location), None)
            return
        unknown = [size for size in vm_sizes if size.lower() not in PUBLISHED_VM_SKUS]
        if unknown:
            raise ValueError(f"no published capabilities for {', '.join(unknown)} (emulator/batch/vm_skus.json lists "
                             f"{', '.join(sorted(sku['name'] for sku in PUBLISHED_VM_SKUS.values()))})")
        self._region_vm_sizes[_region(location)] = frozenset(size.lower() for size in vm_sizes)

    def set_quota_error(self, scope_id: str, code: str | None) -> None:
        """Make resizes of a pool (or of every pool of an account) end with ``code``; None clears it."""
        if code is None:
            self._quota_errors.pop(scope_id.lower().rstrip("/"), None)
        else:
            self._quota_errors[scope_id.lower().rstrip("/")] = code

    # -- reads ---------------------------------------------------------------

    def get_account(self, account_id: str) -> ArmResource:
        account = self._store.find(account_id)
        if account is None or account.type.lower() != ACCOUNT.lower():
            raise ResourceNotFound(f"The Resource '{ACCOUNT}/{_name(account_id)}' under resource group "
                                   f"'{_resource_group(account_id)}' was not found.")
        return account

    def virtual_machine_skus(self, location: str) -> list[dict]:
        """Location_ListSupportedVirtualMachineSkus: the published sizes the region offers, with their capabilities."""
        offered = self._region_vm_sizes.get(_region(location))
        return [{"name": sku["name"], "familyName": sku["familyName"], "capabilities": [dict(c) for c in sku["capabilities"]]}
                for key, sku in sorted(PUBLISHED_VM_SKUS.items()) if offered is None or key in offered]

    def offers_vm_size(self, location: str, vm_size: str | None) -> bool:
        """Whether Batch offers ``vm_size`` in the region (a published size, and one the region's list keeps)."""
        key = (vm_size or "").lower()
        offered = self._region_vm_sizes.get(_region(location))
        return key in PUBLISHED_VM_SKUS and (offered is None or key in offered)

    def get_pool(self, pool_id: str) -> ArmResource:
        pool = self._store.find(pool_id)
        if pool is None or pool.type.lower() != POOL.lower():
            raise ResourceNotFound("The specified pool does not exist.", code="PoolNotFound")
        return pool

    def nodes_by_image(self, pool_id: str) -> dict[str, int]:
        """The pool's nodes (dedicated and Spot/low-priority) by the image each was deployed from.

        Not a management-plane read: the Batch service API lists a pool's compute nodes, each with the image it
        runs (ComputeNode.virtualMachineInfo.imageReference). What a refresh is judged by: the nodes a resize
        brings after an image change run the new image.
        """
        return {image: count for image, count in self._node_images.get(pool_id.lower(), {}).items() if count}

    def list_pools(self, account_id: str) -> list[ArmResource]:
        account = self.get_account(account_id)
        return self._store.children(POOL, account.id)

    # -- writes --------------------------------------------------------------

    def create_pool(self, account_id: str, pool_name: str, body: dict, *, if_match: str | None = None,
                    if_none_match: str | None = None, url: str) -> ArmResource:
        """PUT: create, or replace an existing pool's settings (If-Match / If-None-Match honoured)."""
        account = self._store.require_parent(f"{account_id}/pools/{pool_name}", account_id)
        if not _POOL_NAME.match(pool_name):
            raise InvalidParameter(f"The pool name '{pool_name}' may contain only letters, digits, '-' and '_' (at most 64).")
        pool_id = f"{account.id}/pools/{pool_name}"
        existing = self._store.find(pool_id)
        _check_preconditions(existing, if_match=if_match, if_none_match=if_none_match)
        requested = _settable(body.get("properties"))
        _validate(requested, creating=True)
        self._check_image_placement(account, requested)
        self._check_security(requested)
        if existing is not None:
            self._emulator.locks.check_write(existing.id)
            self._replace(existing, body, requested)
            pool = existing
        else:
            if len(self._store.children(POOL, account.id)) >= int(account.properties.get("poolQuota", 100)):
                raise Conflict("Pool quota for the account has been reached.", code="PoolQuotaReached")
            pool = self._new_pool(pool_id, body, requested)
        self._emulator.emit(pool.id, "PUT", True, url)
        return pool

    def update_pool(self, pool_id: str, body: dict, *, if_match: str | None = None, url: str) -> ArmResource:
        """PATCH: replace only the properties given; new fixed-scale targets start a resize."""
        pool = self.get_pool(pool_id)
        _check_preconditions(pool, if_match=if_match, if_none_match=None)
        self._emulator.locks.check_write(pool.id)
        changes = _settable(body.get("properties"))
        _validate(changes, creating=False)
        self._ensure_writable(pool, changes)
        _ensure_changeable_at_size(pool, changes)
        if "deploymentConfiguration" in changes:
            self._check_image_placement(self.get_account(pool.id.rsplit("/pools/", 1)[0]), changes)
        if "deploymentConfiguration" in changes or "vmSize" in changes:
            self._check_security({**pool.properties, **changes})
        if "scaleSettings" in changes:
            changes["scaleSettings"] = _normalised_scale(changes["scaleSettings"])
        pool.properties.update(changes)
        self._cores_in_use.clear()
        if "tags" in body:
            pool.tags = dict(body.get("tags") or {})
        self._touch(pool)
        if "scaleSettings" in changes:
            self._resize_if_needed(pool)
        self._emulator.emit(pool.id, "PATCH", True, url)
        return pool

    def stop_resize(self, pool_id: str, *, url: str | None) -> ArmResource:
        """POST stopResize: a resize in progress goes Stopping, then Steady with ``ResizeStopped``.

        ``url`` None: the Batch service API's stop-resize, which raises no ARM event."""
        pool = self.get_pool(pool_id)
        self._ensure_not_deleting(pool)
        if pool.properties.get("allocationState") == RESIZING:
            key = pool.id.lower()
            stop = _Stop()
            self._runs[key] = stop
            self._set_allocation_state(pool, STOPPING)

            def stopped() -> None:
                with self._emulator.lock:
                    if self._runs.get(key) is stop and self._store.find(pool.id) is pool:
                        self._finish(pool, [_error(RESIZE_STOPPED, "Desired number of nodes could not be allocated due to a stop resize operation.")])

            self._emulator.clock.call_later(self.allocation.stop_seconds, stopped)
        if url is not None:
            self._emulator.emit(pool.id, "POST", True, url, "stopResize")
        return pool

    # -- the Batch service API (data plane) -------------------------------------------------------------------
    #
    # What `az batch pool delete/resize/stop-resize`, Batch Explorer or the Batch SDKs do: calls to the account's own
    # endpoint, not to management.azure.com. "Operations sent to the data plane (like myaccount.blob.core.windows.net) do
    # not create events" (MicrosoftDocs/azure-docs, articles/event-grid/event-schema-resource-groups.md): no ARM event and
    # no Activity Log entry (it lists what ARM answered); "Locks only apply to control plane Azure operations and not to
    # data plane operations" (articles/azure-resource-manager/management/lock-resources.md), so no lock stops them.

    def data_plane_delete_pool(self, pool_id: str) -> None:
        """DELETE {accountEndpoint}/pools/{poolId}: the pool goes Deleting, then is gone; no ARM event."""
        pool = self.get_pool(pool_id)
        self._ensure_not_deleting(pool)
        self._runs.pop(pool.id.lower(), None)
        self._set_provisioning_state(pool, "Deleting")

        def deleted() -> None:
            with self._emulator.lock:
                self._store.remove(pool.id)

        self._emulator.clock.call_later(self.allocation.delete_seconds, deleted)

    def data_plane_resize(self, pool_id: str, dedicated: int, low_priority: int) -> None:
        """POST {accountEndpoint}/pools/{poolId}/resize: new fixed-scale targets, a resize starts; no ARM event.

        "You can only resize a Pool when its allocation state is steady. If the Pool is already resizing, the request
        fails with status code 409" (Batch REST, Pools - Resize Pool, 2025-06-01): refused whatever the targets, unlike
        a management-plane PATCH, with ``PoolBeingResized`` ("Conflict (409) The specified pool is being resized",
        Batch status and error codes). A pool being deleted refuses it as the PATCH does (``PoolBeingDeleted``). "You
        can't resize Pools which are configured for automatic scaling. If you try to do this, the Batch service returns
        an error 409" (same page): the page names no code; ``OperationNotValidOnPool`` ("The specified operation is not
        valid on the pool", Batch status and error codes) is the nearest there, not recorded.
        """
        pool = self.get_pool(pool_id)
        self._ensure_not_deleting(pool)
        if pool.properties.get("allocationState") != STEADY:
            raise Conflict(f"The specified pool '{pool.name}' is being resized.", code="PoolBeingResized")
        if "autoScale" in (pool.properties.get("scaleSettings") or {}):
            raise Conflict(f"The specified pool '{pool.name}' is configured for automatic scaling.", code="OperationNotValidOnPool")
        fixed = {**((pool.properties.get("scaleSettings") or {}).get("fixedScale") or {}),
                 "targetDedicatedNodes": dedicated, "targetLowPriorityNodes": low_priority}
        pool.properties["scaleSettings"] = _normalised_scale({"fixedScale": fixed})
        self._touch(pool)
        self._resize_if_needed(pool)

    def preempt_low_priority_nodes(self, pool_id: str, nodes: int, capacity_returns_after: float | None) -> int:
        """Azure takes back ``nodes`` of the pool's Spot/low-priority nodes; returns how many it took.

        MicrosoftDocs/azure-docs articles/batch/batch-spot-vms.md: "The preempted VMs have their state updated to
        Preempted", "A list nodes operation on the pool still returns the preempted nodes", and "The pool continually
        attempts to reach the target number of Spot nodes available. When replacement capacity is found, the nodes keep
        their IDs, but are reinitialized". The Batch REST spec (PoolProperties.currentLowPriorityNodes): "Spot/Low-priority
        Compute Nodes which have been preempted are included in this count", so the pool as ARM shows it does not change:
        only the nodes' state does (:meth:`preempted_nodes`). No ARM event follows (it is no ARM operation). When capacity
        comes back is not documented: after ``capacity_returns_after`` seconds, as the scenario says (None: never).
        """
        pool = self.get_pool(pool_id)
        key = pool.id.lower()
        running = int(pool.properties.get("currentLowPriorityNodes", 0)) - self._preempted.get(key, 0)
        taken = max(0, min(nodes, running))
        if not taken:
            return 0
        self._preempted[key] = self._preempted.get(key, 0) + taken

        def restored() -> None:
            with self._emulator.lock:
                if key in self._preempted:
                    self._preempted[key] = max(0, self._preempted[key] - taken)

        if capacity_returns_after is not None:
            self._emulator.clock.call_later(capacity_returns_after, restored)
        return taken

    def preempted_nodes(self, pool_id: str) -> int:
        """The pool's Spot/low-priority nodes in state Preempted (not a management-plane read: the Batch service API's
        List Pool Node Counts, lowPriority.preempted). Never more than the pool's current low-priority nodes: nodes a
        shrink removes go (whether Batch removes preempted nodes first is not documented)."""
        key = pool_id.lower()
        pool = self._store.find(pool_id)
        if pool is None:
            self._preempted.pop(key, None)
            return 0
        return min(self._preempted.get(key, 0), int(pool.properties.get("currentLowPriorityNodes", 0)))

    def data_plane_stop_resize(self, pool_id: str) -> None:
        """POST {accountEndpoint}/pools/{poolId}/stopresize: as the management plane's stopResize, with no ARM event."""
        self.stop_resize(pool_id, url=None)

    def delete_pool(self, pool_id: str, *, url: str, api_version: str) -> ArmResponse:
        """DELETE: 202 + ``Location`` polled until the pool is gone; the delete event follows completion."""
        pool = self._store.find(pool_id)
        if pool is None or pool.type.lower() != POOL.lower():
            return ArmResponse(204)
        account_id, name = pool.id.rsplit("/pools/", 1)
        headers = {
            "Location": f"{ARM_BASE_URL}{account_id}/poolOperationResults/delete-{name}?api-version={api_version}",
        }
        # No Retry-After on the 202 nor on the polls: recorded in Azure/azure-sdk-for-python
        # sdk/batch/azure-mgmt-batch/tests/recordings/test_mgmt_batch.test_mgmt_batch_pools.yaml (tests/data/recordings/batch-pools.json).
        if pool.properties.get("provisioningState") == "Deleting":
            return ArmResponse(202, None, headers)
        self._emulator.locks.check_delete(pool.id)
        key = pool.id.lower()
        self._runs.pop(key, None)
        self._set_provisioning_state(pool, "Deleting")
        deletion = _Deletion(pool.id)
        self._deletions[_operation_key(account_id, f"delete-{name}")] = deletion
        failure = None
        if self._emulator.faults.draw(f"DELETE {POOL}", (FaultKind.LRO_FAILED,)):
            failure = ArmError(f"The delete of pool '{name}' failed (injected fault).", code="InternalServerError", status=500)

        def deleted() -> None:
            with self._emulator.lock:
                if failure is None:
                    self._store.remove(pool.id)
                    self._node_images.pop(key, None)
                    deletion.status = "Succeeded"
                else:
                    self._set_provisioning_state(pool, "Succeeded")
                    deletion.status, deletion.error = "Failed", failure
            self._emulator.emit(pool.id, "DELETE", failure is None, url)

        self._emulator.clock.call_later(self.allocation.delete_seconds, deleted)
        return ArmResponse(202, None, headers)

    def pool_operation_result(self, account_id: str, operation: str, *, url: str) -> ArmResponse:
        """The ``Location`` a pool delete is polled at: 202 while deleting, 200 when done."""
        deletion = self._deletions.get(_operation_key(account_id, operation))
        if deletion is None:
            raise ResourceNotFound(f"The operation '{operation}' was not found.", code="OperationNotFound")
        if deletion.status == "InProgress":
            return ArmResponse(202, None, {"Location": url})
        if deletion.error is not None:
            raise deletion.error
        return ArmResponse(200)

    def _check_image_placement(self, account: ArmResource, props: dict) -> None:
        """Refuse a custom image the account's region (or subscription) cannot use.

        No source found states the error Batch returns here: the 400 ``InvalidPropertyValue`` is the
        emulator's choice, not a recorded code. An image that does not exist is let through, as before: its
        first resize fails with ``AllocationFailed``.
        """
        image_id = _image_id(props)
        image = self._store.find(image_id) if image_id else None
        if image is None:
            return
        where = "properties.deploymentConfiguration.virtualMachineConfiguration.imageReference.id"
        account_region = _region(account.location)
        kind = image.type.lower()
        if kind == GALLERY_IMAGE_VERSION.lower():
            # Batch management REST spec, ImageReference.id: "The Azure Compute Gallery Image must have replicas
            # in the same region as the Azure Batch account"; learn.microsoft.com/azure/batch/batch-sig-images:
            # "The image can be in a different region as long as it has replicas in the same region as your
            # Batch account." A version without publishingProfile.targetRegions is replicated in its own location.
            regions = [r.get("name") for r in (image.properties.get("publishingProfile") or {}).get("targetRegions") or []
                       if r.get("name")] or [image.location or ""]
            if account_region not in {_region(r) for r in regions}:
                raise InvalidParameter(
                    f"'{where}': the Azure Compute Gallery image version '{image.id}' has no replica in the Batch "
                    f"account's region '{account.location}' (target regions: {', '.join(regions)}).",
                    code="InvalidPropertyValue")
        elif kind == MANAGED_IMAGE.lower():
            retired = self.managed_image_pools_retired_on
            if retired is not None and self._emulator.now() >= retired:
                # MicrosoftDocs/azure-docs, articles/batch/batch-custom-image-pools-to-azure-compute-gallery-migration-guide.md:
                # custom-image pools made straight from a managed image are retired on 2026-03-31. No source shows the
                # answer Batch gives afterwards: the 400 InvalidPropertyValue and its wording are the emulator's.
                raise InvalidParameter(
                    f"'{where}': custom image pools from a managed image ('{image.id}') were retired on {retired:%Y-%m-%d}; "
                    "use an Azure Compute Gallery image version.", code="InvalidPropertyValue")
            # learn.microsoft.com/azure/batch/batch-custom-images ("Use a managed image to create a custom image
            # pool"): "The custom image must be a managed image resource in the same Azure subscription and
            # region as the Batch account."
            same_subscription = _subscription(image.id) == _subscription(account.id)
            if not same_subscription or _region(image.location or "") != account_region:
                raise InvalidParameter(
                    f"'{where}': the managed image '{image.id}' (location '{image.location}') must be in the same "
                    f"subscription and region as the Batch account ('{account.location}').",
                    code="InvalidPropertyValue")

    def _check_security(self, props: dict) -> None:
        """Refuse a pool whose VM size or image cannot run with its ``securityProfile`` (sources next to each rule).

        Batch passes the profile to the VMs it makes; no recorded Batch answer shows these refusals, so each answers
        with Compute's recorded refusal of the same VM (400 ``BadRequest``); Batch may instead accept the pool and fail
        its nodes.
        """
        where = "properties.deploymentConfiguration.virtualMachineConfiguration.securityProfile"
        vm_config = (props.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration") or {}
        security_type = str((vm_config.get("securityProfile") or {}).get("securityType") or "").lower()
        vm_size = props.get("vmSize")
        if security_type == "confidentialvm" and vm_sku_capability(vm_size, "ConfidentialComputingType") is None:
            # Compute's answer to a confidential VM on another size, recorded in confidential-containers/cloud-api-adaptor
            # issue 1742 (400 BadRequest): "The VM size 'Standard_D2as_v5' is not supported for creation of VMs and Virtual
            # Machine Scale Set with 'ConfidentialVM' security type ...". Confidential sizes carry ConfidentialComputingType
            # (vm_skus.json).
            raise InvalidParameter(f"{where}.securityType: The VM size '{vm_size}' is not supported for creation of VMs and "
                                   "Virtual Machine Scale Set with 'ConfidentialVM' security type.", code="BadRequest")
        image_id = _image_id(props)
        image = self._store.find(image_id) if image_id else None
        if image is None or image.type.lower() != GALLERY_IMAGE_VERSION.lower():
            return
        definition = self._store.find(image.id.rsplit("/versions/", 1)[0])
        features = {str(f.get("name", "")).lower(): str(f.get("value") or "") for f in (definition.properties.get("features") or [])} \
            if definition is not None else {}
        if features.get("securitytype", "").lower() == "trustedlaunch" and security_type != "trustedlaunch":
            # Compute's answer to a VM without Trusted Launch from such an image, recorded in kubermatic/machine-controller
            # issue 2013 and jenkinsci/azure-vm-agents-plugin issue 459 (400 BadRequest): "The provided gallery image only
            # supports creation of VMs and VM Scale Sets with 'TrustedLaunch' security type." A "...Supported" definition
            # also runs as a plain generation 2 VM (trusted-launch-portal), so only SecurityType TrustedLaunch is refused.
            # The same for a ConfidentialVM definition is not recorded: the emulator does not refuse it.
            raise InvalidParameter(f"{where}: The provided gallery image only supports creation of VMs and VM Scale Sets with "
                                   "'TrustedLaunch' security type.", code="BadRequest")

    # -- pool state ----------------------------------------------------------

    def _new_pool(self, pool_id: str, body: dict, requested: dict) -> ArmResource:
        now = _iso(self._emulator.now())
        properties = {
            "lastModified": now,
            "creationTime": now,
            "provisioningState": "Succeeded",
            "provisioningStateTransitionTime": now,
            "allocationState": STEADY,
            "allocationStateTransitionTime": now,
            **_defaults(),
            **requested,
            "currentDedicatedNodes": 0,
            "currentLowPriorityNodes": 0,
        }
        properties["scaleSettings"] = _normalised_scale(properties["scaleSettings"])
        extra = {"identity": body["identity"]} if body.get("identity") else {}
        pool = ArmResource(pool_id, POOL, None, properties, dict(body.get("tags") or {}), etag=new_etag(),
                           extra=extra, created_at=self._emulator.now())
        self._store.put(pool)
        self._cores_in_use.clear()
        self._resize_if_needed(pool, creating=True)
        return pool

    def _replace(self, pool: ArmResource, body: dict, requested: dict) -> None:
        requested = {**_defaults(), **requested}
        requested["scaleSettings"] = _normalised_scale(requested["scaleSettings"])
        self._ensure_writable(pool, requested)
        _ensure_changeable_at_size(pool, requested)
        kept = {k: v for k, v in pool.properties.items() if k in _READ_ONLY}
        pool.properties.clear()
        pool.properties.update({**kept, **requested})
        self._cores_in_use.clear()
        pool.tags = dict(body.get("tags") or {})
        if body.get("identity"):
            pool.extra["identity"] = body["identity"]
        self._touch(pool)
        self._resize_if_needed(pool)

    def _ensure_not_deleting(self, pool: ArmResource) -> None:
        if pool.properties.get("provisioningState") == "Deleting":
            raise Conflict("The specified pool has been marked for deletion and is being reclaimed.", code="PoolBeingDeleted")

    def _ensure_writable(self, pool: ArmResource, changes: dict) -> None:
        self._ensure_not_deleting(pool)
        scale = changes.get("scaleSettings")
        if scale is None or pool.properties.get("allocationState") == STEADY:
            return
        if _normalised_scale(scale) != pool.properties.get("scaleSettings"):
            raise Conflict(
                f"The scale settings of pool '{pool.name}' cannot change while its allocation state is "
                f"{pool.properties.get('allocationState')}; wait until it is Steady or stop the resize.",
                code="PoolBeingResized",
            )

    def _touch(self, pool: ArmResource) -> None:
        pool.properties["lastModified"] = _iso(self._emulator.now())
        pool.etag = new_etag()

    def _set_allocation_state(self, pool: ArmResource, state: str) -> None:
        pool.properties["allocationState"] = state
        pool.properties["allocationStateTransitionTime"] = _iso(self._emulator.now())

    def _set_provisioning_state(self, pool: ArmResource, state: str) -> None:
        pool.properties["provisioningState"] = state
        pool.properties["provisioningStateTransitionTime"] = _iso(self._emulator.now())

    # -- allocation ------------------------------------------------------------

    def _resize_if_needed(self, pool: ArmResource, *, creating: bool = False) -> None:
        """Start a resize when the pool is Steady and its fixed-scale targets differ from its nodes.

        A new fixed-scale pool always starts Resizing, even with targets 0/0: recorded traffic
        (Azure/azure-sdk-for-python, sdk/batch/azure-mgmt-batch/tests/recordings/
        test_mgmt_batch.pyTestMgmtBatchtest_mgmt_batch_pools.json) answers the PUT of a 0/0 pool with
        allocationState "Resizing" and a resizeOperationStatus, and lists it Resizing a second later. (The REST
        spec example PoolCreate_SharedImageGallery.json shows Steady; the recording is the service's own answer.)
        How long such a resize lasts is not recorded: here it ends at the first allocation step.
        """
        fixed = (pool.properties.get("scaleSettings") or {}).get("fixedScale")
        if fixed is None or pool.properties.get("allocationState") != STEADY:
            return
        if not creating and all(pool.properties.get(current, 0) == fixed.get(target, 0) for current, target, *_ in _KINDS):
            return
        timeout = _duration(fixed.get("resizeTimeout")) if fixed.get("resizeTimeout") else DEFAULT_RESIZE_TIMEOUT
        now = self._emulator.now()
        pool.properties["resizeOperationStatus"] = {
            "startTime": _iso(now),
            "targetDedicatedNodes": fixed.get("targetDedicatedNodes", 0),
            "targetLowPriorityNodes": fixed.get("targetLowPriorityNodes", 0),
            "nodeDeallocationOption": fixed.get("nodeDeallocationOption", "Requeue"),
            "resizeTimeout": isodate.duration_isoformat(timeout),
        }
        self._set_allocation_state(pool, RESIZING)
        self._resize_started[pool.id.lower()] = now
        run = _Resize(deadline=now + timeout)
        self._runs[pool.id.lower()] = run
        self._schedule_step(pool, run)

    def _schedule_step(self, pool: ArmResource, run: _Resize) -> None:
        # Never past the deadline, so nothing stays scheduled once a resize is over.
        when = min(self._emulator.now() + timedelta(seconds=self.allocation.step_seconds), run.deadline)
        self._emulator.clock.call_at(when, lambda: self._step(pool, run))

    def _is_current(self, pool: ArmResource, run) -> bool:
        return self._runs.get(pool.id.lower()) is run and self._store.find(pool.id) is pool

    def _step(self, pool: ArmResource, run: _Resize) -> None:
        with self._emulator.lock:
            if not self._is_current(pool, run):
                return
            props = pool.properties
            status = props["resizeOperationStatus"]
            for current, target, *_ in _KINDS:
                self._nodes_changed(pool, current, min(props[current], status[target]) - props[current])
                props[current] = min(props[current], status[target])  # shrinking is quick
            self._removed(pool)
            growing = [kind for kind in _KINDS if props[kind[0]] < status[kind[1]]]
            if not growing:
                self._finish(pool, [])
                return
            if self._emulator.now() >= run.deadline:
                self._time_out(pool, run)
                return
            image_id = _image_id(props)
            missing = self._emulator.compute.missing_lineage(image_id) if image_id else []
            if missing:
                self._finish(pool, [_error(ALLOCATION_FAILED, "Desired number of nodes could not be allocated: the custom image "
                                           f"or a resource it was made from no longer exists: {', '.join(missing)}.")])
                return
            forced = self._forced_quota_error(pool)
            if forced:
                self._finish(pool, [_error(forced, _quota_message(forced))])
                return
            if not self.allocation.has_capacity(self._emulator.clock.elapsed_seconds):
                # No capacity now: the service keeps trying until the resize's timeout.
                self._schedule_step(pool, run)
                return
            allowance = self.allocation.nodes_per_step
            for kind in growing:
                current, target = kind[0], kind[1]
                add = min(status[target] - props[current], allowance, self._budget(run), self._quota_room(pool, kind))
                self._nodes_changed(pool, current, add)
                props[current] += add
                allowance -= add
                run.added += add
                self._deployed(pool, image_id, add)
            still = [kind for kind in _KINDS if props[kind[0]] < status[kind[1]]]
            if not still:
                self._finish(pool, [])
                return
            blocked = [kind for kind in still if self._quota_room(pool, kind) == 0]
            if self._budget(run) > 0 and len(blocked) < len(still):
                self._schedule_step(pool, run)
            elif blocked:
                self._finish(pool, [_error(kind[3], _quota_message(kind[3])) for kind in blocked])
            else:
                # This resize has allocated all it will; the service keeps trying until resizeTimeout.
                self._emulator.clock.call_at(run.deadline, lambda: self._time_out(pool, run))

    def _time_out(self, pool: ArmResource, run: _Resize) -> None:
        with self._emulator.lock:
            if not self._is_current(pool, run):
                return
            short = [kind[2] for kind in _KINDS if pool.properties[kind[0]] < pool.properties["resizeOperationStatus"][kind[1]]]
            self._finish(pool, [_error(ALLOCATION_TIMED_OUT, f"Desired number of {' and '.join(short) or 'dedicated'} nodes "
                                       "could not be allocated as the resize timeout was reached")])

    def _finish(self, pool: ArmResource, errors: list[dict]) -> None:
        self._runs.pop(pool.id.lower(), None)
        started = self._resize_started.pop(pool.id.lower(), None)
        if started is not None:
            self.resize_history.append((pool.id, started, self._emulator.now()))
        status = pool.properties.setdefault("resizeOperationStatus", {})
        status.pop("errors", None)
        if errors:
            status["errors"] = errors
        self._set_allocation_state(pool, STEADY)

    def _deployed(self, pool: ArmResource, image_id: str | None, nodes: int) -> None:
        """``nodes`` new nodes, deployed from the pool's image as it is now."""
        if nodes:
            images = self._node_images.setdefault(pool.id.lower(), {})
            images[image_id or ""] = images.get(image_id or "", 0) + nodes

    def _removed(self, pool: ArmResource) -> None:
        """The pool shrank: the nodes that went are taken from other images than the pool's current one first."""
        images = self._node_images.get(pool.id.lower(), {})
        surplus = sum(images.values()) - sum(int(pool.properties.get(kind[0], 0)) for kind in _KINDS)
        current = _image_id(pool.properties) or ""
        for image in sorted(images, key=lambda name: name == current):
            taken = min(surplus, images[image])
            images[image] -= taken
            surplus -= taken

    def _budget(self, run: _Resize) -> int:
        return max(0, self.allocation.max_nodes_per_resize - run.added)

    def _quota_room(self, pool: ArmResource, kind: tuple) -> int:
        """Nodes of ``kind`` the account's core quota still allows for this pool."""
        account = self._store.find(pool.id.rsplit("/pools/", 1)[0])
        quota = account.properties.get(kind[4]) if account is not None else None
        if quota is None:
            return 1 << 30
        pools = self._store.children(POOL, account.id)
        key = (account.id.lower(), kind[0])
        counted = self._cores_in_use.get(key)
        if counted is None or counted[0] != len(pools):
            cores_for, field, used = self.allocation.cores_for, kind[0], 0
            for p in pools:
                nodes = p.properties.get(field)
                if nodes:
                    used += cores_for(p.properties.get("vmSize")) * int(nodes)
            counted = self._cores_in_use[key] = (len(pools), used)
        return max(0, (int(quota) - counted[1]) // self.allocation.cores_for(pool.properties.get("vmSize")))

    def _nodes_changed(self, pool: ArmResource, field: str, delta: int) -> None:
        """``delta`` nodes of the ``field`` count came to (or left) ``pool``: the account's cores in use follow."""
        account = self._store.find(pool.id.rsplit("/pools/", 1)[0]) if delta else None
        counted = self._cores_in_use.get((account.id.lower(), field)) if account is not None else None
        if account is not None and counted is not None:
            cores = counted[1] + delta * self.allocation.cores_for(pool.properties.get("vmSize"))
            self._cores_in_use[(account.id.lower(), field)] = (counted[0], cores)

    def _forced_quota_error(self, pool: ArmResource) -> str | None:
        account_id = pool.id.rsplit("/pools/", 1)[0]
        return (self._quota_errors.get(pool.id.lower()) or self._quota_errors.get(account_id.lower())
                or self.allocation.quota_error)


# -- request validation and shaping ---------------------------------------------


def _check_preconditions(existing: ArmResource | None, *, if_match: str | None, if_none_match: str | None) -> None:
    if if_none_match is not None and if_none_match.strip() == "*" and existing is not None:
        raise PreconditionFailed(f"The pool '{existing.name}' already exists (If-None-Match: *).")
    if if_match is None:
        return
    if existing is None:
        raise PreconditionFailed("The pool does not exist; the If-Match condition cannot be met.")
    if if_match.strip() != "*" and _weak(if_match) != _weak(existing.etag or ""):
        raise PreconditionFailed(
            f"The condition specified using HTTP conditional header(s) is not met: pool '{existing.name}' has ETag "
            f"{existing.etag}, the request expected {if_match}."
        )


def _weak(etag: str) -> str:
    etag = etag.strip()
    return etag[2:] if etag[:2].upper() == "W/" else etag


def _settable(properties) -> dict:
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise InvalidParameter("'properties' must be a JSON object.")
    return {k: v for k, v in properties.items() if k not in _READ_ONLY}


def _defaults() -> dict:
    return {
        "interNodeCommunication": "Disabled",
        "taskSlotsPerNode": 1,
        "taskSchedulingPolicy": {"nodeFillType": "Spread"},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 0, "targetLowPriorityNodes": 0}},
    }


def _validate(props: dict, *, creating: bool) -> None:
    if creating or "vmSize" in props:
        vm_size = props.get("vmSize")
        if not isinstance(vm_size, str) or not vm_size.strip():
            raise InvalidParameter("Required property 'properties.vmSize' is missing or empty.")
    if creating or "deploymentConfiguration" in props:
        _validate_deployment(props.get("deploymentConfiguration"))
    if props.get("scaleSettings") is not None:
        _validate_scale(props["scaleSettings"])
    if "metadata" in props:
        metadata = props["metadata"]
        if not isinstance(metadata, list) or any(
            not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"] or not isinstance(item.get("value"), str)
            for item in metadata
        ):
            raise InvalidParameter("'properties.metadata' must be a list of {name, value} string pairs.")
    slots = props.get("taskSlotsPerNode")
    if slots is not None and (not isinstance(slots, int) or slots < 1):
        raise InvalidParameter("'properties.taskSlotsPerNode' must be a positive integer.")


def _validate_deployment(deployment) -> None:
    where = "properties.deploymentConfiguration.virtualMachineConfiguration"
    vm_config = (deployment or {}).get("virtualMachineConfiguration") if isinstance(deployment, dict) else None
    if not isinstance(vm_config, dict):
        raise InvalidParameter(f"Required property '{where}' is missing.")
    image = vm_config.get("imageReference")
    if not isinstance(image, dict) or not image:
        raise InvalidParameter(f"Required property '{where}.imageReference' is missing.")
    marketplace = all(image.get(k) for k in ("publisher", "offer", "sku"))
    if not (image.get("id") or marketplace or image.get("sharedGalleryImageId") or image.get("communityGalleryImageId")):
        raise InvalidParameter(
            f"'{where}.imageReference' needs an 'id' (custom image) or 'publisher', 'offer' and 'sku'."
        )
    if image.get("id") and "/providers/microsoft.compute/" not in image["id"].lower():
        raise InvalidParameter(f"'{where}.imageReference.id' must be the ARM id of a Compute image or gallery image: {image['id']!r}.")
    agent = vm_config.get("nodeAgentSkuId")
    if not isinstance(agent, str) or not agent.strip():
        raise InvalidParameter(f"Required property '{where}.nodeAgentSkuId' is missing.")
    if vm_config.get("securityProfile") is not None:
        _validate_security_profile(vm_config["securityProfile"], f"{where}.securityProfile")


# Batch management REST spec 2025-06-01, SecurityTypes: "trustedLaunch" | "confidentialVM" (the SDK compares them
# case-insensitively; the service's own answer to another case is not recorded).
SECURITY_TYPES = ("trustedLaunch", "confidentialVM")


def _validate_security_profile(profile, where: str) -> None:
    """The shape of a pool's ``securityProfile`` per the Batch management REST spec 2025-06-01 (SecurityProfile,
    UefiSettings). What the service answers to a malformed one is not recorded: 400 ``InvalidParameter`` naming the
    property is the emulator's, as for the other shape checks."""
    if not isinstance(profile, dict):
        raise InvalidParameter(f"'{where}' must be a JSON object.")
    security_type = profile.get("securityType")
    if security_type is not None and str(security_type).lower() not in {t.lower() for t in SECURITY_TYPES}:
        raise InvalidParameter(f"'{where}.securityType' must be one of {', '.join(SECURITY_TYPES)}, got {security_type!r}.")
    if profile.get("encryptionAtHost") is not None and not isinstance(profile["encryptionAtHost"], bool):
        raise InvalidParameter(f"'{where}.encryptionAtHost' must be true or false.")
    uefi = profile.get("uefiSettings")
    if uefi is None:
        return
    if not isinstance(uefi, dict) or any(uefi.get(k) is not None and not isinstance(uefi[k], bool) for k in ("secureBootEnabled", "vTpmEnabled")):
        raise InvalidParameter(f"'{where}.uefiSettings' must be an object whose secureBootEnabled and vTpmEnabled are true or false.")
    if security_type is None:
        # Spec, SecurityProfile.securityType: "It has to be set to any specified value to enable UefiSettings."
        raise InvalidParameter(f"'{where}.uefiSettings' needs '{where}.securityType': it has to be set to enable UefiSettings.")


def _validate_scale(scale) -> None:
    if not isinstance(scale, dict):
        raise InvalidParameter("'properties.scaleSettings' must be a JSON object.")
    fixed, auto = scale.get("fixedScale"), scale.get("autoScale")
    if (fixed is None) == (auto is None):
        raise InvalidParameter("'properties.scaleSettings' must specify exactly one of 'fixedScale' or 'autoScale'.")
    if auto is not None:
        if not isinstance(auto, dict) or not auto.get("formula"):
            raise InvalidParameter("Required property 'properties.scaleSettings.autoScale.formula' is missing.")
        return
    if not isinstance(fixed, dict):
        raise InvalidParameter("'properties.scaleSettings.fixedScale' must be a JSON object.")
    for target in ("targetDedicatedNodes", "targetLowPriorityNodes"):
        value = fixed.get(target, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidParameter(f"'properties.scaleSettings.fixedScale.{target}' must be a non-negative integer, got {value!r}.")
    if fixed.get("resizeTimeout") is not None:
        _duration(fixed["resizeTimeout"])
    option = fixed.get("nodeDeallocationOption")
    if option is not None and option not in NODE_DEALLOCATION_OPTIONS:
        raise InvalidParameter(
            f"'properties.scaleSettings.fixedScale.nodeDeallocationOption' must be one of {', '.join(NODE_DEALLOCATION_OPTIONS)}."
        )


def _ensure_changeable_at_size(pool: ArmResource, changes: dict) -> None:
    """Refuse a change of ``vmSize`` or ``deploymentConfiguration`` unless the pool is Steady at zero nodes.

    Only a change is refused: a body naming a property with the value the pool already has is let through (no
    source says what Batch does with an unchanged value sent with api-version 2024-07-01 or later).
    """
    props = pool.properties
    changed = [name for name in ZERO_SIZE_PROPERTIES if name in changes and not _same(name, changes[name], props.get(name))]
    if not changed:
        return
    at_zero = props.get("allocationState") == STEADY and not props.get("currentDedicatedNodes") and not props.get("currentLowPriorityNodes")
    if not at_zero:
        raise PropertyCannotBeUpdated(changed[0])


def _same(name: str, wanted, has) -> bool:
    if name == "vmSize" and isinstance(wanted, str) and isinstance(has, str):
        return wanted.lower() == has.lower()  # Batch keeps a pool's VM size in its own case
    return wanted == has


def _duration(text) -> timedelta:
    """An ISO 8601 ``resizeTimeout`` within the service's bounds (at least 5 minutes)."""
    where = "properties.scaleSettings.fixedScale.resizeTimeout"
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, TypeError, ValueError) as exc:
        raise InvalidParameter(f"'{where}' is not an ISO 8601 duration: {text!r}.") from exc
    if not isinstance(value, timedelta):
        raise InvalidParameter(f"'{where}' may not use years or months: {text!r}.")
    if not MIN_RESIZE_TIMEOUT <= value <= MAX_RESIZE_TIMEOUT:
        raise InvalidParameter(f"'{where}' must be between PT5M and P7D, got {text!r}.")
    return value


def _normalised_scale(scale: dict) -> dict:
    fixed = scale.get("fixedScale")
    if fixed is None:
        return dict(scale)
    fixed = {"targetDedicatedNodes": 0, "targetLowPriorityNodes": 0, **fixed}
    if fixed.get("resizeTimeout"):
        fixed["resizeTimeout"] = isodate.duration_isoformat(_duration(fixed["resizeTimeout"]))
    else:
        # Batch management REST spec, FixedScaleSettings.resizeTimeout: "The default value is 15 minutes"; the
        # recorded PUT of a pool sent without it (see _resize_if_needed) reads back "resizeTimeout": "PT15M".
        fixed["resizeTimeout"] = isodate.duration_isoformat(DEFAULT_RESIZE_TIMEOUT)
    return {"fixedScale": fixed}


def _region(location: str | None) -> str:
    return (location or "").replace(" ", "").lower()


def _subscription(resource_id: str) -> str:
    found = re.search(r"/subscriptions/([^/]+)", resource_id, re.IGNORECASE)
    return found.group(1).lower() if found else ""


def _image_id(properties: dict) -> str | None:
    vm_config = (properties.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration") or {}
    image_id = (vm_config.get("imageReference") or {}).get("id")
    return image_id if not image_id or image_id.startswith("/") else "/" + image_id


def _error(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def _quota_message(code: str) -> str:
    if code == ACCOUNT_LOW_PRIORITY_CORE_QUOTA_REACHED:
        return "The specified account has reached its low-priority core quota."
    if code == ACCOUNT_CORE_QUOTA_REACHED:
        return "The specified account has reached its dedicated core quota."
    return f"The resize could not allocate nodes: {code}."


def _operation_key(account_id: str, operation: str) -> str:
    return f"{account_id.lower().rstrip('/')}/{operation.lower()}"


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _resource_group(resource_id: str) -> str:
    found = re.search(r"/resourceGroups/([^/]+)", resource_id, re.IGNORECASE)
    return found.group(1) if found else ""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
