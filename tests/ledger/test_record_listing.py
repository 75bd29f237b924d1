"""Listing keyed records (RecordStore.list): one contract, in memory and on Azure Table Storage (Azurite)."""

from __future__ import annotations

import pytest

from shared.store.memory import InMemoryLedger
from shared.store.records import RecordStore, member_key
from shared.store.tables import TableLedger

IMAGE = "/subscriptions/s/resourceGroups/rg-imaging/providers/Microsoft.Compute/images/base"
OTHER = "/subscriptions/s/resourceGroups/rg-imaging/providers/Microsoft.Compute/images/other"


@pytest.fixture(params=["in-memory", pytest.param("table-storage", marks=pytest.mark.azurite)])
def records(request: pytest.FixtureRequest) -> RecordStore:
    if request.param == "in-memory":
        return InMemoryLedger().records()
    return TableLedger(request.getfixturevalue("azurite_table_client")).records()


def pool(name: str) -> str:
    return f"/subscriptions/s/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/b/pools/{name}"


class TestListingAGroup:
    def test_given_members_of_two_groups_when_one_group_is_listed_then_exactly_its_members_come_back(self, records):
        for name in ("p1", "p2", "p3"):
            records.insert("image-user", member_key(IMAGE, pool(name)), {"id": pool(name)})
        records.insert("image-user", member_key(OTHER, pool("p9")), {"id": pool("p9")})
        listed = records.list("image-user", IMAGE)
        assert sorted(r.data["id"] for r in listed) == [pool("p1"), pool("p2"), pool("p3")]

    def test_given_a_group_in_other_casing_when_listed_then_the_same_members_come_back(self, records):
        records.insert("image-user", member_key(IMAGE, pool("p1")), {"id": pool("p1")})
        assert [r.data["id"] for r in records.list("image-user", IMAGE.upper())] == [pool("p1")]

    def test_given_listed_members_when_one_is_replaced_and_another_deleted_then_their_etags_guard_the_writes(self, records):
        first = records.insert("image-user", member_key(IMAGE, pool("p1")), {"id": pool("p1")})
        records.insert("image-user", member_key(IMAGE, pool("p2")), {"id": pool("p2")})
        one, two = records.list("image-user", IMAGE)
        assert one.etag == first.etag
        records.replace(one, {"id": pool("p1"), "requestId": "r1"})
        records.delete(two)
        assert [r.data for r in records.list("image-user", IMAGE)] == [{"id": pool("p1"), "requestId": "r1"}]
        assert records.get("image-user", member_key(IMAGE, pool("p1"))).data["requestId"] == "r1"

    def test_given_a_plain_record_keyed_by_the_group_when_its_members_are_listed_then_it_is_not_one_of_them(self, records):
        records.insert("image-user", IMAGE, {"summary": True})
        records.insert("image-user", member_key(IMAGE, pool("p1")), {"id": pool("p1")})
        assert [r.data for r in records.list("image-user", IMAGE)] == [{"id": pool("p1")}]

    def test_given_a_member_deleted_and_inserted_again_when_listed_then_it_comes_back_once(self, records):
        first = records.insert("image-user", member_key(IMAGE, pool("p1")), {"id": pool("p1")})
        records.delete(first)
        assert records.list("image-user", IMAGE) == []
        records.insert("image-user", member_key(IMAGE, pool("P1")), {"id": pool("p1"), "again": True})
        assert [r.data for r in records.list("image-user", IMAGE)] == [{"id": pool("p1"), "again": True}]

    def test_given_no_member_when_listed_then_nothing(self, records):
        assert records.list("image-user", IMAGE) == []


class TestListingAKind:
    def test_given_records_of_several_kinds_when_one_kind_is_listed_then_only_that_kind_comes_back(self, records):
        records.insert("image-use", IMAGE, {"resourceId": IMAGE})
        records.insert("image-use", OTHER, {"resourceId": OTHER})
        records.insert("image-user", member_key(IMAGE, pool("p1")), {"id": pool("p1")})
        records.insert("pool-use", pool("p1"), {"poolId": pool("p1")})
        records.insert("image-use-extra", IMAGE, {"resourceId": "not this kind"})
        assert sorted(r.data["resourceId"] for r in records.list("image-use")) == [IMAGE, OTHER]
