"""The emulator's whole route table: every service's routes, in one place."""

from __future__ import annotations

from .authorization.urls import ROUTES as AUTHORIZATION_ROUTES
from .batch.urls import ROUTES as BATCH_ROUTES
from .compute.urls import ROUTES as COMPUTE_ROUTES
from .eventgrid.urls import ROUTES as EVENTGRID_ROUTES
from .insights.urls import ROUTES as ACTIVITY_LOG_ROUTES
from .locks.urls import ROUTES as LOCK_ROUTES
from .resourcegraph.urls import ROUTES as RESOURCE_GRAPH_ROUTES
from .router import RouteTable
from .servicebus.urls import ROUTES as SERVICEBUS_ROUTES
from .web.urls import ROUTES as WEB_ROUTES

# Locks and role-based access first: their paths end below any resource path and must win the match.
ROUTES = RouteTable(LOCK_ROUTES + AUTHORIZATION_ROUTES + COMPUTE_ROUTES + BATCH_ROUTES + EVENTGRID_ROUTES + SERVICEBUS_ROUTES
                    + RESOURCE_GRAPH_ROUTES + ACTIVITY_LOG_ROUTES + WEB_ROUTES)
