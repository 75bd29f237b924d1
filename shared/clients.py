"""Builds the Azure SDK clients the handlers use: lazily, once each, from settings.

Nothing is built or imported at import time (the Functions host imports
``function_app`` to index it, and a cold start pays for every module loaded).
Keyword arguments for azure-core (``transport=``, ``polling_interval=``,
``retry_total=`` ...) are passed to every ARM and Event Grid client, so the
same production code runs against the local Azure emulator.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .messaging import MessageSender, ServiceBusMessageSender
from .settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient
    from azure.eventgrid import EventGridPublisherClient
    from azure.mgmt.batch import BatchManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.monitor import MonitorManagementClient
    from azure.mgmt.resource.locks import ManagementLockClient
    from azure.mgmt.resourcegraph import ResourceGraphClient

# Azurite's published development account (not a secret: the same on every machine).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzureClients:
    """One place that knows how each client is built.

    :param settings: parsed app settings.
    :param credential: a token credential; defaults to ``DefaultAzureCredential``
        (managed identity in Azure, developer sign-in locally).
    :param message_sender: where Service Bus messages go; defaults to azure-servicebus.
    :param client_kwargs: azure-core keyword arguments for every ARM and Event Grid client.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        message_sender: MessageSender | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.settings = settings
        self._credential = credential
        self._message_sender = message_sender
        self._client_kwargs = client_kwargs
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @property
    def credential(self) -> TokenCredential:
        if self._credential is None:
            # Azure SDK, loaded on first use (cold start).
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential

    def _cached(self, kind: str, key: str, build):
        with self._lock:
            client = self._cache.get((kind, key))
            if client is None:
                client = self._cache[(kind, key)] = build()
            return client

    def _arm_kwargs(self) -> dict[str, Any]:
        return {"base_url": self.settings.arm_endpoint, **self._client_kwargs}

    def _per_subscription(self, client_type: Any, subscription_id: str) -> Any:
        """One ARM management client of ``client_type`` per subscription, built on first use."""
        return self._cached(client_type.__name__, subscription_id.lower(),
                            lambda: client_type(self.credential, subscription_id, **self._arm_kwargs()))

    def compute(self, subscription_id: str) -> ComputeManagementClient:
        """Compute client for one subscription."""
        from azure.mgmt.compute import ComputeManagementClient  # Azure SDK: first use (cold start)

        return self._per_subscription(ComputeManagementClient, subscription_id)

    def batch(self, subscription_id: str) -> BatchManagementClient:
        """Batch management client for one subscription."""
        from azure.mgmt.batch import BatchManagementClient  # Azure SDK: first use (cold start)

        return self._per_subscription(BatchManagementClient, subscription_id)

    def locks(self, subscription_id: str) -> ManagementLockClient:
        """Management lock client for one subscription."""
        from azure.mgmt.resource.locks import ManagementLockClient  # Azure SDK: first use (cold start)

        return self._per_subscription(ManagementLockClient, subscription_id)

    def monitor(self, subscription_id: str) -> MonitorManagementClient:
        """Azure Monitor client for one subscription (its Activity Log)."""
        from azure.mgmt.monitor import MonitorManagementClient  # Azure SDK: first use (cold start)

        return self._per_subscription(MonitorManagementClient, subscription_id)

    def resource_graph(self) -> ResourceGraphClient:
        """Resource Graph client (tenant-level: each query names its subscriptions)."""

        def build():
            # Azure SDK, loaded on first use (cold start).
            from azure.mgmt.resourcegraph import ResourceGraphClient

            return ResourceGraphClient(self.credential, **self._arm_kwargs())

        return self._cached("resourcegraph", "", build)

    def alerts_publisher(self) -> EventGridPublisherClient:
        """Publisher for the alerts custom topic (CloudEvents 1.0)."""

        def build():
            # Azure SDK, loaded on first use (cold start).
            from azure.eventgrid import EventGridPublisherClient

            return EventGridPublisherClient(self.settings.alerts_topic_endpoint, self.credential, **self._client_kwargs)

        return self._cached("alerts", "", build)

    def ledger_table(self) -> TableClient:
        """The ledger's table. A loopback endpoint is Azurite, which takes its well-known key."""

        def build():
            # Azure SDK, loaded on first use (cold start).
            from azure.data.tables import TableClient

            endpoint = self.settings.ledger_table_endpoint
            if urlparse(endpoint).hostname in ("127.0.0.1", "localhost"):
                # Azure SDK, loaded on first use (cold start).
                from azure.core.credentials import AzureNamedKeyCredential

                credential: Any = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
            else:
                credential = self.credential
            return TableClient(endpoint, self.settings.ledger_table_name, credential=credential)

        return self._cached("ledger", "", build)

    def message_sender(self) -> MessageSender:
        """Sender for replies and scheduled checks."""
        if self._message_sender is None:
            self._message_sender = ServiceBusMessageSender(self.settings.servicebus_namespace, self.credential)
        return self._message_sender
