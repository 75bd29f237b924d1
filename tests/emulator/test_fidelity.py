"""The emulator speaks the published shapes: fields and casing of Microsoft's examples."""

from __future__ import annotations

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import Image, Snapshot

from emulator.world import AzureEmulator
from tests.support import RESOURCE_GROUP, RG_ID, SUBSCRIPTION, StaticTokenCredential, keys_missing, load_fixture, shape_of

VM_ID = f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/builder"


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=3)
    world.compute.add_virtual_machine(VM_ID, data_disk_luns=(1,))
    return world


@pytest.fixture
def compute(emulator) -> ComputeManagementClient:
    return ComputeManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)


def _raw_put(compute, path: str, body: dict, api_version: str):
    from azure.core.rest import HttpRequest

    return compute.send_request(
        HttpRequest("PUT", f"https://management.azure.com{path}?api-version={api_version}", json=body)
    )


def _raw_get(compute, path: str, api_version: str):
    from azure.core.rest import HttpRequest

    return compute.send_request(HttpRequest("GET", f"https://management.azure.com{path}?api-version={api_version}"))




class TestEventGridEvents:
    @pytest.mark.parametrize(
        "fixture, action",
        [("eventgrid/eventgrid-resource-write-success.egschema.json", "write"), ("eventgrid/eventgrid-resource-delete-success.egschema.json", "delete")],
    )
    def test_arm_events_have_every_field_of_the_published_sample_with_the_same_types(self, emulator, compute, fixture, action):
        # GIVEN the published sample of the event
        sample = load_fixture(fixture)
        # WHEN the emulator raises the same kind of event for a snapshot
        disk = compute.virtual_machines.get(RESOURCE_GROUP, "builder").storage_profile.os_disk.managed_disk.id
        compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "s1", {"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}}}).result()
        if action == "delete":
            compute.snapshots.begin_delete(RESOURCE_GROUP, "s1").result()
        event = emulator.events.emitted[-1].body
        # THEN it carries the sample's fields, field by field, with the same JSON types
        assert event["eventType"] == sample["eventType"]
        ignored_claims = {k for k in sample["data"]["claims"]}  # claim sets differ by caller
        expected = shape_of(sample)
        expected["data"]["claims"] = {}
        assert not [m for m in keys_missing(expected, event) if m.rsplit("/", 1)[-1] not in ignored_claims]
        for name in ("subject", "eventType", "eventTime", "id", "dataVersion", "metadataVersion", "topic"):
            assert type(event[name]) is type(sample[name]), name
        data = event["data"]
        assert data["operationName"] == f"Microsoft.Compute/snapshots/{action}"
        assert data["resourceUri"] == event["subject"] == data["authorization"]["scope"]
        assert data["status"] == sample["data"]["status"] == "Succeeded"
        assert data["resourceProvider"] == "Microsoft.Compute"
        assert event["topic"].lower() == f"{RG_ID}".lower()
        assert event["dataVersion"] == sample["dataVersion"] and event["metadataVersion"] == sample["metadataVersion"]
        assert event["eventTime"].endswith("Z") and "T" in event["eventTime"]

    def test_arm_events_decode_through_azure_functions_event_grid_converter(self, emulator, compute):
        import azure.functions as func
        from azure.functions.eventgrid import EventGridEventInConverter
        from azure.functions.meta import Datum

        disk = compute.virtual_machines.get(RESOURCE_GROUP, "builder").storage_profile.os_disk.managed_disk.id
        compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "s1", {"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}}}).result()
        import json

        body = emulator.events.emitted[-1].body
        event = EventGridEventInConverter.decode(Datum(json.dumps(body), "json"), trigger_metadata=None)
        assert isinstance(event, func.EventGridEvent)
        assert event.event_type == body["eventType"] and event.subject == body["subject"]
        assert event.get_json()["operationName"] == "Microsoft.Compute/snapshots/write"


class TestComputeShapes:
    def test_snapshot_put_answers_the_published_example_shape(self, compute):
        example = load_fixture("compute/compute-snapshot-create-copy-from-managed-disk.2025-01-02.json")
        disk = compute.virtual_machines.get(RESOURCE_GROUP, "builder").storage_profile.os_disk.managed_disk.id
        body = dict(example["parameters"]["snapshot"])
        body["properties"] = {**body["properties"], "creationData": {**body["properties"]["creationData"], "sourceResourceId": disk.lstrip("/")}}
        response = _raw_put(compute, f"{RG_ID}/providers/Microsoft.Compute/snapshots/mySnapshot2", body, example["parameters"]["api-version"])
        assert str(response.status_code) in example["responses"]
        answer = response.json()
        assert keys_missing(shape_of(example["responses"]["202"]["body"]), answer) == []
        assert answer["properties"]["provisioningState"] in ("Creating", "Updating")
        assert response.headers["Azure-AsyncOperation"].startswith("https://management.azure.com/subscriptions/")
        # The SDK model reads every property the project relies on.
        model = Snapshot(answer)
        assert model.creation_data.create_option == "Copy" and model.creation_data.source_resource_id
        assert model.id == answer["id"] and model.location == answer["location"]

    def test_image_put_answers_the_published_example_shape(self, compute, emulator):
        example = load_fixture("compute/compute-image-create-from-snapshots-os-and-data-disks.2025-04-01.json")
        vm = compute.virtual_machines.get(RESOURCE_GROUP, "builder")
        snaps = []
        for name, disk in (("mySnapshot", vm.storage_profile.os_disk.managed_disk.id), ("mySnapshot2", vm.storage_profile.data_disks[0].managed_disk.id)):
            snaps.append(compute.snapshots.begin_create_or_update(RESOURCE_GROUP, name, {"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}}}).result())
        body = example["parameters"]["parameters"]
        profile = body["properties"]["storageProfile"]
        request = {"location": body["location"], "properties": {"storageProfile": {
            **profile,
            "osDisk": {**profile["osDisk"], "snapshot": {"id": snaps[0].id.lstrip("/")}},
            "dataDisks": [{**profile["dataDisks"][0], "snapshot": {"id": snaps[1].id.lstrip("/")}}]}}}
        response = _raw_put(compute, f"{RG_ID}/providers/Microsoft.Compute/images/myImage", request, example["parameters"]["api-version"])
        assert response.status_code == 201
        answer = response.json()
        assert keys_missing(shape_of(example["responses"]["201"]["body"]), answer) == []
        assert answer["properties"]["storageProfile"]["osDisk"]["caching"] == "ReadWrite"
        model = Image(answer)
        assert model.storage_profile.os_disk.os_state == "Generalized"
        assert [d.lun for d in model.storage_profile.data_disks] == [1]

    def test_virtual_machine_get_carries_what_the_prerequisite_checks_read(self, emulator, compute):
        vm_id = f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/planned"
        emulator.compute.add_virtual_machine(
            vm_id, extensions=("CustomScript",), os_disk_encrypted=True,
            plan={"name": "plan", "publisher": "thirdparty", "product": "offer"},
            image_reference={"publisher": "thirdparty", "offer": "offer", "sku": "sku", "version": "latest"},
        )
        vm = compute.virtual_machines.get(RESOURCE_GROUP, "planned")
        assert vm.plan.publisher == "thirdparty"
        assert [e.name for e in vm.resources] == ["CustomScript"]
        assert vm.storage_profile.os_disk.encryption_settings.enabled is True
        assert vm.storage_profile.os_disk.managed_disk.id.endswith("planned_OsDisk_1")
        assert vm.storage_profile.image_reference.publisher == "thirdparty"


class TestRealSdkRoundTripEmitsPublishedEventShapes:
    def test_snapshot_pool_and_lock_blocked_delete_raise_events_shaped_like_the_samples(self, emulator, compute):
        """Snapshot LRO, pool create/get/update and a lock-blocked DELETE, each event compared with the samples."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.batch import BatchManagementClient
        from azure.mgmt.resource.locks import ManagementLockClient
        from azure.mgmt.resource.locks.models import ManagementLockObject

        write_sample = load_fixture("eventgrid/eventgrid-resource-write-success.egschema.json")
        delete_sample = load_fixture("eventgrid/eventgrid-resource-delete-success.egschema.json")
        account_id = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/acct"
        emulator.batch.add_account(account_id)
        batch = BatchManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport(), polling_interval=5)
        locks = ManagementLockClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport())

        # GIVEN a snapshot created through the SDK's long-running-operation poller
        disk = compute.virtual_machines.get(RESOURCE_GROUP, "builder").storage_profile.os_disk.managed_disk.id
        snapshot = compute.snapshots.begin_create_or_update(
            RESOURCE_GROUP, "s1", {"location": "westeurope", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}}}
        ).result()
        # AND a pool from it created, read and updated with If-Match
        pool_body = {"properties": {"vmSize": "Standard_D4ds_v5", "deploymentConfiguration": {"virtualMachineConfiguration": {
            "imageReference": {"id": snapshot.id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
            "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 0}}}}
        created = batch.pool.create(RESOURCE_GROUP, "acct", "p1", pool_body)
        emulator.advance(emulator.batch.allocation.step_seconds)  # a new 0/0 pool is Resizing until its first step
        read = batch.pool.get(RESOURCE_GROUP, "acct", "p1")
        assert read.etag == created.etag and read.allocation_state == "Steady"
        updated = batch.pool.update(RESOURCE_GROUP, "acct", "p1", {"properties": {"metadata": [{"name": "k", "value": "v"}]}},
                                    etag=read.etag, match_condition=MatchConditions.IfNotModified)
        assert [(m.name, m.value) for m in updated.metadata] == [("k", "v")]
        # WHEN a CanNotDelete lock blocks deleting the snapshot
        locks.management_locks.create_or_update_by_scope(snapshot.id, "keep", ManagementLockObject(level="CanNotDelete"))
        with pytest.raises(HttpResponseError):
            compute.snapshots.begin_delete(RESOURCE_GROUP, "s1").result()

        # THEN the events, in order, are the ARM events for each call
        emitted = [e.body for e in emulator.events.emitted]
        assert [(e["eventType"].rsplit(".", 1)[-1], e["data"]["operationName"]) for e in emitted] == [
            ("ResourceWriteSuccess", "Microsoft.Compute/snapshots/write"),
            ("ResourceWriteSuccess", "Microsoft.Batch/batchAccounts/pools/write"),
            ("ResourceWriteSuccess", "Microsoft.Batch/batchAccounts/pools/write"),
            ("ResourceWriteSuccess", "Microsoft.Authorization/locks/write"),
            ("ResourceDeleteFailure", "Microsoft.Compute/snapshots/delete"),
        ]
        # AND each carries every field of the published sample, with the same JSON types
        for event in emitted:
            sample = delete_sample if "Delete" in event["eventType"] else write_sample
            expected = shape_of(sample)
            expected["data"]["claims"] = {}
            assert keys_missing(expected, event) == [], event["eventType"]
            assert shape_of({k: v for k, v in event.items() if k != "data"}) == shape_of({k: v for k, v in sample.items() if k != "data"})
            assert event["data"]["status"] == ("Failed" if "Failure" in event["eventType"] else "Succeeded")
            assert event["data"]["resourceUri"] == event["subject"]
