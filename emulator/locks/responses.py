"""HTTP handlers for management locks. No logic."""

from __future__ import annotations

from ..http import ArmRequest, ArmResponse
from ..paging import page


def put_lock(emulator, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    return emulator.locks.put(scope, name, request.json(), url=request.url)


def get_lock(emulator, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    return ArmResponse(200, emulator.locks.get(scope, name).to_dict())


def delete_lock(emulator, request: ArmRequest, scope: str, name: str) -> ArmResponse:
    return emulator.locks.delete(scope, name, url=request.url)


def list_locks(emulator, request: ArmRequest, scope: str) -> ArmResponse:
    return page(request, emulator.locks.listed_at(scope, request.query.get("$filter")), emulator.page_size, lambda lock: lock.to_dict())
