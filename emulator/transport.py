"""The azure-core seam: an ``HttpTransport`` that answers from the emulator.

Real SDK clients take it as ``transport=``; everything above it (retries,
long-running-operation polling, deserialisation) is the SDK's own code. Its
``sleep`` advances the virtual clock, so retries and polling cost no real time.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict

from .http import ArmRequest, ArmResponse
from .router import dispatch


class _ClosedBody:
    """Stands in for a socket-level response: the body is already in memory."""

    def close(self) -> None:
        pass


class EmulatorHttpResponse(HttpResponseImpl):
    """An ``azure.core.rest.HttpResponse`` built from an :class:`ArmResponse`."""

    def __init__(self, request: Any, answer: ArmResponse) -> None:
        headers = case_insensitive_dict(answer.headers)
        content = answer.content()
        if content and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json; charset=utf-8"
        super().__init__(
            request=request,
            internal_response=_ClosedBody(),
            status_code=answer.status,
            reason=_REASONS.get(answer.status, "Unknown"),
            content_type=headers.get("Content-Type"),
            headers=headers,
            stream_download_generator=_whole_body,
        )
        self._content = content


def _whole_body(response: EmulatorHttpResponse, **_: Any):
    yield response.content


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class EmulatorTransport(HttpTransport):
    """Plugs an :class:`~emulator.world.AzureEmulator` under any azure-core client."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator

    def __enter__(self) -> "EmulatorTransport":
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def sleep(self, duration: float) -> None:
        self._emulator.advance(duration)

    def send(self, request: Any, **kwargs: Any) -> EmulatorHttpResponse:
        answer = dispatch(self._emulator, _to_arm_request(request))
        return EmulatorHttpResponse(request, answer)


def _to_arm_request(request: Any) -> ArmRequest:
    body = getattr(request, "content", None)
    if body is None:
        body = getattr(request, "data", None) or getattr(request, "body", None)
    if isinstance(body, str):
        body = body.encode()
    elif body is not None and not isinstance(body, (bytes, bytearray)):
        import json

        body = json.dumps(body).encode()
    return ArmRequest(method=request.method.upper(), url=request.url, headers=dict(request.headers), raw_body=bytes(body or b""))
