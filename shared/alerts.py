"""Alerts for operators: typed, published as CloudEvents 1.0 to the alerts topic.

A fuller alerts capability is a later issue; this module is the small seam the
pool guard needs: one :class:`Alert` model, one publisher, one log line each.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .clients import AzureClients

log = logging.getLogger(__name__)

ALERT_SOURCE = "/custom-image-pools/pool-guard"
POOL_CANNOT_REACH_TARGET = "CustomImagePool.PoolCannotReachTarget"
IN_USE_IMAGE_DELETED = "CustomImagePool.InUseImageDeleted"


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

    def payload(self) -> dict[str, Any]:
        """The CloudEvent ``data``: the alert's data plus its severity."""
        return {**self.data, "severity": self.severity.value}


class AlertPublisher(Protocol):
    def publish(self, alert: Alert) -> None: ...


class EventGridAlertPublisher:
    """Publishes alerts through ``clients.alerts_publisher()`` (an ``EventGridPublisherClient``)."""

    def __init__(self, clients: "AzureClients") -> None:
        self._clients = clients

    def publish(self, alert: Alert) -> None:
        """Send one CloudEvent and log one structured line; publishing errors propagate."""
        from azure.core.messaging import CloudEvent

        event = CloudEvent(source=ALERT_SOURCE, type=alert.type, subject=alert.subject, data=alert.payload())
        self._clients.alerts_publisher().send([event])
        log.warning("alert %s", json.dumps({"type": alert.type, "subject": alert.subject, **alert.payload()}, default=str, sort_keys=True))
