"""ARM system events, shaped like Event Grid's published samples, and their delivery.

ARM raises ``Microsoft.Resources.Resource{Write,Delete,Action}{Success,Failure}``
for every PUT/PATCH, DELETE and POST on a resource (never for GET). Event Grid
delivers at least once and in no particular order, so the bus can duplicate,
delay, reorder and drop deliveries, deterministically by seed.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"

_KIND_BY_METHOD = {"PUT": "Write", "PATCH": "Write", "DELETE": "Delete", "POST": "Action"}
_VERB_BY_METHOD = {"PUT": "write", "PATCH": "write", "DELETE": "delete"}


def operation_name(resource_id: str, method: str, action: str | None = None) -> str:
    """ARM's ``operationName`` for a call, e.g. ``Microsoft.Compute/snapshots/write``."""
    # The provider that owns the resource is the last one named in its id
    # (a lock on an image: .../Microsoft.Compute/images/x/providers/Microsoft.Authorization/locks/y).
    segments = resource_id.strip("/").split("/")
    provider_at = max(i for i, s in enumerate(segments) if s.lower() == "providers")
    namespace, *rest = segments[provider_at + 1 :]
    types = rest[0::2]
    # ARM names actions "<type>/<action>/action", e.g. Microsoft.Batch/batchAccounts/pools/stopResize/action.
    verb = f"{action}/action" if method == "POST" else _VERB_BY_METHOD[method]
    return "/".join([namespace, *types, verb])


_SCOPE = re.compile(r"^/subscriptions/(?P<subscription>[^/]+)(?:/resourceGroups/(?P<group>[^/]+))?", re.IGNORECASE)


def _subscription_and_group(resource_id: str) -> tuple[str, str | None]:
    # parse_resource_id does not follow a second /providers/ (a lock on a resource).
    found = _SCOPE.match(resource_id)
    if found is None:
        raise ValueError(f"not an ARM resource id: {resource_id!r}")
    return found["subscription"], found["group"]


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))``, without building the UUID object (emulator speed: every call on a resource
    raises an event and logs an Activity Log entry)."""
    bits = (bits & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_timestamps: dict[tuple[datetime, object], str] = {}


def timestamp_text(when: datetime) -> str:
    """``when`` as ARM writes event times, ``2026-01-05T09:00:00.0000000Z`` (seven fraction digits); remembered per instant,
    since virtual time stands still across the many calls of one step (emulator speed)."""
    key = (when, when.utcoffset())  # equal instants at equal offsets read the same on the wall
    text = _timestamps.get(key)
    if text is None:
        if len(_timestamps) > 4096:
            _timestamps.clear()
        text = _timestamps[key] = when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    return text


@dataclass(frozen=True)
class ArmEvent:
    """One Event Grid event in the Event Grid schema, as a plain dict plus routing facts."""

    body: dict

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def event_type(self) -> str:
        return self.body["eventType"]

    @property
    def subject(self) -> str:
        return self.body["subject"]


class ArmEventFactory:
    """Builds ARM events with the fields and casing of the published samples."""

    def __init__(self, seed: int = 0, caller_object_id: str | None = None) -> None:
        self._random = random.Random(seed)
        self._caller = caller_object_id or str(uuid.UUID(int=self._random.getrandbits(128)))

    def _uuid(self) -> str:
        return uuid4_text(self._random.getrandbits(128))

    def build(
        self,
        *,
        resource_id: str,
        method: str,
        succeeded: bool,
        when: datetime,
        correlation_id: str,
        url: str,
        action: str | None = None,
    ) -> ArmEvent:
        """The event ARM raises once a ``method`` call on ``resource_id`` has finished."""
        subscription, resource_group = _subscription_and_group(resource_id)
        operation = operation_name(resource_id, method, action)
        event_type = f"Microsoft.Resources.Resource{_KIND_BY_METHOD[method]}{'Success' if succeeded else 'Failure'}"
        data = {
            "authorization": {
                "scope": resource_id,
                "action": operation,
                "evidence": {"role": "Custom Image Pool Automation"},
            },
            "claims": {
                "aud": "https://management.core.windows.net/",
                "iss": f"https://sts.windows.net/{TENANT_ID}/",
                "appid": self._caller,
                "http://schemas.microsoft.com/identity/claims/objectidentifier": self._caller,
                "http://schemas.microsoft.com/identity/claims/tenantid": TENANT_ID,
                "ver": "1.0",
            },
            "correlationId": correlation_id,
            "httpRequest": {
                "clientRequestId": self._uuid(),
                "clientIpAddress": "127.0.0.1",
                "method": method,
                "url": url,
            },
            "resourceProvider": operation.split("/", 1)[0],
            "resourceUri": resource_id,
            "operationName": operation,
            "status": "Succeeded" if succeeded else "Failed",
            "subscriptionId": subscription,
            "tenantId": TENANT_ID,
        }
        body = {
            "subject": resource_id,
            "eventType": event_type,
            "eventTime": timestamp_text(when),
            "id": self._uuid(),
            "data": data,
            "dataVersion": "2",
            "metadataVersion": "1",
            "topic": f"/subscriptions/{subscription}" + (f"/resourceGroups/{resource_group}" if resource_group else ""),
        }
        return ArmEvent(body)


@dataclass
class DeliveryOptions:
    """How Event Grid's at-least-once, unordered delivery is played.

    ``copies``: deliveries per event; ``max_delay_seconds``: each delivery is
    delayed by a random 0..max; ``reorder``: due deliveries are shuffled;
    ``drop_rate``: share of events never delivered (a lost event);
    ``drop_event_types``: event types never delivered.
    """

    copies: int = 1
    max_delay_seconds: float = 0.0
    reorder: bool = False
    drop_rate: float = 0.0
    drop_event_types: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class EventBehaviour:
    """What ARM raises in the three cases no published source settles; each can be played either way.

    No Event Grid documentation page, REST spec or public recording says (searched: the Event Grid
    "Azure Resource Manager as an Event Grid source" page, the system topic samples, the Azure CLI and
    Azure SDK for Python recordings, which hold no Event Grid deliveries at all). ``python -m cli verify
    --probe-events`` measures them on a real deployment. The defaults are what the code assumed before
    anyone asked; the functions must reach the same outcome under every setting.

    ``lock_delete_raises_event``: deleting a management lock raises ``ResourceDeleteSuccess`` for
    ``Microsoft.Authorization/locks`` (a public wish list still asks Azure for a "lock removed" event).
    ``locked_delete_raises_failure_event``: a DELETE refused by a lock (409 ``ScopeLocked``, refused by
    ARM before the resource provider sees it) raises ``ResourceDeleteFailure``.
    ``write_success_at``: a long-running PUT raises ``ResourceWriteSuccess`` when it ``completion``
    (finishes) or at ``acceptance`` (when ARM answers 201/202; then nothing when it finishes, and
    ``ResourceWriteFailure`` if it ends Failed).
    """

    lock_delete_raises_event: bool = True
    locked_delete_raises_failure_event: bool = True
    write_success_at: Literal["completion", "acceptance"] = "completion"

    def delivers(self, event: ArmEvent, *, refusal: str | None = None) -> bool:
        """Whether ARM raises ``event`` under this behaviour (the Activity Log records it either way)."""
        data = event.body.get("data") or {}
        operation = str(data.get("operationName", "")).lower()
        if not self.lock_delete_raises_event and operation == "microsoft.authorization/locks/delete":
            return False
        if not self.locked_delete_raises_failure_event and refusal == "ScopeLocked" and operation.endswith("/delete"):
            return False
        return True


class EventGridBus:
    """Collects emitted ARM events and hands deliveries out when they fall due."""

    def __init__(self, now: Callable[[], datetime], seed: int = 0, options: DeliveryOptions | None = None) -> None:
        self._now = now
        self._random = random.Random(seed)
        self.options = options or DeliveryOptions()
        self.emitted: list[ArmEvent] = []
        self.dropped: list[ArmEvent] = []
        self._pending: list[tuple[datetime, int, ArmEvent]] = []
        self._sequence = 0
        self._lock = threading.Lock()

    def emit(self, event: ArmEvent) -> None:
        """Record an event and schedule its deliveries. Never fails the write that raised it."""
        with self._lock:
            self.emitted.append(event)
            options = self.options
            if event.event_type in options.drop_event_types or (
                options.drop_rate and self._random.random() < options.drop_rate
            ):
                self.dropped.append(event)
                return
            for _ in range(max(1, options.copies)):
                delay = self._random.uniform(0, options.max_delay_seconds) if options.max_delay_seconds else 0.0
                self._sequence += 1
                self._pending.append((self._now() + timedelta(seconds=delay), self._sequence, event))

    def inject(self, body: dict) -> None:
        """Queue a raw event (e.g. a scenario's hand-written event) for delivery now."""
        with self._lock:
            self._sequence += 1
            self._pending.append((self._now(), self._sequence, ArmEvent(body)))

    def retry_later(self, body: dict, seconds: float) -> None:
        """Deliver an event again later, as Event Grid does after a failed delivery."""
        with self._lock:
            self._sequence += 1
            self._pending.append((self._now() + timedelta(seconds=seconds), self._sequence, ArmEvent(body)))

    def take_due(self) -> list[ArmEvent]:
        """Remove and return the deliveries due by now, in delivery order."""
        now = self._now()
        with self._lock:
            due = sorted((p for p in self._pending if p[0] <= now), key=lambda p: (p[0], p[1]))
            self._pending = [p for p in self._pending if p[0] > now]
            events = [p[2] for p in due]
            if self.options.reorder:
                self._random.shuffle(events)
        return events

    def next_due(self) -> datetime | None:
        with self._lock:
            return min((p[0] for p in self._pending), default=None)

    @property
    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)
