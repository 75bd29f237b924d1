"""What the handlers need, built once per worker from app settings.

Triggers call :func:`current` to get them; tests and the offline rehearsal
install their own (emulator-backed clients, an in-memory or Azurite ledger)
with :func:`install`, so the registered functions run unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .alerts import AlertLog, Alerts, EventGridAlertPublisher
from .clients import AzureClients
from .gateway.protocol import AzureGateway
from .gateway.sdk import SdkGateway
from .messaging import MessageSender
from .settings import Settings
from .store.ledger import Ledger
from .store.records import RecordStore
from .store.tables import TableLedger


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dependencies:
    """Settings, the Azure gateway, the ledger and its records, the message sender, the alerts, and the clock."""

    settings: Settings
    gateway: AzureGateway
    ledger: Ledger
    records: RecordStore
    sender: MessageSender
    alerts: Alerts
    now: Callable[[], datetime] = field(default=_utc_now)

    @classmethod
    def assemble(
        cls,
        *,
        settings: Settings,
        clients: AzureClients,
        ledger: Ledger,
        sender: MessageSender,
        now: Callable[[], datetime] = _utc_now,
    ) -> Dependencies:
        """Dependencies on ``clients``: records in ``ledger``'s store, alerts to the alerts topic."""
        records = ledger.records()
        alerts = Alerts(
            EventGridAlertPublisher(clients.alerts_publisher),
            AlertLog(records, timedelta(minutes=settings.alert_dedup_minutes)),
            now,
        )
        return cls(settings=settings, gateway=SdkGateway(clients), ledger=ledger, records=records, sender=sender, alerts=alerts, now=now)


_installed: Dependencies | None = None
_lock = threading.Lock()


def current() -> Dependencies:
    """The installed dependencies, or ones built from app settings on first use."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = _from_app_settings()
        return _installed


def installed() -> Dependencies | None:
    """What is installed now, without building anything."""
    return _installed


def install(dependencies: Dependencies | None) -> None:
    """Use ``dependencies`` from now on (None: build from app settings again on next use)."""
    global _installed
    with _lock:
        _installed = dependencies


def _from_app_settings() -> Dependencies:
    settings = Settings.from_environ()
    clients = AzureClients(settings)
    return Dependencies.assemble(
        settings=settings, clients=clients, ledger=TableLedger(clients.ledger_table()), sender=clients.message_sender()
    )
