"""Route table for the Activity Log."""

from __future__ import annotations

from ..router import Route
from . import responses as r
from .models import ACTIVITY_LOG

ROUTES = [
    # A read: ARM raises no event for it. Azure Monitor's "Roles, permissions, and security" page:
    # "Microsoft.Insights/eventtypes/values/Read | List Activity Log events (management events) in a subscription.
    # This permission is applicable to both programmatic and portal access to the Activity Log."
    Route("GET", "/subscriptions/{subscription}/providers/Microsoft.Insights/eventtypes/management/values", ACTIVITY_LOG,
          r.list_activity, emits_events=False, rbac_action="Microsoft.Insights/eventtypes/values/read"),
]
