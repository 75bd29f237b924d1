"""HTTP handlers for Function Apps (Microsoft.Web/sites). No logic."""

from __future__ import annotations

from typing import Any

from ..http import ArmRequest, ArmResponse
from ..paging import page


def _site_id(request: ArmRequest, suffix: str = "") -> str:
    path = request.path.rstrip("/")
    return path[: len(path) - len(suffix)] if suffix else path


def get_site(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    return ArmResponse(200, emulator.web.site(_site_id(request)).to_dict())


def list_app_settings(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    return ArmResponse(200, emulator.web.app_settings(_site_id(request, "/config/appsettings/list")))


def list_functions(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    return page(request, emulator.web.functions(_site_id(request, "/functions")), emulator.page_size)


def get_host_status(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    return ArmResponse(200, emulator.web.host_status(_site_id(request, "/host/default/properties/status")))
