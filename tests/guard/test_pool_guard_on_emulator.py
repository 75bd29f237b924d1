"""The pool guard through the real Batch and Compute clients on the emulator: what it changes, and what it leaves alone."""

from __future__ import annotations

import json
import logging

from azure.functions.timer import TimerRequest

from emulator.store import ArmResource
from rehearsal.runner import CHECKS_QUEUE, Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario
from shared import bootstrap
from shared.arm.pools import PoolView
from shared.guard.sweep import SweepReport
from shared.naming import METADATA_GUARD_STATE

SUB = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
IMAGING = f"/subscriptions/{SUB}/resourceGroups/rg-imaging"
SNAPSHOT_ID = f"{IMAGING}/providers/Microsoft.Compute/snapshots/base-os"
IMAGE_ID = f"{IMAGING}/providers/Microsoft.Compute/images/base"
POOLS = f"{DEFAULT_ACCOUNT_ID}/pools"
MINUTE = 60


def world_with(pools: list[dict], **world) -> Rehearsal:
    """GIVEN a guarded account holding ``pools`` (custom image with its lineage), nothing played yet."""
    rehearsal = Rehearsal(Scenario.model_validate({
        "world": {"guardedBatchAccounts": [DEFAULT_ACCOUNT_ID], "pools": [{"imageId": IMAGE_ID, **p} for p in pools], **world},
        "steps": [],
    }))
    store = rehearsal.emulator.store
    store.put(ArmResource(SNAPSHOT_ID, "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    store.put(ArmResource(IMAGE_ID, "Microsoft.Compute/images", "westeurope", {
        "provisioningState": "Succeeded",
        "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": SNAPSHOT_ID}}},
    }))
    return rehearsal


def props(rehearsal: Rehearsal, name: str) -> dict:
    return rehearsal.emulator.store.get(f"{POOLS}/{name}").properties


def patches(rehearsal: Rehearsal) -> int:
    return rehearsal.emulator.calls["PATCH Microsoft.Batch/batchAccounts/pools"]


def sweep(rehearsal: Rehearsal) -> SweepReport:
    return rehearsal.services.guard().sweep()


class TestResizing:
    def test_a_timed_out_pool_is_resized_with_its_state_in_metadata_and_a_check_at_the_timeout(self):
        rehearsal = world_with([{"id": f"{POOLS}/big", "targetDedicatedNodes": 600}])
        rehearsal.emulator.advance(26 * MINUTE)  # 300 nodes, then AllocationTimedout
        assert props(rehearsal, "big")["currentDedicatedNodes"] == 300
        # WHEN the guard sweeps
        report = sweep(rehearsal)
        # THEN one PATCH restarted the resize, remembered it, and a check waits for its timeout
        assert report.resized == [f"{POOLS}/big"] and patches(rehearsal) == 1
        pool = props(rehearsal, "big")
        assert pool["allocationState"] == "Resizing" and pool["scaleSettings"]["fixedScale"]["resizeTimeout"] == "PT25M"
        state = json.loads({m["name"]: m["value"] for m in pool["metadata"]}[METADATA_GUARD_STATE])
        assert state["nodesAtResize"] == 300 and state["target"] == "600/0"
        [check] = rehearsal.emulator.servicebus.queue(CHECKS_QUEUE).active
        assert json.loads(check.message.body)["poolId"] == f"{POOLS}/big"
        assert (check.enqueued_time - rehearsal.emulator.now()).total_seconds() == 25 * MINUTE + 30

    def test_a_sweep_lists_each_account_once_and_checks_each_image_once(self):
        rehearsal = world_with([{"id": f"{POOLS}/p{i}", "targetDedicatedNodes": 400} for i in range(5)])
        rehearsal.emulator.advance(26 * MINUTE)
        before = dict(rehearsal.emulator.calls)
        sweep(rehearsal)
        calls = {op: n - before.get(op, 0) for op, n in rehearsal.emulator.calls.items() if n != before.get(op, 0)}
        # the first meeting also protects the image and its snapshot (each pool joins the lock notes)
        assert calls == {"GET Microsoft.Batch/batchAccounts/pools": 1, "GET Microsoft.Compute/images": 1,
                         "GET Microsoft.Compute/snapshots": 1, "PUT Microsoft.Authorization/locks": 10,
                         "PATCH Microsoft.Batch/batchAccounts/pools": 5}
        # WHEN it sweeps again, THEN the protection is not placed twice
        before = dict(rehearsal.emulator.calls)
        sweep(rehearsal)
        assert rehearsal.emulator.calls["PUT Microsoft.Authorization/locks"] == before["PUT Microsoft.Authorization/locks"]


class TestNeedsAPerson:
    def test_a_quota_error_alerts_once_and_never_resizes(self):
        rehearsal = world_with([{"id": f"{POOLS}/quota", "targetDedicatedNodes": 100}], allocation={"quotaError": "AccountCoreQuotaReached"})
        rehearsal.emulator.advance(2 * MINUTE)
        first, second = sweep(rehearsal), sweep(rehearsal)
        assert first.alerted == [f"{POOLS}/quota"] and second.alerted == [] and second.resized == []
        [alert] = rehearsal.emulator.topic.received
        assert alert["type"] == "CustomImagePool.PoolCannotReachTarget" and alert["specversion"] == "1.0"
        assert alert["data"]["errorCode"] == "AccountCoreQuotaReached" and alert["data"]["pools"][0]["targetDedicatedNodes"] == 100
        assert props(rehearsal, "quota")["scaleSettings"]["fixedScale"]["targetDedicatedNodes"] == 100

    def test_a_gone_image_is_one_critical_alert_naming_the_pool(self):
        rehearsal = world_with([{"id": f"{POOLS}/orphan", "targetDedicatedNodes": 100}])
        rehearsal.emulator.store.remove(IMAGE_ID)
        rehearsal.emulator.advance(2 * MINUTE)  # the resize fails: AllocationFailed
        sweep(rehearsal), sweep(rehearsal)
        [alert] = rehearsal.emulator.topic.received
        assert alert["type"] == "CustomImagePool.InUseImageDeleted" and alert["subject"] == IMAGE_ID
        assert alert["data"]["severity"] == "critical" and [p["id"] for p in alert["data"]["pools"]] == [f"{POOLS}/orphan"]


class TestBadInput:
    def test_pools_in_odd_states_are_left_alone_and_the_sweep_goes_on(self):
        rehearsal = world_with([
            {"id": f"{POOLS}/stopping", "targetDedicatedNodes": 600},
            {"id": f"{POOLS}/deleting", "targetDedicatedNodes": 600},
            {"id": f"{POOLS}/auto", "autoScaleFormula": "$TargetDedicatedNodes=5;"},
            {"id": f"{POOLS}/garbled", "targetDedicatedNodes": 600, "metadata": {"cip-request": "x", "cip-target-dedicated": "lots"}},
            {"id": f"{POOLS}/zero", "targetDedicatedNodes": 0},
            {"id": f"{POOLS}/healthy", "targetDedicatedNodes": 600},
        ])
        rehearsal.emulator.advance(26 * MINUTE)
        props(rehearsal, "stopping")["allocationState"] = "Stopping"
        props(rehearsal, "deleting")["provisioningState"] = "Deleting"
        report = sweep(rehearsal)
        # THEN only the healthy pool was resized, nothing crashed
        assert report.resized == [f"{POOLS}/healthy"] and report.failed == []
        assert patches(rehearsal) == 1
        assert props(rehearsal, "garbled")["scaleSettings"]["fixedScale"]["targetDedicatedNodes"] == 600

    def test_garbled_target_metadata_with_no_request_to_fall_back_on_is_left_alone_with_one_alert(self):
        # GIVEN a pool whose cip-target-dedicated is not a count and whose cip-request names no request in the ledger
        rehearsal = world_with([{"id": f"{POOLS}/garbled", "targetDedicatedNodes": 600,
                                 "metadata": {"cip-request": "x", "cip-target-dedicated": "lots"}}])
        rehearsal.emulator.advance(26 * MINUTE)
        # WHEN two sweeps look at it
        first, second = sweep(rehearsal), sweep(rehearsal)
        # THEN it is not resized, and ops hear once which value and what to do
        assert first.resized == second.resized == [] and patches(rehearsal) == 0
        [alert] = rehearsal.emulator.topic.received
        assert alert["type"] == "CustomImagePool.PoolCannotReachTarget" and alert["data"]["condition"] == "target-unknown"
        assert "lots" in alert["data"]["reason"] and "cip-target-dedicated" in alert["data"]["reason"]

    def test_a_concurrent_change_412_skips_the_round_without_a_resize(self):
        rehearsal = world_with([{"id": f"{POOLS}/busy", "targetDedicatedNodes": 600}])
        rehearsal.emulator.advance(26 * MINUTE)
        batch = rehearsal.clients.batch(SUB)
        listed = PoolView.from_sdk(batch.pool.get("rg-batch", "teambatch", "busy"))
        # GIVEN someone else changed the pool after the guard read it
        batch.pool.update("rg-batch", "teambatch", "busy", {"properties": {"metadata": [{"name": "owner", "value": "ops"}]}})
        report = SweepReport()
        rehearsal.services.guard().handle_pool(listed, True, report)
        assert report.resized == [] and props(rehearsal, "busy")["allocationState"] == "Steady"
        assert rehearsal.emulator.servicebus.queue(CHECKS_QUEUE).active == []

    def test_a_pool_deleted_between_list_and_patch_is_skipped(self):
        rehearsal = world_with([{"id": f"{POOLS}/gone", "targetDedicatedNodes": 600}])
        rehearsal.emulator.advance(26 * MINUTE)
        listed = PoolView.from_sdk(rehearsal.clients.batch(SUB).pool.get("rg-batch", "teambatch", "gone"))
        rehearsal.emulator.store.remove(f"{POOLS}/gone")
        report = SweepReport()
        rehearsal.services.guard().handle_pool(listed, True, report)
        assert report.resized == [] and report.failed == []

    def test_a_check_message_for_a_pool_outside_the_scopes_touches_nothing(self):
        rehearsal = world_with([])
        outside = f"/subscriptions/{SUB}/resourceGroups/rg-other/providers/Microsoft.Batch/batchAccounts/x/pools/p"
        report = rehearsal.services.guard().check(outside)
        assert report.resized == [] and rehearsal.emulator.calls == {}


class TestTheTimerSaysWhatItDid:
    def test_given_a_timed_out_pool_when_the_timer_fires_then_one_info_line_counts_what_the_sweep_did(self, caplog):
        rehearsal = world_with([{"id": f"{POOLS}/big", "targetDedicatedNodes": 600}, {"id": f"{POOLS}/done", "targetDedicatedNodes": 100}])
        rehearsal.emulator.advance(26 * MINUTE)
        [timer] = rehearsal.host.names("timerTrigger")
        bootstrap.install(rehearsal.services)
        try:
            with caplog.at_level(logging.INFO, logger="handlers.guard_timer"):
                rehearsal.host.call(timer, TimerRequest(past_due=False))
        finally:
            bootstrap.install(None)
        [line] = [record for record in caplog.records if record.name == "handlers.guard_timer"]
        summary = line.sweepReport
        assert summary["poolsSeen"] == 2 and summary["accountsListed"] == 1
        assert summary["resized"] == 1 and summary["failed"] == 0 and summary["alerted"] == 0
        assert '"resized": 1' in line.getMessage()
