"""Intake of a pool request: parse, validate, authorise, check, record, start.

Permanent problems (bad input, not allowed, prerequisites, conflicts, limits)
end the request REJECTED with a reason naming the field and the rule, recorded
and answered, never retried; every check runs before the first write, so a
rejected request leaves nothing behind in Azure. Transient Azure errors raise,
so Service Bus redelivers the message and finally dead-letters it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from ..arm.ids import DISK, IMAGE, ArmId, resource_key, try_parse
from ..arm.values import region_key
from ..arm.views import VmSkuView
from ..errors import TransientError
from ..gateway.failures import StepFailed
from ..gateway.protocol import AzureGateway, BatchGateway, ComputeGateway
from ..messaging import MAX_REQUEST_ATTEMPTS, MessageSender, Redelivery, retry_later
from ..model.plan import ResourcePlan, definition_misfits, replica_count
from ..model.request import ImageRequest, PoolRequest, RefreshRequest, Request, RequestRejected, conflict_request_id, parse_request
from ..naming import (
    LEGACY_POOLS_RETIRED,
    MAX_DEDICATED_NODES_PER_IMAGE,
    MAX_LOW_PRIORITY_NODES_PER_IMAGE,
    MAX_REGIONAL_REPLICAS,
    MAX_VERSION_REPLICAS,
    image_name,
    image_version_name,
)
from ..pipeline.stages import PoolPipeline
from ..protection.lineage import LineageReader
from ..refresh.admission import RefreshTarget, admit
from ..refresh.fit import NewImage
from ..settings import Settings
from ..store import progress
from ..store.ledger import (
    Ledger,
    RecordTooLarge,
    RequestAlreadyExists,
    RequestNotFound,
    RequestRecord,
    Stage,
)
from ..store.records import RecordStore
from .authorization import NotAuthorised, RequestIds, authorise
from .sizes import check_size_runs_image
from .sources import SourceFacts, read_source
from .target import AccountFacts, check_core_quotas, check_pool_name_free, read_account, read_vm_sizes, reserve_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingMessage:
    """What intake needs of a Service Bus message."""

    body: bytes
    message_id: str | None
    reply_to: str | None = None
    # When Service Bus accepted the message: names the gallery version, the same on every redelivery.
    enqueued_at: datetime | None = None
    # A message sent again later by this automation (the ledger or Azure was down): how many times, the first one's id
    # (the request id's fallback) and when it was first enqueued (the version's name).
    attempt: int = 0
    original_message_id: str | None = None
    original_enqueued_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Intake:
    """Receives pool request messages. Plain code: what it uses comes in, nothing global; one per invocation (its
    pipeline is)."""

    # Reads the source, the Batch account and what the request could collide with; nothing is written here.
    gateway: AzureGateway
    # Records the request (a conditional insert), or its rejection.
    ledger: Ledger
    # Where a refresh claims its pool (a conditional insert), so two refreshes of one pool cannot both be accepted.
    records: RecordStore
    # Starts an accepted request; answers a rejected one.
    pipeline: PoolPipeline
    # Sends a message back to its queue for later when Azure or the ledger is down.
    sender: MessageSender
    settings: Settings
    now: Callable[[], datetime]

    def receive_with_retry(self, message: IncomingMessage) -> RequestRecord | None:
        """:meth:`receive`, with transient failures (the ledger or Azure down) retried later, not at once.

        Service Bus would redeliver at once and dead-letter after a few deliveries: an outage of a few
        minutes would lose every request that arrives. Instead the message goes back to its queue,
        scheduled with a growing delay; after :data:`~shared.messaging.MAX_REQUEST_ATTEMPTS` the failure
        propagates and the platform's redelivery, then dead-lettering, take over (the reason is logged).
        """
        try:
            return self.receive(message)
        except TransientError as exc:
            redelivery = Redelivery(message.attempt, message.original_message_id, message.original_enqueued_at)
            if redelivery.attempt >= MAX_REQUEST_ATTEMPTS:
                log.error("request message %s failed %d times (%s); leaving it to the platform's retries and dead-lettering",
                          message.message_id, redelivery.attempt + 1, exc)
                raise
            when = retry_later(self.sender, self.settings.pool_requests_queue, message.body, message.message_id, message.reply_to,
                               message.enqueued_at, redelivery, self.now(), key=self.settings.message_signing_key)
            log.warning("request message %s: %s; trying again at %s", message.message_id, exc, when.isoformat(), exc_info=exc)
            return None

    def receive(self, message: IncomingMessage) -> RequestRecord:
        """Handle one pool request message; returns the request's record as it stands.

        A message never changes another request's record: a body that is malformed,
        or different from the one already recorded under its ``requestId``, is
        recorded under an id of its own and answered as a conflict.
        """
        reply_to = self._reply_queue(message)
        try:
            request = parse_request(message.body, message.original_message_id or message.message_id)
        except RequestRejected as rejected:
            return self._reject(message, reply_to, rejected.request_id, {"raw": _printable(message.body)}, rejected.reason)

        request_id = request.id
        existing = self._existing(request_id)
        if existing is not None:
            if existing.body == request.to_wire():
                sent_again = message.original_message_id or message.message_id
                if existing.stage is Stage.FAILED and sent_again and existing.progress.message_id not in (None, sent_again):
                    # The team sent a FAILED request again (a new message, not a redelivery): it will not run again
                    # under that id, and the team hears so.
                    return self.pipeline.answer_failed_again(existing, reply_to, sent_again)
                # The same request delivered again: carry on from where it stands (a final one gets its reply, once).
                return self.pipeline.drive(existing)
            return self._reject_conflict(message, reply_to, request_id)
        compute, batch = self.gateway.compute, self.gateway.batch
        refresh: RefreshTarget | None = None
        try:
            ids = authorise(request, self.settings.allowed_scopes)
            _check_legacy_allowed(request, self.settings)
            source = read_source(request, ids, compute)
            _check_source_disks(request, source, self.settings.allowed_scopes)
            account = read_account(request, ids.batch_account, batch)
            sizes = None
            definition: ExistingDefinition | None = None
            if isinstance(request, RefreshRequest):
                refresh = self._admit_refresh(request, ids, source, account)
                if refresh.definition_exists:
                    # The pool's own definition, fitted to the image by the one definition rule (admission's fit).
                    definition = ExistingDefinition(refresh.definition.id, refresh.definition_location or "")
            else:
                sizes = _check_target(request, ids, source, account, batch, compute)
                if ids.gallery is not None and not request.image.legacy_managed_image:
                    definition = _check_gallery(request, ids.gallery, source, compute)
            plan = _plan(request, ids, source, account, message.original_enqueued_at or message.enqueued_at or self.now(), refresh,
                         definition)
            if sizes is not None and isinstance(request, PoolRequest):
                # Last, once everything else passed: the cores are held for this request until its pool is listed.
                reserve_cores(self.ledger.records(), self._stage_of, request, account, sizes, self.now())
        except (NotAuthorised, RequestRejected, StepFailed) as exc:
            return self._reject(message, reply_to, request_id, request.to_wire(), str(exc))

        record = RequestRecord.new(
            request_id=request_id,
            stage=_first_stage(request, plan, source, account),
            body=request.to_wire(),
            reply_to=reply_to,
            details={**progress.new_request(plan.to_details(), source.os_type, _unanswered_reply_to(message, reply_to),
                                            message.original_message_id or message.message_id),
                     **(refresh.details if refresh is not None else {})},
            now=self.now(),
        )
        try:
            record = self.ledger.create(record)
        except RequestAlreadyExists:
            # Another delivery recorded it first: the same request drives on, a different one is a conflict.
            winner = self.ledger.get(request_id)
            if winner.body != record.body:
                return self._reject_conflict(message, reply_to, request_id)
            record = winner
        return self.pipeline.drive(record)

    def _stage_of(self, request_id: str) -> Stage | None:
        existing = self._existing(request_id)
        return existing.stage if existing is not None else None

    def _admit_refresh(self, request: RefreshRequest, ids: RequestIds, source: SourceFacts, account: AccountFacts) -> RefreshTarget:
        """A refresh's own checks: its pool, the fit of the new image, and the pool's claim (:mod:`shared.refresh.admission`)."""
        assert ids.pool is not None, "a refresh names its pool"
        image = NewImage(source.os_type, source.security_type, "V2" if source.security_type else request.image.hyper_v_generation)
        return admit(request, ids.pool, image, gallery=ids.gallery, version_source=ids.gallery_image_version, region=account.region,
                     gateway=self.gateway, ledger=self.ledger, records=self.records, settings=self.settings, now=self.now())

    def _existing(self, request_id: str) -> RequestRecord | None:
        try:
            return self.ledger.get(request_id)
        except RequestNotFound:
            return None

    def _reply_queue(self, message: IncomingMessage) -> str | None:
        """The message's ReplyTo when it is one of the teams' reply queues; any other queue is never sent to."""
        if message.reply_to is not None and not self.settings.may_reply_to(message.reply_to):
            log.warning("ReplyTo %.100r of message %s is not a reply queue of this deployment: no reply is sent", message.reply_to,
                        message.message_id)
            return None
        return message.reply_to

    def _reject(self, message: IncomingMessage, reply_to: str | None, request_id: str, body: dict, reason: str) -> RequestRecord:
        """Record a rejection with one conditional insert of a final record, and answer it.

        When ``request_id`` is taken, the taken record is never touched: the same rejected message
        delivered again is answered once; any other message is a conflict, recorded apart.
        """
        existing = self._existing(request_id)
        if existing is not None:
            if existing.stage is Stage.REJECTED and existing.body == body:
                return self.pipeline.reply(existing)
            return self._reject_conflict(message, reply_to, request_id)
        record = RequestRecord.new(request_id=request_id, stage=Stage.REJECTED, body=body, reply_to=reply_to,
                                   details=progress.refused_reply(_unanswered_reply_to(message, reply_to)), now=self.now(), reason=reason)
        try:
            record = self.ledger.create(record)
        except RecordTooLarge:
            # Only a body we can store is kept; the reason (bounded) is what the sender needs.
            record = self.ledger.create(replace(record, body={"raw": _printable(message.body, 1024)}))
        except RequestAlreadyExists:
            return self._reject(message, reply_to, request_id, body, reason)
        log.warning("request %s REJECTED: %s", request_id, record.reason)
        return self.pipeline.reply(record)

    def _reject_conflict(self, message: IncomingMessage, reply_to: str | None, taken_id: str) -> RequestRecord:
        """A message whose ``requestId`` belongs to another request: recorded under an id of its own, answered, nothing else.

        Never answered in the reply queue of the request that owns the id: Service Bus does not say who sent a
        message, so a ReplyTo naming the owner's queue would make this automation tell that team its own live
        request was refused. The refusal is recorded (``replyToRefused``) and logged instead.
        """
        owner = self._existing(taken_id)
        if reply_to is not None and owner is not None and owner.reply_to is not None and owner.reply_to.lower() == reply_to.lower():
            log.warning("message %s reuses requestId %s with ReplyTo %.100r, the queue of the request that owns the id: "
                        "not answered there", message.message_id, taken_id, reply_to)
            reply_to = None
        conflict_id = conflict_request_id(message.original_message_id or message.message_id, taken_id)
        reason = f"requestId: {taken_id} is already used by another request"
        body = {"raw": _printable(message.body), "conflictsWith": taken_id}
        existing = self._existing(conflict_id)
        if existing is not None:
            return self.pipeline.reply(existing)
        record = RequestRecord.new(request_id=conflict_id, stage=Stage.REJECTED, body=body, reply_to=reply_to, now=self.now(),
                                   details=progress.conflict(taken_id, _unanswered_reply_to(message, reply_to)), reason=reason)
        try:
            record = self.ledger.create(record)
        except RequestAlreadyExists:
            record = self.ledger.get(conflict_id)
        log.warning("message %s REJECTED: %s", message.message_id, reason)
        return self.pipeline.reply(record)


def _unanswered_reply_to(message: IncomingMessage, reply_to: str | None) -> str | None:
    """The message's ReplyTo when it is never sent to (not a reply queue of this deployment)."""
    return message.reply_to if message.reply_to and reply_to is None else None


def _check_source_disks(request: ImageRequest, source: SourceFacts, allowed_scopes: tuple[str, ...]) -> None:
    """Every disk the pipeline will copy lies inside the allowed scopes too, not only the VM that names it."""
    for planned in source.snapshots:
        if planned.source_disk_id is None:
            continue
        disk = try_parse(planned.source_disk_id, DISK)
        if disk is None or not any(disk.is_within(scope) for scope in allowed_scopes):
            where = "the OS disk" if planned.lun is None else f"the data disk at LUN {planned.lun}"
            raise RequestRejected(
                f"source.virtualMachineId: {where} ({planned.source_disk_id}) is outside the allowed scopes", request.id)


def _printable(body: bytes, limit: int = 4096) -> str:
    return body[:limit].decode("utf-8", errors="replace")


def _first_stage(request: Request, plan: ResourcePlan, source: SourceFacts, account: AccountFacts) -> Stage:
    kind = request.source.kind
    if kind == "virtualMachineId":
        return Stage.RECEIVED
    if kind == "snapshots":
        return Stage.PUBLISHING if plan.publishes_from_snapshots else Stage.IMAGING
    if kind == "managedImageId":
        return Stage.CREATING_POOL if request.image.legacy_managed_image else Stage.PUBLISHING
    # A reused version: publish only if it lacks replicas in the account's region.
    needed = dict(plan.target_regions).get(account.region, 1)
    if source.version_replicas.get(account.region, 0) < needed:
        return Stage.PUBLISHING
    return Stage.REFRESHING if plan.refreshes_pool else Stage.CREATING_POOL


def _check_target(request: PoolRequest, ids: RequestIds, source: SourceFacts, account: AccountFacts, batch: BatchGateway,
                  compute: ComputeGateway) -> dict[str, VmSkuView] | None:
    """Everything the request would collide with, before any write; the VM sizes read for the core quotas (None on the
    legacy path, which Batch's node limits bound instead)."""
    check_pool_name_free(request, account)
    if request.image.legacy_managed_image:
        _check_legacy(request, ids, source, account, compute)
        return None
    sizes = read_vm_sizes(account, batch)
    check_core_quotas(request, account, sizes)
    if source.security_type and request.image.hyper_v_generation != "V2":
        raise RequestRejected(
            f"image.hyperVGeneration: a {source.security_type} image must be V2 (trusted launch and confidential VMs are generation 2)",
            request.id)
    check_size_runs_image(request, sizes[request.pool.vm_size.lower()], security_type=source.security_type,
                          hyper_v_generation=source.hyper_v_generation or request.image.hyper_v_generation)
    return sizes


def _check_legacy_allowed(request: ImageRequest, settings: Settings) -> None:
    """Batch retired custom-image pools from managed images on 2026-03-31 (MicrosoftDocs/azure-docs,
    articles/batch/batch-custom-image-pools-to-azure-compute-gallery-migration-guide.md): refused before any ARM call,
    unless the deployment says its cloud still accepts them (ALLOW_LEGACY_MANAGED_IMAGE_POOLS)."""
    if request.image.legacy_managed_image and not settings.allow_legacy_managed_image_pools:
        raise RequestRejected(
            f"image.legacyManagedImage: Batch retired pools made straight from a managed image on {LEGACY_POOLS_RETIRED}; "
            "send the request without it and with image.galleryId: the image is published to that Azure Compute Gallery "
            "and the pool uses the gallery image version", request.id)


def _check_legacy(request: PoolRequest, ids: RequestIds, source: SourceFacts, account: AccountFacts, compute: ComputeGateway) -> None:
    """A pool straight from a managed image: the seed's prerequisites for one."""
    field_path = "source.managedImageId" if request.source.managed_image_id is not None else f"source.{request.source.kind}"
    if source.security_type:
        # learn.microsoft.com/azure/virtual-machines/trusted-launch: managed images are not supported for
        # Trusted Launch (nor for confidential VMs); the gallery path publishes straight from the snapshots.
        raise RequestRejected(
            f"{field_path}: a {source.security_type} VM cannot become a managed image; use the gallery path (image.galleryId)",
            request.id)
    if source.subscription.lower() != account.id.subscription.lower() or region_key(source.location) != account.region:
        # Batch docs (batch-custom-images): the managed image must be in the Batch account's subscription and region.
        raise RequestRejected(
            f"{field_path}: the managed image would be in {source.location} (subscription {source.subscription}); a legacy "
            f"managed-image pool needs it in the Batch account's region {account.location} and subscription "
            f"{account.id.subscription}", request.id)
    _check_node_limits(request, ids, source, account, compute)


@dataclass(frozen=True)
class ExistingDefinition:
    """A named gallery image definition found at intake: used as it is, never PUT again."""

    id: str
    location: str


def _check_gallery(request: ImageRequest, gallery: ArmId, source: SourceFacts, compute: ComputeGateway) -> ExistingDefinition | None:
    """The gallery exists; a named definition that exists fits the source (OS type and state, generation, security type).

    A definition is fixed once made (virtual-machines/troubleshooting-shared-images: its OS type and state, generation,
    publisher, offer and SKU can never change), so one that exists is used as it is: the request must fit it.
    """
    if compute.gallery(gallery) is None:
        raise RequestRejected(f"image.galleryId: {gallery.id} does not exist", request.id)
    if request.image.image_definition is None:
        return None
    name = request.image.image_definition
    definition = compute.image_definition(gallery.child("images", name))
    if definition is None:
        return None  # the pipeline creates it
    misfits = definition_misfits(definition, os_type=source.os_type, security_type=source.security_type,
                                 hyper_v_generation="V2" if source.security_type else request.image.hyper_v_generation)
    if misfits:
        raise RequestRejected(f"image.imageDefinition: {name} does not fit the source: " + "; ".join(misfits), request.id)
    return ExistingDefinition(definition.id, definition.location)


def _plan(request: Request, ids: RequestIds, source: SourceFacts, account: AccountFacts, submitted_at: datetime,
          refresh: RefreshTarget | None, existing_definition: ExistingDefinition | None = None) -> ResourcePlan:
    """What the request makes: a new pool's lineage and pool, or (``refresh``) a new version for an existing pool.

    ``existing_definition``: the definition the version goes into exists (a team's own, or a refreshed pool's own): it
    is used as it is, never PUT again, and its region gets a replica."""
    request_id = request.id
    if isinstance(request, PoolRequest):
        pool, nodes = ids.batch_account.child("pools", request.pool.pool_name), request.pool.total_target_nodes
    else:
        assert refresh is not None and ids.pool is not None, "a refresh is admitted before it is planned"
        pool, nodes = ids.pool, refresh.nodes
    kind = request.source.kind
    image = definition = version = None
    from_snapshots = source.security_type is not None and not request.image.legacy_managed_image
    if kind in ("virtualMachineId", "snapshots") and not from_snapshots:
        anchor = ids.virtual_machine or ids.os_disk_snapshot
        assert anchor is not None, "the source is a VM or its snapshots"
        image = anchor.sibling(IMAGE, image_name(request_id))
    elif kind == "managedImageId":
        image = ids.managed_image
    elif kind == "galleryImageVersionId":
        version = ids.gallery_image_version
    if kind != "galleryImageVersionId" and not request.image.legacy_managed_image:
        if refresh is not None:
            definition = refresh.definition
        else:
            gallery = ids.gallery
            assert gallery is not None, "a request off the legacy path names its gallery"
            definition = gallery.child("images", request.image.image_definition or image_name(request_id))
        version = definition.child("versions", image_version_name(request_id, submitted_at))
    elif version is not None:
        definition = version.parent()
    replicas = replica_count(nodes)
    regions = _target_regions(account, source, replicas, request_id, existing_definition) if version is not None else ()
    _check_encryption_regions(request, source, regions)
    return ResourcePlan(
        request_id=request_id,
        location=source.location,
        snapshots=source.snapshots,
        image=image,
        image_definition=definition,
        image_version=version,
        pool=pool,
        replica_count=replicas,
        target_regions=regions,
        security_type=source.security_type if not request.image.legacy_managed_image else None,
        secure_boot=source.secure_boot,
        vtpm=source.vtpm,
        purchase_plan=source.purchase_plan if version is not None else None,
        reuses_version=kind == "galleryImageVersionId",
        refreshes_pool=refresh is not None,
        definition_exists=existing_definition is not None,
    )


def _check_encryption_regions(request: Request, source: SourceFacts, regions: tuple[tuple[str, int], ...]) -> None:
    """Disks encrypted with a customer-managed key make a version that can live only in their region.

    virtual-machines/image-version-encryption: a version is encrypted per target region with a disk encryption set,
    "Encryption key sets are regional resources, so each region requires a different encryption key set", and once an
    image uses customer-managed keys it cannot go back to platform keys. The request names no encryption set for other
    regions, so a version that must be replicated elsewhere (the Batch account in another region) is refused here.
    """
    encryption_sets = sorted({s.disk_encryption_set_id for s in source.snapshots if s.disk_encryption_set_id})
    elsewhere = [name for name, _ in regions if name != region_key(source.location)]
    if encryption_sets and elsewhere:
        names = ", ".join(des.rstrip("/").rsplit("/", 1)[-1] for des in encryption_sets)
        raise RequestRejected(
            f"source.virtualMachineId: its disks are encrypted with a customer-managed key (disk encryption set {names}, "
            f"in {source.location}); the image version would also be replicated to {', '.join(elsewhere)}, and an encryption "
            "set serves its own region only: build the image from a VM in the Batch account's region", request.id)


def _target_regions(account: AccountFacts, source: SourceFacts, replicas: int, request_id: str,
                    existing_definition: ExistingDefinition | None = None) -> tuple[tuple[str, int], ...]:
    """Where the version lives: the pool's replicas in the Batch account's region (Batch needs one there,
    batch-sig-images), and one in the source's region, where the gallery publishes from (a version is made in its
    source's region: troubleshooting-shared-images, "Source ... is in the same region as gallery image version being
    created"). A reused version keeps the regions it has, with at least as many replicas as it had. An existing
    definition in another region gets a replica there too: Azure adds the definition's region to its versions'
    replication regions itself (Azure/avdaccelerator#290), so the plan asks for it and counts it."""
    regions: dict[str, int] = dict(source.version_replicas)
    regions[account.region] = max(regions.get(account.region, 0), min(MAX_REGIONAL_REPLICAS, replicas))
    regions.setdefault(region_key(source.location), 1)
    if existing_definition is not None and existing_definition.location:
        regions.setdefault(region_key(existing_definition.location), 1)
    ordered = [account.region, *(name for name in regions if name != account.region)]
    if sum(regions.values()) > MAX_VERSION_REPLICAS:
        asked = ", ".join(f"{name} {regions[name]}" for name in ordered)
        raise RequestRejected(f"source.galleryImageVersionId: the version would need {sum(regions.values())} replicas ({asked}); "
                              f"a gallery image version may have at most {MAX_VERSION_REPLICAS} in all", request_id)
    return tuple((name, regions[name]) for name in ordered)


def _check_node_limits(request: PoolRequest, ids: RequestIds, facts: SourceFacts, account: AccountFacts, compute: ComputeGateway) -> None:
    """Managed-image pools: nodes across pools sharing the image lineage stay within Batch's limits."""
    lineage_reader = LineageReader(compute)
    lineage = {s.snapshot.key() for s in facts.snapshots}
    if ids.managed_image is not None:
        image_id = ids.managed_image.id
        lineage |= {resource_key(image_id)} | {resource_key(r) for r in lineage_reader.lineage(image_id)}
    if not lineage:
        return
    dedicated, low_priority = request.pool.target_dedicated_nodes, request.pool.target_low_priority_nodes
    sharing: list[str] = []
    for pool in account.pools:
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
