"""The pool guard: finds guarded pools below target and resizes them, precisely and safely.

A sweep lists each Batch account once (paged), checks each distinct image at
most once, and PATCHes only pools it resizes or alerts about. Every resize
schedules a check message for the moment its timeout expires (plus a margin),
so a timed-out resize is retried within about a minute; the timer sweep is the
safety net. The rules live in :mod:`shared.guard_rules`; this module does I/O.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .alerts import POOL_CANNOT_REACH_TARGET, Alert, AlertPublisher, EventGridAlertPublisher, Severity
from .arm_ids import BATCH_ACCOUNT, BATCH_POOL, GALLERY_IMAGE_VERSION, IMAGE, SNAPSHOT, ArmId, try_parse
from .dependencies import Dependencies
from .guard_rules import (
    METADATA_GUARD_REARM,
    METADATA_GUARD_STATE,
    Action,
    BadPoolMetadata,
    Condition,
    Decision,
    Policy,
    PoolView,
    desired_targets,
    decide,
)
from .ledger import LedgerError, RequestNotFound, Stage
from .messaging import OutgoingMessage

log = logging.getLogger(__name__)

# The check arrives this long after the resize timeout: the service needs a moment to go Steady.
CHECK_MARGIN = timedelta(seconds=30)
# A check that finds the resize still running looks again this much later, a bounded number of times.
RECHECK_DELAY = timedelta(seconds=60)
MAX_RECHECKS = 10
ACCOUNT_CONCURRENCY = 8


@dataclass
class SweepReport:
    """What one sweep (or one check) did; counts per outcome."""

    pools_seen: int = 0
    resized: list[str] = field(default_factory=list)
    alerted: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    below_target: list[str] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)
    deferred_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, item: str) -> None:
        with self._lock:
            getattr(self, kind).append(item)

    @property
    def acted(self) -> bool:
        return bool(self.resized or self.alerted or self.finished or self.reconciled)


@dataclass(frozen=True)
class PoolCheck:
    """A pool-checks queue message: which pool, and how many times it was looked at already."""

    pool_id: str
    attempt: int = 0

    @classmethod
    def from_body(cls, body: bytes) -> "PoolCheck | None":
        """The check, or None for a body that is not one (logged; never retried)."""
        try:
            data = json.loads(body)
            return cls(str(data["poolId"]), int(data.get("attempt") or 0))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("pool check message ignored: %s", exc)
            return None


def check_message(pool_id: str, when: datetime, attempt: int = 0) -> OutgoingMessage:
    """The scheduled message that makes the guard look at one pool at ``when``."""
    return OutgoingMessage(
        json.dumps({"poolId": pool_id, "attempt": attempt}),
        message_id=f"check-{pool_id.rsplit('/', 1)[-1]}-{when.strftime('%Y%m%dT%H%M%S')}",
        subject="PoolCheck",
        scheduled_enqueue_time=when,
    )


def schedule_check_after_resize(deps: Dependencies, pool_id: str, resize_timeout: timedelta) -> None:
    """Schedule a check for when a resize issued now times out (used by the guard and the pipeline)."""
    deps.sender.send(deps.settings.pool_checks_queue, check_message(pool_id, deps.now() + resize_timeout + CHECK_MARGIN))


class _ImageChecks:
    """Existence checks of images and their lineage, cached for one sweep (one GET per resource)."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps
        self._exists: dict[str, bool] = {}
        self._sources: dict[str, list[str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def lineage(self, image_id: str) -> list[str]:
        """What ``image_id`` was made from, recursively, as read (and cached) by :meth:`missing`."""
        found: list[str] = []
        for source in self._sources.get(image_id.lower(), []):
            found += [source, *self.lineage(source)]
        return found

    def missing(self, image_id: str | None, deep: bool) -> list[str]:
        if not image_id:
            return []
        if not self._exists_cached(image_id):
            return [image_id]
        if not deep:
            return []
        gone: list[str] = []
        for source in self._sources.get(image_id.lower(), []):
            gone += self.missing(source, deep=True)
        return gone

    def _exists_cached(self, resource_id: str) -> bool:
        key = resource_id.lower()
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._exists:
                self._exists[key] = self._read(resource_id)
            return self._exists[key]

    def _read(self, resource_id: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        parsed = try_parse(resource_id, GALLERY_IMAGE_VERSION) or try_parse(resource_id, IMAGE) or try_parse(resource_id, SNAPSHOT)
        if parsed is None:
            # Not an id we know how to read (a shared or community gallery image): assume it exists.
            return True
        compute = self._deps.clients.compute(parsed.subscription)
        try:
            if parsed.resource_type == GALLERY_IMAGE_VERSION:
                gallery, definition, version = parsed.names
                found = compute.gallery_image_versions.get(parsed.resource_group, gallery, definition, version)
                source = getattr(getattr(getattr(found, "storage_profile", None), "source", None), "id", None)
                self._sources[resource_id.lower()] = [source] if source else []
            elif parsed.resource_type == IMAGE:
                found = compute.images.get(parsed.resource_group, parsed.name)
                profile = found.storage_profile
                disks = [profile.os_disk, *(profile.data_disks or [])] if profile is not None else []
                self._sources[resource_id.lower()] = [d.snapshot.id for d in disks if d is not None and d.snapshot is not None]
            else:
                compute.snapshots.get(parsed.resource_group, parsed.name)
        except ResourceNotFoundError:
            return False
        return True


class PoolGuard:
    """Sweeps and single-pool checks. Plain code: dependencies come in, nothing global."""

    def __init__(self, deps: Dependencies, alerts: AlertPublisher | None = None) -> None:
        self._deps = deps
        self._alerts = alerts or EventGridAlertPublisher(deps.clients)
        self._policy = Policy(max_resizes_without_progress=deps.settings.guard_max_resizes_without_progress)
        self._images = _ImageChecks(deps)
        self._guarded = {a.lower() for a in deps.settings.guarded_batch_accounts}

    # -- entry points ---------------------------------------------------------

    def sweep(self, report: SweepReport | None = None) -> SweepReport:
        """Check every guarded pool of every account to sweep; one failure never stops the others."""
        report = report or SweepReport()
        accounts = self.accounts_to_sweep()
        with ThreadPoolExecutor(max_workers=max(1, min(ACCOUNT_CONCURRENCY, len(accounts)))) as pool_of_workers:
            for account, outcome in zip(accounts, pool_of_workers.map(lambda a: self._sweep_account(a, report), accounts)):
                if outcome is not None:
                    report.add("failed", account.id)
        return report

    def check(self, pool_id: str, attempt: int = 0) -> SweepReport:
        """Handle one scheduled check message for one pool."""
        report = SweepReport()
        pool = try_parse(pool_id, BATCH_POOL)
        if pool is None or not self._may_touch(pool):
            log.warning("pool check for %r ignored: not a Batch pool id within the guard's scopes", pool_id)
            return report
        from azure.core.exceptions import ResourceNotFoundError

        account = pool.parent()
        try:
            found = self._deps.clients.batch(pool.subscription).pool.get(pool.resource_group, account.name, pool.name)
        except ResourceNotFoundError:
            log.info("pool check for %s: the pool no longer exists", pool_id)
            return report
        view = PoolView.from_sdk(found)
        if view.allocation_state.lower() in ("resizing", "stopping") and attempt < MAX_RECHECKS:
            # The resize outlived its timeout a little: look again shortly.
            self._deps.sender.send(self._deps.settings.pool_checks_queue, check_message(pool.id, self._deps.now() + RECHECK_DELAY, attempt + 1))
            report.add("waiting", pool.id)
            return report
        self.handle_pool(view, account.key() in self._guarded, report)
        return report

    def accounts_to_sweep(self) -> list[ArmId]:
        """Guarded accounts, Batch accounts named in the allowed scopes, and accounts of requests still scaling."""
        accounts: dict[str, ArmId] = {}
        for scope in (*self._deps.settings.guarded_batch_accounts, *self._deps.settings.allowed_scopes):
            account = try_parse(scope, BATCH_ACCOUNT)
            if account is not None:
                accounts.setdefault(account.key(), account)
        for record in self._deps.ledger.list_by_stage(Stage.SCALING):
            pool = try_parse(record.details.get("plan", {}).get("poolId", ""), BATCH_POOL)
            if pool is not None:
                accounts.setdefault(pool.parent().key(), pool.parent())
        return sorted(accounts.values(), key=lambda a: a.key())

    # -- per account / per pool -------------------------------------------------

    def _sweep_account(self, account: ArmId, report: SweepReport) -> Exception | None:
        guarded = account.key() in self._guarded
        try:
            pools = self._deps.clients.batch(account.subscription).pool.list_by_batch_account(account.resource_group, account.name)
            for pool in pools:
                report.pools_seen += 1
                try:
                    self.handle_pool(PoolView.from_sdk(pool), guarded, report)
                except Exception:  # noqa: BLE001 - one pool's failure never stops the sweep
                    log.exception("pool guard: pool %s failed; the sweep goes on", getattr(pool, "id", "?"))
                    report.add("failed", getattr(pool, "id", "?"))
        except Exception as exc:  # noqa: BLE001 - one account's failure never stops the others
            log.exception("pool guard: listing pools of %s failed", account.id)
            return exc
        return None

    def _may_touch(self, pool: ArmId) -> bool:
        scopes = (*self._deps.settings.allowed_scopes, *self._deps.settings.guarded_batch_accounts)
        return any(pool.is_within(scope) for scope in scopes)

    def handle_pool(self, view: PoolView, guarded_account: bool, report: SweepReport) -> None:
        """Decide and act for one pool as listed (or read) a moment ago."""
        try:
            targets = desired_targets(view, guarded_account=guarded_account)
        except BadPoolMetadata as exc:
            log.warning("pool guard: %s; the pool is left alone", exc)
            report.add("skipped", view.id)
            return
        if targets is None:
            return
        self._protect_and_confirm_image(view)
        decision = decide(view, targets, self._deps.now(), self._policy, lambda deep: self._images.missing(view.image_id, deep))
        if decision.action is not Action.AT_TARGET and decision.action is not Action.SKIP:
            report.add("below_target", view.id)
        if decision.action is Action.AT_TARGET:
            self._finish_request(view, report)
        elif decision.action is Action.RESIZE:
            if self._patch(view, decision, resize=True):
                schedule_check_after_resize(self._deps, view.id, decision.resize_timeout)
                report.add("resized", view.id)
                log.info("pool guard: resized %s to %s (%s)", view.id, decision.targets.signature, decision.reason)
        elif decision.action is Action.ALERT:
            if self._patch(view, decision, resize=False):
                if decision.condition is Condition.IMAGE_GONE:
                    self._alert_missing(view, decision.missing)
                else:
                    self._publish(view, targets, decision)
                report.add("alerted", view.id)
        elif decision.action is Action.WAIT:
            report.add("waiting", view.id)
        else:
            report.add("skipped", view.id)
            log.debug("pool guard: %s left alone: %s", view.id, decision.reason)

    def _protect_and_confirm_image(self, view: PoolView) -> None:
        """Protect a guarded pool's image once; confirm every in-use resource still exists (a lost delete event still alerts)."""
        from .protection import ImageUse, is_recorded, protect, protectable

        if not view.image_id or protectable(view.image_id) is None:
            return
        missing = self._images.missing(view.image_id, deep=True)
        if not missing and not is_recorded(self._deps, view.id, view.image_id):
            protect(self._deps, ImageUse(view.id, view.image_id, tuple(self._images.lineage(view.image_id)), view.request_id))
        self._alert_missing(view, missing)

    def _alert_missing(self, view: PoolView, missing) -> None:
        from .image_alerts import on_resource_deleted

        seen_by = {"id": view.id, "requestId": view.request_id, "imageId": view.image_id}
        for resource_id in missing:
            on_resource_deleted(self._deps, resource_id, known_gone=True, seen_by=seen_by)

    def _patch(self, view: PoolView, decision: Decision, *, resize: bool) -> bool:
        """One conditional PATCH: new targets (when resizing) and the guard state; False when the pool moved on."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

        metadata = {**view.metadata, METADATA_GUARD_STATE: decision.state.to_metadata_value()}
        properties: dict[str, Any] = {"metadata": [{"name": k, "value": v} for k, v in sorted(metadata.items())]}
        if resize:
            properties["scaleSettings"] = {"fixedScale": {
                "targetDedicatedNodes": decision.targets.dedicated,
                "targetLowPriorityNodes": decision.targets.low_priority,
                "resizeTimeout": _iso_duration(decision.resize_timeout),
            }}
        pool = try_parse(view.id, BATCH_POOL)
        if pool is None:
            log.warning("pool guard: %r is not a canonical pool id; left alone", view.id)
            return False
        batch = self._deps.clients.batch(pool.subscription)
        try:
            batch.pool.update(pool.resource_group, pool.parent().name, pool.name, {"properties": properties},
                              etag=view.etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            log.info("pool guard: %s changed since it was read (412); skipped this round", view.id)
            return False
        except ResourceNotFoundError:
            log.info("pool guard: %s was deleted before it could be updated", view.id)
            return False
        except HttpResponseError as exc:
            if exc.status_code == 409:
                log.info("pool guard: %s refused the update (409 %s); skipped this round", view.id, getattr(exc.error, "code", ""))
                return False
            raise
        return True

    def _publish(self, view: PoolView, targets, decision: Decision) -> None:
        """The guard's own alert: the pool needs a person (a gone image goes through :meth:`_alert_missing`)."""
        alert = Alert(
            type=POOL_CANNOT_REACH_TARGET,
            severity=Severity.ERROR,
            subject=view.id,
            data={
                "pools": [{
                    "id": view.id,
                    "currentDedicatedNodes": view.current_dedicated,
                    "targetDedicatedNodes": targets.dedicated,
                    "currentLowPriorityNodes": view.current_low_priority,
                    "targetLowPriorityNodes": targets.low_priority,
                    "imageId": view.image_id,
                    "requestId": view.request_id,
                }],
                "condition": decision.condition.value,
                "errorCode": decision.error_code,
                "reason": decision.reason,
                "missingResources": list(decision.missing),
                "runbook": _RUNBOOKS[decision.condition],
            },
        )
        try:
            self._alerts.publish(alert)
        except Exception:  # noqa: BLE001 - the state write already happened; make the loss loud
            log.exception("pool guard: publishing the alert for %s failed", view.id)

    def _finish_request(self, view: PoolView, report: SweepReport) -> None:
        if view.request_id is None:
            return
        from .pipeline import PoolPipeline

        try:
            record = self._deps.ledger.get(view.request_id)
        except RequestNotFound:
            return
        except LedgerError:
            log.exception("pool guard: the ledger failed reading %s", view.request_id)
            return
        plan_pool = (record.details.get("plan") or {}).get("poolId", "")
        if record.stage is not Stage.SCALING or plan_pool.lower() != view.id.lower():
            return
        finished = PoolPipeline(self._deps).finish(
            record, Stage.READY, f"pool reached its target: {view.current_dedicated} dedicated, {view.current_low_priority} low-priority nodes")
        if finished.stage is Stage.READY:
            report.add("finished", record.request_id)


_RUNBOOKS = {
    Condition.NEEDS_A_PERSON: "Fix the cause named by errorCode (core quota, VM size, disk encryption, image plan), then resize the pool; "
                              "the guard resumes once the pool's resize error changes.",
    Condition.IMAGE_GONE: "The pool's custom image or a resource it was made from is gone: the pool cannot grow. Recreate the pool "
                          "from a new request, or restore the image lineage.",
    Condition.CIRCUIT_OPEN: "Resizes keep adding no nodes. Investigate (region capacity, VM size, subnet), then re-arm by setting pool "
                            f"metadata {METADATA_GUARD_REARM} to a new value, or change the pool's target.",
}


def _iso_duration(value: timedelta) -> str:
    import isodate

    return isodate.duration_isoformat(value)


def run_sweep(deps: Dependencies, alerts: AlertPublisher | None = None) -> SweepReport:
    """The timer's work: re-drive stuck requests, then sweep every guarded pool."""
    from .reconcile import reconcile_stuck_requests

    report = SweepReport()
    try:
        reconciled = reconcile_stuck_requests(deps)
        report.reconciled.extend(reconciled.advanced)
        report.deferred_requests = reconciled.not_yet_stuck
    except LedgerError:
        log.exception("reconcile: the ledger failed; the pool sweep goes on")
    return PoolGuard(deps, alerts).sweep(report)
