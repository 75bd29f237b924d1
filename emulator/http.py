"""The emulator's view of an HTTP exchange, independent of azure-core."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

from .errors import InvalidRequestContent


@dataclass
class ArmRequest:
    """One incoming call: method, URL parts, headers and the parsed JSON body."""

    method: str
    url: str
    headers: dict[str, str]
    raw_body: bytes = b""

    def __post_init__(self) -> None:
        # Every route the table tries reads the path and host: the URL (which never changes) is parsed once.
        parsed = urlparse(self.url)
        # SDKs percent-encode scope parameters (locks "by scope"); ARM decodes them.
        self._path = re.sub(r"/{2,}", "/", unquote(parsed.path))
        self._host = (parsed.hostname or "").lower()
        self._query_string = parsed.query
        self._query: dict[str, str] | None = None

    @property
    def path(self) -> str:
        return self._path

    @property
    def host(self) -> str:
        return self._host

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = {k: v[-1] for k, v in parse_qs(self._query_string).items()}
        return self._query

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def json(self) -> dict | list:
        """The body as JSON: an object (or, for Event Grid, an array of events); a malformed body is ARM's InvalidRequestContent."""
        if not self.raw_body:
            return {}
        try:
            body = json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequestContent(f"The request content was invalid and could not be deserialized: {exc}") from exc
        if not isinstance(body, (dict, list)):
            raise InvalidRequestContent("The request content must be a JSON object.")
        return body


@dataclass
class ArmResponse:
    """What the emulator answers: a status, headers and an optional JSON body."""

    status: int
    body: dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()
