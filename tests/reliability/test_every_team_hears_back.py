"""Every request ends, every team hears back, and no sender can hurt another team's request.

Each class is one item of the reliability issue: the test names the attack or accident, and what must hold.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from rehearsal.host import service_bus_message
from rehearsal.report import build_report
from rehearsal.runner import REQUESTS_QUEUE, Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, DEFAULT_RG, Scenario, default_request
from shared import bootstrap
from shared.messaging import MessageSender, OutgoingMessage, PoolCheck
from shared.store.ledger import Ledger, Stage
from shared.store.memory import InMemoryLedger
from tests.support import OutageLedger

POOL_ID = f"{DEFAULT_ACCOUNT_ID}/pools/render-pool"


def world(steps: list[dict] | None = None, ledger: Ledger | None = None, **world_fields) -> Rehearsal:
    return Rehearsal(Scenario.model_validate({"world": world_fields, "steps": steps or []}), ledger=ledger)


def deliver(rehearsal: Rehearsal, body: bytes | str | dict, message_id: str, reply_to: str | None = "team-a-replies",
            delivery_count: int = 1) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
    with installed(rehearsal):
        rehearsal.host.call("pool_requests", service_bus_message(body=raw, message_id=message_id, reply_to=reply_to,
                                                                 delivery_count=delivery_count))


class installed:
    def __init__(self, rehearsal: Rehearsal) -> None:
        self._rehearsal = rehearsal

    def __enter__(self) -> Rehearsal:
        bootstrap.install(self._rehearsal.services)
        return self._rehearsal

    def __exit__(self, *exc) -> None:
        bootstrap.install(None)


def replies(rehearsal: Rehearsal, queue: str = "team-a-replies") -> list[dict]:
    return [json.loads(m.message.body) for m in rehearsal.emulator.servicebus.queue(queue).sent]


def run_until_idle(rehearsal: Rehearsal, limit: timedelta = timedelta(days=1)) -> None:
    with installed(rehearsal):
        rehearsal.run_until_idle(limit)


@pytest.fixture(params=["in-memory", pytest.param("table-storage", marks=pytest.mark.azurite)])
def ledger(request) -> Ledger:
    """Where the ledger is involved, each test runs on both back-ends: in memory and on Azurite."""
    if request.param == "in-memory":
        return InMemoryLedger()
    from shared.store.tables import TableLedger

    return TableLedger(request.getfixturevalue("azurite_table_client"))


class TestAnotherTeamsRequestIsNeverChanged:
    """Item 1 and 2: a malformed or different body under a requestId already in use."""

    @pytest.fixture(autouse=True)
    def owner(self, ledger) -> None:
        self.rehearsal = world(ledger=ledger)
        deliver(self.rehearsal, default_request(), "owner-msg", reply_to="team-a-replies")
        self.before = self.rehearsal.ledger.get("team-a-render-001")

    def assert_owner_untouched_and_intruder_answered(self, reply_queue: str) -> None:
        after = self.rehearsal.ledger.get("team-a-render-001")
        assert (after.stage, after.reason, after.body, after.etag) == (self.before.stage, self.before.reason, self.before.body, self.before.etag)
        [answer] = replies(self.rehearsal, reply_queue)
        assert answer == {"requestId": "team-a-render-001", "stage": "REJECTED",
                          "reason": "requestId: team-a-render-001 is already used by another request", "poolId": None}

    def test_a_malformed_body_carrying_anothers_request_id_is_answered_and_changes_nothing(self):
        deliver(self.rehearsal, '{"requestId": "team-a-render-001", "pool": 3}', "intruder-1", reply_to="team-b-replies")
        self.assert_owner_untouched_and_intruder_answered("team-b-replies")

    def test_a_malformed_body_whose_message_id_is_anothers_request_id_changes_nothing(self):
        deliver(self.rehearsal, "[not json", "team-a-render-001", reply_to="team-b-replies")
        self.assert_owner_untouched_and_intruder_answered("team-b-replies")

    def test_a_second_valid_body_under_the_same_request_id_is_answered_not_ignored(self):
        deliver(self.rehearsal, default_request(targetDedicatedNodes=5), "second-msg", reply_to="team-b-replies")
        self.assert_owner_untouched_and_intruder_answered("team-b-replies")

    def test_the_same_body_delivered_again_is_the_same_request_and_no_one_is_told_of_a_conflict(self):
        deliver(self.rehearsal, default_request(), "owner-msg", delivery_count=2)
        assert self.rehearsal.ledger.get("team-a-render-001").stage is not Stage.REJECTED
        assert [r for r in replies(self.rehearsal) if r["stage"] == "REJECTED"] == []


class TestReservedNames:
    """Item 3: names starting with cip- belong to this automation."""

    @pytest.mark.parametrize("change, field", [
        ({"pool": {**default_request()["pool"], "metadata": {"cip-guard-state": "{}"}}}, "pool.metadata"),
        ({"pool": {**default_request()["pool"], "metadata": {"CIP-target-dedicated": "1"}}}, "pool.metadata"),
        ({"image": {**default_request()["image"], "imageDefinition": "cip-someone-elses"}}, "image.imageDefinition"),
    ])
    def test_a_reserved_name_is_rejected_naming_the_field(self, change, field):
        rehearsal = world()
        deliver(rehearsal, {**default_request(), **change}, "m-1")
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.REJECTED and (record.reason or "").startswith(field) and "reserved" in (record.reason or "")

    def test_a_planted_naive_timestamp_in_the_guard_state_does_not_stop_the_pool_growing(self):
        # GIVEN a 600-node request whose pool got a planted guard state (naive time) while growing
        rehearsal = world([{"submit": default_request()}, {"advance": "PT30M"},
                           {"setPoolMetadata": {"poolId": POOL_ID, "metadata": {
                               "cip-guard-state": '{"resizedAt": "2026-01-05T09:00:00", "nodesAtResize": 300, "withoutProgress": 9}'}}},
                           {"runUntilIdle": True}])
        # WHEN the guard keeps sweeping; THEN the state starts afresh and the pool reaches its target
        report = build_report(rehearsal.run())
        assert [r["stage"] for r in report["requests"]] == ["READY"]


class TestRejectionsAreStoredAndAnswered:
    """Items 4 and 5: one conditional insert of a final record, whatever the sender sent."""

    def test_an_unknown_field_with_a_33000_character_name_is_rejected_with_a_bounded_reason(self, ledger):
        rehearsal = world(ledger=ledger)
        deliver(rehearsal, {**default_request(), "x" * 33_000: 1}, "m-1")
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.REJECTED and len(record.reason or "") <= 2000 and (record.reason or "").startswith("body:")
        assert [r["stage"] for r in replies(rehearsal)] == ["REJECTED"]

    def test_60_kb_of_metadata_is_rejected_naming_the_size_limit(self, ledger):
        rehearsal = world(ledger=ledger)
        request = default_request(metadata={f"k{i}": "v" * 1000 for i in range(60)})
        deliver(rehearsal, request, "m-1")
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.REJECTED and (record.reason or "").startswith("body:") and "at most 16384 bytes" in (record.reason or "")
        assert [r["stage"] for r in replies(rehearsal)] == ["REJECTED"]

    def test_33_metadata_items_are_rejected_naming_the_count_limit(self):
        rehearsal = world()
        deliver(rehearsal, default_request(metadata={f"k{i}": "v" for i in range(33)}), "m-1")
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.REJECTED and record.reason == "pool.metadata: at most 32 items"

    def test_deeply_nested_json_is_rejected_naming_the_depth_limit(self, ledger):
        rehearsal = world(ledger=ledger)
        deliver(rehearsal, '{"requestId": "deep-1", "x": ' + "[" * 5000 + "]" * 5000 + "}", "m-1")
        # Too deep even to read its requestId: the rejection is recorded under the message's id
        record = rehearsal.ledger.get("m-1")
        assert record.stage is Stage.REJECTED and record.reason == "body: nested deeper than 8 levels"
        deliver(rehearsal, '{"requestId": "deep-2", "x": ' + "[" * 20 + "]" * 20 + "}", "m-2")
        assert rehearsal.ledger.get("deep-2").reason == "body: nested deeper than 8 levels"

    def test_a_rejection_is_one_insert_of_a_final_record(self):
        rehearsal = world()
        deliver(rehearsal, "{broken", "m-broken")
        [record] = rehearsal.ledger.list_recent(10)
        assert record.stage is Stage.REJECTED and record.details.get("replied") is True
        # Two writes in all: the final record, then the note that its reply went out (never a RECEIVED record first).
        assert record.etag == 'W/"2"'


class TestRepliesGoOnlyToReplyQueues:
    """Item 6."""

    @pytest.mark.parametrize("queue", ["alerts", "pool-checks", REQUESTS_QUEUE, "someone-elses-queue"])
    def test_a_reply_to_a_queue_that_is_not_a_reply_queue_is_never_sent(self, queue):
        rehearsal = world()
        deliver(rehearsal, "{broken", "m-1", reply_to=queue)
        assert replies(rehearsal, queue) == []
        [record] = rehearsal.ledger.list_recent(10)
        assert record.stage is Stage.REJECTED and record.reply_to is None and record.details["replyToRefused"] == queue


class FailingOnce:
    """A MessageSender whose first send to ``queue`` fails (Service Bus unreachable for a moment)."""

    def __init__(self, inner: MessageSender, queue: str) -> None:
        self.inner, self.queue, self.failed = inner, queue, False

    def send(self, queue: str, message: OutgoingMessage) -> None:
        if queue == self.queue and not self.failed:
            self.failed = True
            raise ConnectionError("Service Bus unreachable (injected)")
        self.inner.send(queue, message)


class TestExactlyOneReply:
    """Item 7: a reply that fails once after the final write is still sent, once."""

    def test_a_failed_reply_is_sent_by_the_redelivery_once(self, ledger):
        from dataclasses import replace

        rehearsal = world(ledger=ledger)
        rehearsal.services = replace(rehearsal.services, sender=FailingOnce(rehearsal.emulator.servicebus, "team-a-replies"))
        with pytest.raises(ConnectionError):
            with installed(rehearsal):
                rehearsal.host.indexed("pool_requests")(service_bus_message(body=b"{broken", message_id="m-1", reply_to="team-a-replies",
                                                                             delivery_count=1))
        [record] = rehearsal.ledger.list_recent(10)
        assert record.stage is Stage.REJECTED and record.reply_pending
        deliver(rehearsal, "{broken", "m-1", delivery_count=2)
        deliver(rehearsal, "{broken", "m-1", delivery_count=3)
        assert [r["stage"] for r in replies(rehearsal)] == ["REJECTED"]

    def test_a_failed_reply_is_sent_by_the_sweep_once_when_no_redelivery_comes(self, ledger):
        from dataclasses import replace


        rehearsal = world([{"submit": default_request(targetDedicatedNodes=10), "replyTo": "team-a-replies"}], ledger=ledger)
        rehearsal.services = replace(rehearsal.services, sender=FailingOnce(rehearsal.emulator.servicebus, "team-a-replies"))
        run_until_idle(rehearsal.run())
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.READY
        rehearsal.emulator.advance(300)
        with installed(rehearsal):
            rehearsal.services.guard().run_sweep()
            rehearsal.services.guard().run_sweep()
        assert [r["stage"] for r in replies(rehearsal)] == ["READY"]
        assert rehearsal.ledger.list_reply_pending() == []


class TestPoolsThatCannotEnd:
    """Item 8: a pool deleted while its request is SCALING; a pool that cannot reach its target."""

    def scaling_world(self) -> Rehearsal:
        # 1,200 nodes: four resizes of 300, so the pool is still growing 30 minutes in.
        rehearsal = world([{"submit": default_request(targetDedicatedNodes=1200), "replyTo": "team-a-replies"}, {"advance": "PT30M"}])
        rehearsal.run()
        assert rehearsal.ledger.get("team-a-render-001").stage is Stage.SCALING
        return rehearsal

    def test_a_pool_deleted_through_the_batch_service_api_ends_its_request_failed_with_a_reply(self):
        rehearsal = self.scaling_world()
        # WHEN someone deletes the pool through the Batch service API: no ARM event reaches us
        rehearsal.emulator.store.remove(POOL_ID)
        run_until_idle(rehearsal)
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.FAILED and "was deleted before it reached its target" in (record.reason or "")
        assert [r["stage"] for r in replies(rehearsal)] == ["FAILED"]

    def test_a_pool_deleted_through_arm_ends_its_request_failed_on_the_event(self):
        rehearsal = self.scaling_world()
        # WHEN a person deletes the pool through ARM (Batch pool deletion takes a while, then the event comes)
        with installed(rehearsal):
            rehearsal.delete_as_operator(POOL_ID)
            rehearsal.advance(timedelta(minutes=2))
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.FAILED
        assert [r["stage"] for r in replies(rehearsal)] == ["FAILED"]

    def test_a_pool_stopped_by_quota_ends_its_request_with_one_final_reply(self):
        rehearsal = world([{"submit": default_request(), "replyTo": "team-a-replies"},
                           {"setBatchAccountQuota": {"batchAccountId": DEFAULT_ACCOUNT_ID, "dedicatedCoreQuota": 400}},
                           {"runUntilIdle": True, "maxVirtualTime": "P1D"}]).run()
        [final] = replies(rehearsal)
        assert final["stage"] == "FAILED" and "AccountCoreQuotaReached" in final["reason"] and "100/600 dedicated" in final["reason"]


class TestRequestFailedIsPerRequest:
    """Item 9: a resubmission that fails again within the window is alerted again."""

    def test_two_requests_failing_the_same_way_raise_two_alerts(self):
        faults = [{"operation": "PUT Microsoft.Compute/images", "kind": "lro_failed"}]
        first, second = default_request(), default_request()
        second["requestId"] = "team-a-render-002"
        rehearsal = world([{"submit": first}, {"runUntilIdle": True}, {"submit": second}, {"runUntilIdle": True}], faults=faults).run()
        report = build_report(rehearsal)
        assert [r["stage"] for r in report["requests"]] == ["FAILED", "FAILED"]
        failed = [a for a in report["alerts"] if a["type"] == "CustomImagePool.RequestFailed"]
        assert sorted(a["data"]["requestIds"][0] for a in failed) == ["team-a-render-001", "team-a-render-002"]


class TestLedgerOutage:
    """Item 10: Table Storage unreachable for 10 minutes loses no request."""

    def test_requests_arriving_during_a_10_minute_outage_all_complete_with_one_reply_each(self):
        from shared.bootstrap import Services

        holder: dict[str, Rehearsal] = {}
        start = datetime.fromisoformat("2026-01-05T09:00:00+00:00")
        ledger = OutageLedger(InMemoryLedger(), lambda: start <= holder["r"].emulator.now() < start + timedelta(minutes=10))
        steps: list[dict] = []
        for index in range(5):
            request = default_request(poolName=f"outage-{index}", targetDedicatedNodes=10)
            request["requestId"] = f"outage-{index}"
            steps += [{"submit": request, "replyTo": "team-a-replies", "messageId": f"outage-msg-{index}"}, {"advance": "PT1M"}]
        # The functions see the outage; the rehearsal itself reads the same ledger behind it.
        rehearsal = world(steps + [{"runUntilIdle": True}], ledger=ledger.inner)
        deps = rehearsal.services
        rehearsal.services = Services.on_clients(settings=deps.settings, clients=rehearsal.clients, ledger=ledger, sender=deps.sender, now=deps.now)
        holder["r"] = rehearsal
        rehearsal.run()
        records = {r.request_id: r for r in ledger.inner.list_recent(100)}
        assert sorted(records) == [f"outage-{i}" for i in range(5)]
        assert all(r.stage is Stage.READY for r in records.values())
        assert rehearsal.emulator.servicebus.queue(REQUESTS_QUEUE).dead_letters == []
        stages_by_request = sorted((r["requestId"], r["stage"]) for r in replies(rehearsal))
        assert stages_by_request == [(f"outage-{i}", "READY") for i in range(5)]


class TestDisksStayInScope:
    """Item 11: the disks behind an in-scope VM must be in scope too."""

    def test_a_vm_whose_data_disk_lives_outside_the_allowed_scopes_is_rejected_naming_the_disk(self):
        rehearsal = world()
        vm = rehearsal.emulator.store.get(f"{DEFAULT_RG}/providers/Microsoft.Compute/virtualMachines/builder")
        foreign = vm.properties["storageProfile"]["dataDisks"][1]["managedDisk"]["id"].replace("rg-imaging", "rg-someone-else")
        vm.properties["storageProfile"]["dataDisks"][1]["managedDisk"]["id"] = foreign
        deliver(rehearsal, default_request(), "m-1")
        record = rehearsal.ledger.get("team-a-render-001")
        assert record.stage is Stage.REJECTED
        assert record.reason == f"source.virtualMachineId: the data disk at LUN 1 ({foreign}) is outside the allowed scopes"
        assert "PUT Microsoft.Compute/snapshots" not in rehearsal.emulator.calls


class TestPoisonIsDroppedOrSkipped:
    """Item 12."""

    @pytest.mark.parametrize("body", [
        b'{"poolId": "/x", "attempt": 1e400}', b'{"poolId": "/x", "attempt": Infinity}',
        b'{"poolId": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"poolId": "/x", "attempt": -1}', b'"text"',
    ])
    def test_a_poison_pool_check_is_dropped_without_raising(self, body):
        assert PoolCheck.from_body(body) is None
        rehearsal = world()
        with installed(rehearsal):
            assert rehearsal.host.call("pool_checks", service_bus_message(body=body, message_id="check-1", reply_to=None, delivery_count=1))
        assert rehearsal.host.errors == []

    def test_a_hand_edited_target_does_not_block_the_critical_alert_for_its_pool(self):
        # GIVEN a growing pool whose cip-target-dedicated someone set to a superscript two
        rehearsal = world([{"submit": default_request()}, {"advance": "PT30M"},
                           {"setPoolMetadata": {"poolId": POOL_ID, "metadata": {"cip-target-dedicated": "\u00b2"}}}])
        rehearsal.run()
        # WHEN its image is deleted and the deletion is seen
        [version] = [r for r in rehearsal.emulator.store.of_type("Microsoft.Compute/galleries/images/versions")]
        rehearsal.emulator.store.remove(version.id)
        run_until_idle(rehearsal, timedelta(hours=1))
        # THEN the critical alert still goes out, naming the pool (its target read from the pool itself)
        critical = [a for a in rehearsal.emulator.topic.received if a["type"] == "CustomImagePool.InUseImageDeleted"]
        assert critical and critical[0]["data"]["pools"][0]["id"] == POOL_ID
        assert rehearsal.host.errors == []


class TestOldRecordsAgeOut:
    """Final, answered records older than LEDGER_RETENTION_DAYS keep only what reserves their id."""

    def test_an_answered_request_past_the_retention_ages_out_and_its_id_stays_taken(self, ledger):

        # GIVEN a request that ended READY and was answered
        rehearsal = world([{"submit": default_request(targetDedicatedNodes=10), "replyTo": "team-a-replies"}], ledger=ledger)
        run_until_idle(rehearsal.run())
        assert rehearsal.ledger.get("team-a-render-001").stage is Stage.READY

        # WHEN 91 days pass (the default retention is 90) and the sweep runs
        rehearsal.emulator.clock.advance(91 * 24 * 3600)
        with installed(rehearsal):
            report = rehearsal.services.guard().run_sweep()

        # THEN its body and details are gone but its id, stage and reason stay
        aged = rehearsal.ledger.get("team-a-render-001")
        assert report.aged_out == ["team-a-render-001"]
        assert aged.stage is Stage.READY and aged.body == {} and set(aged.details) == {"plan", "replied", "agedOut"}
        assert aged.pool_id == POOL_ID
        # AND a later message using the id is answered as a conflict, the old record untouched
        deliver(rehearsal, default_request(), "reuse-msg", reply_to="team-b-replies")
        assert replies(rehearsal, "team-b-replies") == [{
            "requestId": "team-a-render-001", "stage": "REJECTED",
            "reason": "requestId: team-a-render-001 is already used by another request", "poolId": None}]
        assert rehearsal.ledger.get("team-a-render-001").etag == aged.etag

    def test_young_open_and_unanswered_records_stay_and_the_pass_runs_once_a_day(self, ledger):
        from shared.pipeline.reconcile import age_out_final_records
        from shared.store.ledger import RequestRecord

        rehearsal = world(ledger=ledger)
        now = rehearsal.emulator.now()
        old = now - timedelta(days=100)

        def record(request_id: str, stage: Stage, at: datetime, reply_to: str | None = None) -> None:
            rehearsal.ledger.create(RequestRecord.new(request_id=request_id, stage=stage, body={"requestId": request_id}, now=at,
                                                      reply_to=reply_to, details={"replied": True} if reply_to else None))

        def age_out(services) -> list[str]:
            return age_out_final_records(services.ledger, services.records, services.settings, services.now())

        # GIVEN an old answered record, an old unanswered one, an old open one and a young final one
        record("old-answered", Stage.FAILED, old, reply_to="team-a-replies")
        rehearsal.ledger.create(RequestRecord.new(request_id="old-unanswered", stage=Stage.REJECTED, body={}, now=old, reply_to="team-a-replies"))
        record("old-open", Stage.SCALING, old)
        record("young", Stage.READY, now - timedelta(days=10))

        # WHEN the retention pass runs
        with installed(rehearsal):
            first = age_out(rehearsal.services)
            # and a record past the retention appears later the same day, and again the next day
            record("later-today", Stage.READY, old)
            same_day = age_out(rehearsal.services)
            rehearsal.emulator.clock.advance(24 * 3600)
            next_day = age_out(rehearsal.services)

        # THEN only answered final records past the retention age out, once a day
        assert (first, same_day, next_day) == (["old-answered"], [], ["later-today"])
        assert rehearsal.ledger.get("old-unanswered").body == {} and "agedOut" not in rehearsal.ledger.get("old-unanswered").details
        assert rehearsal.ledger.get("old-open").body == {"requestId": "old-open"}
        assert rehearsal.ledger.get("young").body == {"requestId": "young"}
