"""Reconciliation: requests stuck in a pipeline stage because an event was lost are driven again."""

from __future__ import annotations

from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import Scenario, default_request

LOST_WRITES = {"dropEventTypes": ["Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceWriteFailure"]}


def test_a_snapshot_that_failed_while_its_events_were_lost_fails_the_request_after_the_threshold():
    # GIVEN snapshot creation ends Failed and no write event is ever delivered
    rehearsal = Rehearsal(Scenario.model_validate({
        "world": {"eventDelivery": LOST_WRITES, "stuckRequestMinutes": 30,
                  "faults": [{"operation": "PUT Microsoft.Compute/snapshots", "kind": "lro_failed"}]},
        "steps": [{"submit": default_request(), "replyTo": "replies"}, {"runUntilIdle": True, "maxVirtualTime": "PT6H"}],
    })).run()
    report = build_report(rehearsal)
    # THEN a sweep past the threshold re-read the snapshots and failed the request, with a reply
    [request] = report["requests"]
    assert request["stage"] == "FAILED" and "ended Failed" in request["reason"]
    failed_at = next(e for e in rehearsal.timeline if e.stage == "FAILED").at
    assert (failed_at - rehearsal.timeline[0].at).total_seconds() >= 30 * 60
    assert [r["body"]["stage"] for r in report["replies"]] == ["FAILED"]


def test_a_request_is_not_re_driven_before_it_is_stuck_long_enough():
    rehearsal = Rehearsal(Scenario.model_validate({
        "world": {"eventDelivery": LOST_WRITES, "stuckRequestMinutes": 600},
        "steps": [{"submit": default_request()}, {"advance": "PT2H"}],
    })).run()
    assert [r["stage"] for r in build_report(rehearsal)["requests"]] == ["SNAPSHOTTING"]
