"""One contract, two ledgers: in memory and on Azure Table Storage (Azurite)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.store.ledger import (
    AGED_OUT_DETAIL,
    FINAL_STAGES,
    PIPELINE_STAGES,
    REPLIED_DETAIL,
    FinalStageError,
    Ledger,
    LedgerUnavailable,
    RecordTooLarge,
    RequestAlreadyExists,
    RequestNotFound,
    RequestRecord,
    Stage,
    StaleRecord,
)
from shared.store.memory import InMemoryLedger
from shared.store.tables import TableLedger

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BODY = {"requestedBy": "team-a", "pool": {"poolName": "render", "targetDedicatedNodes": 600}, "dataDisks": [0, 1]}
DETAILS = {"plan": {"poolId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Batch/batchAccounts/b/pools/render"}}


@pytest.fixture(params=["in-memory", pytest.param("table-storage", marks=pytest.mark.azurite)])
def ledger(request: pytest.FixtureRequest) -> Ledger:
    if request.param == "in-memory":
        return InMemoryLedger()
    return TableLedger(request.getfixturevalue("azurite_table_client"))


def a_request(request_id: str = "r-1", stage: Stage = Stage.RECEIVED, at: datetime = T0) -> RequestRecord:
    return RequestRecord.new(request_id=request_id, stage=stage, body=BODY, reply_to="replies", details=DETAILS, now=at)


def advance_all_at_once(ledger: Ledger, record: RequestRecord, stages: list[Stage]) -> list[str]:
    """Each thread advances the same read to its own stage; returns who won (stage) or 'stale'."""
    outcomes: list[str] = []
    start = threading.Barrier(len(stages))

    def attempt(stage: Stage) -> None:
        start.wait()
        try:
            ledger.advance(record, stage)
            outcomes.append(stage.value)
        except StaleRecord:
            outcomes.append("stale")

    threads = [threading.Thread(target=attempt, args=(stage,)) for stage in stages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


class TestRecordingARequest:
    def test_a_created_request_reads_back_whole(self, ledger):
        # GIVEN a request recorded in the ledger
        stored = ledger.create(a_request())

        # WHEN it is read back
        read = ledger.get("r-1")

        # THEN every field is as written, times are UTC, and the ETag is the stored one
        assert stored.etag is not None and read.etag == stored.etag
        assert (read.request_id, read.stage, read.reason, read.reply_to) == ("r-1", Stage.RECEIVED, None, "replies")
        assert read.body == BODY and read.details == DETAILS
        assert read.created_at == T0 and read.updated_at == T0
        assert read.created_at.tzinfo is not None and read.created_at.utcoffset() == timedelta(0)
        assert read == stored

    def test_times_in_another_timezone_are_kept_as_the_same_instant_in_utc(self, ledger):
        # GIVEN a request created at 11:00 in UTC+2
        at = datetime(2026, 1, 5, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))

        # WHEN it is recorded and read back
        ledger.create(a_request(at=at))
        read = ledger.get("r-1")

        # THEN it is 09:00:00.123456 UTC
        assert read.created_at == at and read.created_at.tzinfo == UTC
        assert read.created_at.isoformat() == "2026-01-05T09:00:00.123456+00:00"

    def test_a_request_without_a_timezone_is_refused(self):
        # GIVEN / WHEN a record is built with a naive time
        # THEN it is refused before it reaches any ledger
        with pytest.raises(ValueError, match="timezone"):
            a_request(at=datetime(2026, 1, 5, 9, 0))

    def test_creating_the_same_request_twice_is_refused_and_keeps_the_first(self, ledger):
        # GIVEN a recorded request
        first = ledger.create(a_request())

        # WHEN the same id is created again (a duplicate delivery)
        with pytest.raises(RequestAlreadyExists):
            ledger.create(a_request(stage=Stage.IMAGING))

        # THEN the first record stands
        assert ledger.get("r-1") == first

    def test_an_unknown_request_is_not_found(self, ledger):
        # GIVEN an empty ledger
        # WHEN / THEN reading an id it never saw fails clearly
        with pytest.raises(RequestNotFound):
            ledger.get("nope")

    def test_changing_a_returned_record_does_not_change_the_ledger(self, ledger):
        # GIVEN a recorded request read back
        ledger.create(a_request())
        read = ledger.get("r-1")

        # WHEN the caller changes the dicts it got
        read.body["requestedBy"] = "someone-else"
        read.details["plan"] = None

        # THEN the stored record is untouched
        again = ledger.get("r-1")
        assert again.body == BODY and again.details == DETAILS

    def test_a_body_too_large_for_table_storage_is_refused_as_permanent(self, ledger):
        # GIVEN a body over Table Storage's 64 KiB property limit
        huge = RequestRecord.new(request_id="r-big", stage=Stage.RECEIVED, body={"blob": "x" * 40_000}, now=T0)

        # WHEN / THEN it is refused, and nothing is stored
        with pytest.raises(RecordTooLarge):
            ledger.create(huge)
        with pytest.raises(RequestNotFound):
            ledger.get("r-big")


class TestAdvancingAStage:
    def test_advancing_a_fresh_read_moves_the_stage_and_gives_a_new_etag(self, ledger):
        # GIVEN a recorded request
        stored = ledger.create(a_request())

        # WHEN it is advanced from that read
        advanced = ledger.advance(stored, Stage.SNAPSHOTTING, reason="snapshots started", now=T0 + timedelta(minutes=1))

        # THEN the new stage, reason and time are stored under a new ETag
        assert advanced.etag not in (None, stored.etag)
        read = ledger.get("r-1")
        assert read == advanced
        assert (read.stage, read.reason) == (Stage.SNAPSHOTTING, "snapshots started")
        assert read.updated_at == T0 + timedelta(minutes=1) and read.created_at == T0

    def test_advancing_merges_details_into_the_existing_ones(self, ledger):
        # GIVEN a request with a plan in its details, advanced once with snapshot ids
        stored = ledger.create(a_request())
        snapshotting = ledger.advance(stored, Stage.SNAPSHOTTING, details={"snapshots": ["s-os"], "attempt": 1})

        # WHEN it is advanced again with more details, one of them replacing an old key
        imaging = ledger.advance(snapshotting, Stage.IMAGING, details={"image": "img-1", "attempt": 2})

        # THEN old keys are kept, new ones added, repeated ones replaced
        expected = {**DETAILS, "snapshots": ["s-os"], "image": "img-1", "attempt": 2}
        assert imaging.details == expected and ledger.get("r-1").details == expected

    def test_a_reason_is_kept_until_a_new_one_is_given(self, ledger):
        # GIVEN a request advanced with a reason
        stored = ledger.create(a_request())
        waiting = ledger.advance(stored, Stage.SCALING, reason="quota")

        # WHEN it is advanced without one
        ledger.advance(waiting, Stage.SCALING, details={"nodes": 300})

        # THEN the reason stays
        assert ledger.get("r-1").reason == "quota"

    def test_advancing_from_a_stale_read_is_refused_and_changes_nothing(self, ledger):
        # GIVEN a request that another delivery advanced after we read it
        our_read = ledger.create(a_request())
        theirs = ledger.advance(our_read, Stage.SNAPSHOTTING)

        # WHEN we advance from our old read
        with pytest.raises(StaleRecord):
            ledger.advance(our_read, Stage.FAILED, reason="late", details={"late": True})

        # THEN the stored record is theirs
        assert ledger.get("r-1") == theirs

    def test_a_record_that_was_never_stored_cannot_advance(self, ledger):
        # GIVEN a record built but never created (no ETag)
        # WHEN / THEN advancing it is refused as stale
        with pytest.raises(StaleRecord):
            ledger.advance(a_request(), Stage.SNAPSHOTTING)

    def test_of_concurrent_advances_from_one_read_exactly_one_wins(self, ledger):
        # GIVEN one read of a request
        stored = ledger.create(a_request())

        # WHEN four deliveries advance it from that read at the same moment
        outcomes = advance_all_at_once(ledger, stored, [Stage.SNAPSHOTTING, Stage.IMAGING, Stage.FAILED, Stage.PUBLISHING])

        # THEN exactly one wins, the others are told they are stale, and the winner's stage is stored
        winners = [outcome for outcome in outcomes if outcome != "stale"]
        assert len(outcomes) == 4 and len(winners) == 1
        assert ledger.get("r-1").stage.value == winners[0]

    @pytest.mark.parametrize("final", sorted(FINAL_STAGES), ids=lambda stage: stage.value)
    def test_a_final_stage_is_never_left(self, ledger, final):
        # GIVEN a request in a final stage
        stored = ledger.create(a_request())
        done = ledger.advance(stored, final, reason="done")

        # WHEN something tries to move it on, even from a fresh read
        with pytest.raises(FinalStageError):
            ledger.advance(done, Stage.SNAPSHOTTING)

        # THEN it stays where it was
        assert ledger.get("r-1") == done

    def test_a_final_stage_can_take_more_details(self, ledger):
        # GIVEN a ready request
        ready = ledger.advance(ledger.create(a_request()), Stage.READY)

        # WHEN details are added while it stays READY
        ledger.advance(ready, Stage.READY, details={"replied": True})

        # THEN it is still READY with the new details
        read = ledger.get("r-1")
        assert read.stage is Stage.READY and read.details["replied"] is True

    def test_the_final_stages_are_ready_failed_and_rejected(self):
        assert {stage for stage in Stage if stage.is_final} == {Stage.READY, Stage.FAILED, Stage.REJECTED} == FINAL_STAGES


class TestListingRequests:
    def test_list_by_stage_returns_exactly_the_matching_requests(self, ledger):
        # GIVEN requests in several stages, one of them advanced into IMAGING
        for index, stage in enumerate([Stage.RECEIVED, Stage.IMAGING, Stage.IMAGING, Stage.READY]):
            ledger.create(a_request(f"r-{index}", stage, at=T0 + timedelta(minutes=index)))
        ledger.advance(ledger.get("r-0"), Stage.IMAGING)

        # WHEN / THEN listing by stage gives exactly those, oldest created first
        assert [r.request_id for r in ledger.list_by_stage(Stage.IMAGING)] == ["r-0", "r-1", "r-2"]
        assert [r.request_id for r in ledger.list_by_stage(Stage.READY)] == ["r-3"]
        assert ledger.list_by_stage(Stage.RECEIVED) == [] and ledger.list_by_stage(Stage.FAILED) == []

    def test_list_in_stages_returns_every_request_in_any_of_them_oldest_first(self, ledger):
        # GIVEN one request in each stage, created a minute apart
        for index, stage in enumerate(Stage):
            ledger.create(a_request(f"r-{index}", stage, at=T0 + timedelta(minutes=index)))

        # WHEN the pipeline's stages, and then no stage at all, are listed
        in_pipeline = ledger.list_in_stages(PIPELINE_STAGES)

        # THEN exactly the pipeline's requests come back, in creation order; no stage lists nothing
        assert [r.stage for r in in_pipeline] == list(PIPELINE_STAGES)
        assert [r.request_id for r in in_pipeline] == sorted(r.request_id for r in in_pipeline)
        assert ledger.list_in_stages(()) == []
        assert {r.stage for r in ledger.list_in_stages(FINAL_STAGES)} == set(FINAL_STAGES)

    def test_list_recent_is_most_recently_updated_first_and_limited(self, ledger):
        # GIVEN four requests created a minute apart, the oldest then updated last
        for index in range(4):
            ledger.create(a_request(f"r-{index}", at=T0 + timedelta(minutes=index)))
        ledger.advance(ledger.get("r-0"), Stage.SNAPSHOTTING, now=T0 + timedelta(hours=1))

        # WHEN the three most recent are listed
        recent = ledger.list_recent(3)

        # THEN they come newest update first, and no more than asked for
        assert [r.request_id for r in recent] == ["r-0", "r-3", "r-2"]
        assert len(ledger.list_recent(100)) == 4 and ledger.list_recent(0) == []

    def test_an_empty_ledger_lists_nothing(self, ledger):
        assert ledger.list_recent(10) == [] and ledger.list_by_stage(Stage.RECEIVED) == []


class TestRepliesAndReasons:
    def test_only_final_records_whose_reply_has_not_gone_out_are_reply_pending(self, ledger):
        # GIVEN a request in progress, one final with its reply sent, one final without, one final with no ReplyTo
        ledger.create(a_request("in-progress"))
        sent = ledger.advance(ledger.create(a_request("sent", Stage.RECEIVED)), Stage.READY)
        ledger.advance(sent, Stage.READY, details={"replied": True})
        ledger.advance(ledger.create(a_request("unsent", Stage.RECEIVED, at=T0 + timedelta(minutes=1))), Stage.FAILED, reason="x")
        silent = RequestRecord.new(request_id="silent", stage=Stage.REJECTED, body=BODY, now=T0, reason="bad")
        ledger.create(silent)
        # THEN only the final one whose reply is owed is listed
        assert [r.request_id for r in ledger.list_reply_pending()] == ["unsent"]

    def test_a_reason_of_any_length_is_stored_cut_to_its_bound(self, ledger):
        record = ledger.create(RequestRecord.new(request_id="long", stage=Stage.REJECTED, body=BODY, now=T0, reason="x" * 100_000))
        assert len(ledger.get("long").reason) == len(record.reason) <= 2000 and ledger.get("long").reason.endswith("(shortened)")


class TestRetention:
    def test_an_aged_out_record_keeps_its_id_stage_reason_times_and_plan_only(self, ledger):
        # GIVEN a failed request that was answered, with progress details beside its plan
        failed = ledger.create(RequestRecord.new(request_id="r-1", stage=Stage.FAILED, body=BODY,
                                                 details={**DETAILS, REPLIED_DETAIL: True, "claims": {"image": True}},
                                                 reason="snapshot failed", reply_to="replies", now=T0))

        # WHEN it ages out
        aged = ledger.age_out(failed, T0 + timedelta(days=91))

        # THEN body and details are gone, the rest stays, and the id is still taken
        assert ledger.get("r-1") == aged
        assert (aged.stage, aged.reason, aged.created_at, aged.updated_at, aged.body) == (Stage.FAILED, "snapshot failed", T0, T0, {})
        assert aged.details == {**DETAILS, REPLIED_DETAIL: True, AGED_OUT_DETAIL: "2026-04-06T09:00:00+00:00"}
        with pytest.raises(RequestAlreadyExists):
            ledger.create(a_request("r-1"))

    @pytest.mark.parametrize("stage", [Stage.RECEIVED, Stage.SCALING])
    def test_an_open_request_cannot_age_out(self, ledger, stage):
        with pytest.raises(ValueError, match="not final and answered"):
            ledger.age_out(ledger.create(a_request("r-1", stage)), T0)

    def test_listing_final_records_before_a_time_leaves_out_young_open_and_aged_ones(self, ledger):
        # GIVEN final records a day apart, an open one, and one already aged out
        for index in range(3):
            ledger.create(RequestRecord.new(request_id=f"done-{index}", stage=Stage.READY, body=BODY, now=T0 + timedelta(days=index)))
        ledger.create(a_request("open", Stage.SCALING, at=T0))
        ledger.age_out(ledger.create(RequestRecord.new(request_id="aged", stage=Stage.REJECTED, body=BODY, now=T0)), T0)

        # WHEN the final records before day 2 are listed
        listed = ledger.list_final_before(T0 + timedelta(days=1, seconds=1))

        # THEN exactly the first two come back, oldest first
        assert [r.request_id for r in listed] == ["done-0", "done-1"]


class TestTableStorageSpecifics:
    def test_each_request_is_one_entity_partitioned_by_its_id(self, azurite_table_client):
        # GIVEN a request recorded through the Table ledger
        TableLedger(azurite_table_client).create(a_request())

        # WHEN the table is read directly
        (entity,) = [e for e in azurite_table_client.list_entities() if e["PartitionKey"] == "r-1"]

        # THEN the entity is keyed by the request id, with JSON body and details
        assert (entity["PartitionKey"], entity["RowKey"], entity["Stage"]) == ("r-1", "request", "RECEIVED")
        assert entity["UpdatedAt"] == "2026-01-05T09:00:00.000000+00:00"
        assert "Reason" not in entity and entity["ReplyTo"] == "replies"

    def test_open_requests_are_indexed_until_final_and_answered(self, azurite_table_client):
        # GIVEN two requests in the pipeline, and a third rejected with nobody to answer
        ledger = TableLedger(azurite_table_client)
        ledger.create(a_request("r-1"))
        ledger.create(a_request("r-2", Stage.SCALING))
        ledger.create(RequestRecord.new(request_id="r-3", stage=Stage.REJECTED, body=BODY, now=T0, reason="pool.poolName: missing"))

        # THEN the open-requests partition names exactly the open two
        assert open_rows(azurite_table_client) == ["r-1", "r-2"]

        # WHEN one becomes READY (its reply still owed), and then its reply is sent
        ready = ledger.advance(ledger.get("r-2"), Stage.READY)
        assert open_rows(azurite_table_client) == ["r-1", "r-2"]
        ledger.advance(ready, Stage.READY, details={REPLIED_DETAIL: True})

        # THEN it leaves the index, and ops' listings never show index rows as requests
        assert open_rows(azurite_table_client) == ["r-1"]
        assert sorted(r.request_id for r in ledger.list_recent(10)) == ["r-1", "r-2", "r-3"]

    def test_stage_queries_read_the_open_requests_not_every_final_record(self, azurite_table_endpoint):
        # GIVEN a ledger holding 40 answered final requests and 2 open ones, on a client that counts the rows it is sent
        returned = EntitiesReturned()
        with counting_table_client(azurite_table_endpoint, returned) as client:
            ledger = TableLedger(client)
            for index in range(40):
                ledger.create(RequestRecord.new(request_id=f"done-{index}", stage=Stage.READY, body=BODY, now=T0))
            ledger.create(a_request("open-1", Stage.IMAGING))
            ledger.create(a_request("open-2", Stage.SCALING))
            returned.rows = 0

            # WHEN the timer's queries run: the pipeline's stages, SCALING, the pending replies
            in_pipeline = ledger.list_in_stages(PIPELINE_STAGES)
            scaling = ledger.list_by_stage(Stage.SCALING)
            pending = ledger.list_reply_pending()

        # THEN they find the open requests, having been sent only their index rows and records
        assert [r.request_id for r in in_pipeline] == ["open-1"] and [r.request_id for r in scaling] == ["open-2"] and pending == []
        assert returned.rows == 3 * (2 + 2)

    def test_an_index_row_left_behind_is_removed_by_the_next_listing(self, azurite_table_client):
        # GIVEN a request whose record went final but whose index row stayed (the removal after the write failed)
        ledger = TableLedger(azurite_table_client)
        ledger.create(RequestRecord.new(request_id="r-1", stage=Stage.FAILED, body=BODY, now=T0))
        azurite_table_client.upsert_entity({"PartitionKey": "Open_Requests", "RowKey": "r-1"})
        # and an index row written by a create still in progress (no record yet)
        azurite_table_client.upsert_entity({"PartitionKey": "Open_Requests", "RowKey": "r-2"})

        # WHEN the open requests are listed
        assert ledger.list_in_stages(PIPELINE_STAGES) == [] and ledger.list_reply_pending() == []

        # THEN the closed request's row is gone; the row of the create in progress stays (it is young)
        assert open_rows(azurite_table_client) == ["r-2"]

    def test_ensure_table_is_idempotent(self, azurite_table_client):
        # GIVEN a ledger whose table does not exist yet
        ledger = TableLedger(azurite_table_client)

        # WHEN the table is ensured twice
        ledger.ensure_table()
        ledger.ensure_table()

        # THEN it exists and is empty
        assert ledger.list_recent(10) == []
        assert azurite_table_client.get_table_access_policy() == {}

    def test_an_unreachable_store_is_reported_as_unavailable(self, azurite_table_client):
        # GIVEN a ledger whose table endpoint nobody listens on
        from azure.data.tables import TableClient

        from tests.azurite import free_loopback_port

        endpoint = f"http://127.0.0.1:{free_loopback_port()}/devstoreaccount1"
        unreachable = TableClient(
            endpoint, "ledger", credential=azurite_table_client.credential, retry_total=0, connection_timeout=2
        )

        # WHEN / THEN every operation fails as transient, with the SDK error chained
        with unreachable:
            ledger = TableLedger(unreachable)
            with pytest.raises(LedgerUnavailable) as failure:
                ledger.get("r-1")
            assert failure.value.__cause__ is not None
            with pytest.raises(LedgerUnavailable):
                ledger.create(a_request())
            with pytest.raises(LedgerUnavailable):
                ledger.list_recent(10)


def open_rows(client) -> list[str]:
    return sorted(e["RowKey"] for e in client.query_entities("PartitionKey eq 'Open_Requests'"))


class EntitiesReturned:
    """Counts the entities Table Storage sends back (point reads and query pages), from the raw responses."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, response) -> None:
        http = response.http_response
        if response.http_request.method != "GET" or http.status_code != 200:
            return
        body = json.loads(http.text() or "{}")
        self.rows += len(body["value"]) if "value" in body else 1


def counting_table_client(endpoint: str, hook: EntitiesReturned):
    import uuid

    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import TableClient

    from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME

    return TableClient(endpoint, "t" + uuid.uuid4().hex, credential=AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY), raw_response_hook=hook)
