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

from ..gateway.protocol import BatchGateway
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


def fail_requests_whose_pool_is_gone(ledger: Ledger, pipeline: PoolPipeline, batch: BatchGateway, seen_pools: set[str],
                                     listed_accounts: set[str]) -> list[str]:
    """End FAILED every SCALING request whose pool is gone: deleted through ARM or the Batch service API
    (which raises no ARM event). Only accounts listed in full count; each absence is confirmed by a read."""
    failed: list[str] = []
    for record in ledger.list_by_stage(Stage.SCALING):
        plan = record.plan
        if plan is None or plan.pool.key() in seen_pools or plan.pool.parent().key() not in listed_accounts:
            continue
        pool = plan.pool
        if batch.pool(pool) is not None:
            continue  # created or listed a moment after the sweep's listing
        try:
            pipeline.finish(record, Stage.FAILED, f"pool {pool.id} was deleted before it reached its target", owns_subject=False)
        except Exception:  # noqa: BLE001 - one request's failure never stops the others
            log.exception("reconcile: failing request %s whose pool is gone failed", record.request_id)
            continue
        failed.append(record.request_id)
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
