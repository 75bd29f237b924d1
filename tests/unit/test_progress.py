"""A request's progress read from, and written back to, its record's details: typed, and the stored shape unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.store.ledger import RequestRecord, Stage
from shared.store.progress import Progress, conflict, new_request, refused_reply, replied

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
IMAGE = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg/providers/Microsoft.Compute/images/cip-r1"


def record(details: dict, stage: Stage = Stage.IMAGING, reply_to: str | None = "team-a-replies") -> RequestRecord:
    return RequestRecord.new(request_id="r1", stage=stage, body={}, now=NOW, reply_to=reply_to, details=details)


class TestReading:
    def test_given_claims_and_confirmations_when_read_then_each_question_is_answered_from_them(self):
        progress = record({"claims": {"image": NOW.isoformat(), "snapshots": True}, "succeeded": [IMAGE.lower()]}).progress
        assert progress.claimed("image") and progress.claimed("snapshots") and not progress.claimed("pool")
        assert progress.claimed_at("image") == NOW and progress.claimed_at("snapshots") is None
        assert progress.confirmed(IMAGE.upper()) and not progress.confirmed(IMAGE + "x")

    def test_given_details_of_the_wrong_shape_when_read_then_they_count_as_absent(self):
        progress = Progress.of({"claims": ["image"], "succeeded": "x", "interimReplies": [1, "d1"], "replied": 0,
                                "answersRequestId": 7, "osType": None})
        assert progress == Progress(interim_replies=("d1",))

    def test_a_final_record_owes_its_reply_until_one_is_recorded(self):
        assert record({}, Stage.READY).reply_pending
        assert not record(replied(True), Stage.READY).reply_pending
        assert not record(replied("refused: not a reply queue"), Stage.READY).reply_pending
        assert not record({}, Stage.READY, reply_to=None).reply_pending


class TestWriting:
    def test_a_claim_keeps_the_other_claims_as_written_and_a_release_gives_back_only_its_own(self):
        progress = Progress.of({"claims": {"snapshots": True}})
        claimed = progress.claim("image", NOW + timedelta(minutes=1))
        assert claimed == {"claims": {"snapshots": True, "image": (NOW + timedelta(minutes=1)).isoformat()}}
        assert Progress.of(claimed).release("image") == {"claims": {"snapshots": True}}

    def test_confirming_adds_each_resource_once_in_its_normal_form(self):
        progress = Progress.of({"succeeded": [IMAGE.lower()]})
        other = IMAGE.replace("cip-r1", "cip-r2")
        assert progress.confirm([IMAGE, other]) == {"succeeded": [IMAGE.lower(), other.lower()]}

    def test_interim_replies_keep_the_latest_and_can_be_undone_to_what_was_read(self):
        progress = Progress.of({"interimReplies": ["d1", "d2"]})
        assert progress.interim_reply("d3", keep=2) == {"interimReplies": ["d2", "d3"]}
        assert progress.interim_replies_as_read() == {"interimReplies": ["d1", "d2"]}

    def test_new_records_store_what_intake_decided_under_the_keys_the_ledger_has_always_used(self):
        assert new_request({"poolId": "p"}, "Linux", None) == {"plan": {"poolId": "p"}, "osType": "Linux"}
        assert conflict("taken", "x" * 300) == {"answersRequestId": "taken", "replyToRefused": "x" * 260}
        assert refused_reply(None) == {}
        assert record(new_request({}, "Windows", None)).source_os_type == "Windows"
