"""Sending Service Bus messages: replies to requesters and scheduled checks.

Service Bus speaks AMQP, so azure-servicebus has no azure-core transport seam.
Everything the project sends goes through :class:`MessageSender`; production
uses :class:`ServiceBusMessageSender`, the emulator provides its own queues.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


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
    application_properties: dict[str, Any] = field(default_factory=dict)


class MessageSender(Protocol):
    """Sends one message to a queue (or schedules it)."""

    def send(self, queue: str, message: OutgoingMessage) -> None: ...


class ServiceBusMessageSender:
    """:class:`MessageSender` on azure-servicebus with an identity-based connection."""

    def __init__(self, fully_qualified_namespace: str, credential: "TokenCredential", **client_kwargs: Any) -> None:
        self._namespace = fully_qualified_namespace
        self._credential = credential
        self._client_kwargs = client_kwargs
        self._client = None

    def _service_bus(self):
        if self._client is None:
            from azure.servicebus import ServiceBusClient

            self._client = ServiceBusClient(self._namespace, self._credential, **self._client_kwargs)
        return self._client

    def send(self, queue: str, message: OutgoingMessage) -> None:
        from azure.servicebus import ServiceBusMessage

        outgoing = ServiceBusMessage(
            message.body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            subject=message.subject,
            content_type=message.content_type,
            application_properties=message.application_properties or None,
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
