"""Service Bus queues on the virtual clock.

Implements the project's ``MessageSender`` interface (by its shape: the
emulator imports nothing of the project) and peek-lock receiving: scheduled
enqueue times, message ids, ``ReplyTo``, delivery counts and dead-lettering
after ``max_delivery_count`` attempts, as Service Bus does.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

DEFAULT_MAX_DELIVERY_COUNT = 10


class OutgoingMessage(Protocol):
    """A message as a sender hands it to Service Bus: the properties of azure-servicebus's ``ServiceBusMessage``
    the queues and their receivers read (``scheduled_enqueue_time`` is ``ServiceBusSender.schedule_messages``'s time).
    """

    @property
    def body(self) -> str: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def reply_to(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def scheduled_enqueue_time(self) -> datetime | None: ...
    @property
    def application_properties(self) -> Mapping[str, str | int | float | bool]: ...


@dataclass
class QueuedMessage:
    queue: str
    message: OutgoingMessage
    message_id: str
    enqueued_time: datetime
    sequence_number: int
    # When it was sent (a scheduled message is sent before it is enqueued): what duplicate detection compares.
    sent_at: datetime | None = None
    delivery_count: int = 0
    dead_letter_reason: str | None = None


@dataclass
class EmulatedQueue:
    name: str
    max_delivery_count: int = DEFAULT_MAX_DELIVERY_COUNT
    active: list[QueuedMessage] = field(default_factory=list)
    dead_letters: list[QueuedMessage] = field(default_factory=list)
    sent: list[QueuedMessage] = field(default_factory=list)
    # requiresDuplicateDetection: a message whose MessageId was sent within this window is accepted and dropped
    # (learn.microsoft.com/azure/service-bus-messaging/duplicate-detection). None: off, the queue's default.
    duplicate_detection_window: timedelta | None = None
    # The messages duplicate detection dropped, in the order they were sent.
    duplicates: list[QueuedMessage] = field(default_factory=list)
    # ``sent`` by message id: what duplicate detection compares a new message with, without a scan of every message sent.
    sent_by_id: dict[str, list[QueuedMessage]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def duplicates_dropped(self) -> int:
        return len(self.duplicates)


class ServiceBusEmulator:
    """Queues keyed by name; queues are created on first use."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self._queues: dict[str, EmulatedQueue] = {}
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    def queue(self, name: str) -> EmulatedQueue:
        with self._lock:
            return self._queues.setdefault(name, EmulatedQueue(name))

    def send(self, queue: str, message: OutgoingMessage) -> None:
        """``MessageSender.send``: enqueue now, or at the scheduled time."""
        number = next(self._sequence)
        now = self._clock.now()
        when = message.scheduled_enqueue_time or now
        queued = QueuedMessage(queue, message, message.message_id or f"msg-{number:08d}", max(when, now), number, sent_at=now)
        target = self.queue(queue)
        with self._lock:
            window = target.duplicate_detection_window
            # "duplicate messages having the same MessageId and sent to the queue within" the window are discarded
            # (QueueProperties.RequiresDuplicateDetection, Azure.Messaging.ServiceBus); the docs say nothing particular
            # about scheduled messages, so a scheduled one counts from when it was sent, like any other.
            same_id = target.sent_by_id.setdefault(queued.message_id, [])
            if window is not None and any(now - (m.sent_at or m.enqueued_time) < window for m in same_id):
                target.duplicates.append(queued)
                return
            target.active.append(queued)
            target.sent.append(queued)
            same_id.append(queued)

    def detect_duplicates(self, queue: str, window: timedelta) -> None:
        """Turn on duplicate detection for ``queue`` (a queue property set when it is created)."""
        self.queue(queue).duplicate_detection_window = window

    def receive_due(self, queue: str) -> QueuedMessage | None:
        """Lock and return the oldest message whose enqueue time has come, or None."""
        target = self.queue(queue)
        now = self._clock.now()
        with self._lock:
            due = [m for m in target.active if m.enqueued_time <= now]
            if not due:
                return None
            message = min(due, key=lambda m: (m.enqueued_time, m.sequence_number))
            target.active.remove(message)
            message.delivery_count += 1
            return message

    def abandon(self, message: QueuedMessage, reason: str) -> None:
        """Return a message after a failed delivery; dead-letter it past the limit."""
        target = self.queue(message.queue)
        with self._lock:
            if message.delivery_count >= target.max_delivery_count:
                message.dead_letter_reason = f"MaxDeliveryCountExceeded: {reason}"
                target.dead_letters.append(message)
            else:
                target.active.append(message)

    def next_due(self, queues: tuple[str, ...] | None = None) -> datetime | None:
        """When the earliest active message (of ``queues``, default all) is due."""
        with self._lock:
            times = [m.enqueued_time for q in self._queues.values() if queues is None or q.name in queues for m in q.active]
        return min(times, default=None)

    def deliver_due(self, queue: str, handle: Callable[[QueuedMessage], None]) -> int:
        """Hand every due message of ``queue`` to ``handle``; an exception abandons it."""
        delivered = 0
        while (message := self.receive_due(queue)) is not None:
            delivered += 1
            try:
                handle(message)
            except Exception as exc:  # noqa: BLE001 - the platform's retry: redeliver, then dead-letter
                self.abandon(message, f"{type(exc).__name__}: {exc}")
        return delivered

    @property
    def queues(self) -> dict[str, EmulatedQueue]:
        return dict(self._queues)
