"""The shipped refresh scenarios and the shared-version one, played through the registered functions on the emulator.

Each scenario is played once (cached): the tests read its report and, for the image inventory, the rehearsal itself.
"""

from __future__ import annotations

from functools import cache

from cli.images import inventory
from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import load_scenario
from tests.support import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"
ACCOUNT = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/teambatch"
POOL = f"{ACCOUNT}/pools/render-pool"
IMAGING = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-imaging"


@cache
def rehearsed(name: str) -> Rehearsal:
    return Rehearsal(load_scenario(EXAMPLES / f"{name}.json")).run()


@cache
def report(name: str) -> dict:
    return build_report(rehearsed(name))


def stages(name: str) -> dict[str, str]:
    return {r["id"]: r["stage"] for r in report(name)["requests"]}


def pool(name: str, pool_id: str = POOL) -> dict:
    [found] = [p for p in report(name)["resources"]["pools"] if p["id"] == pool_id]
    return found


def version_of(name: str, request_id: str) -> str:
    plan = rehearsed(name).ledger.get(request_id).plan
    assert plan is not None and plan.image_version is not None
    return plan.image_version.id


def lineage_of(name: str, request_id: str) -> set[str]:
    plan = rehearsed(name).ledger.get(request_id).plan
    assert plan is not None and plan.image is not None and plan.image_version is not None
    return {r.lower() for r in (plan.image_version.id, plan.image.id, *(s.snapshot.id for s in plan.snapshots))}


def locked(name: str) -> set[str]:
    return {lock["scope"].lower() for lock in report(name)["resources"]["locks"]}


def reply(name: str, request_id: str) -> dict:
    [body] = [r["body"] for r in report(name)["replies"] if r["body"]["requestId"] == request_id]
    return body


def images_of(series: list[dict]) -> list[str]:
    """The images a pool deployed from, in order, each once."""
    return list(dict.fromkeys(sample["imageReference"] for sample in series))


class TestDrain:
    def test_the_pool_moves_to_the_new_version_at_zero_nodes_and_is_back_at_target_on_it(self):
        name = "refresh-by-drain"
        old, new = version_of(name, "drain-001"), version_of(name, "drain-002")
        assert stages(name) == {"drain-001": "READY", "drain-002": "READY"}
        moved = pool(name)
        assert moved["imageReference"] == new and (moved["currentDedicatedNodes"], moved["targetDedicatedNodes"]) == (600, 600)
        assert moved["nodesByImage"] == {new: 600}
        series = report(name)["poolSeries"][POOL]
        assert images_of(series) == [old, new]
        # The image changed only once the pool was Steady at zero nodes.
        [first_on_new] = [s for s in series if s["imageReference"] == new][:1]
        last_on_old = [s for s in series if s["imageReference"] == old][-1]
        assert (last_on_old["currentDedicatedNodes"], last_on_old["allocationState"]) == (0, "Steady")
        assert first_on_new["targetDedicatedNodes"] == 600
        assert report(name)["functionErrors"] == [] and report(name)["alerts"] == []

    def test_the_old_lineage_is_unlocked_and_the_old_version_retired_and_the_team_hears_each_step_once(self):
        name = "refresh-by-drain"
        assert locked(name) == lineage_of(name, "drain-002") and not locked(name) & lineage_of(name, "drain-001")
        [retired] = [v for v in report(name)["resources"]["imageVersions"] if v["id"] == version_of(name, "drain-001")]
        assert retired["excludeFromLatest"] and retired["endOfLifeDate"].startswith("2026-02-04")
        body = reply(name, "drain-002")
        assert body["stage"] == "READY" and [s["step"] for s in body["steps"]] == ["draining", "moved", "released", "retired", "restored"]
        assert "nodeDeallocationOption TaskCompletion" in body["steps"][0]["detail"]
        assert len([r for r in report(name)["replies"] if r["body"]["requestId"] == "drain-002"]) == 1

    def test_the_image_inventory_shows_the_old_version_retired_and_safe_to_delete(self):
        rehearsal = rehearsed("refresh-by-drain")
        items = inventory(rehearsal.clients, rehearsal.services.ledger, rehearsal.services.records, resource_groups=[IMAGING],
                          batch_accounts=[ACCOUNT], now=rehearsal.emulator.now())
        by_id = {item["id"]: item for item in items}
        old, new = by_id[version_of("refresh-by-drain", "drain-001")], by_id[version_of("refresh-by-drain", "drain-002")]
        assert old["retired"] and old["safeToDelete"] and not old["inUse"] and old["advice"] == "retired and unused: safe to delete"
        assert old["endOfLife"].startswith("2026-02-04")
        assert new["inUse"] and not new["retired"] and [p["name"] for p in new["pools"]] == ["render-pool"]


class TestWhenIdle:
    def test_the_pool_moves_once_the_team_scaled_it_to_zero_and_the_morning_resize_brings_nodes_on_the_new_image(self):
        name = "refresh-when-idle"
        old, new = version_of(name, "night-001"), version_of(name, "night-002")
        assert stages(name) == {"night-001": "READY", "night-002": "READY"}
        moved = pool(name)
        assert moved["imageReference"] == new and moved["currentDedicatedNodes"] == moved["targetDedicatedNodes"] == 300
        assert moved["nodesByImage"] == {new: 300}
        series = report(name)["poolSeries"][POOL]
        assert images_of(series) == [old, new]
        body = reply(name, "night-002")
        assert [s["step"] for s in body["steps"]] == ["waiting", "moved", "released", "retired"]
        assert "at its target 0/0" in body["reason"]
        assert not locked(name) & lineage_of(name, "night-001")


class TestDeadline:
    def test_a_busy_pool_is_left_on_its_old_image_and_the_request_fails_saying_why_without_an_alert(self):
        name = "refresh-times-out"
        old = version_of(name, "busy-001")
        assert stages(name) == {"busy-001": "READY", "busy-002": "FAILED"}
        untouched = pool(name)
        assert untouched["imageReference"] == old and untouched["currentDedicatedNodes"] == untouched["targetDedicatedNodes"] == 300
        assert images_of(report(name)["poolSeries"][POOL]) == [old]
        body = reply(name, "busy-002")
        assert body["stage"] == "FAILED" and "deadline" in body["reason"] and "stays on" in body["reason"]
        assert report(name)["alerts"] == []
        # The old lineage is still locked (the pool uses it); the new version was never locked.
        assert lineage_of(name, "busy-001") <= locked(name) and version_of(name, "busy-002").lower() not in locked(name)


class TestAdmission:
    def test_an_image_that_does_not_fit_the_pool_is_rejected_naming_each_misfit_and_nothing_is_made(self):
        name = "refresh-image-does-not-fit"
        assert stages(name) == {"fit-001": "READY", "fit-002": "REJECTED"}
        reason = reply(name, "fit-002")["reason"]
        assert "source: a Windows image cannot run under node agent batch.node.ubuntu 24.04 (Linux)" in reason
        assert "image.imageDefinition: cip-fit-001 does not fit the image: osType is Linux, the image is Windows" in reason
        assert not [s for s in report(name)["resources"]["snapshots"] if "fit-002" in s["id"]]

    def test_of_two_refreshes_racing_for_one_pool_the_second_is_rejected_and_the_first_moves_it(self):
        name = "refresh-two-racing"
        assert stages(name) == {"race-001": "READY", "race-002": "READY", "race-003": "REJECTED"}
        assert reply(name, "race-003")["reason"] == "refresh.poolId: render-pool is being refreshed by request race-002 (SNAPSHOTTING)"
        assert pool(name)["imageReference"] == version_of(name, "race-002")


class TestOldLineage:
    def test_after_its_only_pool_moved_the_old_lineage_is_deleted_without_an_alert(self):
        name = "refresh-old-version-deleted"
        assert stages(name) == {"old-001": "READY", "old-002": "READY"}
        present = {r["id"].lower() for kind in ("imageVersions", "images", "snapshots") for r in report(name)["resources"][kind]}
        assert not present & lineage_of(name, "old-001")
        assert report(name)["alerts"] == [] and report(name)["functionErrors"] == []

    def test_a_version_another_pool_still_runs_stays_locked_and_its_delete_is_refused_with_one_alert(self):
        name = "refresh-old-version-still-used"
        assert stages(name) == {"shared-001": "READY", "shared-team-b": "READY", "shared-002": "READY"}
        old = version_of(name, "shared-001")
        assert pool(name)["imageReference"] == version_of(name, "shared-002")
        assert pool(name, f"{ACCOUNT}/pools/render-pool-2")["imageReference"] == old
        assert lineage_of(name, "shared-001") <= locked(name)
        [alert] = report(name)["alerts"]
        assert alert["type"] == "CustomImagePool.DeletionBlocked" and alert["subject"] == old
        assert [p["id"] for p in alert["data"]["pools"]] == [f"{ACCOUNT}/pools/render-pool-2"]
        steps = {s["step"]: s["detail"] for s in reply(name, "shared-002")["steps"]}
        assert "still used by pool(s) render-pool-2" in steps["released"] and "still used by pool(s) render-pool-2" in steps["retired"]


class TestSharedVersionPoolDeleted:
    """Issue 22, point 4: locks are released per resource only when no pool uses it, whichever pool goes first."""

    def test_deleting_the_pool_that_made_the_version_keeps_everything_the_other_pool_uses_locked(self):
        name = "protection-shared-version-pool-deleted"
        assert stages(name) == {"pair-001": "READY", "pair-team-b": "READY"}
        assert [p["id"] for p in report(name)["resources"]["pools"]] == [f"{ACCOUNT}/pools/render-pool-2"]
        lineage = lineage_of(name, "pair-001")
        assert lineage <= locked(name)
        assert f"{IMAGING}/providers/Microsoft.Compute/images/cip-pair-001".lower() in {i["id"].lower() for i in report(name)["resources"]["images"]}
        [alert] = report(name)["alerts"]
        assert alert["type"] == "CustomImagePool.DeletionBlocked" and [p["id"] for p in alert["data"]["pools"]] == [f"{ACCOUNT}/pools/render-pool-2"]
