"""Answers one call: matches its route, counts it, injects faults and maps errors to ARM bodies."""

from __future__ import annotations

import re

from .errors import ArmError, InternalServerError, MissingApiVersion, ResourceNotFound, ServiceUnavailable, Throttled
from .faults import FaultKind
from .http import ArmRequest, ArmResponse
from .router import WRITE_METHODS
from .urls import ROUTES

_TRANSPORT_FAULTS = (FaultKind.THROTTLE, FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE, FaultKind.LATENCY)


def dispatch(emulator, request: ArmRequest) -> ArmResponse:
    """Answer one call: route, count, maybe fault, run the handler, shape errors."""
    route, params = ROUTES.match(request)
    with emulator.lock:  # counters are read-modify-write; deliveries run on several threads
        emulator.calls[route.operation_key] += 1
        # Who asked for what: the role/operation test compares the app identity's actions with its roles.
        emulator.actions[(emulator.authorization.principal_of(request.header("Authorization")), route.action_for(request))] += 1
    fault = emulator.faults.draw(route.operation_key, _TRANSPORT_FAULTS)
    if fault is not None and fault.kind is FaultKind.LATENCY:
        emulator.advance(fault.latency_seconds)
    elif fault is not None:
        error = {
            FaultKind.THROTTLE: Throttled("Too many requests (injected fault). Retry after the interval."),
            FaultKind.SERVER_ERROR: InternalServerError("The server encountered an internal error (injected fault)."),
            FaultKind.UNAVAILABLE: ServiceUnavailable("The service is unavailable (injected fault)."),
        }[fault.kind]
        return ArmResponse(error.status, error.body(), {"Retry-After": str(fault.retry_after_seconds)})
    try:
        refusal = emulator.faults.draw(route.operation_key, (FaultKind.REFUSE,))
        if refusal is not None:
            raise ArmError(refusal.message, code=refusal.code, status=refusal.status)
        _check_subscription(emulator, request)
        emulator.authorization.check_allowed(emulator.authorization.principal_of(request.header("Authorization")), request.path, route.action_for(request))
        if route.requires_api_version and not request.query.get("api-version"):
            raise MissingApiVersion(
                "The api-version query parameter (?api-version=) is required for all requests."
            )
        with emulator.lock:
            return route.handler(emulator, request, **params)
    except ArmError as error:
        with emulator.lock:
            emulator.refusals[(route.operation_key, error.code)] += 1
        if route.emits_events and request.method in WRITE_METHODS and error.status not in (404,):
            emulator.emit(_resource_id_of(request), request.method, False, request.url, _action_of(request), refusal=error.code)
        return ArmResponse(error.status, error.body(), {"x-ms-failure-cause": "gateway" if error.status >= 500 else "service"})


_SUBSCRIPTION = re.compile(r"^/subscriptions/(?P<id>[^/]+)", re.IGNORECASE)


def _check_subscription(emulator, request: ArmRequest) -> None:
    """A subscription the tenant does not have is refused before anything else.

    Only when a test made the emulator a tenant with known subscriptions (``AzureEmulator.subscriptions``);
    otherwise every subscription id is accepted. ARM answers 404 ``SubscriptionNotFound`` "The subscription
    '<id>' could not be found." (the message the Azure CLI prints for it; no recording kept here).
    """
    known = emulator.subscriptions
    found = _SUBSCRIPTION.match(request.path)
    if known is not None and found is not None and found.group("id").lower() not in known:
        raise ResourceNotFound(f"The subscription '{found.group('id')}' could not be found.", code="SubscriptionNotFound")


def _resource_id_of(request: ArmRequest) -> str:
    path = request.path.rstrip("/")
    if request.method == "POST":
        path = path.rsplit("/", 1)[0]
    return path


def _action_of(request: ArmRequest) -> str | None:
    return request.path.rstrip("/").rsplit("/", 1)[-1] if request.method == "POST" else None
