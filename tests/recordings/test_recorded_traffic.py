"""The emulator replays recorded Azure traffic: same statuses, LRO headers, state sequences and fields.

Each excerpt under ``tests/data/recordings/`` is real ARM traffic recorded by the
Azure SDK for Python or Azure CLI test suites (provenance in SOURCES.md). Each
test seeds the emulator so the recorded request makes sense, sends it through
the real SDK client (ids rewritten to the emulator world's), and compares what
Azure answered with what the emulator answers: status codes, which LRO headers
are present, the provisioningState sequence the SDK observes, error codes and
body shapes, and every field the project reads. Values that vary per call
(ids, times, ETags) are compared by presence and type only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject

from emulator.world import AzureEmulator
from tests.support import RESOURCE_GROUP, RG_ID, SUBSCRIPTION, StaticTokenCredential, keys_missing, shape_of

RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "recordings"
LRO_HEADERS = ("Azure-AsyncOperation", "Location", "Retry-After")
ARM = "https://management.azure.com"
VM_ID = f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/builder"
ACCOUNT = "acct"
ACCOUNT_ID = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/{ACCOUNT}"


def recording(name: str) -> list[dict]:
    return json.loads((RECORDINGS / name).read_text())["interactions"]


class Exchange:
    """One call as the SDK saw it on the wire."""

    def __init__(self, method: str, url: str, status: int, headers: dict[str, str], body: Any) -> None:
        self.method, self.url, self.status, self.headers, self.body = method, url, status, headers, body

    def has_header(self, name: str) -> bool:
        return any(key.lower() == name.lower() for key in self.headers)


class TapTransport(HttpTransport):
    """Passes every call to the emulator's transport and keeps a copy, as the recordings do."""

    def __init__(self, emulator: AzureEmulator) -> None:
        self._inner = emulator.transport()
        self.exchanges: list[Exchange] = []

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def sleep(self, duration: float) -> None:
        self._inner.sleep(duration)

    def send(self, request, **kwargs):
        response = self._inner.send(request, **kwargs)
        response.read()
        text = response.text()
        self.exchanges.append(Exchange(request.method, request.url, response.status_code, dict(response.headers),
                                       json.loads(text) if text else None))
        return response

    def calls(self, method: str, fragment: str = "") -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and fragment.lower() in e.url.lower()]


def lro_headers(headers: dict) -> set[str]:
    present = {key.lower() for key in headers}
    return {name for name in LRO_HEADERS if name.lower() in present}


def missing_except(recorded: dict, answered: dict, unmodelled: set[str]) -> list[str]:
    """Recorded JSON paths the emulator lacks, minus the ones it deliberately does not model."""
    return [path for path in keys_missing(shape_of(recorded), answered) if path not in unmodelled]


def status_sequence(interactions: list[dict]) -> list[str]:
    """What an LRO poller observes: the initial provisioningState, each polled status, the final state."""
    sequence = [interactions[0]["response"]["body"]["properties"]["provisioningState"]]
    for exchange in interactions[1:-1]:
        sequence.append(exchange["response"]["body"]["status"])
    sequence.append(interactions[-1]["response"]["body"]["properties"]["provisioningState"])
    return sequence


def observed_sequence(tap: TapTransport, resource_fragment: str) -> list[str]:
    put = tap.calls("PUT", resource_fragment)[0]
    sequence = [put.body["properties"]["provisioningState"]]
    sequence += [e.body["status"] for e in tap.exchanges if "/operations/" in e.url.lower() and e.method == "GET"]
    final = [e for e in tap.calls("GET", resource_fragment) if "/operations/" not in e.url.lower()][-1]
    sequence.append(final.body["properties"]["provisioningState"])
    return sequence


def collapse(sequence: list[str]) -> list[str]:
    """The states in order without the polls that found the operation still running: how many polls
    see InProgress is timing (Azure's image took 5 s, the emulator's takes virtual minutes), not behaviour."""
    return [state for i, state in enumerate(sequence) if i == 0 or state != "InProgress"]


def polls_in_progress_then_succeed(sequence: list[str]) -> bool:
    """Between the initial answer and the final GET the poller sees only InProgress, then one Succeeded."""
    polls = sequence[1:-1]
    return bool(polls) and polls[-1] == "Succeeded" and all(state == "InProgress" for state in polls[:-1])


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=11)
    world.compute.add_virtual_machine(VM_ID, data_disk_luns=(12,))
    world.batch.add_account(ACCOUNT_ID)
    return world


@pytest.fixture
def tap(emulator) -> TapTransport:
    return TapTransport(emulator)


@pytest.fixture
def compute(tap) -> ComputeManagementClient:
    return ComputeManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=tap, polling_interval=5)


@pytest.fixture
def batch(tap) -> BatchManagementClient:
    return BatchManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=tap, polling_interval=5)


@pytest.fixture
def locks(tap) -> ManagementLockClient:
    return ManagementLockClient(StaticTokenCredential(), SUBSCRIPTION, transport=tap)


def _os_disk_id(compute) -> str:
    return compute.virtual_machines.get(RESOURCE_GROUP, "builder").storage_profile.os_disk.managed_disk.id


def _snapshot(compute, name: str, disk_id: str):
    body = {"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id}}}
    return compute.snapshots.begin_create_or_update(RESOURCE_GROUP, name, body).result()


def _image(compute, name: str, snapshot_id: str, hyper_v_generation: str = "V1"):
    body = {"location": "westeurope", "properties": {"hyperVGeneration": hyper_v_generation, "storageProfile": {
        "osDisk": {"snapshot": {"id": snapshot_id}, "osType": "Linux", "osState": "Generalized"}}}}
    return compute.images.begin_create_or_update(RESOURCE_GROUP, name, body).result()


# Fields of the recorded responses the emulator does not model; none is read by the project.
_SNAPSHOT_UNMODELLED = {
    "/properties/creationData/sourceUniqueId", "/properties/encryption", "/properties/networkAccessPolicy",
    "/properties/diskSizeBytes",
}
_IMAGE_UNMODELLED = {"/properties/storageProfile/osDisk/diskSizeGB", "/properties/storageProfile/osDisk/storageAccountType",
                     "/properties/storageProfile/zoneResilient"}


class TestSnapshotRecording:
    def test_given_a_managed_disk_when_a_snapshot_is_put_then_the_lro_headers_states_and_read_fields_match_azure(self, compute, tap):
        # GIVEN Azure's recorded snapshot PUT, its polls and the final GET
        recorded = recording("compute-snapshot-put-get.json")
        put = recorded[0]
        disk_id = _os_disk_id(compute)
        body = {**put["request"]["body"], "location": "westeurope"}
        # The recording names the disk by the legacy "sourceUri"; Azure answers with it as sourceResourceId, the field the project sends.
        body["properties"] = {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id}}
        # WHEN the same PUT goes through the SDK's poller
        snapshot = compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "snap1", body).result()
        # THEN the initial answer has Azure's status, both LRO headers and state
        initial = tap.calls("PUT", "/snapshots/snap1")[0]
        assert initial.status == put["response"]["status"] == 202
        assert lro_headers(initial.headers) == lro_headers(put["response"]["headers"]) == {"Azure-AsyncOperation", "Location"}
        assert initial.body["properties"]["provisioningState"] == put["response"]["body"]["properties"]["provisioningState"] == "Updating"
        # AND the poller sees the same state sequence
        observed = observed_sequence(tap, "/snapshots/snap1")
        assert collapse(observed) == collapse(status_sequence(recorded)) == ["Updating", "Succeeded", "Succeeded"]
        assert polls_in_progress_then_succeed(observed) and polls_in_progress_then_succeed(status_sequence(recorded))
        # AND the final resource has the recorded shape and every field the project reads
        final = tap.calls("GET", "/snapshots/snap1")[-1]
        assert missing_except(recorded[-1]["response"]["body"], final.body, _SNAPSHOT_UNMODELLED) == []
        assert snapshot.provisioning_state == "Succeeded" and snapshot.location == "westeurope"
        assert snapshot.creation_data.source_resource_id.lower() == disk_id.lower()
        assert snapshot.id.lower() == f"{RG_ID}/providers/Microsoft.Compute/snapshots/snap1".lower()

    def test_given_a_snapshot_when_it_is_read_then_the_get_answers_the_recorded_shape(self, compute, tap):
        recorded = recording("compute-snapshot-put-get.json")[-1]
        _snapshot(compute, "snap1", _os_disk_id(compute))
        # WHEN it is read
        read = compute.snapshots.get(RESOURCE_GROUP, "snap1")
        # THEN status, shape and the fields the project reads match
        answer = tap.exchanges[-1]
        assert answer.status == recorded["response"]["status"] == 200
        assert missing_except(recorded["response"]["body"], answer.body, _SNAPSHOT_UNMODELLED) == []
        assert read.provisioning_state == "Succeeded" and read.os_type == "Linux" and read.tags is None


class TestManagedImageRecording:
    def test_given_a_snapshot_when_an_image_is_put_then_status_headers_states_and_storage_profile_match_azure(self, compute, tap):
        # GIVEN Azure's recorded image PUT from a snapshot, its poll and the final GET
        recorded = recording("compute-image-put-get.json")
        snapshot = _snapshot(compute, "snap1", _os_disk_id(compute))
        tap.exchanges.clear()
        request = recorded[0]["request"]["body"]
        body = {**request, "location": "westeurope"}
        body["properties"] = {**request["properties"], "storageProfile": {
            **request["properties"]["storageProfile"],
            "osDisk": {**request["properties"]["storageProfile"]["osDisk"], "snapshot": {"id": snapshot.id.lstrip("/")}}}}
        # WHEN it goes through the SDK's poller
        image = compute.images.begin_create_or_update(RESOURCE_GROUP, "image1", body).result()
        # THEN the initial answer matches: 201, Azure-AsyncOperation only, Creating
        initial = tap.calls("PUT", "/images/image1")[0]
        assert initial.status == recorded[0]["response"]["status"] == 201
        assert lro_headers(initial.headers) == lro_headers(recorded[0]["response"]["headers"]) == {"Azure-AsyncOperation"}
        observed = observed_sequence(tap, "/images/image1")
        assert collapse(observed) == collapse(status_sequence(recorded)) == ["Creating", "Succeeded", "Succeeded"]
        assert polls_in_progress_then_succeed(observed)
        # AND the body and the fields the project reads (intake, protection, pool guard) match
        assert missing_except(recorded[0]["response"]["body"], initial.body, _IMAGE_UNMODELLED) == []
        final = tap.calls("GET", "/images/image1")[-1]
        assert missing_except(recorded[-1]["response"]["body"], final.body, _IMAGE_UNMODELLED) == []
        os_disk = image.storage_profile.os_disk
        assert os_disk.os_type == "Linux" and os_disk.os_state == "Generalized"
        assert os_disk.snapshot.id.lower() == snapshot.id.lower() and image.storage_profile.data_disks == []
        assert image.provisioning_state == "Succeeded" and image.hyper_v_generation == "V1" and image.location == "westeurope"


_GALLERY_IMAGE_UNMODELLED = {"/properties/architecture"}


class TestGalleryImageDefinitionRecording:
    def test_given_a_gallery_when_an_image_definition_is_put_then_status_headers_and_states_match_azure(self, emulator, compute, tap):
        recorded = recording("compute-gallery-image-put.json")
        emulator.compute.add_gallery(f"{RG_ID}/providers/Microsoft.Compute/galleries/gallery1")
        body = {**recorded[0]["request"]["body"], "location": "westeurope"}
        # WHEN the recorded definition is PUT through the SDK's poller, at the recording's api-version (from 2025-03-03 a
        # definition without a generation or security type is V2 and TrustedLaunchSupported instead: tests/emulator)
        api_version = recorded[0]["request"]["uri"].rsplit("api-version=", 1)[1]
        definition = compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, "gallery1", "def1", body, api_version=api_version).result()
        # THEN 201, Azure-AsyncOperation only, Creating then Succeeded, and the recorded shape
        initial = tap.calls("PUT", "/images/def1")[0]
        assert initial.status == recorded[0]["response"]["status"] == 201
        assert lro_headers(initial.headers) == lro_headers(recorded[0]["response"]["headers"]) == {"Azure-AsyncOperation"}
        observed = observed_sequence(tap, "/images/def1")
        assert collapse(observed) == collapse(status_sequence(recorded)) == ["Creating", "Succeeded", "Succeeded"]
        assert polls_in_progress_then_succeed(observed)
        assert missing_except(recorded[0]["response"]["body"], initial.body, _GALLERY_IMAGE_UNMODELLED) == []
        final = tap.calls("GET", "/images/def1")[-1]
        assert missing_except(recorded[-1]["response"]["body"], final.body, _GALLERY_IMAGE_UNMODELLED) == []
        # AND Azure's default generation when none is sent
        assert definition.hyper_v_generation == recorded[-1]["response"]["body"]["properties"]["hyperVGeneration"] == "V1"
        assert definition.os_type == "Windows" and definition.identifier.sku == "mySkuName"


# publishingProfile.storageAccountType / excludeFromLatest and the per-disk sizes are not modelled;
# the recorded version was published from a snapshot (osDiskImage), the project publishes from a managed image.
_VERSION_UNMODELLED = {"/properties/publishingProfile/storageAccountType", "/properties/publishingProfile/excludeFromLatest",
                       "/properties/storageProfile/osDiskImage"}


class TestGalleryImageVersionRecording:
    def test_given_an_image_when_a_version_is_put_then_status_headers_and_replication_states_match_azure(self, emulator, compute, tap):
        # GIVEN a managed image and a gallery definition of the same generation
        recorded = recording("compute-gallery-image-version-put.json")
        emulator.compute.add_gallery(f"{RG_ID}/providers/Microsoft.Compute/galleries/gallery1")
        image = _image(compute, "image1", _snapshot(compute, "snap1", _os_disk_id(compute)).id)
        compute.gallery_images.begin_create_or_update(RESOURCE_GROUP, "gallery1", "def1", {
            "location": "westeurope", "properties": {"osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V1",
                                                     "identifier": {"publisher": "p", "offer": "o", "sku": "s"}}}).result()
        tap.exchanges.clear()
        # WHEN the recorded version PUT (its publishing profile; the source as the project sends it) goes through the poller
        request = recorded[0]["request"]["body"]["properties"]
        body = {"location": "westeurope", "properties": {
            "publishingProfile": {"targetRegions": [{**request["publishingProfile"]["targetRegions"][0], "name": "westeurope"}]},
            "storageProfile": {"source": {"id": image.id}}}}
        version = compute.gallery_image_versions.begin_create_or_update(RESOURCE_GROUP, "gallery1", "def1", "1.0.0", body).result()
        # THEN 201, Azure-AsyncOperation only, Creating, then InProgress polls until Succeeded
        initial = tap.calls("PUT", "/versions/1.0.0")[0]
        assert initial.status == recorded[0]["response"]["status"] == 201
        assert lro_headers(initial.headers) == lro_headers(recorded[0]["response"]["headers"]) == {"Azure-AsyncOperation"}
        observed = observed_sequence(tap, "/versions/1.0.0")
        assert collapse(observed) == collapse(status_sequence(recorded)) == ["Creating", "Succeeded", "Succeeded"]
        assert polls_in_progress_then_succeed(observed) and polls_in_progress_then_succeed(status_sequence(recorded))
        # Replication takes minutes in Azure (recorded polls over 12 minutes), so the poller sees it running.
        assert "InProgress" in observed and "InProgress" in status_sequence(recorded)
        # AND the recorded shape, with what the project reads
        assert missing_except(recorded[0]["response"]["body"], initial.body, _VERSION_UNMODELLED) == []
        final = tap.calls("GET", "/versions/1.0.0")[-1]
        assert missing_except(recorded[-1]["response"]["body"], final.body, _VERSION_UNMODELLED) == []
        assert version.provisioning_state == "Succeeded" and version.location == "westeurope"
        assert version.storage_profile.source.id.lower() == image.id.lower()
        assert version.publishing_profile.target_regions[0].regional_replica_count == 2


# Lock bodies carry no location, tags or etag; Azure answers {properties, id, type, name}.
def _lock_shape(body: dict) -> dict:
    return {key: shape_of(value) for key, value in body.items()}


class TestLockRecordings:
    def test_given_a_resource_when_a_lock_is_put_read_updated_and_deleted_at_its_scope_then_each_answer_matches_azure(self, compute, locks, tap):
        recorded = recording("locks-resource-scope.json")
        put, listed, get, update, delete = recorded[:5]
        snapshot = _snapshot(compute, "snap1", _os_disk_id(compute))
        tap.exchanges.clear()
        # WHEN the recorded lock calls are made at the snapshot's scope
        created = locks.management_locks.create_or_update_by_scope(snapshot.id, "keep", ManagementLockObject(**put["request"]["body"]["properties"]))
        read = locks.management_locks.get_by_scope(snapshot.id, "keep")
        updated = locks.management_locks.create_or_update_by_scope(snapshot.id, "keep", ManagementLockObject(**update["request"]["body"]["properties"]))
        locks.management_locks.delete_by_scope(snapshot.id, "keep")
        put_answer, get_answer, update_answer, delete_answer = tap.exchanges
        # THEN statuses: 201 create, 200 read, 200 replace, 200 delete with no body
        assert [put_answer.status, get_answer.status, update_answer.status, delete_answer.status] == [
            put["response"]["status"], get["response"]["status"], update["response"]["status"], delete["response"]["status"]] == [201, 200, 200, 200]
        assert delete_answer.body is None and delete["response"]["body"] is None
        # AND the bodies have exactly Azure's fields
        assert _lock_shape(put_answer.body) == _lock_shape(put["response"]["body"])
        assert _lock_shape(get_answer.body) == _lock_shape(get["response"]["body"])
        assert _lock_shape(update_answer.body) == _lock_shape(update["response"]["body"])
        # AND the id is the lock's path under the resource, as the project's lock cleanup parses it
        assert put_answer.body["id"].lower() == f"{snapshot.id}/providers/Microsoft.Authorization/locks/keep".lower()
        assert created.level == "CanNotDelete" and read.level == "CanNotDelete"
        assert updated.level == "ReadOnly" and updated.notes == "notes000004"

    def test_given_a_lock_on_a_resource_when_the_subscription_s_locks_are_listed_then_the_resource_lock_is_listed_as_azure_does(self, compute, locks, tap):
        # GIVEN Azure's subscription listing, which includes a lock placed on a resource below it
        recorded = recording("locks-resource-scope.json")
        listed, rg_listed = recorded[1], recorded[5]
        snapshot = _snapshot(compute, "snap1", _os_disk_id(compute))
        locks.management_locks.create_or_update_by_scope(snapshot.id, "keep", ManagementLockObject(level="CanNotDelete"))
        rg_lock = locks.management_locks.create_or_update_at_resource_group_level(RESOURCE_GROUP, "rglock", ManagementLockObject(level="CanNotDelete"))
        tap.exchanges.clear()
        # WHEN locks are listed for the subscription and for the resource group
        at_subscription = list(locks.management_locks.list_at_subscription_level())
        at_group = list(locks.management_locks.list_at_resource_group_level(RESOURCE_GROUP))
        # THEN the subscription list has the resource's lock, as recorded; both answer Azure's list shape
        assert tap.exchanges[0].status == listed["response"]["status"] == 200
        assert set(tap.exchanges[0].body) == set(listed["response"]["body"]) == {"value"}
        assert _lock_shape(tap.exchanges[0].body["value"][0]) == _lock_shape(listed["response"]["body"]["value"][0])
        assert {lock.name for lock in at_subscription} == {"keep", "rglock"}
        assert rg_lock.name in {lock.name for lock in at_group}
        assert set(tap.exchanges[-1].body) == set(rg_listed["response"]["body"]) == {"value"}

    def test_given_a_can_not_delete_lock_when_the_resource_is_deleted_then_azure_s_409_scope_locked_error_is_answered(self, compute, locks, tap):
        # GIVEN Azure's recorded refusal of a DELETE under a CanNotDelete lock on the resource itself
        recorded = recording("locks-scope-locked-delete.json")[0]["response"]
        snapshot = _snapshot(compute, "snap1", _os_disk_id(compute))
        locks.management_locks.create_or_update_by_scope(snapshot.id, "keep", ManagementLockObject(level="CanNotDelete"))
        # WHEN the snapshot is deleted
        with pytest.raises(HttpResponseError) as raised:
            compute.snapshots.begin_delete(RESOURCE_GROUP, "snap1").result()
        # THEN 409, code ScopeLocked, Azure's error body shape and message form, and no LRO started
        answer = tap.calls("DELETE", "/snapshots/snap1")[-1]
        assert answer.status == raised.value.status_code == recorded["status"] == 409
        assert raised.value.error.code == recorded["body"]["error"]["code"] == "ScopeLocked"
        assert shape_of(answer.body) == shape_of(recorded["body"])
        expected = recorded["body"]["error"]["message"].replace("/subscriptions/******/resourceGroups/acctest0001/providers/Microsoft.Insights/dataCollectionRules/acctest0001", snapshot.id)
        assert answer.body["error"]["message"].lower() == expected.lower()
        assert lro_headers(answer.headers) == set()
        assert compute.snapshots.get(RESOURCE_GROUP, "snap1").provisioning_state == "Succeeded"


def _pool_body(recorded_request: dict, image_id: str) -> dict:
    """The recorded pool PUT, with the custom image the project deploys instead of a Marketplace one."""
    properties = dict(recorded_request["properties"])
    vm_config = dict(properties["deploymentConfiguration"]["virtualMachineConfiguration"])
    vm_config.update({"imageReference": {"id": image_id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"})
    vm_config.pop("windowsConfiguration")
    properties.update({"vmSize": "Standard_D4ds_v5", "deploymentConfiguration": {"virtualMachineConfiguration": vm_config}})
    return {"properties": properties}


# Fields of Azure's pool the emulator does not model; none is read by the project.
_POOL_UNMODELLED = {
    "/properties/deploymentConfiguration/virtualMachineConfiguration/imageReference/publisher",
    "/properties/deploymentConfiguration/virtualMachineConfiguration/imageReference/offer",
    "/properties/deploymentConfiguration/virtualMachineConfiguration/imageReference/sku",
    "/properties/deploymentConfiguration/virtualMachineConfiguration/imageReference/version",
    "/properties/deploymentConfiguration/virtualMachineConfiguration/windowsConfiguration",
}


class TestBatchPoolRecordings:
    @pytest.fixture
    def image_id(self, compute) -> str:
        return _image(compute, "image1", _snapshot(compute, "snap1", _os_disk_id(compute)).id, "V2").id

    def test_given_an_account_when_a_pool_is_put_then_the_answer_is_synchronous_with_an_etag_and_azure_s_fields(self, batch, tap, image_id):
        recorded = recording("batch-pools.json")[0]
        tap.exchanges.clear()
        # WHEN the recorded 0/0 pool is created
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "pool1", _pool_body(recorded["request"]["body"], image_id),
                                 match_condition=MatchConditions.IfMissing)
        answer = tap.exchanges[-1]
        # THEN 200 with the ETag header and no LRO, as Azure answers
        assert answer.status == recorded["response"]["status"] == 200
        assert answer.has_header("ETag") and lro_headers(answer.headers) == lro_headers(recorded["response"]["headers"]) == set()
        assert missing_except(recorded["response"]["body"], answer.body, _POOL_UNMODELLED) == []
        # AND what the project reads from a pool
        assert pool.etag == answer.body["etag"] and pool.provisioning_state == "Succeeded"
        assert pool.current_dedicated_nodes == 0 and pool.current_low_priority_nodes == 0
        assert pool.scale_settings.fixed_scale.resize_timeout is not None
        # Even a 0/0 pool starts with a resize: Azure answered Resizing and a resizeOperationStatus.
        assert pool.allocation_state == recorded["response"]["body"]["properties"]["allocationState"] == "Resizing"
        assert pool.resize_operation_status.start_time is not None and pool.resize_operation_status.target_dedicated_nodes == 0

    def test_given_a_pool_when_it_is_read_and_listed_then_get_and_list_answer_azure_s_shapes(self, batch, tap, image_id):
        recorded = recording("batch-pools.json")
        listed, read = recorded[1], recorded[3]
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "pool1", _pool_body(recorded[0]["request"]["body"], image_id))
        tap.exchanges.clear()
        # WHEN the pool is read and the account's pools listed
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "pool1")
        pools = list(batch.pool.list_by_batch_account(RESOURCE_GROUP, ACCOUNT))
        get_answer, list_answer = tap.exchanges
        # THEN the GET carries the ETag header and Azure's fields; the list is Azure's {value} page
        assert get_answer.status == read["response"]["status"] == 200 and get_answer.has_header("ETag")
        assert missing_except(read["response"]["body"], get_answer.body, _POOL_UNMODELLED | {"/properties/autoScaleRun", "/properties/scaleSettings/autoScale"}) == []
        assert list_answer.status == listed["response"]["status"] == 200
        assert set(list_answer.body) == set(listed["response"]["body"]) == {"value"}
        assert missing_except(listed["response"]["body"]["value"][0], list_answer.body["value"][0], _POOL_UNMODELLED) == []
        assert [p.name for p in pools] == ["pool1"] and pools[0].etag == pool.etag
        assert pool.resize_operation_status.start_time is not None

    def test_given_a_pool_when_it_is_patched_then_the_answer_is_synchronous_with_a_new_etag(self, batch, tap, image_id):
        recorded = recording("batch-pools.json")[2]
        created = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "pool1", _pool_body(recording("batch-pools.json")[0]["request"]["body"], image_id))
        tap.exchanges.clear()
        # WHEN the pool is patched as the project does (metadata, If-Match)
        updated = batch.pool.update(RESOURCE_GROUP, ACCOUNT, "pool1", {"properties": {"metadata": [{"name": "k", "value": "v"}]}},
                                    etag=created.etag, match_condition=MatchConditions.IfNotModified)
        answer = tap.exchanges[-1]
        # THEN 200, a new ETag in header and body, and no LRO: Azure's recorded PATCH answer
        assert answer.status == recorded["response"]["status"] == 200
        assert answer.has_header("ETag") and lro_headers(answer.headers) == lro_headers(recorded["response"]["headers"]) == set()
        assert updated.etag != created.etag and answer.headers["ETag"] == updated.etag
        assert recorded["response"]["body"]["etag"] != recording("batch-pools.json")[0]["response"]["body"]["etag"]
        assert [(m.name, m.value) for m in updated.metadata] == [("k", "v")]

    def test_given_a_pool_when_it_is_deleted_then_azure_s_202_and_location_polling_are_answered(self, batch, tap, image_id):
        recorded = recording("batch-pools.json")
        delete, result = recorded[4], recorded[5]
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "pool1", _pool_body(recorded[0]["request"]["body"], image_id))
        tap.exchanges.clear()
        # WHEN the pool is deleted through the SDK's poller
        batch.pool.begin_delete(RESOURCE_GROUP, ACCOUNT, "pool1").result()
        # THEN 202 with a Location (and no Azure-AsyncOperation) at poolOperationResults/delete-<pool>, polled to 200
        initial = tap.calls("DELETE", "/pools/pool1")[0]
        assert initial.status == delete["response"]["status"] == 202
        assert lro_headers(initial.headers) == lro_headers(delete["response"]["headers"]) == {"Location"}
        location = next(v for k, v in initial.headers.items() if k.lower() == "location")
        assert location.split("?")[0].lower().endswith("/poolOperationResults/delete-pool1".lower())
        assert delete["response"]["headers"]["Location"].split("?")[0].endswith("/poolOperationResults/delete-test_iaas_pool")
        polls = tap.calls("GET", "/poolOperationResults/")
        assert polls[-1].status == result["response"]["status"] == 200 and polls[-1].body is None


# Fields Azure reports for a VM or disk that the emulator does not seed; none is read by the project.
_VM_UNMODELLED = {"/properties/osProfile/linuxConfiguration/provisionVMAgent", "/properties/osProfile/linuxConfiguration/patchSettings",
                  "/properties/osProfile/secrets", "/properties/osProfile/allowExtensionOperations",
                  "/properties/osProfile/requireGuestProvisionSignal", "/properties/storageProfile/dataDisks[0]/toBeDetached"}
_DISK_UNMODELLED = {"/sku/tier", "/properties/diskIOPSReadWrite", "/properties/diskMBpsReadWrite", "/properties/diskSizeBytes",
                    "/properties/uniqueId", "/properties/networkAccessPolicy"}


class TestReadRecordings:
    def test_given_a_vm_with_managed_disks_when_it_is_read_then_the_get_has_azure_s_shape_and_what_intake_reads(self, compute, tap):
        recorded = recording("compute-vm-get.json")[0]["response"]
        # WHEN the seeded builder VM (OS disk, data disk at LUN 12) is read
        vm = compute.virtual_machines.get(RESOURCE_GROUP, "builder")
        answer = tap.exchanges[-1]
        # THEN Azure's status and shape
        assert answer.status == recorded["status"] == 200
        assert missing_except(recorded["body"], answer.body, _VM_UNMODELLED) == []
        # AND what intake reads: location, OS type, managed disk ids, LUNs, base image
        assert vm.location == "westeurope" and vm.storage_profile.os_disk.os_type == "Linux"
        assert vm.storage_profile.os_disk.managed_disk.id and [d.lun for d in vm.storage_profile.data_disks] == [12]
        assert vm.storage_profile.data_disks[0].managed_disk.id and vm.storage_profile.image_reference.publisher
        assert vm.plan is None and vm.storage_profile.os_disk.encryption_settings is None

    def test_given_a_managed_disk_when_it_is_read_then_the_get_has_azure_s_shape(self, compute, tap):
        recorded = recording("compute-disk-get.json")[0]["response"]
        data_disk_id = compute.virtual_machines.get(RESOURCE_GROUP, "builder").storage_profile.data_disks[0].managed_disk.id
        # WHEN the data disk is read
        disk = compute.disks.get(RESOURCE_GROUP, data_disk_id.rsplit("/", 1)[-1])
        answer = tap.exchanges[-1]
        # THEN Azure's status and shape
        assert answer.status == recorded["status"] == 200
        assert missing_except(recorded["body"], answer.body, _DISK_UNMODELLED) == []
        assert disk.provisioning_state == "Succeeded" and disk.location == "westeurope" and disk.disk_size_gb
