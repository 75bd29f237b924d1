"""What intake reads of a request's source: where it is, what it is, and what the pipeline will copy.

One read per source (the VM, the OS disk snapshot, the managed image, or the
gallery version and its definition). A source that does not exist, or does not
qualify, is a :class:`~shared.model.request.RequestRejected` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arm.ids import SNAPSHOT, ArmId
from ..arm.views import GENERALIZED
from ..gateway.protocol import ComputeGateway
from ..model.plan import PlannedSnapshot, security_type_of
from ..model.request import ImageRequest, RequestRejected
from ..naming import snapshot_name
from .authorization import RequestIds
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
    # A reused gallery version: its replicas per region (region keys).
    version_replicas: dict[str, int] = field(default_factory=dict)
    # The source VM's Secure Boot and vTPM (uefiSettings); on when the source does not say (snapshots, images).
    secure_boot: bool = True
    vtpm: bool = True
    # The image's Hyper-V generation when the source fixes it (a reused version's definition); None: the request's.
    hyper_v_generation: str | None = None


def read_source(request: ImageRequest, ids: RequestIds, compute: ComputeGateway) -> SourceFacts:
    """Read the request's source; the VM prerequisites are checked here (plans allowed on the gallery path)."""
    if ids.virtual_machine is not None:
        return _virtual_machine(request, ids.virtual_machine, compute)
    if ids.os_disk_snapshot is not None:
        return _snapshots(request, ids.os_disk_snapshot, ids.data_disk_snapshots, compute)
    if ids.managed_image is not None:
        return _managed_image(request, ids.managed_image, compute)
    assert ids.gallery_image_version is not None, "a request names exactly one source"
    return _gallery_version(request, ids.gallery_image_version, compute)


def _virtual_machine(request: ImageRequest, vm_id: ArmId, compute: ComputeGateway) -> SourceFacts:
    vm = compute.virtual_machine(vm_id)
    if vm is None:
        raise RequestRejected(f"source.virtualMachineId: {vm_id.id} does not exist", request.id)
    # A purchase plan travels with the gallery definition (Batch needs it there); a managed image cannot carry one.
    unmet = unmet_prerequisites(vm, allow_purchase_plan=not request.image.legacy_managed_image)
    if unmet:
        raise RequestRejected("source.virtualMachineId: prerequisites not met: " + "; ".join(unmet), request.id)
    if vm.hyper_v_generation and vm.hyper_v_generation.upper() != request.image.hyper_v_generation:
        # Compute fails a version whose source's generation differs from its definition's ("The resource with id '...' has a
        # different Hypervisor generation ['V2'] than the parent gallery image Hypervisor generation ['V1']", recorded in
        # Azure/azure-sdk-for-net#28468); the VM's instance view says which generation it is.
        raise RequestRejected(f"image.hyperVGeneration: the VM {vm_id.name} is generation {vm.hyper_v_generation.upper()}, the request "
                              f"says {request.image.hyper_v_generation}: an image keeps the generation of the disks it is made from", request.id)
    snapshots = [PlannedSnapshot(vm_id.sibling(SNAPSHOT, snapshot_name(request.id, disk.lun)), disk.lun, disk.managed_disk_id,
                                 disk.disk_encryption_set_id)
                 for disk in (vm.os_disk, *sorted(vm.data_disks, key=lambda d: d.lun or 0))]
    return SourceFacts(
        location=vm.location,
        subscription=vm_id.subscription,
        os_type=vm.os_disk.os_type,
        security_type=security_type_of(vm.security_type),
        purchase_plan=vm.plan.to_wire() if vm.plan is not None else None,
        snapshots=tuple(snapshots),
        secure_boot=vm.secure_boot is not False,
        vtpm=vm.vtpm is not False,
    )


def _snapshots(request: ImageRequest, os_id: ArmId, data_ids: tuple[ArmId, ...], compute: ComputeGateway) -> SourceFacts:
    assert request.source.snapshots is not None
    os_snapshot = compute.snapshot(os_id)
    if os_snapshot is None:
        raise RequestRejected(f"source.snapshots.osDiskSnapshotId: {os_id.id} does not exist", request.id)
    if not os_snapshot.os_type:
        raise RequestRejected("source.snapshots.osDiskSnapshotId: the snapshot has no osType (not an OS disk)", request.id)
    snapshots = [PlannedSnapshot(os_id, None, None)]
    snapshots += [PlannedSnapshot(snapshot, disk.lun, None) for snapshot, disk in zip(data_ids, request.source.snapshots.data_disks, strict=True)]
    return SourceFacts(
        location=os_snapshot.location,
        subscription=os_id.subscription,
        os_type=os_snapshot.os_type,
        security_type=security_type_of(os_snapshot.security_type),
        purchase_plan=None,
        snapshots=tuple(snapshots),
    )


def _managed_image(request: ImageRequest, image_id: ArmId, compute: ComputeGateway) -> SourceFacts:
    image = compute.image(image_id)
    if image is None:
        raise RequestRejected(f"source.managedImageId: {image_id.id} does not exist", request.id)
    if image.os_state != GENERALIZED:
        raise RequestRejected("source.managedImageId: Batch supports only generalized images", request.id)
    return SourceFacts(
        location=image.location,
        subscription=image_id.subscription,
        os_type=image.os_type,
        security_type=None,
        purchase_plan=None,
        snapshots=(),
    )


def _gallery_version(request: ImageRequest, version_id: ArmId, compute: ComputeGateway) -> SourceFacts:
    version = compute.image_version(version_id)
    if version is None:
        raise RequestRejected(f"source.galleryImageVersionId: {version_id.id} does not exist", request.id)
    definition = compute.image_definition(version_id.parent())
    if definition is None:
        raise RequestRejected(f"source.galleryImageVersionId: its image definition {version_id.parent().id} does not exist", request.id)
    if definition.os_state != GENERALIZED:
        raise RequestRejected("source.galleryImageVersionId: Batch supports only generalized gallery images", request.id)
    return SourceFacts(
        location=version.location,
        subscription=version_id.subscription,
        os_type=definition.os_type,
        security_type=security_type_of(definition.features.get("securitytype")),
        purchase_plan=None,
        snapshots=(),
        version_replicas=dict(version.replicas),
        # Compute REST spec, GalleryImage hyperVGeneration: V1 when the definition does not say.
        hyper_v_generation=definition.hyper_v_generation or "V1",
    )
