"""Route table for the Service Bus control plane (queues)."""

from __future__ import annotations

from ..router import Route
from . import management as m

ROUTES = [
    Route(
        "GET",
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ServiceBus/namespaces/{namespace}/queues/{queue}",
        m.QUEUE,
        m.get_queue,
        emits_events=False,
    ),
]
