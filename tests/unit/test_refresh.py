"""Image refresh on the fake Azure: a team's existing pool moved to a new image, its old lineage released and retired (fast).

Each test starts from a READY pool made by request r1 (4 nodes on gallery version cip-r1/...) and sends a refresh from
a second VM; time passes with :meth:`FakeAzure.settle`, the guard's sweeps hand the pool to the refresh.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.arm.ids import VIRTUAL_MACHINE
from shared.arm.pools import PoolView
from shared.arm.views import DiskView, VirtualMachineView
from shared.intake.receive import IncomingMessage
from shared.model.request import RequestRejected
from shared.refresh.admission import CLAIM_KIND, claim_pool
from shared.store.ledger import RequestRecord, Stage
from tests.unit.world import ACCOUNT, REPLIES, RG, VM, UnitWorld, request_body

NEW_VM = VM.sibling(VIRTUAL_MACHINE, "builder-v2")
POOL_ID = f"{ACCOUNT.id}/pools/render-pool"


def builder(world: UnitWorld, vm_id: str, os_type: str = "Linux", security_type: str = "") -> None:
    name = vm_id.rsplit("/", 1)[-1]
    world.azure.add(VirtualMachineView(vm_id, "westeurope", "Succeeded", DiskView(None, f"{RG}/providers/Microsoft.Compute/disks/{name}_os", os_type),
                                       (), (), True, "canonical", None, security_type))


def until_settled(world: UnitWorld, record: RequestRecord, *, stop: tuple[Stage, ...]) -> RequestRecord:
    """Time passes and events arrive until the request reaches one of ``stop`` (or a final stage)."""
    for _ in range(12):
        if record.stage in stop or record.stage.is_final:
            return record
        world.azure.settle()
        record = world.services.pipeline().drive(world.ledger.get(record.request_id))
    return record


def send(world: UnitWorld, body: dict, message_id: str) -> RequestRecord:
    return world.services.intake().receive(IncomingMessage(json.dumps(body).encode(), message_id, reply_to=REPLIES))


def refresh_body(request_id: str = "r2", vm: str = NEW_VM.id, **refresh: object) -> dict:
    return {"requestId": request_id, "requestedBy": "team-a@contoso.com", "source": {"virtualMachineId": vm},
            "refresh": {"poolId": POOL_ID, **refresh}}


def with_pool_ready() -> tuple[UnitWorld, RequestRecord]:
    """GIVEN request r1's READY pool (4 nodes on its version) and a second builder VM."""
    world = UnitWorld()
    first = until_settled(world, send(world, request_body("r1"), "m1"), stop=())
    assert first.stage is Stage.READY
    builder(world, NEW_VM.id)
    return world, first


def pool(world: UnitWorld) -> PoolView:
    found = world.azure.resources[POOL_ID.lower()]
    assert isinstance(found, PoolView)
    return found


def locked(world: UnitWorld) -> set[str]:
    return {key.split("/providers/microsoft.authorization/")[0] for key in world.azure.lock_notes}


def sweep(world: UnitWorld) -> None:
    world.services.guard().sweep()


def replies(world: UnitWorld, request_id: str) -> list[dict]:
    return [body for body in (json.loads(m.body) for m in world.sender.to(REPLIES)) if body["requestId"] == request_id]


class TestDrain:
    def test_given_a_busy_pool_when_drained_then_it_moves_to_the_new_version_gets_its_target_back_and_the_old_lineage_is_retired(self):
        world, first = with_pool_ready()
        old = first.plan
        assert old is not None and old.image_version is not None and old.image is not None
        record = until_settled(world, send(world, refresh_body(mode="drain"), "m2"), stop=(Stage.REFRESHING,))
        plan = record.plan
        assert record.stage is Stage.REFRESHING and plan is not None and plan.image_version is not None
        # The new version goes into the pool's own definition, which is used as it is (never PUT again).
        assert plan.image_definition == old.image_definition and plan.definition_exists and plan.pool.id == POOL_ID
        assert [op for op, target, _ in world.azure.writes if op == "create_image_definition"] == ["create_image_definition"]

        sweep(world)  # the guard hands the pool to the refresh: a drain to zero, tasks allowed to complete
        drained = pool(world)
        assert (drained.target_dedicated, drained.allocation_state, drained.image_id) == (0, "Resizing", old.image_version.id)
        world.azure.settle()
        sweep(world)  # Steady at zero: the image changes, the target comes back
        moved = pool(world)
        assert moved.image_id == plan.image_version.id and moved.target_dedicated == 4 and moved.request_id == "r2"
        assert moved.metadata["cip-target-dedicated"] == "4" and json.loads(moved.metadata["cip-guard-state"]) == {"target": "4/0"}
        assert world.ledger.get("r2").stage is Stage.SCALING
        world.azure.settle()
        sweep(world)  # at target on the new image: the guard finishes it as any pool
        done = world.ledger.get("r2")
        assert done.stage is Stage.READY and pool(world).current_dedicated == 4

        # Protection moved: the new lineage is locked, every resource of the old one unlocked (no pool uses it).
        assert plan.image is not None
        assert locked(world) == {plan.image_version.key(), plan.image.key(), *(s.snapshot.key() for s in plan.snapshots)}
        retired = world.azure.image_version(old.image_version)
        assert retired is not None and retired.exclude_from_latest
        assert retired.end_of_life == world.clock() + timedelta(days=30)
        [reply] = replies(world, "r2")
        assert reply["stage"] == "READY" and reply["poolId"] == POOL_ID
        assert [step["step"] for step in reply["steps"]] == ["draining", "moved", "released", "retired", "restored"]
        assert "TaskCompletion" in reply["steps"][0]["detail"] and "safe to delete" in reply["steps"][3]["detail"]


class TestWhenIdle:
    def test_given_a_pool_the_team_scaled_to_zero_when_refreshed_then_it_moves_without_changing_its_size(self):
        world, _ = with_pool_ready()
        record = until_settled(world, send(world, refresh_body(), "m2"), stop=(Stage.REFRESHING,))
        sweep(world)
        assert record.plan is not None and pool(world).image_id != record.plan.pool_image_id
        assert world.ledger.get("r2").progress.steps[-1]["step"] == "waiting"
        # Overnight the team scales its pool to zero (a person's resize): the guard leaves it to the refresh.
        world.azure.add(replace(pool(world), target_dedicated=0, current_dedicated=0, etag='W/"night"'))
        sweep(world)
        done = world.ledger.get("r2")
        assert done.stage is Stage.READY and done.plan is not None and pool(world).image_id == done.plan.pool_image_id
        assert pool(world).target_dedicated == 0 and pool(world).metadata["cip-target-dedicated"] == "0"
        assert not [w for w in world.azure.writes if w[0] == "update_pool" and w[1] == POOL_ID]  # its size never changed

    def test_given_a_pool_that_stays_busy_when_the_deadline_passes_then_the_refresh_fails_and_the_pool_is_untouched(self):
        world, first = with_pool_ready()
        record = until_settled(world, send(world, refresh_body(deadline="PT2H"), "m2"), stop=(Stage.REFRESHING,))
        assert record.stage is Stage.REFRESHING and first.plan is not None and first.plan.image_version is not None
        sweep(world)
        world.clock.advance(hours=1)
        sweep(world)
        assert world.ledger.get("r2").stage is Stage.REFRESHING and len(world.ledger.get("r2").progress.steps) == 1
        world.clock.advance(hours=1)
        sweep(world)
        failed = world.ledger.get("r2")
        assert failed.stage is Stage.FAILED and failed.reason is not None and "deadline" in failed.reason
        assert pool(world).image_id == first.plan.image_version.id and pool(world).target_dedicated == 4
        assert world.publisher.published == []  # the team's own to act on: no alert to ops
        [reply] = replies(world, "r2")
        assert reply["stage"] == "FAILED" and [step["step"] for step in reply["steps"]] == ["waiting"]
        # The pool is free again: another refresh of it is accepted.
        again = send(world, refresh_body("r3", mode="drain"), "m3")
        assert again.stage is not Stage.REJECTED, again.reason


class TestAdmission:
    def test_given_a_windows_image_for_a_linux_pool_then_it_is_rejected_naming_each_misfit_and_nothing_is_made(self):
        world, _ = with_pool_ready()
        builder(world, NEW_VM.id, os_type="Windows", security_type="TrustedLaunch")
        writes = len(world.azure.writes)
        record = send(world, refresh_body(), "m2")
        assert record.stage is Stage.REJECTED and record.reason is not None
        assert "source: a Windows image cannot run under node agent batch.node.ubuntu 24.04 (Linux)" in record.reason
        assert "a TrustedLaunch image does not fit pool render-pool, whose security type is Standard" in record.reason
        assert "image.imageDefinition: cip-r1 does not fit the image: osType is Linux, the image is Windows" in record.reason
        assert len(world.azure.writes) == writes

    def test_given_a_pool_this_automation_did_not_make_then_it_is_rejected(self):
        world, _ = with_pool_ready()
        world.azure.add(replace(pool(world), metadata={}))
        record = send(world, refresh_body(), "m2")
        assert record.stage is Stage.REJECTED and record.reason is not None and "GUARDED_BATCH_ACCOUNTS" in record.reason

    def test_given_a_pool_whose_metadata_names_another_pools_request_then_it_is_rejected(self):
        world, _ = with_pool_ready()
        until_settled(world, send(world, request_body("r9", pool_name="other-pool"), "m9"), stop=())
        world.azure.add(replace(pool(world), metadata={**pool(world).metadata, "cip-request": "r9"}))
        record = send(world, refresh_body(), "m2")
        assert record.stage is Stage.REJECTED and record.reason == "refresh.poolId: render-pool names request r9, which did not make this pool"

    def test_given_a_refresh_in_flight_when_a_second_one_arrives_for_the_same_pool_then_the_second_is_rejected(self):
        world, _ = with_pool_ready()
        assert send(world, refresh_body("r2"), "m2").stage is Stage.SNAPSHOTTING
        second = send(world, refresh_body("r3", mode="drain"), "m3")
        assert second.stage is Stage.REJECTED and second.reason == "refresh.poolId: render-pool is being refreshed by request r2 (SNAPSHOTTING)"

    def test_given_two_refreshes_that_both_read_the_pool_free_then_the_conditional_insert_lets_one_claim_it(self):
        world, _ = with_pool_ready()
        records = world.services.records

        class ReadTooEarly:
            """The second claimant read the claim before the first one wrote it."""

            def __getattr__(self, name: str):
                return getattr(records, name)

            def get(self, kind: str, key: str):
                return None if kind == CLAIM_KIND and not hasattr(self, "read") and not setattr(self, "read", True) else records.get(kind, key)

        claim_pool(records, world.ledger, pool(world), "r2", world.clock())
        with pytest.raises(RequestRejected) as raised:
            claim_pool(ReadTooEarly(), world.ledger, pool(world), "r3", world.clock())  # type: ignore[arg-type]
        assert raised.value.reason == "refresh.poolId: render-pool is being refreshed by request r2"
        claim = records.get(CLAIM_KIND, POOL_ID)
        assert claim is not None and claim.data["requestId"] == "r2"


class TestSharedOldVersion:
    def test_given_another_pool_on_the_old_version_when_the_first_moves_then_the_old_lineage_stays_locked_for_it(self):
        world, first = with_pool_ready()
        old = first.plan
        assert old is not None and old.image_version is not None and old.image is not None
        reuse = {**request_body("r1b", pool_name="render-pool-2"), "source": {"galleryImageVersionId": old.image_version.id}}
        del reuse["image"]["galleryId"]
        assert until_settled(world, send(world, reuse, "m1b"), stop=()).stage is Stage.READY
        until_settled(world, send(world, refresh_body(mode="drain"), "m2"), stop=(Stage.REFRESHING,))
        for _ in range(3):
            sweep(world)
            world.azure.settle()
        assert world.ledger.get("r2").stage in (Stage.SCALING, Stage.READY)
        old_lineage = {old.image_version.key(), old.image.key(), *(s.snapshot.key() for s in old.snapshots)}
        assert old_lineage <= locked(world)
        assert all("render-pool-2" in world.azure.lock_notes[f"{r}/providers/microsoft.authorization/locks/cip-protect"] for r in old_lineage)
        steps = {step["step"]: step["detail"] for step in world.ledger.get("r2").progress.steps}
        assert "still used by pool(s) render-pool-2" in steps["released"] and "still used by pool(s) render-pool-2" in steps["retired"]
