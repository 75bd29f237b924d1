"""Routes: one API operation each, and the table that matches a call to its route.

The table itself is in ``emulator/urls.py``; ``emulator/dispatch.py`` answers a call through it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .authorization.models import rbac_action
from .http import ArmRequest, ArmResponse

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
# POSTs that only read: a Resource Graph query (the REST API takes the query as a body, so it is a POST).
READ_POSTS = frozenset({"POST Microsoft.ResourceGraph/resources"})


def is_read(operation_key: str) -> bool:
    """Whether a counted operation (``"<METHOD> <resource type>"``) reads rather than changes anything."""
    return operation_key.startswith("GET") or operation_key in READ_POSTS
# "{name}" matches one path segment; "{name*}" matches one or more (a scope).
_PARAM = re.compile(r"\{(\w+)(\*?)\}")


class UnknownRouteError(LookupError):
    """The emulator does not model this call; it fails loudly rather than guess."""


@dataclass(frozen=True)
class Route:
    """One API operation: ``method`` on a path ``template`` of ``resource_type``.

    ``emits_events``: a failed write on this route raises the matching ARM
    failure event (ARM raises events only for calls on resources).
    """

    method: str
    template: str
    resource_type: str
    handler: Callable[..., ArmResponse]
    host_suffix: str = "management.azure.com"
    emits_events: bool = True
    requires_api_version: bool = True
    # The RBAC action (or data action) ARM checks for this call; None: derived from the method
    # and resource type (emulator.authorization.models.rbac_action), or for POST from the path's last segment.
    rbac_action: str | None = None

    def action_for(self, request: ArmRequest) -> str:
        if self.rbac_action is not None:
            return self.rbac_action
        if self.method == "POST":
            return f"{self.resource_type}/{request.path.rstrip('/').rsplit('/', 1)[-1]}/action"
        return rbac_action(self.method, self.resource_type)

    @property
    def pattern(self) -> re.Pattern[str]:
        escaped = re.escape(self.template).replace(r"\{", "{").replace(r"\}", "}").replace(r"\*", "*")
        regex = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>.+?)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)", escaped)
        return re.compile(f"^{regex}/?$", re.IGNORECASE)

    @property
    def operation_key(self) -> str:
        return f"{self.method} {self.resource_type}"


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        # Each method's routes in table order: a call is matched against the routes of its own method only.
        self._by_method: dict[str, list[tuple[Route, re.Pattern[str]]]] = {}
        for route in routes:
            self._by_method.setdefault(route.method, []).append((route, route.pattern))

    def match(self, request: ArmRequest) -> tuple[Route, dict[str, str]]:
        for route, pattern in self._by_method.get(request.method, ()):
            if not request.host.endswith(route.host_suffix):
                continue
            found = pattern.match(request.path)
            if found:
                return route, found.groupdict()
        raise UnknownRouteError(
            f"The Azure emulator has no route for {request.method} {request.host}{request.path}; "
            "add it to emulator/urls.py if the project needs it"
        )
