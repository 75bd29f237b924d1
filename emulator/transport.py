"""The emulator under azure-core's real ``RequestsTransport``.

Real SDK clients take ``transport=emulator.transport()``: azure-core's own
``RequestsTransport`` over a ``requests.Session`` on which the emulator is
mounted as a ``requests`` transport adapter, for ``https://`` and ``http://``
so that no call can reach the network. Everything above the adapter is the
code that runs in Azure: keyword arguments go down to
``requests.Session.request`` (an argument the SDK does not define fails there
with the same ``TypeError`` as in production), azure-core and requests
serialise headers and bodies, the bearer-token policy insists on https, and
retries and long-running-operation polling run unchanged. The adapter stands
in for the socket only: it turns the ``PreparedRequest`` into an
:class:`ArmRequest`, answers it through :func:`emulator.dispatch.dispatch` and
hands back a real ``requests.Response`` whose ``raw`` is a urllib3 response
over the body bytes, which requests reads (whole, or streamed) exactly as it
reads one from a connection.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3 import HTTPHeaderDict, HTTPResponse

from .dispatch import dispatch
from .http import ArmRequest, ArmResponse


class VirtualTimeRequestsTransport(RequestsTransport):
    """azure-core's ``RequestsTransport`` with one change: ``sleep`` is virtual.

    azure-core waits through ``transport.sleep``: the retry policy between
    attempts and for ``Retry-After``, long-running-operation polling between
    status reads. In Azure those waits are real time; on the emulator they are
    the emulator's virtual clock, so ``sleep`` advances that clock (running
    whatever falls due meanwhile, such as an operation finishing) instead of
    blocking the thread, and retries and polling cost no wall time. Nothing
    else is overridden: sending is ``RequestsTransport.send`` itself.
    """

    advance: Callable[[float], None]

    def sleep(self, duration: float) -> None:
        self.advance(duration)


def requests_transport(emulator: Any) -> VirtualTimeRequestsTransport:
    """A fresh ``RequestsTransport`` whose session answers from ``emulator``."""
    session = requests.Session()
    # Proxies and ~/.netrc of the machine running the tests must not change what the emulator sees.
    session.trust_env = False
    adapter = EmulatorAdapter(emulator)
    for prefix in ("https://", "http://"):
        session.mount(prefix, adapter)
    transport = VirtualTimeRequestsTransport(session=session)
    transport.advance = emulator.advance
    return transport


class EmulatorAdapter(HTTPAdapter):
    """requests' own ``HTTPAdapter`` with one change: ``send`` answers from the emulator instead of a connection.

    The response is built by ``HTTPAdapter.build_response`` itself, so it has
    what a network answer has: status, reason, headers, encoding, url, request,
    cookies, the adapter as its ``connection``, and an unread ``raw`` that
    Session.send or the caller consumes. The adapter's connection pools are
    never used.
    """

    def __init__(self, emulator: Any) -> None:
        super().__init__()
        self.emulator = emulator

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        # An unknown route raises UnknownRouteError here, naming method and path; nothing
        # between the adapter and the caller catches it.
        answer = dispatch(self.emulator, _arm_request(request))
        return self.build_response(request, _urllib3_response(request, answer))


def _arm_request(request: requests.PreparedRequest) -> ArmRequest:
    if request.method is None or request.url is None:
        raise ValueError("only a prepared request, with its method and URL, can be sent")
    headers = {name: value.decode("latin-1") if isinstance(value, bytes) else value for name, value in request.headers.items()}
    return ArmRequest(method=request.method.upper(), url=request.url, headers=headers, raw_body=_body_bytes(request.body))


def _body_bytes(body: Any) -> bytes:
    """The bytes a connection would put on the wire for ``PreparedRequest.body``."""
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        # urllib3 2 encodes a str body as UTF-8 (urllib3/util/request.py, body_to_chunks).
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk) for chunk in body)


def _urllib3_response(request: requests.PreparedRequest, answer: ArmResponse) -> HTTPResponse:
    content = answer.content()
    headers = HTTPHeaderDict(answer.headers)
    # ARM's JSON answers carry both headers, e.g. the recorded Compute answers in Azure/azure-sdk-for-python
    # sdk/compute/azure-mgmt-compute/tests/recordings/test_mgmt_compute_disks.test_compute_shot.yaml.
    if content and "Content-Type" not in headers:
        headers["Content-Type"] = "application/json; charset=utf-8"
    headers["Content-Length"] = str(len(content))
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = ""
    return HTTPResponse(
        body=io.BytesIO(content),
        headers=headers,
        status=answer.status,
        reason=reason,
        preload_content=False,
        decode_content=False,
        request_method=request.method,
        request_url=request.url,
    )
