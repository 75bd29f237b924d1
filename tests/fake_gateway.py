"""An in-memory Azure behind the gateway's protocols, for fast unit tests (cosmicpython's fake repository is the model).

It keeps typed views by resource key and answers the way :mod:`shared.gateway` promises (the contract test in
``tests/gateway`` holds it and the emulator-backed gateway to the same expectations): a PUT leaves its resource
under way until :meth:`FakeAzure.settle`, and a second PUT meanwhile answers Waiting; a pool is created only if
missing; a pool PATCH needs the ETag it was read with. :attr:`FakeAzure.writes` records every write; a test asserts
the state it left, not the calls. :meth:`FakeAzure.fail` makes the next call of one operation raise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.arm.ids import ArmId, resource_key
from shared.arm.pools import PoolView
from shared.arm.values import region_key
from shared.arm.views import (
    ActivityLogEntry,
    BatchAccountView,
    GalleryView,
    ImageDefinitionView,
    ImageVersionView,
    ImageView,
    Listing,
    LockView,
    ResourceView,
    SnapshotView,
    VirtualMachineView,
    VmSkuView,
)
from shared.gateway.failures import Waiting
from shared.gateway.protocol import ArmBody, FixedScale, PoolUpdate, PresentResources

UNDER_WAY = "Creating"


class FakeAzure:
    """Every gateway protocol at once: ``compute``, ``batch``, ``locks``, ``monitor`` and ``graph`` are this object."""

    def __init__(self) -> None:
        self.resources: dict[str, Any] = {}  # resource key -> view
        self.lock_notes: dict[str, str] = {}  # lock id key -> notes
        self.activity: list[tuple[str, ActivityLogEntry]] = []  # (resource group id key, entry)
        self.skus: list[VmSkuView] = []
        self.writes: list[tuple[str, str, Any]] = []  # (operation, resource id, body or change)
        self._failures: dict[str, Exception] = {}
        self._etags = 0
        self.compute = self.batch = self.locks = self.monitor = self.graph = self

    # -- for tests ------------------------------------------------------------------------

    def add(self, view: Any) -> Any:
        self.resources[resource_key(view.id)] = view
        return view

    def settle(self, state: str = "Succeeded") -> None:
        """Every operation under way ends ``state``; pools reach their targets."""
        for key, view in list(self.resources.items()):
            if isinstance(view, PoolView) and view.allocation_state == "Stopping":
                # A stopped resize keeps its nodes and reports ResizeStopped.
                view = replace(view, allocation_state="Steady", error_codes=("ResizeStopped",))
            elif isinstance(view, PoolView):
                view = replace(view, current_dedicated=view.target_dedicated, current_low_priority=view.target_low_priority,
                               allocation_state="Steady", provisioning_state="Succeeded")
            elif isinstance(view, ResourceView) and view.provisioning_state == UNDER_WAY:
                view = replace(view, provisioning_state=state)
            self.resources[key] = view

    def fail(self, operation: str, error: Exception) -> None:
        """The next call of ``operation`` (a method name) raises ``error``."""
        self._failures[operation] = error

    def _call(self, operation: str) -> None:
        if operation in self._failures:
            raise self._failures.pop(operation)

    def _get(self, operation: str, resource: ArmId, kind: type) -> Any:
        self._call(operation)
        found = self.resources.get(resource.key())
        return found if isinstance(found, kind) else None

    def _put(self, operation: str, resource: ArmId, body: ArmBody, view: ResourceView) -> Waiting | None:
        self._call(operation)
        existing = self.resources.get(resource.key())
        if isinstance(existing, ResourceView) and existing.provisioning_state == UNDER_WAY:
            return Waiting(f"{operation} {resource.name}")
        self.writes.append((operation, resource.id, body))
        self.add(view)
        return None

    # -- compute ----------------------------------------------------------------------------

    def virtual_machine(self, vm: ArmId) -> VirtualMachineView | None:
        return self._get("virtual_machine", vm, VirtualMachineView)

    def snapshot(self, snapshot: ArmId) -> SnapshotView | None:
        return self._get("snapshot", snapshot, SnapshotView)

    def create_snapshot(self, snapshot: ArmId, body: ArmBody) -> Waiting | None:
        return self._put("create_snapshot", snapshot, body, SnapshotView(snapshot.id, body["location"], UNDER_WAY, "", ""))

    def image(self, image: ArmId) -> ImageView | None:
        return self._get("image", image, ImageView)

    def create_image(self, image: ArmId, body: ArmBody) -> Waiting | None:
        profile = body["properties"]["storageProfile"]
        disks = [profile["osDisk"], *profile.get("dataDisks", [])]
        return self._put("create_image", image, body, ImageView(image.id, body["location"], UNDER_WAY, profile["osDisk"]["osType"],
                                                                 profile["osDisk"]["osState"], tuple(d["snapshot"]["id"] for d in disks)))

    def gallery(self, gallery: ArmId) -> GalleryView | None:
        return self._get("gallery", gallery, GalleryView)

    def image_definition(self, definition: ArmId) -> ImageDefinitionView | None:
        return self._get("image_definition", definition, ImageDefinitionView)

    def create_image_definition(self, definition: ArmId, body: ArmBody) -> Waiting | None:
        p = body["properties"]
        return self._put("create_image_definition", definition, body, ImageDefinitionView(
            definition.id, body["location"], UNDER_WAY, p["osType"], p["osState"], p.get("hyperVGeneration", ""),
            {f["name"].lower(): f["value"] for f in p.get("features", [])}, dict(body.get("tags", {}))))

    def image_version(self, version: ArmId) -> ImageVersionView | None:
        return self._get("image_version", version, ImageVersionView)

    def create_image_version(self, version: ArmId, body: ArmBody) -> Waiting | None:
        p = body["properties"]
        storage = p["storageProfile"]
        disks = [storage.get("source"), storage.get("osDiskImage"), *storage.get("dataDiskImages", [])]
        default = p["publishingProfile"].get("replicaCount") or 1
        end_of_life = p["publishingProfile"].get("endOfLifeDate")
        return self._put("create_image_version", version, body, ImageVersionView(
            version.id, body["location"], UNDER_WAY,
            {region_key(r["name"]): r.get("regionalReplicaCount") or default for r in p["publishingProfile"].get("targetRegions", [])},
            tuple(d.get("id") or d["source"]["id"] for d in disks if d), dict(body.get("tags", {})), body=body,
            exclude_from_latest=bool(p["publishingProfile"].get("excludeFromLatest")),
            end_of_life=datetime.fromisoformat(end_of_life) if end_of_life else None))

    def replicate_image_version(self, version: ArmId, as_read: ImageVersionView, regions: Sequence[tuple[str, int]]) -> Waiting | None:
        body: dict[str, Any] = copy.deepcopy(dict(as_read.body))
        body["properties"]["publishingProfile"]["targetRegions"] = [{"name": n, "regionalReplicaCount": c} for n, c in regions]
        return self.create_image_version(version, body)

    def retire_image_version(self, version: ArmId, as_read: ImageVersionView, end_of_life: datetime) -> Waiting | None:
        body: dict[str, Any] = copy.deepcopy(dict(as_read.body))
        body["properties"]["publishingProfile"].update(excludeFromLatest=True, endOfLifeDate=end_of_life.isoformat())
        return self.create_image_version(version, body)

    # -- batch -------------------------------------------------------------------------------

    def account(self, account: ArmId) -> BatchAccountView | None:
        return self._get("account", account, BatchAccountView)

    def pools(self, account: ArmId) -> Iterator[PoolView]:
        self._call("pools")
        return iter([v for k, v in self.resources.items() if isinstance(v, PoolView) and k.startswith(account.key() + "/pools/")])

    def pool(self, pool: ArmId) -> PoolView | None:
        return self._get("pool", pool, PoolView)

    def create_pool(self, pool: ArmId, body: ArmBody) -> Waiting | None:
        self._call("create_pool")
        if pool.key() in self.resources:
            return Waiting(f"create pool {pool.name}")  # If-None-Match: * (412)
        p = body["properties"]
        scale = p["scaleSettings"]["fixedScale"]
        vm_configuration = p["deploymentConfiguration"]["virtualMachineConfiguration"]
        self.writes.append(("create_pool", pool.id, body))
        self.add(PoolView(pool.id, self._etag(), "Succeeded", "Resizing", None, 0, 0, True, scale.get("targetDedicatedNodes", 0),
                          scale.get("targetLowPriorityNodes", 0), None, None, (), {m["name"]: m["value"] for m in p.get("metadata", [])},
                          vm_configuration["imageReference"]["id"], p.get("vmSize"), **_vm_configuration(vm_configuration)))
        return None

    def update_pool(self, pool: ArmId, etag: str | None, metadata: Mapping[str, str], scale: FixedScale | None = None) -> PoolUpdate:
        change: dict[str, Any] = {"metadata": dict(metadata)}
        if scale is not None:
            change.update(target_dedicated=scale.targets.dedicated, target_low_priority=scale.targets.low_priority,
                          resize_timeout=scale.resize_timeout, allocation_state="Resizing", error_codes=())
        # PoolBeingResized: a new scale while not Steady.
        return self._patch_pool("update_pool", pool, etag, change, lambda found: scale is None or found.allocation_state == "Steady")

    def update_pool_image(self, pool: ArmId, etag: str | None, vm_configuration: Mapping[str, Any], metadata: Mapping[str, str]) -> PoolUpdate:
        change = {"metadata": dict(metadata), "image_id": vm_configuration["imageReference"]["id"], **_vm_configuration(vm_configuration)}
        # PropertyCannotBeUpdated: not Steady at zero nodes.
        return self._patch_pool("update_pool_image", pool, etag, change, lambda found: found.idle)

    def _patch_pool(self, operation: str, pool: ArmId, etag: str | None, change: dict[str, Any], allowed: Callable[[PoolView], bool]) -> PoolUpdate:
        """A conditional PATCH: the pool must be there, unchanged since ``etag``, and in a state that allows ``change``."""
        self._call(operation)
        found = self.resources.get(pool.key())
        if not isinstance(found, PoolView):
            return PoolUpdate.GONE
        if found.etag != etag:
            return PoolUpdate.CHANGED
        if not allowed(found):
            return PoolUpdate.REFUSED
        change = {**change, "etag": self._etag()}
        self.writes.append((operation, pool.id, change))
        self.add(replace(found, **change))
        return PoolUpdate.UPDATED

    def stop_resize(self, pool: ArmId) -> PoolUpdate:
        self._call("stop_resize")
        found = self.resources.get(pool.key())
        if not isinstance(found, PoolView):
            return PoolUpdate.GONE
        if found.allocation_state == "Resizing":
            self.writes.append(("stop_resize", pool.id, None))
            self.add(replace(found, allocation_state="Stopping", etag=self._etag()))
        return PoolUpdate.UPDATED

    def vm_skus(self, subscription: str, region: str) -> list[VmSkuView]:
        self._call("vm_skus")
        return list(self.skus)

    def _etag(self) -> str:
        self._etags += 1
        return f'W/"{self._etags}"'

    # -- locks, monitor, graph -----------------------------------------------------------

    def lock(self, scope: ArmId, name: str) -> LockView | None:
        self._call("lock")
        key = _lock_id(scope, name)
        return LockView(key, "CanNotDelete", self.lock_notes[key.lower()]) if key.lower() in self.lock_notes else None

    def create_lock(self, scope: ArmId, name: str, notes: str) -> Waiting | None:
        self._call("create_lock")
        self.writes.append(("create_lock", scope.id, notes))
        self.lock_notes[_lock_id(scope, name).lower()] = notes
        return None

    def delete_lock(self, scope: ArmId, name: str) -> Waiting | None:
        self._call("delete_lock")
        self.writes.append(("delete_lock", scope.id, name))
        self.lock_notes.pop(_lock_id(scope, name).lower(), None)
        return None

    def subscription_locks(self, subscription: str) -> Listing[LockView]:
        self._call("subscription_locks")
        mine = [LockView(key, "CanNotDelete", notes) for key, notes in self.lock_notes.items() if key.startswith(f"/subscriptions/{subscription.lower()}/")]
        return Listing(tuple(mine), 1)

    def activity_log(self, subscription: str, resource_group: str, start: datetime, end: datetime) -> Listing[ActivityLogEntry]:
        self._call("activity_log")
        group = f"/subscriptions/{subscription}/resourcegroups/{resource_group}".lower()
        return Listing(tuple(entry for where, entry in self.activity if where == group), 1)

    def present(self, resources: Sequence[ArmId]) -> PresentResources:
        self._call("present")
        found = [r.key() for r in resources if getattr(self.resources.get(r.key()), "provisioning_state", "") not in ("", "Deleting")]
        return PresentResources(frozenset(found), 1 if resources else 0)


def _vm_configuration(vm_configuration: Mapping[str, Any]) -> dict[str, Any]:
    """What a pool view reads of its virtualMachineConfiguration (REST shape)."""
    return {"node_agent_sku_id": vm_configuration.get("nodeAgentSkuId"),
            "security_type": (vm_configuration.get("securityProfile") or {}).get("securityType"),
            "vm_configuration": copy.deepcopy(dict(vm_configuration))}


def _lock_id(scope: ArmId, name: str) -> str:
    return f"{scope.id}/providers/Microsoft.Authorization/locks/{name}"
