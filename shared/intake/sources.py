"""What intake reads of a request's source: where it is, what it is, and what the pipeline will copy.

One read per source (the VM, the OS disk snapshot, the managed image, or the
gallery version and its definition). A source that does not exist, or does not
qualify, is a :class:`~shared.model.request.RequestRejected` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arm.calls import call_arm, get_or_none
from ..arm.ids import SNAPSHOT, ArmId
from ..arm.values import wire_text
from ..clients import AzureClients
from ..model.plan import PlannedSnapshot, security_type_of
from ..model.request import PoolRequest, RequestRejected
from ..naming import snapshot_name
from .prerequisites import unmet_prerequisites


@dataclass(frozen=True)
class SourceFacts:
    """The source as read at intake."""

    location: str
    subscription: str
    os_type: str
    # securityProfile.securityType of the VM (or its OS disk): None for Standard, else TrustedLaunch / ConfidentialVM.
    security_type: str | None
    # The base image's Marketplace purchase plan ({name, publisher, product}), carried to the gallery definition.
    purchase_plan: dict[str, str] | None
    snapshots: tuple[PlannedSnapshot, ...]
    # A reused gallery version: its replicas per region (lower-case, no spaces).
    version_replicas: dict[str, int] = field(default_factory=dict)


def read_source(request: PoolRequest, ids: dict[str, ArmId], clients: AzureClients) -> SourceFacts:
    """Read the request's source; the VM prerequisites are checked here (plans allowed on the gallery path)."""
    if request.source.virtual_machine_id is not None:
        return _virtual_machine(request, ids["source.virtualMachineId"], clients)
    if request.source.snapshots is not None:
        return _snapshots(request, ids, clients)
    if request.source.managed_image_id is not None:
        return _managed_image(request, ids["source.managedImageId"], clients)
    return _gallery_version(request, ids["source.galleryImageVersionId"], clients)


def _virtual_machine(request: PoolRequest, vm_id: ArmId, clients: AzureClients) -> SourceFacts:
    compute = clients.compute(vm_id.subscription)
    vm = get_or_none("read source VM", lambda: compute.virtual_machines.get(vm_id.resource_group, vm_id.name))
    if vm is None:
        raise RequestRejected(f"source.virtualMachineId: {vm_id.id} does not exist", request.id)
    # A purchase plan travels with the gallery definition (Batch needs it there); a managed image cannot carry one.
    unmet = unmet_prerequisites(vm, allow_purchase_plan=not request.image.legacy_managed_image)
    if unmet:
        raise RequestRejected("source.virtualMachineId: prerequisites not met: " + "; ".join(unmet), request.id)
    storage = vm.storage_profile
    snapshots = [PlannedSnapshot(vm_id.sibling(SNAPSHOT, snapshot_name(request.id, None)), None, storage.os_disk.managed_disk.id)]
    snapshots += [
        PlannedSnapshot(vm_id.sibling(SNAPSHOT, snapshot_name(request.id, disk.lun)), disk.lun, disk.managed_disk.id)
        for disk in sorted(storage.data_disks or [], key=lambda d: d.lun)
    ]
    security = getattr(vm, "security_profile", None)
    plan = vm.plan
    return SourceFacts(
        location=vm.location,
        subscription=vm_id.subscription,
        os_type=wire_text(storage.os_disk.os_type),
        security_type=security_type_of(wire_text(getattr(security, "security_type", None))),
        purchase_plan={"name": plan.name, "publisher": plan.publisher, "product": plan.product} if plan is not None else None,
        snapshots=tuple(snapshots),
    )


def _snapshots(request: PoolRequest, ids: dict[str, ArmId], clients: AzureClients) -> SourceFacts:
    assert request.source.snapshots is not None
    os_id = ids["source.snapshots.osDiskSnapshotId"]
    compute = clients.compute(os_id.subscription)
    os_snapshot = get_or_none("read source snapshot", lambda: compute.snapshots.get(os_id.resource_group, os_id.name))
    if os_snapshot is None:
        raise RequestRejected(f"source.snapshots.osDiskSnapshotId: {os_id.id} does not exist", request.id)
    if not os_snapshot.os_type:
        raise RequestRejected("source.snapshots.osDiskSnapshotId: the snapshot has no osType (not an OS disk)", request.id)
    snapshots = [PlannedSnapshot(os_id, None, None)]
    for index, disk in enumerate(request.source.snapshots.data_disks):
        snapshots.append(PlannedSnapshot(ids[f"source.snapshots.dataDisks[{index}].snapshotId"], disk.lun, None))
    security = getattr(os_snapshot, "security_profile", None)
    return SourceFacts(
        location=os_snapshot.location,
        subscription=os_id.subscription,
        os_type=wire_text(os_snapshot.os_type),
        security_type=security_type_of(wire_text(getattr(security, "security_type", None))),
        purchase_plan=None,
        snapshots=tuple(snapshots),
    )


def _managed_image(request: PoolRequest, image_id: ArmId, clients: AzureClients) -> SourceFacts:
    compute = clients.compute(image_id.subscription)
    image = get_or_none("read source image", lambda: compute.images.get(image_id.resource_group, image_id.name))
    if image is None:
        raise RequestRejected(f"source.managedImageId: {image_id.id} does not exist", request.id)
    if image.storage_profile.os_disk.os_state != "Generalized":
        raise RequestRejected("source.managedImageId: Batch supports only generalized images", request.id)
    return SourceFacts(
        location=image.location,
        subscription=image_id.subscription,
        os_type=wire_text(image.storage_profile.os_disk.os_type),
        security_type=None,
        purchase_plan=None,
        snapshots=(),
    )


def _gallery_version(request: PoolRequest, version_id: ArmId, clients: AzureClients) -> SourceFacts:
    definition_id = version_id.parent()
    gallery = definition_id.parent().name
    compute = clients.compute(version_id.subscription)
    version = get_or_none(
        "read source image version",
        lambda: compute.gallery_image_versions.get(version_id.resource_group, gallery, definition_id.name, version_id.name),
    )
    if version is None:
        raise RequestRejected(f"source.galleryImageVersionId: {version_id.id} does not exist", request.id)
    definition = call_arm("read image definition", lambda: compute.gallery_images.get(version_id.resource_group, gallery, definition_id.name))
    if definition.os_state != "Generalized":
        raise RequestRejected("source.galleryImageVersionId: Batch supports only generalized gallery images", request.id)
    features = {f.name.lower(): f.value for f in definition.features or [] if f.name}
    publishing = version.publishing_profile
    replicas: dict[str, int] = {}
    for region in (publishing.target_regions if publishing is not None else None) or []:
        replicas[_region(region.name)] = region.regional_replica_count or (publishing.replica_count if publishing else 1) or 1
    return SourceFacts(
        location=version.location,
        subscription=version_id.subscription,
        os_type=wire_text(definition.os_type),
        security_type=security_type_of(features.get("securitytype")),
        purchase_plan=None,
        snapshots=(),
        version_replicas=replicas,
    )


def _region(name: str | None) -> str:
    return (name or "").replace(" ", "").lower()
