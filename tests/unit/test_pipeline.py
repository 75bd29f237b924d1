"""The pipeline on the fake Azure: each stage's step, a failure, a transient refusal (fast: no emulator, no HTTP)."""

from __future__ import annotations

import json

import pytest

from shared.gateway.failures import TransientAzureError
from shared.intake.receive import IncomingMessage
from shared.pipeline.reconcile import reconcile_stuck_requests
from shared.store.ledger import RequestRecord, Stage
from tests.unit.world import REPLIES, UnitWorld, request_body


def submitted(world: UnitWorld) -> RequestRecord:
    return world.services.intake().receive(IncomingMessage(json.dumps(request_body()).encode(), "m1", reply_to=REPLIES))


def event(world: UnitWorld, record: RequestRecord) -> RequestRecord:
    """Time passes (every operation under way ends), then an event drives the request again."""
    world.azure.settle()
    return world.services.pipeline().drive(world.ledger.get(record.request_id))


class TestStages:
    def test_given_every_operation_succeeds_when_events_arrive_then_the_request_gets_its_pool_and_protects_its_image(self):
        world = UnitWorld()
        record = submitted(world)
        stages = [record.stage]
        while not record.stage.is_final and len(stages) < 10:
            record = event(world, record)
            stages.append(record.stage)
        # (The fake's pools reach their target as soon as time passes: the request is READY without the guard.)
        assert stages == [Stage.SNAPSHOTTING, Stage.IMAGING, Stage.PUBLISHING, Stage.CREATING_POOL, Stage.READY]
        plan = record.plan
        assert plan is not None and plan.image is not None and plan.image_version is not None
        pool = world.azure.pool(plan.pool)
        assert pool is not None and pool.request_id == "r1" and pool.image_id == plan.image_version.id and pool.target_dedicated == 4
        # The version, its managed image and the three snapshots are locked, their notes naming the pool.
        locked = {key.split("/providers/microsoft.authorization/")[0] for key in world.azure.lock_notes}
        assert locked == {plan.image_version.key(), plan.image.key(), *(s.snapshot.key() for s in plan.snapshots)}
        assert all("render-pool" in notes for notes in world.azure.lock_notes.values())
        # The pool's first look is scheduled for when its nodes may be there; the team hears READY once.
        [look] = world.sender.to("pool-checks")
        assert json.loads(look.body)["poolId"] == plan.pool.id
        [reply] = world.sender.to(REPLIES)
        assert json.loads(reply.body) == {"requestId": "r1", "stage": "READY", "reason": record.reason, "poolId": plan.pool.id}

    def test_given_an_image_that_ends_failed_when_its_event_arrives_then_the_request_fails_alerts_once_and_is_answered(self):
        world = UnitWorld()
        record = event(world, submitted(world))
        assert record.stage is Stage.IMAGING
        world.azure.settle(state="Failed")
        record = world.services.pipeline().drive(world.ledger.get("r1"))
        assert record.stage is Stage.FAILED and record.reason is not None and "ended Failed" in record.reason
        [alert] = world.publisher.published
        assert alert.type == "CustomImagePool.RequestFailed" and alert.data["requestIds"] == ["r1"]
        [reply] = world.sender.to(REPLIES)
        assert json.loads(reply.body)["stage"] == "FAILED" and not world.ledger.get("r1").reply_pending


class TestTransientRefusals:
    def test_given_the_image_put_is_throttled_when_retried_then_the_claim_was_given_back_and_the_image_is_sent_once(self):
        world = UnitWorld()
        record = submitted(world)
        world.azure.fail("create_image", TransientAzureError("create image cip-r1: HTTP 429 TooManyRequests"))
        with pytest.raises(TransientAzureError):  # raised, so the platform redelivers the event
            event(world, record)
        assert world.ledger.get("r1").stage is Stage.IMAGING and not world.ledger.get("r1").progress.claimed("image")
        world.services.pipeline().drive(world.ledger.get("r1"))
        plan = record.plan
        assert plan is not None and plan.image is not None
        assert [target for operation, target, _ in world.azure.writes if operation == "create_image"] == [plan.image.id]


class TestStuckRequests:
    def test_given_two_requests_stuck_with_snapshots_in_progress_when_reconciled_then_each_looks_only_at_its_own(self):
        world = UnitWorld()
        for request_id in ("r1", "r2"):
            body = request_body(request_id, pool_name=f"pool-{request_id}")
            world.services.intake().receive(IncomingMessage(json.dumps(body).encode(), f"m-{request_id}", reply_to=REPLIES))
        world.clock.advance(minutes=31)
        services = world.services
        report = reconcile_stuck_requests(services.ledger, services.pipeline(), services.settings, services.now())
        assert report.advanced == [] and report.not_yet_stuck == 0
        looks = [json.loads(message.body) for message in world.sender.to("pool-checks")]
        assert sorted((look["requestId"], look["resourceId"].rsplit("/", 1)[-1]) for look in looks) == [
            ("r1", "cip-r1-lun0"), ("r1", "cip-r1-lun1"), ("r1", "cip-r1-os"), ("r2", "cip-r2-lun0"), ("r2", "cip-r2-lun1"), ("r2", "cip-r2-os")]


class TestDefinitions:
    def test_given_a_named_definition_that_exists_when_the_request_runs_then_it_is_never_put_and_the_version_goes_into_it(self):
        from shared.arm.views import ImageDefinitionView
        from tests.unit.world import GALLERY_ID

        # GIVEN the team's own definition "render" (another publisher: never ours to rewrite)
        world = UnitWorld()
        definition = GALLERY_ID.child("images", "render")
        world.azure.add(ImageDefinitionView(definition.id, "westeurope", "Succeeded", "Linux", "Generalized", "V2",
                                            {"securitytype": "Standard"}, {}))
        body = request_body()
        body["image"]["imageDefinition"] = "render"
        # WHEN the request runs to its pool
        record = world.services.intake().receive(IncomingMessage(json.dumps(body).encode(), "m1", reply_to=REPLIES))
        assert record.plan is not None and record.plan.definition_exists
        while not record.stage.is_final:
            record = event(world, record)
        # THEN nothing PUT the definition, and the version was published into it
        assert record.stage is Stage.READY
        assert [op for op, _, _ in world.azure.writes if op == "create_image_definition"] == []
        [version] = [target for op, target, _ in world.azure.writes if op == "create_image_version"]
        assert version.startswith(definition.id + "/versions/")

    def test_given_two_requests_creating_one_new_definition_then_both_send_the_same_identifier_and_an_explicit_security_type(self):
        from shared.model.plan import image_definition_body

        bodies = []
        for request_id in ("r1", "r2"):
            world = UnitWorld()
            body = request_body(request_id)
            body["image"]["imageDefinition"] = "render"
            record = world.services.intake().receive(IncomingMessage(json.dumps(body).encode(), request_id, reply_to=REPLIES))
            assert record.plan is not None and record.request is not None and not record.plan.definition_exists
            bodies.append(image_definition_body(record.plan, record.request, "Linux")["properties"])
        assert bodies[0]["identifier"] == bodies[1]["identifier"] == {"publisher": "custom-image-pools", "offer": "render", "sku": "render"}
        assert bodies[0]["features"] == [{"name": "SecurityType", "value": "Standard"}]


class TestReplicas:
    @pytest.mark.parametrize(("nodes", "replicas"), [(1, 1), (300, 1), (301, 2), (3500, 12), (15_000, 50), (40_000, 50)])
    def test_one_replica_per_300_nodes_at_least_one_and_at_most_the_galleries_50_per_region(self, nodes, replicas):
        from shared.model.plan import replica_count

        assert replica_count(nodes) == replicas


class TestCreationResizeTimeout:
    @pytest.mark.parametrize(("requested", "nodes", "minutes"), [(25, 600, 25), (25, 1666, 25), (25, 1700, 26), (25, 2500, 38),
                                                                  (25, 3500, 53), (60, 3500, 60), (5, 1, 5)])
    def test_the_requests_timeout_or_15_minutes_per_1000_nodes_of_the_pool_whichever_is_longer(self, requested, nodes, minutes):
        from datetime import timedelta

        from shared.model.plan import creation_resize_timeout

        assert creation_resize_timeout(timedelta(minutes=requested), nodes) == timedelta(minutes=minutes)


class TestFailedRequestSentAgain:
    def failed(self) -> UnitWorld:
        world = UnitWorld()
        record = event(world, submitted(world))
        world.azure.settle(state="Failed")
        assert world.services.pipeline().drive(world.ledger.get(record.request_id)).stage is Stage.FAILED
        return world

    def test_given_a_failed_request_when_its_team_sends_it_again_then_it_hears_already_failed_once_per_message(self):
        # GIVEN a request that FAILED, its team told once
        world = self.failed()
        reason = world.ledger.get("r1").reason
        # WHEN the team sends the same request again in a new message (delivered twice)
        for _ in range(2):
            again = world.services.intake().receive(IncomingMessage(json.dumps(request_body()).encode(), "m2", reply_to=REPLIES))
            assert again.stage is Stage.FAILED
        # THEN it hears that the request already FAILED, why, and that a new requestId runs it again: one message id for
        # that message (the reply queue drops the duplicate), never the first reply's
        first, *answers = world.sender.to(REPLIES)
        assert json.loads(first.body)["stage"] == "FAILED"
        assert {a.message_id for a in answers} == {answers[0].message_id} and answers[0].message_id != first.message_id
        assert json.loads(answers[0].body)["reason"] == f"already FAILED: {reason}; send a new requestId"
        # AND nothing ran again
        assert world.ledger.get("r1").reason == reason

    def test_given_a_failed_request_when_its_first_message_is_delivered_again_then_no_second_answer(self):
        world = self.failed()
        world.services.intake().receive(IncomingMessage(json.dumps(request_body()).encode(), "m1", reply_to=REPLIES))
        assert [json.loads(m.body)["stage"] for m in world.sender.to(REPLIES)] == ["FAILED"]


class TestSecurityTypes:
    @pytest.mark.parametrize(("value", "kept"), [
        (None, None), ("Standard", None), ("TrustedLaunch", "TrustedLaunch"), ("ConfidentialVM", "ConfidentialVM"),
        ("ConfidentialVM_VMGuestStateOnlyEncryptedWithPlatformKey", "ConfidentialVM"), ("TrustedLaunchSupported", None),
        ("ConfidentialVMSupported", None), ("TrustedLaunchAndConfidentialVmSupported", None),
    ])
    def test_a_supported_type_asks_nothing_of_the_pool_and_a_required_one_is_kept(self, value, kept):
        from shared.model.plan import security_type_of

        assert security_type_of(value) == kept
