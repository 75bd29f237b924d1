"""Route table for Resource Graph (a tenant-level provider operation: no subscription in the path)."""

from __future__ import annotations

from ..router import Route
from . import responses as r
from .models import RESOURCE_GRAPH

ROUTES = [
    # Not a write on a resource: ARM raises no event for it. The caller's action is recorded by the backend
    # as the reads of what it returned (see models.py: Resource Graph checks read access, not an action of its own).
    Route("POST", "/providers/Microsoft.ResourceGraph/resources", RESOURCE_GRAPH, r.query_resources, emits_events=False,
          rbac_action="Microsoft.ResourceGraph/resources/read"),
]
