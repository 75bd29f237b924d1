"""Microsoft.ResourceGraph: ``POST /providers/Microsoft.ResourceGraph/resources``, the Resources table.

What the emulator answers, each with its source:

- Request and response shapes: the REST spec
  specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/stable/2021-03-01/resourcegraph.json
  (the version azure-mgmt-resourcegraph 8.0.1 sends): ``QueryRequest`` {subscriptions, query,
  options {$skipToken, $top (1-1000), $skip, resultFormat}}; ``QueryResponse`` {totalRecords, count,
  resultTruncated ("true" | "false"), $skipToken, data, facets}.
- ``type`` comes back lower-cased and ``id`` as created (examples ResourcesFilterQuery.json and, in
  the 2024-04-01 folder, ResourcesNextPageQuery.json); a dotted ``properties.a.b`` column is named
  ``properties_a_b`` (example ResourcesPropertiesQuery.json).
- Paging ("Paging Resource Graph results", learn.microsoft.com/azure/governance/resource-graph/concepts/paging-results,
  and "Working with large Azure resource data sets", .../concepts/work-with-data): at most 1,000
  records a page (``$top`` lowers it); more records give a ``$skipToken`` to pass back with the same
  query; no ``$skipToken`` and ``resultTruncated: "true"`` when the projection has no ``id`` column
  ("id field is required in the response to return the pages in stable sorted fashion",
  ResourcesNextPageQuery.json) or the query ends in ``limit`` / ``take``.
- Throttling ("Guidance for throttled requests in Azure Resource Graph", .../concepts/guidance-for-throttled-requests):
  a quota per user and time window, "for example ... at most 15 queries within every 5-second
  window"; every answer carries ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after``
  (hh:mm:ss); past the quota, 429.
- Permissions ("Permissions in Azure Resource Graph", learn.microsoft.com/azure/governance/resource-graph/overview):
  a query needs "at least read access to the resources you want to query"; the call itself needs no
  action of its own. The emulator records, per caller, the ``<type>/read`` action of each resource
  type a query returned, so the role/operation test sees the reads the roles must grant.

KQL: only the subset the project sends (``Resources``, ``where <column> in~ (...)``,
``where <column> =~ '...'``, ``project`` with ``alias = tostring(properties.x)`` or dotted
columns, ``order by <column> [asc|desc]``, ``limit n`` / ``take n``). Anything else is refused
with 400 ``BadRequest`` naming the clause, rather than answered wrongly.
"""

from __future__ import annotations

import base64
import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..errors import ArmError
from ..http import ArmResponse

RESOURCE_GRAPH = "Microsoft.ResourceGraph/resources"
MAX_PAGE = 1000
# The docs' example quota: 15 queries in every 5-second window, per user.
QUOTA_QUERIES = 15
QUOTA_WINDOW = timedelta(seconds=5)
# Extension resources live in other Resource Graph tables, not in Resources.
_NOT_IN_RESOURCES = ("/providers/microsoft.authorization/",)


class InvalidQuery(ArmError):
    status = 400
    code = "BadRequest"

    def body(self) -> dict:
        # ErrorResponse {error {code, message, details[]}} (resourcegraph.json, ErrorResponse / Error / ErrorDetails).
        return {"error": {"code": self.code, "message": "Please provide below info when asking for support: query is invalid.",
                          "details": [{"code": "InvalidQuery", "message": self.message}]}}


class RateLimited(ArmError):
    status = 429
    code = "RateLimiting"


@dataclass
class Query:
    """A parsed query: filters, projection, order and limit."""

    filters: list = field(default_factory=list)
    columns: list[tuple[str, str]] | None = None  # (output name, source path)
    order: tuple[str, bool] | None = None  # (column, descending)
    limit: int | None = None


# A quoted literal, backslash escapes inside (written as "unrolled loops": the same strings, matched without a step per
# character, since a fleet's query lists a thousand ids).
_STRING = r"'[^'\\]*(?:\\.[^'\\]*)*'|\"[^\"\\]*(?:\\.[^\"\\]*)*\""
_IN = re.compile(rf"^(?P<col>[\w.]+)\s+in~\s*\((?P<items>(?:\s*(?:{_STRING})\s*,?)*)\)$", re.IGNORECASE | re.DOTALL)
_EQ = re.compile(rf"^(?P<col>[\w.]+)\s*=~\s*(?P<value>{_STRING})$", re.IGNORECASE | re.DOTALL)
_ALIAS = re.compile(r"^(?P<name>\w+)\s*=\s*(?:tostring\((?P<wrapped>[\w.]+)\)|(?P<path>[\w.]+))$", re.IGNORECASE)


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1]) if "\\" in literal else literal[1:-1]


# A quoted literal (to its closing quote, or the end), a run of anything else, or a pipe.
_TOKEN = re.compile(r"'[^']*'?|\"[^\"]*\"?|[^|'\"]+|\|")


def _split_pipes(text: str) -> list[str]:
    """The query's tabular operators: split on ``|`` outside string literals."""
    parts: list[str] = []
    current: list[str] = []
    for token in _TOKEN.findall(text):
        if token == "|":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(token)
    parts.append("".join(current).strip())
    return parts


def parse(text: str) -> Query:
    parts = _split_pipes(text)
    if parts[0].lower() != "resources":
        raise InvalidQuery(f"the emulator knows only the Resources table, not {parts[0]!r}")
    query = Query()
    for part in parts[1:]:
        operator, _, rest = part.partition(" ")
        rest = rest.strip()
        keyword = operator.lower()
        if keyword == "where":
            for condition in re.split(r"\s+and\s+", rest, flags=re.IGNORECASE):
                condition = condition.strip()
                if found := _IN.match(condition):
                    items = {_unquote(m).lower() for m in re.findall(_STRING, found.group("items"))}
                    query.filters.append((found.group("col"), items))
                elif found := _EQ.match(condition):
                    query.filters.append((found.group("col"), {_unquote(found.group("value")).lower()}))
                else:
                    raise InvalidQuery(f"the emulator does not model the condition {condition!r}")
        elif keyword == "project":
            columns = []
            for column in (c.strip() for c in rest.split(",")):
                if found := _ALIAS.match(column):
                    columns.append((found.group("name"), found.group("wrapped") or found.group("path")))
                elif re.fullmatch(r"[\w.]+", column):
                    columns.append((column.replace(".", "_"), column))
                else:
                    raise InvalidQuery(f"the emulator does not model the projection {column!r}")
            query.columns = columns
        elif keyword == "order" and (found := re.fullmatch(r"by\s+([\w.]+)(?:\s+(asc|desc))?", rest, re.IGNORECASE)):
            query.order = (found.group(1), (found.group(2) or "asc").lower() == "desc")
        elif keyword in ("limit", "take") and rest.isdigit():
            query.limit = int(rest)
        else:
            raise InvalidQuery(f"the emulator does not model the operator {part!r}")
    return query


def _row(resource) -> dict:
    """A Resources row: the columns Resource Graph documents (id, name, type lower-cased, location, properties ...)."""
    parts = resource.id.split("/")
    return {
        "id": resource.id,
        "name": resource.name,
        "type": resource.type.lower(),
        "location": resource.location,
        "resourceGroup": parts[4].lower() if len(parts) > 4 else None,
        "subscriptionId": parts[2] if len(parts) > 2 else None,
        "tags": dict(resource.tags),
        "properties": resource.properties,
    }


def _value(row: dict, path: str):
    value: object = row
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _skip_token(offset: int) -> str:
    # Opaque to the caller, as Azure's is (base64 of a small JSON document in the spec's examples).
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str) -> int:
    try:
        return int(json.loads(base64.b64decode(token))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidQuery("the $skipToken is not one this query returned") from exc


class ResourceGraphBackend:
    """Answers queries over the emulator's resource store."""

    def __init__(self, emulator) -> None:
        self._emulator = emulator
        self._asked: dict[str, deque[datetime]] = {}

    def query(self, body: dict, principal: str) -> ArmResponse:
        headers = self._quota(principal)
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise InvalidQuery("query is required")
        options = body.get("options") or {}
        top = options.get("$top")
        if top is not None and not (isinstance(top, int) and 1 <= top <= MAX_PAGE):
            raise InvalidQuery(f"$top must be between 1 and {MAX_PAGE}")
        parsed = parse(text)
        subscriptions = {s.lower() for s in body.get("subscriptions") or []}
        rows = []
        types = set()
        # A query by ids looks each one up (the same rows, in the same order, as walking the whole store: emulator speed).
        ids = next((wanted for column, wanted in parsed.filters if column == "id"), None)
        for resource in self._emulator.store if ids is None else self._emulator.store.find_many(ids):
            key = resource.id.lower()
            if any(marker in key for marker in _NOT_IN_RESOURCES) or "/providers/" not in key:
                continue
            row = _row(resource)
            if subscriptions and (row["subscriptionId"] or "").lower() not in subscriptions:
                continue
            if all(str(_value(row, column) or "").lower() in wanted for column, wanted in parsed.filters):
                rows.append(row)
                types.add(resource.type)
        self._record_reads(principal, types)
        if parsed.order is not None:
            column, descending = parsed.order
            rows.sort(key=lambda r: str(_value(r, column) or "").lower(), reverse=descending)
        if parsed.limit is not None:
            rows = rows[: parsed.limit]
        out = [{name: _value(r, path) for name, path in parsed.columns} for r in rows] if parsed.columns else rows
        pageable = parsed.limit is None and (parsed.columns is None or any(name == "id" for name, _ in parsed.columns))
        start = _offset(options["$skipToken"]) if options.get("$skipToken") else int(options.get("$skip") or 0)
        size = top or MAX_PAGE
        page = out[start : start + size]
        answer: dict = {"totalRecords": len(out), "count": len(page), "resultTruncated": "false", "facets": [], "data": page}
        if start + size < len(out):
            if pageable:
                answer["$skipToken"] = _skip_token(start + size)
            else:
                answer["resultTruncated"] = "true"
        return ArmResponse(200, answer, headers)

    def _quota(self, principal: str) -> dict[str, str]:
        now = self._emulator.now()
        asked = self._asked.setdefault(principal, deque())
        while asked and now - asked[0] >= QUOTA_WINDOW:
            asked.popleft()
        resets = QUOTA_WINDOW - (now - asked[0]) if asked else QUOTA_WINDOW
        reset_text = f"{int(resets.total_seconds()) // 3600:02d}:{int(resets.total_seconds()) % 3600 // 60:02d}:{int(resets.total_seconds()) % 60:02d}"
        if len(asked) >= QUOTA_QUERIES:
            error = RateLimited("Too many requests. Please retry after the quota resets.")
            raise QuotaExceeded(error, {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": reset_text,
                                     "Retry-After": str(max(1, int(resets.total_seconds())))})
        asked.append(now)
        return {"x-ms-user-quota-remaining": str(QUOTA_QUERIES - len(asked)), "x-ms-user-quota-resets-after": reset_text}

    def _record_reads(self, principal: str, types: set[str]) -> None:
        # Resource Graph returns only what the caller may read: each type returned is a read the roles must grant.
        for resource_type in sorted(types):
            self._emulator.actions[(principal, f"{resource_type}/read")] += 1


class QuotaExceeded(Exception):
    """A 429 with Resource Graph's quota headers (raised past the per-user quota)."""

    def __init__(self, error: ArmError, headers: dict[str, str]) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = headers

    def response(self) -> ArmResponse:
        return ArmResponse(self.error.status, self.error.body(), self.headers)
