"""Intake on the fake Azure: what a request is checked against, and what it leaves behind (fast: no emulator, no HTTP)."""

from __future__ import annotations

import json
from dataclasses import replace

from shared.arm.pools import PoolView
from shared.gateway.failures import TransientAzureError
from shared.intake.receive import IncomingMessage
from shared.store.ledger import Stage
from tests.unit.world import ACCOUNT, REPLIES, VM, UnitWorld, request_body


def message(body: dict, message_id: str = "m1") -> IncomingMessage:
    return IncomingMessage(body=json.dumps(body).encode(), message_id=message_id, reply_to=REPLIES)


def pool_view(name: str, request_id: str | None = None) -> PoolView:
    return PoolView(f"{ACCOUNT.id}/pools/{name}", 'W/"1"', "Succeeded", "Steady", None, 10, 0, True, 10, 0, None, None, (),
                    {"cip-request": request_id} if request_id else {}, None, "Standard_D4ds_v5")


class TestAccepted:
    def test_given_a_qualifying_vm_when_its_request_arrives_then_its_disks_are_snapshotted_and_the_definition_started(self):
        world = UnitWorld()
        record = world.services.intake().receive(message(request_body()))
        plan = record.plan
        assert record.stage is Stage.SNAPSHOTTING and plan is not None and plan.image_definition is not None
        snapshots = sorted(target.rsplit("/", 1)[-1] for operation, target, _ in world.azure.writes if operation == "create_snapshot")
        assert snapshots == ["cip-r1-lun0", "cip-r1-lun1", "cip-r1-os"]
        copied = sorted(body["properties"]["creationData"]["sourceResourceId"].rsplit("/", 1)[-1]
                        for operation, _, body in world.azure.writes if operation == "create_snapshot")
        assert copied == ["builder_DataDisk_0", "builder_DataDisk_1", "builder_OsDisk_1"]
        assert [target for operation, target, _ in world.azure.writes if operation == "create_image_definition"] == [plan.image_definition.id]
        assert world.sender.to(REPLIES) == []

    def test_given_the_same_message_twice_when_received_then_nothing_is_sent_to_azure_again(self):
        world = UnitWorld()
        world.services.intake().receive(message(request_body()))
        writes = len(world.azure.writes)
        world.services.intake().receive(message(request_body()))
        assert len(world.azure.writes) == writes


class TestRejected:
    def test_given_a_vm_with_an_extension_when_its_request_arrives_then_it_is_rejected_naming_the_check_and_nothing_is_written(self):
        world = UnitWorld()
        vm = world.azure.virtual_machine(VM)
        assert vm is not None
        world.azure.add(replace(vm, extensions=("CustomScript",)))
        record = world.services.intake().receive(message(request_body()))
        assert record.stage is Stage.REJECTED and record.reason is not None
        assert record.reason.startswith("source.virtualMachineId: prerequisites not met") and "noExtensions" in record.reason
        assert world.azure.writes == []
        [reply] = world.sender.to(REPLIES)
        assert json.loads(reply.body)["stage"] == "REJECTED"

    def test_given_a_pool_name_taken_in_the_account_when_the_request_arrives_then_it_is_rejected_naming_the_owner(self):
        world = UnitWorld()
        world.azure.add(pool_view("render-pool", request_id="someone-else"))
        record = world.services.intake().receive(message(request_body()))
        assert record.stage is Stage.REJECTED and record.reason == "pool.poolName: render-pool is already used in teambatch (by request someone-else)"
        assert world.azure.writes == []

    def test_given_a_missing_vm_when_the_request_arrives_then_it_is_rejected_naming_the_field(self):
        world = UnitWorld()
        del world.azure.resources[VM.key()]
        record = world.services.intake().receive(message(request_body()))
        assert record.stage is Stage.REJECTED and record.reason == f"source.virtualMachineId: {VM.id} does not exist"

    def test_given_a_vm_outside_the_allowed_scopes_then_azure_is_never_asked(self):
        world = UnitWorld()
        body = request_body()
        body["source"]["virtualMachineId"] = VM.id.replace("rg-imaging", "rg-elsewhere")
        world.azure.fail("virtual_machine", AssertionError("read a VM outside the allowed scopes"))
        record = world.services.intake().receive(message(body))
        assert record.stage is Stage.REJECTED and record.reason is not None and "outside the allowed scopes" in record.reason


class TestAzureBusy:
    def test_given_azure_throttling_when_the_request_arrives_then_it_is_sent_again_later_and_nothing_is_recorded(self):
        world = UnitWorld()
        world.azure.fail("virtual_machine", TransientAzureError("read VM builder: HTTP 429 TooManyRequests"))
        assert world.services.intake().receive_with_retry(message(request_body())) is None
        [again] = world.sender.to("pool-requests")
        assert again.scheduled_enqueue_time is not None and again.scheduled_enqueue_time > world.clock()
        assert again.application_properties["cip-attempt"] == 1 and world.ledger.list_recent(10) == []

