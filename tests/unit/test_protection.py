"""Image protection on the fake Azure: locks placed and released, the alerts when an in-use resource goes (fast)."""

from __future__ import annotations

import json

from shared.arm.ids import IMAGE, SNAPSHOT
from shared.arm.pools import PoolView
from shared.arm.views import ActivityLogEntry, ImageView, SnapshotView
from shared.eventfacts.findings import EventFindings
from shared.intake.receive import IncomingMessage
from shared.protection.audit import audit_protection
from shared.protection.locks import ImageUse, in_use_summaries, protect, release, users_of
from shared.store.ledger import RequestRecord, Stage
from tests.unit.world import ACCOUNT, REPLIES, RG, VM, UnitWorld, request_body

IMAGE_ID = VM.sibling(IMAGE, "base")
SNAPSHOT_ID = VM.sibling(SNAPSHOT, "base-os")
POOLS = [f"{ACCOUNT.id}/pools/p{i}" for i in range(3)]


def in_use(world: UnitWorld, pools: list[str]) -> None:
    """GIVEN a managed image (from one snapshot) that ``pools`` use, protected."""
    world.azure.add(SnapshotView(SNAPSHOT_ID.id, "westeurope", "Succeeded", "Linux", ""))
    world.azure.add(ImageView(IMAGE_ID.id, "westeurope", "Succeeded", "Linux", "Generalized", (SNAPSHOT_ID.id,)))
    for pool in pools:
        world.azure.add(PoolView(pool, 'W/"1"', "Succeeded", "Steady", None, 5, 0, True, 8, 0, None, None, (), {}, IMAGE_ID.id))
        protect(world.services.records, world.azure, ImageUse(pool, IMAGE_ID.id, (SNAPSHOT_ID.id,), f"r-{pool[-1]}"))


def notes(world: UnitWorld, resource: str) -> str | None:
    return world.azure.lock_notes.get(f"{resource}/providers/Microsoft.Authorization/locks/cip-protect".lower())


class TestLocks:
    def test_given_pools_using_an_image_then_it_and_its_snapshot_are_locked_with_notes_naming_them(self):
        world = UnitWorld()
        in_use(world, POOLS[:2])
        for resource in (IMAGE_ID.id, SNAPSHOT_ID.id):
            text = notes(world, resource)
            assert text is not None and text.startswith("custom-image-pools:") and "p0, p1" in text
        users = users_of(world.services.records, IMAGE_ID.id)
        assert users is not None and sorted(users.request_ids) == ["r-0", "r-1"]

    def test_given_the_last_pool_deleted_then_our_locks_go_and_a_lock_someone_else_placed_stays(self):
        world = UnitWorld()
        in_use(world, POOLS[:1])
        world.azure.lock_notes[f"{SNAPSHOT_ID.id}/providers/Microsoft.Authorization/locks/cip-protect".lower()] = "ops: keep"
        unlocked = release(world.services.records, world.azure, POOLS[0], keep_locks=False)
        assert unlocked == [IMAGE_ID.id] and notes(world, IMAGE_ID.id) is None and notes(world, SNAPSHOT_ID.id) == "ops: keep"
        assert in_use_summaries(world.services.records) == []


class TestAlerts:
    def test_given_an_in_use_image_deleted_then_one_critical_alert_names_every_pool_with_its_nodes(self):
        world = UnitWorld()
        in_use(world, POOLS)
        del world.azure.resources[IMAGE_ID.key()]
        alerts = world.services.protection_alerts()
        assert alerts.on_resource_deleted(IMAGE_ID.id) and not alerts.on_resource_deleted(IMAGE_ID.id)
        [alert] = world.publisher.published
        assert alert.type == "CustomImagePool.InUseImageDeleted" and alert.subject == IMAGE_ID.id
        assert [(p["id"], p["currentDedicatedNodes"], p["targetDedicatedNodes"]) for p in alert.data["pools"]] == [(p, 5, 8) for p in POOLS]

    def test_given_a_stale_delete_event_for_an_image_still_there_then_no_alert(self):
        world = UnitWorld()
        in_use(world, POOLS[:1])
        assert not world.services.protection_alerts().on_resource_deleted(IMAGE_ID.id)
        assert world.publisher.published == []


class TestAudit:
    def test_given_our_lock_gone_and_a_refused_delete_in_the_activity_log_then_each_is_alerted_once(self):
        world = UnitWorld()
        in_use(world, POOLS[:1])
        del world.azure.lock_notes[f"{IMAGE_ID.id}/providers/Microsoft.Authorization/locks/cip-protect".lower()]
        world.azure.activity.append((RG.lower(), ActivityLogEntry("e1", "Microsoft.Compute/snapshots/delete", "Failed", SNAPSHOT_ID.id)))
        services = world.services

        def audit():
            return audit_protection(EventFindings(), records=services.records, locks=world.azure, monitor=world.azure,
                                    alerts=services.protection_alerts(), now=services.now)

        first, second = audit(), audit()
        assert (first.protection_removed, first.deletion_blocked) == ([IMAGE_ID.id], [SNAPSHOT_ID.id])
        assert (second.protection_removed, second.deletion_blocked) == ([], [])
        assert sorted(a.type for a in world.publisher.published) == ["CustomImagePool.DeletionBlocked", "CustomImagePool.ProtectionRemoved"]


def ready(world: UnitWorld, body: dict, message_id: str) -> RequestRecord:
    """A request taken from intake to its final stage, time passing (every operation ending) between its events."""
    record = world.services.intake().receive(IncomingMessage(json.dumps(body).encode(), message_id, reply_to=REPLIES))
    for _ in range(10):
        if record.stage.is_final:
            break
        world.azure.settle()
        record = world.services.pipeline().drive(world.ledger.get(record.request_id))
    assert record.stage is Stage.READY, record.reason
    return record


def locked(world: UnitWorld) -> set[str]:
    return {key.split("/providers/microsoft.authorization/")[0] for key in world.azure.lock_notes}


class TestSharedLineage:
    """Two pools on one gallery version: the second request reuses the first one's version (issue 22, point 4)."""

    def two_pools_on_one_version(self) -> tuple[UnitWorld, RequestRecord, RequestRecord]:
        world = UnitWorld()
        first = ready(world, request_body("r1", pool_name="render-pool"), "m1")
        assert first.plan is not None and first.plan.image_version is not None
        reuse = {**request_body("r2", pool_name="render-pool-2"), "source": {"galleryImageVersionId": first.plan.image_version.id}}
        del reuse["image"]["galleryId"]
        second = ready(world, reuse, "m2")
        return world, first, second

    def test_given_the_first_pool_deleted_then_everything_the_second_pool_still_uses_stays_locked(self):
        world, first, second = self.two_pools_on_one_version()
        plan = first.plan
        assert plan is not None and plan.image is not None and plan.image_version is not None
        lineage = {plan.image_version.key(), plan.image.key(), *(s.snapshot.key() for s in plan.snapshots)}
        assert locked(world) == lineage
        unlocked = release(world.services.records, world.azure, plan.pool.id, keep_locks=False)
        # The version, its managed image and its snapshots: the second pool needs each of them to grow.
        assert unlocked == [] and locked(world) == lineage
        assert all("render-pool-2" in text and "render-pool," not in text for text in world.azure.lock_notes.values())
        second_plan = second.plan
        assert second_plan is not None
        assert sorted(release(world.services.records, world.azure, second_plan.pool.id, keep_locks=False)) == sorted(
            r.id for r in (plan.image_version, plan.image, *(s.snapshot for s in plan.snapshots)))
        assert locked(world) == set() and in_use_summaries(world.services.records) == []

    def test_given_the_second_pool_deleted_first_then_the_first_pool_keeps_every_lock(self):
        world, first, second = self.two_pools_on_one_version()
        second_plan = second.plan
        assert second_plan is not None
        before = locked(world)
        assert release(world.services.records, world.azure, second_plan.pool.id, keep_locks=False) == [] and locked(world) == before
        assert all("render-pool-2" not in text for text in world.azure.lock_notes.values())
