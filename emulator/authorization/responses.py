"""HTTP handlers for role definitions, role assignments and permissions. No logic."""

from __future__ import annotations

from typing import Any

from ..http import ArmRequest, ArmResponse
from ..paging import page


def get_role_definition(emulator: Any, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    return ArmResponse(200, emulator.authorization.get_definition(name).to_dict())


def put_role_definition(emulator: Any, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    status, body = emulator.authorization.put_definition(scope, name, request.json())
    return ArmResponse(status, body)


def delete_role_definition(emulator: Any, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    status, body = emulator.authorization.delete_definition(name)
    return ArmResponse(status, body)


def list_role_definitions(emulator: Any, request: ArmRequest, scope: str) -> ArmResponse:
    items = [r.to_dict() for r in emulator.authorization.list_definitions(scope, request.query.get("$filter"))]
    return page(request, items, emulator.page_size)


def list_role_assignments(emulator: Any, request: ArmRequest, scope: str) -> ArmResponse:
    items = [a.to_dict() for a in emulator.authorization.assignments_at(scope, request.query.get("$filter"))]
    return page(request, items, emulator.page_size)


def delete_role_assignment(emulator: Any, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    status, body = emulator.authorization.delete_assignment(scope, name)
    return ArmResponse(status, body)


def list_permissions(emulator: Any, request: ArmRequest, scope: str) -> ArmResponse:
    caller = emulator.authorization.principal_of(request.header("Authorization"))
    return ArmResponse(200, {"value": emulator.authorization.permissions_at(scope, caller)})
