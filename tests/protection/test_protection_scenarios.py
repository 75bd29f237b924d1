"""Image protection and its alerts: the example scenarios, played through the registered functions on the emulator."""

from __future__ import annotations

import pytest

from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import Scenario, ScenarioError, load_scenario
from tests.support import PROJECT_ROOT, example, played, played_report

EXAMPLES = PROJECT_ROOT / "examples"
LOCKS = "/providers/Microsoft.Authorization/locks/"


def play(name: str, **world) -> tuple[Rehearsal, dict]:
    scenario = load_scenario(EXAMPLES / name)
    if world:
        scenario = scenario.model_copy(update={"world": scenario.world.model_copy(update=world)})
    return played(scenario), played_report(scenario)


def kinds(report: dict) -> list[str]:
    return [a["type"].removeprefix("CustomImagePool.") for a in report["alerts"]]


def pools_named(alert: dict) -> list[str]:
    return [p["id"].rsplit("/", 1)[-1] for p in alert["data"]["pools"]]


class TestProtection:
    def test_a_created_pool_locks_its_image_version_managed_image_and_snapshots_with_notes_naming_it(self):
        rehearsal, report = play("protection-delete-blocked.json")
        locks = [r for r in rehearsal.emulator.store if r.type == "Microsoft.Authorization/locks"]
        scopes = sorted(lock.id.split(LOCKS)[0].split("/providers/")[1].split("/")[1] for lock in locks)
        # THEN one cip-protect CanNotDelete lock per resource of the lineage, each naming the pool
        assert scopes == ["galleries", "images", "snapshots", "snapshots", "snapshots"]
        assert all(lock.id.endswith(LOCKS + "cip-protect") and lock.properties["level"] == "CanNotDelete" for lock in locks)
        assert all("render-pool" in lock.properties["notes"] for lock in locks)

    def test_a_delete_blocked_by_the_lock_is_one_deletion_blocked_warning_and_nothing_is_lost(self):
        _, report = play("protection-delete-blocked.json")
        [alert] = report["alerts"]
        assert alert["type"] == "CustomImagePool.DeletionBlocked" and alert["severity"] == "warning"
        assert alert["subject"].endswith("/snapshots/cip-protect-blocked-os") and pools_named(alert) == ["render-pool"]
        assert len(report["resources"]["snapshots"]) == 3 and report["functionErrors"] == []

    def test_deleting_the_last_pool_releases_the_locks_and_then_deleting_the_unused_image_raises_no_alert(self):
        _, report = play("protection-unused-image-deleted.json")
        assert report["alerts"] == [] and report["resources"]["locks"] == []
        assert report["resources"]["images"] == [] and len(report["resources"]["snapshots"]) == 2

    def test_with_keep_image_locks_the_locks_stay_after_the_last_pool_is_deleted(self):
        from dataclasses import replace

        from shared.settings import Settings

        scenario = load_scenario(EXAMPLES / "protection-unused-image-deleted.json")
        rehearsal = Rehearsal(scenario)
        settings = rehearsal.services.settings
        kept = Settings(**{**settings.__dict__, "keep_image_locks": True})
        rehearsal.services = replace(rehearsal.services, settings=kept)
        rehearsal.clients.settings = kept
        report = build_report(rehearsal.run())
        # THEN the version, the image and its three snapshots stayed locked: both deletes were refused, and nobody uses
        # them (no alert)
        assert len(report["resources"]["locks"]) == 5 and len(report["resources"]["images"]) == 1
        assert len(report["resources"]["snapshots"]) == 3 and report["alerts"] == []


class TestPoolsDeletedThroughTheBatchServiceApi:
    def test_pools_deleted_with_no_arm_event_are_found_by_the_sweep_their_locks_released_and_a_growing_request_failed_once(self):
        # GIVEN a READY 10-node pool and a 1,200-node pool still growing, each on its own locked lineage
        rehearsal, report = play("batch-api-delete-pool.json")
        # WHEN both are deleted through the Batch service API: no ARM event says so
        pool_events = [e for e in rehearsal.emulator.events.emitted
                       if e.event_type == "Microsoft.Resources.ResourceDeleteSuccess" and "/pools/" in e.body["subject"]]
        assert pool_events == [] and report["resources"]["pools"] == []
        # THEN the sweep finds both gone and releases every lock they held
        assert report["resources"]["locks"] == []
        stages = {r["id"]: (r["stage"], r["reason"]) for r in report["requests"]}
        assert stages["batch-api-small"][0] == "READY"
        assert stages["batch-api-big"][0] == "FAILED" and "was deleted before it reached its target" in stages["batch-api-big"][1]
        # AND the growing pool's team hears once that it FAILED (the READY one heard READY before)
        big = [reply["body"]["stage"] for reply in report["replies"] if reply["body"]["requestId"] == "batch-api-big"]
        assert big == ["FAILED"] and report["functionErrors"] == []
        # AND the operator's calls are on the timeline, each said to raise no ARM event
        assert sum("Batch API: pool deleted (no ARM event)" in line["outcome"] for line in report["timeline"]) == 2


class TestAlerts:
    def test_lock_removed_then_image_deleted_is_a_warning_then_a_critical_alert_naming_the_pool(self):
        _, report = play("protection-lock-removed-then-image-deleted.json")
        removed, deleted = report["alerts"]
        assert (removed["type"], removed["severity"]) == ("CustomImagePool.ProtectionRemoved", "warning")
        assert (deleted["type"], deleted["severity"]) == ("CustomImagePool.InUseImageDeleted", "critical")
        image = "/images/cip-protect-lock-removed"
        assert removed["subject"].endswith(image) and deleted["subject"].endswith(image)
        data = deleted["data"]
        assert pools_named(deleted) == ["render-pool"] and data["requestIds"] == ["protect-lock-removed"]
        assert data["pools"][0]["currentDedicatedNodes"] == 600 and data["pools"][0]["targetDedicatedNodes"] == 600
        assert data["resourceId"].endswith(image) and data["firstSeen"] and "AllocationFailed" in data["runbook"]
        assert removed["data"]["lockId"].endswith(image + LOCKS + "cip-protect")

    def test_events_delivered_three_times_still_alert_once_per_condition(self):
        rehearsal, report = play("protection-delete-delivered-three-times.json")
        deletes = [e for e in rehearsal.emulator.events.emitted if e.event_type == "Microsoft.Resources.ResourceDeleteSuccess"]
        assert len(deletes) == 2  # the lock, the image: each delivered three times
        assert kinds(report) == ["ProtectionRemoved", "InUseImageDeleted"] and report["functionErrors"] == []

    def test_a_lost_delete_event_is_caught_by_the_guard_sweep_once(self):
        rehearsal, report = play("protection-delete-event-dropped.json")
        assert rehearsal.emulator.events.dropped
        # The lock's delete event was lost too: the sweep's protection audit finds the lock gone.
        assert sorted(kinds(report)) == ["InUseImageDeleted", "ProtectionRemoved"]
        [alert] = [a for a in report["alerts"] if a["type"] == "CustomImagePool.InUseImageDeleted"]
        assert pools_named(alert) == ["render-pool"]
        assert alert["data"]["pools"][0]["targetDedicatedNodes"] == 1200

    def test_a_topic_that_fails_delays_the_alert_but_never_loses_it(self):
        from rehearsal.scenario import FaultSpec

        # GIVEN the alerts topic is unavailable for the first 12 publish attempts (past the SDK's own retries)
        fault = FaultSpec(operation="POST Microsoft.EventGrid/topics", kind="unavailable", limit=12)
        _, report = play("protection-lock-removed-then-image-deleted.json", faults=[fault])
        # THEN the failing deliveries raised (Event Grid redelivers) and each alert still went out exactly once
        assert report["functionErrors"]
        # (redeliveries come in no particular order)
        assert sorted(kinds(report)) == ["InUseImageDeleted", "ProtectionRemoved"]


def test_given_the_app_stopped_longer_than_the_activity_log_keeps_when_a_delete_is_refused_then_the_audit_still_finds_it():
    # GIVEN an app stopped for 100 days (the Activity Log refuses a start more than 90 days back); WHEN a delete is refused
    report = played_report(example("protection-audit-after-a-long-stop.json"))
    # THEN the audit read from inside the 90 days: one DeletionBlocked, no blind audit, no function error
    assert [alert["type"] for alert in report["alerts"]] == ["CustomImagePool.DeletionBlocked"]
    assert report["alerts"][0]["subject"].endswith("/snapshots/cip-long-stop-os") and report["functionErrors"] == []


def test_given_work_in_flight_when_the_app_is_stopped_then_the_step_is_refused_naming_what_is_pending():
    # A stop while deliveries are in flight is not modelled (Event Grid's 24-hour retries, messages' time to live): refused.
    steps = load_scenario(EXAMPLES / "protection-audit-after-a-long-stop.json").model_dump(by_alias=True)["steps"]
    scenario = Scenario.model_validate({"steps": [steps[0], {"stopFunctionApp": "P1D"}]})
    with pytest.raises(ScenarioError, match=r"stopFunctionApp: the world must be idle .* is pending"):
        Rehearsal(scenario).run()
