"""Microsoft.Compute: virtual machines, disks, snapshots, images and Compute Gallery.

VMs and disks are seeded (GET only); snapshots, images, galleries, gallery
image definitions and versions are created with PUT as long-running
operations, read, listed with paging and deleted. Durations are virtual.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from ..errors import ArmError, Conflict, InvalidParameter, ResourceNotFound
from ..http import ArmResponse
from ..store import ArmResource

SNAPSHOT = "Microsoft.Compute/snapshots"
IMAGE = "Microsoft.Compute/images"
GALLERY = "Microsoft.Compute/galleries"
GALLERY_IMAGE = "Microsoft.Compute/galleries/images"
GALLERY_IMAGE_VERSION = "Microsoft.Compute/galleries/images/versions"
VIRTUAL_MACHINE = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"

# Compute Gallery's bounds (azure-docs, virtual-machines/azure-compute-gallery.md): "you can have a maximum of 50
# replicas per region" (best practices), "There's a limit of 100 replicas per image version" (limits). The page gives
# no error text; the answer's code and wording here are not recorded (InvalidParameter, as for other bad counts).
MAX_REGIONAL_REPLICAS = 50
MAX_VERSION_REPLICAS = 100
_VERSION_NAME = re.compile(r"^\d+\.\d+\.\d+$")
_GALLERY_NAME = re.compile(r"^[A-Za-z0-9._]{1,80}$")

# VM securityProfile.securityType values the emulator models (None is Standard).
VM_SECURITY_TYPES = (None, "TrustedLaunch", "ConfidentialVM")
# The power states a VM's instance view reports (PowerState/<state>) that the emulator models.
VM_POWER_STATES = ("running", "stopped", "deallocated")
# The OS disk's securityProfile.securityType for each VM security type (DiskRP REST spec, DiskSecurityTypes enum:
# TrustedLaunch, ConfidentialVM_VMGuestStateOnlyEncryptedWithPlatformKey, ...). A real confidential VM's disk type
# depends on its OS disk encryption settings; the emulator always uses the guest-state-only, platform-key one.
_DISK_SECURITY_TYPE = {"TrustedLaunch": "TrustedLaunch", "ConfidentialVM": "ConfidentialVM_VMGuestStateOnlyEncryptedWithPlatformKey"}


@dataclass
class ComputeTimings:
    """Virtual seconds each operation takes."""

    snapshot_seconds: float = 60
    image_seconds: float = 120
    gallery_seconds: float = 20
    gallery_image_seconds: float = 20
    version_base_seconds: float = 600
    version_seconds_per_replica: float = 120
    delete_seconds: float = 20


class ComputeBackend:
    """State and operations of the Compute resource provider."""

    def __init__(self, emulator) -> None:
        self._emulator = emulator
        self.timings = ComputeTimings()
        # Per VM (lower-case id): what its instance view reports (generation, power state, generalized).
        self._instance_views: dict[str, dict] = {}

    @property
    def _store(self):
        return self._emulator.store

    # -- seeding (not an API: the world a scenario starts from) ----------

    def add_disk(self, disk_id: str, *, location: str = "westeurope", size_gb: int = 128, os_type: str | None = None,
                 hyper_v_generation: str = "V2", encryption_type: str = "EncryptionAtRestWithPlatformKey",
                 tags: dict | None = None, security_type: str | None = None, disk_encryption_set_id: str | None = None) -> ArmResource:
        properties = {
            "diskSizeGB": size_gb,
            "diskState": "Attached",
            "provisioningState": "Succeeded",
            "hyperVGeneration": hyper_v_generation,
            "encryption": {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": disk_encryption_set_id} if disk_encryption_set_id
            else {"type": encryption_type},
            "creationData": {"createOption": "Empty"},
            "timeCreated": _iso(self._emulator.now()),
        }
        if os_type:
            properties["osType"] = os_type
            properties["creationData"] = {"createOption": "FromImage"}
        if security_type:
            properties["securityProfile"] = {"securityType": security_type}
        return self._store.put(ArmResource(disk_id, DISK, location, properties, dict(tags or {}), extra={"sku": {"name": "Premium_LRS"}}))

    def add_virtual_machine(
        self,
        vm_id: str,
        *,
        location: str = "westeurope",
        os_type: str = "Linux",
        vm_size: str = "Standard_D4ds_v5",
        data_disk_luns: tuple[int, ...] = (),
        image_reference: dict | None = None,
        plan: dict | None = None,
        extensions: tuple[str, ...] = (),
        os_disk_encrypted: bool = False,
        managed_disks: bool = True,
        hyper_v_generation: str = "V2",
        security_type: str | None = None,
        secure_boot: bool = True,
        vtpm: bool = True,
        power_state: str = "deallocated",
        generalized: bool = True,
        disk_encryption_set_id: str | None = None,
    ) -> ArmResource:
        """Seed a VM with its OS disk, data disks, extensions and base image.

        ``power_state`` (running, stopped, deallocated) and ``generalized`` are what its instance view reports
        (:meth:`get_virtual_machine`); by default a builder VM that was generalized and deallocated, as one is once its
        image can be taken.

        ``security_type``: None (Standard), ``TrustedLaunch`` or ``ConfidentialVM``; ``secure_boot`` and ``vtpm`` its
        ``uefiSettings`` (images with unsigned drivers are built on VMs with Secure Boot off).
        """
        if security_type not in VM_SECURITY_TYPES:
            raise ValueError(f"security_type must be one of {VM_SECURITY_TYPES}, got {security_type!r}")
        if security_type and hyper_v_generation != "V2":
            # learn.microsoft.com/azure/virtual-machines/trusted-launch-portal: "Trusted launch is a way to improve
            # the security of generation 2 VMs". The page is about Trusted Launch; the emulator holds confidential
            # VMs to the same rule.
            raise ValueError(f"a {security_type} VM must be hyper_v_generation 'V2'")
        resource_group_path = vm_id.rsplit("/providers/", 1)[0]
        vm_name = vm_id.rsplit("/", 1)[-1]
        os_disk_id = f"{resource_group_path}/providers/Microsoft.Compute/disks/{vm_name}_OsDisk_1"
        # DiskRP REST spec, DiskSecurityProfile.securityType: "Specifies the SecurityType of the VM. Applicable for
        # OS disks only", so the data disks of a Trusted Launch / confidential VM carry none.
        self.add_disk(os_disk_id, location=location, size_gb=30, os_type=os_type, hyper_v_generation=hyper_v_generation,
                      security_type=_DISK_SECURITY_TYPE.get(security_type) if security_type else None,
                      disk_encryption_set_id=disk_encryption_set_id)
        os_disk: dict = {"osType": os_type, "name": f"{vm_name}_OsDisk_1", "createOption": "FromImage", "caching": "ReadWrite", "diskSizeGB": 30}
        encryption_set = {"diskEncryptionSet": {"id": disk_encryption_set_id}} if disk_encryption_set_id else {}
        if managed_disks:
            os_disk["managedDisk"] = {"id": os_disk_id, "storageAccountType": "Premium_LRS", **encryption_set}
        else:
            os_disk["vhd"] = {"uri": f"https://{vm_name.lower()}disks.blob.core.windows.net/vhds/{vm_name}-os.vhd"}
        if os_disk_encrypted:
            os_disk["encryptionSettings"] = {
                "enabled": True,
                "diskEncryptionKey": {"secretUrl": "https://vault.vault.azure.net/secrets/disk/1", "sourceVault": {"id": f"{resource_group_path}/providers/Microsoft.KeyVault/vaults/vault"}},
            }
        data_disks = []
        for lun in data_disk_luns:
            disk_id = f"{resource_group_path}/providers/Microsoft.Compute/disks/{vm_name}_DataDisk_{lun}"
            self.add_disk(disk_id, location=location, size_gb=256, hyper_v_generation=hyper_v_generation, disk_encryption_set_id=disk_encryption_set_id)
            data_disks.append({"lun": lun, "name": f"{vm_name}_DataDisk_{lun}", "createOption": "Attach", "caching": "None", "diskSizeGB": 256,
                               "managedDisk": {"id": disk_id, "storageAccountType": "Premium_LRS", **encryption_set}})
        reference = image_reference or {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
        properties = {
            "vmId": f"0f47b100-583c-48e3-a4c0-{len(list(self._store)):012d}",
            "hardwareProfile": {"vmSize": vm_size},
            "storageProfile": {"imageReference": dict(reference, exactVersion="24.04.202601010"), "osDisk": os_disk, "dataDisks": data_disks},
            "osProfile": {"computerName": vm_name, "adminUsername": "azureuser", "linuxConfiguration": {"disablePasswordAuthentication": True}},
            "networkProfile": {"networkInterfaces": [{"id": f"{resource_group_path}/providers/Microsoft.Network/networkInterfaces/{vm_name}-nic"}]},
            "provisioningState": "Succeeded",
        }
        if security_type:
            # Compute REST spec (VirtualMachine securityProfile): securityType TrustedLaunch | ConfidentialVM with
            # uefiSettings {secureBootEnabled, vTpmEnabled}. Both on by default, as the deployments in
            # learn.microsoft.com/azure/virtual-machines/trusted-launch-portal set them; either can be seeded off.
            properties["securityProfile"] = {"securityType": security_type,
                                             "uefiSettings": {"secureBootEnabled": secure_boot, "vTpmEnabled": vtpm}}
        extra: dict = {}
        if plan:
            extra["plan"] = dict(plan)
        if extensions:
            extra["resources"] = [
                {"id": f"{vm_id}/extensions/{name}", "name": name, "type": "Microsoft.Compute/virtualMachines/extensions",
                 "location": location, "properties": {"publisher": "Microsoft.Azure.Extensions", "type": name, "typeHandlerVersion": "2.1", "provisioningState": "Succeeded"}}
                for name in extensions
            ]
        if power_state not in VM_POWER_STATES:
            raise ValueError(f"power_state must be one of {VM_POWER_STATES}, got {power_state!r}")
        self._instance_views[vm_id.lower()] = {"hyperVGeneration": hyper_v_generation, "powerState": power_state, "generalized": generalized}
        return self._store.put(ArmResource(vm_id, VIRTUAL_MACHINE, location, properties, extra=extra))

    def get_virtual_machine(self, vm_id: str, *, expand: str | None = None) -> dict:
        """GET a VM; ``$expand=instanceView`` adds its instance view.

        Compute REST spec, VirtualMachines_Get with ``$expand=instanceView`` (example VirtualMachine_Get_WithInstanceView):
        ``properties.instanceView`` holds ``hyperVGeneration`` and ``statuses``, among them ``PowerState/running`` (or
        ``stopped``, ``deallocated``) and, once the VM was generalized (VirtualMachines_Generalize), ``OSState/generalized``
        (virtual-machines/capture-image-resource: "az vm generalize" marks it; the VM can no longer be started).
        """
        body = self.get(vm_id, VIRTUAL_MACHINE).to_dict()
        view = self._instance_views.get(body["id"].lower())
        if view is not None and (expand or "").lower() == "instanceview":
            statuses = [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}]
            if view["generalized"]:
                statuses.append({"code": "OSState/generalized", "level": "Info", "displayStatus": "VM generalized"})
            statuses.append({"code": f"PowerState/{view['powerState']}", "level": "Info", "displayStatus": f"VM {view['powerState']}"})
            body["properties"]["instanceView"] = {"hyperVGeneration": view["hyperVGeneration"], "statuses": statuses}
        return body

    def add_gallery(self, gallery_id: str, *, location: str = "westeurope") -> ArmResource:
        """Seed an existing Compute Gallery."""
        name = gallery_id.rsplit("/", 1)[-1]
        properties = {"identifier": {"uniqueName": f"{name.upper()}-UNIQUE"}, "provisioningState": "Succeeded"}
        return self._store.put(ArmResource(gallery_id, GALLERY, location, properties, created_at=self._emulator.now()))

    def add_gallery_image(self, definition_id: str, *, location: str = "westeurope", os_type: str = "Linux",
                          os_state: str = "Generalized", hyper_v_generation: str = "V2", security_type: str | None = None,
                          publisher: str = "seeded") -> ArmResource:
        """Seed an existing gallery image definition (features SecurityType when ``security_type`` is set)."""
        name = definition_id.rsplit("/", 1)[-1]
        properties: dict = {"osType": os_type, "osState": os_state, "hyperVGeneration": hyper_v_generation,
                            "identifier": {"publisher": publisher, "offer": name, "sku": name}, "provisioningState": "Succeeded"}
        if security_type:
            properties["features"] = [{"name": "SecurityType", "value": security_type}]
        return self._store.put(ArmResource(definition_id, GALLERY_IMAGE, location, properties, created_at=self._emulator.now()))

    def add_gallery_image_version(self, version_id: str, *, location: str = "westeurope", os_type: str = "Linux",
                                  target_regions: dict[str, int] | None = None) -> ArmResource:
        """Seed an existing, replicated gallery image version, with its definition and the managed image it came from."""
        definition_id = version_id.rsplit("/versions/", 1)[0]
        if self._store.find(definition_id) is None:
            self.add_gallery_image(definition_id, location=location, os_type=os_type)
        resource_group_path = version_id.split("/providers/", 1)[0]
        source_id = f"{resource_group_path}/providers/Microsoft.Compute/images/{definition_id.rsplit('/', 1)[-1]}-source"
        self._store.put(ArmResource(source_id, IMAGE, location, {
            "storageProfile": {"osDisk": {"osType": os_type, "osState": "Generalized", "caching": "ReadWrite"}, "dataDisks": []},
            "hyperVGeneration": "V2", "provisioningState": "Succeeded"}, created_at=self._emulator.now()))
        regions = target_regions or {location: 1}
        properties = {
            "publishingProfile": {"targetRegions": [{"name": name, "regionalReplicaCount": count} for name, count in regions.items()],
                                  "replicaCount": 1},
            "storageProfile": {"source": {"id": source_id}},
            "provisioningState": "Succeeded",
        }
        return self._store.put(ArmResource(version_id, GALLERY_IMAGE_VERSION, location, properties, created_at=self._emulator.now()))

    # -- reads -------------------------------------------------------------

    def get(self, resource_id: str, resource_type: str) -> ArmResource:
        resource = self._store.get(resource_id)
        if resource.type.lower() != resource_type.lower():
            raise ResourceNotFound(f"The Resource '{resource_id}' was not found.")
        return resource

    def lineage(self, image_id: str) -> list[str]:
        """The ids an image depends on, itself first: version -> managed image -> snapshots."""
        chain = [image_id]
        resource = self._store.find(image_id)
        if resource is None:
            return chain
        if resource.type.lower() == GALLERY_IMAGE_VERSION.lower():
            profile = resource.properties.get("storageProfile", {})
            source = (profile.get("source") or {}).get("id")
            if source:
                chain += self.lineage(source)
            # A version published straight from snapshots or disks depends on each of them.
            for disk in [profile.get("osDiskImage") or {}, *(profile.get("dataDiskImages") or [])]:
                disk_source = (disk.get("source") or {}).get("id")
                if disk_source and _absolute(disk_source).lower() not in (rid.lower() for rid in chain):
                    chain.append(_absolute(disk_source))
        elif resource.type.lower() == IMAGE.lower():
            profile = resource.properties.get("storageProfile", {})
            for disk in [profile.get("osDisk", {}), *profile.get("dataDisks", [])]:
                snapshot = (disk.get("snapshot") or {}).get("id")
                if snapshot:
                    chain.append(_absolute(snapshot))
        return chain

    def missing_lineage(self, image_id: str) -> list[str]:
        """The resources of an image's lineage (itself included) that no longer exist."""
        return [rid for rid in self.lineage(image_id) if not self._store.exists(rid)]

    # -- writes --------------------------------------------------------------

    def put_disk(self, disk_id: str, body: dict, *, url: str, api_version: str) -> ArmResponse:
        """An empty managed disk (what ``verify --probe-events`` makes); copies and imports are not modelled.

        Disks_CreateOrUpdate (DiskRP REST spec, example Disk_Create_Empty.json, copied in tests/data/published):
        ``creationData.createOption`` "Empty" with ``diskSizeGB`` ("If creationData.createOption is Empty, this
        field is mandatory"); answered 200 or 202 with provisioningState "Updating", a long-running operation.
        """
        location = _require_location(body)
        properties = dict(body.get("properties") or {})
        creation = properties.get("creationData") or {}
        if creation.get("createOption") != "Empty":
            raise InvalidParameter("The emulator creates only empty disks (creationData.createOption 'Empty').")
        size = properties.get("diskSizeGB")
        if not isinstance(size, int) or size < 1:
            raise InvalidParameter("Required parameter 'diskSizeGB' is missing (null).", code="InvalidParameter")
        final = {**properties, "diskState": "Unattached", "timeCreated": _iso(self._emulator.now()),
                 "encryption": {"type": "EncryptionAtRestWithPlatformKey"}}
        return self._put_async(disk_id, DISK, location, body, final, self.timings.snapshot_seconds, url=url, api_version=api_version,
                               created_status=202, sku=body.get("sku") or {"name": "Standard_LRS", "tier": "Standard"},
                               state="Updating", monitor_location=True)

    def put_snapshot(self, snapshot_id: str, body: dict, *, url: str, api_version: str) -> ArmResponse:
        location = _require_location(body)
        properties = dict(body.get("properties") or {})
        creation = properties.get("creationData") or {}
        if not creation.get("createOption"):
            raise InvalidParameter("Required parameter 'creationData.createOption' is missing (null).", code="InvalidParameter")
        source_id = creation.get("sourceResourceId")
        source = None
        if creation["createOption"] in ("Copy", "CopyStart"):
            if not source_id:
                raise InvalidParameter("Required parameter 'creationData.sourceResourceId' is missing (null).")
            source = self._store.find(_absolute(source_id))
            if source is None:
                raise ResourceNotFound(f"Resource {source_id} not found (creationData.sourceResourceId).", code="NotFound")
        seed = {"diskSizeGB": source.properties.get("diskSizeGB")} if source else {}
        if source and source.properties.get("osType"):
            seed["osType"] = source.properties["osType"]
        if source and source.properties.get("hyperVGeneration"):
            seed["hyperVGeneration"] = source.properties["hyperVGeneration"]
        if source and (source.properties.get("securityProfile") or {}).get("securityType"):
            # A copy keeps its source's security type (DiskRP REST spec: Snapshot properties.securityProfile is a
            # DiskSecurityProfile). Recorded error in Azure/azure-cli#22561: a disk copied from the snapshot of a
            # Trusted Launch OS disk is refused with "Security Type 'TrustedLaunch' is not supported for
            # CreateOption 'Copy'", so the snapshot carried the type.
            seed["securityProfile"] = dict(source.properties["securityProfile"])
        final = {**seed, **properties, "timeCreated": _iso(self._emulator.now()), "uniqueId": snapshot_id.lower()[-36:],
                 "diskState": "Unattached", "incremental": bool(properties.get("incremental", False))}
        if final["incremental"]:
            final["completionPercent"] = 100.0
        # The disk resource provider answers a snapshot PUT with 202, both Azure-AsyncOperation and Location
        # (".../DiskOperations/{id}?monitor=true") and provisioningState "Updating", also on creation: recorded in
        # Azure/azure-sdk-for-python sdk/compute/azure-mgmt-compute/tests/recordings/test_mgmt_compute_disks.test_compute_shot.yaml
        # (tests/data/recordings/compute-snapshot-put-get.json).
        return self._put_async(snapshot_id, SNAPSHOT, location, body, final, self.timings.snapshot_seconds,
                               url=url, api_version=api_version, created_status=202, sku=body.get("sku") or {"name": "Standard_LRS", "tier": "Standard"},
                               state="Updating", monitor_location=True)

    def put_image(self, image_id: str, body: dict, *, url: str, api_version: str) -> ArmResponse:
        location = _require_location(body)
        properties = dict(body.get("properties") or {})
        profile = properties.get("storageProfile") or {}
        os_disk = profile.get("osDisk")
        if not os_disk:
            raise InvalidParameter("Required parameter 'storageProfile.osDisk' is missing (null).")
        for field_name in ("osType", "osState"):
            if not os_disk.get(field_name):
                raise InvalidParameter(f"Required parameter 'storageProfile.osDisk.{field_name}' is missing (null).")
        for index, disk in enumerate([os_disk, *profile.get("dataDisks", [])]):
            source = (disk.get("snapshot") or disk.get("managedDisk") or {}).get("id")
            if not source and not disk.get("blobUri"):
                where = "osDisk" if index == 0 else f"dataDisks[{index - 1}]"
                raise InvalidParameter(f"storageProfile.{where} needs one of snapshot, managedDisk or blobUri.")
            if source and not self._store.exists(_absolute(source)):
                raise InvalidParameter(f"Source '{source}' of the image does not exist.", code="InvalidParameter")
            security_type = _security_type(self._store.find(_absolute(source))) if source else None
            if security_type:
                # Managed images are unsupported for Trusted Launch (learn.microsoft.com/azure/virtual-machines/trusted-launch,
                # unsupported features: "Managed Image (Customers are encouraged to use Azure Compute Gallery)") and
                # confidential VMs. Code and message: recorded errors in hashicorp/packer#13189 and
                # taskcluster/community-tc-config#936 ("OperationNotAllowed: Creation of managed images are not
                # supported for virtual machine with TrustedLaunch security type."), seen for a VM source; the
                # sources show neither the HTTP status nor the wording for a disk or snapshot source (400 and the
                # same wording are the emulator's choice).
                raise InvalidParameter(
                    f"Creation of managed images are not supported for virtual machine with {security_type} security type "
                    f"(source '{source}').", code="OperationNotAllowed")
        luns = [d.get("lun") for d in profile.get("dataDisks", [])]
        if len(set(luns)) != len(luns) or any(lun is None for lun in luns):
            raise InvalidParameter("Every data disk needs a distinct 'lun'.")
        os_disk = {"caching": "ReadWrite", **os_disk}
        # Azure answers "dataDisks": [] when none are sent: recorded in Azure/azure-sdk-for-python
        # sdk/compute/azure-mgmt-compute/tests/recordings/test_mgmt_compute_disks.test_compute_shot.yaml (tests/data/recordings/compute-image-put-get.json).
        final = {**properties, "storageProfile": {"dataDisks": [], **profile, "osDisk": os_disk}, "hyperVGeneration": properties.get("hyperVGeneration", "V1")}
        # Source ids sent without the leading slash come back with it (same recording).
        for disk in [final["storageProfile"]["osDisk"], *final["storageProfile"]["dataDisks"]]:
            for kind in ("snapshot", "managedDisk"):
                if (disk.get(kind) or {}).get("id"):
                    disk[kind] = {**disk[kind], "id": _absolute(disk[kind]["id"])}
        return self._put_async(image_id, IMAGE, location, body, final, self.timings.image_seconds,
                               url=url, api_version=api_version, created_status=201)

    def put_gallery(self, gallery_id: str, body: dict, *, url: str, api_version: str) -> ArmResponse:
        location = _require_location(body)
        name = gallery_id.rsplit("/", 1)[-1]
        if not _GALLERY_NAME.match(name):
            raise InvalidParameter(f"Gallery name '{name}' may contain only letters, digits, '.' and '_'.")
        final = {**(body.get("properties") or {}), "identifier": {"uniqueName": f"{name.upper()}-UNIQUE"}}
        return self._put_async(gallery_id, GALLERY, location, body, final, self.timings.gallery_seconds,
                               url=url, api_version=api_version, created_status=201)

    def put_gallery_image(self, image_id: str, body: dict, *, url: str, api_version: str) -> ArmResponse:
        location = _require_location(body)
        self._store.require_parent(image_id, image_id.rsplit("/images/", 1)[0])
        properties = dict(body.get("properties") or {})
        for field_name in ("osType", "osState", "identifier"):
            if not properties.get(field_name):
                raise InvalidParameter(f"Required parameter 'properties.{field_name}' is missing (null).")
        identifier = properties["identifier"]
        for field_name in ("publisher", "offer", "sku"):
            if not identifier.get(field_name):
                raise InvalidParameter(f"Required parameter 'identifier.{field_name}' is missing (null).")
        existing = self._store.find(image_id)
        if existing is None:
            final = {**_new_definition_defaults(api_version), **properties}
            features = _definition_features(properties, api_version, final["hyperVGeneration"])
            if features:
                final["features"] = features
            else:
                final.pop("features", None)
        else:
            _check_definition_unchanged(existing, properties)
            final = {**existing.properties, **properties}
            final.pop("provisioningState", None)
        return self._put_async(image_id, GALLERY_IMAGE, location, body, final, self.timings.gallery_image_seconds,
                               url=url, api_version=api_version, created_status=201)

    def put_gallery_image_version(self, version_id: str, body: dict, *, url: str, api_version: str) -> ArmResponse:
        location = _require_location(body)
        definition_id = version_id.rsplit("/versions/", 1)[0]
        definition = self._store.require_parent(version_id, definition_id)
        name = version_id.rsplit("/", 1)[-1]
        if not _VERSION_NAME.match(name):
            raise InvalidParameter(f"Gallery image version name '{name}' must be of the form MajorVersion.MinorVersion.Patch.")
        properties = dict(body.get("properties") or {})
        os_source = self._version_os_source(properties.get("storageProfile") or {})
        failure = _definition_mismatch(definition, os_source)
        publishing = dict(properties.get("publishingProfile") or {})
        default_count = int(publishing.get("replicaCount", 1))
        regions = publishing.get("targetRegions") or [{"name": location, "regionalReplicaCount": default_count}]
        replicas = []
        for region in regions:
            count = int(region.get("regionalReplicaCount", default_count))
            if not 1 <= count <= MAX_REGIONAL_REPLICAS:
                raise InvalidParameter(f"regionalReplicaCount must be between 1 and {MAX_REGIONAL_REPLICAS}, got {count}.")
            replicas.append(count)
        if sum(replicas) > MAX_VERSION_REPLICAS:
            raise InvalidParameter(f"An image version may have at most {MAX_VERSION_REPLICAS} replicas in all; "
                                   f"targetRegions ask for {sum(replicas)}.")
        publishing.setdefault("replicaCount", default_count)
        publishing.setdefault("targetRegions", regions)
        _check_retirement(publishing)
        # publishedDate is read-only ("The timestamp for when the gallery image version is published", Compute REST spec
        # GalleryArtifactPublishingProfileBase): a PUT that changes an existing version keeps the first one.
        existing = self._store.find(version_id)
        published = ((existing.properties.get("publishingProfile") or {}).get("publishedDate") if existing is not None else None)
        publishing["publishedDate"] = published or _iso(self._emulator.now())
        final = {**properties, "publishingProfile": publishing, "storageProfile": {**properties["storageProfile"]}}
        seconds = self.timings.version_base_seconds + self.timings.version_seconds_per_replica * max(replicas)
        return self._put_async(version_id, GALLERY_IMAGE_VERSION, location, body, final, math.ceil(seconds),
                               url=url, api_version=api_version, created_status=201, failure=failure)

    def _version_os_source(self, storage: dict) -> ArmResource:
        """The resource a version's OS disk comes from; every named source must exist and be Succeeded.

        A version takes either ``storageProfile.source.id`` (managed image, VM or another version) or its disks
        straight from snapshots or managed disks, ``osDiskImage.source.id`` and ``dataDiskImages[].source.id`` with
        a ``lun``: Compute REST spec example GalleryImageVersion_Create_WithSnapshotsAsSource.json (GalleryRP
        2024-03-03). That is how Trusted Launch images are published, since they cannot be managed images.
        """
        named: list[tuple[str, str]] = []
        source_id = (storage.get("source") or {}).get("id")
        if source_id:
            named.append(("storageProfile.source.id", source_id))
        os_disk_source = ((storage.get("osDiskImage") or {}).get("source") or {}).get("id")
        if os_disk_source:
            named.append(("storageProfile.osDiskImage.source.id", os_disk_source))
        if not named:
            raise InvalidParameter("Required parameter 'storageProfile.source.id' (or 'storageProfile.osDiskImage.source.id') is missing (null).")
        luns = []
        for index, disk in enumerate(storage.get("dataDiskImages") or []):
            disk_source = (disk.get("source") or {}).get("id")
            if not disk_source:
                raise InvalidParameter(f"Required parameter 'storageProfile.dataDiskImages[{index}].source.id' is missing (null).")
            if disk.get("lun") is None:
                raise InvalidParameter(f"Required parameter 'storageProfile.dataDiskImages[{index}].lun' is missing (null).")
            luns.append(disk["lun"])
            named.append((f"storageProfile.dataDiskImages[{index}].source.id", disk_source))
        if len(set(luns)) != len(luns):
            raise InvalidParameter("Every data disk image needs a distinct 'lun'.")
        found: dict[str, ArmResource] = {}
        for where, resource_id in named:
            resource = self._store.find(_absolute(resource_id))
            if resource is None or resource.provisioning_state != "Succeeded":
                raise InvalidParameter(f"The source '{resource_id}' ({where}) of the image version was not found or is not ready.")
            if where != "storageProfile.source.id" and resource.type.lower() not in (SNAPSHOT.lower(), DISK.lower()):
                raise InvalidParameter(f"'{where}' must be a snapshot or a managed disk, got '{resource_id}'.")
            found[where] = resource
        return found.get("storageProfile.osDiskImage.source.id") or found["storageProfile.source.id"]

    def delete(self, resource_id: str, resource_type: str, *, url: str, api_version: str) -> ArmResponse:
        resource = self._store.find(resource_id)
        if resource is None or resource.type.lower() != resource_type.lower():
            return ArmResponse(204)
        if resource.provisioning_state == "Deleting":
            return ArmResponse(202, None, {"Retry-After": "10"})
        self._emulator.locks.check_delete(resource.id)
        resource.properties["provisioningState"] = "Deleting"

        def finish(succeeded: bool) -> None:
            if succeeded:
                self._store.remove(resource.id)
            else:
                resource.properties["provisioningState"] = "Succeeded"

        return self._emulator.run_async(resource, method="DELETE", operation_key=f"DELETE {resource_type}",
                                        seconds=self.timings.delete_seconds, finish=finish, url=url,
                                        api_version=api_version, initial_status=202, body=None)

    # -- shared ---------------------------------------------------------------

    def _put_async(self, resource_id: str, resource_type: str, location: str, body: dict, final_properties: dict,
                   seconds: float, *, url: str, api_version: str, created_status: int, sku: dict | None = None,
                   failure: ArmError | None = None, state: str | None = None, monitor_location: bool = False) -> ArmResponse:
        existing = self._store.find(resource_id)
        if existing is not None and existing.provisioning_state in ("Creating", "Updating", "Deleting"):
            # Compute's answer to a PUT that collides with one under way, recorded for a VM PUT in Azure/azure-cli#15765
            # (409 Conflict, this message). For disks, snapshots, images and gallery resources no recording shows the
            # answer; the emulator gives the same one.
            raise Conflict(
                "The request failed due to conflict with a concurrent request. To resolve it, please refer to "
                "https://aka.ms/activitylog to get more details on the conflicting requests.",
                code="Conflict",
            )
        if existing is not None and existing.location and _region(existing.location) != _region(location):
            # virtual-machines/troubleshooting-shared-images: "The resource <galleryName/imageDefinitionName> already
            # exists in location <region_1> in resource group <resourceGroup>. A resource with the same name cannot be
            # created in location <region_2>. Please select a new resource name."; ARM answers it 409
            # InvalidResourceLocation (the code deployments print for it).
            group = existing.id.split("/resourceGroups/", 1)[-1].split("/", 1)[0] if "/resourceGroups/" in existing.id else ""
            raise Conflict(f"The resource '{existing.name}' already exists in location '{existing.location}' in resource group "
                           f"'{group}'. A resource with the same name cannot be created in location '{location}'. Please select "
                           "a new resource name.", code="InvalidResourceLocation")
        state = state or ("Updating" if existing is not None else "Creating")
        extra = {"sku": sku} if sku else {}
        resource = ArmResource(existing.id if existing else resource_id, resource_type, location,
                               {**final_properties, "provisioningState": state}, dict(body.get("tags") or {}),
                               etag=None, extra=extra, created_at=existing.created_at if existing else self._emulator.now())
        self._store.put(resource)

        def finish(succeeded: bool) -> None:
            resource.properties["provisioningState"] = "Succeeded" if succeeded else "Failed"
            resource.etag = None

        answer = self._emulator.run_async(resource, method="PUT", operation_key=f"PUT {resource_type}", seconds=seconds,
                                          finish=finish, url=url, api_version=api_version,
                                          initial_status=200 if existing is not None else created_status,
                                          body=resource.to_dict(), failure=failure)
        # Compute answers its PUTs without Retry-After (snapshot, image, gallery image and version PUTs recorded in
        # Azure/azure-sdk-for-python sdk/compute/azure-mgmt-compute/tests/recordings/test_mgmt_compute_disks.test_compute_shot.yaml
        # and test_mgmt_compute_galleries.test_compute_galleries.yaml): the SDK polls at its own interval.
        answer.headers.pop("Retry-After", None)
        if monitor_location:
            status_url = answer.headers["Azure-AsyncOperation"]
            answer.headers["Location"] = status_url.replace("/operations/", "/operationResults/", 1)
        return answer

    def list(self, resource_type: str, scope: str) -> list[ArmResource]:
        return self._store.of_type(resource_type, under=scope)


def _check_retirement(publishing: dict) -> None:
    """``excludeFromLatest`` is a boolean and ``endOfLifeDate`` a date-time (Compute REST spec, GalleryImageVersionPublishingProfile
    and GalleryArtifactPublishingProfileBase: "endOfLifeDate ... format: date-time ... This property is updatable")."""
    exclude = publishing.get("excludeFromLatest")
    if exclude is not None and not isinstance(exclude, bool):
        raise InvalidParameter(f"'publishingProfile.excludeFromLatest' must be true or false, got {exclude!r}.")
    end_of_life = publishing.get("endOfLifeDate")
    if end_of_life is None:
        return
    try:
        datetime.fromisoformat(str(end_of_life).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"'publishingProfile.endOfLifeDate' is not a date-time: {end_of_life!r}.") from None


def _require_location(body: dict) -> str:
    location = body.get("location")
    if not location or not isinstance(location, str):
        raise InvalidParameter("Required parameter 'location' is missing (null).", code="LocationRequired")
    return location


# A gallery image definition is fixed once made (virtual-machines/troubleshooting-shared-images: "Changing property
# 'galleryImage.properties.<property>' is not allowed. Cause: You tried to change the OS type, OS state, Hyper-V
# generation, offer, publisher, or SKU."). Status, code and target: 409 PropertyChangeNotAllowed with
# "target": "galleryImage.properties.hyperVGeneration", as a deployment printed it (Azure/bicep-registry-modules,
# avm/res/compute/gallery README, "Common Issues"). The identifier's parts are named the same way (identifier.publisher,
# ...); no source shows their exact path. Whether a change of the SecurityType feature is refused no source says: the
# emulator lets it through.
_IMMUTABLE_DEFINITION_PROPERTIES = ("osType", "osState", "hyperVGeneration", "identifier.publisher", "identifier.offer",
                                    "identifier.sku")
# Compute Gallery (virtual-machines/azure-compute-gallery, "Trusted Launch validation"): "Starting with API 2025-03-03,
# all new Compute Gallery image definitions will default to: Hyper-V Generation V2, Security Type TrustedLaunchSupported",
# when the securityType feature is absent or null; "Standard" opts out. Before that API version the generation
# defaulted to V1 and no feature was set.
_TRUSTED_LAUNCH_DEFAULT_API = "2025-03-03"


def _new_definition_defaults(api_version: str) -> dict:
    return {"hyperVGeneration": "V2" if api_version >= _TRUSTED_LAUNCH_DEFAULT_API else "V1"}


def _definition_features(properties: dict, api_version: str, generation: str) -> list[dict]:
    """The features a new definition gets: as sent, with SecurityType TrustedLaunchSupported when absent or null from
    2025-03-03 (for a V2 definition: a security type needs generation 2, trusted-launch-portal)."""
    features = [dict(f) for f in properties.get("features") or [] if f.get("value") is not None or str(f.get("name", "")).lower() != "securitytype"]
    if (api_version >= _TRUSTED_LAUNCH_DEFAULT_API and str(generation).upper() == "V2"
            and not any(str(f.get("name", "")).lower() == "securitytype" for f in features)):
        features.append({"name": "SecurityType", "value": "TrustedLaunchSupported"})
    return features


def _check_definition_unchanged(existing: ArmResource, properties: dict) -> None:
    """A PUT of an existing definition may not change what a version of it must be (409 PropertyChangeNotAllowed)."""
    for path in _IMMUTABLE_DEFINITION_PROPERTIES:
        had, wants = _dotted(existing.properties, path), _dotted(properties, path)
        if wants is not None and str(wants).lower() != str(had or "").lower():
            raise Conflict(f"Changing property 'galleryImage.properties.{path}' is not allowed.", code="PropertyChangeNotAllowed")


def _dotted(values: dict, path: str) -> object:
    for part in path.split("."):
        values = values.get(part) if isinstance(values, dict) else None  # type: ignore[assignment]
    return values


def _facts(resource: ArmResource) -> dict[str, str | None]:
    """What a version's OS source says about the image: OS type and state, Hyper-V generation, security type.

    None where the source does not say (a snapshot or disk has no OS state).
    """
    props = resource.properties
    kind = resource.type.lower()
    if kind == IMAGE.lower():
        os_disk = (props.get("storageProfile") or {}).get("osDisk") or {}
        return {"osType": os_disk.get("osType"), "osState": os_disk.get("osState"),
                "hyperVGeneration": props.get("hyperVGeneration", "V1"), "securityType": "Standard"}
    if kind in (SNAPSHOT.lower(), DISK.lower()):
        return {"osType": props.get("osType"), "osState": None, "hyperVGeneration": props.get("hyperVGeneration"),
                "securityType": _security_type(resource) or "Standard"}
    if kind == VIRTUAL_MACHINE.lower():
        os_disk = (props.get("storageProfile") or {}).get("osDisk") or {}
        return {"osType": os_disk.get("osType"), "osState": None, "hyperVGeneration": None,
                "securityType": (props.get("securityProfile") or {}).get("securityType") or "Standard"}
    return {"osType": None, "osState": None, "hyperVGeneration": None, "securityType": None}


def _definition_mismatch(definition: ArmResource, source: ArmResource) -> ArmError | None:
    """Why a version from ``source`` cannot be published under ``definition``, as the failed operation's error.

    A version inherits its definition's OS type, OS state, Hyper-V generation and security type (definition
    ``features`` SecurityType), so its source must have the same. Recorded error (Azure/azure-sdk-for-net#28468,
    MicrosoftDocs/azure-docs#118774, #117462): the PUT is accepted and the long-running operation fails with
    Conflict "The resource with id '...' has a different Hypervisor generation ['V2'] than the parent gallery image
    Hypervisor generation ['V1']." For OS type, OS state and security type no source shows the error: the emulator
    answers the same way (Conflict, failed operation) with its own wording. Security type must match for TrustedLaunch,
    ConfidentialVM and Standard definitions (a Trusted Launch VM captured to a gallery gets a 'Trusted launch'
    definition: learn.microsoft.com/azure/virtual-machines/trusted-launch-portal); for the '...Supported' types the
    sources are silent and the emulator does not check.
    """
    facts = _facts(source)
    wanted = definition.properties
    definition_security = next((f.get("value") for f in wanted.get("features") or []
                                if str(f.get("name", "")).lower() == "securitytype"), None) or "Standard"
    source_id = source.id
    source_gen = facts["hyperVGeneration"]
    definition_gen = wanted.get("hyperVGeneration", "V1")
    if source_gen and source_gen.upper() != str(definition_gen).upper():
        return ArmError(f"The resource with id '{source_id}' has a different Hypervisor generation ['{source_gen}'] than the "
                        f"parent gallery image Hypervisor generation ['{definition_gen}'].", code="Conflict", status=409)
    for field_name in ("osType", "osState"):
        value = facts[field_name]
        if value and str(value).lower() != str(wanted.get(field_name, "")).lower():
            return ArmError(f"The resource with id '{source_id}' has a different {field_name} ['{value}'] than the parent "
                            f"gallery image {field_name} ['{wanted.get(field_name)}'].", code="Conflict", status=409)
    strict = ("standard", "trustedlaunch", "confidentialvm")
    if (facts["securityType"] and definition_security.lower() in strict
            and facts["securityType"].lower() != definition_security.lower()):
        return ArmError(f"The resource with id '{source_id}' has a different security type ['{facts['securityType']}'] than "
                        f"the parent gallery image security type ['{definition_security}'].", code="Conflict", status=409)
    return None


def _security_type(resource: ArmResource | None) -> str | None:
    """A disk's or snapshot's security type, None when Standard; ConfidentialVM_* disk types read as ConfidentialVM."""
    value = ((resource.properties.get("securityProfile") or {}).get("securityType") if resource else None) or None
    if value and value.startswith("ConfidentialVM"):
        return "ConfidentialVM"
    return value


def _region(location: str) -> str:
    return location.replace(" ", "").lower()


def _absolute(resource_id: str) -> str:
    # Published Compute examples write ids without the leading slash.
    return resource_id if resource_id.startswith("/") else "/" + resource_id


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
