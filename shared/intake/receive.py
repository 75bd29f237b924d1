"""Intake of a pool request: parse, validate, authorise, check, record, start.

Permanent problems (bad input, not allowed, prerequisites, node limits) end
the request REJECTED with a reason naming the field and the rule, recorded and
answered, never retried. Transient Azure errors raise, so Service Bus
redelivers the message and finally dead-letters it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..arm.calls import StepFailed, call_arm, get_or_none
from ..arm.ids import IMAGE, SNAPSHOT, ArmId, resource_key, try_parse
from ..arm.pools import PoolView
from ..arm.values import wire_text
from ..dependencies import Dependencies
from ..model.plan import PlannedSnapshot, ResourcePlan, replica_count
from ..model.request import PoolRequest, RequestRejected, parse_request
from ..naming import (
    MAX_DEDICATED_NODES_PER_IMAGE,
    MAX_LOW_PRIORITY_NODES_PER_IMAGE,
    image_name,
    image_version_name,
    snapshot_name,
)
from ..pipeline.stages import PoolPipeline
from ..protection.lineage import LineageReader
from ..store.ledger import OS_TYPE_DETAIL, PLAN_DETAIL, RequestAlreadyExists, RequestNotFound, RequestRecord, Stage
from .authorization import NotAuthorised, authorise
from .prerequisites import unmet_prerequisites

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingMessage:
    """What intake needs of a Service Bus message."""

    body: bytes
    message_id: str | None
    reply_to: str | None = None


@dataclass(frozen=True)
class _SourceFacts:
    location: str
    os_type: str
    snapshots: tuple[PlannedSnapshot, ...]


def receive_request(message: IncomingMessage, deps: Dependencies) -> RequestRecord:
    """Handle one pool request message; returns the request's record as it stands."""
    pipeline = PoolPipeline(deps)
    try:
        request = parse_request(message.body, message.message_id)
    except RequestRejected as rejected:
        return _reject(deps, pipeline, rejected.request_id, {"raw": _printable(message.body)}, message.reply_to, rejected.reason)

    request_id = request.id
    existing = _existing(deps, request_id)
    if existing is not None:
        # A redelivered message: carry on from where the request stands.
        return pipeline.drive(existing)
    try:
        ids = authorise(request, deps.settings.allowed_scopes)
        facts = _source_facts(request, ids, deps)
        _check_node_limits(request, ids, facts, deps)
    except (NotAuthorised, RequestRejected) as exc:
        return _reject(deps, pipeline, request_id, request.to_wire(), message.reply_to, str(exc))
    except StepFailed as exc:
        return _reject(deps, pipeline, request_id, request.to_wire(), message.reply_to, str(exc))

    plan = _plan(request, ids, facts)
    stage = _first_stage(request)
    record = RequestRecord.new(
        request_id=request_id,
        stage=stage,
        body=request.to_wire(),
        reply_to=message.reply_to,
        details={PLAN_DETAIL: plan.to_details(), OS_TYPE_DETAIL: facts.os_type},
        now=deps.now(),
    )
    try:
        record = deps.ledger.create(record)
    except RequestAlreadyExists:
        record = deps.ledger.get(request_id)
    return pipeline.drive(record)


def _existing(deps: Dependencies, request_id: str) -> RequestRecord | None:
    try:
        return deps.ledger.get(request_id)
    except RequestNotFound:
        return None


def _reject(deps: Dependencies, pipeline: PoolPipeline, request_id: str, body: dict, reply_to: str | None, reason: str) -> RequestRecord:
    record = RequestRecord.new(request_id=request_id, stage=Stage.RECEIVED, body=body, reply_to=reply_to, details={}, now=deps.now())
    try:
        record = deps.ledger.create(record)
    except RequestAlreadyExists:
        record = deps.ledger.get(request_id)
    return pipeline.finish(record, Stage.REJECTED, reason)


def _printable(body: bytes) -> str:
    return body[:4096].decode("utf-8", errors="replace")


def _first_stage(request: PoolRequest) -> Stage:
    kind = request.source.kind
    if kind == "virtualMachineId":
        return Stage.RECEIVED
    if kind == "snapshots":
        return Stage.IMAGING
    if kind == "managedImageId":
        return Stage.CREATING_POOL if request.image.legacy_managed_image else Stage.PUBLISHING
    return Stage.CREATING_POOL


def _source_facts(request: PoolRequest, ids: dict[str, ArmId], deps: Dependencies) -> _SourceFacts:
    """Read the source: its location, OS type and disks; check the VM prerequisites."""
    request_id = request.id
    kind = request.source.kind
    if kind == "virtualMachineId":
        vm_id = ids["source.virtualMachineId"]
        compute = deps.clients.compute(vm_id.subscription)
        vm = get_or_none("read source VM", lambda: compute.virtual_machines.get(vm_id.resource_group, vm_id.name))
        if vm is None:
            raise RequestRejected(f"source.virtualMachineId: {vm_id.id} does not exist", request_id)
        unmet = unmet_prerequisites(vm)
        if unmet:
            raise RequestRejected("source.virtualMachineId: prerequisites not met: " + "; ".join(unmet), request_id)
        snapshots = [PlannedSnapshot(vm_id.sibling(SNAPSHOT, snapshot_name(request_id, None)), None, vm.storage_profile.os_disk.managed_disk.id)]
        snapshots += [
            PlannedSnapshot(vm_id.sibling(SNAPSHOT, snapshot_name(request_id, disk.lun)), disk.lun, disk.managed_disk.id)
            for disk in sorted(vm.storage_profile.data_disks or [], key=lambda d: d.lun)
        ]
        return _SourceFacts(vm.location, wire_text(vm.storage_profile.os_disk.os_type), tuple(snapshots))
    if request.source.snapshots is not None:
        os_id = ids["source.snapshots.osDiskSnapshotId"]
        os_snapshot = get_or_none("read source snapshot", lambda: deps.clients.compute(os_id.subscription).snapshots.get(os_id.resource_group, os_id.name))
        if os_snapshot is None:
            raise RequestRejected(f"source.snapshots.osDiskSnapshotId: {os_id.id} does not exist", request_id)
        if not os_snapshot.os_type:
            raise RequestRejected("source.snapshots.osDiskSnapshotId: the snapshot has no osType (not an OS disk)", request_id)
        snapshots = [PlannedSnapshot(os_id, None, None)]
        for index, disk in enumerate(request.source.snapshots.data_disks):
            snapshots.append(PlannedSnapshot(ids[f"source.snapshots.dataDisks[{index}].snapshotId"], disk.lun, None))
        return _SourceFacts(os_snapshot.location, wire_text(os_snapshot.os_type), tuple(snapshots))
    if kind == "managedImageId":
        image_id = ids["source.managedImageId"]
        image = get_or_none("read source image", lambda: deps.clients.compute(image_id.subscription).images.get(image_id.resource_group, image_id.name))
        if image is None:
            raise RequestRejected(f"source.managedImageId: {image_id.id} does not exist", request_id)
        if image.storage_profile.os_disk.os_state != "Generalized":
            raise RequestRejected("source.managedImageId: Batch supports only generalized images", request_id)
        return _SourceFacts(image.location, wire_text(image.storage_profile.os_disk.os_type), ())
    version_id = ids["source.galleryImageVersionId"]
    definition = version_id.parent()
    compute = deps.clients.compute(version_id.subscription)
    version = get_or_none(
        "read source image version",
        lambda: compute.gallery_image_versions.get(version_id.resource_group, definition.parent().name, definition.name, version_id.name),
    )
    if version is None:
        raise RequestRejected(f"source.galleryImageVersionId: {version_id.id} does not exist", request_id)
    image_definition = call_arm(
        "read image definition", lambda: compute.gallery_images.get(version_id.resource_group, definition.parent().name, definition.name)
    )
    if image_definition.os_state != "Generalized":
        raise RequestRejected("source.galleryImageVersionId: Batch supports only generalized gallery images", request_id)
    return _SourceFacts(version.location, wire_text(image_definition.os_type), ())


def _plan(request: PoolRequest, ids: dict[str, ArmId], facts: _SourceFacts) -> ResourcePlan:
    request_id = request.id
    account = ids["pool.batchAccountId"]
    pool = account.child("pools", request.pool.pool_name)
    kind = request.source.kind
    image = definition = version = None
    if kind in ("virtualMachineId", "snapshots"):
        anchor = ids.get("source.virtualMachineId") or ids["source.snapshots.osDiskSnapshotId"]
        image = anchor.sibling(IMAGE, image_name(request_id))
    elif kind == "managedImageId":
        image = ids["source.managedImageId"]
    else:
        version = ids["source.galleryImageVersionId"]
    if kind != "galleryImageVersionId" and not request.image.legacy_managed_image:
        gallery = ids["image.galleryId"]
        definition = gallery.child("images", request.image.image_definition or image_name(request_id))
        version = definition.child("versions", image_version_name(request_id))
    elif version is not None:
        definition = version.parent()
    return ResourcePlan(
        request_id=request_id,
        location=facts.location,
        snapshots=facts.snapshots,
        image=image,
        image_definition=definition,
        image_version=version,
        pool=pool,
        replica_count=replica_count(request.pool.total_target_nodes),
    )


def _check_node_limits(request: PoolRequest, ids: dict[str, ArmId], facts: _SourceFacts, deps: Dependencies) -> None:
    """Managed-image pools: nodes across pools sharing the image lineage stay within Batch's limits."""
    if not request.image.legacy_managed_image:
        return  # gallery images scale with replicas instead (sized in the plan)
    lineage_reader = LineageReader(deps.clients)
    lineage = {s.snapshot.key() for s in facts.snapshots}
    if "source.managedImageId" in ids:
        image_id = ids["source.managedImageId"].id
        lineage |= {resource_key(image_id)} | {resource_key(r) for r in lineage_reader.lineage(image_id)}
    if not lineage:
        return
    account = ids["pool.batchAccountId"]
    batch = deps.clients.batch(account.subscription)
    dedicated, low_priority = request.pool.target_dedicated_nodes, request.pool.target_low_priority_nodes
    sharing: list[str] = []
    for listed in call_arm("list pools", lambda: list(batch.pool.list_by_batch_account(account.resource_group, account.name))):
        pool = PoolView.from_sdk(listed)
        if not pool.image_id:
            continue
        # Only managed images count against these limits; a gallery version is one id, read no further.
        pool_lineage = lineage_reader.lineage(pool.image_id) if try_parse(pool.image_id, IMAGE) else []
        if {resource_key(pool.image_id), *(resource_key(r) for r in pool_lineage)} & lineage:
            dedicated += max(pool.current_dedicated, pool.target_dedicated)
            low_priority += max(pool.current_low_priority, pool.target_low_priority)
            sharing.append(pool.name)
    if dedicated > MAX_DEDICATED_NODES_PER_IMAGE or low_priority > MAX_LOW_PRIORITY_NODES_PER_IMAGE:
        raise RequestRejected(
            f"pool.targetDedicatedNodes/targetLowPriorityNodes: {dedicated} dedicated and {low_priority} low-priority nodes "
            f"across pools sharing this image lineage ({', '.join(sharing) or 'this pool'}) exceed Batch's custom-image limits "
            f"of {MAX_DEDICATED_NODES_PER_IMAGE} dedicated / {MAX_LOW_PRIORITY_NODES_PER_IMAGE} low-priority",
            request.id,
        )
