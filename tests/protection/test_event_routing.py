"""Delete events about odd resources, foreign locks and failing stores: ignored without ARM calls, or handled without losing an alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rehearsal.runner import Rehearsal
from rehearsal.scenario import load_scenario
from shared.alerts import Alert, AlertInProgress, AlertLog, Severity
from shared.arm.events import ArmEvent
from shared.store.memory import InMemoryRecords
from shared.store.records import RecordConflict
from shared.store.tables import TableRecords
from tests.support import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"
RG = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-imaging"
IMAGE = f"{RG}/providers/Microsoft.Compute/images/cip-protect-blocked"


def event(event_type: str, resource_id: str, operation: str) -> ArmEvent:
    return ArmEvent.from_parts(id="e1", event_type=f"Microsoft.Resources.Resource{event_type}", subject=resource_id,
                               data={"resourceUri": resource_id, "operationName": operation})


@pytest.fixture
def protected_world():
    """GIVEN a READY pool whose image lineage is protected (the delete-blocked scenario, before its delete)."""
    scenario = load_scenario(EXAMPLES / "protection-delete-blocked.json")
    rehearsal = Rehearsal(scenario.model_copy(update={"steps": scenario.steps[:2]})).run()
    return rehearsal


def reads_and_alerts(rehearsal: Rehearsal, events: list[ArmEvent]) -> tuple[int, int]:
    before = sum(rehearsal.emulator.calls.values())
    for one in events:
        rehearsal.services.route_event(one)
    return sum(rehearsal.emulator.calls.values()) - before, len(rehearsal.emulator.topic.received)


class TestOddEvents:
    def test_events_about_other_providers_children_and_foreign_locks_cost_no_arm_call_and_no_alert(self, protected_world):
        odd = [
            event("DeleteSuccess", f"{RG}/providers/Microsoft.Network/networkInterfaces/nic", "Microsoft.Network/networkInterfaces/delete"),
            event("DeleteSuccess", f"{IMAGE}/extra/child", "Microsoft.Compute/images/delete"),
            event("DeleteSuccess", f"{RG}/providers/Microsoft.Compute/images/not-in-use", "Microsoft.Compute/images/delete"),
            event("DeleteSuccess", f"{IMAGE}/providers/Microsoft.Authorization/locks/someone-elses", "Microsoft.Authorization/locks/delete"),
            event("DeleteSuccess", f"{RG}/providers/Microsoft.Authorization/locks/cip-protect", "Microsoft.Authorization/locks/delete"),
            event("DeleteSuccess", f"{RG}/providers/Microsoft.Batch/batchAccounts/a/pools/not-ours", "Microsoft.Batch/batchAccounts/pools/delete"),
            event("DeleteCancel", IMAGE, "Microsoft.Compute/images/delete"),
        ]
        assert reads_and_alerts(protected_world, odd) == (0, 0)

    def test_a_case_variant_of_a_protected_id_is_recognised(self, protected_world):
        upper = IMAGE.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
        _, alerts = reads_and_alerts(protected_world, [event("DeleteFailure", upper, "MICROSOFT.COMPUTE/IMAGES/DELETE")])
        assert alerts == 1 and protected_world.emulator.topic.received[0]["type"] == "CustomImagePool.DeletionBlocked"

    def test_a_delete_success_for_a_protected_image_that_is_gone_alerts_on_the_event_itself(self, protected_world):
        # GIVEN the pool's image really deleted (its lock removed first), and no sweep to come: the event alone must alert
        protected_world.emulator.store.remove(IMAGE)
        _, alerts = reads_and_alerts(protected_world, [event("DeleteSuccess", IMAGE, "Microsoft.Compute/images/delete")])
        [alert] = protected_world.emulator.topic.received
        assert alerts == 1 and alert["type"] == "CustomImagePool.InUseImageDeleted" and alert["subject"] == IMAGE
        assert [p["id"] for p in alert["data"]["pools"]] == [f"{RG.replace('rg-imaging', 'rg-batch')}/providers/Microsoft.Batch/batchAccounts/teambatch/pools/render-pool"]

    def test_a_delete_success_for_an_image_that_still_exists_raises_no_alert(self, protected_world):
        # a stale or forged event: the image is re-read and found, so nobody is woken
        _, alerts = reads_and_alerts(protected_world, [event("DeleteSuccess", IMAGE, "Microsoft.Compute/images/delete")])
        assert alerts == 0


class TestRequestFailed:
    def test_a_failed_request_alerts_once_with_its_reason(self):
        from rehearsal.scenario import Scenario, default_request

        request = default_request()
        request["source"]["virtualMachineId"] = f"{RG}/providers/Microsoft.Compute/virtualMachines/builder"
        scenario = Scenario.model_validate({"world": {"faults": [{"operation": "PUT Microsoft.Compute/images", "kind": "lro_failed"}]},
                                            "steps": [{"submit": request}, {"runUntilIdle": True}]})
        rehearsal = Rehearsal(scenario).run()
        [alert] = rehearsal.emulator.topic.received
        assert alert["type"] == "CustomImagePool.RequestFailed" and alert["data"]["severity"] == "error"
        assert alert["data"]["requestIds"] == ["team-a-render-001"] and "ended Failed" in alert["data"]["reason"]
        assert alert["subject"].endswith("/pools/render-pool")
        assert rehearsal.ledger.get("team-a-render-001").stage.value == "FAILED"


NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALERT = Alert("CustomImagePool.InUseImageDeleted", Severity.CRITICAL, IMAGE)


class TestAlertLog:
    def test_one_claim_per_window_a_released_claim_alerts_again_and_a_fresh_pending_claim_is_in_progress(self):
        log = AlertLog(InMemoryRecords(), timedelta(minutes=60))
        claim = log.claim(ALERT, NOW)
        assert claim is not None
        # WHEN another delivery races the first publish, THEN it is told to retry later
        with pytest.raises(AlertInProgress):
            log.claim(ALERT, NOW + timedelta(seconds=5))
        # WHEN the publish failed and the claim is released, THEN the next delivery may alert
        log.release(claim)
        claim = log.claim(ALERT, NOW + timedelta(seconds=30))
        assert claim is not None
        log.confirm(claim, NOW + timedelta(seconds=31))
        assert log.claim(ALERT, NOW + timedelta(minutes=59)) is None
        assert log.claim(ALERT, NOW + timedelta(minutes=62)) is not None

    def test_a_claim_left_pending_by_a_dead_worker_expires(self):
        log = AlertLog(InMemoryRecords(), timedelta(minutes=60))
        log.claim(ALERT, NOW)
        assert log.claim(ALERT, NOW + timedelta(minutes=3)) is not None


class TestRecordsOnTableStorage:
    def test_conditional_writes_on_azurite(self, azurite_table_client):
        records = TableRecords(azurite_table_client)
        # GIVEN no table yet: a read is empty, the first insert creates it
        assert records.get("alert", IMAGE) is None
        first = records.insert("alert", IMAGE, {"state": "pending"})
        with pytest.raises(RecordConflict):
            records.insert("alert", IMAGE.upper(), {"state": "pending"})
        second = records.replace(first, {"state": "sent"})
        with pytest.raises(RecordConflict):
            records.replace(first, {"state": "stale"})
        stored = records.get("alert", IMAGE)
        assert stored is not None and stored.data == {"state": "sent"}
        records.delete(second)
        assert records.get("alert", IMAGE) is None

    def test_the_ledger_does_not_list_record_rows(self, azurite_table_client):
        from shared.store.tables import TableLedger

        ledger = TableLedger(azurite_table_client)
        ledger.records().insert("image-use", IMAGE, {"pools": {}})
        assert ledger.list_recent(10) == []
