"""Re-drives requests stuck in a pipeline stage: recovers from lost Event Grid events.

Event Grid delivery is at-least-once but an event can still be lost (a
subscription misconfigured for a while, 24 h of failed retries). A request
whose stage has not changed for longer than ``STUCK_REQUEST_MINUTES`` is driven
again: the pipeline re-reads its resources and takes the next step, or fails the
request when a snapshot, image or version failed or vanished.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from ..dependencies import Dependencies
from ..store.ledger import PIPELINE_STAGES
from .stages import PoolPipeline

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """Requests whose stage changed, and requests not stuck long enough yet."""

    advanced: list[str] = field(default_factory=list)
    not_yet_stuck: int = 0
    failed: list[str] = field(default_factory=list)


def reconcile_stuck_requests(deps: Dependencies) -> ReconcileReport:
    """Drive every request that sat in one pipeline stage longer than the configured threshold."""
    report = ReconcileReport()
    threshold = deps.now() - timedelta(minutes=deps.settings.stuck_request_minutes)
    pipeline = PoolPipeline(deps)
    for stage in PIPELINE_STAGES:
        for record in deps.ledger.list_by_stage(stage):
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
