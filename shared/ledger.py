"""The request ledger: one record per pool request, its stage and why.

Stage changes are conditional writes on the record's ETag, so concurrent or
duplicated deliveries advance a request once: the loser gets
:class:`StaleRecord`, re-reads and sees the winner's work. Production uses
Azure Table Storage (:class:`TableLedger`); the rehearsal may use
:class:`InMemoryLedger`; the same contract tests run against both.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from azure.data.tables import TableClient


class Stage(str, Enum):
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
        return self in (Stage.READY, Stage.FAILED, Stage.REJECTED)


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


class LedgerUnavailable(LedgerError):
    """The store could not be reached or failed: transient, retry later."""


@dataclass(frozen=True)
class RequestRecord:
    """One request as the ledger holds it."""

    request_id: str
    stage: Stage
    reason: str | None
    body: dict
    reply_to: str | None
    details: dict
    created_at: datetime
    updated_at: datetime
    etag: str | None = None

    @classmethod
    def new(cls, *, request_id: str, stage: Stage, body: dict, reply_to: str | None, details: dict, now: datetime) -> "RequestRecord":
        """A record not yet stored."""
        return cls(request_id, stage, None, body, reply_to, details, now, now)


class Ledger(Protocol):
    def create(self, record: RequestRecord) -> RequestRecord: ...

    def get(self, request_id: str) -> RequestRecord: ...

    def advance(
        self, record: RequestRecord, stage: Stage, *, reason: str | None = None, details: dict | None = None, now: datetime | None = None
    ) -> RequestRecord: ...

    def list_by_stage(self, stage: Stage) -> list[RequestRecord]: ...

    def list_recent(self, limit: int) -> list[RequestRecord]: ...


def _advanced(record: RequestRecord, stage: Stage, reason: str | None, details: dict | None, now: datetime | None) -> RequestRecord:
    if record.stage.is_final and stage is not record.stage:
        raise FinalStageError(f"request {record.request_id} is {record.stage.value}; it cannot move to {stage.value}")
    merged = {**record.details, **(details or {})}
    return replace(record, stage=stage, reason=reason if reason is not None else record.reason, details=merged,
                   updated_at=now or datetime.now(timezone.utc))


class InMemoryLedger:
    """The ledger in a dict: thread-safe, ETags per write."""

    def __init__(self) -> None:
        self._records: dict[str, RequestRecord] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def create(self, record: RequestRecord) -> RequestRecord:
        with self._lock:
            if record.request_id in self._records:
                raise RequestAlreadyExists(f"request {record.request_id} exists already")
            stored = replace(record, etag=f"W/\"{next(self._etags)}\"", body=copy.deepcopy(record.body), details=copy.deepcopy(record.details))
            self._records[record.request_id] = stored
            return stored

    def get(self, request_id: str) -> RequestRecord:
        with self._lock:
            found = self._records.get(request_id)
        if found is None:
            raise RequestNotFound(f"request {request_id} is not in the ledger")
        return found

    def advance(self, record: RequestRecord, stage: Stage, *, reason: str | None = None, details: dict | None = None,
                now: datetime | None = None) -> RequestRecord:
        with self._lock:
            current = self._records.get(record.request_id)
            if current is None:
                raise RequestNotFound(f"request {record.request_id} is not in the ledger")
            if current.etag != record.etag:
                raise StaleRecord(f"request {record.request_id} changed since it was read")
            updated = replace(_advanced(current, stage, reason, details, now), etag=f"W/\"{next(self._etags)}\"")
            self._records[record.request_id] = updated
            return updated

    def list_by_stage(self, stage: Stage) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._records.values() if r.stage is stage]

    def list_recent(self, limit: int) -> list[RequestRecord]:
        with self._lock:
            records = sorted(self._records.values(), key=lambda r: r.updated_at, reverse=True)
        return records[:limit]


_ROW_KEY = "request"


class TableLedger:
    """The ledger on Azure Table Storage.

    One entity per request: PartitionKey = request id (requests are
    independent, so each gets its own partition and writes never contend
    across requests), RowKey = ``request``. Body and details are JSON strings.
    """

    def __init__(self, table: "TableClient") -> None:
        self._table = table
        self._table_ready = False

    def ensure_table(self) -> None:
        """Create the table if it is missing (idempotent)."""
        from azure.core.exceptions import ResourceExistsError

        if self._table_ready:
            return
        with _translated_errors():
            try:
                self._table.create_table()
            except ResourceExistsError:
                pass
        self._table_ready = True

    def create(self, record: RequestRecord) -> RequestRecord:
        from azure.core.exceptions import ResourceExistsError

        self.ensure_table()
        with _translated_errors():
            try:
                metadata = self._table.create_entity(_to_entity(record))
            except ResourceExistsError as exc:
                raise RequestAlreadyExists(f"request {record.request_id} exists already") from exc
        return replace(record, etag=metadata["etag"])

    def get(self, request_id: str) -> RequestRecord:
        from azure.core.exceptions import ResourceNotFoundError

        self.ensure_table()
        with _translated_errors():
            try:
                entity = self._table.get_entity(request_id, _ROW_KEY)
            except ResourceNotFoundError as exc:
                raise RequestNotFound(f"request {request_id} is not in the ledger") from exc
        return _from_entity(entity)

    def advance(self, record: RequestRecord, stage: Stage, *, reason: str | None = None, details: dict | None = None,
                now: datetime | None = None) -> RequestRecord:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        if record.etag is None:
            raise StaleRecord(f"request {record.request_id} was never read from the ledger")
        updated = _advanced(record, stage, reason, details, now)
        self.ensure_table()
        with _translated_errors():
            try:
                metadata = self._table.update_entity(
                    _to_entity(updated), mode=UpdateMode.REPLACE, etag=record.etag, match_condition=MatchConditions.IfNotModified
                )
            except ResourceModifiedError as exc:
                raise StaleRecord(f"request {record.request_id} changed since it was read") from exc
            except ResourceNotFoundError as exc:
                raise RequestNotFound(f"request {record.request_id} is not in the ledger") from exc
        return replace(updated, etag=metadata["etag"])

    def list_by_stage(self, stage: Stage) -> list[RequestRecord]:
        self.ensure_table()
        with _translated_errors():
            entities = self._table.query_entities("Stage eq @stage", parameters={"stage": stage.value})
            return [_from_entity(e) for e in entities]

    def list_recent(self, limit: int) -> list[RequestRecord]:
        self.ensure_table()
        with _translated_errors():
            records = [_from_entity(e) for e in self._table.list_entities()]
        return sorted(records, key=lambda r: r.updated_at, reverse=True)[:limit]


class _translated_errors:
    """Wraps unknown infrastructure errors once as LedgerUnavailable; ledger errors pass through."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or isinstance(error, LedgerError):
            return False
        from azure.core.exceptions import AzureError

        if isinstance(error, AzureError):
            raise LedgerUnavailable(f"the ledger table failed: {error}") from error
        return False


def _to_entity(record: RequestRecord) -> dict[str, Any]:
    return {
        "PartitionKey": record.request_id,
        "RowKey": _ROW_KEY,
        "Stage": record.stage.value,
        "Reason": record.reason or "",
        "Body": json.dumps(record.body),
        "ReplyTo": record.reply_to or "",
        "Details": json.dumps(record.details),
        "CreatedAt": record.created_at.isoformat(),
        "UpdatedAt": record.updated_at.isoformat(),
    }


def _from_entity(entity: Any) -> RequestRecord:
    return RequestRecord(
        request_id=entity["PartitionKey"],
        stage=Stage(entity["Stage"]),
        reason=entity.get("Reason") or None,
        body=json.loads(entity["Body"]),
        reply_to=entity.get("ReplyTo") or None,
        details=json.loads(entity["Details"]),
        created_at=datetime.fromisoformat(entity["CreatedAt"]),
        updated_at=datetime.fromisoformat(entity["UpdatedAt"]),
        etag=entity.metadata["etag"],
    )
