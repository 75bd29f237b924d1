"""One contract, two ledgers: in memory and on Azure Table Storage (Azurite)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared.ledger import (
    FinalStageError,
    InMemoryLedger,
    RequestAlreadyExists,
    RequestNotFound,
    RequestRecord,
    Stage,
    StaleRecord,
    TableLedger,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["in-memory", "table-storage"])
def ledger(request):
    if request.param == "in-memory":
        return InMemoryLedger()
    return TableLedger(request.getfixturevalue("azurite_table_client"))


def _record(request_id: str = "r-1", stage: Stage = Stage.RECEIVED, at: datetime = T0) -> RequestRecord:
    return RequestRecord.new(
        request_id=request_id,
        stage=stage,
        body={"requestedBy": "team-a", "pool": {"poolName": "p", "targetDedicatedNodes": 600}},
        reply_to="replies",
        details={"plan": {"poolId": "/subscriptions/x/pool"}},
        now=at,
    )


class TestCreateAndRead:
    def test_a_created_request_reads_back_whole(self, ledger):
        stored = ledger.create(_record())
        read = ledger.get("r-1")
        assert stored.etag and read.etag == stored.etag
        assert (read.request_id, read.stage, read.reason, read.reply_to) == ("r-1", Stage.RECEIVED, None, "replies")
        assert read.body == _record().body and read.details == _record().details
        assert read.created_at == T0 and read.created_at.tzinfo is not None

    def test_creating_the_same_request_twice_is_refused(self, ledger):
        ledger.create(_record())
        with pytest.raises(RequestAlreadyExists):
            ledger.create(_record())

    def test_an_unknown_request_is_not_found(self, ledger):
        with pytest.raises(RequestNotFound):
            ledger.get("nope")


class TestAdvance:
    def test_advance_with_a_fresh_etag_moves_the_stage_and_merges_details(self, ledger):
        stored = ledger.create(_record())
        advanced = ledger.advance(stored, Stage.SNAPSHOTTING, details={"snapshots": 3}, now=T0 + timedelta(minutes=1))
        assert advanced.etag != stored.etag
        read = ledger.get("r-1")
        assert read.stage is Stage.SNAPSHOTTING and read.details == {"plan": {"poolId": "/subscriptions/x/pool"}, "snapshots": 3}
        assert read.updated_at == T0 + timedelta(minutes=1)

    def test_advance_from_a_stale_read_is_refused_and_changes_nothing(self, ledger):
        stored = ledger.create(_record())
        ledger.advance(stored, Stage.SNAPSHOTTING)
        with pytest.raises(StaleRecord):
            ledger.advance(stored, Stage.FAILED, reason="late")
        assert ledger.get("r-1").stage is Stage.SNAPSHOTTING

    def test_of_concurrent_advances_from_one_read_exactly_one_wins(self, ledger):
        stored = ledger.create(_record())
        outcomes: list[str] = []
        barrier = threading.Barrier(4)

        def attempt(stage: Stage) -> None:
            barrier.wait()
            try:
                ledger.advance(stored, stage)
                outcomes.append(stage.value)
            except StaleRecord:
                outcomes.append("stale")

        threads = [threading.Thread(target=attempt, args=(s,)) for s in (Stage.SNAPSHOTTING, Stage.IMAGING, Stage.FAILED, Stage.PUBLISHING)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [o for o in outcomes if o != "stale"]
        assert len(winners) == 1 and outcomes.count("stale") == 3
        assert ledger.get("r-1").stage.value == winners[0]

    @pytest.mark.parametrize("final", [Stage.READY, Stage.FAILED, Stage.REJECTED])
    def test_a_final_stage_is_never_left(self, ledger, final):
        stored = ledger.create(_record())
        done = ledger.advance(stored, final, reason="done")
        with pytest.raises(FinalStageError):
            ledger.advance(done, Stage.SNAPSHOTTING)
        assert ledger.get("r-1").stage is final and ledger.get("r-1").reason == "done"


class TestListing:
    def test_list_by_stage_returns_exactly_the_matching_requests(self, ledger):
        for index, stage in enumerate([Stage.RECEIVED, Stage.IMAGING, Stage.IMAGING, Stage.READY]):
            ledger.create(_record(f"r-{index}", stage))
        assert sorted(r.request_id for r in ledger.list_by_stage(Stage.IMAGING)) == ["r-1", "r-2"]
        assert ledger.list_by_stage(Stage.FAILED) == []

    def test_list_recent_is_newest_first_and_limited(self, ledger):
        for index in range(4):
            ledger.create(_record(f"r-{index}", at=T0 + timedelta(minutes=index)))
        assert [r.request_id for r in ledger.list_recent(3)] == ["r-3", "r-2", "r-1"]
