"""Route table for the Activity Log."""

from __future__ import annotations

from ..router import Route
from . import responses as r
from .models import ACTIVITY_LOG

ROUTES = [
    # A read: ARM raises no event for it. Reading the Activity Log takes Microsoft.Insights/eventtypes/values/read
    # (the built-in Monitoring Reader role's actions include Microsoft.Insights/*/read; the resource provider
    # operations page lists "Microsoft.Insights/eventtypes/values/read: Read Management Event Type Value").
    Route("GET", "/subscriptions/{subscription}/providers/Microsoft.Insights/eventtypes/management/values", ACTIVITY_LOG,
          r.list_activity, emits_events=False, rbac_action="Microsoft.Insights/eventtypes/values/read"),
]
