"""No sender can speak for another team or steer the automation's own bookkeeping, and the bookkeeping holds
under races and refusals: the ledger's open-requests index, Table Storage's refusals, the pool-checks queue,
retention, the settings that bound them, and interim replies.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest

from rehearsal.host import service_bus_message
from rehearsal.runner import Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, DEFAULT_RG, Scenario, default_request
from shared import bootstrap
from shared.messaging import RequestCheck
from shared.store.ledger import PIPELINE_STAGES, LedgerRefused, RequestRecord, Stage
from shared.store.tables import TableLedger
from tests.reliability.test_every_team_hears_back import deliver, installed, replies, world

if TYPE_CHECKING:
    from azure.data.tables import TableClient

T0_BODY = {"requestId": "r-1"}


def a_received_record(request_id: str, now) -> RequestRecord:
    return RequestRecord.new(request_id=request_id, stage=Stage.RECEIVED, body=T0_BODY, now=now)


class CreateInProgress:
    """A table client on which a create delivered again runs between the listing's reads and its delete: the create
    rewrites the index row (its first half) just before the listing deletes the row it read as an orphan."""

    def __init__(self, client, ledger_of) -> None:
        self._client, self._ledger_of = client, ledger_of
        self.rewrote = False

    def __getattr__(self, name):
        return getattr(self._client, name)

    def delete_entity(self, partition_key, row_key, **kwargs):
        if not self.rewrote and partition_key == "Open_Requests":
            self.rewrote = True
            self._ledger_of(self)._mark_open(row_key)  # noqa: SLF001 - the first half of a create, on its own
        return self._client.delete_entity(partition_key, row_key, **kwargs)


class TestTheOpenRequestsIndexKeepsItsRows:
    def test_an_orphan_row_rewritten_by_a_create_in_progress_is_not_deleted(self, azurite_table_client, monkeypatch):
        # GIVEN an index row whose record does not exist, old enough to count as an orphan (a create that died)
        import shared.store.tables as tables

        monkeypatch.setattr(tables, "_ORPHAN_GRACE", timedelta(0))
        ledger: TableLedger
        racing = CreateInProgress(azurite_table_client, lambda client: ledger)
        ledger = TableLedger(cast("TableClient", racing))  # a proxy of the real client
        ledger._mark_open("r-1")  # noqa: SLF001 - an index row whose create died before its record
        # WHEN the listing removes it just as the create delivered again rewrites the row, then writes its record
        assert ledger.list_in_stages(PIPELINE_STAGES) == []
        assert racing.rewrote
        azurite_table_client.create_entity(tables._to_entity(a_received_record("r-1", datetime.now(UTC))))  # noqa: SLF001 - the second half
        # THEN the rewritten row stayed (the delete was conditional on the row as read): the record is listed
        assert [r.request_id for r in ledger.list_by_stage(Stage.RECEIVED)] == ["r-1"]


class TestTableRefusalsAreSorted:
    def test_a_key_the_table_cannot_hold_is_a_permanent_refusal_not_an_outage(self, azurite_table_client):
        # GIVEN the ledger on Table Storage
        ledger = TableLedger(azurite_table_client)
        ledger.ensure_table()
        # WHEN a record is written under a key Table Storage does not allow ('#': 400 OutOfRangeInput on Azure,
        # "Understanding the Table service data model", characters disallowed in key fields)
        # THEN the refusal is permanent (retrying the same call cannot help), not LedgerUnavailable
        with pytest.raises(LedgerRefused):
            ledger.create(a_received_record("team#a", datetime.now(UTC)))


class TestPoolChecksOnlyCarryRequestIds:
    @pytest.mark.parametrize("request_id", ["team/a", "Team-A", "a" * 41, "-a", "a b", "#", "a?b", ""])
    def test_a_check_naming_something_that_is_not_a_request_id_is_dropped(self, request_id):
        body = json.dumps({"requestId": request_id, "resourceId": "/subscriptions/s/x", "attempt": 1}).encode()
        assert RequestCheck.from_body(body) is None

    def test_a_check_body_with_a_slash_in_its_request_id_is_dropped_at_once_not_retried_into_the_dead_letters(self):
        # GIVEN the deployment's functions on the emulator
        rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
        body = json.dumps({"requestId": "team/a", "resourceId": "/subscriptions/s/x", "attempt": 1}).encode()
        bootstrap.install(rehearsal.services)
        try:
            # WHEN the forged check is delivered THEN the function completes (the message is settled, not redelivered)
            rehearsal.host.call("pool_checks", service_bus_message(body=body, message_id="forged", reply_to=None, delivery_count=1))
        finally:
            bootstrap.install(None)
        assert rehearsal.host.errors == []


class TestAConflictNeverReachesTheOwnersQueue:
    def test_a_message_reusing_a_live_request_id_with_the_owners_reply_queue_is_not_answered_there(self):
        # GIVEN team A's live request, answered on team-a-replies
        rehearsal = world()
        deliver(rehearsal, default_request(), "owner-msg", reply_to="team-a-replies")
        owner = rehearsal.ledger.get("team-a-render-001")
        # WHEN another message reuses its requestId with a different body, and names team A's queue as its ReplyTo
        deliver(rehearsal, default_request(targetDedicatedNodes=5), "intruder-msg", reply_to="team-a-replies")
        # THEN team A hears nothing about its own live request being refused
        assert [r for r in replies(rehearsal, "team-a-replies") if r["stage"] == "REJECTED"] == []
        # AND the conflict is recorded with the ReplyTo it was refused, the owner's record untouched
        [conflict] = [r for r in rehearsal.ledger.list_by_stage(Stage.REJECTED) if r.request_id.startswith("x-")]
        assert conflict.details["replyToRefused"] == "team-a-replies" and not conflict.reply_pending
        assert rehearsal.ledger.get("team-a-render-001").etag == owner.etag

    def test_the_same_conflict_sent_with_the_senders_own_queue_is_answered_there(self):
        rehearsal = world()
        deliver(rehearsal, default_request(), "owner-msg", reply_to="team-a-replies")
        deliver(rehearsal, default_request(targetDedicatedNodes=5), "other-msg", reply_to="team-b-replies")
        assert [r["stage"] for r in replies(rehearsal, "team-b-replies")] == ["REJECTED"]


class TestRetentionWorksOffAnyBacklog:
    def test_more_unanswered_records_than_one_batch_never_stall_the_answered_ones_behind_them(self, monkeypatch):
        import shared.pipeline.reconcile as reconcile

        monkeypatch.setattr(reconcile, "MAX_AGED_OUT_PER_SWEEP", 3)
        rehearsal = world()
        old = rehearsal.emulator.now() - timedelta(days=100)
        # GIVEN old final records: the oldest five still owed a reply, then four answered ones
        for index in range(5):
            rehearsal.ledger.create(RequestRecord.new(request_id=f"owed-{index}", stage=Stage.REJECTED, body={},
                                                      now=old - timedelta(hours=10 - index), reply_to="team-a-replies"))
        for index in range(4):
            rehearsal.ledger.create(RequestRecord.new(request_id=f"answered-{index}", stage=Stage.READY, body={"x": 1},
                                                      now=old + timedelta(hours=index), details={"replied": True}))
        # WHEN the retention pass runs on consecutive sweeps of one day
        with installed(rehearsal):
            services = rehearsal.services
            passes = [reconcile.age_out_final_records(services.ledger, services.records, services.settings, services.now())
                      for _ in range(3)]
        # THEN the answered ones age out, a batch at a time, and the pass then rests until the next day
        assert passes == [["answered-0", "answered-1", "answered-2"], ["answered-3"], []]


class TestSettingsHaveUpperBounds:
    @pytest.mark.parametrize(("name", "value"), [
        ("LEDGER_RETENTION_DAYS", "1000000"), ("LEDGER_RETENTION_DAYS", "3651"), ("STUCK_REQUEST_MINUTES", "1441"),
        ("ALERT_DEDUP_MINUTES", "99999999999999999999"), ("GUARD_MAX_RESIZES_WITHOUT_PROGRESS", "21")])
    def test_a_value_past_its_bound_is_refused_at_start_up_naming_the_setting_and_the_range(self, name, value):
        from shared.settings import SettingError, Settings
        from tests.support import VALID_SETTINGS

        with pytest.raises(SettingError, match=rf"App setting {name} must be a whole number of \w+ from 1 to \d+"):
            Settings.from_environ({**VALID_SETTINGS, name: value})

    def test_the_largest_retention_allowed_works_in_a_sweep(self):
        from shared.pipeline.reconcile import age_out_final_records

        rehearsal = world()
        services = rehearsal.services
        settings = replace(services.settings, ledger_retention_days=3650)
        with installed(rehearsal):
            assert age_out_final_records(services.ledger, services.records, settings, services.now()) == []


class TestInterimRepliesAreAboutTheTeamsOwnPool:
    def test_a_pool_whose_metadata_names_another_teams_request_never_sends_that_team_a_notice(self):
        # GIVEN team A's request growing its pool, and another team's pool whose image is gone
        other_pool = f"{DEFAULT_ACCOUNT_ID}/pools/other-team-pool"
        missing_image = f"{DEFAULT_RG}/providers/Microsoft.Compute/images/long-gone"
        rehearsal = world(
            [{"submit": default_request(), "replyTo": "team-a-replies"}, {"advance": "PT25M"},
             # WHEN that pool's metadata is set to name team A's request (and a target the guard keeps it at)
             {"setPoolMetadata": {"poolId": other_pool, "metadata": {"cip-request": "team-a-render-001", "cip-target-dedicated": "10"}}},
             {"runUntilIdle": True, "maxVirtualTime": "PT3H"}],
            pools=[{"id": other_pool, "imageId": missing_image, "targetDedicatedNodes": 0}])
        rehearsal.run()
        # THEN ops hear about the other pool while team A's request is still growing its own
        alerts = [a for a in rehearsal.emulator.topic.received if a["type"] == "CustomImagePool.InUseImageDeleted"]
        assert alerts and all(p["id"] == other_pool for a in alerts for p in a["data"]["pools"])
        # AND team A hears only about its own request: no notice about a pool that is not its own
        assert [r["stage"] for r in replies(rehearsal)] == ["READY"]


class TestRetryPropertiesAreTheAppsOwn:
    KEY = "test-message-signing-key-00000000000000"

    def signed_retry(self, body: bytes, first_enqueued: datetime):
        """What the app itself sends back to the requests queue after a transient failure."""
        from shared.messaging import Redelivery, retry_later

        sent = []

        class Sender:
            def send(self, queue, message):
                sent.append(message)

        retry_later(Sender(), "pool-requests", body, "first-message", "team-a-replies", first_enqueued, Redelivery(), first_enqueued,
                    key=self.KEY)
        return sent[0]

    def test_the_apps_own_retry_is_read_back_with_its_attempt_and_first_enqueue_time(self):
        from shared.messaging import Redelivery

        first = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        retry = self.signed_retry(b'{"requestId": "r-1"}', first)
        read = Redelivery.from_message(retry.application_properties, body=retry.body.encode(), message_id=retry.message_id, key=self.KEY)
        assert (read.attempt, read.original_message_id, read.original_enqueued_at) == (1, "first-message", first)

    @pytest.mark.parametrize("tamper", ["attempt", "enqueued", "body", "message id", "no signature", "other key"])
    def test_retry_properties_a_sender_set_or_changed_count_as_a_first_attempt(self, tamper):
        from shared.messaging import RETRY_ATTEMPT, RETRY_ORIGINAL_ENQUEUED_AT, RETRY_SIGNATURE, Redelivery

        retry = self.signed_retry(b'{"requestId": "r-1"}', datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        properties, body, message_id, key = dict(retry.application_properties), retry.body.encode(), retry.message_id, self.KEY
        if tamper == "attempt":
            properties[RETRY_ATTEMPT] = 7
        elif tamper == "enqueued":
            properties[RETRY_ORIGINAL_ENQUEUED_AT] = "2099-01-01T00:00:00+00:00"
        elif tamper == "body":
            body = b'{"requestId": "r-2"}'
        elif tamper == "message id":
            message_id = "another-message"
        elif tamper == "no signature":
            del properties[RETRY_SIGNATURE]
        else:
            key = "another-deployments-signing-key-000000000"
        assert Redelivery.from_message(properties, body=body, message_id=message_id, key=key) == Redelivery()

    def test_a_sender_cannot_date_its_version_into_the_future_to_become_latest(self):
        # GIVEN a team's message carrying made-up retry properties: attempt 1, first enqueued in 2099
        rehearsal = world()
        enqueued = rehearsal.emulator.now()
        message = service_bus_message(body=json.dumps(default_request()).encode(), message_id="forged", reply_to="team-a-replies",
                                      delivery_count=1, enqueued_time_utc=enqueued,
                                      application_properties={"cip-attempt": 1, "cip-original-enqueued-at": "2099-12-31T23:59:59+00:00"})
        # WHEN the function receives it
        with installed(rehearsal):
            rehearsal.host.call("pool_requests", message)
        # THEN the version is named from when Service Bus accepted the message, not from the sender's claim
        plan = rehearsal.ledger.get("team-a-render-001").plan
        assert plan is not None and plan.image_version is not None
        assert plan.image_version.name.startswith(f"{enqueued:%Y%m%d}.")
