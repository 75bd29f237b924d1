"""The composition root: what the capabilities take, built once per worker, and each capability composed from it.

cosmicpython's ``bootstrap`` is the model, without its trap: nothing is built when this module is imported
(the Functions host imports ``function_app`` to index it), only on a trigger's first call (:func:`current`),
and every client inside is built on its own first use. Tests, the offline rehearsal and the benchmarks
:func:`install` their own :class:`Services` (an emulator-backed or in-memory gateway, an in-memory or
Azurite ledger), so the registered functions run unchanged. No capability sees :class:`Services`: each
takes what it uses, and this is the one place that knows how they fit together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .alerts import AlertLog, AlertPublisher, Alerts, EventGridAlertPublisher
from .arm.events import ArmEvent
from .clients import AzureClients
from .gateway.protocol import AzureGateway
from .gateway.sdk import SdkGateway
from .guard.sweep import PoolGuard
from .intake.receive import Intake
from .messaging import MessageSender
from .pipeline.routing import handle_resource_event
from .pipeline.stages import PoolPipeline
from .protection.alerts import ProtectionAlerts
from .refresh.mover import PoolRefresher
from .settings import Settings
from .store.ledger import Ledger, RequestRecord
from .store.records import RecordStore
from .store.tables import TableLedger


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    """Settings, the Azure gateway, the ledger and its records, the message sender, the alerts, and the clock;
    and each capability built from them for one invocation."""

    settings: Settings
    gateway: AzureGateway
    ledger: Ledger
    records: RecordStore
    sender: MessageSender
    alerts: Alerts
    now: Callable[[], datetime] = field(default=_utc_now)

    @classmethod
    def assemble(cls, *, settings: Settings, gateway: AzureGateway, ledger: Ledger, sender: MessageSender, publisher: AlertPublisher,
                 now: Callable[[], datetime] = _utc_now) -> Services:
        """Services whose records live in ``ledger``'s store and whose alerts go out through ``publisher``."""
        records = ledger.records()
        alerts = Alerts(publisher, AlertLog(records, timedelta(minutes=settings.alert_dedup_minutes)), now)
        return cls(settings=settings, gateway=gateway, ledger=ledger, records=records, sender=sender, alerts=alerts, now=now)

    @classmethod
    def on_clients(cls, *, settings: Settings, clients: AzureClients, ledger: Ledger, sender: MessageSender,
                   now: Callable[[], datetime] = _utc_now) -> Services:
        """Services on the Azure SDK clients: the SDK gateway, and alerts to the alerts topic."""
        return cls.assemble(settings=settings, gateway=SdkGateway(clients), ledger=ledger, sender=sender,
                            publisher=EventGridAlertPublisher(clients.alerts_publisher), now=now)

    # -- the capabilities, each with what it takes ----------------------------------------

    def pipeline(self) -> PoolPipeline:
        """The request pipeline, for one invocation."""
        return PoolPipeline(gateway=self.gateway, ledger=self.ledger, records=self.records, alerts=self.alerts, sender=self.sender,
                            settings=self.settings, now=self.now)

    def protection_alerts(self) -> ProtectionAlerts:
        """The alerts about in-use images and their lineage."""
        return ProtectionAlerts(self.records, self.alerts, self.gateway.batch, self.gateway.compute)

    def intake(self) -> Intake:
        """Intake of pool request messages, for one message."""
        return Intake(gateway=self.gateway, ledger=self.ledger, records=self.records, pipeline=self.pipeline(), sender=self.sender,
                      settings=self.settings, now=self.now)

    def route_event(self, event: ArmEvent) -> RequestRecord | None:
        """Route one ARM event (:func:`~shared.pipeline.routing.handle_resource_event`)."""
        return handle_resource_event(event, ledger=self.ledger, records=self.records, gateway=self.gateway, pipeline=self.pipeline,
                                     protection_alerts=self.protection_alerts, settings=self.settings, now=self.now)

    def refresher(self) -> PoolRefresher:
        """The refreshes' pool mover, for one look (a sweep's or a check's)."""
        return PoolRefresher(gateway=self.gateway, ledger=self.ledger, records=self.records, pipeline=self.pipeline(), sender=self.sender,
                             settings=self.settings, now=self.now)

    def guard(self) -> PoolGuard:
        """The pool guard, for one sweep or one pool check (it hands the pools being refreshed to the refresher)."""
        return PoolGuard(gateway=self.gateway, ledger=self.ledger, records=self.records, alerts=self.alerts,
                         protection_alerts=self.protection_alerts(), pipeline=self.pipeline(), refresher=self.refresher(),
                         sender=self.sender, settings=self.settings, now=self.now)


_installed: Services | None = None
_lock = threading.Lock()


def current() -> Services:
    """The installed services, or ones built from app settings on first use."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = _from_app_settings()
        return _installed


def installed() -> Services | None:
    """What is installed now, without building anything."""
    return _installed


def install(services: Services | None) -> None:
    """Use ``services`` from now on (None: build from app settings again on next use)."""
    global _installed
    with _lock:
        _installed = services


def _from_app_settings() -> Services:
    settings = Settings.from_environ()
    clients = AzureClients(settings)
    return Services.on_clients(settings=settings, clients=clients, ledger=TableLedger(clients.ledger_table()), sender=clients.message_sender())
