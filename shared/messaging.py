"""Sending Service Bus messages, and the messages the app sends: replies and scheduled pool checks.

Service Bus speaks AMQP, so azure-servicebus has no azure-core transport seam.
Everything the project sends goes through :class:`MessageSender`; production
uses :class:`ServiceBusMessageSender`, the emulator provides its own queues.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.servicebus import ServiceBusClient

log = logging.getLogger(__name__)

REPLY_SUBJECT = "PoolRequestOutcome"
POOL_CHECK_SUBJECT = "PoolCheck"
# A check arrives this long after the resize timeout: the service needs a moment to go Steady.
CHECK_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to send; ``scheduled_enqueue_time`` delays its delivery."""

    body: str
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    subject: str | None = None
    content_type: str = "application/json"
    scheduled_enqueue_time: datetime | None = None
    application_properties: dict[str, str | int | float | bool] = field(default_factory=dict)


class MessageSender(Protocol):
    """Sends one message to a queue (or schedules it)."""

    def send(self, queue: str, message: OutgoingMessage) -> None: ...


class ServiceBusMessageSender:
    """:class:`MessageSender` on azure-servicebus with an identity-based connection."""

    def __init__(self, fully_qualified_namespace: str, credential: TokenCredential, **client_kwargs: Any) -> None:
        self._namespace = fully_qualified_namespace
        self._credential = credential
        self._client_kwargs = client_kwargs
        self._client: ServiceBusClient | None = None

    def _service_bus(self) -> ServiceBusClient:
        if self._client is None:
            # Azure SDK, loaded on first use (cold start).
            from azure.servicebus import ServiceBusClient

            self._client = ServiceBusClient(self._namespace, self._credential, **self._client_kwargs)
        return self._client

    def send(self, queue: str, message: OutgoingMessage) -> None:
        # Azure SDK, loaded on first use (cold start).
        from azure.servicebus import ServiceBusMessage

        properties: dict[str | bytes, int | float | bytes | bool | str | UUID] = dict(message.application_properties.items())
        outgoing = ServiceBusMessage(
            message.body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            subject=message.subject,
            content_type=message.content_type,
            application_properties=properties or None,
        )
        with self._service_bus().get_queue_sender(queue) as sender:
            if message.scheduled_enqueue_time is not None:
                sender.schedule_messages(outgoing, message.scheduled_enqueue_time)
            else:
                sender.send_messages(outgoing)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def outcome_reply(request_id: str, stage: str, reason: str | None, pool_id: str | None) -> OutgoingMessage:
    """The reply a requester gets when its request reaches a final stage (one message id per stage)."""
    body = {"requestId": request_id, "stage": stage, "reason": reason, "poolId": pool_id}
    return OutgoingMessage(
        json.dumps(body), message_id=f"{request_id}-{stage.lower()}", correlation_id=request_id, subject=REPLY_SUBJECT
    )


@dataclass(frozen=True)
class PoolCheck:
    """A pool-checks queue message: which pool, and how many times it was looked at already."""

    pool_id: str
    attempt: int = 0

    @classmethod
    def from_body(cls, body: bytes) -> PoolCheck | None:
        """The check, or None for a body that is not one (logged; never retried)."""
        try:
            data = json.loads(body)
            return cls(str(data["poolId"]), int(data.get("attempt") or 0))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("pool check message ignored: %s", exc)
            return None

    def message(self, when: datetime) -> OutgoingMessage:
        """The scheduled message that makes the guard look at the pool at ``when``."""
        return OutgoingMessage(
            json.dumps({"poolId": self.pool_id, "attempt": self.attempt}),
            message_id=f"check-{self.pool_id.rsplit('/', 1)[-1]}-{when.strftime('%Y%m%dT%H%M%S')}",
            subject=POOL_CHECK_SUBJECT,
            scheduled_enqueue_time=when,
        )


def schedule_pool_check(sender: MessageSender, queue: str, pool_id: str, when: datetime, attempt: int = 0) -> None:
    """Have the guard look at one pool at ``when``."""
    sender.send(queue, PoolCheck(pool_id, attempt).message(when))


def check_after_resize(sender: MessageSender, queue: str, pool_id: str, now: datetime, resize_timeout: timedelta) -> None:
    """Schedule a check for when a resize issued ``now`` times out (the pipeline's create and the guard's resizes)."""
    schedule_pool_check(sender, queue, pool_id, now + resize_timeout + CHECK_MARGIN)
