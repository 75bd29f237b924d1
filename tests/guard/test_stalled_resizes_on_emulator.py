"""The stall policy end to end: the default request played on the emulator's allocation model, with and without stalls."""

from __future__ import annotations

from rehearsal.runner import Rehearsal
from rehearsal.scenario import Scenario, default_request

STOPS = "POST Microsoft.Batch/batchAccounts/pools"
RESIZES = "PATCH Microsoft.Batch/batchAccounts/pools"


def play(nodes: int, **allocation) -> Rehearsal:
    """The default request for ``nodes`` nodes, played until idle on the given allocation model."""
    return Rehearsal(Scenario.model_validate({
        "world": {"allocation": allocation} if allocation else {},
        "steps": [{"submit": default_request(targetDedicatedNodes=nodes), "replyTo": "team-a-replies"}, {"runUntilIdle": True}],
    })).run()


def ready_at(rehearsal: Rehearsal) -> float | None:
    return next(((e.at - rehearsal.started_at).total_seconds() for e in rehearsal.timeline if e.stage == "READY"), None)


def alerts(rehearsal: Rehearsal) -> list[str]:
    return [a["type"] for a in rehearsal.emulator.topic.received]


class TestStallPolicy:
    def test_a_resize_stalled_at_its_node_limit_is_stopped_once_and_the_pool_is_ready_minutes_later(self):
        # GIVEN the default allocation model: at most 300 nodes per resize, then the resize only "keeps trying"
        rehearsal = play(600)
        # THEN the first resize was stopped once its nodes stopped coming, and one more resize reached the target
        assert rehearsal.emulator.calls[STOPS] == 1 and rehearsal.emulator.calls[RESIZES] == 1
        created = 1020  # virtual seconds: the pool's creation (its 300th node comes 3 minutes later)
        ready = ready_at(rehearsal)
        assert ready is not None and ready < created + 25 * 60  # before the first resize's 25-minute timeout
        assert alerts(rehearsal) == []

    def test_no_resize_is_stopped_where_allocation_does_not_stall(self):
        rehearsal = play(600, maxNodesPerResize=1000)
        assert rehearsal.emulator.calls[STOPS] == 0 and rehearsal.emulator.calls[RESIZES] == 0
        assert ready_at(rehearsal) is not None and alerts(rehearsal) == []

    def test_a_capacity_stall_that_ends_costs_one_stop_and_the_pool_still_reaches_its_target(self):
        # GIVEN the region out of capacity from minute 18 (200 of the 250 nodes in) for 15 minutes
        rehearsal = play(250, maxNodesPerResize=1000, capacityPauses=[{"after": "PT18M", "for": "PT15M"}])
        # THEN the stalled resize was stopped once; the resize after it waited out the pause and brought the rest
        assert rehearsal.emulator.calls[STOPS] == 1 and rehearsal.emulator.calls[RESIZES] == 1
        ready = ready_at(rehearsal)
        assert ready is not None and ready >= (18 + 15) * 60 and alerts(rehearsal) == []

    def test_a_capacity_stall_that_never_ends_stops_once_then_trips_the_breaker_without_a_stop_loop(self):
        rehearsal = play(250, maxNodesPerResize=1000, capacityPauses=[{"after": "PT18M"}])
        assert rehearsal.emulator.calls[STOPS] == 1
        assert ready_at(rehearsal) is None and "CustomImagePool.PoolCannotReachTarget" in alerts(rehearsal)
