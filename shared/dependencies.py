"""What the handlers need, built once per worker from app settings.

Triggers call :func:`current` to get them; tests and the offline rehearsal
install their own (emulator-backed clients, an in-memory or Azurite ledger)
with :func:`install`, so the registered functions run unchanged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from .clients import AzureClients
from .ledger import Ledger
from .messaging import MessageSender
from .settings import Settings


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Dependencies:
    settings: Settings
    clients: AzureClients
    ledger: Ledger
    sender: MessageSender
    now: Callable[[], datetime] = field(default=_utc_now)


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
    from .ledger import TableLedger

    settings = Settings.from_environ()
    clients = AzureClients(settings)
    ledger = TableLedger(clients.ledger_table())
    return Dependencies(settings=settings, clients=clients, ledger=ledger, sender=clients.message_sender())
