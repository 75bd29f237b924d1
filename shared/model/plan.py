"""What a request creates, and the ARM body of each step.

The plan is made once at intake and stored with the request; every later step
reads it back through :attr:`shared.store.ledger.RequestRecord.plan`. Bodies are
built here, from the plan and the request alone (no I/O), so what the pipeline
sends is visible and testable in one place.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import isodate

from ..arm.ids import BATCH_POOL, GALLERY_IMAGE, GALLERY_IMAGE_VERSION, IMAGE, SNAPSHOT, ArmId, parse_arm_id
from ..arm.pools import Targets, metadata_items
from ..arm.views import GENERALIZED, ImageDefinitionView
from ..naming import (
    MAX_REGIONAL_REPLICAS,
    METADATA_GUARD_STATE,
    METADATA_REQUEST,
    METADATA_TARGET_DEDICATED,
    METADATA_TARGET_LOW_PRIORITY,
    NODES_PER_REPLICA,
    RESIZE_TIMEOUT_PER_1000_NODES,
    request_tags,
)
from .request import ImageRequest, PoolRequest


@dataclass(frozen=True)
class PlannedSnapshot:
    """A snapshot of one disk (``lun`` None for the OS disk)."""

    snapshot: ArmId
    lun: int | None
    source_disk_id: str | None  # None when the request brought the snapshot
    # The disk encryption set (customer-managed key) the source disk is encrypted with: the snapshot, the managed image
    # and the version's replica in the source's region are encrypted with it too.
    disk_encryption_set_id: str | None = None


@dataclass(frozen=True)
class ResourcePlan:
    """Every resource of one request, from snapshots to pool, and how the image is published."""

    request_id: str
    location: str
    snapshots: tuple[PlannedSnapshot, ...]
    image: ArmId | None
    image_definition: ArmId | None
    image_version: ArmId | None
    pool: ArmId
    replica_count: int
    # Regions the gallery version is replicated to, with replicas in each (the Batch account's region first).
    target_regions: tuple[tuple[str, int], ...] = ()
    # The source's securityProfile.securityType: None (Standard), TrustedLaunch or ConfidentialVM.
    security_type: str | None = None
    # The base image's Marketplace purchase plan, carried to the gallery image definition.
    purchase_plan: dict[str, str] | None = None
    # True when the request reuses a gallery version someone else published: the pipeline only adds replicas to it.
    reuses_version: bool = False
    # True for a refresh: ``pool`` exists, and once the version is published it moves to it (no pool is created).
    refreshes_pool: bool = False
    # True when the gallery image definition existed at intake (a team's own, or one an earlier request made): it is
    # used as it is and never PUT again (a definition is fixed once made; see image_definition_body).
    definition_exists: bool = False
    # The source VM's securityProfile.uefiSettings (Trusted Launch / confidential): images with unsigned drivers (common
    # for GPU and HPC) need Secure Boot off, as the VM they were built on had it. Both on when the source does not say.
    secure_boot: bool = True
    vtpm: bool = True

    @property
    def pool_image_id(self) -> str:
        """What the pool's ``imageReference.id`` points at."""
        chosen = self.image_version or self.image
        assert chosen is not None, "a plan always has an image for its pool"
        return chosen.id

    @property
    def publishes_from_snapshots(self) -> bool:
        """Trusted Launch and confidential images go straight from snapshots to a gallery version (no managed image)."""
        return self.image is None and self.image_version is not None and bool(self.snapshots)

    @property
    def image_lineage(self) -> tuple[str, ...]:
        """What the pool's image is made from: the managed image behind a version, then the snapshots."""
        lineage = [self.image.id] if self.image_version is not None and self.image is not None else []
        return tuple(lineage + [s.snapshot.id for s in self.snapshots])

    def to_details(self) -> dict:
        """JSON-able form for the ledger."""
        return {
            "location": self.location,
            "snapshots": [
                {"id": s.snapshot.id, "lun": s.lun, "sourceDiskId": s.source_disk_id, "diskEncryptionSetId": s.disk_encryption_set_id}
                for s in self.snapshots
            ],
            "imageId": self.image.id if self.image else None,
            "imageDefinitionId": self.image_definition.id if self.image_definition else None,
            "imageVersionId": self.image_version.id if self.image_version else None,
            "poolId": self.pool.id,
            "replicaCount": self.replica_count,
            "targetRegions": [{"name": name, "regionalReplicaCount": count} for name, count in self.target_regions],
            "securityType": self.security_type,
            "purchasePlan": self.purchase_plan,
            "reusesVersion": self.reuses_version,
            "refreshesPool": self.refreshes_pool,
            "definitionExists": self.definition_exists,
            "secureBoot": self.secure_boot,
            "vTpm": self.vtpm,
        }

    @classmethod
    def from_details(cls, request_id: str, details: dict) -> ResourcePlan:
        """The plan as :meth:`to_details` stored it (plans stored before a field existed read its default)."""

        def optional(value: str | None, kind: str) -> ArmId | None:
            return parse_arm_id(value, kind) if value else None

        return cls(
            request_id=request_id,
            location=details["location"],
            snapshots=tuple(
                PlannedSnapshot(parse_arm_id(s["id"], SNAPSHOT), s["lun"], s["sourceDiskId"], s.get("diskEncryptionSetId"))
                for s in details["snapshots"]
            ),
            image=optional(details["imageId"], IMAGE),
            image_definition=optional(details["imageDefinitionId"], GALLERY_IMAGE),
            image_version=optional(details["imageVersionId"], GALLERY_IMAGE_VERSION),
            pool=parse_arm_id(details["poolId"], BATCH_POOL),
            replica_count=details["replicaCount"],
            target_regions=tuple((r["name"], r["regionalReplicaCount"]) for r in details.get("targetRegions") or []),
            security_type=details.get("securityType"),
            purchase_plan=details.get("purchasePlan"),
            reuses_version=bool(details.get("reusesVersion")),
            refreshes_pool=bool(details.get("refreshesPool")),
            definition_exists=bool(details.get("definitionExists")),
            secure_boot=details.get("secureBoot") is not False,
            vtpm=details.get("vTpm") is not False,
        )


def security_type_of(value: str | None) -> str | None:
    """A VM, disk, snapshot or definition security type as the plan keeps it: None (Standard), TrustedLaunch or ConfidentialVM.

    Disks report ``ConfidentialVM_*`` variants (DiskRP DiskSecurityTypes). Gallery definitions may say
    ``TrustedLaunchSupported``, ``ConfidentialVMSupported`` or ``TrustedLaunchAndConfidentialVmSupported``: the image
    supports those VMs and also runs as a plain generation 2 VM ("a Trusted launch supported Gen2 ... image definition",
    azure-docs virtual-machines/azure-compute-gallery.md; Compute's SupportedSecurityOption: "The disk supports
    creating ..."), so they ask nothing of the pool.
    """
    if not value or value.lower() == "standard" or value.lower().endswith("supported"):
        return None
    if value.lower().startswith("confidentialvm"):
        return "ConfidentialVM"
    if value.lower() == "trustedlaunch":
        return "TrustedLaunch"
    return value


def definition_misfits(definition: ImageDefinitionView, *, os_type: str, hyper_v_generation: str,
                        security_type: str | None) -> list[str]:
    """How an image does not fit a gallery definition that exists: ``"<property> is <has>, the image is <needs>"`` each.

    A definition is fixed once made (virtual-machines/troubleshooting-shared-images: its OS type and state, generation,
    publisher, offer and SKU can never change), so an image published into one must match it: OS type, a generalized
    state, generation and security type (its ``...Supported`` types ask nothing, :func:`security_type_of`). One rule for
    every request, a new pool's named definition and a refreshed pool's own alike.
    """
    wanted = {
        "osType": (definition.os_type, os_type),
        "osState": (definition.os_state, GENERALIZED),
        "hyperVGeneration": (definition.hyper_v_generation or "V1", hyper_v_generation),
        "securityType": (security_type_of(definition.features.get("securitytype")) or "Standard", security_type or "Standard"),
    }
    return [f"{key} is {has}, the image is {needs}" for key, (has, needs) in wanted.items() if has.lower() != needs.lower()]


def creation_resize_timeout(requested: timedelta, total_target_nodes: int) -> timedelta:
    """The resize timeout a new pool is made with: the request's, or more when Batch's guidance for its size asks more
    (at least 15 minutes per 1,000 nodes, batch-sig-images; taken pro rata and rounded up to a whole minute)."""
    for_size = timedelta(minutes=math.ceil(RESIZE_TIMEOUT_PER_1000_NODES.total_seconds() / 60 * total_target_nodes / 1000))
    return max(requested, for_size)


def replica_count(total_target_nodes: int) -> int:
    """Gallery replicas for a pool of this size: one per 300 nodes, at least one, within the gallery maximum."""
    return min(MAX_REGIONAL_REPLICAS, max(1, math.ceil(total_target_nodes / NODES_PER_REPLICA)))


# -- ARM bodies, one per step --------------------------------------------------------


def snapshot_body(plan: ResourcePlan, planned: PlannedSnapshot) -> dict[str, Any]:
    """PUT Microsoft.Compute/snapshots: a full copy of one disk."""
    role = "os-snapshot" if planned.lun is None else f"data-snapshot-lun{planned.lun}"
    properties: dict[str, Any] = {"creationData": {"createOption": "Copy", "sourceResourceId": planned.source_disk_id}, "incremental": False}
    if planned.disk_encryption_set_id:
        # DiskRP REST spec, Snapshot properties.encryption: {type, diskEncryptionSetId}. Whether a copy of a disk encrypted
        # with a customer-managed key keeps that key when none is given is not documented: the key is always sent.
        properties["encryption"] = {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": planned.disk_encryption_set_id}
    return {"location": plan.location, "tags": request_tags(plan.request_id, role), "properties": properties}


def _image_disk_encryption(planned: PlannedSnapshot) -> dict[str, Any]:
    # Compute REST spec, ImageDisk.diskEncryptionSet: "the customer managed disk encryption set resource id for the
    # managed image disk".
    return {"diskEncryptionSet": {"id": planned.disk_encryption_set_id}} if planned.disk_encryption_set_id else {}


def image_body(plan: ResourcePlan, request: ImageRequest, os_type: str) -> dict[str, Any]:
    """PUT Microsoft.Compute/images: a generalized managed image from the snapshots."""
    os_snapshot = next(s for s in plan.snapshots if s.lun is None)
    data_snapshots = sorted((s for s in plan.snapshots if s.lun is not None), key=lambda s: s.lun or 0)
    return {
        "location": plan.location,
        "tags": request_tags(plan.request_id, "managed-image"),
        "properties": {
            "hyperVGeneration": request.image.hyper_v_generation,
            "storageProfile": {
                "osDisk": {"osType": os_type, "osState": "Generalized", "snapshot": {"id": os_snapshot.snapshot.id},
                           **_image_disk_encryption(os_snapshot)},
                "dataDisks": [{"lun": s.lun, "snapshot": {"id": s.snapshot.id}, **_image_disk_encryption(s)} for s in data_snapshots],
            },
        },
    }


# The identifier's parts: publisher up to 128 characters, offer and SKU up to 64 (virtual-machines/troubleshooting-shared-images).
_IDENTIFIER_PART = 64
DEFINITION_PUBLISHER = "custom-image-pools"


def definition_identifier(name: str) -> dict[str, str]:
    """The identifier of a definition this automation creates: from its name alone, so every request that names it
    sends the same one (a definition's publisher, offer and SKU can never change, and are unique in a gallery)."""
    part = name if len(name) <= _IDENTIFIER_PART else f"{name[:_IDENTIFIER_PART - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return {"publisher": DEFINITION_PUBLISHER, "offer": part, "sku": part}


def image_definition_body(plan: ResourcePlan, request: ImageRequest, os_type: str) -> dict[str, Any]:
    """PUT Microsoft.Compute/galleries/images: the definition the version is published into, sent only when it does not exist.

    A Trusted Launch or confidential image needs the definition's ``SecurityType`` feature and
    Hyper-V generation V2 (learn.microsoft.com/azure/virtual-machines/trusted-launch-portal); a
    Marketplace image with purchase terms needs its plan on the definition (Batch docs, batch-sig-images).
    The security type is always explicit: from API version 2025-03-03 a definition without one becomes
    ``TrustedLaunchSupported`` and V2 (virtual-machines/azure-compute-gallery), and ``Standard`` keeps it as the source is.
    """
    assert plan.image_definition is not None
    properties: dict[str, Any] = {
        "osType": os_type,
        "osState": "Generalized",
        "hyperVGeneration": "V2" if plan.security_type else request.image.hyper_v_generation,
        "identifier": definition_identifier(plan.image_definition.name),
        "description": f"Custom image for Batch pool {plan.pool.name}",
        "features": [{"name": "SecurityType", "value": plan.security_type or "Standard"}],
    }
    if plan.purchase_plan:
        properties["purchasePlan"] = dict(plan.purchase_plan)
    return {"location": plan.location, "tags": request_tags(plan.request_id, "image-definition"), "properties": properties}


def image_version_body(plan: ResourcePlan) -> dict[str, Any]:
    """PUT Microsoft.Compute/galleries/images/versions: the image, replicated where the pool runs.

    From the managed image (``storageProfile.source.id``), or straight from the snapshots
    (``osDiskImage`` / ``dataDiskImages``, Compute REST example
    GalleryImageVersion_Create_WithSnapshotsAsSource.json) for Trusted Launch and confidential images.
    """
    if plan.publishes_from_snapshots:
        os_snapshot = next(s for s in plan.snapshots if s.lun is None)
        data_snapshots = sorted((s for s in plan.snapshots if s.lun is not None), key=lambda s: s.lun or 0)
        storage: dict[str, Any] = {
            "osDiskImage": {"source": {"id": os_snapshot.snapshot.id}},
            "dataDiskImages": [{"lun": s.lun, "source": {"id": s.snapshot.id}} for s in data_snapshots],
        }
    else:
        assert plan.image is not None
        storage = {"source": {"id": plan.image.id}}
    profile = publishing_profile(plan.target_regions, plan.replica_count)
    encryption = version_encryption(plan)
    if encryption:
        # virtual-machines/image-version-encryption: a version is encrypted with customer-managed keys per target region
        # (targetRegions[].encryption, osDiskImage and dataDiskImages by LUN); an encryption set serves its own region only,
        # so intake lets such a version be replicated only to the source's region (check_encryption_regions).
        for region in profile.get("targetRegions", []):
            region["encryption"] = encryption
    return {
        "location": plan.location,
        "tags": request_tags(plan.request_id, "image-version"),
        "properties": {"publishingProfile": profile, "storageProfile": storage},
    }


def version_encryption(plan: ResourcePlan) -> dict[str, Any] | None:
    """``targetRegions[].encryption`` for the source's disk encryption sets, or None when its disks use platform keys."""
    os_snapshot = next((s for s in plan.snapshots if s.lun is None), None)
    data = [s for s in plan.snapshots if s.lun is not None and s.disk_encryption_set_id]
    if (os_snapshot is None or not os_snapshot.disk_encryption_set_id) and not data:
        return None
    encryption: dict[str, Any] = {}
    if os_snapshot is not None and os_snapshot.disk_encryption_set_id:
        encryption["osDiskImage"] = {"diskEncryptionSetId": os_snapshot.disk_encryption_set_id}
    if data:
        encryption["dataDiskImages"] = [{"lun": s.lun, "diskEncryptionSetId": s.disk_encryption_set_id} for s in sorted(data, key=lambda s: s.lun or 0)]
    return encryption


def publishing_profile(target_regions: tuple[tuple[str, int], ...], replica_count: int) -> dict[str, Any]:
    """``publishingProfile``: the target regions with their replicas (the plan's location alone when none are planned)."""
    regions = [{"name": name, "regionalReplicaCount": count} for name, count in target_regions]
    return {"targetRegions": regions, "replicaCount": replica_count} if regions else {"replicaCount": replica_count}


def pool_metadata(plan: ResourcePlan, request: PoolRequest) -> dict[str, str]:
    """The requester's metadata plus the keys that tie the pool to its request and targets.

    The guard's state starts with the target the pool is created with (``target`` of
    :class:`shared.guard.rules.GuardState`), so a person's later resize is told apart from
    a person's change of the ``cip-target-*`` metadata.
    """
    return {**request.pool.metadata, **request_metadata(plan.request_id, request.pool.targets)}


def request_metadata(request_id: str, targets: Targets) -> dict[str, str]:
    """The pool metadata that ties a pool to the request that made (or last refreshed) it and the targets it is kept at.

    The guard's state starts afresh with those targets as the last ones set, so that a later change of the pool's
    target is told apart as a person's.
    """
    return {
        METADATA_REQUEST: request_id,
        METADATA_TARGET_DEDICATED: str(targets.dedicated),
        METADATA_TARGET_LOW_PRIORITY: str(targets.low_priority),
        METADATA_GUARD_STATE: json.dumps({"target": targets.signature}, separators=(",", ":")),
    }


def pool_body(plan: ResourcePlan, request: PoolRequest) -> dict[str, Any]:
    """PUT Microsoft.Batch/batchAccounts/pools: a fixed-scale pool on the plan's image."""
    settings = request.pool
    vm_configuration: dict[str, Any] = {"imageReference": {"id": plan.pool_image_id}, "nodeAgentSkuId": settings.node_agent_sku_id}
    vm_configuration.update(pool_security(plan.security_type, secure_boot=plan.secure_boot, vtpm=plan.vtpm))
    return {
        "properties": {
            "vmSize": settings.vm_size,
            "deploymentConfiguration": {"virtualMachineConfiguration": vm_configuration},
            "scaleSettings": {
                "fixedScale": {
                    "targetDedicatedNodes": settings.target_dedicated_nodes,
                    "targetLowPriorityNodes": settings.target_low_priority_nodes,
                    "resizeTimeout": iso_duration(creation_resize_timeout(settings.resize_timeout, settings.total_target_nodes)),
                }
            },
            "metadata": metadata_items(pool_metadata(plan, request)),
        }
    }


def pool_security(security_type: str | None, *, secure_boot: bool = True, vtpm: bool = True) -> dict[str, Any]:
    """What a pool on a Trusted Launch or confidential image adds to ``virtualMachineConfiguration``.

    Batch REST 2024-07-01: ``securityProfile`` {securityType trustedLaunch | confidentialVM, uefiSettings}
    (example PoolGet_SecurityProfile.json); a confidential VM also needs its OS disk's
    ``managedDisk.securityProfile.securityEncryptionType`` (VMDiskSecurityProfile: "required when using
    Confidential VMs"). Secure Boot and vTPM are as on the VM the image was built on (``uefiSettings``).
    """
    if security_type is None:
        return {}
    uefi = {"secureBootEnabled": secure_boot, "vTpmEnabled": vtpm}
    if security_type == "ConfidentialVM":
        return {
            "securityProfile": {"securityType": "confidentialVM", "uefiSettings": uefi},
            "osDisk": {"managedDisk": {"securityProfile": {"securityEncryptionType": "VMGuestStateOnly"}}},
        }
    return {"securityProfile": {"securityType": "trustedLaunch", "uefiSettings": uefi}}


def iso_duration(value: timedelta) -> str:
    """A timedelta as ISO 8601 (``PT25M``), the way Batch takes durations."""
    return isodate.duration_isoformat(value)
