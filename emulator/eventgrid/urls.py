"""Route table for Event Grid custom topics (data plane)."""

from __future__ import annotations

from ..router import Route
from . import responses as r

ROUTES = [
    Route("POST", "/api/events", "Microsoft.EventGrid/topics", r.publish_events, host_suffix="eventgrid.azure.net", emits_events=False),
]
