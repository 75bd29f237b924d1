"""Duplicates, concurrency, transient and permanent failures, and events the pipeline does not care about."""

from __future__ import annotations

import json
import threading

from emulator.router import is_read
from emulator.store import ArmResource
from rehearsal.host import event_grid_event, service_bus_message
from rehearsal.report import build_report
from rehearsal.runner import Rehearsal
from rehearsal.scenario import DEFAULT_RG, Scenario, default_request
from shared import bootstrap
from tests.support import load_fixture


def rehearsal_of(steps: list[dict], **world) -> Rehearsal:
    return Rehearsal(Scenario.model_validate({"world": world, "steps": steps}))


def arm_writes(rehearsal: Rehearsal) -> int:
    return sum(n for op, n in rehearsal.emulator.calls.items() if not is_read(op))


class TestTransientAndPermanentFailures:
    def test_throttling_beyond_the_sdk_retries_sends_the_message_back_for_later_and_then_succeeds(self):
        # GIVEN snapshot PUTs answered 503 for the first 8 calls (more than the SDK's retries)
        rehearsal = rehearsal_of(
            [{"submit": default_request()}, {"runUntilIdle": True}],
            faults=[{"operation": "PUT Microsoft.Compute/snapshots", "kind": "unavailable", "limit": 8, "retryAfterSeconds": 1}],
        ).run()
        report = build_report(rehearsal)
        # THEN intake sent the message back for a later attempt (not burning the delivery count), and it completed, once
        requests_queue = rehearsal.emulator.servicebus.queue("pool-requests")
        assert any(m.message_id.endswith("-retry1") and m.message.application_properties["cip-attempt"] == 1 for m in requests_queue.sent)
        assert report["functionErrors"] == []
        assert [r["stage"] for r in report["requests"]] == ["READY"]
        assert len(report["resources"]["snapshots"]) == 3 and len(report["resources"]["pools"]) == 1
        assert rehearsal.emulator.servicebus.queue("pool-requests").dead_letters == []

    def test_an_image_whose_creation_ends_failed_fails_the_request_with_the_reason_and_a_reply(self):
        rehearsal = rehearsal_of(
            [{"submit": default_request(), "replyTo": "replies"}, {"runUntilIdle": True}],
            faults=[{"operation": "PUT Microsoft.Compute/images", "kind": "lro_failed"}],
        ).run()
        report = build_report(rehearsal)
        [request] = report["requests"]
        assert request["stage"] == "FAILED" and "ended Failed" in request["reason"] and "images/cip-team-a-render-001" in request["reason"]
        assert report["resources"]["imageVersions"] == [] and report["resources"]["pools"] == []
        assert [r["body"]["stage"] for r in report["replies"]] == ["FAILED"]

    def test_a_pool_name_taken_before_submission_is_rejected_at_intake_naming_the_field_and_nothing_is_made(self):
        # GIVEN a pool named "taken" that someone else made in the account
        rehearsal = rehearsal_of([{"submit": default_request(poolName="taken")}, {"runUntilIdle": True}])
        put_foreign_pool(rehearsal, "taken")
        # WHEN a request asks for that pool name
        report = build_report(rehearsal.run())
        # THEN it is rejected before any write, naming the field, and nobody's pool is named in an alert
        [request] = report["requests"]
        assert request["stage"] == "REJECTED" and request["reason"].startswith("pool.poolName: taken is already used in teambatch")
        assert arm_writes(rehearsal) == 0 and report["alerts"] == []

    def test_a_pool_name_taken_after_intake_fails_the_request_and_the_alert_names_the_request_not_that_pool(self):
        # GIVEN a request whose snapshots are under way
        rehearsal = rehearsal_of([{"submit": default_request(poolName="taken")}, {"advance": "PT1M"}])
        rehearsal.run()
        # WHEN someone else creates a pool of that name before the pipeline reaches it
        put_foreign_pool(rehearsal, "taken")
        bootstrap.install(rehearsal.services)
        try:
            rehearsal.run_until_idle()
        finally:
            bootstrap.install(None)
        report = build_report(rehearsal)
        # THEN the request fails, and its alert's subject is the request, never the other team's healthy pool
        [request] = report["requests"]
        assert request["stage"] == "FAILED" and "was not created for this request" in request["reason"]
        [alert] = [a for a in report["alerts"] if a["type"] == "CustomImagePool.RequestFailed"]
        assert alert["subject"] == "requests/team-a-render-001"


def put_foreign_pool(rehearsal: Rehearsal, name: str) -> None:
    account = rehearsal.scenario.world.batch_accounts[0].id
    rehearsal.emulator.store.put(
        ArmResource(
            f"{account}/pools/{name}", "Microsoft.Batch/batchAccounts/pools", None,
            {"provisioningState": "Succeeded", "allocationState": "Steady", "vmSize": "Standard_D4ds_v5",
             "deploymentConfiguration": {"virtualMachineConfiguration": {"imageReference": {"id": "/x"}, "nodeAgentSkuId": "n"}},
             "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 0}}, "metadata": []}, etag='W/"1"'))


class TestDuplicatesAndConcurrency:
    def test_the_same_message_delivered_twice_starts_the_work_once(self):
        body = json.dumps(default_request())
        rehearsal = rehearsal_of([{"submit": body, "messageId": "m-1"}, {"submit": body, "messageId": "m-2"}, {"runUntilIdle": True}]).run()
        report = build_report(rehearsal)
        assert [r["stage"] for r in report["requests"]] == ["READY"]
        assert report["armCalls"]["PUT Microsoft.Compute/snapshots"] == 3
        assert report["armCalls"]["PUT Microsoft.Batch/batchAccounts/pools"] == 1

    def test_concurrent_deliveries_of_the_same_event_advance_the_request_once(self):
        # GIVEN a request whose snapshots have just completed, their events not yet delivered
        rehearsal = rehearsal_of([{"submit": default_request()}])
        rehearsal.run()
        rehearsal.emulator.clock.advance(120)
        # (the image definition, made alongside the snapshots, has its own event: not part of this race)
        events = [e for e in rehearsal.emulator.events.take_due() if "/snapshots/" in e.body["subject"]]
        assert len(events) == 3
        bootstrap.install(rehearsal.services)
        try:
            # WHEN four threads deliver every snapshot event at once
            errors: list[Exception] = []
            barrier = threading.Barrier(4)

            def deliver():
                barrier.wait()
                for event in events:
                    try:
                        rehearsal.host.call("resource_events", event_grid_event(event.body))
                    except Exception as exc:  # noqa: BLE001 - collected and asserted below
                        errors.append(exc)

            threads = [threading.Thread(target=deliver) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            bootstrap.install(None)
        # THEN the image was requested once and the request is IMAGING, without errors
        assert errors == []
        assert rehearsal.emulator.calls["PUT Microsoft.Compute/images"] == 1
        assert rehearsal.ledger.get("team-a-render-001").stage.value == "IMAGING"


class TestEventsThePipelineDoesNotCareAbout:
    def test_validation_events_other_resources_and_foreign_snapshots_are_ignored_without_arm_calls(self):
        rehearsal = rehearsal_of([])
        rehearsal.run()
        write_sample = load_fixture("eventgrid/eventgrid-resource-write-success.egschema.json")
        foreign_snapshot = json.loads(json.dumps(write_sample))
        foreign_id = f"{DEFAULT_RG}/providers/Microsoft.Compute/snapshots/nightly-backup"
        foreign_snapshot["subject"] = foreign_snapshot["data"]["resourceUri"] = foreign_id
        foreign_snapshot["data"]["operationName"] = "Microsoft.Compute/snapshots/write"
        unknown_request = json.loads(json.dumps(foreign_snapshot))
        unknown_request["subject"] = unknown_request["data"]["resourceUri"] = f"{DEFAULT_RG}/providers/Microsoft.Compute/snapshots/cip-nobody-os"
        odd_data = dict(write_sample, data="not an object")
        events = [
            load_fixture("eventgrid/eventgrid-subscription-validation-event.egschema.json")[0],
            write_sample,
            load_fixture("eventgrid/eventgrid-resource-delete-success.egschema.json"),
            foreign_snapshot,
            unknown_request,
            odd_data,
        ]
        bootstrap.install(rehearsal.services)
        try:
            for body in events:
                rehearsal.host.call("resource_events", event_grid_event(body))
        finally:
            bootstrap.install(None)
        assert sum(rehearsal.emulator.calls.values()) == 0
        assert rehearsal.host.errors == []

    def test_a_raw_service_bus_message_object_reaches_intake_as_the_host_would_deliver_it(self):
        rehearsal = rehearsal_of([])
        rehearsal.run()
        message = service_bus_message(body=b"[]", message_id="raw-1", reply_to="replies", delivery_count=1)
        bootstrap.install(rehearsal.services)
        try:
            rehearsal.host.call("pool_requests", message)
        finally:
            bootstrap.install(None)
        record = rehearsal.ledger.get("raw-1")
        assert record.stage.value == "REJECTED" and record.reason == "body: must be a JSON object"
