"""One set of expectations of the Azure gateway, held against the SDK gateway on the emulator and the unit tests' fake.

The emulator-backed gateway is the real one (the azure-mgmt clients over azure-core's transport), so what
passes here for the fake is what the fast unit tests may rely on. Each world is seeded the same way; "settle"
is time passing (virtual time on the emulator, :meth:`FakeAzure.settle` on the fake).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from emulator.credentials import StaticTokenCredential
from emulator.store import ArmResource
from emulator.world import AzureEmulator
from shared.arm.ids import BATCH_ACCOUNT, BATCH_POOL, GALLERY, IMAGE, SNAPSHOT, VIRTUAL_MACHINE, parse_arm_id
from shared.arm.pools import PoolView, Targets
from shared.arm.views import BatchAccountView, DiskView, GalleryView, ImageVersionView, VirtualMachineView, VmSkuView
from shared.clients import AzureClients
from shared.gateway.failures import Waiting
from shared.gateway.protocol import AzureGateway, FixedScale, PoolUpdate
from shared.gateway.sdk import SdkGateway
from shared.settings import Settings
from tests.fake_gateway import FakeAzure
from tests.support import VALID_SETTINGS

SUB = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-imaging"
VM = parse_arm_id(f"{RG}/providers/Microsoft.Compute/virtualMachines/builder", VIRTUAL_MACHINE)
OS_DISK = f"{RG}/providers/Microsoft.Compute/disks/builder_OsDisk_1"
DATA_DISK = f"{RG}/providers/Microsoft.Compute/disks/builder_DataDisk_0"
GALLERY_ID = parse_arm_id(f"{RG}/providers/Microsoft.Compute/galleries/gallery", GALLERY)
ACCOUNT = parse_arm_id(f"/subscriptions/{SUB}/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/teambatch", BATCH_ACCOUNT)
SNAPSHOT_ID = VM.sibling(SNAPSHOT, "cip-r1-os")
IMAGE_ID = VM.sibling(IMAGE, "cip-r1")
OTHER_IMAGE_ID = VM.sibling(IMAGE, "cip-r2")
DEFINITION = GALLERY_ID.child("images", "cip-r1")
VERSION = DEFINITION.child("versions", "1.0.0")
POOL = ACCOUNT.child("pools", "render")
SIZE = "Standard_D4ds_v5"


@dataclass
class World:
    gateway: AzureGateway
    settle: Callable[[], None]


def emulator_world() -> World:
    emulator = AzureEmulator(seed=5)
    emulator.compute.add_virtual_machine(VM.id, data_disk_luns=(0,))
    emulator.compute.add_gallery(GALLERY_ID.id)
    emulator.batch.add_account(ACCOUNT.id, dedicated_core_quota=400)
    clients = AzureClients(Settings.from_environ(VALID_SETTINGS), credential=StaticTokenCredential(), transport=emulator.transport())
    return World(SdkGateway(clients), lambda: emulator.advance(timedelta(hours=2).total_seconds()))


def fake_world() -> World:
    fake = FakeAzure()
    fake.add(VirtualMachineView(VM.id, "westeurope", "Succeeded", DiskView(None, OS_DISK, "Linux"), (DiskView(0, DATA_DISK),), (), True,
                                "canonical", None, ""))
    fake.add(GalleryView(GALLERY_ID.id, "westeurope", "Succeeded"))
    fake.add(BatchAccountView(ACCOUNT.id, "westeurope", 400, 100_000, {}, False))
    fake.skus.append(VmSkuView(SIZE, "standardDDSv5Family", {"vcpus": "4"}))
    return World(fake, fake.settle)


@pytest.fixture(params=["emulator", "fake"])
def world(request) -> World:
    return emulator_world() if request.param == "emulator" else fake_world()


def snapshot_body(disk: str) -> dict:
    return {"location": "westeurope", "tags": {"cip-request": "r1"},
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}, "incremental": False}}


def image_body() -> dict:
    return {"location": "westeurope", "properties": {"hyperVGeneration": "V2", "storageProfile": {
        "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": SNAPSHOT_ID.id}}, "dataDisks": []}}}


def made_image(world: World) -> None:
    world.gateway.compute.create_snapshot(SNAPSHOT_ID, snapshot_body(OS_DISK))
    world.settle()
    world.gateway.compute.create_image(IMAGE_ID, image_body())
    world.settle()


def published_version(world: World) -> ImageVersionView:
    """The managed image, a definition for it and a version of it in two replicas, all settled."""
    made_image(world)
    compute = world.gateway.compute
    compute.create_image_definition(DEFINITION, {"location": "westeurope", "tags": {"cip-request": "r1"}, "properties": {
        "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
        "identifier": {"publisher": "p", "offer": "o", "sku": "s"}, "features": [{"name": "SecurityType", "value": "Standard"}]}})
    world.settle()
    compute.create_image_version(VERSION, {"location": "westeurope", "tags": {"cip-request": "r1"}, "properties": {
        "publishingProfile": {"targetRegions": [{"name": "West Europe", "regionalReplicaCount": 2}], "replicaCount": 1},
        "storageProfile": {"source": {"id": IMAGE_ID.id}}}})
    world.settle()
    version = compute.image_version(VERSION)
    assert version is not None
    return version


def pool_body(nodes: int) -> dict:
    return {"properties": {
        "vmSize": SIZE,
        "deploymentConfiguration": {"virtualMachineConfiguration": {"imageReference": {"id": IMAGE_ID.id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": nodes, "targetLowPriorityNodes": 0, "resizeTimeout": "PT15M"}},
        "metadata": [{"name": "cip-request", "value": "r1"}],
    }}


class TestReads:
    def test_what_does_not_exist_reads_as_none(self, world: World):
        compute, batch = world.gateway.compute, world.gateway.batch
        assert compute.snapshot(SNAPSHOT_ID) is None and compute.image(IMAGE_ID) is None
        assert compute.image_definition(DEFINITION) is None and compute.image_version(VERSION) is None
        assert compute.virtual_machine(VM.sibling(VIRTUAL_MACHINE, "nobody")) is None and compute.gallery(GALLERY_ID.sibling(GALLERY, "none")) is None
        assert batch.pool(POOL) is None and batch.account(ACCOUNT.sibling(BATCH_ACCOUNT, "none")) is None
        assert world.gateway.locks.lock(IMAGE_ID, "cip-protect") is None

    def test_a_vm_reads_with_its_managed_disks_and_marketplace_image(self, world: World):
        vm = world.gateway.compute.virtual_machine(VM)
        assert vm is not None and vm.location == "westeurope" and vm.os_disk.os_type == "Linux"
        assert vm.os_disk.managed_disk_id == OS_DISK and [(d.lun, d.managed_disk_id) for d in vm.data_disks] == [(0, DATA_DISK)]
        assert vm.from_marketplace_image and vm.image_publisher == "canonical" and vm.plan is None and vm.extensions == ()

    def test_an_account_reads_with_its_region_and_quota_and_the_region_offers_sizes_with_their_cores(self, world: World):
        account = world.gateway.batch.account(ACCOUNT)
        assert account is not None and account.location == "westeurope" and account.dedicated_core_quota == 400
        sizes = {sku.name.lower(): sku for sku in world.gateway.batch.vm_skus(SUB, "westeurope")}
        assert sizes[SIZE.lower()].cores == 4


class TestCompute:
    def test_a_put_is_under_way_until_it_settles_and_a_second_put_meanwhile_waits(self, world: World):
        compute = world.gateway.compute
        assert compute.create_snapshot(SNAPSHOT_ID, snapshot_body(OS_DISK)) is None
        under_way = compute.snapshot(SNAPSHOT_ID)
        assert under_way is not None and under_way.provisioning_state not in ("Succeeded", "Failed")
        assert isinstance(compute.create_snapshot(SNAPSHOT_ID, snapshot_body(OS_DISK)), Waiting)
        world.settle()
        done = compute.snapshot(SNAPSHOT_ID)
        assert done is not None and done.provisioning_state == "Succeeded" and done.location == "westeurope"

    def test_an_image_reads_back_with_what_it_was_made_from(self, world: World):
        made_image(world)
        image = world.gateway.compute.image(IMAGE_ID)
        assert image is not None and image.provisioning_state == "Succeeded"
        assert (image.os_type, image.os_state, image.sources) == ("Linux", "Generalized", (SNAPSHOT_ID.id,))

    def test_a_version_reads_its_replicas_by_region_and_gets_more_regions_sent_back_with_everything_else(self, world: World):
        compute = world.gateway.compute
        version = published_version(world)
        definition = compute.image_definition(DEFINITION)
        assert definition is not None and (definition.os_type, definition.hyper_v_generation) == ("Linux", "V2")
        assert definition.tags == {"cip-request": "r1"} and definition.features == {"securitytype": "Standard"}
        assert version.replicas == {"westeurope": 2} and version.sources == (IMAGE_ID.id,)
        assert not version.exclude_from_latest and version.end_of_life is None
        assert compute.replicate_image_version(VERSION, version, [("westeurope", 2), ("northeurope", 1)]) is None
        world.settle()
        again = compute.image_version(VERSION)
        assert again is not None and again.replicas == {"westeurope": 2, "northeurope": 1} and again.sources == (IMAGE_ID.id,)
        assert again.tags == {"cip-request": "r1"} and again.provisioning_state == "Succeeded"


    def test_a_retired_version_reads_back_excluded_from_latest_with_its_end_of_life_and_keeps_everything_else(self, world: World):
        compute = world.gateway.compute
        version = published_version(world)
        end_of_life = datetime(2026, 3, 1, tzinfo=UTC)
        assert compute.retire_image_version(VERSION, version, end_of_life) is None
        world.settle()
        retired = compute.image_version(VERSION)
        assert retired is not None and retired.exclude_from_latest and retired.end_of_life == end_of_life
        assert (retired.replicas, retired.sources, retired.tags) == (version.replicas, version.sources, version.tags)
        assert retired.provisioning_state == "Succeeded"


class TestPools:
    def test_a_pool_is_created_only_if_missing_listed_with_its_account_and_grows_to_its_target(self, world: World):
        made_image(world)
        batch = world.gateway.batch
        assert batch.create_pool(POOL, pool_body(2)) is None
        assert isinstance(batch.create_pool(POOL, pool_body(3)), Waiting)
        world.settle()
        [listed] = list(batch.pools(ACCOUNT))
        pool = batch.pool(POOL)
        assert isinstance(pool, PoolView) and pool == listed
        assert (pool.request_id, pool.image_id, pool.target_dedicated, pool.current_dedicated) == ("r1", IMAGE_ID.id, 2, 2)
        assert pool.allocation_state == "Steady" and pool.fixed_scale and pool.etag

    def test_a_patch_needs_the_etag_it_was_read_with_and_a_gone_pool_is_said_so(self, world: World):
        made_image(world)
        batch = world.gateway.batch
        batch.create_pool(POOL, pool_body(2))
        world.settle()
        pool = batch.pool(POOL)
        assert pool is not None
        resize = FixedScale(Targets(4, 0), timedelta(minutes=20))
        assert batch.update_pool(POOL, pool.etag, {**pool.metadata, "note": "a"}, resize) is PoolUpdate.UPDATED
        assert batch.update_pool(POOL, pool.etag, {**pool.metadata, "note": "b"}) is PoolUpdate.CHANGED
        resized = batch.pool(POOL)
        assert resized is not None and resized.target_dedicated == 4 and resized.metadata["note"] == "a"
        assert resized.resize_timeout == timedelta(minutes=20)
        assert batch.update_pool(POOL, resized.etag, resized.metadata, FixedScale(Targets(6, 0), timedelta(minutes=20))) is PoolUpdate.REFUSED
        gone = parse_arm_id(f"{ACCOUNT.id}/pools/gone", BATCH_POOL)
        assert batch.update_pool(gone, resized.etag, {}) is PoolUpdate.GONE


    def test_a_stopped_resize_goes_stopping_then_steady_with_resize_stopped_keeping_its_nodes(self, world: World):
        made_image(world)
        batch = world.gateway.batch
        batch.create_pool(POOL, pool_body(2))
        assert batch.stop_resize(POOL) is PoolUpdate.UPDATED
        stopping = batch.pool(POOL)
        assert stopping is not None and stopping.allocation_state == "Stopping" and stopping.current_dedicated == 0
        world.settle()
        stopped = batch.pool(POOL)
        assert stopped is not None and (stopped.allocation_state, stopped.current_dedicated, stopped.error_codes) == ("Steady", 0, ("ResizeStopped",))
        assert batch.stop_resize(POOL) is PoolUpdate.UPDATED  # a Steady pool: nothing to stop, nothing changes
        assert batch.pool(POOL) == stopped
        assert batch.stop_resize(parse_arm_id(f"{ACCOUNT.id}/pools/gone", BATCH_POOL)) is PoolUpdate.GONE

    def test_an_image_change_is_refused_while_the_pool_has_nodes_and_taken_once_it_is_drained_to_zero(self, world: World):
        made_image(world)
        world.gateway.compute.create_image(OTHER_IMAGE_ID, image_body())
        batch = world.gateway.batch
        batch.create_pool(POOL, pool_body(2))
        world.settle()
        pool = batch.pool(POOL)
        assert pool is not None and pool.node_agent_sku_id == "batch.node.ubuntu 24.04" and pool.security_type is None
        assert pool.vm_configuration == {"imageReference": {"id": IMAGE_ID.id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}
        moved_to = {**pool.vm_configuration, "imageReference": {"id": OTHER_IMAGE_ID.id}}
        assert batch.update_pool_image(POOL, pool.etag, moved_to, pool.metadata) is PoolUpdate.REFUSED
        drain = FixedScale(Targets(0, 0), timedelta(minutes=15), node_deallocation_option="TaskCompletion")
        assert batch.update_pool(POOL, pool.etag, pool.metadata, drain) is PoolUpdate.UPDATED
        world.settle()
        drained = batch.pool(POOL)
        assert drained is not None and drained.idle and drained.image_id == IMAGE_ID.id
        assert batch.update_pool_image(POOL, pool.etag, moved_to, pool.metadata) is PoolUpdate.CHANGED
        assert batch.update_pool_image(POOL, drained.etag, moved_to, {**drained.metadata, "cip-request": "r2"}) is PoolUpdate.UPDATED
        moved = batch.pool(POOL)
        assert moved is not None and moved.image_id == OTHER_IMAGE_ID.id and moved.request_id == "r2"
        assert moved.node_agent_sku_id == "batch.node.ubuntu 24.04" and moved.target_dedicated == 0


class TestLocksAndGraph:
    def test_a_lock_reads_back_with_its_notes_is_listed_in_its_subscription_and_goes(self, world: World):
        made_image(world)
        locks = world.gateway.locks
        assert locks.create_lock(IMAGE_ID, "cip-protect", "custom-image-pools: in use") is None
        lock = locks.lock(IMAGE_ID, "cip-protect")
        assert lock is not None and lock.notes == "custom-image-pools: in use" and lock.level == "CanNotDelete"
        listed = locks.subscription_locks(SUB)
        assert [item.id.lower() for item in listed.items] == [lock.id.lower()] and listed.pages == 1
        locks.delete_lock(IMAGE_ID, "cip-protect")
        assert locks.lock(IMAGE_ID, "cip-protect") is None

    def test_resource_graph_lists_which_of_the_ids_exist(self, world: World):
        made_image(world)
        missing = VM.sibling(IMAGE, "gone")
        answer = world.gateway.graph.present([IMAGE_ID, SNAPSHOT_ID, missing])
        assert answer.present == {IMAGE_ID.key(), SNAPSHOT_ID.key()} and answer.queries == 1




class TestActivityLog:
    def test_each_entry_read_carries_every_field_the_audit_reads(self):
        emulator = AzureEmulator(seed=5)
        clients = AzureClients(Settings.from_environ(VALID_SETTINGS), credential=StaticTokenCredential(), transport=emulator.transport())
        gateway = SdkGateway(clients)
        emulator.store.put(ArmResource(IMAGE_ID.id, IMAGE, "westeurope", {"provisioningState": "Succeeded"}))
        start = emulator.now()
        gateway.locks.create_lock(IMAGE_ID, "cip-protect", "custom-image-pools: in use")
        gateway.locks.delete_lock(IMAGE_ID, "cip-protect")
        emulator.advance(timedelta(minutes=20).total_seconds())  # entries are listed minutes after the call
        read = gateway.monitor.activity_log(SUB, "rg-imaging", start, emulator.now())
        lock = f"{IMAGE_ID.id}/providers/Microsoft.Authorization/locks/cip-protect"
        assert [(e.operation, e.status, e.resource_id.lower()) for e in read.items] == [
            ("Microsoft.Authorization/locks/delete", "Succeeded", lock.lower()),
            ("Microsoft.Authorization/locks/write", "Succeeded", lock.lower())]
        assert all(e.event_data_id for e in read.items) and len({e.event_data_id for e in read.items}) == 2
