"""The Activity Log and the configurable event behaviours, through the real SDK clients.

Sources are cited in emulator/insights/models.py and emulator/events.py (EventBehaviour).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject

from emulator.events import EventBehaviour
from emulator.world import AzureEmulator
from shared.gateway.failures import error_code
from tests.support import RG_ID, SUBSCRIPTION, StaticTokenCredential, keys_missing, load_fixture

DISK = f"{RG_ID}/providers/Microsoft.Compute/disks/source"
SNAPSHOT = f"{RG_ID}/providers/Microsoft.Compute/snapshots/s1"


def clients(world: AzureEmulator):
    kwargs = {"transport": world.transport(), "polling_interval": 0}
    credential = StaticTokenCredential()
    return (ComputeManagementClient(credential, SUBSCRIPTION, **kwargs), ManagementLockClient(credential, SUBSCRIPTION, **kwargs),
            MonitorManagementClient(credential, SUBSCRIPTION, **kwargs))


def locked_snapshot(behaviour: EventBehaviour) -> AzureEmulator:
    """GIVEN a snapshot, locked; then a delete refused by the lock, and the lock deleted."""
    world = AzureEmulator(seed=4, behaviour=behaviour)
    world.compute.add_disk(DISK)
    compute, locks, _ = clients(world)
    compute.snapshots.begin_create_or_update("rg-imaging", "s1", {"location": "westeurope", "properties": {
        "creationData": {"createOption": "Copy", "sourceResourceId": DISK}}}, polling=False)
    world.advance(10 * 60)
    locks.management_locks.create_or_update_by_scope(SNAPSHOT, "keep", ManagementLockObject(level="CanNotDelete"))
    with pytest.raises(HttpResponseError) as refused:
        compute.snapshots.begin_delete("rg-imaging", "s1", polling=False)
    assert refused.value.status_code == 409 and error_code(refused.value) == "ScopeLocked"
    locks.management_locks.delete_by_scope(SNAPSHOT, "keep")
    return world


def event_types(world: AzureEmulator) -> list[str]:
    return [f"{e.event_type.rsplit('.', 1)[-1]} {e.body['data']['operationName']}" for e in world.events.emitted]


def test_given_the_assumed_behaviour_when_a_lock_is_deleted_and_a_delete_refused_then_both_raise_events():
    kinds = event_types(locked_snapshot(EventBehaviour()))
    assert "ResourceDeleteFailure Microsoft.Compute/snapshots/delete" in kinds
    assert "ResourceDeleteSuccess Microsoft.Authorization/locks/delete" in kinds


def test_given_neither_raises_an_event_when_played_then_no_event_but_the_activity_log_has_both():
    world = locked_snapshot(EventBehaviour(lock_delete_raises_event=False, locked_delete_raises_failure_event=False))
    kinds = event_types(world)
    assert "ResourceDeleteFailure Microsoft.Compute/snapshots/delete" not in kinds
    assert "ResourceDeleteSuccess Microsoft.Authorization/locks/delete" not in kinds
    assert "ResourceWriteSuccess Microsoft.Authorization/locks/write" in kinds
    world.advance(20 * 60)
    _, _, monitor = clients(world)
    start, end = (world.now() - timedelta(hours=1)).isoformat(), world.now().isoformat()
    logged = {(e.operation_name.value, e.status.value, e.sub_status.value) for e in monitor.activity_logs.list(
        filter=f"eventTimestamp ge '{start}' and eventTimestamp le '{end}' and resourceGroupName eq 'rg-imaging'")}
    assert ("Microsoft.Compute/snapshots/delete", "Failed", "Conflict") in logged
    assert ("Microsoft.Authorization/locks/delete", "Succeeded", "") in logged


def test_given_write_success_at_acceptance_when_a_snapshot_is_made_then_the_event_comes_with_the_put_and_not_again():
    world = AzureEmulator(seed=4, behaviour=EventBehaviour(write_success_at="acceptance"))
    world.compute.add_disk(DISK)
    compute, _, _ = clients(world)
    compute.snapshots.begin_create_or_update("rg-imaging", "s1", {"location": "westeurope", "properties": {
        "creationData": {"createOption": "Copy", "sourceResourceId": DISK}}}, polling=False)
    assert [e.event_type for e in world.events.emitted] == ["Microsoft.Resources.ResourceWriteSuccess"]
    assert compute.snapshots.get("rg-imaging", "s1").provisioning_state != "Succeeded"
    world.advance(10 * 60)
    assert compute.snapshots.get("rg-imaging", "s1").provisioning_state == "Succeeded"
    assert len(world.events.emitted) == 1


def test_given_an_entry_just_made_when_listed_then_it_appears_only_after_the_activity_logs_delay():
    world = locked_snapshot(EventBehaviour())
    _, _, monitor = clients(world)

    made_at = world.now()

    def listed() -> int:
        start, end = made_at.isoformat(), world.now().isoformat()
        return len(list(monitor.activity_logs.list(filter=f"eventTimestamp ge '{start}' and eventTimestamp le '{end}'")))

    assert listed() == 0
    world.advance(3 * 60)
    assert listed() > 0


def test_given_a_filter_outside_the_allowed_patterns_or_older_than_90_days_when_listed_then_400():
    world = AzureEmulator(seed=4)
    _, _, monitor = clients(world)
    with pytest.raises(HttpResponseError) as unsupported:
        list(monitor.activity_logs.list(filter="status eq 'Failed'"))
    assert unsupported.value.status_code == 400
    start, end = (world.now() - timedelta(days=91)).isoformat(), world.now().isoformat()
    with pytest.raises(HttpResponseError) as too_old:
        list(monitor.activity_logs.list(filter=f"eventTimestamp ge '{start}' and eventTimestamp le '{end}'"))
    assert "90 days" in str(too_old.value)


def test_given_the_published_example_when_compared_then_an_entry_has_its_fields():
    published = load_fixture("monitor/monitor-activity-logs-filtered.2015-04-01.json")["responses"]["200"]["body"]["value"][0]
    world = locked_snapshot(EventBehaviour())
    world.advance(5 * 60)
    [entry, *_] = world.activity_log.list(SUBSCRIPTION, f"eventTimestamp ge '{(world.now() - timedelta(hours=1)).isoformat()}' "
                                                         f"and eventTimestamp le '{world.now().isoformat()}'", None)
    missing = [path for path in keys_missing(published, entry) if not path.startswith("/claims") and path != "/description"]
    assert missing == []


def test_given_select_when_listed_then_only_those_fields_and_the_id_come_back():
    world = locked_snapshot(EventBehaviour())
    world.advance(5 * 60)
    [entry, *_] = world.activity_log.list(SUBSCRIPTION, f"eventTimestamp ge '{(world.now() - timedelta(hours=1)).isoformat()}' "
                                                         f"and eventTimestamp le '{world.now().isoformat()}'", "status,operationName")
    assert set(entry) == {"id", "status", "operationName"}


def test_given_the_published_empty_disk_example_when_put_then_the_answer_has_its_shape():
    example = load_fixture("compute/compute-disk-create-empty.2024-03-02.json")
    world = AzureEmulator(seed=4)
    compute, _, _ = clients(world)
    body = dict(example["parameters"]["disk"])
    poller = compute.disks.begin_create_or_update("rg-imaging", "empty", body, polling=False)
    initial = poller.polling_method()._initial_response.http_response  # noqa: SLF001 - the raw first answer
    assert initial.status_code in (200, 202)
    assert keys_missing(example["responses"]["202"]["body"], initial.json()) == []
    assert initial.json()["properties"]["provisioningState"] == "Updating"


def test_given_a_lock_deleted_when_its_group_log_is_listed_then_the_entry_names_the_lock_itself_and_its_delete_operation():
    # As Azure records it (sources in emulator/insights/models.py): operationName Microsoft.Authorization/locks/delete,
    # the lock's own id as the resource, listed under the resource group of the scope it was on.
    world = locked_snapshot(EventBehaviour(lock_delete_raises_event=False))
    world.advance(20 * 60)
    _, _, monitor = clients(world)
    start, end = (world.now() - timedelta(hours=1)).isoformat(), world.now().isoformat()
    [entry] = [e for e in monitor.activity_logs.list(
        filter=f"eventTimestamp ge '{start}' and eventTimestamp le '{end}' and resourceGroupName eq 'rg-imaging'",
        select="operationName,resourceId,status,resourceGroupName") if e.operation_name.value.endswith("locks/delete")]
    assert entry.operation_name.value == "Microsoft.Authorization/locks/delete" and entry.status.value == "Succeeded"
    assert entry.resource_id == f"{SNAPSHOT}/providers/Microsoft.Authorization/locks/keep"
    assert entry.resource_group_name == "rg-imaging"
