"""The pool guard's example scenarios, played through the registered functions on the emulator."""

from __future__ import annotations

from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import load_scenario
from tests.support import PROJECT_ROOT, example, played, played_report

EXAMPLES = PROJECT_ROOT / "examples"
POOL_PATCH = "PATCH Microsoft.Batch/batchAccounts/pools"


def play(name: str) -> dict:
    return played_report(example(name))


def stages(report: dict) -> dict[str, str]:
    return {r["id"]: r["stage"] for r in report["requests"]}


def test_a_2500_node_pool_growing_300_nodes_per_resize_reaches_target_and_the_request_is_ready():
    report = play("guard-2500-nodes.json")
    assert stages(report) == {"guard-2500-nodes": "READY"}
    [pool] = report["resources"]["pools"]
    assert (pool["currentDedicatedNodes"], pool["targetDedicatedNodes"]) == (2500, 2500)
    # 300 nodes per resize: the creation and 8 guard resizes, each once
    assert report["armCalls"][POOL_PATCH] == 8
    assert report["alerts"] == [] and report["functionErrors"] == []
    assert [r["body"]["stage"] for r in report["replies"]] == ["READY"]


def test_the_image_deleted_mid_growth_raises_one_critical_alert_and_no_resize_loop():
    report = play("guard-image-deleted.json")
    # the scenario removes the protection lock first (a warning), then deletes the image (critical, once)
    warning, alert = report["alerts"]
    assert warning["type"] == "CustomImagePool.ProtectionRemoved"
    assert alert["type"] == "CustomImagePool.InUseImageDeleted" and alert["severity"] == "critical"
    assert alert["subject"].endswith("/images/cip-guard-image-deleted")
    assert alert["data"]["pools"][0]["id"].endswith("/pools/orphan-pool")
    # at most the one resize issued before the failure showed, plus the alert's state write
    assert report["armCalls"][POOL_PATCH] <= 2
    assert stages(report) == {"guard-image-deleted": "SCALING"}


def test_a_quota_error_raises_one_alert_and_no_resize_loop():
    report = play("guard-quota-error.json")
    [alert] = report["alerts"]
    assert alert["type"] == "CustomImagePool.PoolCannotReachTarget" and alert["data"]["errorCode"] == "AccountCoreQuotaReached"
    assert alert["data"]["condition"] == "needs-a-person" and alert["data"]["runbook"]
    assert report["armCalls"][POOL_PATCH] == 1  # the alert's state write, no resize
    [pool] = report["resources"]["pools"]
    assert pool["currentDedicatedNodes"] == 100


def test_a_pool_stopped_by_the_core_quota_ends_its_request_failed_with_one_final_reply_and_one_alert():
    report = play("guard-quota-error.json")
    # THEN the request is final, not SCALING for ever, and the team hears it once, with what stopped the pool and what lifts it
    assert stages(report) == {"guard-quota-error": "FAILED"}
    [reply] = report["replies"]
    assert reply["body"]["stage"] == "FAILED" and reply["body"]["poolId"].endswith("/pools/quota-pool")
    reason = reply["body"]["reason"]
    assert "100/600 dedicated" in reason and "AccountCoreQuotaReached" in reason and "core quota" in reason and "cip-guard-rearm" in reason
    # AND ops get the guard's alert only (ending the request raises no second one for the same cause)
    assert [alert["type"] for alert in report["alerts"]] == ["CustomImagePool.PoolCannotReachTarget"]


def test_once_the_quota_is_raised_and_the_pool_re_armed_the_guard_grows_it_to_target_and_the_team_hears_nothing_more():
    report = play("guard-quota-raised-then-rearmed.json")
    [pool] = report["resources"]["pools"]
    assert (pool["currentDedicatedNodes"], pool["targetDedicatedNodes"]) == (600, 600)
    # the request stays as it ended (one final reply), the alert was raised once
    assert stages(report) == {"quota-raised": "FAILED"}
    assert [reply["body"]["stage"] for reply in report["replies"]] == ["FAILED"]
    assert len(report["alerts"]) == 1 and report["functionErrors"] == []


def test_lost_write_events_still_complete_the_request_through_reconciliation():
    rehearsal = played(example("guard-lost-snapshot-event.json"))
    report = build_report(rehearsal)
    assert rehearsal.emulator.events.dropped  # the events really were lost
    assert stages(report) == {"guard-lost-snapshot-event": "READY"}
    assert len(report["resources"]["snapshots"]) == 3 and report["functionErrors"] == []


def test_a_pool_not_made_by_the_pipeline_in_a_guarded_account_is_resized_to_target():
    report = play("guard-opt-in-pool.json")
    [pool] = report["resources"]["pools"]
    assert (pool["currentDedicatedNodes"], pool["targetDedicatedNodes"]) == (900, 900)
    assert report["armCalls"][POOL_PATCH] == 2 and report["alerts"] == []


def test_without_scheduled_checks_the_timer_alone_still_reaches_target_only_later():
    scenario = load_scenario(EXAMPLES / "guard-opt-in-pool.json")
    timer_only = Rehearsal(scenario, deliver_pool_checks=False).run()
    with_checks = played(scenario)
    def finished(rehearsal):
        [pool] = [r for r in rehearsal.emulator.store if r.type == "Microsoft.Batch/batchAccounts/pools"]
        assert pool.properties["currentDedicatedNodes"] == 900
        return pool.properties["allocationStateTransitionTime"]
    assert finished(with_checks) <= finished(timer_only)


def test_scheduled_checks_keep_time_to_target_within_5_percent_of_the_allocation_bound():
    from bench.__main__ import ratio_to_bound, time_to_target_ratio

    # With checks it is the example as played (time_to_target_ratio(True) plays the same), shared with the test above.
    with_checks, timer_only = ratio_to_bound(played(example("guard-2500-nodes.json"))), time_to_target_ratio(False)
    assert with_checks <= 1.05 and with_checks < timer_only
