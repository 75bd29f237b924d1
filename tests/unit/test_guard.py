"""The pool guard on the fake Azure: what it resizes, what it leaves alone, what it finishes (fast)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from shared.arm.ids import BATCH_POOL, IMAGE, parse_arm_id
from shared.arm.pools import PoolView
from shared.arm.views import ImageView
from shared.guard.sweep import SweepReport
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
