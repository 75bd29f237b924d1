"""Route table for Microsoft.Authorization role-based access control (any scope)."""

from __future__ import annotations

from ..router import Route
from . import responses as r
from .models import PERMISSIONS, ROLE_ASSIGNMENT, ROLE_DEFINITION

_AUTHORIZATION = "{scope*}/providers/Microsoft.Authorization"

ROUTES = [
    Route("GET", _AUTHORIZATION + "/roleDefinitions/{name}", ROLE_DEFINITION, r.get_role_definition, emits_events=False),
    Route("GET", _AUTHORIZATION + "/roleAssignments", ROLE_ASSIGNMENT, r.list_role_assignments, emits_events=False),
    Route("GET", _AUTHORIZATION + "/permissions", PERMISSIONS, r.list_permissions, emits_events=False),
]
