"""The gateway on the real Azure SDK clients: one per service, sharing one lazy client factory."""

from __future__ import annotations

from ..clients import AzureClients
from .batch import SdkBatch
from .compute import SdkCompute
from .graph import SdkResourceGraph
from .locks import SdkLocks
from .monitor import SdkMonitor


class SdkGateway:
    """:class:`~shared.gateway.protocol.AzureGateway` on ``clients``: no client is built before its first call."""

    def __init__(self, clients: AzureClients) -> None:
        self.compute = SdkCompute(clients)
        self.batch = SdkBatch(clients)
        self.locks = SdkLocks(clients)
        self.monitor = SdkMonitor(clients)
        self.graph = SdkResourceGraph(clients)
