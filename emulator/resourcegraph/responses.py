"""HTTP handlers for Resource Graph. No logic."""

from __future__ import annotations

from ..http import ArmRequest, ArmResponse
from .models import QuotaExceeded


def query_resources(emulator, request: ArmRequest) -> ArmResponse:
    principal = emulator.authorization.principal_of(request.header("Authorization"))
    try:
        return emulator.resourcegraph.query(request.json(), principal)
    except QuotaExceeded as throttled:
        return throttled.response()
