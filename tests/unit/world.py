"""A world for the fast unit tests: the fake Azure, the in-memory ledger, a recording sender and alert publisher, a clock.

Everything the composition root takes, with nothing behind it but memory: the capabilities run as in production
(``Services`` composes them), and a test asserts the state they leave (resources, locks, records, messages, alerts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared import settings as names
from shared.alerts import Alert
from shared.arm.ids import BATCH_ACCOUNT, GALLERY, VIRTUAL_MACHINE, parse_arm_id
from shared.arm.views import BatchAccountView, DiskView, GalleryView, VirtualMachineView, VmSkuView
from shared.bootstrap import Services
from shared.messaging import OutgoingMessage
from shared.settings import Settings
from shared.store.memory import InMemoryLedger
from tests.fake_gateway import FakeAzure

SUB = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-imaging"
VM = parse_arm_id(f"{RG}/providers/Microsoft.Compute/virtualMachines/builder", VIRTUAL_MACHINE)
GALLERY_ID = parse_arm_id(f"{RG}/providers/Microsoft.Compute/galleries/teamgallery", GALLERY)
ACCOUNT = parse_arm_id(f"/subscriptions/{SUB}/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/teambatch", BATCH_ACCOUNT)
REPLIES = "team-a-replies"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def request_body(request_id: str = "r1", pool_name: str = "render-pool", nodes: int = 4) -> dict:
    """A pool request from the seeded VM, through the seeded gallery, into the seeded account."""
    return {
        "requestId": request_id,
        "requestedBy": "team-a@contoso.com",
        "source": {"virtualMachineId": VM.id},
        "image": {"galleryId": GALLERY_ID.id, "hyperVGeneration": "V2"},
        "pool": {"batchAccountId": ACCOUNT.id, "poolName": pool_name, "vmSize": "Standard_D4ds_v5",
                 "nodeAgentSkuId": "batch.node.ubuntu 24.04", "targetDedicatedNodes": nodes, "resizeTimeout": "PT25M"},
    }


class RecordingSender:
    """A message sender that keeps what it sent (a queue for ``fail_on``'s name refuses the next send)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, OutgoingMessage]] = []
        self.fail_on: str | None = None

    def send(self, queue: str, message: OutgoingMessage) -> None:
        if queue == self.fail_on:
            self.fail_on = None
            raise ConnectionError(f"{queue} is unreachable (injected)")
        self.sent.append((queue, message))

    def to(self, queue: str) -> list[OutgoingMessage]:
        return [message for name, message in self.sent if name == queue]


class RecordingPublisher:
    """An alert publisher that keeps what it published."""

    def __init__(self) -> None:
        self.published: list[Alert] = []

    def publish(self, alert: Alert) -> None:
        self.published.append(alert)


@dataclass
class Clock:
    moment: datetime = START

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class UnitWorld:
    """The seeded fake (a VM with two data disks, a gallery, a Batch account) and the services on it."""

    azure: FakeAzure = field(default_factory=FakeAzure)
    ledger: InMemoryLedger = field(default_factory=InMemoryLedger)
    sender: RecordingSender = field(default_factory=RecordingSender)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    clock: Clock = field(default_factory=Clock)
    settings_overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        disks = [DiskView(lun, f"{RG}/providers/Microsoft.Compute/disks/builder_DataDisk_{lun}") for lun in (0, 1)]
        self.azure.add(VirtualMachineView(VM.id, "westeurope", "Succeeded", DiskView(None, f"{RG}/providers/Microsoft.Compute/disks/builder_OsDisk_1", "Linux"),
                                          tuple(disks), (), True, "canonical", None, ""))
        self.azure.add(GalleryView(GALLERY_ID.id, "westeurope", "Succeeded"))
        self.azure.add(BatchAccountView(ACCOUNT.id, "westeurope", 1000, 1000, {}, False))
        self.azure.skus.append(VmSkuView("Standard_D4ds_v5", "standardDDSv5Family", {"vcpus": "4"}))
        settings = Settings.from_environ({
            names.SERVICEBUS_NAMESPACE: "unit.servicebus.windows.net",
            names.POOL_REQUESTS_QUEUE: "pool-requests",
            names.POOL_CHECKS_QUEUE: "pool-checks",
            names.MESSAGE_SIGNING_KEY: "unit-test-message-signing-key-000000000",
            names.ALERTS_TOPIC_ENDPOINT: "https://alerts.westeurope-1.eventgrid.azure.net/api/events",
            names.LEDGER_TABLE_ENDPOINT: "https://unit.table.core.windows.net",
            names.ALLOWED_SCOPES: f"{RG},{ACCOUNT.id}",
            names.REPLY_QUEUES: REPLIES,
            **self.settings_overrides,
        })
        self.services = Services.assemble(settings=settings, gateway=self.azure, ledger=self.ledger, sender=self.sender,
                                          publisher=self.publisher, now=self.clock)
