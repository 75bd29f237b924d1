"""Builder VMs and Batch accounts as teams really have them: regions, Trusted Launch, big gallery pools,
reused versions, shared definitions, plan images, conflicts found before any write, a person's resize."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emulator.router import is_read
from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import load_scenario
from shared.naming import image_version_name
from tests.support import example, played, played_report

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POOL_PATCH = "PATCH Microsoft.Batch/batchAccounts/pools"


def play(name: str) -> dict:
    return played_report(example(f"{name}.json"))


def only_request(report: dict) -> dict:
    [request] = report["requests"]
    return request


def writes(report: dict) -> dict[str, int]:
    return {op: n for op, n in report["armCalls"].items() if not is_read(op)}


def rejected_before_any_write(report: dict, field: str) -> str:
    request = only_request(report)
    assert request["stage"] == "REJECTED" and request["reason"].startswith(f"{field}:"), request
    assert writes(report) == {} and report["alerts"] == [] and report["functionErrors"] == []
    [reply] = report["replies"]
    assert reply["body"]["stage"] == "REJECTED" and reply["body"]["reason"] == request["reason"]
    return request["reason"]


class TestRegions:
    def test_given_a_batch_account_in_another_region_when_the_request_runs_then_the_version_is_replicated_there_and_the_pool_is_ready(self):
        # GIVEN a VM and gallery in westeurope and the Batch account in northeurope; WHEN a 600-node request runs
        report = play("batch-account-in-another-region")
        # THEN the version has the pool's replicas (600 / 300 = 2) in northeurope and one in the source region
        assert only_request(report)["stage"] == "READY"
        [version] = report["resources"]["imageVersions"]
        assert version["targetRegions"] == [{"name": "northeurope", "regionalReplicaCount": 2}, {"name": "westeurope", "regionalReplicaCount": 1}]
        [pool] = report["resources"]["pools"]
        assert pool["currentDedicatedNodes"] == 600

    def test_given_a_default_deployment_when_legacy_mode_is_asked_then_it_is_rejected_naming_the_retirement_and_the_gallery(self):
        # GIVEN a deployment without ALLOW_LEGACY_MANAGED_IMAGE_POOLS; WHEN a request asks for a managed-image pool
        reason = rejected_before_any_write(play("legacy-mode-refused"), "image.legacyManagedImage")
        # THEN it is refused before any ARM call, naming Batch's retirement date and the gallery path
        assert "retired" in reason and "2026-03-31" in reason and "image.galleryId" in reason
        assert play("legacy-mode-refused")["armCalls"] == {}

    def test_given_legacy_mode_and_an_account_in_another_region_when_submitted_then_it_is_rejected_naming_the_rule(self):
        reason = rejected_before_any_write(play("legacy-account-in-another-region"), "source.virtualMachineId")
        assert "needs it in the Batch account's region northeurope" in reason


class TestTrustedLaunchAndConfidentialVms:
    def test_given_a_trusted_launch_vm_when_the_request_runs_then_the_version_comes_from_the_snapshots_and_the_pool_is_trusted_launch(self):
        # GIVEN a Trusted Launch VM with two data disks; WHEN the request runs on the gallery path
        report = play("trusted-launch-vm")
        # THEN no managed image is made: the version's definition carries SecurityType, generation V2
        assert only_request(report)["stage"] == "READY"
        assert report["resources"]["images"] == [] and "PUT Microsoft.Compute/images" not in report["armCalls"]
        [definition] = report["resources"]["imageDefinitions"]
        assert definition["features"] == [{"name": "SecurityType", "value": "TrustedLaunch"}] and definition["hyperVGeneration"] == "V2"
        assert len(report["resources"]["snapshots"]) == 3
        # AND the pool asks Batch for Trusted Launch nodes with Secure Boot and vTPM
        [pool] = report["resources"]["pools"]
        assert pool["securityProfile"] == {"securityType": "trustedLaunch", "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}}
        # AND what the pool depends on (the version and its snapshots) is locked
        assert len(report["resources"]["locks"]) == 4

    def test_given_a_trusted_launch_vm_with_secure_boot_off_when_the_request_runs_then_the_pool_has_secure_boot_off_too(self):
        # GIVEN a Trusted Launch VM built with Secure Boot off (unsigned drivers); WHEN the request runs
        report = play("trusted-launch-secure-boot-off")
        # THEN the pool's nodes boot as the VM did: Secure Boot off, vTPM on
        [pool] = report["resources"]["pools"]
        assert only_request(report)["stage"] == "READY"
        assert pool["securityProfile"] == {"securityType": "trustedLaunch", "uefiSettings": {"secureBootEnabled": False, "vTpmEnabled": True}}

    def test_given_a_confidential_vm_when_the_request_runs_then_the_pool_is_a_confidential_vm_pool(self):
        report = play("confidential-vm")
        assert only_request(report)["stage"] == "READY" and report["resources"]["images"] == []
        [definition] = report["resources"]["imageDefinitions"]
        assert definition["features"] == [{"name": "SecurityType", "value": "ConfidentialVM"}]
        [pool] = report["resources"]["pools"]
        assert pool["securityProfile"]["securityType"] == "confidentialVM"

    def test_given_a_confidential_vm_and_a_plain_size_when_submitted_then_it_is_rejected_naming_the_size_and_the_rule(self):
        # GIVEN a confidential builder VM and a pool on Standard_D4ds_v5, which Batch lists without ConfidentialComputingType
        reason = rejected_before_any_write(play("confidential-vm-on-a-plain-size"), "pool.vmSize")
        # THEN the reason names the size and why, before any snapshot is taken
        assert "Standard_D4ds_v5 has no confidential computing" in reason and "ConfidentialComputingType" in reason

    def test_given_a_trusted_launch_vm_and_a_size_that_disables_it_when_submitted_then_it_is_rejected(self):
        reason = rejected_before_any_write(play("trusted-launch-on-a-size-without-it"), "pool.vmSize")
        assert "Standard_M64 does not support Trusted Launch (TrustedLaunchDisabled True)" in reason

    def test_given_a_generation_2_image_and_a_generation_1_only_size_when_submitted_then_it_is_rejected(self):
        reason = rejected_before_any_write(play("gen2-image-on-a-gen1-size"), "pool.vmSize")
        assert "Standard_F4 supports Hyper-V generation V1 only; the image is generation V2" in reason

    def test_given_a_region_that_does_not_offer_the_size_when_submitted_then_it_is_rejected_naming_the_region(self):
        reason = rejected_before_any_write(play("size-not-offered-in-the-region"), "pool.vmSize")
        assert reason == "pool.vmSize: Standard_D4ds_v5 is not a VM size Batch offers in westeurope"

    def test_given_a_generation_1_vm_sent_as_a_v2_image_when_submitted_then_it_is_rejected_by_the_vms_instance_view(self):
        reason = rejected_before_any_write(play("generation-1-vm-as-a-generation-2-image"), "image.hyperVGeneration")
        assert "the VM builder is generation V1, the request says V2" in reason

    def test_given_a_running_vm_never_generalized_when_submitted_then_it_is_rejected_naming_both_prerequisites(self):
        reason = rejected_before_any_write(play("vm-running-and-not-generalized"), "source.virtualMachineId")
        assert "generalized: the VM is not generalized" in reason and "notRunning: the VM is running (PowerState/running)" in reason

    def test_given_a_vm_with_a_customer_managed_key_when_the_request_runs_then_every_copy_is_encrypted_with_the_same_set(self):
        # GIVEN a VM whose disks use the team's disk encryption set; WHEN the request runs
        rehearsal = played(example("vm-with-customer-managed-key.json"))
        report = build_report(rehearsal)
        des = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-imaging/providers/Microsoft.Compute/diskEncryptionSets/team-key-westeurope"
        assert only_request(report)["stage"] == "READY"
        def properties(resource_id: str) -> dict:
            resource = rehearsal.emulator.store.find(resource_id)
            assert resource is not None, resource_id
            return resource.properties

        # THEN each snapshot, the managed image's disks and the version's replica are encrypted with that set
        for snapshot in report["resources"]["snapshots"]:
            assert properties(snapshot["id"])["encryption"] == {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": des}
        [image] = report["resources"]["images"]
        profile = properties(image["id"])["storageProfile"]
        assert profile["osDisk"]["diskEncryptionSet"] == {"id": des} and profile["dataDisks"][0]["diskEncryptionSet"] == {"id": des}
        [version] = report["resources"]["imageVersions"]
        [region] = properties(version["id"])["publishingProfile"]["targetRegions"]
        assert region["encryption"] == {"osDiskImage": {"diskEncryptionSetId": des}, "dataDiskImages": [{"lun": 0, "diskEncryptionSetId": des}]}

    def test_given_a_customer_managed_key_and_an_account_in_another_region_when_submitted_then_it_is_rejected(self):
        reason = rejected_before_any_write(play("customer-managed-key-and-account-in-another-region"), "source.virtualMachineId")
        assert "disk encryption set team-key-westeurope, in westeurope" in reason and "replicated to northeurope" in reason

    def test_given_a_trusted_launch_vm_in_legacy_mode_when_submitted_then_it_is_rejected_naming_the_rule(self):
        reason = rejected_before_any_write(play("trusted-launch-vm-legacy"), "source.virtualMachineId")
        assert "TrustedLaunch VM cannot become a managed image" in reason


class TestLargeGalleryPools:
    def test_given_3000_gallery_nodes_within_quota_when_the_request_runs_then_10_replicas_and_long_enough_resizes_reach_target(self):
        # GIVEN a 3,000-node gallery pool within the account's core quota; WHEN it runs
        rehearsal = played(example("gallery-3000-nodes.json"))
        report = build_report(rehearsal)
        # THEN the version has one replica per 300 nodes where the account is, and the pool reaches 3,000
        assert only_request(report)["stage"] == "READY"
        [version] = report["resources"]["imageVersions"]
        assert version["targetRegions"] == [{"name": "westeurope", "regionalReplicaCount": 10}]
        [pool] = report["resources"]["pools"]
        assert pool["currentDedicatedNodes"] == 3000
        # AND no resize waited out its timeout: each one that stalled at the 300 nodes a resize brings was stopped once
        # its nodes stopped coming and issued again (the timeouts the guard sets are held by tests/unit/test_guard.py)
        resizes = rehearsal.emulator.batch.resize_history
        assert len(resizes) == 10 and all(end - start < timedelta(minutes=25) for _, start, end in resizes)
        assert rehearsal.emulator.calls["POST Microsoft.Batch/batchAccounts/pools"] == 9
        # AND the pool itself was made with 45 minutes (15 per 1,000 of its 3,000 nodes), not the request's 25: the guard
        # keeps that creation timeout as the base of its own resizes (its state on the pool)
        pool_resource = rehearsal.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools")[0]
        state = json.loads({m["name"]: m["value"] for m in pool_resource.properties["metadata"]}["cip-guard-state"])
        assert state["baseTimeoutSeconds"] == 45 * 60

    def test_given_a_pool_larger_than_the_core_quota_when_submitted_then_it_is_rejected_naming_the_quota(self):
        reason = rejected_before_any_write(play("gallery-over-core-quota"), "pool.targetDedicatedNodes")
        assert "12000 dedicated cores" in reason and "quota is 10000" in reason


class TestReusedVersions:
    def test_given_a_version_with_one_replica_when_reused_for_2500_nodes_then_it_gets_9_replicas_before_the_pool_is_made(self):
        report = play("reused-version-gets-replicas")
        assert only_request(report)["stage"] == "READY"
        [version] = report["resources"]["imageVersions"]
        assert version["targetRegions"] == [{"name": "westeurope", "regionalReplicaCount": 9}]
        assert report["armCalls"]["PUT Microsoft.Compute/galleries/images/versions"] == 1
        assert "PUT Microsoft.Compute/galleries/images" not in report["armCalls"]  # not our definition: never written

    def test_given_a_reused_version_in_a_confidential_vm_supported_definition_then_the_pool_is_a_plain_generation_2_pool(self):
        # GIVEN a version whose definition says ConfidentialVMSupported (supports confidential VMs, requires nothing)
        report = play("reused-version-in-a-supported-definition")
        # THEN the pool asks for no securityProfile, so an ordinary size serves it
        [pool] = report["resources"]["pools"]
        assert only_request(report)["stage"] == "READY" and pool["securityProfile"] is None

    def test_given_a_reused_version_near_the_replica_limit_when_it_needs_more_then_it_is_rejected_naming_the_limit(self):
        # GIVEN a version with 95 replicas across three regions; WHEN a 2,500-node pool needs 9 of them in westeurope
        reason = rejected_before_any_write(play("reused-version-over-replica-limit"), "source.galleryImageVersionId")
        # THEN the gallery's limit of 100 replicas per version is named, with what each region would have
        assert "would need 103 replicas (westeurope 9, northeurope 50, eastus 44)" in reason and "at most 100" in reason


class TestVersionNames:
    def test_given_two_requests_in_one_shared_definition_when_both_run_then_the_later_version_sorts_higher(self):
        report = play("versions-in-a-shared-definition")
        assert [r["stage"] for r in report["requests"]] == ["READY", "READY"]
        names = {v["id"].rsplit("/", 1)[-1]: v for v in report["resources"]["imageVersions"]}
        first, second = sorted(names, key=lambda n: tuple(int(p) for p in n.split(".")))
        pools = {p["id"].rsplit("/", 1)[-1]: p for p in report["resources"]["pools"]}
        assert pools["first-pool"]["imageReference"].endswith(first) and pools["second-pool"]["imageReference"].endswith(second)

    def test_a_version_name_is_three_32_bit_integers_growing_with_submission_time_and_the_same_on_redelivery(self):
        early = datetime(2026, 1, 5, 23, 59, 59, 999_000, tzinfo=UTC)
        names = [image_version_name("r", early + timedelta(milliseconds=step)) for step in (0, 1, 1000, 86_400_000)]
        parts = [tuple(int(p) for p in name.split(".")) for name in names]
        assert parts == sorted(parts) and len(set(parts)) == 4
        assert all(0 <= p < 2**31 for triple in parts for p in triple)
        assert image_version_name("r", early) == image_version_name("r", early)
        assert image_version_name("a", early) != image_version_name("b", early)


class TestSharedDefinitions:
    def test_given_two_requests_naming_one_new_definition_when_both_run_then_the_definition_is_put_once(self):
        # GIVEN a definition the first request creates; WHEN a second request names it an hour later
        report = play("versions-in-a-shared-definition")
        # THEN it is created once, with an identifier from its name (no request id in it), and never PUT again
        assert [r["stage"] for r in report["requests"]] == ["READY", "READY"]
        assert report["armCalls"]["PUT Microsoft.Compute/galleries/images"] == 1
        [definition] = report["resources"]["imageDefinitions"]
        assert definition["identifier"] == {"publisher": "custom-image-pools", "offer": "render", "sku": "render"}
        assert definition["features"] == [{"name": "SecurityType", "value": "Standard"}]

    def test_given_a_teams_own_definition_in_another_region_when_named_then_it_is_used_as_it_is_and_replicated_to(self):
        # GIVEN the team's definition (publisher contoso) in northeurope; WHEN two requests from a westeurope VM name it
        report = play("team-definition-used-as-is")
        # THEN nothing PUTs it (its publisher stays the team's), and each version also gets a replica where it is
        assert [r["stage"] for r in report["requests"]] == ["READY", "READY"]
        assert "PUT Microsoft.Compute/galleries/images" not in report["armCalls"]
        [definition] = report["resources"]["imageDefinitions"]
        assert definition["identifier"]["publisher"] == "contoso"
        assert all({r["name"] for r in v["targetRegions"]} == {"westeurope", "northeurope"} for v in report["resources"]["imageVersions"])


class TestPurchasePlans:
    def test_given_a_plan_image_vm_on_the_gallery_path_when_the_request_runs_then_the_definition_carries_its_plan(self):
        report = play("marketplace-plan-image")
        assert only_request(report)["stage"] == "READY"
        [definition] = report["resources"]["imageDefinitions"]
        assert definition["purchasePlan"] == {"name": "pro", "publisher": "thirdparty", "product": "render"}


class TestConflictsFoundBeforeAnyWrite:
    def test_given_a_missing_gallery_when_submitted_then_it_is_rejected_naming_the_gallery(self):
        reason = rejected_before_any_write(play("gallery-does-not-exist"), "image.galleryId")
        assert reason.endswith("galleries/missing does not exist")

    def test_given_a_named_definition_that_does_not_fit_when_submitted_then_each_misfit_is_named(self):
        reason = rejected_before_any_write(play("definition-does-not-fit"), "image.imageDefinition")
        assert "osType is Windows, the image is Linux" in reason and "hyperVGeneration is V1, the image is V2" in reason

    def test_given_a_pool_name_already_used_in_the_account_when_submitted_then_it_is_rejected_naming_the_pool_name(self):
        reason = rejected_before_any_write(play("pool-name-taken"), "pool.poolName")
        assert "render-pool is already used in teambatch (by someone outside this automation)" in reason


class TestAPersonsChangeIsKept:
    def test_given_a_person_resizes_a_growing_pool_when_the_guard_sweeps_then_that_target_is_kept_and_the_request_ends_there(self):
        # GIVEN a 1,200-node request; WHEN a person resizes its pool to 400 between two of the guard's resizes
        report = play("person-resizes-pool")
        # THEN the guard adopts 400 (metadata), never resizes it back, and the request is READY at 400
        [pool] = report["resources"]["pools"]
        assert (pool["currentDedicatedNodes"], pool["targetDedicatedNodes"]) == (400, 400)
        assert only_request(report)["stage"] == "READY" and "400 dedicated" in only_request(report)["reason"]

    def test_given_a_person_lowers_the_target_metadata_when_the_guard_sweeps_then_it_keeps_the_pool_at_that_target(self):
        report = play("person-sets-pool-metadata")
        [pool] = report["resources"]["pools"]
        assert pool["currentDedicatedNodes"] == 300
        assert only_request(report)["stage"] == "READY" and "300 dedicated" in only_request(report)["reason"]


    def test_given_a_person_resizes_then_stops_through_the_batch_api_when_the_guard_sweeps_then_it_adopts_and_alerts_once(self):
        # GIVEN a 1,200-node request; WHEN a person resizes its pool to 400 through the Batch service API (no ARM
        # event), then stops that resize the same way
        report = play("batch-api-resize-and-stop")
        # THEN the guard adopts 400 from its listing, never resizes the pool again, and a stopped resize needs a person:
        # one alert, the request not READY
        [pool] = report["resources"]["pools"]
        assert pool["targetDedicatedNodes"] == 400 and pool["currentDedicatedNodes"] < 400
        assert [d for d in report["guardDecisions"] if d["action"] == "resize" and d["targetDedicatedNodes"] == 400] == []
        assert [a["type"] for a in report["alerts"]] == ["CustomImagePool.PoolCannotReachTarget"]
        assert only_request(report)["stage"] != "READY" and report["functionErrors"] == []


    def test_given_a_read_only_lock_on_a_growing_pool_when_the_guard_would_resize_then_one_alert_names_the_lock(self):
        # GIVEN a 1,200-node request; WHEN a person places a ReadOnly lock on its pool while it grows
        report = play("readonly-lock-on-pool")
        # THEN the guard's PATCH is refused (409 ScopeLocked): the pool stays where it is, and ops hear it once
        [pool] = report["resources"]["pools"]
        assert pool["currentDedicatedNodes"] < 1200
        [alert] = report["alerts"]
        assert alert["type"] == "CustomImagePool.PoolCannotReachTarget" and alert["data"]["errorCode"] == "ScopeLocked"
        assert "ReadOnly lock" in alert["data"]["reason"] and report["functionErrors"] == []


class TestNoResizeAfterTheImageIsGone:
    def test_given_a_snapshot_of_the_lineage_deleted_mid_growth_when_the_guard_looks_then_it_alerts_once_and_never_resizes_after(self):
        # GIVEN a 1,200-node pool growing; WHEN its OS snapshot is unlocked and deleted (the image itself is still there)
        report = play("guard-snapshot-deleted")
        # THEN one critical InUseImageDeleted alert names the snapshot and the pool
        [deleted] = [a for a in report["alerts"] if a["type"] == "CustomImagePool.InUseImageDeleted"]
        assert deleted["subject"].endswith("/snapshots/cip-guard-snapshot-deleted-os")
        # AND no resize is sent after it: each would only fail with AllocationFailed
        alerted_at = datetime.fromisoformat(deleted["data"]["firstSeen"])
        later = [d for d in report["guardDecisions"] if d["action"] == "resize" and datetime.fromisoformat(d["at"]) >= alerted_at]
        assert later == [] and report["functionErrors"] == []


    def test_given_garbled_target_metadata_when_the_guard_sweeps_then_the_ledgers_target_is_restored_with_one_alert(self):
        # GIVEN a 1,200-node request; WHEN a person writes "lots" into its pool's cip-target-dedicated metadata
        report = play("garbled-target-metadata")
        # THEN one alert names the unreadable key, the request's target comes back from the ledger, and the pool gets there
        [alert] = report["alerts"]
        assert alert["data"]["condition"] == "target-unreadable" and "cip-target-dedicated" in alert["data"]["reason"]
        assert "(1200/0)" in alert["data"]["reason"] or "1200" in alert["data"]["reason"]
        [pool] = report["resources"]["pools"]
        assert pool["currentDedicatedNodes"] == 1200 and only_request(report)["stage"] == "READY"


class TestQuotaCountsRequestsInFlight:
    def test_given_ten_requests_at_once_into_an_account_that_fits_four_then_four_are_ready_and_six_rejected_naming_the_quota(self):
        # GIVEN an account whose 1,600-core quota fits four 100-node pools of 4-core VMs; WHEN ten requests arrive together
        report = play("quota-across-requests-in-flight")
        stages = {r["id"]: r for r in report["requests"]}
        ready = sorted(rid for rid, r in stages.items() if r["stage"] == "READY")
        rejected = sorted(rid for rid, r in stages.items() if r["stage"] == "REJECTED")
        # THEN the four accepted first hold their cores while their images are made, and the rest are refused at intake
        assert ready == [f"burst-{i:02d}" for i in range(1, 5)] and len(rejected) == 6
        reason = stages["burst-05"]["reason"]
        assert reason.startswith("pool.targetDedicatedNodes:") and "quota is 1600 with 1600 in use" in reason
        assert "4 request(s) in flight (burst-01, burst-02, burst-03, burst-04)" in reason
        # AND nothing was made for the refused ones, and every pool made is within the quota
        assert len(report["resources"]["pools"]) == 4 and report["functionErrors"] == []


class TestQuotaCountsOtherPools:
    def test_given_other_pools_using_most_of_the_quota_when_a_request_would_exceed_it_then_it_is_rejected_naming_what_is_in_use(self):
        from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario, default_request

        # GIVEN an account with a 10,000-core quota and a pool of 2,000 four-core nodes already in it
        scenario = Scenario.model_validate({
            "world": {
                "batchAccounts": [{"id": DEFAULT_ACCOUNT_ID, "dedicatedCoreQuota": 10_000}],
                "pools": [{"id": f"{DEFAULT_ACCOUNT_ID}/pools/existing", "targetDedicatedNodes": 2000}],
            },
            "steps": [{"submit": default_request()}, {"runUntilIdle": True}],
        })
        # WHEN a 600-node request of the same size arrives (2,400 cores more)
        report = build_report(Rehearsal(scenario).run())
        # THEN it is rejected naming the quota and the cores in use, and nothing is made
        request = only_request(report)
        assert request["stage"] == "REJECTED" and "quota is 10000 with 8000 in use" in request["reason"]
        assert "PUT Microsoft.Compute/snapshots" not in report["armCalls"]


class TestTrustedLaunchLineageIsGuarded:
    def test_given_a_trusted_launch_pool_when_a_snapshot_it_was_published_from_vanishes_then_the_sweep_raises_the_critical_alert(self):

        # GIVEN a READY Trusted Launch pool, published straight from its snapshots
        rehearsal = Rehearsal(load_scenario(EXAMPLES / "trusted-launch-vm.json")).run()
        [snapshot] = [s["id"] for s in build_report(rehearsal)["resources"]["snapshots"] if s["id"].endswith("-lun1")]
        # WHEN one of those snapshots is gone without an event reaching us, and the guard sweeps
        rehearsal.emulator.store.remove(snapshot)
        rehearsal.services.guard().sweep()
        # THEN ops get the critical alert naming the snapshot and the pool
        [alert] = [a for a in rehearsal.emulator.topic.received if a["type"] == "CustomImagePool.InUseImageDeleted"]
        assert alert["subject"] == snapshot and alert["data"]["pools"][0]["id"].endswith("/pools/render-pool")


class TestLowPriorityPreemption:
    def test_given_a_ready_low_priority_pool_when_azure_preempts_nodes_then_the_guard_leaves_batchs_recovery_alone(self):
        # GIVEN a READY pool of 600 low-priority nodes; WHEN Azure preempts 250 of them and gives capacity back 40 minutes later
        report = play("low-priority-nodes-preempted")
        series = next(iter(report["poolSeries"].values()))
        preempted_at = next(s["at"] for s in series if s.get("preemptedLowPriorityNodes") == 250)
        # THEN the preempted nodes stay counted as the pool's current nodes (Batch's spec) until Batch restores them
        during = [s for s in series if s["at"] >= preempted_at]
        assert [(s["currentLowPriorityNodes"], s.get("preemptedLowPriorityNodes", 0)) for s in during] == [(600, 250), (600, 0)]
        # AND the guard kept sweeping meanwhile and saw the pool at target: no resize, no PATCH, no alert
        last = report["guardDecisions"][-1]
        assert last["decision"] == "at target" and last["lastAt"] > preempted_at
        assert [d for d in report["guardDecisions"] if d["action"] == "resize" and d["at"] >= preempted_at] == []
        assert report["alerts"] == [] and only_request(report)["stage"] == "READY"


class TestDefinitionsSayTheirSecurityType:
    def test_given_a_standard_vm_when_its_definition_is_created_then_it_says_security_type_standard(self):
        # GIVEN a builder VM with no Trusted Launch or confidential settings; WHEN its request runs
        report = play("definition-says-its-security-type")
        # THEN its definition says Standard: left out, Compute (API 2025-03-03 on) would make it TrustedLaunchSupported
        assert only_request(report)["stage"] == "READY"
        [definition] = report["resources"]["imageDefinitions"]
        assert definition["features"] == [{"name": "SecurityType", "value": "Standard"}] and definition["hyperVGeneration"] == "V2"


class TestAFailedRequestSentAgain:
    def test_given_a_failed_request_when_sent_again_in_a_new_message_then_it_is_answered_already_failed_and_not_run_again(self):
        # GIVEN a request that ended FAILED (its snapshot refused for good); WHEN the same body comes again in a new message
        report = play("failed-request-sent-again")
        first, again = report["replies"]
        # THEN that message is answered: already FAILED, with the reason, and how to try again
        assert first["body"]["stage"] == again["body"]["stage"] == "FAILED"
        assert again["body"]["reason"] == f"already FAILED: {first['body']['reason']}; send a new requestId"
        # AND nothing is run again: one snapshot PUT in all, one alert, the request as it ended
        assert report["armCalls"]["PUT Microsoft.Compute/snapshots"] == 1 and len(report["alerts"]) == 1
        assert only_request(report) == {"id": "refused-again", "stage": "FAILED", "reason": first["body"]["reason"]}
