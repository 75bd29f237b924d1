"""The pool pipeline: snapshots -> managed image -> gallery image version -> Batch pool.

Each request moves through named stages recorded in the ledger. An event (or a
re-check) is only a hint: :meth:`PoolPipeline.drive` re-reads the request's
resources, takes the next step and records the stage with a conditional write,
so duplicated, reordered or concurrent deliveries advance a request once.
Resources carry deterministic names, so a repeated step finds the first one's
work instead of doing it again.
"""

from __future__ import annotations

import json
import logging

from .arm_calls import StepFailed, Waiting, call_arm, get_or_none
from .arm_ids import ArmId
from .dependencies import Dependencies
from .ledger import FinalStageError, RequestRecord, Stage, StaleRecord
from .messaging import OutgoingMessage
from .resource_plan import (
    METADATA_REQUEST,
    METADATA_TARGET_DEDICATED,
    METADATA_TARGET_LOW_PRIORITY,
    PlannedSnapshot,
    ResourcePlan,
    request_tags,
)

log = logging.getLogger(__name__)

FINAL_STAGES = (Stage.READY, Stage.FAILED, Stage.REJECTED)
_MAX_STAGE_RACES = 5


class PoolPipeline:
    """Moves requests through their stages. Plain code: dependencies come in, nothing global."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    # -- the stage machine ------------------------------------------------

    def drive(self, record: RequestRecord) -> RequestRecord:
        """Take every step that is possible now; return the record as it stands after them."""
        for _ in range(_MAX_STAGE_RACES * 8):
            if record.stage in FINAL_STAGES:
                return record
            plan = ResourcePlan.from_details(record.request_id, record.details["plan"])
            try:
                next_stage = self._step(record, plan)
            except StepFailed as exc:
                return self.finish(record, Stage.FAILED, str(exc))
            if next_stage is None or isinstance(next_stage, Waiting):
                return record
            advanced = self._advance(record, next_stage)
            if advanced is None:
                record = self._deps.ledger.get(record.request_id)
            else:
                record = advanced
                if record.stage in FINAL_STAGES:
                    self._reply(record)
        return record

    def _step(self, record: RequestRecord, plan: ResourcePlan) -> Stage | Waiting | None:
        stage = record.stage
        if stage in (Stage.RECEIVED, Stage.SNAPSHOTTING):
            return self._snapshots_done(record, plan)
        if stage is Stage.IMAGING:
            return self._image_done(record, plan)
        if stage is Stage.PUBLISHING:
            return self._version_done(record, plan)
        if stage is Stage.CREATING_POOL:
            return self._pool_done(record, plan)
        return None

    def _advance(self, record: RequestRecord, stage: Stage, reason: str | None = None) -> RequestRecord | None:
        """Conditional write; None when another delivery moved the request first."""
        try:
            return self._deps.ledger.advance(record, stage, reason=reason, now=self._deps.now())
        except (StaleRecord, FinalStageError):
            return None

    def finish(self, record: RequestRecord, stage: Stage, reason: str) -> RequestRecord:
        """Move a request to a final stage once (whoever wins the write replies).

        FAILED alerts ops first: once the stage is written a redelivery finds the
        request final and would not alert again, so a publish that fails raises
        before the write (the alert log keeps duplicates out).
        """
        if stage is Stage.FAILED and record.stage not in FINAL_STAGES:
            from .image_alerts import on_request_failed

            on_request_failed(self._deps, record, reason)
        for _ in range(_MAX_STAGE_RACES):
            if record.stage in FINAL_STAGES:
                return record
            advanced = self._advance(record, stage, reason)
            if advanced is not None:
                log.warning("request %s %s: %s", record.request_id, stage.value, reason)
                self._reply(advanced)
                return advanced
            record = self._deps.ledger.get(record.request_id)
        return record

    # -- steps ----------------------------------------------------------------

    def _snapshots_done(self, record: RequestRecord, plan: ResourcePlan) -> Stage | Waiting:
        waiting = None
        for planned in plan.snapshots:
            snapshot = self._get_snapshot(planned.snapshot)
            if snapshot is None:
                if planned.source_disk_id is None:
                    raise StepFailed(f"snapshot {planned.snapshot.id} no longer exists")
                waiting = self._put_snapshot(plan, planned) or waiting or Waiting("snapshot")
            elif snapshot.provisioning_state == "Failed":
                raise StepFailed(f"snapshot {planned.snapshot.id} ended Failed")
            elif snapshot.provisioning_state != "Succeeded":
                waiting = waiting or Waiting(f"snapshot {planned.snapshot.name}")
        if waiting is not None:
            if record.stage is Stage.RECEIVED:
                return Stage.SNAPSHOTTING
            return waiting
        return Stage.IMAGING

    def _image_done(self, record: RequestRecord, plan: ResourcePlan) -> Stage | Waiting:
        assert plan.image is not None
        image = get_or_none("read image", lambda: self._compute(plan.image).images.get(plan.image.resource_group, plan.image.name))
        if image is None:
            if not plan.snapshots:
                raise StepFailed(f"managed image {plan.image.id} no longer exists")
            return self._put_image(record, plan)
        if image.provisioning_state == "Failed":
            raise StepFailed(f"managed image {plan.image.id} ended Failed")
        if image.provisioning_state != "Succeeded":
            return Waiting("image")
        return Stage.PUBLISHING if plan.image_version is not None else Stage.CREATING_POOL

    def _version_done(self, record: RequestRecord, plan: ResourcePlan) -> Stage | Waiting:
        assert plan.image_definition is not None and plan.image_version is not None
        definition_id, version_id = plan.image_definition, plan.image_version
        compute = self._compute(version_id)
        gallery = definition_id.parent()
        definition = get_or_none(
            "read gallery image definition",
            lambda: compute.gallery_images.get(definition_id.resource_group, gallery.name, definition_id.name),
        )
        if definition is None:
            return self._put_image_definition(record, plan)
        if definition.provisioning_state == "Failed":
            raise StepFailed(f"gallery image definition {definition_id.id} ended Failed")
        if definition.provisioning_state != "Succeeded":
            return Waiting("image definition")
        version = get_or_none(
            "read gallery image version",
            lambda: compute.gallery_image_versions.get(version_id.resource_group, gallery.name, definition_id.name, version_id.name),
        )
        if version is None:
            return self._put_image_version(record, plan)
        if version.provisioning_state == "Failed":
            raise StepFailed(f"gallery image version {version_id.id} ended Failed")
        if version.provisioning_state != "Succeeded":
            return Waiting("image version")
        return Stage.CREATING_POOL

    def _pool_done(self, record: RequestRecord, plan: ResourcePlan) -> Stage | Waiting:
        pool_id = plan.pool
        account = pool_id.parent()
        batch = self._deps.clients.batch(pool_id.subscription)
        pool = get_or_none("read pool", lambda: batch.pool.get(pool_id.resource_group, account.name, pool_id.name))
        if pool is None:
            return self._create_pool(record, plan)
        owner = {m.name: m.value for m in pool.metadata or []}.get(METADATA_REQUEST)
        if owner != record.request_id:
            raise StepFailed(f"pool {pool_id.id} already exists and was not created for this request")
        if pool.provisioning_state != "Succeeded":
            return Waiting("pool")
        self._protect_image(plan)
        settings = record.body["pool"]
        at_target = (pool.current_dedicated_nodes or 0) >= settings.get("targetDedicatedNodes", 0) and (
            pool.current_low_priority_nodes or 0) >= settings.get("targetLowPriorityNodes", 0)
        # The pool guard finishes a pool still growing (large pools need several resizes).
        return Stage.READY if at_target else Stage.SCALING

    def _protect_image(self, plan: ResourcePlan) -> None:
        """Lock the pool's image and everything it was made from, before the request leaves CREATING_POOL."""
        from .protection import ImageUse, protect

        lineage = [plan.image.id] if plan.image_version is not None and plan.image is not None else []
        lineage += [s.snapshot.id for s in plan.snapshots]
        protect(self._deps, ImageUse(plan.pool.id, plan.pool_image_id, tuple(lineage), plan.request_id))

    # -- writes -----------------------------------------------------------------

    def _compute(self, arm_id: ArmId):
        return self._deps.clients.compute(arm_id.subscription)

    def _get_snapshot(self, snapshot_id: ArmId):
        return get_or_none(
            "read snapshot",
            lambda: self._compute(snapshot_id).snapshots.get(snapshot_id.resource_group, snapshot_id.name),
        )

    def _put_snapshot(self, plan: ResourcePlan, planned: PlannedSnapshot) -> Waiting | None:
        body = {
            "location": plan.location,
            "tags": request_tags(plan.request_id, "os-snapshot" if planned.lun is None else f"data-snapshot-lun{planned.lun}"),
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": planned.source_disk_id}, "incremental": False},
        }
        target = planned.snapshot
        outcome = call_arm(
            f"create snapshot {target.name}",
            lambda: self._compute(target).snapshots.begin_create_or_update(target.resource_group, target.name, body, polling=False),
        )
        return outcome if isinstance(outcome, Waiting) else None

    def _put_image(self, record: RequestRecord, plan: ResourcePlan) -> Waiting:
        request = record.body
        image = plan.image
        os_snapshot = next(s for s in plan.snapshots if s.lun is None)
        body = {
            "location": plan.location,
            "tags": request_tags(plan.request_id, "managed-image"),
            "properties": {
                "hyperVGeneration": request.get("image", {}).get("hyperVGeneration", "V2"),
                "storageProfile": {
                    "osDisk": {
                        "osType": record.details["osType"],
                        "osState": "Generalized",
                        "snapshot": {"id": os_snapshot.snapshot.id},
                    },
                    "dataDisks": [
                        {"lun": s.lun, "snapshot": {"id": s.snapshot.id}} for s in sorted(
                            (s for s in plan.snapshots if s.lun is not None), key=lambda s: s.lun
                        )
                    ],
                },
            },
        }
        call_arm(f"create image {image.name}", lambda: self._compute(image).images.begin_create_or_update(image.resource_group, image.name, body, polling=False))
        return Waiting("image")

    def _put_image_definition(self, record: RequestRecord, plan: ResourcePlan) -> Waiting:
        definition = plan.image_definition
        gallery = definition.parent()
        body = {
            "location": plan.location,
            "tags": request_tags(plan.request_id, "image-definition"),
            "properties": {
                "osType": record.details["osType"],
                "osState": "Generalized",
                "hyperVGeneration": record.body.get("image", {}).get("hyperVGeneration", "V2"),
                "identifier": {"publisher": "custom-image-pools", "offer": definition.name, "sku": plan.request_id},
                "description": f"Custom image for Batch pool {plan.pool.name}",
            },
        }
        call_arm(
            f"create gallery image definition {definition.name}",
            lambda: self._compute(definition).gallery_images.begin_create_or_update(
                definition.resource_group, gallery.name, definition.name, body, polling=False
            ),
        )
        return Waiting("image definition")

    def _put_image_version(self, record: RequestRecord, plan: ResourcePlan) -> Waiting:
        version, definition = plan.image_version, plan.image_definition
        body = {
            "location": plan.location,
            "tags": request_tags(plan.request_id, "image-version"),
            "properties": {
                "publishingProfile": {
                    "targetRegions": [{"name": plan.location, "regionalReplicaCount": plan.replica_count}],
                    "replicaCount": plan.replica_count,
                },
                "storageProfile": {"source": {"id": plan.image.id}},
            },
        }
        call_arm(
            f"create gallery image version {version.name}",
            lambda: self._compute(version).gallery_image_versions.begin_create_or_update(
                version.resource_group, definition.parent().name, definition.name, version.name, body, polling=False
            ),
        )
        return Waiting("image version")

    def _create_pool(self, record: RequestRecord, plan: ResourcePlan) -> Waiting:
        pool_id = plan.pool
        settings = record.body["pool"]
        metadata = {
            **settings.get("metadata", {}),
            METADATA_REQUEST: plan.request_id,
            METADATA_TARGET_DEDICATED: str(settings.get("targetDedicatedNodes", 0)),
            METADATA_TARGET_LOW_PRIORITY: str(settings.get("targetLowPriorityNodes", 0)),
        }
        body = {
            "properties": {
                "vmSize": settings["vmSize"],
                "deploymentConfiguration": {
                    "virtualMachineConfiguration": {
                        "imageReference": {"id": plan.pool_image_id},
                        "nodeAgentSkuId": settings["nodeAgentSkuId"],
                    }
                },
                "scaleSettings": {
                    "fixedScale": {
                        "targetDedicatedNodes": settings.get("targetDedicatedNodes", 0),
                        "targetLowPriorityNodes": settings.get("targetLowPriorityNodes", 0),
                        "resizeTimeout": settings.get("resizeTimeout", "PT25M"),
                    }
                },
                "metadata": [{"name": name, "value": value} for name, value in sorted(metadata.items())],
            }
        }
        from azure.core import MatchConditions

        batch = self._deps.clients.batch(pool_id.subscription)
        outcome = call_arm(
            f"create pool {pool_id.name}",
            lambda: batch.pool.create(
                pool_id.resource_group, pool_id.parent().name, pool_id.name, body, match_condition=MatchConditions.IfMissing
            ),
        )
        if not isinstance(outcome, Waiting):
            import isodate

            from .pool_guard import schedule_check_after_resize

            # The creation is the pool's first resize: look again when it times out, not a timer period later.
            schedule_check_after_resize(self._deps, pool_id.id, isodate.parse_duration(settings.get("resizeTimeout", "PT25M")))
        return Waiting("pool")

    # -- replies -------------------------------------------------------------------

    def _reply(self, record: RequestRecord) -> None:
        if not record.reply_to:
            return
        body = {
            "requestId": record.request_id,
            "stage": record.stage.value,
            "reason": record.reason,
            "poolId": record.details.get("plan", {}).get("poolId"),
        }
        self._deps.sender.send(
            record.reply_to,
            OutgoingMessage(json.dumps(body), message_id=f"{record.request_id}-{record.stage.value.lower()}", correlation_id=record.request_id, subject="PoolRequestOutcome"),
        )
