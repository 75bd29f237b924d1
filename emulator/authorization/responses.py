"""HTTP handlers for role definitions, role assignments and permissions. No logic."""

from __future__ import annotations

from ..http import ArmRequest, ArmResponse
from ..paging import page


def get_role_definition(emulator, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    return ArmResponse(200, emulator.authorization.definition(request.path).to_dict())


def list_role_assignments(emulator, request: ArmRequest, scope: str) -> ArmResponse:
    items = [a.to_dict() for a in emulator.authorization.assignments_at(scope, request.query.get("$filter"))]
    return page(request, items, emulator.page_size)


def list_permissions(emulator, request: ArmRequest, scope: str) -> ArmResponse:
    caller = emulator.authorization.principal_of(request.header("Authorization"))
    return ArmResponse(200, {"value": emulator.authorization.permissions_at(scope, caller)})
