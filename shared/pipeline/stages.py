"""The pool pipeline: snapshots -> managed image -> gallery image version -> Batch pool.

Each request moves through named stages recorded in the ledger. An event (or a
re-check) is only a hint: :meth:`PoolPipeline.drive` re-reads the request's
resources, takes the next step and records the stage with a conditional write,
so duplicated, reordered or concurrent deliveries advance a request once.
Resources carry deterministic names, so a repeated step finds the first one's
work instead of doing it again. A PUT that Azure cannot make conditional
(snapshots, images, gallery definitions and versions) is claimed first with a
conditional write on the record, so concurrent deliveries send it once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..alerts import Alerts
from ..arm.ids import ArmId, resource_key
from ..arm.values import region_key
from ..arm.views import ResourceView
from ..eventfacts.findings import read_findings
from ..gateway.failures import StepFailed, TransientAzureError, Waiting
from ..gateway.protocol import AzureGateway
from ..messaging import MAX_REQUEST_LOOKS, MessageSender, RequestCheck, interim_reply, look_after_creation, outcome_reply, schedule_request_check
from ..model.plan import (
    PlannedSnapshot,
    ResourcePlan,
    image_body,
    image_definition_body,
    image_version_body,
    pool_body,
    snapshot_body,
)
from ..model.request import ImageRequest, PoolRequest
from ..protection.alerts import on_request_failed
from ..protection.lineage import LineageReader
from ..protection.locks import ImageUse, protect
from ..settings import Settings
from ..store.ledger import (
    FINAL_STAGES,
    FinalStageError,
    Ledger,
    RequestNotFound,
    RequestRecord,
    Stage,
    StaleRecord,
)
from ..store.progress import ScheduledLook, replied
from ..store.records import RecordStore

log = logging.getLogger(__name__)


def merged_regions(planned: tuple[tuple[str, int], ...], has: dict[str, int]) -> list[tuple[str, int]]:
    """The planned regions, then every other region the version is already in (a reused version loses none)."""
    names = [name for name, _ in planned] + [name for name in has if name not in {region_key(n) for n, _ in planned}]
    counts = {region_key(name): count for name, count in planned}
    return [(name, counts.get(region_key(name), 0)) for name in names]


_MAX_STAGE_RACES = 5
# A scheduled look counts as on its way until this long after it is due (Service Bus and the host deliver a scheduled
# message late, never early): another drive in that time leaves the chain to it.
LOOK_DELIVERY_GRACE = timedelta(minutes=2)
# Interim replies remembered per request (the conditions a pool hit while growing).
_MAX_INTERIM_REPLIES = 20
# A claimed PUT not visible in Azure after this long belongs to a delivery that died before sending it.
CLAIM_LEASE = timedelta(minutes=2)


@dataclass(kw_only=True)
class PoolPipeline:
    """Moves requests through their stages. Plain code: what it uses comes in, nothing global.

    One per invocation: a drive keeps the resource its event named and those it read still in progress
    on the instance, so one pipeline's drives run one after another (replies and finishes keep nothing).
    """

    # Reads and writes the request's resources, and locks its image's lineage once its pool exists.
    gateway: AzureGateway
    # Where the request stands; the usage records (protection) and the probe's findings beside it.
    ledger: Ledger
    records: RecordStore
    # A request that fails alerts ops.
    alerts: Alerts
    # Replies to the team, and schedules looks at resources still in progress.
    sender: MessageSender
    settings: Settings
    now: Callable[[], datetime]
    # The drive under way: the resource its event named, which look it is (0: an event's or the timer's),
    # and the resources it read as still in progress.
    _hint: str | None = field(default=None, init=False)
    _look: int = field(default=0, init=False)
    _looking_at: str | None = field(default=None, init=False)
    _in_progress: list[str] = field(default_factory=list, init=False)

    # -- the stage machine ------------------------------------------------

    def drive(self, record: RequestRecord, hint: str | None = None, look: int = 0) -> RequestRecord:
        """Take every step that is possible now; return the record as it stands after them.

        ``hint``: the resource an event named. A step then reads only that resource, not every
        resource of its stage (each snapshot event would otherwise re-read every snapshot).
        ``look``: which scheduled look at a resource still in progress this drive is (0: an event's or the timer's).
        """
        self._hint = resource_key(hint) if hint else None
        self._look, self._looking_at, self._in_progress = look, self._hint if look else None, []
        for _ in range(_MAX_STAGE_RACES * 8):
            if record.stage in FINAL_STAGES:
                # A final request delivered again still owes its team the reply, if that never went out.
                return self.reply(record)
            try:
                record, next_stage = self._step(record)
            except StepFailed as exc:
                return self.finish(record, Stage.FAILED, str(exc), owns_subject=exc.owns_subject)
            if next_stage is None or isinstance(next_stage, Waiting):
                self._look_again_later(record)
                return record
            advanced = self._advance(record, next_stage)
            if advanced is None:
                record = self.ledger.get(record.request_id)
            else:
                record = advanced
            # The event's resource was for the stage just left: the next stage reads what it needs.
            self._hint = None
        return record

    def look_at(self, check: RequestCheck) -> None:
        """A scheduled look at one resource of a request that was still in progress after its write event."""
        try:
            record = self.ledger.get(check.request_id)
        except RequestNotFound:
            log.info("request check for %s ignored: the ledger does not know it", check.request_id)
            return
        if record.stage in FINAL_STAGES:
            return
        self.drive(record, hint=check.resource_id, look=check.attempt)

    def _look_again_later(self, record: RequestRecord) -> None:
        """Schedule a look at each resource read as still in progress, unless its finish is known to raise an event.

        Where ARM raises ``ResourceWriteSuccess`` when a long-running PUT is accepted (or nobody has
        measured it yet: :mod:`shared.eventfacts.findings`), no event will say the resource is done;
        without a look of our own the request would wait for the reconcile timer.

        One chain of looks per resource and request, however many deliveries see it in progress: the
        record keeps the chain's last look (which one, and when it is due); a drive continues the chain
        only if it is that look, leaves it alone while that look is on its way, and resumes it (never
        restarts it) when the look never came. At most :data:`MAX_REQUEST_LOOKS` per resource.
        """
        if not self._in_progress or not read_findings(self.records).pipeline_rechecks_writes:
            return
        for resource_id in dict.fromkeys(self._in_progress):
            record = self._schedule_look(record, resource_id)

    def _next_look(self, record: RequestRecord, resource_id: str, now: datetime) -> int | None:
        """Which look at ``resource_id`` to schedule now; None when the chain needs none from this drive."""
        last = record.progress.look(resource_id)
        if last is None:
            attempt = 1
        elif self._look == last.attempt and self._looking_at == resource_key(resource_id):
            attempt = last.attempt + 1  # this drive is the chain's latest look: the chain goes on
        elif now < last.due + LOOK_DELIVERY_GRACE:
            return None  # the chain's latest look is on its way
        else:
            attempt = last.attempt + 1  # that look never came (lost, or its send failed): the chain resumes
        return attempt if attempt <= MAX_REQUEST_LOOKS else None

    def _schedule_look(self, record: RequestRecord, resource_id: str) -> RequestRecord:
        """Record the chain's next look at ``resource_id``, then send it; the record as it stands after."""
        for _ in range(_MAX_STAGE_RACES):
            now = self.now()
            attempt = self._next_look(record, resource_id, now)
            if attempt is None:
                return record
            check = RequestCheck(record.request_id, resource_id, attempt)
            before = record.progress
            written = self._advance(record, record.stage, details=before.schedule_look(resource_id, ScheduledLook(attempt, now + check.delay())))
            if written is None:
                # Another delivery wrote first (perhaps this very look): decide again on what it wrote.
                record = self.ledger.get(record.request_id)
                if record.stage in FINAL_STAGES:
                    return record
                continue
            try:
                schedule_request_check(self.sender, self.settings.pool_checks_queue, check, now)
            except Exception:
                # Not sent: the chain is as it was, so the redelivery (or the next drive) schedules it again.
                self._advance(written, written.stage, details=before.looks_as_read())
                raise
            return written
        return record

    def _step(self, record: RequestRecord) -> tuple[RequestRecord, Stage | Waiting | None]:
        """The next stage (or why not yet), with the record as this step left it (a claim rewrites it)."""
        plan, request = record.plan, record.request
        if plan is None or request is None:
            raise StepFailed(f"request {record.request_id} has no readable plan or request body")
        stage = record.stage
        if stage in (Stage.RECEIVED, Stage.SNAPSHOTTING):
            return self._snapshots_done(record, plan)
        if stage is Stage.IMAGING:
            return self._image_done(record, plan, request)
        if stage is Stage.PUBLISHING:
            return self._version_done(record, plan, request)
        if stage is Stage.CREATING_POOL:
            if not isinstance(request, PoolRequest):
                raise StepFailed(f"request {record.request_id} is a refresh: it moves an existing pool and creates none")
            return self._pool_done(record, plan, request)
        return record, None

    @staticmethod
    def _after_publishing(plan: ResourcePlan) -> Stage:
        """Where a request goes once its image is published: a new pool is created, a refreshed pool moves to it."""
        return Stage.REFRESHING if plan.refreshes_pool else Stage.CREATING_POOL

    def _advance(self, record: RequestRecord, stage: Stage, reason: str | None = None,
                 details: dict | None = None) -> RequestRecord | None:
        """Conditional write; None when another delivery moved the request first."""
        try:
            return self.ledger.advance(record, stage, reason=reason, details=details, now=self.now())
        except (StaleRecord, FinalStageError):
            return None

    def finish(self, record: RequestRecord, stage: Stage, reason: str, *, owns_subject: bool = True,
               alert_ops: bool = True) -> RequestRecord:
        """Move a request to a final stage once (whoever wins the write replies).

        FAILED alerts ops first: once the stage is written a redelivery finds the
        request final and would not alert again, so a publish that fails raises
        before the write (the alert log keeps duplicates out). ``owns_subject``:
        False when the failure is about a resource the request does not own. ``alert_ops``: False for
        an end that is the team's own to act on (a refresh whose deadline passed with the pool left as it was).
        """
        if stage is Stage.FAILED and record.stage not in FINAL_STAGES and alert_ops:
            on_request_failed(self.alerts, record, reason, owns_subject=owns_subject)
        for _ in range(_MAX_STAGE_RACES):
            if record.stage in FINAL_STAGES:
                return self.reply(record)
            advanced = self._advance(record, stage, reason)
            if advanced is not None:
                # READY is routine (INFO); FAILED and REJECTED are what an alert rule on warnings should catch.
                log.log(logging.INFO if stage is Stage.READY else logging.WARNING, "request %s %s: %s", record.request_id, stage.value, reason)
                return self.reply(advanced)
            record = self.ledger.get(record.request_id)
        return record

    def _claimed(self, record: RequestRecord, step: str) -> bool:
        """Whether a delivery ever claimed ``step`` (so its PUT may have been sent)."""
        return record.progress.claimed(step)

    def _confirmed(self, record: RequestRecord, resource_id: str) -> bool:
        """Whether ``resource_id`` was already read as Succeeded."""
        return record.progress.confirmed(resource_id)

    def _confirm(self, record: RequestRecord, resource_ids: list[str]) -> RequestRecord:
        """Remember resources read as Succeeded, so no later event reads them again.

        Concurrent deliveries of one request's events each confirm their own resource: a delivery that
        loses the ledger race re-reads the record and adds its confirmation to the winner's, or the
        confirmation would be lost and no event would come to repeat it.
        """
        for _ in range(_MAX_STAGE_RACES):
            if all(record.progress.confirmed(resource_id) for resource_id in resource_ids):
                return record
            stage = record.stage
            advanced = self._advance(record, stage, details=record.progress.confirm(resource_ids))
            if advanced is not None:
                return advanced
            record = self.ledger.get(record.request_id)
            if record.stage is not stage:
                # Another delivery moved the request on: what this one read belongs to a stage left behind.
                return record
        raise StaleRecord(f"request {record.request_id}: lost the ledger race {_MAX_STAGE_RACES} times confirming {resource_ids}")

    def _to_read(self, items: list, resource_id: Callable) -> list:
        """The items to read now: all of them, or only the one the event named (none when it named something else)."""
        if self._hint is None:
            return items
        return [item for item in items if resource_key(resource_id(item)) == self._hint]

    def _claim(self, record: RequestRecord, step: str, stage: Stage | None = None) -> RequestRecord | None:
        """The record with ``step`` claimed by this delivery (moved to ``stage`` in the same write), or
        None when another delivery claimed it within the lease or changed the record first."""
        for _ in range(_MAX_STAGE_RACES):
            now = self.now()
            claimed_at = record.progress.claimed_at(step)
            if claimed_at is not None and now - claimed_at < CLAIM_LEASE:
                return None
            seen_stage = record.stage
            claimed = self._advance(record, stage or seen_stage, details=record.progress.claim(step, now))
            if claimed is not None:
                return claimed
            # The record changed: another delivery may have claimed the step, or only confirmed a resource
            # (then nobody would send this PUT). Read again and decide on what is there now.
            record = self.ledger.get(record.request_id)
            if record.stage is not seen_stage:
                return None
        return None

    def _send_once(self, record: RequestRecord, step: str, send: Callable[[], object],
                   stage: Stage | None = None) -> RequestRecord | None:
        """Claim ``step`` and send its PUT; the claimed record, or None when another delivery has it.

        A transient failure releases the claim before it propagates, so the redelivery sends it again at once.
        """
        claimed = self._claim(record, step, stage)
        if claimed is None:
            return None
        try:
            send()
        except TransientAzureError:
            self._advance(claimed, claimed.stage, details=claimed.progress.release(step))
            raise
        return claimed

    # -- steps ----------------------------------------------------------------

    # Each step knows from the record what it already did: a claim says a PUT was sent, ``succeeded`` lists
    # the resources read as Succeeded. So a first pass creates without reading first (nothing can be there
    # yet), and a later event reads only what it names.

    def _snapshots_done(self, record: RequestRecord, plan: ResourcePlan) -> tuple[RequestRecord, Stage | Waiting]:
        request = record.request
        assert request is not None
        ours = [p for p in plan.snapshots if p.source_disk_id is not None]
        if ours and not self._claimed(record, "snapshots"):
            # Nothing of this request exists yet: the snapshots, and the gallery definition alongside them
            # (it needs only the gallery, so it is made off the critical path).
            claimed = self._send_once(record, "snapshots", lambda: self._put_snapshots(plan, ours), Stage.SNAPSHOTTING)
            if claimed is None:
                return record, Waiting("snapshots (another delivery is creating them)")
            return self._start_definition(claimed, plan, request), Waiting("snapshots")
        pending = [p for p in plan.snapshots if not self._confirmed(record, p.snapshot.id)]
        newly: list[str] = []
        lost: list[PlannedSnapshot] = []
        for planned in self._to_read(pending, lambda p: p.snapshot.id):
            snapshot = self.gateway.compute.snapshot(planned.snapshot)
            if snapshot is None:
                if planned.source_disk_id is None:
                    raise StepFailed(f"snapshot {planned.snapshot.id} no longer exists")
                lost.append(planned)
            elif snapshot.provisioning_state == "Failed":
                raise StepFailed(f"snapshot {planned.snapshot.id} ended Failed")
            elif snapshot.provisioning_state == "Succeeded":
                newly.append(planned.snapshot.id)
            else:
                self._in_progress.append(planned.snapshot.id)
        if lost:
            # Claimed, yet not in Azure: the delivery that claimed them died before sending (the claim's lease ends).
            claimed = self._send_once(record, "snapshots", lambda: self._put_snapshots(plan, lost), Stage.SNAPSHOTTING)
            record = claimed or record
        record = self._confirm(record, newly)
        if any(not self._confirmed(record, p.snapshot.id) for p in plan.snapshots):
            return record, Waiting("snapshots")
        # Trusted Launch / confidential images skip the managed image: the version is made from the snapshots.
        return record, Stage.PUBLISHING if plan.publishes_from_snapshots else Stage.IMAGING

    def _image_done(self, record: RequestRecord, plan: ResourcePlan, request: ImageRequest) -> tuple[RequestRecord, Stage | Waiting]:
        assert plan.image is not None
        image_id = plan.image
        next_stage = Stage.PUBLISHING if plan.image_version is not None else self._after_publishing(plan)
        if self._confirmed(record, image_id.id):
            return record, next_stage
        if plan.snapshots and not self._claimed(record, "image"):
            record = self._start_definition(record, plan, request)
            claimed = self._send_once(record, "image", lambda: self._put_image(plan, request, record))
            return claimed or record, Waiting("image")
        if not self._to_read([image_id.id], lambda i: i):
            return record, Waiting("image")
        image = self.gateway.compute.image(image_id)
        if image is None and not plan.snapshots:
            raise StepFailed(f"managed image {image_id.id} no longer exists")
        record, done = self._settled(record, image, "managed image", image_id, "image", lambda: self._put_image(plan, request, record))
        return record, next_stage if done else Waiting("image")

    def _version_done(self, record: RequestRecord, plan: ResourcePlan, request: ImageRequest) -> tuple[RequestRecord, Stage | Waiting]:
        assert plan.image_definition is not None and plan.image_version is not None
        if plan.reuses_version:
            return self._replicas_done(record, plan)
        definition_id, version_id = plan.image_definition, plan.image_version
        compute = self.gateway.compute
        if not plan.definition_exists and not self._confirmed(record, definition_id.id):
            if not self._claimed(record, "image-definition"):
                return self._start_definition(record, plan, request), Waiting("image definition")
            definition = compute.image_definition(definition_id)
            record, done = self._settled(record, definition, "gallery image definition", definition_id, "image-definition",
                                         lambda: self._put_definition(plan, request, record))
            if not done:
                return record, Waiting("image definition")
        if not self._claimed(record, "image-version"):
            claimed = self._send_once(record, "image-version", lambda: self._put_version(plan))
            return claimed or record, Waiting("image version")
        if not self._to_read([version_id.id], lambda i: i):
            return record, Waiting("image version")
        version = compute.image_version(version_id)
        record, done = self._settled(record, version, "gallery image version", version_id, "image-version", lambda: self._put_version(plan))
        return record, self._after_publishing(plan) if done else Waiting("image version")

    def _start_definition(self, record: RequestRecord, plan: ResourcePlan, request: ImageRequest) -> RequestRecord:
        """Create the gallery image definition, once, as soon as the request starts, unless it existed at intake (a
        definition is fixed once made: it is never PUT again, troubleshooting-shared-images)."""
        if plan.image_definition is None or plan.reuses_version or plan.definition_exists or self._claimed(record, "image-definition"):
            return record
        return self._send_once(record, "image-definition", lambda: self._put_definition(plan, request, record)) or record

    def _replicas_done(self, record: RequestRecord, plan: ResourcePlan) -> tuple[RequestRecord, Stage | Waiting]:
        """A reused version gets the replicas the pool needs where the Batch account is (it keeps the others)."""
        assert plan.image_version is not None
        version_id = plan.image_version
        compute = self.gateway.compute
        version = compute.image_version(version_id)
        if version is None:
            raise StepFailed(f"gallery image version {version_id.id} no longer exists")
        if version.provisioning_state == "Failed":
            raise StepFailed(f"gallery image version {version_id.id} ended Failed", owns_subject=False)
        if version.provisioning_state != "Succeeded":
            self._in_progress.append(version_id.id)
            return record, Waiting("image version replication")
        has = version.replicas
        if all(has.get(region_key(name), 0) >= count for name, count in plan.target_regions):
            return record, self._after_publishing(plan)
        regions = [(name, max(count, has.get(region_key(name), 0))) for name, count in merged_regions(plan.target_regions, has)]
        claimed = self._send_once(record, "image-version-replicas", lambda: compute.replicate_image_version(version_id, version, regions))
        return claimed or record, Waiting("image version replication")

    def _pool_done(self, record: RequestRecord, plan: ResourcePlan, request: PoolRequest) -> tuple[RequestRecord, Stage | Waiting]:
        pool_id = plan.pool
        if not self._claimed(record, "pool"):
            # Created with If-None-Match: * (a pool of that name made meanwhile is found on the pool's event).
            claimed = self._send_once(record, "pool", lambda: self._create_pool(plan, request))
            return claimed or record, Waiting("pool")
        if not self._to_read([pool_id.id], lambda i: i):
            return record, Waiting("pool")
        pool = self.gateway.batch.pool(pool_id)
        if pool is None:
            claimed = self._send_once(record, "pool", lambda: self._create_pool(plan, request))
            return claimed or record, Waiting("pool")
        if pool.request_id != record.request_id:
            raise StepFailed(f"pool {pool_id.id} already exists and was not created for this request", owns_subject=False)
        if pool.provisioning_state != "Succeeded":
            return record, Waiting("pool")
        protect(self.records, self.gateway.locks, ImageUse(plan.pool.id, plan.pool_image_id, self.lineage_of(plan), plan.request_id))
        # The pool guard finishes a pool still growing (large pools need several resizes).
        return record, Stage.READY if pool.reaches(request.pool.targets) else Stage.SCALING

    def lineage_of(self, plan: ResourcePlan) -> tuple[str, ...]:
        """Everything the plan's image is made from, each resource of it a pool needs kept.

        The plan knows the lineage it made down to the snapshots; an image it did not make (a reused gallery version,
        a managed image the request named) is read from ARM: a pool on another request's version needs that version's
        managed image and snapshots too, or deleting the other request's pool would unlock them under it.
        """
        if plan.snapshots:
            return plan.image_lineage
        return tuple(LineageReader(self.gateway.compute).lineage(plan.pool_image_id))

    # -- reads and writes ---------------------------------------------------------

    def _settled(self, record: RequestRecord, found: ResourceView | None, what: str, resource: ArmId, claim: str,
                 create: Callable[[], None]) -> tuple[RequestRecord, bool]:
        """Whether ``found`` (``resource`` as just read) is Succeeded, and the record confirming it.

        Missing: the create is sent again (once, under ``claim``); Failed ends the request; otherwise it is on its way.
        """
        if found is None:
            return self._send_once(record, claim, create) or record, False
        if found.provisioning_state == "Failed":
            raise StepFailed(f"{what} {resource.id} ended Failed")
        if found.provisioning_state != "Succeeded":
            self._in_progress.append(resource.id)
            return record, False
        return self._confirm(record, [resource.id]), True

    def _os_type(self, record: RequestRecord) -> str:
        os_type = record.source_os_type
        if os_type is None:
            raise StepFailed(f"request {record.request_id} has no recorded OS type")
        return os_type

    def _put_snapshots(self, plan: ResourcePlan, planned: list[PlannedSnapshot]) -> None:
        for snapshot in planned:
            self.gateway.compute.create_snapshot(snapshot.snapshot, snapshot_body(plan, snapshot))

    def _put_image(self, plan: ResourcePlan, request: ImageRequest, record: RequestRecord) -> None:
        assert plan.image is not None
        self.gateway.compute.create_image(plan.image, image_body(plan, request, self._os_type(record)))

    def _put_definition(self, plan: ResourcePlan, request: ImageRequest, record: RequestRecord) -> None:
        assert plan.image_definition is not None
        self.gateway.compute.create_image_definition(plan.image_definition, image_definition_body(plan, request, self._os_type(record)))

    def _put_version(self, plan: ResourcePlan) -> None:
        assert plan.image_version is not None
        self.gateway.compute.create_image_version(plan.image_version, image_version_body(plan))

    def _create_pool(self, plan: ResourcePlan, request: PoolRequest) -> Waiting:
        outcome = self.gateway.batch.create_pool(plan.pool, pool_body(plan, request))
        if outcome is None:
            # The creation is the pool's first resize: look again when it times out, not a timer period later.
            look_after_creation(self.sender, self.settings.pool_checks_queue, plan.pool.id, self.now())
        return Waiting("pool")

    # -- replies -------------------------------------------------------------------

    def reply(self, record: RequestRecord) -> RequestRecord:
        """Send a final request's outcome to its ReplyTo and record that it went out; the record as it stands.

        At least once from here (a send that fails raises, so the delivery or the sweep sends it again),
        and once in the team's queue: the reply's MessageId is ``<requestId>-<stage>`` and reply queues
        drop duplicates (Service Bus duplicate detection).
        """
        if not record.reply_pending or record.reply_to is None:
            return record
        if not self.settings.may_reply_to(record.reply_to):
            return self._record_reply(record, f"refused: {record.reply_to[:260]} is not a reply queue of this deployment")
        message = outcome_reply(record.request_id, record.stage.value, record.reason, record.pool_id,
                                answers_request_id=record.progress.answers_request_id, steps=record.progress.steps)
        self.sender.send(record.reply_to, message)
        return self._record_reply(record, True)

    def answer_failed_again(self, record: RequestRecord, reply_to: str | None, message_id: str) -> RequestRecord:
        """A FAILED request sent again in a new message: its first reply still owed goes out; else the sender hears that
        it already FAILED and why, and that a new requestId runs it again. Once per message (the reply's MessageId
        carries the message's, and reply queues drop duplicates); nothing in the record changes."""
        if record.reply_pending or reply_to is None or not self.settings.may_reply_to(reply_to):
            return self.reply(record)
        reason = f"already FAILED: {record.reason}; send a new requestId"
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:16]
        message = outcome_reply(record.request_id, record.stage.value, reason, record.pool_id, message_id=f"{record.request_id}-failed-{digest}")
        self.sender.send(reply_to, message)
        log.info("request %s sent again after it FAILED (message %s): answered", record.request_id, message_id)
        return record

    def interim_reply(self, request_id: str, pool_id: str, reason: str, alert_type: str, condition_key: str) -> None:
        """Tell a SCALING request's team that its pool cannot reach its target without help: once per condition.

        ``pool_id`` is the pool in question: only a request that created that pool hears about it (a pool's
        ``cip-request`` metadata may name any request; the record's own plan says which pool is its own).
        The condition is claimed in the record (a conditional write) before the send, and released if the
        send fails (which then raises), so concurrent sweeps and checks send it once.
        """
        try:
            record = self.ledger.get(request_id)
        except RequestNotFound:
            return
        if record.pool_id is None or resource_key(record.pool_id) != resource_key(pool_id):
            log.warning("pool %s names request %s, whose pool is %s: its team is not told about this pool", pool_id,
                        request_id, record.pool_id)
            return
        if record.stage is not Stage.SCALING or record.reply_to is None or not self.settings.may_reply_to(record.reply_to):
            return
        digest = hashlib.sha256(condition_key.encode()).hexdigest()[:16]
        progress = record.progress
        if digest in progress.interim_replies:
            return
        claimed = self._advance(record, record.stage, details=progress.interim_reply(digest, _MAX_INTERIM_REPLIES))
        if claimed is None:
            return
        try:
            self.sender.send(record.reply_to, interim_reply(request_id, reason, alert_type, condition_key))
        except Exception:
            self._advance(claimed, claimed.stage, details=progress.interim_replies_as_read())
            raise

    def _record_reply(self, record: RequestRecord, outcome: bool | str) -> RequestRecord:
        for _ in range(_MAX_STAGE_RACES):
            try:
                return self.ledger.advance(record, record.stage, details=replied(outcome), now=self.now())
            except StaleRecord:
                record = self.ledger.get(record.request_id)
                if not record.reply_pending:
                    return record
        return record
