"""Concurrent deliveries, as a scaled-out Functions host makes them, never strand a request.

The Functions host runs several Event Grid and Service Bus deliveries of one request at once. Each
snapshot's event reads only its own snapshot, so when two of them confirm their snapshot at the same
moment, the one that loses the ledger race must still record its confirmation: no event will come to
say that snapshot is done again. Every request must reach its pool within the critical path of Azure's
own operations plus one look interval, however the threads interleave.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

# The benchmark's own concurrent delivery (four threads): the tests assert what the benchmark reports.
from bench.pipeline import deliver_concurrently, time_to_pool_bound
from rehearsal.pump import ConcurrentPump
from rehearsal.runner import REQUESTS_QUEUE, Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario, default_request
from shared import bootstrap
from shared.arm.ids import resource_key
from shared.messaging import REQUEST_LOOK_MAX, OutgoingMessage
from shared.store.ledger import RequestRecord
from shared.store.memory import InMemoryLedger


class TestConcurrentDeliveryNeverStrandsARequest:
    @pytest.mark.parametrize("seed", range(16))
    def test_one_request_whose_snapshot_events_race_reaches_its_pool_on_the_critical_path(self, seed):
        # GIVEN one request whose three snapshots finish together, their events delivered by four threads at once
        # WHEN the deliveries race for the ledger
        outcome = deliver_concurrently(seed, requests=1)
        # THEN no confirmation is lost: the pool is created within the critical path plus one look
        assert outcome.stranded == []
        assert outcome.seconds_to_last_pool <= outcome.bound_seconds + REQUEST_LOOK_MAX.total_seconds()

    @pytest.mark.parametrize("seed", [1, 2])
    def test_many_requests_at_once_with_every_event_delivered_three_times_all_reach_their_pools(self, seed):
        # GIVEN 30 requests submitted at once, every event delivered three times, out of order, by four threads
        outcome = deliver_concurrently(seed, requests=30, event_delivery={"copies": 3, "reorder": True, "maxDelaySeconds": 20})
        # THEN every request reaches its pool, none later than the critical path plus one look interval
        assert outcome.stranded == []
        assert outcome.seconds_to_last_pool <= outcome.bound_seconds + REQUEST_LOOK_MAX.total_seconds()


class ConfirmationsCollide(InMemoryLedger):
    """A ledger whose first snapshot confirmation loses the race: just before it is written, another
    worker's delivery confirms a sibling snapshot (the write another worker makes in the same moment)."""

    def __init__(self) -> None:
        super().__init__()
        self.overtaken_by: str | None = None

    def _replace(self, record: RequestRecord, updated: RequestRecord) -> RequestRecord:
        known, confirming = record.details.get("succeeded") or [], updated.details.get("succeeded") or []
        if self.overtaken_by is None and len(confirming) > len(known):
            plan = record.plan
            assert plan is not None
            sibling = next(resource_key(p.snapshot.id) for p in plan.snapshots if resource_key(p.snapshot.id) not in confirming)
            self.overtaken_by = sibling
            super()._replace(record, replace(record, details={**record.details, "succeeded": [*known, sibling]}))
        return super()._replace(record, updated)


class ClaimOvertaken(InMemoryLedger):
    """A ledger where, just before the image's claim is written, another delivery writes something else to the
    record (a confirmation, a reply's bookkeeping): the claim's write loses the race, yet nobody claimed the image."""

    def __init__(self) -> None:
        super().__init__()
        self.overtaken = False

    def _replace(self, record: RequestRecord, updated: RequestRecord) -> RequestRecord:
        claims, claiming = record.details.get("claims") or {}, updated.details.get("claims") or {}
        if not self.overtaken and "image" in claiming and "image" not in claims:
            self.overtaken = True
            super()._replace(record, replace(record, details={**record.details, "unrelated": "another delivery's write"}))
        return super()._replace(record, updated)


def pool_made_from_events_alone(ledger: InMemoryLedger) -> Rehearsal:
    """The default request with a small pool, driven by events and scheduled looks only, until its pool exists."""
    rehearsal = Rehearsal(Scenario.model_validate({"world": {"replyQueues": ["replies"]}, "steps": []}), ledger=ledger)
    request = default_request(targetDedicatedNodes=4)
    pool_id = f"{DEFAULT_ACCOUNT_ID}/pools/{request['pool']['poolName']}"
    bootstrap.install(rehearsal.services)
    try:
        rehearsal.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json.dumps(request), message_id="m", reply_to="replies"))
        ConcurrentPump(rehearsal, workers=1).run(until=lambda: rehearsal.emulator.store.find(pool_id) is not None, limit=timedelta(hours=2))
    finally:
        bootstrap.install(None)
    return rehearsal


class TestALostLedgerRaceIsRetried:
    def test_a_snapshot_confirmation_overtaken_by_another_delivery_is_still_recorded(self):
        # GIVEN a request whose first snapshot confirmation is overtaken by another worker confirming a sibling
        ledger = ConfirmationsCollide()
        # WHEN only events and scheduled looks drive it
        rehearsal = pool_made_from_events_alone(ledger)
        # THEN the overtaken delivery re-read the record and added its confirmation: the pool is made on time
        assert ledger.overtaken_by is not None
        assert rehearsal.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools") != []
        assert rehearsal.emulator.clock.elapsed_seconds <= time_to_pool_bound(rehearsal.emulator, replicas=1) + REQUEST_LOOK_MAX.total_seconds()

    def test_a_claim_that_loses_the_race_to_an_unrelated_write_is_claimed_again(self):
        # GIVEN a request whose image claim loses the ledger race to a write that claims nothing
        ledger = ClaimOvertaken()
        rehearsal = pool_made_from_events_alone(ledger)
        # THEN the delivery saw that nobody claimed the image, claimed it and sent it: the pool is made on time
        assert ledger.overtaken
        assert rehearsal.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools") != []
        assert rehearsal.emulator.clock.elapsed_seconds <= time_to_pool_bound(rehearsal.emulator, replicas=1) + REQUEST_LOOK_MAX.total_seconds()


class TwoDeliveriesClaimTogether(InMemoryLedger):
    """A ledger on which a second delivery of the request runs to the end just before the first one's claim of the
    image is written: both read the record unclaimed; the second claims and sends, the first loses the write."""

    def __init__(self) -> None:
        super().__init__()
        self.second_delivery: Callable[[RequestRecord], object] | None = None
        self.raced = False

    def _replace(self, record: RequestRecord, updated: RequestRecord) -> RequestRecord:
        claiming = "image" in (updated.details.get("claims") or {}) and "image" not in (record.details.get("claims") or {})
        if claiming and not self.raced and self.second_delivery is not None:
            self.raced = True
            self.second_delivery(record)
        return super()._replace(record, updated)


class TestAClaimIsHeldForItsLease:
    def test_a_delivery_that_loses_the_claim_to_another_within_the_lease_sends_nothing(self):

        ledger = TwoDeliveriesClaimTogether()
        rehearsal = Rehearsal(Scenario.model_validate({"world": {"replyQueues": ["replies"]}, "steps": []}), ledger=ledger)
        ledger.second_delivery = lambda record: rehearsal.services.pipeline().drive(ledger.get(record.request_id))
        pool_id = f"{DEFAULT_ACCOUNT_ID}/pools/render-pool"
        bootstrap.install(rehearsal.services)
        try:
            # GIVEN two deliveries of one request that both read it, in IMAGING, before either claimed its image
            rehearsal.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json.dumps(default_request()), message_id="m", reply_to="replies"))
            ConcurrentPump(rehearsal, workers=1).run(until=lambda: rehearsal.emulator.store.find(pool_id) is not None, limit=timedelta(hours=2))
        finally:
            bootstrap.install(None)
        # THEN the image is sent once: the loser re-read the record and found the claim still within its lease
        assert ledger.raced
        assert rehearsal.emulator.calls["PUT Microsoft.Compute/images"] == 1


def looks_in(rehearsal: Rehearsal) -> list:
    """The pipeline's looks the pool-checks queue accepted (after its duplicate detection)."""
    return [m for m in rehearsal.emulator.servicebus.queues["pool-checks"].sent if m.message.subject == "RequestCheck"]


def looks_dropped(rehearsal: Rehearsal) -> list[str]:
    """Looks the pipeline sent again that the queue's duplicate detection dropped (the same look, scheduled twice)."""
    return [m.message_id for m in rehearsal.emulator.servicebus.queues["pool-checks"].duplicates if m.message.subject == "RequestCheck"]


def looks_by_resource(rehearsal: Rehearsal) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in looks_in(rehearsal):
        name = json.loads(message.message.body)["resourceId"].rsplit("/", 1)[-1]
        counts[name] = counts.get(name, 0) + 1
    return counts


def played(copies: int, nodes: int) -> Rehearsal:
    """The default request where ARM raises write events when a PUT is accepted (so only looks see resources done)."""
    body = default_request(targetDedicatedNodes=nodes)
    return Rehearsal(Scenario.model_validate({
        "world": {"eventDelivery": {"copies": copies, "maxDelaySeconds": 20, "reorder": True},
                  "eventBehaviour": {"writeSuccessAt": "acceptance"},
                  "batchAccounts": [{"id": DEFAULT_ACCOUNT_ID, "dedicatedCoreQuota": 1_000_000}]},
        "steps": [{"submit": body, "replyTo": "replies"}, {"runUntilIdle": True}]})).run()


class TestOneChainOfLooksPerResource:
    def test_events_delivered_three_times_schedule_the_same_looks_as_one_delivery(self):
        # GIVEN every write event delivered three times, shuffled, where events come when a PUT is accepted
        once, thrice = played(1, 600), played(3, 600)
        # THEN one chain of looks per resource: the same looks as with one delivery, each scheduled once (the queue's
        # duplicate detection had nothing to drop: the pipeline never sent a look twice)
        assert looks_by_resource(thrice) == looks_by_resource(once)
        assert looks_dropped(thrice) == []
        assert thrice.ledger.get("team-a-render-001").stage.value == "READY"

    def test_a_long_replication_gets_at_most_the_bounded_looks_and_the_timer_resumes_never_restarts_them(self):
        from shared.messaging import MAX_REQUEST_LOOKS

        # GIVEN a 6,000-node pool: its version replicates for longer than the chain of looks lasts
        rehearsal = played(1, 6000)
        plan = rehearsal.ledger.get("team-a-render-001").plan
        assert plan is not None and plan.image_version is not None
        version = plan.image_version.name
        # THEN the version got at most the bounded number of looks, each a different one of its chain
        attempts = [json.loads(m.message.body)["attempt"] for m in looks_in(rehearsal) if version in m.message.body]
        assert len(attempts) <= MAX_REQUEST_LOOKS and sorted(attempts) == list(range(1, len(attempts) + 1))
        # AND the reconcile timer resumed the chain rather than starting it again from its first look
        assert looks_dropped(rehearsal) == []
        assert rehearsal.ledger.get("team-a-render-001").stage.value == "READY"
