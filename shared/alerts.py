"""Alerts for operators: typed, deduplicated, published as CloudEvents 1.0 to the alerts topic.

One CloudEvent type per condition (fixed strings below); ``subject`` is the
resource the alert is about and ``data`` carries what a person needs to act
(see :meth:`Alert.payload`). Every published alert is also one structured log
line (WARNING, or ERROR for error and critical), with the same fields.

Deduplication (:class:`AlertLog`): the same type for the same subject is
published at most once per ``ALERT_DEDUP_MINUTES``, however many duplicate
events or sweeps see it. The log is a claim record in the ledger's store
(:mod:`shared.records`): a conditional insert/replace claims the alert, the
CloudEvent is published, then the claim is marked sent. A failed publish
deletes the claim and raises, so the redelivered event alerts again; a claim
left pending by a crashed worker expires after ``CLAIM_LEASE``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from .records import KeyedRecord, RecordConflict, RecordStore

if TYPE_CHECKING:
    from .clients import AzureClients
    from .dependencies import Dependencies

log = logging.getLogger(__name__)

ALERT_SOURCE = "/custom-image-pools/pool-guard"
PROTECTION_SOURCE = "/custom-image-pools/image-protection"
PIPELINE_SOURCE = "/custom-image-pools/pipeline"

POOL_CANNOT_REACH_TARGET = "CustomImagePool.PoolCannotReachTarget"
IN_USE_IMAGE_DELETED = "CustomImagePool.InUseImageDeleted"
PROTECTION_REMOVED = "CustomImagePool.ProtectionRemoved"
DELETION_BLOCKED = "CustomImagePool.DeletionBlocked"
REQUEST_FAILED = "CustomImagePool.RequestFailed"

ALERT_LOG_KIND = "alert"
# A claim not confirmed within this time belongs to a worker that died mid-publish.
CLAIM_LEASE = timedelta(minutes=2)


class Severity(str, Enum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Alert:
    """One alert: ``subject`` is the resource it is about; ``data`` carries what a person needs to act."""

    type: str
    severity: Severity
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    source: str = ALERT_SOURCE

    def payload(self) -> dict[str, Any]:
        """The CloudEvent ``data``: the alert's data plus its severity."""
        return {**self.data, "severity": self.severity.value}

    def log_line(self) -> str:
        """The structured log line: the CloudEvent's type, subject and data as one JSON object."""
        return json.dumps({"type": self.type, "subject": self.subject, **self.payload()}, default=str, sort_keys=True)


@dataclass(frozen=True)
class PoolImpact:
    """A pool an alert concerns, with its node counts as last read."""

    id: str
    current_dedicated: int
    target_dedicated: int
    current_low_priority: int
    target_low_priority: int
    image_id: str | None = None
    request_id: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "currentDedicatedNodes": self.current_dedicated,
            "targetDedicatedNodes": self.target_dedicated,
            "currentLowPriorityNodes": self.current_low_priority,
            "targetLowPriorityNodes": self.target_low_priority,
            "imageId": self.image_id,
            "requestId": self.request_id,
        }


def resource_alert(
    alert_type: str,
    severity: Severity,
    resource_id: str,
    *,
    condition: str,
    pools: list[PoolImpact],
    request_ids: list[str],
    runbook: str,
    source: str = PROTECTION_SOURCE,
    **extra: Any,
) -> Alert:
    """An alert about one resource in the common payload shape (``firstSeen`` is added when published)."""
    return Alert(
        type=alert_type,
        severity=severity,
        subject=resource_id,
        source=source,
        data={
            "condition": condition,
            "resourceId": resource_id,
            "pools": [p.to_data() for p in pools],
            "requestIds": sorted(set(request_ids)),
            "runbook": runbook,
            **extra,
        },
    )


class AlertPublisher(Protocol):
    def publish(self, alert: Alert) -> None: ...


class EventGridAlertPublisher:
    """Publishes alerts through ``clients.alerts_publisher()`` (an ``EventGridPublisherClient``)."""

    def __init__(self, clients: "AzureClients") -> None:
        self._clients = clients

    def publish(self, alert: Alert) -> None:
        """Send one CloudEvent (the SDK retries 5xx) and log one structured line; publishing errors propagate."""
        from azure.core.messaging import CloudEvent

        event = CloudEvent(source=alert.source, type=alert.type, subject=alert.subject, data=alert.payload())
        self._clients.alerts_publisher().send([event])
        level = logging.WARNING if alert.severity is Severity.WARNING else logging.ERROR
        log.log(level, "alert %s", alert.log_line())


class AlertInProgress(RuntimeError):
    """Another delivery is publishing this very alert right now: retry later (it may still fail)."""


class AlertLog:
    """Which alerts were published when, one record per (type, subject), in the ledger's store."""

    def __init__(self, records: RecordStore, window: timedelta) -> None:
        self._records = records
        self._window = window

    @staticmethod
    def _key(alert: Alert) -> str:
        return f"{alert.type}|{alert.subject}"

    def recently_sent(self, alert_type: str, subject: str, now: datetime) -> bool:
        """Whether this alert went out within the window (a cheap check before gathering its payload)."""
        current = self._records.get(ALERT_LOG_KIND, f"{alert_type}|{subject}")
        data = current.data if current is not None else {}
        return data.get("state") == "sent" and now - datetime.fromisoformat(data["sentAt"]) < self._window

    def claim(self, alert: Alert, now: datetime) -> KeyedRecord | None:
        """Claim the right to publish ``alert``; None when it was published within the window."""
        key = self._key(alert)
        for _ in range(3):
            current = self._records.get(ALERT_LOG_KIND, key)
            claim = {"state": "pending", "claimedAt": now.isoformat(), "firstSeen": now.isoformat()}
            try:
                if current is None:
                    return self._records.insert(ALERT_LOG_KIND, key, claim)
                data = current.data
                if data.get("state") == "sent" and now - datetime.fromisoformat(data["sentAt"]) < self._window:
                    return None
                if data.get("state") == "pending" and now - datetime.fromisoformat(data["claimedAt"]) < CLAIM_LEASE:
                    raise AlertInProgress(f"alert {key} is being published by another delivery")
                if data.get("state") == "pending":
                    claim["firstSeen"] = data.get("firstSeen", claim["firstSeen"])
                return self._records.replace(current, claim)
            except RecordConflict:
                continue
        raise AlertInProgress(f"alert {key} is contended; retry later")

    def confirm(self, claim: KeyedRecord, now: datetime) -> None:
        """Mark the claimed alert as published at ``now``."""
        try:
            self._records.replace(claim, {**claim.data, "state": "sent", "sentAt": now.isoformat()})
        except RecordConflict:
            # Our lease expired and another delivery took over; it publishes and confirms itself.
            log.info("alert log: claim %s was taken over before it was confirmed", claim.key)

    def release(self, claim: KeyedRecord) -> None:
        """Undo a claim whose publish failed, so the next delivery alerts."""
        try:
            self._records.delete(claim)
        except RecordConflict:
            pass


def alert_log(deps: "Dependencies") -> AlertLog:
    """The alert log in the ledger's store, with the configured window."""
    return AlertLog(deps.ledger.records(), timedelta(minutes=deps.settings.alert_dedup_minutes))


def raise_alert(deps: "Dependencies", alert: Alert, publisher: AlertPublisher | None = None) -> bool:
    """Publish ``alert`` unless the same one went out within the dedup window; True when published.

    A publish that still fails after the SDK's retries raises (after undoing
    the claim), so the trigger's event or message is delivered again.
    """
    log_of_alerts = alert_log(deps)
    claim = log_of_alerts.claim(alert, deps.now())
    if claim is None:
        log.info("alert %s for %s already published within %s minutes; not repeated", alert.type, alert.subject,
                 deps.settings.alert_dedup_minutes)
        return False
    stamped = replace(alert, data={**alert.data, "firstSeen": claim.data["firstSeen"]})
    try:
        (publisher or EventGridAlertPublisher(deps.clients)).publish(stamped)
    except Exception:
        log_of_alerts.release(claim)
        log.error("alert %s for %s could not be published; the delivery will be retried: %s", alert.type, alert.subject,
                  stamped.log_line())
        raise
    log_of_alerts.confirm(claim, deps.now())
    return True
