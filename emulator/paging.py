"""ARM list responses: ``{"value": [...], "nextLink": ...}`` pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from .http import ArmRequest, ArmResponse

SKIP_TOKEN = "$skiptoken"


def page(request: ArmRequest, items: Sequence[Any], page_size: int, serialise: Callable[[Any], dict] | None = None) -> ArmResponse:
    """One page of ``items`` from the request's skip token; ``nextLink`` when more remain.

    ``serialise`` turns each item of the page (only) into its JSON body: a long list is not serialised once per page.
    """
    start = int(request.query.get(SKIP_TOKEN, "0") or 0)
    chosen = items[start : start + page_size]
    body: dict = {"value": [serialise(item) for item in chosen] if serialise else list(chosen)}
    if start + page_size < len(items):
        parsed = urlparse(request.url)
        query = [(k, v) for k, v in parse_qsl(parsed.query) if k != SKIP_TOKEN]
        query.append((SKIP_TOKEN, str(start + page_size)))
        body["nextLink"] = urlunparse(parsed._replace(query=urlencode(query)))
    return ArmResponse(200, body)
