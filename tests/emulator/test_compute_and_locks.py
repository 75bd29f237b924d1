"""The emulator under the real Compute and lock clients: LROs, errors, locks and events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    CreationData,
    Gallery,
    GalleryArtifactVersionFullSource,
    GalleryImage,
    GalleryImageIdentifier,
    GalleryImageVersion,
    GalleryImageVersionPublishingProfile,
    GalleryImageVersionStorageProfile,
    Image,
    ImageDataDisk,
    ImageOSDisk,
    ImageStorageProfile,
    Snapshot,
    SubResource,
    TargetRegion,
)
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject

from emulator.faults import FaultKind, FaultRule
from emulator.world import AzureEmulator
from tests.support import RESOURCE_GROUP, RG_ID, SUBSCRIPTION, StaticTokenCredential

VM_ID = f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/builder"


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=7, page_size=2)
    world.compute.add_virtual_machine(VM_ID, data_disk_luns=(0, 1))
    return world


@pytest.fixture
def compute(emulator) -> ComputeManagementClient:
    return ComputeManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)


@pytest.fixture
def locks(emulator) -> ManagementLockClient:
    return ManagementLockClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport())


def _snapshot(compute, name: str, disk_id: str):
    return compute.snapshots.begin_create_or_update(
        RESOURCE_GROUP, name, Snapshot(location="westeurope", creation_data=CreationData(create_option="Copy", source_resource_id=disk_id), tags={"request": "r1"})
    ).result()


def _os_disk_id(compute) -> str:
    return compute.virtual_machines.get(RESOURCE_GROUP, "builder").storage_profile.os_disk.managed_disk.id


class TestSnapshots:
    def test_snapshot_create_polls_to_succeeded_on_virtual_time_and_emits_one_write_event(self, emulator, compute):
        # GIVEN a VM with a managed OS disk
        disk_id = _os_disk_id(compute)
        # WHEN a snapshot is created through the real SDK poller
        snapshot = _snapshot(compute, "snap-os", disk_id)
        # THEN it ends Succeeded after the emulated copy time, with the source's facts
        assert snapshot.provisioning_state == "Succeeded"
        assert snapshot.creation_data.source_resource_id == disk_id
        assert snapshot.os_type == "Linux" and snapshot.tags == {"request": "r1"}
        assert emulator.clock.elapsed_seconds >= emulator.compute.timings.snapshot_seconds
        writes = [e.body for e in emulator.events.emitted if e.event_type == "Microsoft.Resources.ResourceWriteSuccess"]
        assert [w["data"]["operationName"] for w in writes] == ["Microsoft.Compute/snapshots/write"]
        assert writes[0]["subject"] == snapshot.id
        assert emulator.calls["PUT Microsoft.Compute/snapshots"] == 1
        assert emulator.calls["GET Microsoft.Compute/locations/operations"] >= 1

    def test_snapshot_of_missing_disk_is_a_404_naming_the_source(self, compute):
        with pytest.raises(ResourceNotFoundError) as raised:
            _snapshot(compute, "snap-x", f"{RG_ID}/providers/Microsoft.Compute/disks/nope")
        assert "sourceResourceId" in str(raised.value)

    def test_put_while_creating_is_a_conflict(self, compute):
        disk_id = _os_disk_id(compute)
        # polling=False: start the operation without a poller thread advancing the clock
        compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "snap-os", Snapshot(location="westeurope", creation_data=CreationData(create_option="Copy", source_resource_id=disk_id)), polling=False)
        with pytest.raises(HttpResponseError) as raised:
            _snapshot(compute, "snap-os", disk_id)
        # Compute's recorded answer to a PUT colliding with one under way (Azure/azure-cli#15765)
        assert raised.value.status_code == 409 and raised.value.error.code == "Conflict"
        assert "conflict with a concurrent request" in raised.value.error.message

    def test_list_by_resource_group_follows_next_links(self, compute):
        disk_id = _os_disk_id(compute)
        for index in range(5):
            _snapshot(compute, f"snap-{index}", disk_id)
        names = sorted(s.name for s in compute.snapshots.list_by_resource_group(RESOURCE_GROUP))
        assert names == [f"snap-{i}" for i in range(5)]

    def test_injected_lro_failure_ends_failed_and_emits_a_write_failure(self, emulator, compute):
        emulator.faults.add(FaultRule("PUT Microsoft.Compute/snapshots", FaultKind.LRO_FAILED, limit=1))
        with pytest.raises(HttpResponseError):
            _snapshot(compute, "snap-os", _os_disk_id(compute))
        assert compute.snapshots.get(RESOURCE_GROUP, "snap-os").provisioning_state == "Failed"
        assert [e.event_type for e in emulator.events.emitted] == ["Microsoft.Resources.ResourceWriteFailure"]

    def test_throttling_is_retried_by_the_sdk_after_retry_after(self, emulator, compute):
        emulator.faults.add(FaultRule("GET Microsoft.Compute/virtualMachines", FaultKind.THROTTLE, limit=2, retry_after_seconds=7))
        assert compute.virtual_machines.get(RESOURCE_GROUP, "builder").name == "builder"
        assert emulator.calls["GET Microsoft.Compute/virtualMachines"] == 3
        assert emulator.clock.elapsed_seconds >= 14


class TestImagesAndGallery:
    def test_snapshots_to_image_to_gallery_version_with_replicas(self, emulator, compute):
        vm = compute.virtual_machines.get(RESOURCE_GROUP, "builder")
        os_snap = _snapshot(compute, "snap-os", vm.storage_profile.os_disk.managed_disk.id)
        data_snaps = {d.lun: _snapshot(compute, f"snap-lun{d.lun}", d.managed_disk.id) for d in vm.storage_profile.data_disks}
        image = compute.images.begin_create_or_update(RESOURCE_GROUP, "img", Image(
            location="westeurope", hyper_v_generation="V2",
            storage_profile=ImageStorageProfile(
                os_disk=ImageOSDisk(os_type="Linux", os_state="Generalized", snapshot=SubResource(id=os_snap.id)),
                data_disks=[ImageDataDisk(lun=lun, snapshot=SubResource(id=s.id)) for lun, s in data_snaps.items()]))).result()
        assert image.provisioning_state == "Succeeded" and [d.lun for d in image.storage_profile.data_disks] == [0, 1]

        compute.galleries.begin_create_or_update(RESOURCE_GROUP, "gal", Gallery(location="westeurope")).result()
        compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, "gal", "def", GalleryImage(
            location="westeurope", os_type="Linux", os_state="Generalized", hyper_v_generation="V2",
            identifier=GalleryImageIdentifier(publisher="contoso", offer="batch", sku="v1"))).result()
        started = emulator.clock.elapsed_seconds
        version = compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, "gal", "def", "1.0.0", GalleryImageVersion(
            location="westeurope",
            publishing_profile=GalleryImageVersionPublishingProfile(target_regions=[TargetRegion(name="westeurope", regional_replica_count=2)]),
            storage_profile=GalleryImageVersionStorageProfile(source=GalleryArtifactVersionFullSource(id=image.id)))).result()
        assert version.provisioning_state == "Succeeded"
        assert version.publishing_profile.target_regions[0].regional_replica_count == 2
        # Replication takes virtual time that grows with the replica count.
        timings = emulator.compute.timings
        assert emulator.clock.elapsed_seconds - started >= timings.version_base_seconds + 2 * timings.version_seconds_per_replica
        assert emulator.compute.missing_lineage(version.id) == []

    def test_a_version_put_back_excluded_from_latest_with_an_end_of_life_keeps_its_published_date(self, emulator, compute):
        vm = compute.virtual_machines.get(RESOURCE_GROUP, "builder")
        os_snap = _snapshot(compute, "snap-os", vm.storage_profile.os_disk.managed_disk.id)
        image = compute.images.begin_create_or_update(RESOURCE_GROUP, "img", Image(location="westeurope", hyper_v_generation="V2",
            storage_profile=ImageStorageProfile(os_disk=ImageOSDisk(os_type="Linux", os_state="Generalized", snapshot=SubResource(id=os_snap.id))))).result()
        compute.galleries.begin_create_or_update(RESOURCE_GROUP, "gal", Gallery(location="westeurope")).result()
        compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, "gal", "def", GalleryImage(
            location="westeurope", os_type="Linux", os_state="Generalized", hyper_v_generation="V2",
            identifier=GalleryImageIdentifier(publisher="contoso", offer="batch", sku="v1"))).result()
        version = compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, "gal", "def", "1.0.0", GalleryImageVersion(
            location="westeurope", storage_profile=GalleryImageVersionStorageProfile(source=GalleryArtifactVersionFullSource(id=image.id)))).result()
        emulator.advance(3600)
        end_of_life = datetime(2026, 6, 1, tzinfo=UTC)
        version.publishing_profile.exclude_from_latest = True
        version.publishing_profile.end_of_life_date = end_of_life
        retired = compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, "gal", "def", "1.0.0", version).result()
        assert retired.publishing_profile.exclude_from_latest and retired.publishing_profile.end_of_life_date == end_of_life
        assert retired.publishing_profile.published_date == version.publishing_profile.published_date
        body = retired.as_dict()
        body["properties"]["publishingProfile"]["endOfLifeDate"] = "next spring"
        answer = compute.send_request(HttpRequest(
            "PUT", f"https://management.azure.com{retired.id}?api-version=2024-03-03", json=body))
        assert answer.status_code == 400 and "endOfLifeDate" in answer.json()["error"]["message"]

    def test_image_from_a_missing_snapshot_is_rejected(self, compute):
        with pytest.raises(HttpResponseError) as raised:
            compute.images.begin_create_or_update(RESOURCE_GROUP, "img", Image(location="westeurope", storage_profile=ImageStorageProfile(
                os_disk=ImageOSDisk(os_type="Linux", os_state="Generalized", snapshot=SubResource(id=f"{RG_ID}/providers/Microsoft.Compute/snapshots/none"))))).result()
        assert raised.value.status_code == 400 and raised.value.error.code == "InvalidParameter"

    def test_version_under_a_missing_definition_is_parent_not_found(self, compute):
        with pytest.raises(ResourceNotFoundError) as raised:
            compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, "gal", "def", "1.0.0", GalleryImageVersion(
                location="westeurope", storage_profile=GalleryImageVersionStorageProfile(source=GalleryArtifactVersionFullSource(id="/x")))).result()
        assert raised.value.error.code == "ParentResourceNotFound"


class TestLocks:
    def test_can_not_delete_lock_blocks_delete_with_scope_locked_and_a_delete_failure_event(self, emulator, compute, locks):
        # GIVEN a snapshot with a CanNotDelete lock
        snapshot = _snapshot(compute, "snap-os", _os_disk_id(compute))
        lock = locks.management_locks.create_or_update_by_scope(snapshot.id, "keep", ManagementLockObject(level="CanNotDelete", notes="used by pool p1"))
        assert lock.level == "CanNotDelete" and lock.id.endswith("/providers/Microsoft.Authorization/locks/keep")
        # WHEN it is deleted
        with pytest.raises(HttpResponseError) as raised:
            compute.snapshots.begin_delete(RESOURCE_GROUP, "snap-os").result()
        # THEN ARM answers 409 ScopeLocked, the snapshot stays and a delete failure is raised
        assert raised.value.status_code == 409 and raised.value.error.code == "ScopeLocked"
        assert compute.snapshots.get(RESOURCE_GROUP, "snap-os").provisioning_state == "Succeeded"
        failure = emulator.events.emitted[-1].body
        assert failure["eventType"] == "Microsoft.Resources.ResourceDeleteFailure"
        assert failure["data"]["operationName"] == "Microsoft.Compute/snapshots/delete" and failure["data"]["status"] == "Failed"

    def test_lock_removed_then_delete_succeeds_with_events_in_order(self, emulator, compute, locks):
        snapshot = _snapshot(compute, "snap-os", _os_disk_id(compute))
        locks.management_locks.create_or_update_by_scope(snapshot.id, "keep", ManagementLockObject(level="CanNotDelete"))
        assert [lock.name for lock in locks.management_locks.list_by_scope(snapshot.id)] == ["keep"]
        locks.management_locks.delete_by_scope(snapshot.id, "keep")
        compute.snapshots.begin_delete(RESOURCE_GROUP, "snap-os").result()
        with pytest.raises(ResourceNotFoundError):
            compute.snapshots.get(RESOURCE_GROUP, "snap-os")
        operations = [(e.event_type.rsplit(".", 1)[-1], e.body["data"]["operationName"]) for e in emulator.events.emitted]
        assert operations == [
            ("ResourceWriteSuccess", "Microsoft.Compute/snapshots/write"),
            ("ResourceWriteSuccess", "Microsoft.Authorization/locks/write"),
            ("ResourceDeleteSuccess", "Microsoft.Authorization/locks/delete"),
            ("ResourceDeleteSuccess", "Microsoft.Compute/snapshots/delete"),
        ]

    def test_resource_group_lock_blocks_deleting_resources_inside_it(self, compute, locks):
        _snapshot(compute, "snap-os", _os_disk_id(compute))
        locks.management_locks.create_or_update_at_resource_group_level(RESOURCE_GROUP, "rg-lock", ManagementLockObject(level="CanNotDelete"))
        with pytest.raises(HttpResponseError) as raised:
            compute.snapshots.begin_delete(RESOURCE_GROUP, "snap-os").result()
        assert raised.value.error.code == "ScopeLocked"


class TestArmSemantics:
    def test_missing_api_version_is_rejected(self, emulator):
        from azure.core.rest import HttpRequest
        from azure.mgmt.core import ARMPipelineClient

        client = ARMPipelineClient(base_url="https://management.azure.com", config=None, transport=emulator.transport(), policies=[])
        response = client.send_request(HttpRequest("GET", f"https://management.azure.com{VM_ID}"))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "MissingApiVersionParameter"

    def test_unknown_route_fails_loudly_naming_method_and_path(self, emulator):
        from azure.core.rest import HttpRequest
        from azure.mgmt.core import ARMPipelineClient

        from emulator.router import UnknownRouteError

        client = ARMPipelineClient(base_url="https://management.azure.com", config=None, transport=emulator.transport(), policies=[])
        with pytest.raises(UnknownRouteError, match="GET management.azure.com/subscriptions/x/providers/Microsoft.Storage/storageAccounts"):
            client.send_request(HttpRequest("GET", "https://management.azure.com/subscriptions/x/providers/Microsoft.Storage/storageAccounts?api-version=1"))
