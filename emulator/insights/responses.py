"""HTTP handlers for the Activity Log. No logic."""

from __future__ import annotations

from ..http import ArmRequest, ArmResponse
from ..paging import page


def list_activity(emulator, request: ArmRequest, subscription: str) -> ArmResponse:
    items = emulator.activity_log.list(subscription, request.query.get("$filter"), request.query.get("$select"))
    return page(request, items, emulator.page_size)
