"""Alerts for operators: the catalogue of alert types, and how one is raised.

Every alert type is one :class:`AlertKind` below (its condition, CloudEvent type,
severity, source and runbook); adding an alert type means adding one here and
calling :meth:`Alerts.raise_alert` where the condition is seen.
Alerts are CloudEvents 1.0 on the alerts topic; ``subject`` is the resource the
alert is about and ``data`` carries what a person needs to act. Every published
alert is also one structured log line at its severity's level.

Deduplication (:class:`AlertLog`): an alert is published at most once per
``ALERT_DEDUP_MINUTES`` for its dedup key (type and subject, unless the caller
gives a finer one), however many duplicate events or sweeps see it. The log is a
claim record in the ledger's store: a conditional insert/replace claims the
alert, the CloudEvent is published, then the claim is marked sent; a claim left
pending by a crashed worker expires after ``CLAIM_LEASE``.

The publish-failure policy, the same for every caller: a publish that still
fails after the SDK's retries releases the claim and raises, so the trigger's
event or message is delivered again and the alert is not lost. Callers record
that they alerted (in the ledger, in pool metadata) only after
:meth:`Alerts.raise_alert` returns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from .errors import TransientError
from .naming import LOCK_NAME, METADATA_GUARD_REARM
from .store.records import KeyedRecord, RecordConflict, RecordStore

log = logging.getLogger(__name__)

GUARD_SOURCE = "/custom-image-pools/pool-guard"
PROTECTION_SOURCE = "/custom-image-pools/image-protection"
PIPELINE_SOURCE = "/custom-image-pools/pipeline"

ALERT_LOG_KIND = "alert"
# The log record attribute that marks a published alert's log line (its type, severity and subject).
ALERT_LOG_FIELD = "customImagePoolAlert"
# A claim not confirmed within this time belongs to a worker that died mid-publish.
CLAIM_LEASE = timedelta(minutes=2)


class Severity(str, Enum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"

    @property
    def log_level(self) -> int:
        # Each severity at its own level, so a log alert rule can tell critical from error.
        return {Severity.CRITICAL: logging.CRITICAL, Severity.ERROR: logging.ERROR}.get(self, logging.WARNING)


@dataclass(frozen=True)
class AlertKind:
    """One entry of the catalogue: what an alert of this condition is called, how bad it is, what to do."""

    condition: str
    type: str
    severity: Severity
    source: str
    runbook: str

    def alert(self, subject: str, data: dict[str, Any], *, dedup_key: str | None = None) -> Alert:
        """An alert of this kind about ``subject``; ``data`` gets the condition and runbook."""
        return Alert(
            type=self.type,
            severity=self.severity,
            subject=subject,
            source=self.source,
            data={"condition": self.condition, **data, "runbook": self.runbook},
            dedup_key=dedup_key,
        )


PROTECTION_REMOVED = AlertKind(
    "protection-removed", "CustomImagePool.ProtectionRemoved", Severity.WARNING, PROTECTION_SOURCE,
    f"Someone removed the {LOCK_NAME} lock from a resource a pool still uses: the delete is probably next. Ask who removed "
    f"it (Activity Log, the lock's delete operation); if the resource must stay, re-create the lock (CanNotDelete, name "
    f"{LOCK_NAME}); if it must go, move the pools to a new image first.")
DELETION_BLOCKED = AlertKind(
    "deletion-blocked", "CustomImagePool.DeletionBlocked", Severity.WARNING, PROTECTION_SOURCE,
    f"A delete of a protected resource was refused by its {LOCK_NAME} lock: nothing broke. Tell the caller (Activity Log) "
    "that the pools listed still use it; delete the pools (or move them to a new image) before deleting it.")
IN_USE_IMAGE_DELETED = AlertKind(
    "in-use-image-deleted", "CustomImagePool.InUseImageDeleted", Severity.CRITICAL, PROTECTION_SOURCE,
    "The pools listed can no longer grow: every resize will fail with AllocationFailed (running nodes keep working). "
    "Do not resize them. Restore the resource if you can (a snapshot or image with the same content), or submit a new "
    "pool request from a fresh image and move the workload, then delete these pools.")
PROTECTION_AUDIT_BLIND = AlertKind(
    "protection-audit-blind", "CustomImagePool.ProtectionAuditBlind", Severity.WARNING, PROTECTION_SOURCE,
    f"The guard's protection audit could not read the scope named (its management locks or its Activity Log) for several "
    f"sweeps in a row: a removed {LOCK_NAME} lock or a refused delete there goes unseen. Give the app's identity read access "
    "there again (Reader on the subscription covers both; the error says which action was refused), or, if the scope is "
    "throttled, wait: the audit reads the missed window as soon as it can, and this alert is raised again only after a good read.")
REQUEST_FAILED = AlertKind(
    "request-failed", "CustomImagePool.RequestFailed", Severity.ERROR, PIPELINE_SOURCE,
    "The pool request failed for the reason given; the resources it created so far stay. Fix the cause (quota, "
    "permissions, source VM prerequisites) and submit the request again with a new requestId.")
POOL_NEEDS_A_PERSON = AlertKind(
    "needs-a-person", "CustomImagePool.PoolCannotReachTarget", Severity.ERROR, GUARD_SOURCE,
    "Fix the cause named by errorCode (core quota, VM size, disk encryption, image plan), then resize the pool or set "
    "its metadata cip-guard-rearm to a new value; the guard resumes then (or once the pool's resize error changes).")
POOL_CIRCUIT_OPEN = AlertKind(
    "circuit-open", "CustomImagePool.PoolCannotReachTarget", Severity.ERROR, GUARD_SOURCE,
    "Resizes keep adding no nodes. Investigate (region capacity, VM size, subnet), then re-arm by setting pool "
    f"metadata {METADATA_GUARD_REARM} to a new value, or change the pool's target.")
POOL_TARGET_UNKNOWN = AlertKind(
    "target-unknown", "CustomImagePool.PoolCannotReachTarget", Severity.ERROR, GUARD_SOURCE,
    "The pool's cip-target-* metadata could not be read (the reason says which key and value) and no request in the "
    "ledger gives its target, so the guard leaves the pool as it is. Set cip-target-dedicated and "
    "cip-target-low-priority to the node counts you want (or remove them to keep the pool's own target).")
POOL_TARGET_UNREADABLE = AlertKind(
    "target-unreadable", "CustomImagePool.PoolCannotReachTarget", Severity.ERROR, GUARD_SOURCE,
    "The pool's cip-target-* metadata could not be read (the reason says which key and value), so the guard went back to "
    "the target its request asked for (from the ledger) and wrote it into the metadata. If you meant another target, "
    "resize the pool itself: the guard adopts a person's resize.")

# Every kind of alert: what the ops notifications and the image inventory read alerts against.
ALERT_KINDS: tuple[AlertKind, ...] = (PROTECTION_REMOVED, DELETION_BLOCKED, IN_USE_IMAGE_DELETED, PROTECTION_AUDIT_BLIND, REQUEST_FAILED,
                                      POOL_NEEDS_A_PERSON, POOL_CIRCUIT_OPEN, POOL_TARGET_UNREADABLE, POOL_TARGET_UNKNOWN)

@dataclass(frozen=True)
class Alert:
    """One alert: ``subject`` is the resource it is about; ``data`` carries what a person needs to act."""

    type: str
    severity: Severity
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    source: str = GUARD_SOURCE
    # Alerts with the same key are published at most once per window; default: type and subject.
    dedup_key: str | None = None

    @property
    def key(self) -> str:
        return self.dedup_key or f"{self.type}|{self.subject}"

    def payload(self) -> dict[str, Any]:
        """The CloudEvent ``data``: the alert's data plus its severity."""
        return {**self.data, "severity": self.severity.value}

    def log_line(self) -> str:
        """The structured log line: the CloudEvent's type, subject and data as one JSON object.

        Two fields more, each one line of text for a notification (infra/app/alert-lines.kql makes them the
        alert rule's dimensions): ``poolsAtRisk`` (each pool with its node counts and request) and ``details``
        (error code, reason, stage, requests).
        """
        summary = {"poolsAtRisk": self.pools_at_risk(), "details": self.details()}
        return json.dumps({"type": self.type, "subject": self.subject, **self.payload(), **summary}, default=str, sort_keys=True)

    def pools_at_risk(self) -> str:
        """``pool render-pool in teambatch: 300/1200 dedicated, 0/0 low-priority (request team-a-render-001)``, ``; `` between pools."""
        described = []
        for pool in self.data.get("pools") or []:
            account, _, name = str(pool.get("id", "")).rpartition("/pools/")
            described.append(
                f"pool {name} in {account.rpartition('/')[2]}: {pool.get('currentDedicatedNodes')}/{pool.get('targetDedicatedNodes')} dedicated, "
                f"{pool.get('currentLowPriorityNodes')}/{pool.get('targetLowPriorityNodes')} low-priority"
                + (f" (request {pool['requestId']})" if pool.get("requestId") else ""))
        return "; ".join(described) or "none"

    def details(self) -> str:
        """What else the alert says, in one line: its error code, reason, stage and requests (``-`` when none)."""
        parts = [f"{label}: {self.data[key]}" for key, label in (("errorCode", "error code"), ("reason", "reason"), ("stage", "stage"))
                 if self.data.get(key)]
        if self.data.get("requestIds"):
            parts.append("requests: " + ", ".join(self.data["requestIds"]))
        return "; ".join(parts) or "-"


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


def resource_alert(kind: AlertKind, resource_id: str, *, pools: list[PoolImpact], request_ids: list[str], **extra: Any) -> Alert:
    """An alert about one resource in the common payload shape (``firstSeen`` is added when published)."""
    return kind.alert(
        resource_id,
        {"resourceId": resource_id, "pools": [p.to_data() for p in pools], "requestIds": sorted(set(request_ids)), **extra},
    )


class AlertPublisher(Protocol):
    def publish(self, alert: Alert) -> None: ...


class EventGridAlertPublisher:
    """Publishes alerts as CloudEvents through an ``EventGridPublisherClient`` made on first use."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    def publish(self, alert: Alert) -> None:
        """Send one CloudEvent (the SDK retries 5xx) and log one structured line; publishing errors propagate."""
        from azure.core.messaging import CloudEvent  # azure-core: loaded on first use (cold start)

        event = CloudEvent(source=alert.source, type=alert.type, subject=alert.subject, data=alert.payload())
        self._client().send([event])
        # The line is the alert itself, at its severity's level (so a log alert rule can tell critical from error);
        # ALERT_LOG_FIELD marks it as one, so log readers never count it as the function failing.
        log.log(alert.severity.log_level, "alert %s", alert.log_line(),
                extra={ALERT_LOG_FIELD: {"type": alert.type, "severity": alert.severity.value, "subject": alert.subject}})


class AlertInProgress(TransientError):
    """Another delivery is publishing this very alert right now: retry later (it may still fail)."""


class AlertLog:
    """Which alerts were published when, one record per dedup key, in the ledger's store."""

    def __init__(self, records: RecordStore, window: timedelta) -> None:
        self._records = records
        self._window = window

    def recently_sent(self, key: str, now: datetime) -> bool:
        """Whether the alert with this key went out within the window (a cheap check before gathering its payload)."""
        current = self._records.get(ALERT_LOG_KIND, key)
        return current is not None and self._sent_within_window(current.data, now)

    def claim(self, alert: Alert, now: datetime) -> KeyedRecord | None:
        """Claim the right to publish ``alert``; None when it was published within the window."""
        key = alert.key
        for _ in range(3):
            current = self._records.get(ALERT_LOG_KIND, key)
            claim = {"state": "pending", "claimedAt": now.isoformat(), "firstSeen": now.isoformat()}
            try:
                if current is None:
                    return self._records.insert(ALERT_LOG_KIND, key, claim)
                data = current.data
                if self._sent_within_window(data, now):
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

    def _sent_within_window(self, data: dict[str, Any], now: datetime) -> bool:
        return data.get("state") == "sent" and now - datetime.fromisoformat(data["sentAt"]) < self._window


class Alerts:
    """Raises alerts: deduplicated by the alert log, published, confirmed; a failed publish raises."""

    def __init__(self, publisher: AlertPublisher, log_of_alerts: AlertLog, now: Callable[[], datetime]) -> None:
        self.publisher = publisher
        self.log = log_of_alerts
        self._now = now

    def recently_sent(self, kind: AlertKind, subject: str) -> bool:
        """Whether an alert of ``kind`` about ``subject`` went out within the window."""
        return self.log.recently_sent(f"{kind.type}|{subject}", self._now())

    def raise_alert(self, alert: Alert) -> bool:
        """Publish ``alert`` unless the same one went out within the dedup window; True when published.

        A publish that still fails after the SDK's retries raises (after undoing
        the claim), so the trigger's event or message is delivered again.
        """
        claim = self.log.claim(alert, self._now())
        if claim is None:
            log.info("alert %s for %s already published within the dedup window; not repeated", alert.type, alert.subject)
            return False
        stamped = replace(alert, data={**alert.data, "firstSeen": claim.data["firstSeen"]})
        try:
            self.publisher.publish(stamped)
        except Exception:
            self.log.release(claim)
            log.error("alert %s for %s could not be published; the delivery will be retried: %s", alert.type, alert.subject,
                      stamped.log_line())
            raise
        self.log.confirm(claim, self._now())
        return True
