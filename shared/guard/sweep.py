"""The pool guard: finds guarded pools below target and resizes them, precisely and safely.

A sweep lists each Batch account once (paged), checks each distinct image at
most once, and PATCHes only pools it resizes or alerts about. Every resize
schedules a check message for when its nodes should be there, and at the
latest 30 seconds after its timeout (:func:`shared.guard.rules.next_look`);
the timer sweep is the safety net. The rules live in :mod:`shared.guard.rules`; this module does I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..alerts import IN_USE_IMAGE_DELETED, POOL_CIRCUIT_OPEN, POOL_NEEDS_A_PERSON, POOL_TARGET_UNKNOWN, POOL_TARGET_UNREADABLE, Alerts
from ..arm.ids import BATCH_ACCOUNT, BATCH_POOL, ArmId, parse_arm_id, resource_key, try_parse
from ..arm.pools import BadPoolMetadata, PoolView, Targets
from ..eventfacts.findings import read_findings
from ..gateway.protocol import AzureGateway, FixedScale, PoolUpdate
from ..messaging import AdoptedPool, MessageSender, PoolCheck, schedule_pool_check
from ..model.request import PoolRequest
from ..naming import METADATA_GUARD_REARM, METADATA_GUARD_STATE, METADATA_TARGET_DEDICATED, METADATA_TARGET_LOW_PRIORITY
from ..pipeline.reconcile import age_out_final_records, end_pools_that_are_gone, reconcile_stuck_requests, send_pending_replies
from ..pipeline.stages import PoolPipeline
from ..protection.alerts import ProtectionAlerts
from ..protection.audit import audit_protection
from ..protection.lineage import LineageReader, lineage_resource
from ..protection.locks import ImageUse, in_use_summaries, protect, recorded_gone, recorded_lineage, recorded_pools
from ..refresh.mover import PoolRefresher
from ..settings import Settings
from ..store.ledger import Ledger, LedgerError, RequestNotFound, RequestRecord, Stage
from ..store.records import KeyedRecord, RecordStore, update_record
from . import adoption
from .rules import (
    RESIZE_STOPPED,
    SOONEST_LOOK,
    STALL_WINDOW,
    Action,
    Arrivals,
    Condition,
    Decision,
    GuardState,
    Policy,
    decide,
    desired_targets,
    next_look,
    next_look_while_resizing,
    operator_targets,
    pace_since,
    quota_reached,
    resize_key,
    stalled,
    within_limits,
)

log = logging.getLogger(__name__)

# Per pool: the last resize the guard stopped as stalled (its start time), so its ResizeStopped is not alerted as a person's.
STOPPED_RESIZE = "guard-stopped-resize"

# Looks at one resize, at most (each timed by the nodes' arrival; the timer sweep is the safety net).
MAX_RECHECKS = 20
ACCOUNT_CONCURRENCY = 8


@dataclass
class SweepReport:
    """What one sweep (or one check) did: the pools and requests per outcome, logged by the timer."""

    # Pools and accounts this sweep listed in full (resource keys): a request's pool missing from a listed account is gone.
    seen_pools: set[str] = field(default_factory=set)
    listed_accounts: set[str] = field(default_factory=set)
    resized: list[str] = field(default_factory=list)
    alerted: list[str] = field(default_factory=list)
    # Requests whose pool reached its target (READY).
    finished: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Pools (or accounts) whose handling failed; the sweep went on without them.
    failed: list[str] = field(default_factory=list)
    # Pools a person resized: their new target was adopted.
    adopted: list[str] = field(default_factory=list)
    # Pools whose stalled resize the guard stopped (to resize again once Steady).
    stopped: list[str] = field(default_factory=list)
    # Unrecorded pools whose images were adopted (recorded and locked), and how many wait for a later batch.
    adopted_images: list[str] = field(default_factory=list)
    adoption_pending: int = 0
    # Pools a refresh is moving to a new image: handed to it, never resized by the guard meanwhile.
    refreshing: list[str] = field(default_factory=list)
    # Requests a stuck-request pass moved on, and those not stuck long enough yet to be driven.
    reconciled: list[str] = field(default_factory=list)
    deferred_requests: int = 0
    # Requests ended FAILED because their pool was deleted; final outcomes sent late.
    failed_pools_gone: list[str] = field(default_factory=list)
    # Requests ended FAILED because the account's core quota stops their pool (the pool stays, guarded).
    failed_at_quota: list[str] = field(default_factory=list)
    replies_sent: list[str] = field(default_factory=list)
    # Final records whose body and details were dropped after the retention.
    aged_out: list[str] = field(default_factory=list)
    # In-use resources whose lock the sweep found gone, or whose delete it found refused (where events may not say).
    protection_removed: list[str] = field(default_factory=list)
    deletion_blocked: list[str] = field(default_factory=list)
    # Scopes the audit could not read this sweep (read again the next), and those ops were alerted about.
    audit_unreadable: list[str] = field(default_factory=list)
    audit_blind: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, item: str) -> None:
        with self._lock:
            getattr(self, kind).append(item)

    def seen(self, pool_id: str) -> None:
        with self._lock:
            self.seen_pools.add(resource_key(pool_id))

    def listed_account(self, account_id: str) -> None:
        with self._lock:
            self.listed_accounts.add(resource_key(account_id))

    def summary(self) -> dict[str, int]:
        """How many pools, accounts and requests met each outcome: the one line a sweep logs."""
        counts = {"poolsSeen": len(self.seen_pools), "accountsListed": len(self.listed_accounts)}
        for name in ("resized", "stopped", "alerted", "adopted", "adopted_images", "refreshing", "waiting", "skipped", "failed", "finished",
                     "reconciled", "failed_pools_gone", "failed_at_quota", "replies_sent", "aged_out", "protection_removed", "deletion_blocked",
                     "audit_unreadable", "audit_blind"):
            head, *rest = name.split("_")
            counts[head + "".join(part.title() for part in rest)] = len(getattr(self, name))
        counts["deferredRequests"] = self.deferred_requests
        counts["adoptionPending"] = self.adoption_pending
        return counts


@dataclass(kw_only=True)
class PoolGuard:
    """Sweeps and single-pool checks, one guard per sweep or check (its lineage reader remembers what it read).
    Plain code: what it uses comes in, nothing global."""

    # Lists and reads pools, resizes them (a conditional PATCH), and checks and locks their images' lineage.
    gateway: AzureGateway
    # The requests still scaling (their accounts are swept too; READY once their pool reaches its target).
    ledger: Ledger
    # The usage records: which pools use which image, read once per sweep.
    records: RecordStore
    # A pool that cannot reach its target alerts ops; an in-use image gone alerts them critically.
    alerts: Alerts
    protection_alerts: ProtectionAlerts
    # Finishes a request, and tells its team when its pool needs a person.
    pipeline: PoolPipeline
    # Moves the pools being refreshed: the guard hands each such pool to it instead of guarding it.
    refresher: PoolRefresher
    # Schedules the next look at a resizing pool.
    sender: MessageSender
    settings: Settings
    now: Callable[[], datetime]
    # The usage summaries read at the start of the sweep (None until read): the protection audit reuses them.
    in_use: list[KeyedRecord] | None = field(default=None, init=False)
    # The pools recorded as using an image, read when the sweep chose its accounts: the gone-pool pass reuses them.
    recorded_pools: list[str] | None = field(default=None, init=False)
    # The pools refreshes are moving (pool key -> request), read once per sweep or check (None until read).
    _refreshes: dict[str, str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._policy = Policy(max_resizes_without_progress=self.settings.guard_max_resizes_without_progress)
        # One reader per sweep: each image and lineage resource is read at most once however many pools use it.
        self._lineage = LineageReader(self.gateway.compute)
        self._guarded = {resource_key(a) for a in self.settings.guarded_batch_accounts}
        # Unrecorded pools met by this sweep (accounts are swept from several threads): adopted once all are handled.
        self._to_adopt: dict[str, AdoptedPool] = {}
        self._adopting_lock = threading.Lock()

    # -- entry points ---------------------------------------------------------

    def sweep(self, report: SweepReport | None = None) -> SweepReport:
        """Check every guarded pool of every account to sweep; one failure never stops the others. Then adopt the
        unrecorded pools' images, paced (:mod:`shared.guard.adoption`): every resize comes first."""
        report = report or SweepReport()
        accounts = self.accounts_to_sweep()
        self._prefetch_lineage()
        with ThreadPoolExecutor(max_workers=max(1, min(ACCOUNT_CONCURRENCY, len(accounts)))) as pool_of_workers:
            for account, outcome in zip(accounts, pool_of_workers.map(lambda a: self._sweep_account(a, report), accounts), strict=True):
                if outcome is not None:
                    report.add("failed", account.id)
        self._adopt_paced(report)
        return report

    def adopt(self, pools: Sequence[AdoptedPool], report: SweepReport | None = None) -> SweepReport:
        """Record and lock the images of ``pools`` (one adoption batch): each image's lineage is read once and
        confirmed; a lineage resource already gone alerts instead. A pool recorded meanwhile is left as it is."""
        report = report or SweepReport()
        pools = [pool for pool in pools
                 if recorded_lineage(self.records, pool.pool_id, pool.image_id) is None and lineage_resource(pool.image_id) is not None]
        self._learn_lineages(pools)
        for pool in pools:
            seen_by = {"id": pool.pool_id, "requestId": pool.request_id, "imageId": pool.image_id}
            missing = self._lineage.missing(pool.image_id, deep=True)
            if missing:
                for resource_id in missing:
                    self.protection_alerts.on_resource_deleted(resource_id, known_gone=True, seen_by=seen_by)
                continue
            protect(self.records, self.gateway.locks, ImageUse(pool.pool_id, pool.image_id, tuple(self._lineage.lineage(pool.image_id)),
                                                               pool.request_id))
            report.add("adopted_images", pool.pool_id)
        return report

    def _learn_lineages(self, pools: Sequence[AdoptedPool]) -> None:
        """Read what each image of an adoption batch was made from (an image version, the managed image it came from:
        fixed once they are made), then ask Resource Graph once for the whole batch whether the snapshots at the end of
        each lineage exist, instead of one GET per snapshot. A snapshot it does not return is still read before it
        counts as gone (Resource Graph follows ARM by a little); if the query fails, every one is read."""
        sources: list[str] = []
        for pool in pools:
            if pool.lineage:
                self._lineage.seen_elsewhere(pool.image_id, pool.lineage)
            if self._lineage.exists(pool.image_id):
                sources += self._lineage.lineage(pool.image_id)
        try:
            self._lineage.prefetch(sources, self.gateway.graph)
        except Exception:  # noqa: BLE001 - the point reads still confirm every snapshot
            log.exception("pool guard: the adoption batch's lineage check failed; each snapshot is read on its own")

    def _adopt_paced(self, report: SweepReport) -> None:
        with self._adopting_lock:
            pending = sorted(self._to_adopt.values(), key=lambda p: p.pool_id.lower())
            self._to_adopt.clear()
        if not pending:
            return
        report.adoption_pending = len(pending)
        until = adoption.scheduled_until(self.records)
        if until is not None and until > self.now():
            log.info("pool guard: %d unrecorded pools; the adoption batches scheduled until %s come first", len(pending), until.isoformat())
            return
        # What this sweep already read of each image goes with its batch, so the batch does not read it again.
        pending = [replace(p, lineage=self._lineage.known_lineage(p.image_id) or ()) for p in pending]
        first, *later = adoption.batches(pending)
        self.adopt(first, report)
        scheduled = adoption.schedule(self.records, self.sender, self.settings.pool_checks_queue, later, self.now(),
                                        adoption.sweep_period(self.settings.guard_schedule, self.now()))
        report.adoption_pending = len(pending) - len(first)
        log.info("pool guard: adopted %d of %d unrecorded pools' images now, %d batches scheduled", len(first), len(pending), scheduled)

    def run_sweep(self) -> SweepReport:
        """The timer's work: re-drive stuck requests, sweep every guarded pool, look for removed locks and refused
        deletes where no event may say, end requests whose pool is gone, send the replies that never went out, and
        age out old final records."""
        report = SweepReport()
        ledger, pipeline, settings = self.ledger, self.pipeline, self.settings
        try:
            reconciled = reconcile_stuck_requests(ledger, pipeline, settings, self.now())
            report.reconciled.extend(reconciled.advanced)
            report.deferred_requests = reconciled.not_yet_stuck
        except LedgerError:
            log.exception("reconcile: the ledger failed; the pool sweep goes on")
        self.sweep(report)
        try:
            # Refreshes whose pool the sweep did not meet (deleted, or in an account it could not list) look on their own.
            report.refreshing.extend(self.refresher.drive_unseen(report.seen_pools))
        except LedgerError:
            log.exception("refresh: the ledger failed; the next sweep looks again")
        try:
            audited = audit_protection(read_findings(self.records), records=self.records, locks=self.gateway.locks,
                                       monitor=self.gateway.monitor, alerts=self.protection_alerts, now=self.now, in_use=self.in_use)
            report.protection_removed.extend(audited.protection_removed)
            report.deletion_blocked.extend(audited.deletion_blocked)
            report.audit_unreadable.extend(audited.unreadable)
            report.audit_blind.extend(audited.audit_blind)
        except Exception:  # noqa: BLE001 - the audit is a fallback: the next sweep looks again
            log.exception("protection audit failed; the next sweep looks again")
        try:
            report.failed_pools_gone.extend(end_pools_that_are_gone(
                ledger, pipeline, self.gateway.batch, self.records, self.gateway.locks, report.seen_pools, report.listed_accounts,
                keep_locks=settings.keep_image_locks, recorded=self.recorded_pools))
            report.replies_sent.extend(send_pending_replies(ledger, pipeline, self.now))
            report.aged_out.extend(age_out_final_records(ledger, self.records, settings, self.now()))
        except LedgerError:
            log.exception("reconcile: the ledger failed; pools gone, pending replies and retention wait for the next sweep")
        return report

    def check(self, pool_id: str, attempt: int = 0, seen_nodes: int | None = None, seen_at: datetime | None = None,
              pace: float | None = None) -> SweepReport:
        """Handle one scheduled look at one pool (see :meth:`look`)."""
        return self.look(PoolCheck(pool_id, attempt, seen_nodes, seen_at, pace))

    def look(self, check: PoolCheck) -> SweepReport:
        """Handle one scheduled look at one pool.

        While the pool is resizing, the next look is timed by how fast its nodes arrive (see
        :func:`shared.guard.rules.next_look`), so a pool that reaches its target is seen within
        moments, not at the resize's timeout or the next timer tick; a resize that has stalled
        (:func:`shared.guard.rules.stalled`) is stopped, and the pool resized again once it is Steady.
        """
        report = SweepReport()
        pool = try_parse(check.pool_id, BATCH_POOL)
        if pool is None or not self._may_touch(pool):
            log.warning("pool check for %r ignored: not a Batch pool id within the guard's scopes", check.pool_id)
            return report
        account = pool.parent()
        view = self.gateway.batch.pool(pool)
        if view is None:
            log.info("pool check for %s: the pool no longer exists", check.pool_id)
            return report
        now = self.now()
        pace = pace_since(view, check.seen_nodes, check.seen_at, now, check.pace)
        nodes = view.current_dedicated + view.current_low_priority
        arrivals = Arrivals(check.grew_at, timedelta(seconds=check.quiet_seconds)).seen(check.seen_nodes, check.seen_at, nodes, now)
        if view.allocation_state.lower() in ("resizing", "stopping") and check.attempt < MAX_RECHECKS:
            # A pool whose image or lineage is gone is not resized again: its resize is left to end (the alert follows).
            if (stalled(view, arrivals, now) and self._resize_is_ours(view, account.key() in self._guarded)
                    and not self._lineage.missing(view.image_id, deep=True)):
                self._stop_stalled(view, arrivals, report)
                arrivals = Arrivals(quiet=arrivals.quiet)
                when = now + SOONEST_LOOK
            elif view.allocation_state.lower() == "stopping":
                when = now + SOONEST_LOOK  # a stop ends in moments ("first to stopping and then to steady"): resize then
            else:
                when = next_look_while_resizing(view, pace, arrivals, now)
            look = PoolCheck(pool.id, check.attempt + 1, nodes, now, pace, arrivals.grew_at, arrivals.quiet.total_seconds())
            schedule_pool_check(self.sender, self.settings.pool_checks_queue, look, when)
            report.add("waiting", pool.id)
            return report
        # A check looks at one pool between sweeps: the sweeps confirm the fleet's lineage, a check need not.
        self.handle_pool(view, account.key() in self._guarded, report, pace=pace, confirm_lineage=False, quiet=arrivals.quiet)
        return report

    def _stop_stalled(self, view: PoolView, arrivals: Arrivals, report: SweepReport) -> None:
        """Record the stop in the guard's store (the resize's ResizeStopped is then the guard's own), then stop the resize."""
        pool = parse_arm_id(view.id, BATCH_POOL)
        log.info("pool guard: %s stalled: no new node for %s (window %s); stopping the resize to resize again",
                 view.id, self.now() - arrivals.grew_at if arrivals.grew_at else "?", arrivals.window,
                 extra={"guardDecision": {
                     "poolId": view.id, "requestId": view.request_id, "action": "stop-stalled-resize", "condition": None,
                     "reason": f"no new node for {arrivals.window} while resizing", "errorCode": None,
                     "allocationState": view.allocation_state, "currentDedicated": view.current_dedicated,
                     "targetDedicated": view.target_dedicated, "currentLowPriority": view.current_low_priority,
                     "targetLowPriority": view.target_low_priority}})
        update_record(self.records, STOPPED_RESIZE, view.id, lambda _: {"poolId": view.id, "resize": resize_key(view)})
        if self.gateway.batch.stop_resize(pool) is PoolUpdate.UPDATED:
            report.add("stopped", view.id)

    def _resize_is_ours(self, view: PoolView, guarded_account: bool) -> bool:
        """Whether the pool's resize goes to the targets the guard keeps it at: a resize a person started (to targets
        of their own) is theirs, never stopped."""
        try:
            targets = desired_targets(view, guarded_account=guarded_account)
        except BadPoolMetadata:
            return False
        if targets is None:
            return False
        kept = within_limits(view, targets)
        return (view.target_dedicated, view.target_low_priority) == (kept.dedicated, kept.low_priority)

    def _stopped_by_guard(self, view: PoolView) -> str | None:
        """The resize the guard last stopped on this pool (one store read, only for a pool showing ResizeStopped)."""
        if not any(code.lower() == RESIZE_STOPPED for code in view.error_codes):
            return None
        record = self.records.get(STOPPED_RESIZE, view.id)
        resize = record.data.get("resize") if record is not None else None
        return resize if isinstance(resize, str) else None

    def accounts_to_sweep(self) -> list[ArmId]:
        """Guarded accounts, Batch accounts named in the allowed scopes, accounts of requests still scaling or refreshing,
        and accounts of pools recorded as using an image (a pool deleted through the Batch service API raises no event:
        only a listing shows it gone)."""
        accounts: dict[str, ArmId] = {}
        for scope in (*self.settings.guarded_batch_accounts, *self.settings.allowed_scopes):
            account = try_parse(scope, BATCH_ACCOUNT)
            if account is not None:
                accounts.setdefault(account.key(), account)
        self.recorded_pools = recorded_pools(self.records)
        for pool_id in self.recorded_pools:
            pool = try_parse(pool_id, BATCH_POOL)
            if pool is not None:
                accounts.setdefault(pool.parent().key(), pool.parent())
        for record in self.ledger.list_in_stages((Stage.SCALING, Stage.REFRESHING)):
            if record.plan is not None:
                account = record.plan.pool.parent()
                accounts.setdefault(account.key(), account)
        return sorted(accounts.values(), key=lambda a: a.key())

    # -- per account / per pool -------------------------------------------------

    def _sweep_account(self, account: ArmId, report: SweepReport) -> Exception | None:
        guarded = account.key() in self._guarded
        try:
            for pool in self.gateway.batch.pools(account):
                report.seen(pool.id)
                try:
                    self.handle_pool(pool, guarded, report)
                except Exception:  # noqa: BLE001 - one pool's failure never stops the sweep
                    log.exception("pool guard: pool %s failed; the sweep goes on", pool.id)
                    report.add("failed", pool.id)
        except Exception as exc:  # noqa: BLE001 - one account's failure never stops the others
            log.exception("pool guard: listing pools of %s failed", account.id)
            return exc
        report.listed_account(account.id)
        return None

    def _may_touch(self, pool: ArmId) -> bool:
        scopes = (*self.settings.allowed_scopes, *self.settings.guarded_batch_accounts)
        return any(pool.is_within(scope) for scope in scopes)

    def handle_pool(self, view: PoolView, guarded_account: bool, report: SweepReport, pace: float | None = None,
                    confirm_lineage: bool = True, quiet: timedelta = timedelta(0)) -> None:
        """Decide and act for one pool as listed (or read) a moment ago."""
        if self._handed_to_refresh(view, report):
            return
        try:
            targets = desired_targets(view, guarded_account=guarded_account)
        except BadPoolMetadata as exc:
            # Its image is still protected and checked: a hand-edited target must not silence the critical alert.
            self._protect_and_confirm_image(view)
            requested = self._requested_in_ledger(view)
            if requested is None:
                self._alert_target_unknown(view, str(exc), report)
            else:
                self._restore_targets(view, requested, str(exc), report)
            return
        if targets is None:
            return
        adopted = operator_targets(view, GuardState.from_metadata(view.metadata))
        if adopted is not None:
            self._adopt(view, adopted, report)
            return
        if confirm_lineage:
            self._protect_and_confirm_image(view)
        # The decision looks at the whole lineage where the sweep has just confirmed it (its reads are cached), and where a
        # resource of it was found gone (InUseImageDeleted noted it on the pool's usage record): a resize then could only
        # fail with AllocationFailed.
        whole = confirm_lineage or bool(view.image_id and recorded_gone(self.records, view.id))
        decision = decide(view, targets, self.now(), self._policy, lambda deep: self._lineage.missing(view.image_id, deep=deep or whole),
                          self._stopped_by_guard(view))
        # One structured record per decision, so ops (and the rehearsal's timeline) see what the guard decided and why;
        # pools at target or not ours to touch now are routine (DEBUG), every other decision is INFO.
        routine = decision.action in (Action.AT_TARGET, Action.SKIP)
        log.log(logging.DEBUG if routine else logging.INFO, "pool guard: %s %s: %s", view.id, decision.action.value, decision.reason,
                extra={"guardDecision": {
                    "poolId": view.id, "requestId": view.request_id, "action": decision.action.value,
                    "condition": decision.condition.value if decision.condition else None,
                    "reason": decision.reason, "errorCode": decision.error_code, "allocationState": view.allocation_state,
                    "currentDedicated": view.current_dedicated, "targetDedicated": targets.dedicated,
                    "currentLowPriority": view.current_low_priority, "targetLowPriority": targets.low_priority,
                }})
        if decision.action is Action.AT_TARGET:
            self._finish_request(view, report)
        elif decision.action is Action.RESIZE:
            self._resize(view, decision, report, pace, quiet)
        elif decision.action is Action.ALERT:
            self._alert(view, targets, decision, report)
        elif decision.action is Action.WAIT:
            report.add("waiting", view.id)
        else:
            report.add("skipped", view.id)
            log.debug("pool guard: %s left alone: %s", view.id, decision.reason)

    def _handed_to_refresh(self, view: PoolView, report: SweepReport) -> bool:
        """A pool a refresh is moving is the refresh's until it is on its new image: the guard never resizes, adopts or
        alerts about it meanwhile (a drain would otherwise be undone), and hands the pool as it read it to the refresh."""
        if self._refreshes is None:
            self._refreshes = self.refresher.refreshing()
        request_id = self._refreshes.get(resource_key(view.id))
        if request_id is None:
            return False
        self.refresher.drive(request_id, view)
        report.add("refreshing", view.id)
        return True

    def _prefetch_lineage(self) -> None:
        """Ask Resource Graph once per page of ids whether every recorded in-use resource exists, before any pool is handled.

        Without it each pool would cost a GET per lineage resource. A failure only costs those GETs: the sweep goes on.
        """
        try:
            self.in_use = in_use_summaries(self.records)
            if self.in_use:
                self._lineage.prefetch([summary.data["resourceId"] for summary in self.in_use], self.gateway.graph)
        except Exception:  # noqa: BLE001 - the per-pool point reads still confirm every image
            log.exception("pool guard: the fleet-wide lineage check failed; each image is read on its own this sweep")

    def _protect_and_confirm_image(self, view: PoolView) -> None:
        """Confirm a recorded pool's in-use resources still exist (a lost delete event still alerts); an unrecorded
        pool's image is adopted once every pool is handled, paced (:mod:`shared.guard.adoption`)."""
        if not view.image_id or lineage_resource(view.image_id) is None:
            return
        # A recorded pool's lineage comes from its record (one store read), never from ARM again.
        recorded = recorded_lineage(self.records, view.id, view.image_id)
        if recorded is None:
            with self._adopting_lock:
                self._to_adopt[resource_key(view.id)] = AdoptedPool(view.id, view.image_id, view.request_id)
            return
        self._lineage.remember(view.image_id, recorded)
        self._alert_missing(view, self._lineage.missing(view.image_id, deep=True))

    def _alert_missing(self, view: PoolView, missing) -> None:
        seen_by = {"id": view.id, "requestId": view.request_id, "imageId": view.image_id}
        for resource_id in missing:
            self.protection_alerts.on_resource_deleted(resource_id, known_gone=True, seen_by=seen_by)

    def _resize(self, view: PoolView, decision: Decision, report: SweepReport, pace: float | None = None,
                quiet: timedelta = timedelta(0)) -> None:
        state, targets, timeout = decision.state, decision.targets, decision.resize_timeout
        if state is None or targets is None or timeout is None:
            raise ValueError(f"a resize decision carries its state, targets and timeout: {decision}")
        if self._patch(view, state, FixedScale(targets, timeout)):
            # The next look: when the nodes should be there at the pace seen so far, else at the timeout.
            now = self.now()
            look = PoolCheck(view.id, 0, view.current_dedicated + view.current_low_priority, now, pace, quiet_seconds=quiet.total_seconds())
            # Where nodes were seen arriving, at the latest one stall window on, so the looks see them arrive (or stop
            # arriving: the stall policy); without a pace, at the timeout as before.
            when = next_look(view, pace, now, targets, timeout)
            if pace:
                when = min(when, now + STALL_WINDOW)
            schedule_pool_check(self.sender, self.settings.pool_checks_queue, look, when)
            report.add("resized", view.id)
            log.info("pool guard: resized %s to %s (%s)", view.id, targets.signature, decision.reason)

    def _alert(self, view: PoolView, targets: Targets, decision: Decision, report: SweepReport) -> None:
        """Raise the decision's alert, then record it in the pool's guard state.

        The alert goes out before the state records it (the publish-failure policy in
        :mod:`shared.alerts`): a failed publish raises and leaves the state as it was,
        so the next look alerts again.
        """
        if decision.state is None or decision.condition is None:
            raise ValueError(f"an alert decision carries its state and condition: {decision}")
        if decision.condition is Condition.IMAGE_GONE:
            self._alert_missing(view, decision.missing)
            alert_type = IN_USE_IMAGE_DELETED.type
        else:
            kind = _ALERT_KINDS[decision.condition]
            alert_type = kind.type
            data = _pool_alert_data(view, targets, decision.error_code, decision.reason, decision.missing)
            # The guard's own condition key keeps one alert per condition, as its state in pool metadata does.
            self.alerts.raise_alert(kind.alert(view.id, data, dedup_key=f"{kind.type}|{view.id}|{decision.state.alerted}"))
        if view.request_id is not None and decision.condition is Condition.NEEDS_A_PERSON and quota_reached(decision.error_code):
            self._end_request_at_quota(view, targets, decision, report)
        elif view.request_id is not None:
            # The request's team hears it too, once per condition: its pool will not reach the target without help.
            self.pipeline.interim_reply(view.request_id, view.id, decision.reason, alert_type,
                                        decision.state.alerted or decision.reason)
        if self._patch(view, decision.state, None):
            report.add("alerted", view.id)

    def _adopt(self, view: PoolView, targets: Targets, report: SweepReport) -> None:
        """A person changed the pool's target: it becomes the pool's desired target (metadata), never undone."""
        state = replace(GuardState.from_metadata(view.metadata), target=targets.signature, without_progress=0, alerted=None, resized_at=None)
        requested = {METADATA_TARGET_DEDICATED: str(targets.dedicated), METADATA_TARGET_LOW_PRIORITY: str(targets.low_priority)}
        if self._patch(view, state, None, requested):
            report.add("adopted", view.id)
            log.info("pool guard: %s was resized to %s by someone else; that is now its target", view.id, targets.signature)

    def _patch(self, view: PoolView, state: GuardState, resize: FixedScale | None,
               metadata_changes: dict[str, str] | None = None) -> bool:
        """One conditional PATCH: the guard state, and new targets when resizing; False when the pool moved on."""
        pool = try_parse(view.id, BATCH_POOL)
        if pool is None:
            log.warning("pool guard: %r is not a canonical pool id; left alone", view.id)
            return False
        metadata = {**view.metadata, **(metadata_changes or {}), METADATA_GUARD_STATE: state.to_metadata_value()}
        outcome = self.gateway.batch.update_pool(pool, view.etag, metadata, resize)
        if outcome is PoolUpdate.CHANGED:
            log.info("pool guard: %s changed since it was read (412); skipped this round", view.id)
        elif outcome is PoolUpdate.GONE:
            log.info("pool guard: %s was deleted before it could be updated", view.id)
        elif outcome is PoolUpdate.REFUSED:
            log.info("pool guard: %s refused the update (409); skipped this round", view.id)
        elif outcome is PoolUpdate.LOCKED:
            self._alert_locked(view)
        return outcome is PoolUpdate.UPDATED

    def _requested_in_ledger(self, view: PoolView) -> Targets | None:
        """The targets the pool's own request asked for, as the ledger holds them; None when it holds none for this pool."""
        if view.request_id is None:
            return None
        try:
            record = self.ledger.get(view.request_id)
        except (RequestNotFound, LedgerError):
            return None
        request = record.request
        if not isinstance(request, PoolRequest) or record.pool_id is None or resource_key(record.pool_id) != resource_key(view.id):
            return None  # (a refresh's record names the pool it moved, whose targets it kept)
        return Targets(request.pool.target_dedicated_nodes, request.pool.target_low_priority_nodes)

    def _restore_targets(self, view: PoolView, targets: Targets, problem: str, report: SweepReport) -> None:
        """Garbled ``cip-target-*`` metadata: the request's targets from the ledger are written back, with one alert.

        The alert goes out first (the publish-failure policy); the PATCH then makes the metadata readable, so the next
        look guards the pool again and raises nothing more. A PATCH that loses a race (412) is tried by the next look,
        whose alert the alert log's dedup window holds back.
        """
        reason = f"{problem}; the guard keeps the pool at its request's target from the ledger ({targets.signature}) and wrote it back"
        log.warning("pool guard: %s: %s", view.id, reason)
        data = _pool_alert_data(view, targets, "BadPoolMetadata", reason)
        self.alerts.raise_alert(POOL_TARGET_UNREADABLE.alert(view.id, data, dedup_key=f"{POOL_TARGET_UNREADABLE.condition}|{view.id}"))
        restored = {METADATA_TARGET_DEDICATED: str(targets.dedicated), METADATA_TARGET_LOW_PRIORITY: str(targets.low_priority)}
        if self._patch(view, GuardState.from_metadata(view.metadata), None, restored):
            report.add("alerted", view.id)

    def _alert_target_unknown(self, view: PoolView, problem: str, report: SweepReport) -> None:
        """Garbled ``cip-target-*`` metadata and no request in the ledger to take the target from (a pool a refresh moved,
        one whose request record aged out, or a ``cip-request`` that names none): the pool is not resized, and ops hear
        why. Its metadata stays as a person left it, so the alert log's dedup window keeps this to one alert per window."""
        reason = (f"{problem}; no request in the ledger says this pool's target, so the guard does not resize it: set "
                  f"{METADATA_TARGET_DEDICATED} and {METADATA_TARGET_LOW_PRIORITY} to node counts (or remove them)")
        log.warning("pool guard: %s: %s", view.id, reason)
        data = _pool_alert_data(view, Targets(view.target_dedicated, view.target_low_priority), "BadPoolMetadata", reason)
        self.alerts.raise_alert(POOL_TARGET_UNKNOWN.alert(view.id, data, dedup_key=f"{POOL_TARGET_UNKNOWN.condition}|{view.id}"))
        report.add("skipped", view.id)

    def _alert_locked(self, view: PoolView) -> None:
        """A ReadOnly lock refuses every PATCH of the pool (409 ScopeLocked): nothing the guard does can land, and not even
        its state can be written, so the alert log's dedup window keeps this to one alert, not the pool's metadata."""
        reason = "a ReadOnly lock on the pool (or above it) refuses every change (409 ScopeLocked); remove it so the guard can act"
        log.warning("pool guard: %s: %s", view.id, reason)
        data = _pool_alert_data(view, Targets(view.target_dedicated, view.target_low_priority), "ScopeLocked", reason)
        self.alerts.raise_alert(POOL_NEEDS_A_PERSON.alert(view.id, data, dedup_key=f"{POOL_NEEDS_A_PERSON.type}|{view.id}|ScopeLocked"))

    def _scaling_request(self, view: PoolView) -> RequestRecord | None:
        """The ledger record of the request still growing this pool (SCALING, and the pool is the one it made), if any."""
        if view.request_id is None:
            return None
        try:
            record = self.ledger.get(view.request_id)
        except RequestNotFound:
            return None
        except LedgerError:
            log.exception("pool guard: the ledger failed reading %s", view.request_id)
            return None
        if record.stage is not Stage.SCALING or record.pool_id is None or resource_key(record.pool_id) != resource_key(view.id):
            return None
        return record

    def _end_request_at_quota(self, view: PoolView, targets: Targets, decision: Decision, report: SweepReport) -> None:
        """A pool stopped by the account's core quota ends its request FAILED with one final reply: it cannot grow until a
        person raises the quota. Ops already have the guard's alert, so the end raises no second one. The pool stays, with
        its nodes and its target, guarded as before: once the quota is raised, a resize or a re-arm grows it."""
        record = self._scaling_request(view)
        if record is None:
            return
        reason = (f"the pool stopped at {view.current_dedicated}/{targets.dedicated} dedicated and "
                  f"{view.current_low_priority}/{targets.low_priority} low-priority nodes: its resize failed with {decision.error_code}, the Batch "
                  "account's core quota is reached and only a quota increase lifts it. The pool is kept with its nodes and ops "
                  f"were alerted ({POOL_NEEDS_A_PERSON.type}); once the quota is raised, resize the pool or set its metadata "
                  f"{METADATA_GUARD_REARM} to a new value and the guard grows it to its target, or send a new request for a "
                  "smaller pool")
        ended = self.pipeline.finish(record, Stage.FAILED, reason, alert_ops=False)
        if ended.stage is Stage.FAILED:
            report.add("failed_at_quota", record.request_id)

    def _finish_request(self, view: PoolView, report: SweepReport) -> None:
        record = self._scaling_request(view)
        if record is None:
            return
        finished = self.pipeline.finish(
            record, Stage.READY, f"pool reached its target: {view.current_dedicated} dedicated, {view.current_low_priority} low-priority nodes")
        if finished.stage is Stage.READY:
            report.add("finished", record.request_id)


_ALERT_KINDS = {Condition.NEEDS_A_PERSON: POOL_NEEDS_A_PERSON, Condition.CIRCUIT_OPEN: POOL_CIRCUIT_OPEN}


def _pool_alert_data(view: PoolView, targets: Targets, error_code: str | None, reason: str,
                     missing: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a guard alert about one pool carries: the pool's nodes against ``targets``, the error and why."""
    return {
        "pools": [{
            "id": view.id,
            "currentDedicatedNodes": view.current_dedicated,
            "targetDedicatedNodes": targets.dedicated,
            "currentLowPriorityNodes": view.current_low_priority,
            "targetLowPriorityNodes": targets.low_priority,
            "imageId": view.image_id,
            "requestId": view.request_id,
        }],
        "errorCode": error_code,
        "reason": reason,
        "missingResources": list(missing),
    }


