"""ARM list responses: ``{"value": [...], "nextLink": ...}`` pages."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from .http import ArmRequest, ArmResponse

SKIP_TOKEN = "$skiptoken"


def page(request: ArmRequest, items: list[dict], page_size: int) -> ArmResponse:
    """One page of ``items`` from the request's skip token; ``nextLink`` when more remain."""
    start = int(request.query.get(SKIP_TOKEN, "0") or 0)
    body: dict = {"value": items[start : start + page_size]}
    if start + page_size < len(items):
        parsed = urlparse(request.url)
        query = [(k, v) for k, v in parse_qsl(parsed.query) if k != SKIP_TOKEN]
        query.append((SKIP_TOKEN, str(start + page_size)))
        body["nextLink"] = urlunparse(parsed._replace(query=urlencode(query)))
    return ArmResponse(200, body)
