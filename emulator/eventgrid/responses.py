"""HTTP handler for the custom topic's publish endpoint. No logic."""

from __future__ import annotations

from ..http import ArmRequest, ArmResponse


def publish_events(emulator, request: ArmRequest) -> ArmResponse:
    emulator.topic.publish(request.header("Content-Type") or "", request.json())
    return ArmResponse(200)
