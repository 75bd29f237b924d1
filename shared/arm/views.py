"""Typed, read-only views of the Azure resources the project reads (the pool's is :mod:`shared.arm.pools`).

Each view holds the fields some capability reads, parsed once from the
``azure-mgmt-*`` model by its ``from_sdk`` (enum values become their wire strings,
missing parts become empty values), so no code past the gateway touches an SDK
object. A view returned by :mod:`shared.gateway` is the whole answer to a read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from .values import region_key, wire_text

T = TypeVar("T")

GENERALIZED = "Generalized"
DELETING = "Deleting"


def _id_of(reference: Any) -> str | None:
    """``reference.id`` of a sub-resource reference, or None."""
    return getattr(reference, "id", None) or None


def _features(features: Any) -> dict[str, str]:
    """Gallery definition features by lower-case name."""
    return {f.name.lower(): f.value for f in features or [] if f.name}


def _tags(resource: Any) -> dict[str, str]:
    return dict(getattr(resource, "tags", None) or {})


def _resource(model: Any) -> tuple[str, str, str]:
    """The id, location and provisioning state of an ARM resource model (the fields of :class:`ResourceView`)."""
    return model.id or "", model.location or "", wire_text(getattr(model, "provisioning_state", None))


@dataclass(frozen=True)
class Listing(Generic[T]):
    """The items of a paged list, and how many pages (calls) it took."""

    items: tuple[T, ...]
    pages: int


@dataclass(frozen=True)
class ResourceView:
    """What every resource view holds: the resource's id, its region, and the state of its last PUT
    (``Succeeded``, ``Failed``, ``Deleting``, or one still under way)."""

    id: str
    location: str
    provisioning_state: str


@dataclass(frozen=True)
class SnapshotView(ResourceView):
    """A managed disk snapshot."""

    # ``Linux`` / ``Windows`` for a snapshot of an OS disk; "" for a data disk's.
    os_type: str
    # securityProfile.securityType as the snapshot reports it ("" for Standard).
    security_type: str

    @classmethod
    def from_sdk(cls, snapshot: Any) -> SnapshotView:
        """Read an ``azure.mgmt.compute.models.Snapshot``."""
        return cls(
            *_resource(snapshot),
            os_type=wire_text(getattr(snapshot, "os_type", None)),
            security_type=wire_text(getattr(getattr(snapshot, "security_profile", None), "security_type", None)),
        )


@dataclass(frozen=True)
class ImageView(ResourceView):
    """A managed image and the snapshots it was made from."""

    os_type: str
    os_state: str
    # storageProfile.osDisk.snapshot.id, then each data disk's, as the image names them.
    sources: tuple[str, ...]

    @classmethod
    def from_sdk(cls, image: Any) -> ImageView:
        """Read an ``azure.mgmt.compute.models.Image``."""
        profile = getattr(image, "storage_profile", None)
        os_disk = getattr(profile, "os_disk", None)
        disks = [os_disk, *(getattr(profile, "data_disks", None) or [])]
        return cls(
            *_resource(image),
            os_type=wire_text(getattr(os_disk, "os_type", None)),
            os_state=wire_text(getattr(os_disk, "os_state", None)),
            sources=tuple(source for source in (_id_of(getattr(d, "snapshot", None)) for d in disks if d is not None) if source),
        )


@dataclass(frozen=True)
class GalleryView(ResourceView):
    """An Azure Compute Gallery."""

    @classmethod
    def from_sdk(cls, gallery: Any) -> GalleryView:
        """Read an ``azure.mgmt.compute.models.Gallery``."""
        return cls(*_resource(gallery))


@dataclass(frozen=True)
class ImageDefinitionView(ResourceView):
    """A gallery image definition: what every version in it must be."""

    os_type: str
    os_state: str
    # "" when the definition does not say (ARM's default is V1).
    hyper_v_generation: str
    # Features (SecurityType, ...) by lower-case name.
    features: dict[str, str]
    tags: dict[str, str]

    @classmethod
    def from_sdk(cls, definition: Any) -> ImageDefinitionView:
        """Read an ``azure.mgmt.compute.models.GalleryImage``."""
        return cls(
            *_resource(definition),
            os_type=wire_text(getattr(definition, "os_type", None)),
            os_state=wire_text(getattr(definition, "os_state", None)),
            hyper_v_generation=wire_text(getattr(definition, "hyper_v_generation", None)),
            features=_features(getattr(definition, "features", None)),
            tags=_tags(definition),
        )


@dataclass(frozen=True)
class ImageVersionView(ResourceView):
    """A gallery image version: where it is replicated and what it was made from."""

    # Replicas per region (region keys), each region's count or else the version's default.
    replicas: dict[str, int]
    # storageProfile.source.id (a managed image), then osDiskImage / dataDiskImages sources (snapshots or disks).
    sources: tuple[str, ...]
    tags: dict[str, str]
    # The resource as ARM returned it (REST shape): a change of its regions is sent back with everything else it holds.
    body: Mapping[str, object] = field(repr=False, compare=False, default_factory=dict)
    # publishingProfile.excludeFromLatest: a pool or VM naming the definition without a version never gets this one.
    exclude_from_latest: bool = False
    # publishingProfile.endOfLifeDate: when its owner means to retire it (informational, unless a safety profile says otherwise).
    end_of_life: datetime | None = None

    @classmethod
    def from_sdk(cls, version: Any) -> ImageVersionView:
        """Read an ``azure.mgmt.compute.models.GalleryImageVersion``."""
        publishing = getattr(version, "publishing_profile", None)
        default = (getattr(publishing, "replica_count", None) if publishing is not None else None) or 1
        regions = (getattr(publishing, "target_regions", None) if publishing is not None else None) or []
        profile = getattr(version, "storage_profile", None)
        disks = [getattr(profile, "os_disk_image", None), *(getattr(profile, "data_disk_images", None) or [])]
        sources = [_id_of(getattr(profile, "source", None)), *(_id_of(getattr(d, "source", None)) for d in disks if d is not None)]
        return cls(
            *_resource(version),
            replicas={region_key(r.name): r.regional_replica_count or default for r in regions},
            sources=tuple(source for source in sources if source),
            tags=_tags(version),
            body=version.as_dict(),
            exclude_from_latest=bool(getattr(publishing, "exclude_from_latest", None)),
            end_of_life=getattr(publishing, "end_of_life_date", None),
        )


@dataclass(frozen=True)
class DiskView:
    """A disk attached to a VM, as the VM's storage profile shows it."""

    # None for the OS disk.
    lun: int | None
    # None when the disk is not a managed disk.
    managed_disk_id: str | None
    os_type: str = ""
    # Azure Disk Encryption is enabled on it (encryptionSettings.enabled).
    encrypted: bool = False
    # managedDisk.diskEncryptionSet.id: the disk encryption set (customer-managed key) its data is encrypted with at rest.
    disk_encryption_set_id: str | None = None

    @classmethod
    def from_sdk(cls, disk: Any, *, lun: int | None) -> DiskView:
        """Read an ``OSDisk`` (``lun`` None) or a ``DataDisk`` of a VM's storage profile."""
        encryption = getattr(disk, "encryption_settings", None)
        return cls(
            lun=lun,
            managed_disk_id=_id_of(getattr(disk, "managed_disk", None)),
            os_type=wire_text(getattr(disk, "os_type", None)),
            encrypted=bool(encryption is not None and getattr(encryption, "enabled", False)),
            disk_encryption_set_id=_id_of(getattr(getattr(disk, "managed_disk", None), "disk_encryption_set", None)),
        )


@dataclass(frozen=True)
class PurchasePlan:
    """A Marketplace image's purchase plan."""

    name: str
    publisher: str
    product: str

    def to_wire(self) -> dict[str, str]:
        """As the plan keeps it and a gallery definition's ``purchasePlan`` takes it."""
        return {"name": self.name, "publisher": self.publisher, "product": self.product}


@dataclass(frozen=True)
class VirtualMachineView(ResourceView):
    """A VM whose disks become a custom image: its disks and what it was made from."""

    os_disk: DiskView
    data_disks: tuple[DiskView, ...]
    # Names of the extensions installed on it.
    extensions: tuple[str, ...]
    # The image it was created from: a Marketplace image (publisher set) unless made from a custom,
    # shared or community image.
    from_marketplace_image: bool
    image_publisher: str
    plan: PurchasePlan | None
    # securityProfile.securityType ("" for Standard).
    security_type: str
    # securityProfile.uefiSettings: Secure Boot and vTPM (None when the VM does not say).
    secure_boot: bool | None = None
    vtpm: bool | None = None
    # From its instance view: its Hyper-V generation ("" when not reported), its power state (running, stopped,
    # deallocated; "" when not reported) and whether it was generalized (OSState/generalized; None when not reported).
    hyper_v_generation: str = ""
    power_state: str = ""
    generalized: bool | None = None

    @classmethod
    def from_sdk(cls, vm: Any) -> VirtualMachineView:
        """Read an ``azure.mgmt.compute.models.VirtualMachine``."""
        storage = vm.storage_profile
        reference = getattr(storage, "image_reference", None)
        custom = reference is None or bool(
            reference.id or getattr(reference, "shared_gallery_image_id", None) or getattr(reference, "community_gallery_image_id", None))
        plan = getattr(vm, "plan", None)
        return cls(
            *_resource(vm),
            os_disk=DiskView.from_sdk(storage.os_disk, lun=None),
            data_disks=tuple(DiskView.from_sdk(disk, lun=disk.lun) for disk in storage.data_disks or []),
            extensions=tuple(extension.name for extension in getattr(vm, "resources", None) or []),
            from_marketplace_image=not custom,
            image_publisher=(getattr(reference, "publisher", None) or "") if reference is not None else "",
            plan=PurchasePlan(plan.name, plan.publisher, plan.product) if plan is not None else None,
            security_type=wire_text(getattr(getattr(vm, "security_profile", None), "security_type", None)),
            secure_boot=getattr(_uefi(vm), "secure_boot_enabled", None),
            vtpm=getattr(_uefi(vm), "v_tpm_enabled", None),
            hyper_v_generation=wire_text(getattr(getattr(vm, "instance_view", None), "hyper_v_generation", None)),
            power_state=_status(vm, "PowerState/"),
            generalized=_status(vm, "OSState/") == "generalized" if getattr(vm, "instance_view", None) is not None else None,
        )


def _status(vm: Any, prefix: str) -> str:
    """The part after ``prefix`` of the VM's instance-view status code that starts with it (``PowerState/running``)."""
    for status in getattr(getattr(vm, "instance_view", None), "statuses", None) or []:
        code = getattr(status, "code", None) or ""
        if code.startswith(prefix):
            return code[len(prefix):]
    return ""


def _uefi(vm: Any) -> Any:
    return getattr(getattr(vm, "security_profile", None), "uefi_settings", None)


@dataclass(frozen=True)
class BatchAccountView:
    """A Batch account: where it is and its core quotas."""

    id: str
    location: str
    # Core quotas (BatchService allocation mode only; None in UserSubscription mode, where the subscription's apply).
    dedicated_core_quota: int | None
    low_priority_core_quota: int | None
    # Dedicated cores per VM family (lower-case family name), and whether the account enforces them.
    family_core_quotas: dict[str, int]
    family_quotas_enforced: bool

    @classmethod
    def from_sdk(cls, account: Any) -> BatchAccountView:
        """Read an ``azure.mgmt.batch.models.BatchAccount``."""
        props = account.properties if getattr(account, "properties", None) is not None else account
        return cls(
            id=account.id or "",
            location=account.location or "",
            dedicated_core_quota=getattr(props, "dedicated_core_quota", None),
            low_priority_core_quota=getattr(props, "low_priority_core_quota", None),
            family_core_quotas={q.name.lower(): q.core_quota or 0
                                for q in getattr(props, "dedicated_core_quota_per_vm_family", None) or [] if q.name},
            family_quotas_enforced=bool(getattr(props, "dedicated_core_quota_per_vm_family_enforced", False)),
        )


@dataclass(frozen=True)
class VmSkuView:
    """A VM size Batch offers in a region, with its capabilities."""

    name: str
    family: str
    # Capabilities by lower-case name (``vcpus``, ``memorygb``, ...), as Batch lists them.
    capabilities: dict[str, str]

    @property
    def cores(self) -> int | None:
        """The size's vCPUs; None when Batch does not say."""
        value = self.capabilities.get("vcpus", "")
        return int(value) if value.isdigit() else None

    @classmethod
    def from_sdk(cls, sku: Any) -> VmSkuView:
        """Read an ``azure.mgmt.batch.models.SupportedSku``."""
        return cls(
            name=sku.name or "",
            family=sku.family_name or "",
            capabilities={c.name.lower(): c.value for c in sku.capabilities or [] if c.name},
        )


@dataclass(frozen=True)
class LockView:
    """A management lock."""

    id: str
    level: str
    notes: str

    @classmethod
    def from_sdk(cls, lock: Any) -> LockView:
        """Read an ``azure.mgmt.resource.locks.models.ManagementLockObject``."""
        return cls(id=lock.id or "", level=wire_text(getattr(lock, "level", None)), notes=getattr(lock, "notes", None) or "")


@dataclass(frozen=True)
class ActivityLogEntry:
    """One Activity Log event: what was done to which resource, and how it ended."""

    event_data_id: str
    operation: str
    status: str
    resource_id: str

    @classmethod
    def from_sdk(cls, entry: Any) -> ActivityLogEntry:
        """Read an ``azure.mgmt.monitor.models.EventData`` (localizable values become their ``value``)."""
        operation = getattr(entry, "operation_name", None)
        status = getattr(entry, "status", None)
        return cls(
            event_data_id=getattr(entry, "event_data_id", None) or "",
            operation=(operation.value if operation else "") or "",
            status=(status.value if status else "") or "",
            resource_id=getattr(entry, "resource_id", None) or "",
        )
