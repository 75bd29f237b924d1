"""The request ledger: one record per pool request, its stage and why.

Stage changes are conditional writes on the record's ETag, so concurrent or
duplicated deliveries advance a request once: the loser gets
:class:`StaleRecord`, re-reads and sees the winner's work. Production uses
Azure Table Storage (:class:`TableLedger`); the rehearsal uses
:class:`InMemoryLedger`; the same contract tests run against both
(``tests/ledger/test_ledger_contract.py``).

Importing this module loads no Azure SDK: the Functions host imports the app
to index it, so ``azure.data.tables`` / ``azure.core`` are imported inside the
methods that use them.
"""

from __future__ import annotations

import itertools
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Iterator, Protocol

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

    from .records import InMemoryRecords, RecordStore, TableRecords


class Stage(str, Enum):
    """Where a request stands. READY, FAILED and REJECTED are final."""

    RECEIVED = "RECEIVED"
    SNAPSHOTTING = "SNAPSHOTTING"
    IMAGING = "IMAGING"
    PUBLISHING = "PUBLISHING"
    CREATING_POOL = "CREATING_POOL"
    SCALING = "SCALING"
    READY = "READY"
    FAILED = "FAILED"
    REJECTED = "REJECTED"

    @property
    def is_final(self) -> bool:
        """True for the stages a request never leaves."""
        return self in FINAL_STAGES


FINAL_STAGES: frozenset[Stage] = frozenset({Stage.READY, Stage.FAILED, Stage.REJECTED})


class LedgerError(RuntimeError):
    """Base of every ledger failure."""


class RequestAlreadyExists(LedgerError):
    """A record with this request id exists already."""


class RequestNotFound(LedgerError):
    """No record with this request id."""


class StaleRecord(LedgerError):
    """The record changed since it was read: another delivery advanced it first."""


class FinalStageError(LedgerError):
    """READY, FAILED and REJECTED are final: a request never leaves them."""


class RecordTooLarge(LedgerError):
    """The body or details are too large to store: permanent, retrying will not help."""


class LedgerUnavailable(LedgerError):
    """The store could not be reached or failed: transient, retry later."""


@dataclass(frozen=True)
class RequestRecord:
    """One request as the ledger holds it.

    ``body`` is the validated request and ``details`` free progress information
    (resource ids and the like), both JSON-able. Times are timezone-aware UTC;
    ``etag`` is None until the record is stored.
    """

    request_id: str
    stage: Stage
    reason: str | None
    body: dict[str, Any]
    reply_to: str | None
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    etag: str | None = None

    def __post_init__(self) -> None:
        # Normalised here so that every record, stored or not, compares and
        # sorts in one timezone; a naive time is a bug in the caller.
        object.__setattr__(self, "created_at", _utc(self.created_at, "created_at"))
        object.__setattr__(self, "updated_at", _utc(self.updated_at, "updated_at"))

    @classmethod
    def new(
        cls,
        *,
        request_id: str,
        stage: Stage,
        body: dict[str, Any],
        now: datetime,
        reply_to: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> RequestRecord:
        """A record not yet stored, created and updated at ``now``."""
        return cls(request_id, stage, None, body, reply_to, dict(details or {}), now, now)


class Ledger(Protocol):
    """What the functions need from the ledger, whatever stores it."""

    def create(self, record: RequestRecord) -> RequestRecord:
        """Store a new record; return it with its ETag. RequestAlreadyExists if the id is taken."""
        ...

    def get(self, request_id: str) -> RequestRecord:
        """The stored record. RequestNotFound if there is none."""
        ...

    def advance(
        self,
        record: RequestRecord,
        stage: Stage,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> RequestRecord:
        """Move ``record`` to ``stage`` if nobody changed it since it was read.

        ``details`` is merged into the existing details (top-level keys are
        added or replaced); ``reason`` replaces the old one when given. Raises
        StaleRecord if the stored ETag differs from ``record.etag`` and
        FinalStageError when asked to leave a final stage (a final stage may be
        written again with itself, e.g. to add details).
        """
        ...

    def list_by_stage(self, stage: Stage) -> list[RequestRecord]:
        """Every record in ``stage``, oldest created first."""
        ...

    def list_recent(self, limit: int) -> list[RequestRecord]:
        """At most ``limit`` records, most recently updated first."""
        ...

    def records(self) -> "RecordStore":
        """Small keyed records kept in the same store (alert log, image usage): see :mod:`shared.records`."""
        ...


class InMemoryLedger:
    """The ledger in a dict: thread-safe, a new ETag per write.

    Bodies and details go through JSON on every write, so what this ledger
    accepts and returns is what :class:`TableLedger` would.
    """

    def __init__(self) -> None:
        # request id -> (record, body JSON, details JSON); the JSON is the stored
        # copy, so nothing a caller does to its dicts reaches the ledger.
        self._entities: dict[str, tuple[RequestRecord, str, str]] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self._records: "InMemoryRecords | None" = None

    def records(self) -> "InMemoryRecords":
        """See :meth:`Ledger.records`."""
        from .records import InMemoryRecords

        with self._lock:
            if self._records is None:
                self._records = InMemoryRecords()
            return self._records

    def create(self, record: RequestRecord) -> RequestRecord:
        """See :meth:`Ledger.create`."""
        body, details = _serialised(record)
        with self._lock:
            if record.request_id in self._entities:
                raise RequestAlreadyExists(f"request {record.request_id} exists already")
            stored = replace(record, etag=self._next_etag())
            self._entities[record.request_id] = (stored, body, details)
            return _thawed(stored, body, details)

    def get(self, request_id: str) -> RequestRecord:
        """See :meth:`Ledger.get`."""
        with self._lock:
            found = self._entities.get(request_id)
        if found is None:
            raise RequestNotFound(f"request {request_id} is not in the ledger")
        return _thawed(*found)

    def advance(
        self,
        record: RequestRecord,
        stage: Stage,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> RequestRecord:
        """See :meth:`Ledger.advance`."""
        updated = _advanced(record, stage, reason, details, now)
        body, merged = _serialised(updated)
        with self._lock:
            current = self._entities.get(record.request_id)
            if current is None:
                raise RequestNotFound(f"request {record.request_id} is not in the ledger")
            if current[0].etag != record.etag:
                raise StaleRecord(f"request {record.request_id} changed since it was read")
            stored = replace(updated, etag=self._next_etag())
            self._entities[record.request_id] = (stored, body, merged)
            return _thawed(stored, body, merged)

    def list_by_stage(self, stage: Stage) -> list[RequestRecord]:
        """See :meth:`Ledger.list_by_stage`."""
        with self._lock:
            found = [_thawed(*entity) for entity in self._entities.values() if entity[0].stage is stage]
        return sorted(found, key=_by_creation)

    def list_recent(self, limit: int) -> list[RequestRecord]:
        """See :meth:`Ledger.list_recent`."""
        _check_limit(limit)
        with self._lock:
            records = [_thawed(*entity) for entity in self._entities.values()]
        return _most_recent(records, limit)

    def _next_etag(self) -> str:
        return f'W/"{next(self._etags)}"'


_ROW_KEY = "request"
# Azure Tables caps a string property at 64 KiB of UTF-16.
_MAX_PROPERTY_BYTES = 64 * 1024


class TableLedger:
    """The ledger on Azure Table Storage.

    One entity per request: PartitionKey = request id, RowKey = ``request``.
    Requests are independent and every read or write names one request, so
    each request gets its own partition: point reads by (id, ``request``),
    no hot partition, and ETag checks are per request. The constant RowKey
    leaves room for more rows per request later (history, say) without moving
    the main one. Body and details are JSON strings; times are ISO 8601 UTC
    strings with microseconds (exact, and readable in Storage Explorer).

    The table is created on the first write that finds it missing; until then
    reads see an empty ledger. :meth:`ensure_table` creates it up front.
    """

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def records(self) -> "TableRecords":
        """See :meth:`Ledger.records`: extra rows in this table."""
        from .records import TableRecords

        return TableRecords(self._table)

    def ensure_table(self) -> None:
        """Create the table if it is missing (idempotent)."""
        from azure.core.exceptions import ResourceExistsError

        with _infrastructure_errors():
            try:
                self._table.create_table()
            except ResourceExistsError:
                pass

    def create(self, record: RequestRecord) -> RequestRecord:
        """See :meth:`Ledger.create`."""
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        entity = _to_entity(record)
        with _infrastructure_errors():
            try:
                try:
                    metadata = self._table.create_entity(entity)
                except HttpResponseError as exc:
                    # An insert can only be "not found" for want of the table;
                    # the SDK raises it undecoded, so the status is what we have.
                    if exc.status_code != 404:
                        raise
                    self.ensure_table()
                    metadata = self._table.create_entity(entity)
            except ResourceExistsError as exc:
                raise RequestAlreadyExists(f"request {record.request_id} exists already") from exc
        return replace(record, body=json.loads(entity["Body"]), details=json.loads(entity["Details"]), etag=metadata["etag"])

    def get(self, request_id: str) -> RequestRecord:
        """See :meth:`Ledger.get`."""
        from azure.core.exceptions import ResourceNotFoundError

        with _infrastructure_errors():
            try:
                entity = self._table.get_entity(request_id, _ROW_KEY)
            except ResourceNotFoundError as exc:  # no entity, or no table yet
                raise RequestNotFound(f"request {request_id} is not in the ledger") from exc
        return _from_entity(entity)

    def advance(
        self,
        record: RequestRecord,
        stage: Stage,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> RequestRecord:
        """See :meth:`Ledger.advance`."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        # The ETag check makes merging into the caller's copy safe: if the
        # stored record differs from it, the write is refused.
        updated = _advanced(record, stage, reason, details, now)
        entity = _to_entity(updated)
        with _infrastructure_errors():
            try:
                metadata = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=record.etag, match_condition=MatchConditions.IfNotModified
                )
            except ResourceModifiedError as exc:
                raise StaleRecord(f"request {record.request_id} changed since it was read") from exc
            except ResourceNotFoundError as exc:
                raise RequestNotFound(f"request {record.request_id} is not in the ledger") from exc
            except HttpResponseError as exc:
                if exc.status_code != 412:
                    raise
                raise StaleRecord(f"request {record.request_id} changed since it was read") from exc
        return replace(updated, body=json.loads(entity["Body"]), details=json.loads(entity["Details"]), etag=metadata["etag"])

    def list_by_stage(self, stage: Stage) -> list[RequestRecord]:
        """See :meth:`Ledger.list_by_stage`. Scans the table: fine for thousands of requests."""
        return sorted(self._query("Stage eq @stage", {"stage": stage.value}), key=_by_creation)

    def list_recent(self, limit: int) -> list[RequestRecord]:
        """See :meth:`Ledger.list_recent`. Reads the whole table: fine for thousands of requests."""
        _check_limit(limit)
        return _most_recent(self._query(None, {}), limit)

    def _query(self, query_filter: str | None, parameters: dict[str, str]) -> list[RequestRecord]:
        from azure.core.exceptions import ResourceNotFoundError

        with _infrastructure_errors():
            try:
                if query_filter is None:
                    entities = list(self._table.list_entities())
                else:
                    entities = list(self._table.query_entities(query_filter, parameters=parameters))
            except ResourceNotFoundError:  # a query misses only when the table does
                return []
        return [_from_entity(entity) for entity in entities if entity["RowKey"] == _ROW_KEY]


@contextmanager
def _infrastructure_errors() -> Iterator[None]:
    """Wrap Azure SDK errors not already translated, once, as LedgerUnavailable."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise LedgerUnavailable(f"the ledger table failed: {exc}") from exc


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc)


def _advanced(
    record: RequestRecord, stage: Stage, reason: str | None, details: dict[str, Any] | None, now: datetime | None
) -> RequestRecord:
    if record.etag is None:
        raise StaleRecord(f"request {record.request_id} was never read from the ledger")
    if record.stage.is_final and stage is not record.stage:
        raise FinalStageError(f"request {record.request_id} is {record.stage.value}; it cannot move to {stage.value}")
    return replace(
        record,
        stage=stage,
        reason=reason if reason is not None else record.reason,
        details={**record.details, **(details or {})},
        updated_at=now or datetime.now(timezone.utc),
    )


def _serialised(record: RequestRecord) -> tuple[str, str]:
    """Body and details as the JSON stored, checked against the store's limits."""
    body, details = json.dumps(record.body), json.dumps(record.details)
    for name, text in (("body", body), ("details", details)):
        if len(text.encode("utf-16-le")) > _MAX_PROPERTY_BYTES:
            raise RecordTooLarge(f"request {record.request_id}: {name} is over {_MAX_PROPERTY_BYTES} bytes as UTF-16 JSON")
    return body, details


def _thawed(record: RequestRecord, body: str, details: str) -> RequestRecord:
    """A copy the caller may change without changing the stored one."""
    return replace(record, body=json.loads(body), details=json.loads(details))


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")


def _by_creation(record: RequestRecord) -> tuple[datetime, str]:
    return record.created_at, record.request_id


def _most_recent(records: list[RequestRecord], limit: int) -> list[RequestRecord]:
    return sorted(records, key=lambda r: (r.updated_at, r.request_id), reverse=True)[:limit]


def _to_entity(record: RequestRecord) -> dict[str, Any]:
    body, details = _serialised(record)
    entity: dict[str, Any] = {
        "PartitionKey": record.request_id,
        "RowKey": _ROW_KEY,
        "Stage": record.stage.value,
        "Body": body,
        "Details": details,
        "CreatedAt": record.created_at.isoformat(timespec="microseconds"),
        "UpdatedAt": record.updated_at.isoformat(timespec="microseconds"),
    }
    # Absent rather than empty, so that None and "" stay distinct; REPLACE
    # removes a property the new entity leaves out.
    if record.reason is not None:
        entity["Reason"] = record.reason
    if record.reply_to is not None:
        entity["ReplyTo"] = record.reply_to
    return entity


def _from_entity(entity: TableEntity) -> RequestRecord:
    return RequestRecord(
        request_id=entity["PartitionKey"],
        stage=Stage(entity["Stage"]),
        reason=entity.get("Reason"),
        body=json.loads(entity["Body"]),
        reply_to=entity.get("ReplyTo"),
        details=json.loads(entity["Details"]),
        created_at=datetime.fromisoformat(entity["CreatedAt"]),
        updated_at=datetime.fromisoformat(entity["UpdatedAt"]),
        etag=entity.metadata["etag"],
    )
