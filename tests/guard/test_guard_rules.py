"""The guard's rules for one pool, decided without I/O: which pools, which errors, when to stop."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.arm.pools import BadPoolMetadata, PoolView, Targets
from shared.guard.rules import Action, Condition, Decision, GuardState, Policy, decide, desired_targets, guard_resize_timeout, operator_targets
from shared.naming import METADATA_GUARD_REARM, METADATA_GUARD_STATE

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
POOL_ID = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/teambatch/pools/p1"
IMAGE_ID = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-imaging/providers/Microsoft.Compute/images/img"
POLICY = Policy(max_resizes_without_progress=3)


def pool(**changes) -> PoolView:
    base = PoolView(
        id=POOL_ID, etag='W/"1"', provisioning_state="Succeeded", allocation_state="Steady",
        allocation_state_changed=NOW - timedelta(minutes=1), current_dedicated=300, current_low_priority=0,
        fixed_scale=True, target_dedicated=600, target_low_priority=0, resize_timeout=timedelta(minutes=25),
        resize_started=NOW - timedelta(minutes=26), error_codes=("AllocationTimedout",),
        metadata={"cip-request": "r1", "cip-target-dedicated": "600", "cip-target-low-priority": "0"}, image_id=IMAGE_ID,
    )
    return replace(base, **changes)


def with_state(view: PoolView, state: GuardState | None) -> PoolView:
    assert state is not None
    return replace(view, metadata={**view.metadata, METADATA_GUARD_STATE: state.to_metadata_value()})


def state_of(decision: Decision) -> GuardState:
    assert decision.state is not None
    return decision.state


def image_exists(deep: bool) -> list[str]:
    return []


def image_gone(deep: bool) -> list[str]:
    return [IMAGE_ID]


TARGETS = Targets(600, 0)


class TestWhichPoolsAndTargets:
    def test_a_pipeline_pool_is_kept_at_its_metadata_targets(self):
        assert desired_targets(pool(target_dedicated=10), guarded_account=False) == Targets(600, 0)

    def test_another_fixed_scale_pool_is_guarded_only_in_a_guarded_account_at_its_own_targets(self):
        other = pool(metadata={}, target_dedicated=40, target_low_priority=5)
        assert desired_targets(other, guarded_account=False) is None
        assert desired_targets(other, guarded_account=True) == Targets(40, 5)

    def test_an_autoscale_pool_outside_the_pipeline_is_never_the_guards(self):
        assert desired_targets(pool(metadata={}, fixed_scale=False), guarded_account=True) is None

    @pytest.mark.parametrize("value", ["many", "-3", "1.5", ""])
    def test_metadata_that_does_not_parse_is_refused(self, value):
        with pytest.raises(BadPoolMetadata, match="cip-target-dedicated"):
            desired_targets(pool(metadata={"cip-request": "r1", "cip-target-dedicated": value}), guarded_account=False)


class TestOnlySteadySucceededFixedScalePools:
    @pytest.mark.parametrize("changes", [
        {"allocation_state": "Resizing"}, {"allocation_state": "Stopping"}, {"provisioning_state": "Deleting"}, {"fixed_scale": False},
    ])
    def test_pools_in_odd_states_are_skipped(self, changes):
        assert decide(pool(**changes), TARGETS, NOW, POLICY, image_exists).action is Action.SKIP

    def test_a_pool_at_target_or_with_zero_targets_is_at_target(self):
        assert decide(pool(current_dedicated=600), TARGETS, NOW, POLICY, image_exists).action is Action.AT_TARGET
        assert decide(pool(current_dedicated=0), Targets(0, 0), NOW, POLICY, image_exists).action is Action.AT_TARGET

    def test_low_priority_below_target_counts_as_below_target(self):
        decision = decide(pool(current_dedicated=600, current_low_priority=2), Targets(600, 10), NOW, POLICY, image_exists)
        assert decision.action is Action.RESIZE and decision.targets == Targets(600, 10)


class TestErrors:
    @pytest.mark.parametrize("code", ["AllocationTimedout", "AllocationTimedOut", "ALLOCATIONTIMEDOUT", "OverconstrainedAllocationRequestError"])
    def test_retryable_codes_in_any_case_re_issue_the_resize_with_a_20_to_30_minute_timeout(self, code):
        decision = decide(pool(error_codes=(code,), resize_timeout=timedelta(minutes=15)), TARGETS, NOW, POLICY, image_exists)
        assert decision.action is Action.RESIZE
        assert decision.targets == TARGETS and decision.resize_timeout == timedelta(minutes=20)
        assert state_of(decision).resized_at == NOW and state_of(decision).nodes_at_resize == 300

    @pytest.mark.parametrize("code", ["AccountCoreQuotaReached", "AccountLowPriorityCoreQuotaReached", "accountspotcorequotareached",
                                      "IncompatibleVMSize", "DiskEncryptionFailure", "MarketplacePlanPropertyMissing", "SomethingNew"])
    def test_codes_that_need_a_person_alert_once_and_never_resize(self, code):
        first = decide(pool(error_codes=(code,)), TARGETS, NOW, POLICY, image_exists)
        assert first.action is Action.ALERT and first.condition is Condition.NEEDS_A_PERSON and first.error_code == code
        # WHEN the alert was recorded and the same error is seen again THEN the guard stays quiet
        again = decide(with_state(pool(error_codes=(code,)), first.state), TARGETS, NOW + timedelta(minutes=5), POLICY, image_exists)
        assert again.action is Action.QUIET

    def test_a_rearm_after_a_needs_a_person_alert_takes_the_error_as_fixed_and_resizes(self):
        first = decide(pool(error_codes=("AccountCoreQuotaReached",)), TARGETS, NOW, POLICY, image_exists)
        alerted = with_state(pool(error_codes=("AccountCoreQuotaReached",)), first.state)
        # WHEN a person raises the quota and sets a new re-arm value THEN the guard resizes, recording the re-arm
        rearmed = replace(alerted, metadata={**alerted.metadata, METADATA_GUARD_REARM: "quota-raised"})
        decision = decide(rearmed, TARGETS, NOW + timedelta(minutes=30), POLICY, image_exists)
        assert decision.action is Action.RESIZE and state_of(decision).rearm == "quota-raised"
        # AND a re-arm value already acted on does not hide a later resize's error
        failed_again = replace(with_state(pool(error_codes=("AccountCoreQuotaReached",)), state_of(decision)),
                               resize_started=NOW + timedelta(minutes=31))
        failed_again = replace(failed_again, metadata={**failed_again.metadata, METADATA_GUARD_REARM: "quota-raised"})
        assert decide(failed_again, TARGETS, NOW + timedelta(minutes=60), POLICY, image_exists).action is Action.ALERT

    def test_a_new_error_after_an_alert_alerts_again(self):
        first = decide(pool(error_codes=("AccountCoreQuotaReached",)), TARGETS, NOW, POLICY, image_exists)
        changed = with_state(pool(error_codes=("IncompatibleVMSize",)), first.state)
        assert decide(changed, TARGETS, NOW, POLICY, image_exists).action is Action.ALERT

    def test_allocation_failed_while_the_lineage_exists_is_retried(self):
        checked: list[bool] = []

        def lineage_missing(deep: bool) -> list[str]:
            checked.append(deep)
            return []

        decision = decide(pool(error_codes=("AllocationFailed",)), TARGETS, NOW, POLICY, lineage_missing)
        assert decision.action is Action.RESIZE and checked == [True]

    def test_a_gone_image_is_one_critical_condition_and_no_resize(self):
        decision = decide(pool(error_codes=("AllocationFailed",)), TARGETS, NOW, POLICY, image_gone)
        assert decision.action is Action.ALERT and decision.condition is Condition.IMAGE_GONE and decision.missing == (IMAGE_ID,)
        assert decide(with_state(pool(error_codes=("AllocationFailed",)), decision.state), TARGETS, NOW, POLICY, image_gone).action is Action.QUIET

    def test_errors_older_than_our_last_resize_are_stale_and_ignored(self):
        # GIVEN our resize 10 minutes ago, but the pool still shows a quota error from an older resize
        state = GuardState(resized_at=NOW - timedelta(minutes=10), nodes_at_resize=100, target="600/0")
        stale = with_state(pool(error_codes=("AccountCoreQuotaReached",), resize_started=NOW - timedelta(hours=2)), state)
        # THEN the stale error does not deadlock the pool: it is resized again
        assert decide(stale, TARGETS, NOW, POLICY, image_exists).action is Action.RESIZE


class TestCircuitBreakerAndBackoff:
    def test_an_attempt_without_progress_backs_off_exponentially(self):
        state = GuardState(resized_at=NOW - timedelta(minutes=26), nodes_at_resize=300, without_progress=1, target="600/0")
        view = with_state(pool(allocation_state_changed=NOW - timedelta(minutes=3)), state)
        waiting = decide(view, TARGETS, NOW, POLICY, image_exists)
        assert waiting.action is Action.WAIT and waiting.wait_until == NOW - timedelta(minutes=3) + timedelta(minutes=10)
        later = decide(view, TARGETS, NOW + timedelta(minutes=8), POLICY, image_exists)
        assert later.action is Action.RESIZE and state_of(later).without_progress == 2

    def test_progress_resets_the_count(self):
        state = GuardState(resized_at=NOW - timedelta(minutes=26), nodes_at_resize=200, without_progress=2, target="600/0")
        assert state_of(decide(with_state(pool(), state), TARGETS, NOW, POLICY, image_exists)).without_progress == 0

    def test_the_breaker_opens_after_the_configured_resizes_without_progress_and_alerts_once(self):
        state = GuardState(resized_at=NOW - timedelta(hours=1), nodes_at_resize=300, without_progress=2, target="600/0")
        opened = decide(with_state(pool(), state), TARGETS, NOW, POLICY, image_exists)
        assert opened.action is Action.ALERT and opened.condition is Condition.CIRCUIT_OPEN
        assert decide(with_state(pool(), opened.state), TARGETS, NOW + timedelta(hours=1), POLICY, image_exists).action is Action.QUIET

    def test_a_new_target_or_an_operator_rearm_closes_the_breaker(self):
        state = GuardState(resized_at=NOW - timedelta(hours=1), nodes_at_resize=300, without_progress=3, target="600/0", alerted="circuit-open|600/0|")
        new_target = with_state(pool(metadata={"cip-request": "r1", "cip-target-dedicated": "700"}), state)
        assert decide(new_target, Targets(700, 0), NOW, POLICY, image_exists).action is Action.RESIZE
        rearmed = with_state(pool(), state)
        rearmed = replace(rearmed, metadata={**rearmed.metadata, METADATA_GUARD_REARM: "2026-01-05"})
        decision = decide(rearmed, TARGETS, NOW, POLICY, image_exists)
        assert decision.action is Action.RESIZE and state_of(decision).rearm == "2026-01-05"

    def test_unreadable_guard_state_starts_afresh(self):
        view = replace(pool(), metadata={**pool().metadata, METADATA_GUARD_STATE: "{not json"})
        assert decide(view, TARGETS, NOW, POLICY, image_exists).action is Action.RESIZE
        assert json.loads(GuardState().to_metadata_value())["withoutProgress"] == 0


class TestLimits:
    def test_targets_never_exceed_the_custom_image_node_limits(self):
        decision = decide(pool(current_dedicated=0), Targets(3_000, 1_500), NOW, POLICY, image_exists)
        assert decision.targets == Targets(2_500, 1_000)


class TestResizeTimeouts:
    """Batch docs: 20-30 minutes for large fixed pools (the seed); at least 15 minutes per 1,000 VMs for gallery pools."""

    def test_a_resize_adding_2700_nodes_gets_45_minutes(self):
        view = pool(current_dedicated=300, resize_timeout=timedelta(minutes=25))
        assert guard_resize_timeout(view, Targets(3000, 0)) == timedelta(minutes=45)

    def test_a_small_resize_keeps_the_requests_own_timeout_and_never_less_than_20_minutes(self):
        assert guard_resize_timeout(pool(current_dedicated=300), Targets(600, 0), base=timedelta(minutes=25)) == timedelta(minutes=25)
        assert guard_resize_timeout(pool(current_dedicated=300, resize_timeout=timedelta(minutes=5)), Targets(600, 0)) == timedelta(minutes=20)

    def test_the_guards_own_longer_timeout_does_not_become_the_floor_of_later_resizes(self):
        # GIVEN a pool whose last resize (set by the guard) had 45 minutes, and the request's own 25 recorded in state
        view = with_state(pool(current_dedicated=2400, resize_timeout=timedelta(minutes=45)),
                          GuardState(resized_at=NOW - timedelta(minutes=46), nodes_at_resize=2100, target="3000/0",
                                     base_timeout=timedelta(minutes=25)))
        # WHEN the guard resizes for the last 600 nodes
        decision = decide(view, Targets(3000, 0), NOW, POLICY, image_exists)
        # THEN the timeout is the request's 25 minutes again
        assert decision.action is Action.RESIZE and decision.resize_timeout == timedelta(minutes=25)


class TestWhatAPersonChanged:
    def test_a_fixed_target_other_than_the_one_last_set_is_a_persons_and_is_adopted(self):
        view = with_state(pool(target_dedicated=400), GuardState(target="600/0"))
        assert operator_targets(view, GuardState.from_metadata(view.metadata)) == Targets(400, 0)

    def test_the_target_the_guard_or_the_pipeline_set_is_not_a_persons(self):
        view = with_state(pool(target_dedicated=600), GuardState(target="600/0"))
        assert operator_targets(view, GuardState.from_metadata(view.metadata)) is None

    def test_without_a_recorded_target_nothing_is_adopted(self):
        assert operator_targets(pool(target_dedicated=400), GuardState()) is None


class TestUnreadableState:
    def test_planted_or_garbled_guard_state_starts_afresh(self):
        planted = [
            '{"resizedAt": "2026-01-05T11:00:00"}',  # no time zone
            '{"resizedAt": "0001-01-01T00:00:00+00:00"}',
            '{"withoutProgress": Infinity}',
            '{"nodesAtResize": 1e400}',
            '{"target": ' + "[" * 5000 + "]" * 5000 + "}",
            '[1, 2, 3]',
            '{"alerted": {"x": 1}}',
            '"just a string"',
        ]
        for raw in planted:
            assert GuardState.from_metadata({"cip-guard-state": raw}) == GuardState(), raw

    def test_a_pool_with_a_planted_naive_timestamp_is_still_resized(self):
        view = pool(metadata={"cip-request": "r1", "cip-target-dedicated": "600", "cip-target-low-priority": "0",
                              "cip-guard-state": '{"resizedAt": "2026-01-05T11:00:00", "nodesAtResize": 300, "withoutProgress": 2}'})
        assert decide(view, TARGETS, NOW, POLICY, image_exists).action is Action.RESIZE
