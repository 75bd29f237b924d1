"""Route table for Microsoft.Authorization role-based access control (any scope)."""

from __future__ import annotations

from ..router import Route
from . import responses as r
from .models import PERMISSIONS, ROLE_ASSIGNMENT, ROLE_DEFINITION

_AUTHORIZATION = "{scope*}/providers/Microsoft.Authorization"

ROUTES = [
    Route("GET", _AUTHORIZATION + "/roleDefinitions", ROLE_DEFINITION, r.list_role_definitions, emits_events=False),
    Route("GET", _AUTHORIZATION + "/roleDefinitions/{name}", ROLE_DEFINITION, r.get_role_definition, emits_events=False),
    Route("PUT", _AUTHORIZATION + "/roleDefinitions/{name}", ROLE_DEFINITION, r.put_role_definition, emits_events=False),
    Route("DELETE", _AUTHORIZATION + "/roleDefinitions/{name}", ROLE_DEFINITION, r.delete_role_definition, emits_events=False),
    Route("GET", _AUTHORIZATION + "/roleAssignments", ROLE_ASSIGNMENT, r.list_role_assignments, emits_events=False),
    Route("DELETE", _AUTHORIZATION + "/roleAssignments/{name}", ROLE_ASSIGNMENT, r.delete_role_assignment, emits_events=False),
    Route("GET", _AUTHORIZATION + "/permissions", PERMISSIONS, r.list_permissions, emits_events=False),
]
