"""The pool guard on the fake Azure: what it resizes, what it leaves alone, what it finishes (fast)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from shared.arm.ids import BATCH_POOL, IMAGE, parse_arm_id
from shared.arm.pools import PoolView
from shared.arm.views import ImageView
from shared.guard import adoption
from shared.guard.sweep import SweepReport
from shared.messaging import Adoption, PoolCheck, is_adoption
from shared.store.ledger import RequestRecord, Stage
from shared.store.progress import new_request
from tests.unit.world import ACCOUNT, REPLIES, START, VM, UnitWorld

IMAGE_ID = VM.sibling(IMAGE, "base")
POOL = parse_arm_id(f"{ACCOUNT.id}/pools/render", BATCH_POOL)


def guarded_world() -> UnitWorld:
    """GIVEN a guarded account with an image its pools use."""
    world = UnitWorld(settings_overrides={"GUARDED_BATCH_ACCOUNTS": ACCOUNT.id})
    world.azure.add(ImageView(IMAGE_ID.id, "westeurope", "Succeeded", "Linux", "Generalized", ()))
    return world


def pool(current: int, target: int, **changes) -> PoolView:
    """A steady pool whose last resize timed out at ``current`` of ``target`` nodes."""
    view = PoolView(POOL.id, 'W/"7"', "Succeeded", "Steady", START - timedelta(minutes=1), current, 0, True, target, 0,
                    timedelta(minutes=15), START - timedelta(minutes=16), ("AllocationTimedout",), {}, IMAGE_ID.id, "Standard_D4ds_v5")
    return replace(view, **changes)


class TestResizing:
    def test_given_a_pool_whose_resize_timed_out_below_target_then_it_is_resized_with_a_longer_timeout_and_looked_at_again(self):
        world = guarded_world()
        world.azure.add(pool(300, 1200))
        report = world.services.guard().sweep()
        assert report.resized == [POOL.id]
        resized = world.azure.pool(POOL)
        assert resized is not None and resized.target_dedicated == 1200 and resized.allocation_state == "Resizing"
        assert resized.resize_timeout == timedelta(minutes=20)  # 900 nodes to add: at least 15 minutes per 1,000, at least 20
        assert json.loads(resized.metadata["cip-guard-state"])["nodesAtResize"] == 300
        [look] = world.sender.to("pool-checks")
        assert json.loads(look.body)["poolId"] == POOL.id and look.scheduled_enqueue_time is not None

    def test_given_a_pool_changed_since_it_was_listed_then_the_round_is_skipped_without_a_resize(self):
        world = guarded_world()
        listed = pool(300, 1200)
        world.azure.add(replace(listed, etag='W/"8"'))  # someone wrote it after the guard's listing
        report = SweepReport()
        world.services.guard().handle_pool(listed, True, report)
        assert report.resized == [] and world.sender.to("pool-checks") == []
        assert not any(op == "update_pool" for op, _, _ in world.azure.writes)
        current = world.azure.pool(POOL)
        assert current is not None and current.target_dedicated == 1200 and current.allocation_state == "Steady"

    def test_given_a_pool_at_target_then_nothing_is_written(self):
        world = guarded_world()
        world.azure.add(pool(1200, 1200, error_codes=()))
        assert world.services.guard().sweep().resized == []
        assert not any(op == "update_pool" for op, _, _ in world.azure.writes)

    def test_given_a_quota_error_then_ops_are_alerted_once_and_the_pool_is_not_resized(self):
        world = guarded_world()
        world.azure.add(pool(10, 100, error_codes=("AccountCoreQuotaReached",)))
        first, second = world.services.guard().sweep(), world.services.guard().sweep()
        assert first.alerted == [POOL.id] and second.alerted == [] and first.resized == second.resized == []
        [alert] = world.publisher.published
        assert alert.type == "CustomImagePool.PoolCannotReachTarget" and alert.data["errorCode"] == "AccountCoreQuotaReached"


class TestFinishing:
    def test_given_a_scaling_request_whose_pool_reached_its_target_then_it_is_ready_and_its_team_hears_it(self):
        world = guarded_world()
        world.azure.add(pool(600, 600, error_codes=(), metadata={"cip-request": "r1", "cip-target-dedicated": "600"}))
        plan: dict[str, object] = {"location": "westeurope", "snapshots": [], "imageId": IMAGE_ID.id, "imageDefinitionId": None, "imageVersionId": None,
                "poolId": POOL.id, "replicaCount": 2}
        world.ledger.create(RequestRecord.new(request_id="r1", stage=Stage.SCALING, body={}, now=START, reply_to=REPLIES,
                                              details=new_request(plan, "Linux", None)))
        report = world.services.guard().sweep()
        assert report.finished == ["r1"] and world.ledger.get("r1").stage is Stage.READY
        [reply] = world.sender.to(REPLIES)
        assert json.loads(reply.body)["stage"] == "READY"


def resizing(current: int, target: int, started_minutes_ago: float = 5) -> PoolView:
    """A pool Resizing towards ``target`` with ``current`` nodes, its resize started a while ago."""
    return pool(current, target, allocation_state="Resizing", error_codes=(), resize_timeout=timedelta(minutes=25),
                resize_started=START - timedelta(minutes=started_minutes_ago))


def looks(world: UnitWorld) -> list[PoolCheck]:
    checks = [PoolCheck.from_body(m.body.encode()) for m in world.sender.to("pool-checks")]
    return [c for c in checks if c is not None]


def pool_now(world: UnitWorld) -> PoolView:
    """The guarded pool as the fake holds it now."""
    pool = world.azure.pool(POOL)
    assert pool is not None
    return pool


def look_again(world: UnitWorld, nodes: int | None = None, **minutes: float) -> SweepReport:
    """Time passes, the pool has ``nodes`` now (when given), and the guard takes its last scheduled look."""
    world.clock.advance(**minutes)
    if nodes is not None:
        world.azure.add(replace(pool_now(world), current_dedicated=nodes))
    return world.services.guard().look(looks(world)[-1])


class TestStalledResizes:
    def test_given_nodes_stopped_arriving_for_the_stall_window_then_the_resize_is_stopped_and_issued_again(self):
        world = guarded_world()
        world.azure.add(resizing(100, 600))
        world.services.guard().look(PoolCheck(POOL.id, 0, 0, START - timedelta(minutes=2)))  # 100 nodes came: growing
        assert look_again(world, 300, minutes=1).waiting == [POOL.id]  # 300 came: still growing
        assert look_again(world, minutes=1).stopped == []  # a minute without a node is not a stall
        # WHEN two minutes pass without a new node
        report = look_again(world, minutes=1)
        # THEN the resize is stopped (the pool keeps its 300 nodes)
        assert report.stopped == [POOL.id] and pool_now(world).allocation_state == "Stopping"
        world.azure.settle()  # Stopping -> Steady with ResizeStopped, nodes kept
        stopped = pool_now(world)
        assert (stopped.current_dedicated, stopped.error_codes) == (300, ("ResizeStopped",))
        # AND the next look resizes it again at once, and nobody is alerted: the stop was the guard's own
        assert look_again(world, seconds=30).resized == [POOL.id]
        assert pool_now(world).allocation_state == "Resizing" and world.publisher.published == []

    def test_given_nodes_still_arriving_then_the_resize_is_never_stopped(self):
        world = guarded_world()
        world.azure.add(resizing(0, 2000, started_minutes_ago=1))
        world.services.guard().look(PoolCheck(POOL.id, 0, 0, START))
        for nodes in range(100, 1100, 100):
            assert look_again(world, nodes, minutes=1).stopped == []
        assert not any(op == "stop_resize" for op, _, _ in world.azure.writes)

    def test_given_a_resize_that_added_no_node_yet_then_it_is_left_to_run_to_its_timeout(self):
        world = guarded_world()
        world.azure.add(resizing(300, 600, started_minutes_ago=1))  # a new resize: no node of its own yet
        world.services.guard().look(PoolCheck(POOL.id, 0, 300, START))
        for _ in range(6):
            assert look_again(world, minutes=2).stopped == []
        assert not any(op == "stop_resize" for op, _, _ in world.azure.writes)

    def test_given_a_resize_that_paused_and_resumed_then_a_pause_as_long_is_not_a_stall(self):
        world = guarded_world()
        world.azure.add(resizing(100, 1000))
        world.services.guard().look(PoolCheck(POOL.id, 0, 0, START - timedelta(minutes=1)))  # 100 nodes: growing
        # a pause of at least 90 seconds (a look saw no new node), then nodes again: such pauses are this resize's way
        assert look_again(world, seconds=90).stopped == []
        assert look_again(world, 200, seconds=20).stopped == []
        assert looks(world)[-1].quiet_seconds == 90
        # WHEN the next pause lasts two minutes, the resize goes on (its stall window is now twice 90 seconds)
        assert look_again(world, minutes=1).stopped == [] and look_again(world, minutes=1).stopped == []
        # THEN only a pause of twice the longest one seen is a stall
        assert look_again(world, minutes=1).stopped == [POOL.id]

    def test_given_a_resize_someone_else_stopped_then_ops_hear_it_needs_a_person(self):
        world = guarded_world()
        world.azure.add(pool(300, 600, error_codes=("ResizeStopped",)))
        report = world.services.guard().sweep()
        assert report.resized == [] and report.alerted == [POOL.id]
        [alert] = world.publisher.published
        assert alert.data["errorCode"] == "ResizeStopped" and alert.data["condition"] == "needs-a-person"


def unrecorded_pools(world: UnitWorld, count: int) -> list[str]:
    """``count`` pools below target, each from its own managed image, none recorded yet: a fleet the guard adopts."""
    ids = []
    for index in range(count):
        image = VM.sibling(IMAGE, f"image-{index:03d}")
        world.azure.add(ImageView(image.id, "westeurope", "Succeeded", "Linux", "Generalized", ()))
        pool_id = f"{ACCOUNT.id}/pools/fleet-{index:03d}"
        world.azure.add(pool(300, 1200, id=pool_id, image_id=image.id))
        ids.append(pool_id)
    return ids


def locked(world: UnitWorld) -> list[str]:
    return [scope for op, scope, _ in world.azure.writes if op == "create_lock"]


class TestPacedAdoption:
    def test_given_more_unrecorded_pools_than_one_batch_then_every_pool_is_resized_first_and_the_images_are_locked_in_paced_batches(self):
        world = guarded_world()
        unrecorded_pools(world, 45)
        # WHEN the guard sweeps the fleet for the first time
        report = world.services.guard().sweep()
        # THEN every pool is resized before any lock is written, and only the first batch of images is locked now
        operations = [op for op, _, _ in world.azure.writes]
        assert report.resized and len(report.resized) == 45
        assert operations.index("create_lock") > max(i for i, op in enumerate(operations) if op == "update_pool")
        assert len(report.adopted_images) == adoption.POOLS_PER_BATCH == len(locked(world)) and report.adoption_pending == 25
        # AND the rest is scheduled one batch per interval, at most half of ARM's write budget each
        batches = [m for m in world.sender.to("pool-checks") if is_adoption(m.body.encode())]
        assert [m.scheduled_enqueue_time for m in batches] == [START + adoption.BATCH_INTERVAL, START + 2 * adoption.BATCH_INTERVAL]
        assert adoption.BATCH_INTERVAL == timedelta(seconds=20) and adoption.WRITES_PER_BATCH == 100
        # WHEN a sweep comes while those batches are still due, it adopts nothing itself
        assert world.services.guard().sweep().adopted_images == []
        # WHEN the batches are delivered, every image is locked once
        for message in batches:
            parsed = Adoption.from_body(message.body.encode())
            assert parsed is not None
            world.services.guard().adopt(parsed.pools)
        assert len(locked(world)) == len(set(locked(world))) == 45

    def test_given_a_batch_that_was_lost_then_a_later_sweep_adopts_its_pools(self):
        world = guarded_world()
        unrecorded_pools(world, 30)
        world.services.guard().sweep()
        world.sender.sent.clear()  # the scheduled batch never arrives
        world.clock.advance(minutes=5)
        report = world.services.guard().sweep()
        assert len(report.adopted_images) == 10 and len(locked(world)) == 30

    def test_given_an_adoption_message_that_is_not_one_then_it_is_ignored(self):
        assert Adoption.from_body(b'{"adopt": "everything"}') is None
        assert Adoption.from_body(json.dumps({"adopt": [{"poolId": "p", "imageId": "i", "requestId": "not a request id!"}]}).encode()) is None
