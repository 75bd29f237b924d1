"""The emulator under the real Batch management client: pools, ETags, paging, delete LRO and node allocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch.models import (
    AutoScaleSettings,
    DeploymentConfiguration,
    FixedScaleSettings,
    ImageReference,
    MetadataItem,
    Pool,
    PoolProperties,
    ScaleSettings,
    VirtualMachineConfiguration,
)
from azure.mgmt.compute import ComputeManagementClient

from emulator.batch.models import ALLOCATION_TIMED_OUT
from emulator.faults import FaultKind, FaultRule
from emulator.store import ArmResource
from emulator.world import AzureEmulator
from shared.gateway.failures import error_code
from tests.support import RESOURCE_GROUP, RG_ID, SUBSCRIPTION, StaticTokenCredential, error_message, keys_missing, load_fixture, shape_of

ACCOUNT = "teambatch"
ACCOUNT_ID = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/{ACCOUNT}"
SNAPSHOT_ID = f"{RG_ID}/providers/Microsoft.Compute/snapshots/builder-os"
IMAGE_NAME = "builder-image"
IMAGE_ID = f"{RG_ID}/providers/Microsoft.Compute/images/{IMAGE_NAME}"
VERSION_ID = f"{RG_ID}/providers/Microsoft.Compute/galleries/imaging/images/worker/versions/1.0.0"
POOL_TYPE = "Microsoft.Batch/batchAccounts/pools"
MINUTE = 60


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=11, page_size=2)
    world.batch.add_account(ACCOUNT_ID)
    # The custom image's lineage: gallery version -> managed image -> OS snapshot.
    world.store.put(ArmResource(SNAPSHOT_ID, "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    world.store.put(ArmResource(IMAGE_ID, "Microsoft.Compute/images", "westeurope", {
        "provisioningState": "Succeeded",
        "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": SNAPSHOT_ID}}},
    }))
    world.store.put(ArmResource(VERSION_ID, "Microsoft.Compute/galleries/images/versions", "westeurope", {
        "provisioningState": "Succeeded", "storageProfile": {"source": {"id": IMAGE_ID}},
    }))
    return world


@pytest.fixture
def batch(emulator) -> BatchManagementClient:
    return BatchManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)


def _pool(dedicated: int = 0, low_priority: int = 0, *, resize_timeout: timedelta | None = None, image_id: str = VERSION_ID,
          metadata: dict[str, str] | None = None, node_agent: str | None = "batch.node.ubuntu 24.04") -> Pool:
    return Pool(properties=PoolProperties(
        vm_size="Standard_D4ds_v5",
        deployment_configuration=DeploymentConfiguration(virtual_machine_configuration=VirtualMachineConfiguration(
            image_reference=ImageReference(id=image_id), node_agent_sku_id=node_agent,  # type: ignore[arg-type]  # None: a pool Batch must refuse
        )),
        scale_settings=ScaleSettings(fixed_scale=FixedScaleSettings(
            target_dedicated_nodes=dedicated, target_low_priority_nodes=low_priority, resize_timeout=resize_timeout,
        )),
        metadata=[MetadataItem(name=k, value=v) for k, v in (metadata or {}).items()] or None,
    ))


def _resize(batch, name: str, dedicated: int, low_priority: int = 0, **kwargs) -> Pool:
    scale = ScaleSettings(fixed_scale=FixedScaleSettings(target_dedicated_nodes=dedicated, target_low_priority_nodes=low_priority))
    return batch.pool.update(RESOURCE_GROUP, ACCOUNT, name, Pool(properties=PoolProperties(scale_settings=scale)), **kwargs)


def _raw(batch, method: str, path: str, body: dict | None = None, api_version: str = "2025-06-01"):
    request = HttpRequest(method, f"https://management.azure.com{path}?api-version={api_version}", json=body)
    return batch.send_request(request)


def _events(emulator, event_type: str | None = None) -> list[dict]:
    return [e.body for e in emulator.events.emitted if event_type is None or e.event_type == event_type]




def _all_keys(value, path="") -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            keys.add(f"{path}/{key}")
            keys |= _all_keys(item, f"{path}/{key}")
    elif isinstance(value, list) and value:
        keys |= _all_keys(value[0], f"{path}[0]")
    return keys


class TestAccount:
    def test_account_get_reports_quotas_and_endpoint(self, batch):
        account = batch.batch_account.get(RESOURCE_GROUP, ACCOUNT)
        assert account.id == ACCOUNT_ID and account.location == "westeurope"
        assert account.properties.provisioning_state == "Succeeded"
        assert account.properties.pool_allocation_mode == "BatchService"
        assert account.properties.account_endpoint == f"{ACCOUNT}.westeurope.batch.azure.com"
        assert account.properties.dedicated_core_quota == 100_000 and account.properties.pool_quota == 100

    def test_missing_account_is_a_404(self, batch):
        with pytest.raises(ResourceNotFoundError):
            batch.batch_account.get(RESOURCE_GROUP, "nosuchaccount")


class TestCreateAndRead:
    def test_create_starts_a_resize_at_once_and_emits_a_write_event(self, emulator, batch):
        # WHEN a fixed-scale pool on a gallery image version is created
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(5, metadata={"request": "r1"}))
        # THEN it answers 200 with an ETag and is already Resizing toward its target
        assert pool.etag and pool.etag.startswith('W/"')
        assert pool.provisioning_state == "Succeeded" and pool.allocation_state == "Resizing"
        status = pool.resize_operation_status
        assert status.target_dedicated_nodes == 5 and status.resize_timeout == timedelta(minutes=15)
        assert status.start_time == emulator.now() and not status.errors
        assert pool.metadata[0].name == "request" and pool.metadata[0].value == "r1"
        assert pool.deployment_configuration.virtual_machine_configuration.image_reference.id == VERSION_ID
        writes = _events(emulator, "Microsoft.Resources.ResourceWriteSuccess")
        assert [w["data"]["operationName"] for w in writes] == ["Microsoft.Batch/batchAccounts/pools/write"]
        assert writes[0]["subject"] == pool.id == f"{ACCOUNT_ID}/pools/workers"
        assert emulator.calls[f"PUT {POOL_TYPE}"] == 1

    def test_nodes_arrive_on_virtual_time_and_the_pool_goes_steady(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(5, 2))
        emulator.advance(MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert pool.allocation_state == "Steady"
        assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (5, 2)
        assert not pool.resize_operation_status.errors
        assert pool.allocation_state_transition_time == emulator.now()
        assert emulator.clock.next_due() is None  # a finished resize leaves nothing scheduled

    def test_a_pool_with_no_target_or_with_autoscale_ends_steady_with_no_node(self, emulator, batch):
        # A 0/0 pool is Resizing at creation, as recorded traffic shows (see tests/emulator/test_azure_rules.py).
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "empty", _pool(0))
        auto = _pool()
        assert auto.properties is not None
        auto.properties.scale_settings = ScaleSettings(auto_scale=AutoScaleSettings(formula="$TargetDedicatedNodes=1;"))
        auto = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "auto", auto)
        emulator.advance(30 * MINUTE)
        empty = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "empty")
        assert empty.allocation_state == "Steady" and empty.current_dedicated_nodes == 0
        assert not empty.resize_operation_status.errors
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "auto")
        assert pool.allocation_state == "Steady" and pool.current_dedicated_nodes == 0
        assert pool.resize_operation_status is None
        assert auto.scale_settings.auto_scale.formula == "$TargetDedicatedNodes=1;"

    @pytest.mark.parametrize("field, pool", [
        ("nodeAgentSkuId", _pool(1, node_agent=None)),
        ("imageReference", Pool(properties=PoolProperties(vm_size="Standard_D4ds_v5", deployment_configuration=DeploymentConfiguration(
            virtual_machine_configuration=VirtualMachineConfiguration(node_agent_sku_id="batch.node.ubuntu 24.04"))))),  # type: ignore[call-overload]  # no image: Batch must refuse it
        ("vmSize", Pool(properties=PoolProperties(deployment_configuration=DeploymentConfiguration(virtual_machine_configuration=VirtualMachineConfiguration(
            image_reference=ImageReference(id=VERSION_ID), node_agent_sku_id="batch.node.ubuntu 24.04"))))),
        ("resizeTimeout", _pool(1, resize_timeout=timedelta(minutes=2))),
    ])
    def test_invalid_pool_is_a_400_naming_the_field_and_a_write_failure_event(self, emulator, batch, field, pool):
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "bad", pool)
        assert raised.value.status_code == 400
        assert error_code(raised.value) == "InvalidParameter" and field in error_message(raised.value)
        assert not emulator.store.exists(f"{ACCOUNT_ID}/pools/bad")
        assert [e["data"]["operationName"] for e in _events(emulator, "Microsoft.Resources.ResourceWriteFailure")] == [
            "Microsoft.Batch/batchAccounts/pools/write"
        ]

    def test_create_if_none_match_on_an_existing_pool_is_412(self, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0), etag="*", match_condition=MatchConditions.IfMissing)
        with pytest.raises(ResourceExistsError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0), etag="*", match_condition=MatchConditions.IfMissing)
        assert raised.value.status_code == 412

    def test_put_on_an_existing_pool_replaces_it_and_if_match_guards_it(self, batch):
        first = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0, metadata={"a": "1"}))
        second = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0, metadata={"b": "2"}),
                                   etag=first.etag, match_condition=MatchConditions.IfNotModified)
        assert second.etag != first.etag and [m.name for m in second.metadata] == ["b"]
        assert second.creation_time == first.creation_time
        with pytest.raises(ResourceModifiedError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0), etag=first.etag, match_condition=MatchConditions.IfNotModified)
        assert raised.value.status_code == 412

    def test_get_of_a_missing_pool_is_a_404(self, batch):
        with pytest.raises(ResourceNotFoundError) as raised:
            batch.pool.get(RESOURCE_GROUP, ACCOUNT, "nosuchpool")
        assert error_code(raised.value) == "PoolNotFound"

    def test_list_pages_through_every_pool(self, emulator, batch):
        for index in range(5):
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, f"pool{index}", _pool(0))
        names = [p.name for p in batch.pool.list_by_batch_account(RESOURCE_GROUP, ACCOUNT)]
        assert names == [f"pool{i}" for i in range(5)]
        assert emulator.calls[f"GET {POOL_TYPE}"] == 3  # page_size 2: three pages


class TestUpdate:
    def test_update_with_current_etag_replaces_metadata_and_changes_the_etag(self, emulator, batch):
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0, metadata={"a": "1", "b": "2"}))
        emulator.advance(MINUTE)
        patch = Pool(properties=PoolProperties(metadata=[MetadataItem(name="stage", value="resizing")]))
        updated = batch.pool.update(RESOURCE_GROUP, ACCOUNT, "workers", patch, etag=pool.etag, match_condition=MatchConditions.IfNotModified)
        assert [(m.name, m.value) for m in updated.metadata] == [("stage", "resizing")]
        assert updated.etag != pool.etag and updated.last_modified > pool.last_modified
        assert updated.vm_size == "Standard_D4ds_v5"  # properties not in the PATCH are kept
        assert [e["data"]["operationName"] for e in _events(emulator, "Microsoft.Resources.ResourceWriteSuccess")] == [
            "Microsoft.Batch/batchAccounts/pools/write"
        ] * 2

    def test_update_with_a_stale_etag_is_412_and_changes_nothing(self, emulator, batch):
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0, metadata={"a": "1"}))
        batch.pool.update(RESOURCE_GROUP, ACCOUNT, "workers", Pool(properties=PoolProperties(metadata=[MetadataItem(name="b", value="2")])))
        with pytest.raises(ResourceModifiedError) as raised:
            batch.pool.update(RESOURCE_GROUP, ACCOUNT, "workers", Pool(properties=PoolProperties(metadata=[])),
                              etag=pool.etag, match_condition=MatchConditions.IfNotModified)
        assert raised.value.status_code == 412 and isinstance(raised.value, HttpResponseError)
        assert [m.name for m in batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").metadata] == ["b"]
        assert _events(emulator, "Microsoft.Resources.ResourceWriteFailure")[0]["subject"] == pool.id

    def test_changing_scale_while_resizing_is_a_409_but_metadata_may_change(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(1000))
        with pytest.raises(ResourceExistsError) as raised:
            _resize(batch, "workers", 10)
        assert raised.value.status_code == 409 and error_code(raised.value) == "PoolBeingResized"
        batch.pool.update(RESOURCE_GROUP, ACCOUNT, "workers", Pool(properties=PoolProperties(metadata=[MetadataItem(name="k", value="v")])))
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").allocation_state == "Resizing"

    def test_shrinking_removes_nodes_within_a_step(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(50))
        emulator.advance(MINUTE)
        assert _resize(batch, "workers", 10).allocation_state == "Resizing"
        emulator.advance(MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert (pool.allocation_state, pool.current_dedicated_nodes) == ("Steady", 10)


class TestPoolUpdateOfTheImage:
    """Pool - Update changes vmSize and deploymentConfiguration only while the pool is Steady at zero nodes
    (azure-docs batch-pool-update-properties.md; the refusal's body as recorded from the service)."""

    NEW_VERSION = VERSION_ID.replace("/versions/1.0.0", "/versions/2.0.0")

    @pytest.fixture(autouse=True)
    def _second_version(self, emulator):
        emulator.store.put(ArmResource(self.NEW_VERSION, "Microsoft.Compute/galleries/images/versions", "westeurope", {
            "provisioningState": "Succeeded", "storageProfile": {"source": {"id": IMAGE_ID}},
        }))

    def _image_patch(self, image_id: str, **kwargs) -> dict:
        return {"properties": {"deploymentConfiguration": {"virtualMachineConfiguration": {
            "imageReference": {"id": image_id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}}, **kwargs}}

    def test_given_nodes_in_the_pool_when_its_image_is_patched_then_it_is_refused_with_property_cannot_be_updated(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(10))
        emulator.advance(5 * MINUTE)
        answer = _raw(batch, "PATCH", f"{ACCOUNT_ID}/pools/workers", self._image_patch(self.NEW_VERSION))
        error = answer.json()["error"]
        assert answer.status_code == 400 and error["code"] == "PropertyCannotBeUpdated" and error["target"] == "BatchAccount"
        assert {d["code"]: d["message"] for d in error["details"]} == {
            "Reason": "A property that cannot be updated was specified as part of the request.",
            "PropertyName": "deploymentConfiguration", "PropertyPath": "properties.deploymentConfiguration"}
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert pool.deployment_configuration.virtual_machine_configuration.image_reference.id == VERSION_ID
        assert _events(emulator, "Microsoft.Resources.ResourceWriteFailure")[-1]["subject"] == pool.id

    def test_given_a_pool_resizing_at_zero_nodes_when_its_vm_size_is_patched_then_it_is_refused(self, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(10))
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.update(RESOURCE_GROUP, ACCOUNT, "workers", Pool(properties=PoolProperties(vm_size="Standard_D8ds_v5")))
        assert raised.value.status_code == 400 and error_code(raised.value) == "PropertyCannotBeUpdated"

    def test_given_a_pool_steady_at_zero_when_its_image_is_patched_then_the_next_resize_brings_nodes_on_the_new_image(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(10))
        emulator.advance(5 * MINUTE)
        pool_id = f"{ACCOUNT_ID}/pools/workers"
        assert emulator.batch.nodes_by_image(pool_id) == {VERSION_ID: 10}
        _resize(batch, "workers", 0)
        emulator.advance(MINUTE)
        assert emulator.batch.nodes_by_image(pool_id) == {}
        answer = _raw(batch, "PATCH", pool_id, self._image_patch(self.NEW_VERSION))
        assert answer.status_code == 200
        assert answer.json()["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]["imageReference"]["id"] == self.NEW_VERSION
        # A PATCH of the same image while nodes are there changes nothing and is let through.
        _resize(batch, "workers", 10)
        emulator.advance(5 * MINUTE)
        assert emulator.batch.nodes_by_image(pool_id) == {self.NEW_VERSION: 10}
        assert _raw(batch, "PATCH", pool_id, self._image_patch(self.NEW_VERSION)).status_code == 200

    def test_given_nodes_in_the_pool_when_a_put_replaces_its_image_then_it_is_refused_too(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(10))
        emulator.advance(5 * MINUTE)
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(10, image_id=self.NEW_VERSION))
        assert raised.value.status_code == 400 and error_code(raised.value) == "PropertyCannotBeUpdated"

    def test_given_a_pool_at_zero_when_patched_to_a_version_without_a_replica_in_its_region_then_it_is_refused(self, emulator, batch):
        elsewhere = VERSION_ID.replace("/versions/1.0.0", "/versions/3.0.0")
        emulator.store.put(ArmResource(elsewhere, "Microsoft.Compute/galleries/images/versions", "eastus", {
            "provisioningState": "Succeeded", "storageProfile": {"source": {"id": IMAGE_ID}},
            "publishingProfile": {"targetRegions": [{"name": "East US", "regionalReplicaCount": 1}]}}))
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0))
        emulator.advance(MINUTE)
        answer = _raw(batch, "PATCH", f"{ACCOUNT_ID}/pools/workers", self._image_patch(elsewhere))
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "InvalidPropertyValue"


class TestStopResize:
    def test_stop_resize_goes_stopping_then_steady_with_resize_stopped(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(1000))
        emulator.advance(MINUTE)
        stopping = batch.pool.stop_resize(RESOURCE_GROUP, ACCOUNT, "workers")
        assert stopping.allocation_state == "Stopping"
        emulator.advance(emulator.batch.allocation.stop_seconds)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert pool.allocation_state == "Steady" and pool.current_dedicated_nodes == 100
        assert [e.code for e in pool.resize_operation_status.errors] == ["ResizeStopped"]
        emulator.advance(30 * MINUTE)  # the stopped resize never resumes
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").current_dedicated_nodes == 100
        actions = _events(emulator, "Microsoft.Resources.ResourceActionSuccess")
        assert [a["data"]["operationName"] for a in actions] == ["Microsoft.Batch/batchAccounts/pools/stopResize/action"]

    def test_a_resize_stalled_at_its_node_limit_is_stopped_and_the_next_resize_brings_more(self, emulator, batch):
        # GIVEN a 600-node pool whose first resize allocated its 300 nodes and then only "keeps trying"
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "big", _pool(600, resize_timeout=timedelta(minutes=25)))
        emulator.advance(5 * MINUTE)
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "big").current_dedicated_nodes == 300
        # WHEN the resize is stopped: the pool keeps its nodes, goes Stopping, then Steady with ResizeStopped
        assert batch.pool.stop_resize(RESOURCE_GROUP, ACCOUNT, "big").allocation_state == "Stopping"
        emulator.advance(emulator.batch.allocation.stop_seconds)
        stopped = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "big")
        assert (stopped.allocation_state, stopped.current_dedicated_nodes) == ("Steady", 300)
        assert [e.code for e in stopped.resize_operation_status.errors] == ["ResizeStopped"]
        # THEN a new resize to the same target is accepted at once and brings the other 300 within minutes
        assert _resize(batch, "big", 600).allocation_state == "Resizing"
        emulator.advance(3 * MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "big")
        assert (pool.allocation_state, pool.current_dedicated_nodes, pool.resize_operation_status.errors) == ("Steady", 600, None)

    def test_stopping_a_steady_pool_changes_nothing(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "small", _pool(2))
        emulator.advance(MINUTE)
        before = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "small")
        after = batch.pool.stop_resize(RESOURCE_GROUP, ACCOUNT, "small")
        assert (after.allocation_state, after.current_dedicated_nodes, after.resize_operation_status.errors) == ("Steady", 2, None)
        assert after.etag == before.etag


class TestCapacityPauses:
    def test_nodes_stop_arriving_while_the_region_has_no_capacity_and_resume_when_it_returns(self, emulator, batch):
        # GIVEN no capacity from minute 2 to minute 10
        emulator.batch.configure_allocation(capacity_pauses=((2 * MINUTE, 8 * MINUTE),))
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "paused", _pool(250, resize_timeout=timedelta(minutes=20)))
        emulator.advance(2 * MINUTE)
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "paused").current_dedicated_nodes == 100
        # WHEN the pause lasts, the resize keeps trying with no new node
        emulator.advance(7 * MINUTE)
        waiting = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "paused")
        assert (waiting.allocation_state, waiting.current_dedicated_nodes) == ("Resizing", 100)
        # THEN once capacity returns the same resize reaches its target
        emulator.advance(3 * MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "paused")
        assert (pool.allocation_state, pool.current_dedicated_nodes, pool.resize_operation_status.errors) == ("Steady", 250, None)

    def test_capacity_that_never_returns_ends_the_resize_at_its_timeout(self, emulator, batch):
        emulator.batch.configure_allocation(capacity_pauses=((MINUTE + 30, None),))
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "starved", _pool(250))
        emulator.advance(15 * MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "starved")
        assert (pool.allocation_state, pool.current_dedicated_nodes) == ("Steady", 100)
        assert [e.code for e in pool.resize_operation_status.errors] == [ALLOCATION_TIMED_OUT]
        # AND a resize meanwhile adds nothing either
        _resize(batch, "starved", 250)
        emulator.advance(15 * MINUTE)
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "starved").current_dedicated_nodes == 100


class TestDelete:
    def test_delete_is_long_running_through_location_and_emits_delete_success_once_done(self, emulator, batch):
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(3))
        poller = batch.pool.begin_delete(RESOURCE_GROUP, ACCOUNT, "workers", polling=False)
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").provisioning_state == "Deleting"
        assert not _events(emulator, "Microsoft.Resources.ResourceDeleteSuccess")
        poller.result()
        batch.pool.begin_delete(RESOURCE_GROUP, ACCOUNT, "workers").result()  # already deleting: polls to the end
        with pytest.raises(ResourceNotFoundError):
            batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        deletes = _events(emulator, "Microsoft.Resources.ResourceDeleteSuccess")
        assert [(d["subject"], d["data"]["operationName"]) for d in deletes] == [(pool.id, "Microsoft.Batch/batchAccounts/pools/delete")]
        assert emulator.calls["GET Microsoft.Batch/batchAccounts/poolOperationResults"] >= 1

    def test_delete_answers_202_with_the_batch_location_header(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0))
        response = _raw(batch, "DELETE", f"{ACCOUNT_ID}/pools/workers")
        assert response.status_code == 202
        assert response.headers["Location"].startswith(f"https://management.azure.com{ACCOUNT_ID}/poolOperationResults/delete-workers")
        assert _raw(batch, "GET", response.headers["Location"].split("management.azure.com", 1)[1].split("?")[0]).status_code == 202
        emulator.advance(emulator.batch.allocation.delete_seconds)
        assert _raw(batch, "GET", f"{ACCOUNT_ID}/poolOperationResults/delete-workers").status_code == 200
        assert _raw(batch, "DELETE", f"{ACCOUNT_ID}/pools/workers").status_code == 204

    def test_a_pool_being_deleted_cannot_be_updated(self, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0))
        batch.pool.begin_delete(RESOURCE_GROUP, ACCOUNT, "workers", polling=False)
        with pytest.raises(ResourceExistsError) as raised:
            _resize(batch, "workers", 3)
        assert raised.value.status_code == 409 and error_code(raised.value) == "PoolBeingDeleted"

    def test_an_injected_delete_failure_fails_the_poller_and_keeps_the_pool(self, emulator, batch):
        emulator.faults.add(FaultRule(f"DELETE {POOL_TYPE}", FaultKind.LRO_FAILED))
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0))
        with pytest.raises(HttpResponseError):
            batch.pool.begin_delete(RESOURCE_GROUP, ACCOUNT, "workers").result()
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").provisioning_state == "Succeeded"
        assert [e["subject"] for e in _events(emulator, "Microsoft.Resources.ResourceDeleteFailure")] == [f"{ACCOUNT_ID}/pools/workers"]

    def test_a_can_not_delete_lock_blocks_pool_delete_with_scope_locked(self, emulator, batch):
        from azure.mgmt.resource.locks import ManagementLockClient
        from azure.mgmt.resource.locks.models import ManagementLockObject

        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(0))
        locks = ManagementLockClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport())
        locks.management_locks.create_or_update_by_scope(f"{ACCOUNT_ID}/pools/workers", "keep", ManagementLockObject(level="CanNotDelete"))
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.begin_delete(RESOURCE_GROUP, ACCOUNT, "workers").result()
        assert raised.value.status_code == 409 and error_code(raised.value) == "ScopeLocked"
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").provisioning_state == "Succeeded"
        assert [e["data"]["operationName"] for e in _events(emulator, "Microsoft.Resources.ResourceDeleteFailure")] == ["Microsoft.Batch/batchAccounts/pools/delete"]


class TestAllocationModel:
    def test_a_large_target_gets_at_most_300_nodes_per_resize_then_allocation_timedout(self, emulator, batch):
        # GIVEN a pool asking for 2,500 nodes (one resize allocates at most 300)
        created = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "big", _pool(2500))
        start = emulator.now()
        # WHEN a few minutes pass, the 300 nodes arrive but the pool keeps Resizing until resizeTimeout
        emulator.advance(5 * MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "big")
        assert (pool.allocation_state, pool.current_dedicated_nodes) == ("Resizing", 300)
        emulator.advance(10 * MINUTE)
        # THEN at startTime + PT15M it is Steady with the service's AllocationTimedout
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "big")
        assert pool.allocation_state == "Steady" and pool.current_dedicated_nodes == 300
        assert pool.allocation_state_transition_time == start + timedelta(minutes=15)
        assert [e.code for e in pool.resize_operation_status.errors] == [ALLOCATION_TIMED_OUT] == ["AllocationTimedout"]
        assert pool.etag == created.etag  # node arrival is not a write
        # AND the error is stale: it stays until the next resize
        emulator.advance(60 * MINUTE)
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "big").resize_operation_status.errors[0].code == "AllocationTimedout"
        # WHEN the resize is issued again, the errors clear and 300 more nodes arrive
        again = _resize(batch, "big", 2500)
        assert again.allocation_state == "Resizing" and not again.resize_operation_status.errors
        emulator.advance(15 * MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "big")
        assert (pool.allocation_state, pool.current_dedicated_nodes) == ("Steady", 600)
        assert pool.resize_operation_status.errors[0].code.lower() == "allocationtimedout"

    def test_slow_allocation_times_out_before_the_target(self, emulator, batch):
        emulator.batch.configure_allocation(nodes_per_minute=10)
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "slow", _pool(200, resize_timeout=timedelta(minutes=5)))
        emulator.advance(5 * MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "slow")
        assert pool.allocation_state == "Steady" and pool.current_dedicated_nodes == 40
        assert pool.resize_operation_status.resize_timeout == timedelta(minutes=5)
        assert pool.resize_operation_status.errors[0].code == "AllocationTimedout"

    def test_resize_after_the_image_lineage_is_deleted_fails_with_allocation_failed(self, emulator, batch):
        # GIVEN a pool that reached its target on the gallery version
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(4))
        emulator.advance(MINUTE)
        # WHEN the managed image the version was made from is deleted through ARM
        compute = ComputeManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)
        compute.images.begin_delete(RESOURCE_GROUP, IMAGE_NAME).result()
        # THEN the next resize fails with AllocationFailed and adds no node
        _resize(batch, "workers", 20)
        emulator.advance(MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert pool.allocation_state == "Steady" and pool.current_dedicated_nodes == 4
        assert pool.resize_operation_status.errors[0].code == "AllocationFailed"
        assert IMAGE_ID in pool.resize_operation_status.errors[0].message

    def test_a_pool_created_on_a_missing_image_is_created_but_its_first_resize_fails(self, emulator, batch):
        missing = f"{RG_ID}/providers/Microsoft.Compute/images/gone"
        pool = batch.pool.create(RESOURCE_GROUP, ACCOUNT, "orphan", _pool(2, image_id=missing))
        assert pool.provisioning_state == "Succeeded"
        emulator.advance(MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "orphan")
        assert pool.current_dedicated_nodes == 0 and pool.resize_operation_status.errors[0].code == "AllocationFailed"

    def test_a_configured_quota_error_ends_the_resize_with_that_code(self, emulator, batch):
        emulator.batch.set_quota_error(ACCOUNT_ID, "AccountCoreQuotaReached")
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(10))
        emulator.advance(MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers")
        assert pool.allocation_state == "Steady" and pool.current_dedicated_nodes == 0
        assert [e.code for e in pool.resize_operation_status.errors] == ["AccountCoreQuotaReached"]
        emulator.batch.set_quota_error(ACCOUNT_ID, None)
        emulator.batch.configure_allocation(quota_error="AccountLowPriorityCoreQuotaReached")
        _resize(batch, "workers", 0, 5)
        emulator.advance(MINUTE)
        assert batch.pool.get(RESOURCE_GROUP, ACCOUNT, "workers").resize_operation_status.errors[0].code == "AccountLowPriorityCoreQuotaReached"

    def test_the_account_core_quota_caps_nodes_across_pools(self, emulator, batch):
        other = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/small"
        emulator.batch.add_account(other, dedicated_core_quota=40, low_priority_core_quota=0)
        batch.pool.create(RESOURCE_GROUP, "small", "first", _pool(6))  # 6 x 4 cores
        emulator.advance(MINUTE)
        batch.pool.create(RESOURCE_GROUP, "small", "second", _pool(6, 1))
        emulator.advance(MINUTE)
        pool = batch.pool.get(RESOURCE_GROUP, "small", "second")
        assert pool.allocation_state == "Steady"
        assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (4, 0)
        assert sorted(e.code for e in pool.resize_operation_status.errors) == [
            "AccountCoreQuotaReached", "AccountLowPriorityCoreQuotaReached"
        ]

    def test_pools_growing_at_once_share_their_account_core_quota_step_by_step(self, emulator, batch):
        other = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/small"
        emulator.batch.add_account(other, dedicated_core_quota=40, low_priority_core_quota=0)  # 10 nodes of 4 cores
        emulator.batch.configure_allocation(nodes_per_minute=2)
        batch.pool.create(RESOURCE_GROUP, "small", "first", _pool(6))
        batch.pool.create(RESOURCE_GROUP, "small", "second", _pool(6))
        emulator.advance(3 * MINUTE)  # 2 + 2, 4 + 4, then the 2 nodes left go to the pool that steps first
        first, second = (batch.pool.get(RESOURCE_GROUP, "small", name) for name in ("first", "second"))
        assert (first.current_dedicated_nodes, second.current_dedicated_nodes) == (6, 4)
        assert [e.code for e in second.resize_operation_status.errors] == ["AccountCoreQuotaReached"]
        batch.pool.begin_delete(RESOURCE_GROUP, "small", "first").result()
        batch.pool.update(RESOURCE_GROUP, "small", "second", Pool(properties=PoolProperties(scale_settings=ScaleSettings(
            fixed_scale=FixedScaleSettings(target_dedicated_nodes=10, target_low_priority_nodes=0)))))
        emulator.advance(3 * MINUTE)
        assert batch.pool.get(RESOURCE_GROUP, "small", "second").current_dedicated_nodes == 10  # the deleted pool's cores


class TestPublishedShapes:
    def test_pool_get_has_every_field_of_the_published_example_with_the_same_casing(self, batch):
        example = load_fixture("batch/batch-pool-get-resizing.2025-06-01.json")
        published = example["responses"]["200"]["body"]
        settable = {k: v for k, v in published["properties"].items() if k not in {
            "lastModified", "creationTime", "provisioningState", "provisioningStateTransitionTime", "allocationState",
            "allocationStateTransitionTime", "currentDedicatedNodes", "currentLowPriorityNodes", "resizeOperationStatus"}}
        path = f"{ACCOUNT_ID}/pools/testpool"
        assert _raw(batch, "PUT", path, {"properties": settable}).status_code == 200
        response = _raw(batch, "GET", path)
        assert response.status_code == 200 and response.headers["ETag"] == response.json()["etag"]
        answer = response.json()
        assert keys_missing(shape_of(published), answer) == []
        # Every field the emulator writes itself is spelt as in the example.
        published_keys = {k.lower(): k for k in _all_keys(published)}
        for key in _all_keys(answer):
            if key.lower() in published_keys:
                assert key == published_keys[key.lower()]
        assert answer["properties"]["scaleSettings"]["fixedScale"]["resizeTimeout"] == "PT8M"
        assert answer["properties"]["resizeOperationStatus"]["nodeDeallocationOption"] == "Requeue"
        # The SDK model reads what the project relies on.
        model = Pool(answer)
        assert model.allocation_state == "Resizing" and model.current_dedicated_nodes == 0
        assert model.resize_operation_status.target_low_priority_nodes == 28
        assert [m.name for m in model.metadata] == ["metadata-1", "metadata-2"] and model.etag == answer["etag"]

    def test_pool_create_answers_the_published_example_shape(self, batch):
        example = load_fixture("batch/batch-pool-create-shared-image-gallery.2025-06-01.json")
        response = _raw(batch, "PUT", f"{ACCOUNT_ID}/pools/testpool", example["parameters"]["parameters"], example["parameters"]["api-version"])
        assert str(response.status_code) in example["responses"]
        assert keys_missing(shape_of(example["responses"]["200"]["body"]), response.json()) == []
        assert response.headers["ETag"] == response.json()["etag"]

    def test_errors_deserialize_through_the_sdk_after_a_timeout(self, emulator, batch):
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "big", _pool(400))
        emulator.advance(15 * MINUTE)
        raw = _raw(batch, "GET", f"{ACCOUNT_ID}/pools/big").json()
        assert set(raw["properties"]["resizeOperationStatus"]) == {
            "startTime", "targetDedicatedNodes", "targetLowPriorityNodes", "nodeDeallocationOption", "resizeTimeout", "errors"}
        pool = Pool(raw)
        assert pool.resize_operation_status.errors[0].code == "AllocationTimedout"
        assert pool.resize_operation_status.errors[0].message
