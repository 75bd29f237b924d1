"""Moving a refreshed pool to its new image, one look at a time, after its version is published (stage REFRESHING).

Each look reads the pool as it is (the guard's sweep or a scheduled check hands it over) and takes the step it allows:

- ``whenIdle``: wait until the pool is Steady at zero nodes on its own (a team that scales to zero overnight); the
  pool's size is never changed;
- ``drain``: remember the pool's targets, resize it to zero with the team's node deallocation option, wait until it is
  Steady at zero nodes;
- then Pool - Update of ``deploymentConfiguration`` (the new image, the rest as read) with the pool's metadata naming
  this request, conditional on the pool's ETag; Batch takes it only at zero nodes (azure-docs
  batch-pool-update-properties.md), and the nodes a later resize brings run the new image;
- then protection moves (the new lineage locked, each resource of the old released where no pool uses it any more),
  the old gallery version is retired (``excludeFromLatest``, ``endOfLifeDate`` RETIRED_VERSION_END_OF_LIFE_DAYS later),
  a drained pool gets its targets back, and the request goes SCALING (the guard grows the pool as for a new one) or
  READY when the pool is already at its target.

Past the request's deadline a pool not yet moved is left as it was (a drained one gets its targets back) and the
request ends FAILED, saying why. Every step the team hears of goes into the final reply. The state a look needs that
Azure cannot tell again is in the record (:mod:`.state`), each change a conditional write: a look that loses a race
stops, and the next one goes on from what the pool and the record say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..arm.ids import GALLERY_IMAGE_VERSION, resource_key, try_parse
from ..arm.pools import BadPoolMetadata, PoolView, Targets
from ..gateway.protocol import AzureGateway, FixedScale, PoolUpdate
from ..messaging import MessageSender, look_after_creation
from ..model.plan import ResourcePlan, request_metadata
from ..model.request import RefreshRequest
from ..naming import METADATA_REQUEST, TAG_REQUEST
from ..pipeline.stages import PoolPipeline
from ..protection.locks import ImageUse, move, users_of
from ..settings import Settings
from ..store.ledger import FinalStageError, Ledger, RequestNotFound, RequestRecord, Stage, StaleRecord
from ..store.progress import Details
from ..store.records import RecordStore
from .state import RefreshState

log = logging.getLogger(__name__)

# Batch's own default resize timeout (FixedScaleSettings.resizeTimeout: "The default value is 15 minutes").
_DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=15)
_NO_NODES = Targets(0, 0)


@dataclass(kw_only=True)
class PoolRefresher:
    """Moves refreshed pools to their new images. Plain code: what it uses comes in, nothing global."""

    gateway: AzureGateway  # reads and PATCHes the pool, reads and retires the old version, moves the locks
    ledger: Ledger  # where each refresh stands, and what it remembers
    records: RecordStore  # the usage records behind the locks
    pipeline: PoolPipeline  # ends a refresh (its reply; its alert when it failed) and knows the new image's lineage
    sender: MessageSender  # schedules the guard's looks at a pool draining or growing back
    settings: Settings
    now: Callable[[], datetime]

    def refreshing(self) -> dict[str, str]:
        """The pools being moved now: pool key -> the refresh moving it (one ledger query)."""
        return {record.plan.pool.key(): record.request_id for record in self.ledger.list_by_stage(Stage.REFRESHING) if record.plan}

    def drive(self, request_id: str, view: PoolView | None = None) -> RequestRecord | None:
        """Take refresh ``request_id``'s next step, with its pool as just read (``view``; read here when not given)."""
        try:
            record = self.ledger.get(request_id)
        except RequestNotFound:
            return None
        if record.stage is not Stage.REFRESHING:
            return record
        plan, request = record.plan, record.request
        if plan is None or not isinstance(request, RefreshRequest):
            return self.pipeline.finish(record, Stage.FAILED, f"refresh {request_id} has no readable plan or request body")
        view = view or self.gateway.batch.pool(plan.pool)
        if view is None:
            return self.pipeline.finish(record, Stage.FAILED, f"pool {plan.pool.id} was deleted before it moved to {plan.pool_image_id}",
                                        owns_subject=False)
        look = _Look(self, record, plan, request, view)
        return look.take()

    def drive_unseen(self, seen_pools: set[str]) -> list[str]:
        """Drive every refresh whose pool a sweep did not meet (deleted, or in an account it could not list)."""
        driven = []
        for pool_key, request_id in self.refreshing().items():
            if pool_key in seen_pools:
                continue
            try:
                self.drive(request_id)
            except Exception:  # noqa: BLE001 - one refresh's failure never stops the others
                log.exception("refresh %s: its look failed; the next sweep looks again", request_id)
                continue
            driven.append(request_id)
        return driven


class _Look:
    """One look at one refresh: the record, its plan and request, and its pool as just read."""

    def __init__(self, refresher: PoolRefresher, record: RequestRecord, plan: ResourcePlan, request: RefreshRequest, pool: PoolView) -> None:
        self.refresher = refresher
        self.record = record
        self.plan = plan
        self.request = request
        self.pool = pool
        self.state = RefreshState.of(record.details)
        self.new_image = plan.pool_image_id
        self.deadline = record.created_at + request.refresh.deadline

    @property
    def gateway(self) -> AzureGateway:
        return self.refresher.gateway

    def take(self) -> RequestRecord:
        pool = self.pool
        if _same(pool.image_id, self.new_image):
            return self._after_move()
        if self.refresher.now() >= self.deadline:
            return self._give_up()
        if pool.idle and pool.provisioning_state.lower() == "succeeded":
            return self._move()
        if self.request.refresh.mode == "drain":
            return self._drain()
        return self._wait(f"for pool {pool.name} to be Steady at zero nodes by itself (whenIdle); it has "
                          f"{pool.current_dedicated + pool.current_low_priority} nodes, {pool.allocation_state}")

    # -- before the move ---------------------------------------------------------------

    def _wait(self, detail: str) -> RequestRecord:
        """Nothing to do yet: the team hears (once, in its reply) what the refresh waits for, and until when."""
        if not self.state.waiting_told:
            self._note(self.state.changed(waiting_told=True), "waiting", f"{detail}; until {_moment(self.deadline)}")
        return self.record

    def _drain(self) -> RequestRecord:
        pool, option = self.pool, self.request.refresh.deallocation
        if not pool.fixed_scale:
            return self._finish(Stage.FAILED, f"refresh.mode: drain resizes a fixed-scale pool; {pool.name} scales automatically")
        if pool.allocation_state.lower() != "steady":
            return self._wait(f"for pool {pool.name}'s {pool.allocation_state.lower()} to end before draining it")
        if self.state.drained_from is None:
            targets = _desired(pool)
            if not self._note(self.state.changed(drained_from=targets.signature), "draining",
                              f"pool {pool.name} resized to 0 with nodeDeallocationOption {option} (target was {targets.signature}, "
                              f"{pool.current_dedicated + pool.current_low_priority} nodes)"):
                return self.record
        outcome = self.gateway.batch.update_pool(self.plan.pool, pool.etag, pool.metadata, FixedScale(_NO_NODES, _timeout(pool), option))
        if outcome is PoolUpdate.GONE:
            return self._finish(Stage.FAILED, f"pool {pool.id} was deleted while it was drained", owns_subject=False)
        if outcome is PoolUpdate.UPDATED:
            # The guard's looks follow the shrink (nodes leave as their tasks allow) and hand the pool back when it is idle.
            self._look_later()
        return self.record

    def _move(self) -> RequestRecord:
        pool = self.pool
        vm_configuration = {**pool.vm_configuration, "imageReference": {"id": self.new_image}}
        if self.request.refresh.node_agent_sku_id:
            vm_configuration["nodeAgentSkuId"] = self.request.refresh.node_agent_sku_id
        metadata = {**pool.metadata, **request_metadata(self.record.request_id, self._restored())} if pool.fixed_scale else {
            **pool.metadata, METADATA_REQUEST: self.record.request_id}
        outcome = self.gateway.batch.update_pool_image(self.plan.pool, pool.etag, vm_configuration, metadata)
        if outcome is PoolUpdate.GONE:
            return self._finish(Stage.FAILED, f"pool {pool.id} was deleted before it moved to {self.new_image}", owns_subject=False)
        if outcome is not PoolUpdate.UPDATED:
            log.info("refresh %s: pool %s moved on before its image changed (%s); the next look tries again", self.record.request_id,
                     pool.name, outcome.value)
            return self.record
        if not self._note({}, "moved", f"pool {pool.name} moved from {_name(pool.image_id)} to {_name(self.new_image)} "
                                               "at zero nodes (Pool - Update)"):
            return self.record
        moved = self.gateway.batch.pool(self.plan.pool)
        if moved is None:
            return self._finish(Stage.FAILED, f"pool {pool.id} was deleted just after it moved to {self.new_image}", owns_subject=False)
        self.pool = moved
        return self._after_move()

    def _give_up(self) -> RequestRecord:
        """Past the deadline, not moved: the pool is left as it was (a drained pool gets its targets back), and the team told why."""
        pool, restored = self.pool, self.state.drained_targets
        again = ""
        if restored is not None and pool.fixed_scale and Targets(pool.target_dedicated, pool.target_low_priority) != restored:
            if pool.allocation_state.lower() != "steady":
                return self.record  # the drain's shrink ends first; the next look restores the target
            if self.gateway.batch.update_pool(self.plan.pool, pool.etag, pool.metadata, FixedScale(restored, _timeout(pool))) is not PoolUpdate.UPDATED:
                return self.record
            again = f", its target {restored.signature} restored"
        nodes = pool.current_dedicated + pool.current_low_priority
        reason = (f"the deadline {_moment(self.deadline)} passed before pool {pool.name} was Steady at zero nodes "
                  f"({self.request.refresh.mode}; it has {nodes} nodes): it stays on {_name(pool.image_id)}{again}. "
                  f"The new version {_name(self.new_image)} stays published: a refresh naming it (source.galleryImageVersionId) "
                  "moves the pool later")
        # The team's to act on (a busy pool): ops are not alerted.
        return self._finish(Stage.FAILED, reason, alert_ops=False)

    # -- after the move ----------------------------------------------------------------

    def _after_move(self) -> RequestRecord:
        refresher, pool = self.refresher, self.pool
        if not self.state.protected:
            use = ImageUse(pool.id, self.new_image, refresher.pipeline.lineage_of(self.plan), self.record.request_id)
            _, unlocked = move(refresher.records, self.gateway.locks, use, keep_locks=refresher.settings.keep_image_locks)
            if not self._note(self.state.changed(protected=True), "released", self._released(unlocked)):
                return self.record
        if not self.state.retired:
            if not self._note(self.state.changed(retired=True), "retired", self._retire()):
                return self.record
        restored = self.state.drained_targets
        if restored is not None and pool.fixed_scale and Targets(pool.target_dedicated, pool.target_low_priority) != restored:
            outcome = self.gateway.batch.update_pool(self.plan.pool, pool.etag, pool.metadata, FixedScale(restored, _timeout(pool)))
            if outcome is PoolUpdate.GONE:
                return self._finish(Stage.FAILED, f"pool {pool.id} was deleted before its target was restored", owns_subject=False)
            if outcome is not PoolUpdate.UPDATED:
                return self.record
            if not self._note({}, "restored", f"pool {pool.name}'s target {restored.signature} restored: its nodes come up "
                                                      f"on {_name(self.new_image)}"):
                return self.record
            return self._grow(restored)
        if not pool.fixed_scale:
            return self._finish(Stage.READY, f"pool {pool.name} moved to {_name(self.new_image)}; it scales itself (autoscale)")
        return self._grow(Targets(pool.target_dedicated, pool.target_low_priority), resizing=pool.allocation_state.lower() != "steady")

    def _grow(self, targets: Targets, resizing: bool = True) -> RequestRecord:
        """The pool is on its new image: at its target it is READY, else the guard grows it back as a new pool (SCALING)."""
        image = _name(self.new_image)
        if not resizing and self.pool.reaches(targets):
            return self._finish(Stage.READY, f"pool {self.pool.name} moved to {image}; at its target {targets.signature}")
        try:
            self.record = self.refresher.ledger.advance(self.record, Stage.SCALING, reason=f"pool {self.pool.name} moved to {image}; "
                                                        f"growing back to {targets.signature} on it", now=self.refresher.now())
        except (StaleRecord, FinalStageError):
            return self.refresher.ledger.get(self.record.request_id)
        self._look_later()
        return self.record

    def _released(self, unlocked: list[str]) -> str:
        """What happened to the old image's lineage: unlocked where unused, kept where another pool still uses it."""
        parts = [f"unlocked {', '.join(_name(r) for r in unlocked)} (no pool uses them any more)" if unlocked else "nothing unlocked"]
        old = self.state.previous_image
        still = _users(self.refresher.records, old) if old and not _same(old, self.new_image) else ""
        if still:
            parts.append(f"{_name(old)} and its lineage stay locked: still used by pool(s) {still}")
        if self.refresher.settings.keep_image_locks:
            parts.append("locks are kept (KEEP_IMAGE_LOCKS)")
        return "; ".join(parts)

    def _retire(self) -> str:
        """Retire the version the pool left, when this automation published it into the new version's definition."""
        old_id = self.state.previous_image
        old = try_parse(old_id or "", GALLERY_IMAGE_VERSION)
        if old is None:
            return f"nothing to retire: the old image {_name(old_id)} is not a gallery image version"
        definition = self.plan.image_definition
        if _same(old.id, self.new_image):
            return "nothing to retire: the pool already ran this version"
        if definition is None or old.parent().key() != definition.key():
            return f"{old.name} not retired: it is in another definition than {_name(self.new_image)}, whose latest it cannot shadow"
        compute = self.gateway.compute
        version = compute.image_version(old)
        if version is None:
            return f"{old.name} not retired: it no longer exists"
        if TAG_REQUEST not in version.tags:
            return f"{old.name} not retired: this automation did not publish it"
        end_of_life = self.refresher.now() + timedelta(days=self.refresher.settings.retired_version_end_of_life_days)
        if not (version.exclude_from_latest and version.end_of_life is not None):
            compute.retire_image_version(old, version, end_of_life)
        else:
            end_of_life = version.end_of_life
        users = _users(self.refresher.records, old.id)
        still = f"; still used by pool(s) {users}" if users else "; no pool uses it: safe to delete"
        return f"{old.name} excluded from latest, endOfLifeDate {end_of_life.date().isoformat()}{still}"

    # -- records -------------------------------------------------------------------------

    def _note(self, state_details: Details, step: str, detail: str) -> bool:
        """Record a step (and the state with it) in one conditional write; False when another look changed the record first."""
        details = {**state_details, **self.record.progress.step(self.refresher.now(), step, detail)}
        try:
            self.record = self.refresher.ledger.advance(self.record, self.record.stage, details=details, now=self.refresher.now())
        except (StaleRecord, FinalStageError):
            self.record = self.refresher.ledger.get(self.record.request_id)
            return False
        self.state = RefreshState.of(self.record.details)
        log.info("refresh %s: %s: %s", self.record.request_id, step, detail)
        return True

    def _finish(self, stage: Stage, reason: str, *, owns_subject: bool = True, alert_ops: bool = True) -> RequestRecord:
        return self.refresher.pipeline.finish(self.record, stage, reason, owns_subject=owns_subject, alert_ops=alert_ops)

    def _restored(self) -> Targets:
        """The targets the pool is kept at once moved: those it had before a drain, else its own as they are now."""
        return self.state.drained_targets or Targets(self.pool.target_dedicated, self.pool.target_low_priority)

    def _look_later(self) -> None:
        refresher = self.refresher
        look_after_creation(refresher.sender, refresher.settings.pool_checks_queue, self.plan.pool.id, refresher.now())


def _desired(pool: PoolView) -> Targets:
    """The targets a pool is kept at: its requested ones (``cip-target-*``), else its fixed-scale ones."""
    try:
        requested = pool.requested_targets()
    except BadPoolMetadata:
        requested = None
    return requested or Targets(pool.target_dedicated, pool.target_low_priority)


def _users(records: RecordStore, resource_id: str) -> str:
    """The names of the pools recorded as using a resource, or "" when none does."""
    users = users_of(records, resource_id)
    return ", ".join(sorted(str(pool.get("id", "")).rsplit("/", 1)[-1] for pool in users.pools.values())) if users else ""


def _timeout(pool: PoolView) -> timedelta:
    return pool.resize_timeout or _DEFAULT_RESIZE_TIMEOUT


def _same(one: str | None, other: str | None) -> bool:
    return bool(one) and bool(other) and resource_key(one or "") == resource_key(other or "")


def _name(resource_id: str | None) -> str:
    """A resource's name for a person: a gallery version as ``definition/version``, anything else its last segment."""
    if not resource_id:
        return "no image"
    version = try_parse(resource_id, GALLERY_IMAGE_VERSION)
    if version is not None:
        return f"{version.parent().name}/{version.name}"
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _moment(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")

