"""Image protection and the guard's lineage check at fleet scale: costs that grow with pages, not pools; bounded records and locks."""

from __future__ import annotations

import json

from emulator.store import ArmResource
from rehearsal.runner import Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario
from shared.gateway import graph as graph_module
from shared.messaging import Adoption, is_adoption
from shared.protection.lineage import LineageReader
from shared.protection.locks import IMAGE_USE, IMAGE_USER, POOL_USE, ImageUse, protect, release, users_of

SUB = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
IMAGING = f"/subscriptions/{SUB}/resourceGroups/rg-imaging/providers/Microsoft.Compute"
POOLS = f"{DEFAULT_ACCOUNT_ID}/pools"
LOCK_PUTS = "PUT Microsoft.Authorization/locks"
GRAPH = "POST Microsoft.ResourceGraph/resources"
MINUTE = 60


def put_image(rehearsal: Rehearsal, name: str) -> tuple[str, str]:
    """A managed image made from one snapshot; (image id, snapshot id)."""
    snapshot, image = f"{IMAGING}/snapshots/{name}-os", f"{IMAGING}/images/{name}"
    rehearsal.emulator.store.put(ArmResource(snapshot, "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    rehearsal.emulator.store.put(ArmResource(image, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {
        "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": snapshot}}}}))
    return image, snapshot


def world(pools: list[dict]) -> Rehearsal:
    """GIVEN a guarded account (cores for every pool) holding ``pools``, nothing played yet."""
    return Rehearsal(Scenario.model_validate({"world": {
        "guardedBatchAccounts": [DEFAULT_ACCOUNT_ID], "pools": pools,
        "batchAccounts": [{"id": DEFAULT_ACCOUNT_ID, "dedicatedCoreQuota": 10_000_000, "lowPriorityCoreQuota": 10_000_000}],
    }, "steps": []}))


def adopt_scheduled(rehearsal: Rehearsal) -> None:
    """Deliver the adoption batches the guard scheduled on the pool-checks queue (:mod:`shared.guard.adoption`)."""
    for queued in list(rehearsal.emulator.servicebus.queue("pool-checks").active):
        batch = Adoption.from_body(queued.message.body.encode()) if is_adoption(queued.message.body.encode()) else None
        if batch is not None:
            rehearsal.services.guard().adopt(batch.pools)


def calls_during(rehearsal: Rehearsal, action) -> dict[str, int]:
    before = dict(rehearsal.emulator.calls)
    action()
    return {op: n - before.get(op, 0) for op, n in rehearsal.emulator.calls.items() if n != before.get(op, 0)}


class TestFleetLineageCheck:
    def test_given_many_recorded_pools_when_the_guard_sweeps_again_then_one_graph_query_replaces_every_lineage_read(self):
        # GIVEN 90 pools, each with its own image and snapshot, met once by the guard (recorded and locked)
        names = [f"img{i:03d}" for i in range(90)]
        rehearsal = world([{"id": f"{POOLS}/p{i:03d}", "imageId": f"{IMAGING}/images/{n}", "targetDedicatedNodes": 1200}
                           for i, n in enumerate(names)])
        for name in names:
            put_image(rehearsal, name)
        rehearsal.emulator.advance(26 * MINUTE)
        # (the sweep adopts a first batch of unrecorded pools and schedules the rest, paced: they are delivered here too)
        def sweep_and_adopt() -> None:
            rehearsal.services.guard().sweep()
            adopt_scheduled(rehearsal)

        first = calls_during(rehearsal, sweep_and_adopt)
        assert first["GET Microsoft.Compute/images"] == 90 and first[LOCK_PUTS] == 180
        # WHEN the next sweep runs (every pool below target again)
        rehearsal.emulator.advance(31 * MINUTE)
        steady = calls_during(rehearsal, lambda: rehearsal.services.guard().sweep())
        # THEN the 180 in-use resources cost one Resource Graph query and no point read; nothing is locked again
        assert steady[GRAPH] == 1
        assert "GET Microsoft.Compute/images" not in steady and "GET Microsoft.Compute/snapshots" not in steady
        assert LOCK_PUTS not in steady
        assert steady["PATCH Microsoft.Batch/batchAccounts/pools"] == 90

    def test_given_more_ids_than_a_page_when_prefetched_then_one_query_per_page_and_no_point_read(self, monkeypatch):
        rehearsal = world([])
        ids = [put_image(rehearsal, f"img{i:03d}")[0] for i in range(25)]
        monkeypatch.setattr(graph_module, "IDS_PER_QUERY", 10)
        gateway = rehearsal.services.gateway
        reader = LineageReader(gateway.compute)
        used = calls_during(rehearsal, lambda: reader.prefetch(ids, gateway.graph))
        assert used == {GRAPH: 3} and reader.graph_queries == 3
        assert calls_during(rehearsal, lambda: [reader.exists(i) for i in ids]) == {}

    def test_given_an_id_the_graph_does_not_return_when_asked_then_a_point_read_decides(self):
        # Resource Graph follows ARM by a little: "not returned" is a hint, never a verdict on its own
        rehearsal = world([])
        image, _ = put_image(rehearsal, "fresh")
        gone = f"{IMAGING}/images/gone"
        gateway = rehearsal.services.gateway
        reader = LineageReader(gateway.compute)
        reader.prefetch([image, gone], gateway.graph)
        assert calls_during(rehearsal, lambda: reader.exists(gone)) == {"GET Microsoft.Compute/images": 1}
        assert reader.exists(gone) is False and reader.exists(image) is True

    def test_given_a_recorded_image_deleted_without_an_event_when_the_guard_sweeps_then_one_critical_alert_names_the_pool(self):
        rehearsal = world([{"id": f"{POOLS}/p0", "imageId": f"{IMAGING}/images/base", "targetDedicatedNodes": 600}])
        image, _ = put_image(rehearsal, "base")
        rehearsal.emulator.advance(26 * MINUTE)
        rehearsal.services.guard().sweep()
        rehearsal.emulator.store.remove(image)  # the delete event is lost
        rehearsal.emulator.advance(5 * MINUTE)
        rehearsal.services.guard().sweep()
        [alert] = rehearsal.emulator.topic.received
        assert alert["type"] == "CustomImagePool.InUseImageDeleted" and alert["subject"] == image
        assert [p["id"] for p in alert["data"]["pools"]] == [f"{POOLS}/p0"]


class TestBoundedProtection:
    def test_given_a_protected_pool_when_protected_again_then_no_lock_and_no_record_is_written(self):
        rehearsal = world([])
        image, snapshot = put_image(rehearsal, "base")
        use = ImageUse(f"{POOLS}/p0", image, (snapshot,), "r0")
        assert calls_during(rehearsal, lambda: protect(rehearsal.services.records, rehearsal.services.gateway.locks, use)) == {LOCK_PUTS: 2}
        etags = {kind: [r.etag for r in rehearsal.services.records.list(kind)] for kind in (IMAGE_USE, IMAGE_USER, POOL_USE)}
        # WHEN the same use is protected again (a redelivered event, a second sweep)
        assert calls_during(rehearsal, lambda: protect(rehearsal.services.records, rehearsal.services.gateway.locks, use)) == {}
        # THEN no record changed either
        assert {kind: [r.etag for r in rehearsal.services.records.list(kind)] for kind in etags} == etags

    def test_given_many_pools_on_one_image_when_protected_then_each_lock_is_written_at_most_five_times_and_its_notes_stay_short(self):
        rehearsal = world([])
        image, snapshot = put_image(rehearsal, "base")
        used = calls_during(rehearsal, lambda: [protect(rehearsal.services.records, rehearsal.services.gateway.locks, ImageUse(f"{POOLS}/p{i:03d}", image, (snapshot,), f"r{i}"))
                                               for i in range(50)])
        assert used == {LOCK_PUTS: 10}
        notes = rehearsal.emulator.store.get(f"{image}/providers/Microsoft.Authorization/locks/cip-protect").properties["notes"]
        assert notes.startswith("custom-image-pools:") and "p000, p001, p002, p003 and others" in notes and len(notes) < 200

    def test_given_2000_pools_on_one_image_when_protected_then_every_record_stays_under_32_kib(self):
        rehearsal = world([])
        image, snapshot = put_image(rehearsal, "base")
        for i in range(2000):
            protect(rehearsal.services.records, rehearsal.services.gateway.locks, ImageUse(f"{POOLS}/pool{i:04d}", image, (snapshot,), f"request-{i:04d}"))
        records = rehearsal.services.records
        largest = max(len(json.dumps(r.data)) for kind in (IMAGE_USE, IMAGE_USER, POOL_USE) for r in records.list(kind))
        assert largest < 32 * 1024
        # AND every pool is still found as a user of the image
        users = users_of(rehearsal.services.records, image)
        assert users is not None and len(users.pools) == 2000


class TestAlertsNameEveryPool:
    def test_given_30_pools_on_one_image_when_it_is_deleted_then_the_alert_names_all_30(self):
        rehearsal = world([{"id": f"{POOLS}/p{i:02d}", "imageId": f"{IMAGING}/images/base", "targetDedicatedNodes": 10} for i in range(30)])
        image, snapshot = put_image(rehearsal, "base")
        for i in range(30):
            protect(rehearsal.services.records, rehearsal.services.gateway.locks, ImageUse(f"{POOLS}/p{i:02d}", image, (snapshot,), f"r{i:02d}"))
        rehearsal.emulator.store.remove(image)
        assert rehearsal.services.protection_alerts().on_resource_deleted(image)
        [alert] = rehearsal.emulator.topic.received
        assert sorted(p["id"] for p in alert["data"]["pools"]) == [f"{POOLS}/p{i:02d}" for i in range(30)]
        assert len(alert["data"]["requestIds"]) == 30

    def test_given_pools_released_one_by_one_when_the_last_goes_then_the_locks_go_and_no_record_is_left(self):
        rehearsal = world([])
        image, snapshot = put_image(rehearsal, "base")
        pools = [f"{POOLS}/p{i}" for i in range(6)]
        for pool in pools:
            protect(rehearsal.services.records, rehearsal.services.gateway.locks, ImageUse(pool, image, (snapshot,), None))
        lock = f"{image}/providers/Microsoft.Authorization/locks/cip-protect"
        for pool in pools[:-1]:
            assert release(rehearsal.services.records, rehearsal.services.gateway.locks, pool, keep_locks=False) == []
        # one pool left: the notes name it alone
        assert "p5;" in rehearsal.emulator.store.get(lock).properties["notes"]
        assert sorted(release(rehearsal.services.records, rehearsal.services.gateway.locks, pools[-1], keep_locks=False)) == sorted([image, snapshot])
        assert rehearsal.emulator.store.find(lock) is None
        assert all(rehearsal.services.records.list(kind) == [] for kind in (IMAGE_USE, IMAGE_USER, POOL_USE))
