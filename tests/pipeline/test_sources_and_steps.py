"""Every kind of source, and the scenario steps that act on the world directly."""

from __future__ import annotations

from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, DEFAULT_GALLERY_ID, DEFAULT_RG, Scenario, default_request

FIRST = "team-a-render-001"
SNAPSHOTS = f"{DEFAULT_RG}/providers/Microsoft.Compute/snapshots"


def play(steps: list[dict]) -> dict:
    return build_report(Rehearsal(Scenario.model_validate({"steps": steps})).run())


def request_from(request_id: str, source: dict, **image) -> dict:
    request = default_request(poolName=f"pool-{request_id}", targetDedicatedNodes=50)
    request.update(requestId=request_id, source=source)
    request["image"] = {"galleryId": DEFAULT_GALLERY_ID, **image}
    return request


def stages(report: dict) -> dict[str, str]:
    return {r["id"]: r["stage"] for r in report["requests"]}


def pool_image(report: dict, request_id: str) -> str:
    return next(p["imageReference"] for p in report["resources"]["pools"] if p["id"].endswith(f"/pool-{request_id}"))


class TestSources:
    def test_a_request_from_existing_snapshots_starts_at_imaging(self):
        source = {"snapshots": {"osDiskSnapshotId": f"{SNAPSHOTS}/cip-{FIRST}-os",
                                "dataDisks": [{"lun": 0, "snapshotId": f"{SNAPSHOTS}/cip-{FIRST}-lun0"}]}}
        report = play([{"submit": default_request()}, {"runUntilIdle": True},
                       {"submit": request_from("from-snapshots", source)}, {"runUntilIdle": True}])
        assert stages(report) == {FIRST: "READY", "from-snapshots": "READY"}
        assert "/images/cip-from-snapshots/versions/" in pool_image(report, "from-snapshots")
        assert report["armCalls"]["PUT Microsoft.Compute/snapshots"] == 3  # the second request made none

    def test_a_request_from_a_managed_image_publishes_a_version_from_it(self):
        source = {"managedImageId": f"{DEFAULT_RG}/providers/Microsoft.Compute/images/cip-{FIRST}"}
        report = play([{"submit": default_request()}, {"runUntilIdle": True},
                       {"submit": request_from("from-image", source)}, {"runUntilIdle": True}])
        assert stages(report) == {FIRST: "READY", "from-image": "READY"}
        assert report["armCalls"]["PUT Microsoft.Compute/images"] == 1
        assert "/images/cip-from-image/versions/" in pool_image(report, "from-image")

    def test_a_request_from_a_gallery_image_version_only_creates_the_pool(self):
        first = play([{"submit": default_request()}, {"runUntilIdle": True}])
        version_id = first["resources"]["imageVersions"][0]["id"]
        report = play([{"submit": default_request()}, {"runUntilIdle": True},
                       {"submit": request_from("from-version", {"galleryImageVersionId": version_id})}, {"runUntilIdle": True}])
        assert stages(report) == {FIRST: "READY", "from-version": "READY"}
        assert pool_image(report, "from-version") == version_id
        assert report["armCalls"]["PUT Microsoft.Compute/galleries/images/versions"] == 1

    def test_a_missing_source_is_rejected_naming_the_field(self):
        report = play([{"submit": request_from("no-image", {"managedImageId": f"{DEFAULT_RG}/providers/Microsoft.Compute/images/none"})},
                       {"runUntilIdle": True}])
        [request] = report["requests"]
        assert request["stage"] == "REJECTED" and request["reason"].startswith("source.managedImageId:") and "does not exist" in request["reason"]


class TestWorldSteps:
    def test_advance_delete_lock_and_a_hand_written_event_are_played(self):
        event = {"id": "e-1", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": f"{SNAPSHOTS}/cip-nobody-os",
                 "eventTime": "2026-01-05T09:00:00Z", "dataVersion": "2", "metadataVersion": "1", "topic": DEFAULT_RG,
                 "data": {"operationName": "Microsoft.Compute/snapshots/write", "resourceUri": f"{SNAPSHOTS}/cip-nobody-os", "status": "Succeeded"}}
        report = play([{"advance": "PT10M"}, {"deliverEvent": event},
                       {"deleteLock": f"{DEFAULT_ACCOUNT_ID}/providers/Microsoft.Authorization/locks/none"}])
        assert report["virtualElapsedSeconds"] == 600
        assert report["armCalls"] == {"DELETE Microsoft.Authorization/locks": 1}
        assert report["functionErrors"] == [] and report["requests"] == []
