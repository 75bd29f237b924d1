"""Azure's rules the emulator enforces, each answered as Azure does, through the real SDK clients.

The source of every rule is named next to the code that enforces it (emulator/compute/models.py,
emulator/batch/models.py, emulator/locks/models.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch.models import (
    DeploymentConfiguration,
    FixedScaleSettings,
    ImageReference,
    Pool,
    PoolProperties,
    ScaleSettings,
    VirtualMachineConfiguration,
)
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    CreationData,
    GalleryArtifactVersionFullSource,
    GalleryDataDiskImage,
    GalleryDiskImageSource,
    GalleryImage,
    GalleryImageFeature,
    GalleryImageIdentifier,
    GalleryImageProperties,
    GalleryImageVersion,
    GalleryImageVersionProperties,
    GalleryImageVersionPublishingProfile,
    GalleryImageVersionStorageProfile,
    GalleryOSDiskImage,
    Image,
    ImageDataDisk,
    ImageOSDisk,
    ImageProperties,
    ImageStorageProfile,
    Snapshot,
    SnapshotProperties,
    SubResource,
    TargetRegion,
)
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject

from emulator.world import AzureEmulator
from shared.gateway.failures import error_code
from tests.support import RESOURCE_GROUP, RG_ID, SUBSCRIPTION, StaticTokenCredential, error_message

MINUTE = 60
VM = "builder"
VM_ID = f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/{VM}"
ACCOUNT = "teambatch"
ACCOUNT_ID = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/{ACCOUNT}"
GALLERY = "gal"
OTHER_SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=5)
    world.compute.add_virtual_machine(VM_ID, data_disk_luns=(0,))
    world.compute.add_gallery(f"{RG_ID}/providers/Microsoft.Compute/galleries/{GALLERY}")
    world.batch.add_account(ACCOUNT_ID, location="westeurope")
    return world


@pytest.fixture
def compute(emulator) -> ComputeManagementClient:
    return ComputeManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)


@pytest.fixture
def batch(emulator) -> BatchManagementClient:
    return BatchManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)


# -- helpers: the publishing steps, each through the SDK ---------------------------------


def _snapshots(compute, vm: str = VM, *, location: str = "westeurope", resource_group: str = RESOURCE_GROUP) -> tuple:
    """(OS snapshot, {lun: data snapshot}) of a VM's disks."""
    machine = compute.virtual_machines.get(resource_group, vm)

    def copy(name, disk_id):
        return compute.snapshots.begin_create_or_update(resource_group, name, Snapshot(
            location=location, properties=SnapshotProperties(creation_data=CreationData(create_option="Copy", source_resource_id=disk_id)))).result()

    os_snapshot = copy(f"{vm}-os", machine.storage_profile.os_disk.managed_disk.id)
    data = {d.lun: copy(f"{vm}-lun{d.lun}", d.managed_disk.id) for d in machine.storage_profile.data_disks}
    return os_snapshot, data


def _image(compute, name: str, os_snapshot, data: dict, *, location: str = "westeurope", resource_group: str = RESOURCE_GROUP,
           hyper_v: str = "V2"):
    return compute.images.begin_create_or_update(resource_group, name, Image(
        location=location, properties=ImageProperties(hyper_v_generation=hyper_v, storage_profile=ImageStorageProfile(
            os_disk=ImageOSDisk(os_type="Linux", os_state="Generalized", snapshot=SubResource(id=os_snapshot.id)),
            data_disks=[ImageDataDisk(lun=lun, snapshot=SubResource(id=s.id)) for lun, s in data.items()])))).result()


def _definition(compute, name: str, *, security_type: str | None = None, hyper_v: str = "V2", os_type: str = "Linux"):
    features = [GalleryImageFeature(name="SecurityType", value=security_type)] if security_type else None
    return compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, GALLERY, name, GalleryImage(
        location="westeurope", properties=GalleryImageProperties(os_type=os_type, os_state="Generalized", hyper_v_generation=hyper_v, features=features,
        identifier=GalleryImageIdentifier(publisher="contoso", offer=name, sku="v1")))).result()


def _version_from_image(compute, definition: str, image_id: str, regions: list[str], name: str = "1.0.0"):
    return compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, GALLERY, definition, name, GalleryImageVersion(
        location="westeurope", properties=GalleryImageVersionProperties(publishing_profile=GalleryImageVersionPublishingProfile(
            target_regions=[TargetRegion(name=region, regional_replica_count=1) for region in regions]),
        storage_profile=GalleryImageVersionStorageProfile(source=GalleryArtifactVersionFullSource(id=image_id))))).result()


def _version_from_snapshots(compute, definition: str, os_snapshot, data: dict, name: str = "1.0.0"):
    return compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, GALLERY, definition, name, GalleryImageVersion(
        location="westeurope", properties=GalleryImageVersionProperties(publishing_profile=GalleryImageVersionPublishingProfile(target_regions=[TargetRegion(name="westeurope", regional_replica_count=1)]),
        storage_profile=GalleryImageVersionStorageProfile(
            os_disk_image=GalleryOSDiskImage(source=GalleryDiskImageSource(id=os_snapshot.id)),
            data_disk_images=[GalleryDataDiskImage(lun=lun, source=GalleryDiskImageSource(id=s.id)) for lun, s in data.items()])))).result()


def _pool(image_id: str, dedicated: int = 1, resize_timeout: timedelta | None = None) -> Pool:
    return Pool(properties=PoolProperties(
        vm_size="Standard_D4ds_v5",
        deployment_configuration=DeploymentConfiguration(virtual_machine_configuration=VirtualMachineConfiguration(
            image_reference=ImageReference(id=image_id), node_agent_sku_id="batch.node.ubuntu 24.04")),
        scale_settings=ScaleSettings(fixed_scale=FixedScaleSettings(target_dedicated_nodes=dedicated, resize_timeout=resize_timeout)),
    ))


def _write_failures(emulator) -> list[str]:
    return [e.body["data"]["operationName"] for e in emulator.events.emitted if e.event_type == "Microsoft.Resources.ResourceWriteFailure"]


# -- rule 1: a gallery image version needs a replica in the Batch account's region -------------


class TestGalleryImageReplicaInTheAccountRegion:
    def test_given_a_version_replicated_only_to_eastus_when_a_westeurope_account_creates_a_pool_from_it_then_it_is_refused_with_400(
            self, emulator, compute, batch):
        # GIVEN a gallery image version whose only replica is in eastus
        image = _image(compute, "img", *_snapshots(compute))
        _definition(compute, "def")
        version = _version_from_image(compute, "def", image.id, ["eastus"])
        # WHEN a Batch account in westeurope creates a pool from it
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(version.id))
        # THEN the create is refused, naming the field and the region, and no pool exists
        assert raised.value.status_code == 400 and error_code(raised.value) == "InvalidPropertyValue"
        assert "imageReference.id" in error_message(raised.value) and "westeurope" in error_message(raised.value)
        assert not emulator.store.exists(f"{ACCOUNT_ID}/pools/workers")
        assert _write_failures(emulator) == ["Microsoft.Batch/batchAccounts/pools/write"]

    def test_given_a_version_with_a_replica_in_the_account_region_when_a_pool_is_created_then_it_is_accepted(self, compute, batch):
        # GIVEN a version replicated to eastus and to westeurope (spelt as the portal writes it)
        image = _image(compute, "img", *_snapshots(compute))
        _definition(compute, "def")
        version = _version_from_image(compute, "def", image.id, ["eastus", "West Europe"])
        # WHEN the westeurope account creates a pool from it
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(version.id))
        # THEN it is created
        assert pool.provisioning_state == "Succeeded"


# -- rule 2: a legacy managed image must be in the account's subscription and region ------------


class TestManagedImageInTheAccountSubscriptionAndRegion:
    def test_given_a_managed_image_in_eastus_when_a_westeurope_account_creates_a_pool_from_it_then_it_is_refused_with_400(
            self, emulator, compute, batch):
        # GIVEN a managed image in eastus, made from an eastus VM
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/east", location="eastus")
        image = _image(compute, "img-east", *_snapshots(compute, "east", location="eastus"), location="eastus")
        # WHEN the westeurope account creates a pool straight from it
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "legacy", _pool(image.id))
        # THEN it is refused
        assert raised.value.status_code == 400 and error_code(raised.value) == "InvalidPropertyValue"
        assert "same subscription and region" in error_message(raised.value)

    def test_given_a_managed_image_in_another_subscription_when_a_pool_is_created_from_it_then_it_is_refused_with_400(self, emulator, batch):
        # GIVEN a westeurope managed image in another subscription
        other_rg = f"/subscriptions/{OTHER_SUBSCRIPTION}/resourceGroups/rg-other"
        emulator.compute.add_virtual_machine(f"{other_rg}/providers/Microsoft.Compute/virtualMachines/other")
        other = ComputeManagementClient(StaticTokenCredential(), OTHER_SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)
        image = _image(other, "img-other", *_snapshots(other, "other", resource_group="rg-other"), resource_group="rg-other")
        # WHEN the account creates a pool from it
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "legacy", _pool(image.id))
        # THEN it is refused
        assert raised.value.status_code == 400 and error_code(raised.value) == "InvalidPropertyValue"

    def test_given_a_managed_image_in_the_account_subscription_and_region_when_a_pool_is_created_then_it_is_accepted(self, compute, batch):
        image = _image(compute, "img", *_snapshots(compute))
        assert batch.pool.create(RESOURCE_GROUP, ACCOUNT, "legacy", _pool(image.id)).provisioning_state == "Succeeded"


# -- rule 3: no managed image from a Trusted Launch or confidential VM's disks --------------------


class TestNoManagedImageFromTrustedLaunchOrConfidentialDisks:
    @pytest.mark.parametrize("security_type, disk_security_type", [
        ("TrustedLaunch", "TrustedLaunch"),
        ("ConfidentialVM", "ConfidentialVM_VMGuestStateOnlyEncryptedWithPlatformKey"),
    ])
    def test_given_a_secure_vm_when_its_disks_are_read_and_snapshotted_then_the_security_type_travels_with_the_os_disk(
            self, emulator, compute, security_type, disk_security_type):
        # GIVEN a VM seeded with a security type
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/secure", data_disk_luns=(0,),
                                             security_type=security_type)
        # WHEN the VM, its disks and the snapshots of its disks are read through ARM
        vm = compute.virtual_machines.get(RESOURCE_GROUP, "secure")
        os_disk = compute.disks.get(RESOURCE_GROUP, vm.storage_profile.os_disk.managed_disk.id.rsplit("/", 1)[-1])
        data_disk = compute.disks.get(RESOURCE_GROUP, vm.storage_profile.data_disks[0].managed_disk.id.rsplit("/", 1)[-1])
        os_snapshot, data = _snapshots(compute, "secure")
        # THEN the VM has its securityProfile, the OS disk and its snapshot carry the security type, data disks do not
        assert vm.security_profile.security_type == security_type
        assert vm.security_profile.uefi_settings.secure_boot_enabled and vm.security_profile.uefi_settings.v_tpm_enabled
        assert os_disk.security_profile.security_type == disk_security_type
        assert os_snapshot.security_profile.security_type == disk_security_type
        assert data_disk.security_profile is None and data[0].security_profile is None

    @pytest.mark.parametrize("security_type", ["TrustedLaunch", "ConfidentialVM"])
    def test_given_snapshots_of_a_secure_vm_when_a_managed_image_is_made_from_them_then_it_is_refused_as_operation_not_allowed(
            self, emulator, compute, security_type):
        # GIVEN snapshots of a Trusted Launch / confidential VM's disks
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/secure", data_disk_luns=(0,),
                                             security_type=security_type)
        os_snapshot, data = _snapshots(compute, "secure")
        # WHEN a managed image is made from them
        with pytest.raises(HttpResponseError) as raised:
            _image(compute, "img", os_snapshot, data)
        # THEN ARM refuses it and no image exists
        assert error_code(raised.value) == "OperationNotAllowed"
        assert "Creation of managed images are not supported" in error_message(raised.value)
        assert not emulator.store.exists(f"{RG_ID}/providers/Microsoft.Compute/images/img")

    def test_given_a_trusted_launch_os_disk_when_a_managed_image_is_made_from_the_disk_itself_then_it_is_refused(self, emulator, compute):
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/secure", security_type="TrustedLaunch")
        disk_id = compute.virtual_machines.get(RESOURCE_GROUP, "secure").storage_profile.os_disk.managed_disk.id
        with pytest.raises(HttpResponseError) as raised:
            compute.images.begin_create_or_update(RESOURCE_GROUP, "img", Image(location="westeurope", properties=ImageProperties(hyper_v_generation="V2",
                storage_profile=ImageStorageProfile(os_disk=ImageOSDisk(
                    os_type="Linux", os_state="Generalized", managed_disk=SubResource(id=disk_id)))))).result()
        assert error_code(raised.value) == "OperationNotAllowed"

    def test_given_a_generation_1_vm_when_it_is_seeded_as_trusted_launch_then_seeding_fails(self, emulator):
        with pytest.raises(ValueError):
            emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/old",
                                                 hyper_v_generation="V1", security_type="TrustedLaunch")


# -- rule 4: a version must match its definition ---------------------------------------------


class TestVersionMatchesItsDefinition:
    @pytest.mark.parametrize("definition_kwargs, words", [
        ({"security_type": "TrustedLaunch"}, "security type ['Standard']"),
        ({"hyper_v": "V1"}, "different Hypervisor generation ['V2'] than the parent gallery image Hypervisor generation ['V1']"),
        ({"os_type": "Windows"}, "osType ['Linux']"),
    ])
    def test_given_a_definition_unlike_the_source_when_a_version_is_published_then_the_operation_fails_with_conflict(
            self, emulator, compute, definition_kwargs, words):
        # GIVEN a Standard, Gen2, Linux managed image and a definition that differs in one way
        image = _image(compute, "img", *_snapshots(compute))
        _definition(compute, "def", **definition_kwargs)
        # WHEN a version is published from the image
        with pytest.raises(HttpResponseError) as raised:
            _version_from_image(compute, "def", image.id, ["westeurope"])
        # THEN the PUT is accepted but the long-running operation ends Failed with Conflict, naming the difference
        assert words in str(raised.value)
        assert "Conflict" in str(raised.value)
        version = compute.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, "def", "1.0.0")
        assert version.provisioning_state == "Failed"
        assert _write_failures(emulator) == ["Microsoft.Compute/galleries/images/versions/write"]

    def test_given_trusted_launch_snapshots_when_published_under_a_standard_definition_then_the_operation_fails(self, emulator, compute):
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/secure", security_type="TrustedLaunch")
        os_snapshot, data = _snapshots(compute, "secure")
        _definition(compute, "def", security_type="Standard")
        with pytest.raises(HttpResponseError) as raised:
            _version_from_snapshots(compute, "def", os_snapshot, data)
        assert "security type ['TrustedLaunch']" in str(raised.value)


# -- rule 5: versions published straight from snapshots ------------------------------------


class TestVersionFromSnapshots:
    def test_given_trusted_launch_snapshots_when_a_version_is_published_from_them_then_it_succeeds_and_they_are_its_lineage(
            self, emulator, compute):
        # GIVEN the snapshots of a Trusted Launch VM with a data disk and a Trusted Launch definition
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/secure", data_disk_luns=(0,),
                                             security_type="TrustedLaunch")
        os_snapshot, data = _snapshots(compute, "secure")
        _definition(compute, "def", security_type="TrustedLaunch")
        # WHEN a version is published from the snapshots (osDiskImage / dataDiskImages), no managed image involved
        version = _version_from_snapshots(compute, "def", os_snapshot, data)
        # THEN it succeeds and its lineage is exactly those snapshots
        assert version.provisioning_state == "Succeeded"
        assert version.storage_profile.os_disk_image.source.id == os_snapshot.id
        assert [d.lun for d in version.storage_profile.data_disk_images] == [0]
        assert emulator.compute.lineage(version.id) == [version.id, os_snapshot.id, data[0].id]
        # AND deleting a data snapshot shows in its missing lineage
        compute.snapshots.begin_delete(RESOURCE_GROUP, data[0].name).result()
        assert emulator.compute.missing_lineage(version.id) == [data[0].id]

    def test_given_a_data_disk_image_without_a_lun_when_a_version_is_published_then_it_is_refused_with_400(self, compute):
        os_snapshot, data = _snapshots(compute)
        _definition(compute, "def")
        with pytest.raises(HttpResponseError) as raised:
            compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, GALLERY, "def", "1.0.0", {
                "location": "westeurope", "properties": {"storageProfile": {
                    "osDiskImage": {"source": {"id": os_snapshot.id}},
                    "dataDiskImages": [{"source": {"id": data[0].id}}]}}}).result()
        assert raised.value.status_code == 400 and "lun" in error_message(raised.value)


# -- rule 6: a new pool is Resizing, resizeTimeout defaults to PT15M ---------------------------


class TestNewPoolAllocationState:
    def test_given_no_target_and_no_resize_timeout_when_a_pool_is_created_then_it_is_resizing_with_pt15m_then_steady(
            self, emulator, compute, batch):
        # GIVEN a pool asking for 0/0 nodes, without a resizeTimeout
        image = _image(compute, "img", *_snapshots(compute))
        # WHEN it is created
        created = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "empty", _pool(image.id, dedicated=0))
        # THEN it answers Resizing with the 15-minute default, as recorded traffic shows
        assert created.allocation_state == "Resizing"
        assert created.scale_settings.fixed_scale.resize_timeout == timedelta(minutes=15)
        assert created.resize_operation_status.resize_timeout == timedelta(minutes=15)
        assert created.resize_operation_status.target_dedicated_nodes == 0
        # AND it is Steady, with no error and no node, once the resize is over
        emulator.advance(MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "empty")
        assert pool.allocation_state == "Steady" and pool.current_dedicated_nodes == 0
        assert not pool.resize_operation_status.errors


# -- rule 7: locks listed at subscription scope include those below it -----------------------


class TestLocksListedAtSubscriptionScope:
    def test_given_resource_and_resource_group_locks_when_listed_at_subscription_level_then_both_are_listed(self, compute, emulator):
        # GIVEN a lock on a snapshot and one on its resource group
        locks = ManagementLockClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport())
        os_snapshot, _ = _snapshots(compute)
        locks.management_locks.create_or_update_by_scope(os_snapshot.id, "keep-snapshot", ManagementLockObject(level="CanNotDelete"))
        locks.management_locks.create_or_update_at_resource_group_level(RESOURCE_GROUP, "keep-rg", ManagementLockObject(level="CanNotDelete"))
        # WHEN the locks are listed at subscription level
        listed = sorted(lock.name or "" for lock in locks.management_locks.list_at_subscription_level())
        # THEN both are there; atScope() keeps only those that apply at the subscription (none)
        assert listed == ["keep-rg", "keep-snapshot"]
        assert list(locks.management_locks.list_at_subscription_level(filter="atScope()")) == []
        # AND a resource's own listing is unchanged: its lock and the resource group's
        assert sorted(lock.name or "" for lock in locks.management_locks.list_by_scope(os_snapshot.id)) == ["keep-rg", "keep-snapshot"]


# -- rules 8 and 9: the scenario format and the rehearsal report ------------------------------


class TestScenarioAndReport:
    def test_given_a_scenario_vm_with_a_security_type_when_the_world_is_seeded_then_the_vm_and_its_os_disk_carry_it(self):
        from rehearsal.runner import Rehearsal
        from rehearsal.scenario import DEFAULT_VM_ID, Scenario

        scenario = Scenario.model_validate({"world": {"virtualMachines": [
            {"id": DEFAULT_VM_ID, "location": "northeurope", "securityType": "TrustedLaunch"}]}, "steps": []})
        emulator = Rehearsal(scenario).emulator
        vm = emulator.store.get(DEFAULT_VM_ID)
        assert vm.location == "northeurope" and vm.properties["securityProfile"]["securityType"] == "TrustedLaunch"
        os_disk = emulator.store.get(vm.properties["storageProfile"]["osDisk"]["managedDisk"]["id"])
        assert os_disk.properties["securityProfile"] == {"securityType": "TrustedLaunch"}

    def test_given_the_default_scenario_when_rehearsed_then_the_report_shows_arm_names_for_regions_definitions_and_pool_security(self):
        from tests.support import example, played_report

        # GIVEN / WHEN the default scenario (600 nodes, gallery path) is rehearsed
        report = played_report(example("default"))
        resources = report["resources"]
        # THEN the version shows its target regions with ARM's field names
        [version] = resources["imageVersions"]
        assert version["targetRegions"] == [{"name": "westeurope", "regionalReplicaCount": 2}]
        # AND the image definition shows what a version must match
        [definition] = resources["imageDefinitions"]
        assert definition["id"] == version["id"].rsplit("/versions/", 1)[0]
        assert (definition["osType"], definition["osState"], definition["hyperVGeneration"]) == ("Linux", "Generalized", "V2")
        assert {"features", "purchasePlan"} <= set(definition)
        # (the security type is explicit: a definition without one would become TrustedLaunchSupported)
        assert definition["features"] == [{"name": "SecurityType", "value": "Standard"}]
        # AND the pool shows its securityProfile (none was asked for)
        [pool] = resources["pools"]
        assert "securityProfile" in pool and pool["securityProfile"] is None


# -- rule 10: a refusal is answered with its status, code and message; a PUT colliding with one under way is 409 Conflict


class TestRefusals:
    def test_given_a_refuse_fault_when_a_snapshot_is_put_then_arm_answers_its_status_code_and_message_and_a_failure_event(
            self, emulator, compute):
        from emulator.faults import FaultKind, FaultRule

        # GIVEN Compute refusing snapshot PUTs for good
        emulator.faults.add(FaultRule("PUT Microsoft.Compute/snapshots", FaultKind.REFUSE, status=409, code="OperationNotAllowed",
                                      message="Operation could not be completed as it results in exceeding approved quota."))
        disk = compute.virtual_machines.get(RESOURCE_GROUP, VM).storage_profile.os_disk.managed_disk.id
        # WHEN a snapshot is PUT
        with pytest.raises(HttpResponseError) as raised:
            compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "snap", Snapshot(
                location="westeurope", properties=SnapshotProperties(creation_data=CreationData(create_option="Copy", source_resource_id=disk))), polling=False)
        # THEN the answer is the refusal, nothing is made, and ARM raises the write failure event
        assert (raised.value.status_code, error_code(raised.value)) == (409, "OperationNotAllowed")
        assert "exceeding approved quota" in error_message(raised.value)
        assert not emulator.store.exists(f"{RG_ID}/providers/Microsoft.Compute/snapshots/snap")
        assert _write_failures(emulator) == ["Microsoft.Compute/snapshots/write"]

    def test_given_the_gateway_when_compute_refuses_for_good_or_a_put_is_under_way_then_it_is_step_failed_or_waiting(self, emulator):
        from emulator.faults import FaultKind, FaultRule
        from shared.arm.ids import SNAPSHOT, parse_arm_id
        from shared.clients import AzureClients
        from shared.gateway.failures import StepFailed, Waiting
        from shared.gateway.sdk import SdkGateway
        from shared.settings import Settings
        from tests.support import VALID_SETTINGS

        gateway = SdkGateway(AzureClients(Settings.from_environ(VALID_SETTINGS), credential=StaticTokenCredential(), transport=emulator.transport()))
        disk = emulator.store.get(VM_ID).properties["storageProfile"]["osDisk"]["managedDisk"]["id"]
        body = {"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}}}
        snapshot = parse_arm_id(f"{RG_ID}/providers/Microsoft.Compute/snapshots/snap", SNAPSHOT)
        # A PUT while the first is under way: Compute's 409 Conflict "concurrent request" is the step under way
        assert gateway.compute.create_snapshot(snapshot, body) is None
        assert isinstance(gateway.compute.create_snapshot(snapshot, body), Waiting)
        # A permanent 409 OperationNotAllowed is refused for good, with Azure's code and message
        emulator.faults.add(FaultRule("PUT Microsoft.Compute/snapshots", FaultKind.REFUSE, status=409, code="OperationNotAllowed",
                                      message="Disk d is attached to VM v."))
        with pytest.raises(StepFailed, match="OperationNotAllowed: Disk d is attached to VM v"):
            gateway.compute.create_snapshot(snapshot.sibling(SNAPSHOT, "other"), body)


# -- rule 11: a gallery image definition is fixed once made; a new one defaults to TrustedLaunchSupported -----------------


class TestDefinitionsAreFixedOnceMade:
    @pytest.mark.parametrize("change, words", [
        ({"identifier": GalleryImageIdentifier(publisher="someone-else", offer="def", sku="v1")}, "identifier.publisher"),
        ({"identifier": GalleryImageIdentifier(publisher="contoso", offer="def", sku="request-2")}, "identifier.sku"),
        ({"hyper_v_generation": "V1"}, "hyperVGeneration"),
        ({"os_state": "Specialized"}, "osState"),
    ])
    def test_given_a_definition_when_put_again_with_another_immutable_property_then_it_is_refused_409_property_change_not_allowed(
            self, compute, change, words):
        # GIVEN a definition
        _definition(compute, "def")
        body = {"location": "westeurope", "os_type": "Linux", "os_state": "Generalized", "hyper_v_generation": "V2",
                "identifier": GalleryImageIdentifier(publisher="contoso", offer="def", sku="v1"), **change}
        # WHEN it is PUT again with one fixed property changed
        with pytest.raises(HttpResponseError) as raised:
            compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, GALLERY, "def", GalleryImage(**body)).result()
        # THEN Azure's answer: 409 PropertyChangeNotAllowed naming the property, and the definition is unchanged
        assert (raised.value.status_code, error_code(raised.value)) == (409, "PropertyChangeNotAllowed")
        assert error_message(raised.value) == f"Changing property 'galleryImage.properties.{words}' is not allowed."
        kept = compute.gallery_images.get(RESOURCE_GROUP, GALLERY, "def")
        assert (kept.identifier.publisher, kept.identifier.sku, kept.hyper_v_generation) == ("contoso", "v1", "V2")

    def test_given_a_definition_when_put_again_unchanged_then_it_is_accepted(self, compute):
        _definition(compute, "def")
        again = _definition(compute, "def")
        assert again.provisioning_state == "Succeeded" and again.identifier.publisher == "contoso"

    def test_given_a_definition_in_westeurope_when_put_in_northeurope_then_it_is_refused_409_invalid_resource_location(self, compute):
        _definition(compute, "def")
        with pytest.raises(HttpResponseError) as raised:
            compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, GALLERY, "def", GalleryImage(
                location="northeurope", properties=GalleryImageProperties(os_type="Linux", os_state="Generalized", hyper_v_generation="V2",
                identifier=GalleryImageIdentifier(publisher="contoso", offer="def", sku="v1")))).result()
        assert (raised.value.status_code, error_code(raised.value)) == (409, "InvalidResourceLocation")
        assert "already exists in location 'westeurope'" in error_message(raised.value)

    def test_given_no_security_type_when_a_definition_is_made_at_api_2025_03_03_or_later_then_it_is_trusted_launch_supported_v2(
            self, compute):
        # GIVEN / WHEN a definition PUT without SecurityType or generation (the SDK sends an api-version after 2025-03-03)
        made = compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, GALLERY, "bare", GalleryImage(
            location="westeurope", properties=GalleryImageProperties(os_type="Linux", os_state="Generalized",
            identifier=GalleryImageIdentifier(publisher="contoso", offer="bare", sku="v1")))).result()
        # THEN it is TrustedLaunchSupported and V2, as Compute Gallery now makes them
        assert made.hyper_v_generation == "V2"
        assert [(f.name, f.value) for f in made.features] == [("SecurityType", "TrustedLaunchSupported")]
        # AND an explicit Standard keeps it Standard
        standard = _definition(compute, "explicit", security_type="Standard")
        assert [(f.name, f.value) for f in standard.features] == [("SecurityType", "Standard")]


# -- rule 12: Batch retired pools straight from a managed image on 2026-03-31 -------------------------------------------


class TestManagedImagePoolsRetired:
    def test_given_the_retirement_date_has_passed_when_a_pool_is_created_from_a_managed_image_then_it_is_refused(
            self, emulator, compute, batch):
        from datetime import UTC, datetime

        # GIVEN a managed image in the account's region; WHEN time passes the retirement day
        image = _image(compute, "img", *_snapshots(compute))
        emulator.advance((datetime(2026, 3, 31, tzinfo=UTC) - emulator.now()).total_seconds())
        # THEN a pool straight from it is refused, naming the retirement
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "legacy", _pool(image.id))
        assert raised.value.status_code == 400 and "retired on 2026-03-31" in error_message(raised.value)
        # AND on a cloud that still accepts them it is made
        emulator.batch.managed_image_pools_retired_on = None
        assert batch.pool.create(RESOURCE_GROUP, ACCOUNT, "legacy", _pool(image.id)).provisioning_state == "Succeeded"


class TestBatchServiceApiRaisesNoArmEvent:
    """Calls to the account's own endpoint (az batch, Batch Explorer, the Batch SDKs) change the pool but raise no ARM
    event and leave no Activity Log entry ("Operations sent to the data plane ... don't create events", Event Grid's
    resource-group event schema), and no management lock stops them (locks apply to the control plane only)."""

    def _grown_pool(self, emulator, compute, batch, dedicated: int = 1000):
        from azure.mgmt.resource.locks import ManagementLockClient
        from azure.mgmt.resource.locks.models import ManagementLockObject

        image = _image(compute, "img", *_snapshots(compute))
        _definition(compute, "def")
        version = _version_from_image(compute, "def", image.id, ["westeurope"])
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(version.id, dedicated))
        locks = ManagementLockClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport())
        locks.management_locks.create_or_update_by_scope(pool.id, "keep", ManagementLockObject(level="CanNotDelete"))
        emulator.advance(MINUTE)
        return pool, len(emulator.events.emitted)

    def test_given_a_locked_pool_when_deleted_through_the_batch_api_then_it_is_gone_with_no_event(self, emulator, compute, batch):
        from azure.core.exceptions import ResourceNotFoundError

        pool, events_before = self._grown_pool(emulator, compute, batch)
        # WHEN the pool is deleted through the Batch service API (its CanNotDelete lock does not apply)
        emulator.batch.data_plane_delete_pool(pool.id)
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").provisioning_state == "Deleting"
        emulator.advance(emulator.batch.allocation.delete_seconds)
        # THEN it is gone, and no ARM event said so
        with pytest.raises(ResourceNotFoundError):
            batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert len(emulator.events.emitted) == events_before

    def test_given_a_growing_pool_when_resized_and_stopped_through_the_batch_api_then_it_changes_with_no_event(
            self, emulator, compute, batch):
        pool, events_before = self._grown_pool(emulator, compute, batch, dedicated=100)
        emulator.advance(10 * MINUTE)
        # WHEN it is resized to 400 through the Batch service API, then the resize is stopped the same way
        emulator.batch.data_plane_resize(pool.id, 400, 0)
        resized = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert resized.allocation_state == "Resizing" and resized.scale_settings.fixed_scale.target_dedicated_nodes == 400
        emulator.advance(20)
        emulator.batch.data_plane_stop_resize(pool.id)
        emulator.advance(emulator.batch.allocation.stop_seconds)
        # THEN the resize ended ResizeStopped short of 400, and no ARM event said any of it
        stopped = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert stopped.allocation_state == "Steady" and 100 <= stopped.current_dedicated_nodes < 400
        assert [e.code for e in stopped.resize_operation_status.errors] == ["ResizeStopped"]
        assert len(emulator.events.emitted) == events_before

    def test_given_a_resizing_pool_when_resized_through_the_batch_api_then_it_is_refused_409_pool_being_resized(
            self, emulator, compute, batch):
        from emulator.errors import ArmError

        pool, _ = self._grown_pool(emulator, compute, batch)
        with pytest.raises(ArmError) as raised:
            emulator.batch.data_plane_resize(pool.id, 400, 0)
        assert (raised.value.status, raised.value.code) == (409, "PoolBeingResized")


class TestReplicaLimits:
    """Compute Gallery: "a maximum of 50 replicas per region", "a limit of 100 replicas per image version"
    (azure-docs, virtual-machines/azure-compute-gallery.md)."""

    @pytest.mark.parametrize(("regions", "accepted"), [
        ({"westeurope": 50}, True),
        ({"westeurope": 51}, False),
        ({"westeurope": 50, "northeurope": 50}, True),
        ({"westeurope": 50, "northeurope": 50, "eastus": 1}, False),
    ])
    def test_given_target_regions_when_a_version_is_put_then_more_than_50_in_a_region_or_100_in_all_is_refused(
            self, compute, regions, accepted):
        image = _image(compute, "img", *_snapshots(compute))
        _definition(compute, "def")
        version = GalleryImageVersion(
            location="westeurope", properties=GalleryImageVersionProperties(publishing_profile=GalleryImageVersionPublishingProfile(
                target_regions=[TargetRegion(name=name, regional_replica_count=count) for name, count in regions.items()]),
            storage_profile=GalleryImageVersionStorageProfile(source=GalleryArtifactVersionFullSource(id=image.id))))
        if accepted:
            made = compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, GALLERY, "def", "1.0.0", version).result()
            assert made.provisioning_state == "Succeeded"
            return
        with pytest.raises(HttpResponseError) as raised:
            compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, GALLERY, "def", "1.0.0", version).result()
        assert raised.value.status_code == 400 and error_code(raised.value) == "InvalidParameter"


class TestReadOnlyLocks:
    """"ReadOnly means authorized users can read a resource, but they can't delete or update it" (lock-resources.md):
    409 ScopeLocked "... cannot perform write operation because following scope(s) are locked ..."."""

    def test_given_a_read_only_lock_on_the_resource_group_when_a_pool_is_patched_then_it_is_refused_and_unchanged(
            self, emulator, compute, batch):
        from azure.mgmt.batch.models import MetadataItem
        from azure.mgmt.resource.locks import ManagementLockClient
        from azure.mgmt.resource.locks.models import ManagementLockObject

        image = _image(compute, "img", *_snapshots(compute))
        _definition(compute, "def")
        version = _version_from_image(compute, "def", image.id, ["westeurope"])
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(version.id, 0))
        locks = ManagementLockClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport())
        locks.management_locks.create_or_update_at_resource_group_level(RESOURCE_GROUP, "frozen", ManagementLockObject(level="ReadOnly"))
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.update(RESOURCE_GROUP, ACCOUNT, "workers", Pool(properties=PoolProperties(metadata=[MetadataItem(name="a", value="b")])))
        assert raised.value.status_code == 409 and error_code(raised.value) == "ScopeLocked"
        assert "cannot perform write operation because following scope(s) are locked" in error_message(raised.value)
        assert not batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").metadata
        # AND a CanNotDelete lock lets the same PATCH through
        locks.management_locks.delete_at_resource_group_level(RESOURCE_GROUP, "frozen")
        locks.management_locks.create_or_update_at_resource_group_level(RESOURCE_GROUP, "keep", ManagementLockObject(level="CanNotDelete"))
        patched = batch.pool.update(RESOURCE_GROUP, ACCOUNT, "workers", Pool(properties=PoolProperties(metadata=[MetadataItem(name="a", value="b")])))
        assert [(m.name, m.value) for m in patched.metadata] == [("a", "b")]


# -- VM sizes with published capabilities, and a pool's securityProfile (emulator/batch/models.py, vm_skus.json) ----


def _secure_pool(image_id: str, vm_size: str, security: dict | None) -> dict:
    vm_config: dict = {"imageReference": {"id": image_id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}
    if security is not None:
        vm_config["securityProfile"] = security
    return {"properties": {"vmSize": vm_size, "deploymentConfiguration": {"virtualMachineConfiguration": vm_config},
                           "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 1}}}}


def _secure_version(emulator, compute, security_type: str) -> str:
    name = security_type.lower()
    emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/{name}", security_type=security_type)
    os_snapshot, data = _snapshots(compute, name)
    _definition(compute, name, security_type=security_type)
    return _version_from_snapshots(compute, name, os_snapshot, data).id


class TestVmSizesFromPublishedSources:
    def test_given_the_published_sizes_when_batch_lists_a_region_then_each_comes_with_its_recorded_or_documented_capabilities(self, emulator, batch):
        # WHEN the SDK lists the sizes Batch offers in westeurope
        skus = {sku.name: {c.name: c.value for c in sku.capabilities} for sku in batch.location.list_supported_virtual_machine_skus("westeurope")}
        # THEN the recorded sizes carry their recorded capabilities, the confidential one its documented ConfidentialComputingType
        assert skus["Standard_D4ds_v5"] == {"vCPUs": "4", "HyperVGenerations": "V1,V2", "MemoryGB": "16", "CpuArchitectureType": "x64",
                                            "LowPriorityCapable": "True", "EncryptionAtHostSupported": "True"}
        assert skus["Standard_F4"]["HyperVGenerations"] == "V1"
        assert skus["Standard_DC4as_v5"]["ConfidentialComputingType"] == "SNP" and "ConfidentialComputingType" not in skus["Standard_D4ds_v5"]
        assert skus["Standard_M64"]["TrustedLaunchDisabled"] == "True"
        # AND a size without published capabilities is not offered at all
        assert "Standard_DS1_v2" not in skus

    def test_given_a_region_limited_to_two_sizes_when_listed_then_only_those_and_an_unpublished_size_cannot_be_offered(self, emulator, batch):
        emulator.batch.set_region_vm_sizes("northeurope", ["Standard_D4ds_v5", "Standard_F4"])
        assert [s.name for s in batch.location.list_supported_virtual_machine_skus("northeurope")] == ["Standard_D4ds_v5", "Standard_F4"]
        assert len(list(batch.location.list_supported_virtual_machine_skus("westeurope"))) == 12
        with pytest.raises(ValueError, match="no published capabilities for Standard_Made_Up"):
            emulator.batch.set_region_vm_sizes("northeurope", ["Standard_Made_Up"])


class TestPoolSecurityProfile:
    def test_given_a_confidential_image_when_a_confidential_pool_is_put_on_a_plain_size_then_400_and_on_a_confidential_size_accepted(
            self, emulator, compute, batch):
        version = _secure_version(emulator, compute, "ConfidentialVM")
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "plain", _secure_pool(version, "Standard_D4ds_v5", {"securityType": "confidentialVM"}))
        assert raised.value.status_code == 400 and error_code(raised.value) == "BadRequest"
        assert "The VM size 'Standard_D4ds_v5' is not supported for creation of VMs and Virtual Machine Scale Set with 'ConfidentialVM'" in \
            error_message(raised.value)
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "cvm", _secure_pool(version, "Standard_DC4as_v5", {"securityType": "confidentialVM"}))
        assert pool.properties.deployment_configuration.virtual_machine_configuration.security_profile.security_type == "confidentialVM"

    def test_given_a_trusted_launch_only_image_when_a_pool_without_trusted_launch_is_put_then_400_with_computes_recorded_message(
            self, emulator, compute, batch):
        version = _secure_version(emulator, compute, "TrustedLaunch")
        for security in (None, {"encryptionAtHost": True}):
            with pytest.raises(HttpResponseError) as raised:
                batch.pool.create(RESOURCE_GROUP, ACCOUNT, "plain", _secure_pool(version, "Standard_D4ds_v5", security))
            assert raised.value.status_code == 400
            assert "only supports creation of VMs and VM Scale Sets with 'TrustedLaunch' security type" in error_message(raised.value)
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "tl", _secure_pool(version, "Standard_D4ds_v5", {
            "securityType": "trustedLaunch", "uefiSettings": {"secureBootEnabled": False, "vTpmEnabled": True}}))

    def test_given_a_trusted_launch_supported_image_when_a_plain_pool_is_put_then_it_is_accepted(self, emulator, compute, batch):
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/plain")
        os_snapshot, data = _snapshots(compute, "plain")
        image = _image(compute, "img", os_snapshot, data)
        _definition(compute, "supported", security_type="TrustedLaunchSupported")
        version = _version_from_image(compute, "supported", image.id, ["westeurope"])
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "plain", _secure_pool(version.id, "Standard_D4ds_v5", None))
        assert pool.properties.deployment_configuration.virtual_machine_configuration.security_profile is None

    @pytest.mark.parametrize(("security", "complaint"), [
        ({"securityType": "standard"}, "must be one of trustedLaunch, confidentialVM"),
        ({"uefiSettings": {"secureBootEnabled": False}}, "has to be set to enable UefiSettings"),
        ({"securityType": "trustedLaunch", "encryptionAtHost": "yes"}, "encryptionAtHost' must be true or false"),
    ])
    def test_given_a_malformed_security_profile_when_a_pool_is_put_then_400_names_the_property(self, emulator, compute, batch, security, complaint):
        version = _secure_version(emulator, compute, "TrustedLaunch")
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "bad", _secure_pool(version, "Standard_D4ds_v5", security))
        assert raised.value.status_code == 400 and complaint in error_message(raised.value)


class TestVirtualMachineInstanceView:
    def test_given_a_seeded_vm_when_read_with_its_instance_view_then_generation_power_state_and_generalized_are_reported(self, emulator, compute):
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/old", hyper_v_generation="V1",
                                             power_state="running", generalized=False)
        view = compute.virtual_machines.get(RESOURCE_GROUP, "old", expand="instanceView").instance_view
        assert view.hyper_v_generation == "V1"
        assert [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]
        generalized = compute.virtual_machines.get(RESOURCE_GROUP, VM, expand="instanceView").instance_view
        assert [s.code for s in generalized.statuses] == ["ProvisioningState/succeeded", "OSState/generalized", "PowerState/deallocated"]
        # AND without $expand the VM comes without it, as Compute answers
        assert compute.virtual_machines.get(RESOURCE_GROUP, VM).instance_view is None


class TestLowPriorityPreemption:
    def test_given_low_priority_nodes_when_azure_preempts_some_then_arm_still_counts_them_until_capacity_returns(self, emulator, compute, batch):
        # GIVEN a pool whose 10 low-priority nodes arrived
        emulator.compute.add_virtual_machine(f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/plain")
        os_snapshot, data = _snapshots(compute, "plain")
        image = _image(compute, "img", os_snapshot, data)
        pool_id = f"{ACCOUNT_ID}/pools/spot"
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "spot", {"properties": {
            "vmSize": "Standard_D4ds_v5", "deploymentConfiguration": {"virtualMachineConfiguration": {
                "imageReference": {"id": image.id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
            "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 0, "targetLowPriorityNodes": 10}}}})
        emulator.clock.advance(5 * MINUTE)
        events_before = len(emulator.events.emitted)
        # WHEN Azure preempts 4 (and 20 more than it has: only the running ones can go)
        assert emulator.batch.preempt_low_priority_nodes(pool_id, 4, capacity_returns_after=10 * MINUTE) == 4
        assert emulator.batch.preempt_low_priority_nodes(pool_id, 20, capacity_returns_after=None) == 6
        # THEN they are Preempted, yet the pool as ARM answers it still counts them, and no ARM event is raised
        assert emulator.batch.preempted_nodes(pool_id) == 10
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "spot").properties.current_low_priority_nodes == 10
        assert len(emulator.events.emitted) == events_before
        # AND when capacity returns Batch brings back the ones it can
        emulator.clock.advance(10 * MINUTE)
        assert emulator.batch.preempted_nodes(pool_id) == 6
