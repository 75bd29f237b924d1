"""The Event Grid custom topic that alerts are published to.

It accepts what ``EventGridPublisherClient`` sends (CloudEvents 1.0 batches, or
Event Grid schema arrays), validates the envelope and records every event.
"""

from __future__ import annotations

import threading

from ..errors import InvalidRequestContent

_CLOUD_EVENT_REQUIRED = ("id", "source", "type", "specversion")


class AlertsTopic:
    """Events received by the custom topic, in arrival order."""

    def __init__(self, emulator) -> None:
        self._emulator = emulator
        self.received: list[dict] = []
        self._lock = threading.Lock()

    def publish(self, content_type: str, body: list | dict) -> None:
        events = body if isinstance(body, list) else [body]
        cloud_events = "cloudevents" in (content_type or "")
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                raise InvalidRequestContent(f"Event [{index}] must be a JSON object.")
            required = _CLOUD_EVENT_REQUIRED if cloud_events else ("id", "subject", "eventType", "dataVersion")
            missing = [name for name in required if not event.get(name)]
            if missing:
                raise InvalidRequestContent(f"Event [{index}] is missing required field(s): {', '.join(missing)}.")
            if cloud_events and event["specversion"] != "1.0":
                raise InvalidRequestContent(f"Event [{index}] has specversion {event['specversion']!r}; only '1.0' is supported.")
        with self._lock:
            self.received.extend(events)
