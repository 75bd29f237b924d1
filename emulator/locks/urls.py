"""Route table for management locks (any scope)."""

from __future__ import annotations

from ..router import Route
from . import responses as r
from .models import LOCK

_LOCKS = "{scope*}/providers/Microsoft.Authorization/locks"

ROUTES = [
    Route("GET", _LOCKS, LOCK, r.list_locks),
    Route("GET", _LOCKS + "/{name}", LOCK, r.get_lock),
    Route("PUT", _LOCKS + "/{name}", LOCK, r.put_lock),
    Route("DELETE", _LOCKS + "/{name}", LOCK, r.delete_lock),
]
