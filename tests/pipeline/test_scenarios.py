"""The shipped example scenarios, played through the registered functions on the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.router import is_read
from tests.support import PROJECT_ROOT, example, played, played_report

EXAMPLES = PROJECT_ROOT / "examples"


def play(name: str) -> dict:
    return played_report(example(name))


def writes(report: dict) -> dict[str, int]:
    return {op: n for op, n in report["armCalls"].items() if not is_read(op)}


def stages(report: dict) -> dict[str, str]:
    return {r["id"]: r["stage"] for r in report["requests"]}


class TestGalleryPath:
    def test_a_600_node_request_from_a_vm_with_two_data_disks_ends_with_one_of_each_resource(self):
        report = play("gallery-600-nodes.json")
        assert stages(report) == {"team-a-render-001": "READY"}
        resources = report["resources"]
        assert sorted(s["id"].rsplit("/", 1)[-1] for s in resources["snapshots"]) == [
            "cip-team-a-render-001-lun0", "cip-team-a-render-001-lun1", "cip-team-a-render-001-os"]
        assert [i["id"].rsplit("/", 1)[-1] for i in resources["images"]] == ["cip-team-a-render-001"]
        [version] = resources["imageVersions"]
        assert version["replicaCount"] == 2  # ceil(600 / 300)
        [pool] = resources["pools"]
        assert pool["imageReference"] == version["id"]
        assert (pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"]) == (600, 0)
        # Every write happened once: 3 snapshots, 1 image, 1 definition, 1 version, 1 pool;
        # 300 nodes arrive per resize: the first resize stalls at 300, the pool guard stops it (one POST stopResize)
        # and resizes once more (one PATCH).
        assert writes(report) == {
            "POST Microsoft.Batch/batchAccounts/pools": 1,
            "PATCH Microsoft.Batch/batchAccounts/pools": 1,
            "PUT Microsoft.Compute/snapshots": 3,
            "PUT Microsoft.Compute/images": 1,
            "PUT Microsoft.Compute/galleries/images": 1,
            "PUT Microsoft.Compute/galleries/images/versions": 1,
            "PUT Microsoft.Batch/batchAccounts/pools": 1,
            # image protection: the version, the managed image and the three snapshots
            "PUT Microsoft.Authorization/locks": 5,
        }
        assert report["functionErrors"] == []
        [reply] = report["replies"]
        assert reply["to"] == "team-a-replies" and reply["body"]["stage"] == "READY" and reply["body"]["poolId"] == pool["id"]

    def test_the_pool_carries_metadata_linking_it_to_the_request_and_its_targets(self):
        rehearsal = played(example("gallery-600-nodes.json"))
        [pool] = [r for r in rehearsal.emulator.store if r.type == "Microsoft.Batch/batchAccounts/pools"]
        metadata = {m["name"]: m["value"] for m in pool.properties["metadata"]}
        guard_state = json.loads(metadata.pop("cip-guard-state"))
        assert metadata == {"cip-request": "team-a-render-001", "cip-target-dedicated": "600", "cip-target-low-priority": "0"}
        assert guard_state["target"] == "600/0" and guard_state["nodesAtResize"] == 300
        assert pool.properties["scaleSettings"]["fixedScale"]["resizeTimeout"] == "PT25M"

    def test_every_event_delivered_three_times_shuffled_still_creates_one_of_each(self):
        report = play("events-delivered-three-times.json")
        assert stages(report) == {"team-a-render-001": "READY"}
        assert writes(report) == writes(play("gallery-600-nodes.json"))
        assert len(report["replies"]) == 1 and report["functionErrors"] == []


class TestLegacyPath:
    def test_legacy_mode_creates_the_pool_straight_from_the_managed_image(self):
        report = play("legacy-managed-image.json")
        assert stages(report) == {"team-a-legacy-001": "READY"}
        [image] = report["resources"]["images"]
        [pool] = report["resources"]["pools"]
        assert pool["imageReference"] == image["id"]
        assert report["resources"]["imageVersions"] == []
        assert "PUT Microsoft.Compute/galleries/images/versions" not in writes(report)


class TestPermanentRefusals:
    def test_a_snapshot_put_refused_for_good_ends_the_request_failed_with_azures_reason_after_one_put(self):
        # GIVEN Compute refusing every snapshot PUT with 409 OperationNotAllowed (a quota); WHEN a request runs a day
        report = play("snapshot-refused-for-good.json")
        # THEN it is FAILED at once with Azure's code and message: one PUT, one alert, one reply, no retry loop
        [request] = report["requests"]
        assert request["stage"] == "FAILED" and "OperationNotAllowed: Operation could not be completed" in request["reason"]
        assert report["armCalls"]["PUT Microsoft.Compute/snapshots"] == 1
        assert [a["type"] for a in report["alerts"]] == ["CustomImagePool.RequestFailed"]
        [reply] = report["replies"]
        assert reply["body"]["stage"] == "FAILED" and reply["body"]["reason"] == request["reason"]
        assert report["functionErrors"] == []


class TestRejections:
    def test_malformed_requests_are_rejected_naming_the_field_answered_and_never_touch_azure(self):
        report = play("malformed-request.json")
        reasons = {r["id"]: r["reason"] for r in report["requests"]}
        assert all(r["stage"] == "REJECTED" for r in report["requests"])
        assert reasons["bad-json-1"].startswith("body: not valid JSON")
        assert reasons["typo-001"] == "poolSettings: unknown field"
        assert reasons["timeout-001"] == "pool.resizeTimeout: must be between PT5M and PT2H"
        assert report["armCalls"] == {} and report["functionErrors"] == []
        assert sorted(r["body"]["requestId"] for r in report["replies"]) == ["bad-json-1", "timeout-001", "typo-001"]

    def test_a_vm_failing_the_prerequisites_is_rejected_naming_every_failed_check(self):
        report = play("vm-fails-prerequisites.json")
        [request] = report["requests"]
        assert request["stage"] == "REJECTED"
        for check in ("noExtensions", "osDiskNotEncrypted", "firstPartyMarketplaceImage", "noPurchasePlan"):
            assert check in request["reason"]
        assert writes(report) == {}

    def test_a_request_outside_the_allowed_scopes_is_rejected_without_any_arm_call(self):
        report = play("outside-allowed-scopes.json")
        [request] = report["requests"]
        assert request["stage"] == "REJECTED" and request["reason"].startswith("pool.batchAccountId:")
        assert "outside the allowed scopes" in request["reason"]
        assert report["armCalls"] == {}

    def test_nodes_across_pools_sharing_an_image_lineage_may_not_exceed_the_custom_image_limit(self):
        report = play("over-node-limits.json")
        assert stages(report) == {"limits-001": "READY", "limits-002": "REJECTED"}
        reason = next(r["reason"] for r in report["requests"] if r["id"] == "limits-002")
        assert "2600 dedicated" in reason and "big-pool" in reason
        assert [p["id"].rsplit("/", 1)[-1] for p in report["resources"]["pools"]] == ["big-pool"]


class TestCommandLine:
    def test_rehearse_json_prints_the_report_contract(self):
        completed = subprocess.run(
            [sys.executable, "-m", "cli", "rehearse", "--json"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        )
        report = json.loads(completed.stdout)
        for key in ("requests", "resources", "alerts", "replies", "armCalls", "virtualElapsedSeconds", "functionErrors"):
            assert key in report
        for kind in ("snapshots", "images", "imageVersions", "pools", "locks"):
            assert isinstance(report["resources"][kind], list)
        assert report["requests"][0]["stage"] == "READY"
        assert set(report["resources"]["pools"][0]) >= {
            "id", "imageReference", "targetDedicatedNodes", "targetLowPriorityNodes", "currentDedicatedNodes", "currentLowPriorityNodes", "allocationState"}

    def test_rehearse_prints_a_readable_timeline(self):
        completed = subprocess.run([sys.executable, "-m", "cli", "rehearse"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
        assert "request team-a-render-001: READY" in completed.stdout
        assert "SNAPSHOTTING" in completed.stdout and "CREATING_POOL" in completed.stdout

    @pytest.mark.parametrize(
        "content, problem",
        [("{", "not valid JSON"), ('{"steps": [{"explode": true}]}', "steps[0]"), ('{"steps": [], "wrold": {}}', "wrold: unknown field")],
    )
    def test_an_invalid_scenario_file_exits_non_zero_naming_the_problem(self, tmp_path: Path, content: str, problem: str):
        scenario = tmp_path / "bad.json"
        scenario.write_text(content)
        completed = subprocess.run([sys.executable, "-m", "cli", "rehearse", "--scenario", str(scenario)], cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert completed.returncode == 2
        assert problem in completed.stderr

    def test_schema_prints_the_request_json_schema(self):
        completed = subprocess.run([sys.executable, "-m", "cli", "schema"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
        schema = json.loads(completed.stdout)
        # One of two kinds: a new pool, or a refresh of an existing one; each forbids unknown fields.
        kinds = {ref["$ref"].rsplit("/", 1)[-1]: schema["$defs"][ref["$ref"].rsplit("/", 1)[-1]] for ref in schema["oneOf"]}
        assert {name: set(kind["required"]) for name, kind in kinds.items()} == {
            "PoolRequest": {"requestedBy", "source", "pool"}, "RefreshRequest": {"requestedBy", "source", "refresh"}}
        assert all(kind["additionalProperties"] is False for kind in kinds.values())
        assert "resizeTimeout" in json.dumps(schema) and "nodeDeallocationOption" in json.dumps(schema)
