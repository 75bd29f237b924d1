"""Re-drives requests stuck in a pipeline stage (lost Event Grid events), ends requests whose pool is gone,
sends the replies that never went out, and ages out old final records.

Event Grid delivery is at-least-once but an event can still be lost (a
subscription misconfigured for a while, 24 h of failed retries). A request
whose stage has not changed for longer than ``STUCK_REQUEST_MINUTES`` is driven
again: the pipeline re-reads its resources and takes the next step, or fails the
request when a snapshot, image or version failed or vanished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..arm.ids import BATCH_POOL, try_parse
from ..gateway.protocol import BatchGateway, LockGateway
from ..protection.locks import recorded_pools, release
from ..settings import Settings
from ..store.ledger import PIPELINE_STAGES, Ledger, Stage, StaleRecord
from ..store.records import RecordConflict, RecordStore
from .stages import PoolPipeline

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """Requests whose stage changed, and requests not stuck long enough yet."""

    advanced: list[str] = field(default_factory=list)
    not_yet_stuck: int = 0
    failed: list[str] = field(default_factory=list)


def reconcile_stuck_requests(ledger: Ledger, pipeline: PoolPipeline, settings: Settings, now: datetime) -> ReconcileReport:
    """Drive every request that sat in one pipeline stage longer than the configured threshold."""
    report = ReconcileReport()
    threshold = now - timedelta(minutes=settings.stuck_request_minutes)
    for record in ledger.list_in_stages(PIPELINE_STAGES):
        if record.updated_at > threshold:
            report.not_yet_stuck += 1
            continue
        try:
            driven = pipeline.drive(record)
        except Exception:  # noqa: BLE001 - one request's failure never stops the others
            log.exception("reconcile: driving request %s failed", record.request_id)
            report.failed.append(record.request_id)
            continue
        if driven.stage is not record.stage:
            log.warning("reconcile: request %s was stuck in %s; now %s", record.request_id, record.stage.value, driven.stage.value)
            report.advanced.append(record.request_id)
    return report


# A final record younger than this may still have its reply on the way from the delivery that wrote it.
REPLY_GRACE = timedelta(minutes=2)


def end_pools_that_are_gone(ledger: Ledger, pipeline: PoolPipeline, batch: BatchGateway, records: RecordStore, locks: LockGateway,
                            seen_pools: set[str], listed_accounts: set[str], *, keep_locks: bool,
                            recorded: list[str] | None = None) -> list[str]:
    """Pools deleted with no event reaching us: through the Batch service API ("Operations sent to the data plane ... do
    not create events", event-grid/event-schema-resource-groups), or an event lost. Their locks are released (only
    where no other pool uses the resource: :func:`shared.protection.locks.release`) and a request still growing one
    ends FAILED with one reply. The pools looked at: those of SCALING requests and those recorded as using an image;
    only accounts listed in full count, and each absence is confirmed by a read. ``recorded``: the recorded pools, when
    the caller has read them already. Returns the requests ended FAILED."""
    scaling = {record.plan.pool.key(): record for record in ledger.list_by_stage(Stage.SCALING) if record.plan is not None}
    candidates = {key: record.plan.pool for key, record in scaling.items() if record.plan is not None}
    for pool_id in recorded if recorded is not None else recorded_pools(records):
        pool = try_parse(pool_id, BATCH_POOL)
        if pool is not None:
            candidates.setdefault(pool.key(), pool)
    failed: list[str] = []
    for key, pool in sorted(candidates.items()):
        if key in seen_pools or pool.parent().key() not in listed_accounts:
            continue
        try:
            if batch.pool(pool) is not None:
                continue  # created or listed a moment after the sweep's listing
            released = release(records, locks, pool.id, keep_locks=keep_locks)
            if released:
                log.warning("reconcile: pool %s is gone without an event; released the locks on %s", pool.id, ", ".join(released))
            record = scaling.get(key)
            if record is not None:
                pipeline.finish(record, Stage.FAILED, f"pool {pool.id} was deleted before it reached its target", owns_subject=False)
                failed.append(record.request_id)
        except Exception:  # noqa: BLE001 - one pool's failure never stops the others
            log.exception("reconcile: ending pool %s, which is gone, failed", pool.id)
    return failed


def send_pending_replies(ledger: Ledger, pipeline: PoolPipeline, now: Callable[[], datetime]) -> list[str]:
    """Send the final outcomes that never reached their ReplyTo (a send that failed after the final write)."""
    sent: list[str] = []
    for record in ledger.list_reply_pending():
        if now() - record.updated_at < REPLY_GRACE:
            continue
        try:
            if not pipeline.reply(record).reply_pending:
                sent.append(record.request_id)
        except Exception:  # noqa: BLE001 - one reply's failure never stops the others
            log.exception("reconcile: sending the reply of request %s failed", record.request_id)
    return sent


# The retention pass runs once a day; its marker is one keyed record beside the ledger.
RETENTION_KIND = "ledger-retention"
RETENTION_KEY = "last-pass"
# Records aged out per sweep: a backlog (the first pass after a long time) is worked off over several sweeps.
MAX_AGED_OUT_PER_SWEEP = 500


def age_out_final_records(ledger: Ledger, records: RecordStore, settings: Settings, now: datetime) -> list[str]:
    """Once a day, drop the body and details of answered final records older than ``LEDGER_RETENTION_DAYS``.

    Their ids, stages, reasons and times stay: an id is never freed (see :meth:`Ledger.age_out`).
    """
    today = now.date().isoformat()
    marker = records.get(RETENTION_KIND, RETENTION_KEY)
    if marker is not None and marker.data.get("day") == today:
        return []
    # Records still owed a reply wait for the pending-reply pass; leaving them in the batch would fill it with the
    # same records every sweep and the rest of a backlog would never age out.
    candidates = [record for record in ledger.list_final_before(now - timedelta(days=settings.ledger_retention_days))
                  if not record.reply_pending]
    aged: list[str] = []
    for record in candidates[:MAX_AGED_OUT_PER_SWEEP]:
        try:
            ledger.age_out(record, now)
        except StaleRecord:
            continue  # changed meanwhile: the next pass looks again
        aged.append(record.request_id)
    if len(candidates) <= MAX_AGED_OUT_PER_SWEEP:
        _mark_retention_pass(records, today)
    if aged:
        log.info("reconcile: %d final records older than %d days aged out", len(aged), settings.ledger_retention_days)
    return aged


def _mark_retention_pass(records: RecordStore, day: str) -> None:
    marker = records.get(RETENTION_KIND, RETENTION_KEY)
    try:
        if marker is None:
            records.insert(RETENTION_KIND, RETENTION_KEY, {"day": day})
        else:
            records.replace(marker, {"day": day})
    except RecordConflict:
        pass  # another sweep marked it
