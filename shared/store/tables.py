"""The ledger and its keyed records on Azure Table Storage (production; Azurite in tests).

Importing this module loads no Azure SDK: the Functions host imports the app
to index it, so ``azure.data.tables`` / ``azure.core`` are imported inside the
methods that use them (cold start).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .ledger import (
    FINAL_STAGES,
    Ledger,
    LedgerError,
    LedgerRefused,
    LedgerUnavailable,
    RecordTooLarge,
    RequestAlreadyExists,
    RequestNotFound,
    RequestRecord,
    Stage,
    StaleRecord,
    serialised,
)
from .records import KeyedRecord, RecordConflict, group_of, record_key

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

log = logging.getLogger(__name__)

_ROW_KEY = "request"
# One row per open request (not final, or final with its reply still owed), RowKey = request id. The timer's
# queries read this one partition and then the records it names, so their cost grows with open requests, not
# with every final record ever kept (a filter on Stage is a scan of the whole table on the service's side).
# Not a request id: those are lower case.
_OPEN_PARTITION = "Open_Requests"
# An index row whose record does not exist is a create in progress, or one that died after the row was
# written; after this long it is the latter, and the row goes.
_ORPHAN_GRACE = timedelta(minutes=15)


class TableLedger(Ledger):
    """The ledger on Azure Table Storage.

    One entity per request: PartitionKey = request id, RowKey = ``request``;
    plus one row per open request in the ``Open_Requests`` partition (see
    :data:`_OPEN_PARTITION`), written before the record and removed after it
    closes, so the index may name more requests than are open, never fewer.
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

    def records(self) -> TableRecords:
        """See :meth:`Ledger.records`: extra rows in this table."""
        return TableRecords(self._table)

    def ensure_table(self) -> None:
        """Create the table if it is missing (idempotent)."""
        # Azure SDK, loaded on first use (cold start).
        from azure.core.exceptions import ResourceExistsError

        with infrastructure_errors():
            try:
                self._table.create_table()
            except ResourceExistsError:
                pass

    def create(self, record: RequestRecord) -> RequestRecord:
        """See :meth:`Ledger.create`."""
        # Azure SDK, loaded on first use (cold start).
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        entity = _to_entity(record)
        if _is_open(record):
            self._mark_open(record.request_id)
        with infrastructure_errors():
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
        # Azure SDK, loaded on first use (cold start).
        from azure.core.exceptions import ResourceNotFoundError

        with infrastructure_errors():
            try:
                entity = self._table.get_entity(request_id, _ROW_KEY)
            except ResourceNotFoundError as exc:  # no entity, or no table yet
                raise RequestNotFound(f"request {request_id} is not in the ledger") from exc
        return _from_entity(entity)

    def _replace(self, record: RequestRecord, updated: RequestRecord) -> RequestRecord:
        """See :meth:`Ledger._replace`."""
        from azure.core import MatchConditions  # Azure SDK: first use (cold start)
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        # The ETag check makes merging into the caller's copy safe: if the
        # stored record differs from it, the write is refused.
        entity = _to_entity(updated)
        with infrastructure_errors():
            try:
                with _unless_modified(lambda: StaleRecord(f"request {record.request_id} changed since it was read")):
                    metadata = self._table.update_entity(
                        entity, mode=UpdateMode.REPLACE, etag=record.etag, match_condition=MatchConditions.IfNotModified
                    )
            except ResourceNotFoundError as exc:
                raise RequestNotFound(f"request {record.request_id} is not in the ledger") from exc
        if not _is_open(updated):
            self._close(updated.request_id)
        return replace(updated, body=json.loads(entity["Body"]), details=json.loads(entity["Details"]), etag=metadata["etag"])

    def _in_stages(self, stages: frozenset[Stage] | None) -> list[RequestRecord]:
        if stages is not None and not any(stage.is_final for stage in stages):
            return [record for record in self._open_records() if record.stage in stages]
        # Final stages (ops' listings): a filtered scan of the table. One query for all the stages asked for
        # (a filter may hold up to 15 comparisons; there are 9 stages).
        if stages is None:
            return self._query(None, {})
        ordered = sorted(stages, key=lambda s: s.value)
        query_filter = " or ".join(f"Stage eq @stage{i}" for i in range(len(ordered)))
        return self._query(query_filter, {f"stage{i}": stage.value for i, stage in enumerate(ordered)})

    def _reply_pending(self) -> list[RequestRecord]:
        return self._open_records()

    def _final_before(self, cutoff: datetime) -> list[RequestRecord]:
        # Once a day (the retention pass): a scan, narrowed on the service's side by the update time. UpdatedAt
        # is ISO 8601 in UTC with microseconds, so string order is time order.
        stages = sorted(FINAL_STAGES, key=lambda s: s.value)
        stage_filter = " or ".join(f"Stage eq @stage{i}" for i in range(len(stages)))
        parameters = {f"stage{i}": stage.value for i, stage in enumerate(stages)}
        parameters["cutoff"] = cutoff.isoformat(timespec="microseconds")
        # The SDK substitutes @names in words split on spaces: a parenthesis must stand apart from a name.
        return self._query(f"( {stage_filter} ) and UpdatedAt lt @cutoff", parameters)

    def _open_records(self) -> list[RequestRecord]:
        """The records the open-requests partition names that are still open; rows naming closed ones are removed."""
        from azure.core.exceptions import ResourceNotFoundError  # Azure SDK: first use (cold start)

        with infrastructure_errors():
            try:
                rows = list(self._table.query_entities("PartitionKey eq @open", parameters={"open": _OPEN_PARTITION}))
            except ResourceNotFoundError:  # no table yet
                return []
        found: list[RequestRecord] = []
        for row in rows:
            try:
                record = self.get(row["RowKey"])
            except RequestNotFound:
                written = row.metadata.get("timestamp")
                if isinstance(written, datetime) and datetime.now(UTC) - written > _ORPHAN_GRACE:
                    # Only the row as read: a create delivered again rewrites it (a new ETag) just before
                    # its record is written, and that row must stay.
                    self._close(row["RowKey"], etag=row.metadata.get("etag"))
                continue
            if _is_open(record):
                found.append(record)
            else:  # closed, but the removal after its last write did not happen
                self._close(record.request_id)
        return found

    def _mark_open(self, request_id: str) -> None:
        from azure.core.exceptions import HttpResponseError  # Azure SDK: first use (cold start)
        from azure.data.tables import UpdateMode

        row = {"PartitionKey": _OPEN_PARTITION, "RowKey": request_id}
        with infrastructure_errors():
            try:
                self._table.upsert_entity(row, mode=UpdateMode.REPLACE)
            except HttpResponseError as exc:
                if exc.status_code != 404:  # 404 on upsert: no table yet
                    raise
                self.ensure_table()
                self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def _close(self, request_id: str, etag: str | None = None) -> None:
        """Remove a closed request's index row (with ``etag``: only if unchanged since read).

        Best effort: a row left behind is removed by the next listing; a row rewritten since it was read stays.
        """
        from azure.core import MatchConditions  # Azure SDK: first use (cold start)

        try:
            with infrastructure_errors(), _unless_modified(lambda: StaleRecord(f"the open-requests row of {request_id} was rewritten")):
                self._table.delete_entity(_OPEN_PARTITION, request_id, etag=etag,
                                          match_condition=MatchConditions.IfNotModified if etag else None)
        except StaleRecord:
            log.info("ledger: the open-requests row of %s was rewritten since it was read; it stays", request_id)
        except LedgerError:
            log.warning("ledger: the open-requests row of %s stays until the next listing", request_id, exc_info=True)

    def _query(self, query_filter: str | None, parameters: dict[str, str]) -> list[RequestRecord]:
        # Azure SDK, loaded on first use (cold start).
        from azure.core.exceptions import ResourceNotFoundError

        with infrastructure_errors():
            try:
                if query_filter is None:
                    entities = list(self._table.list_entities())
                else:
                    entities = list(self._table.query_entities(query_filter, parameters=parameters))
            except ResourceNotFoundError:  # a query misses only when the table does
                return []
        return [_from_entity(entity) for entity in entities if entity["RowKey"] == _ROW_KEY and entity["PartitionKey"] != _OPEN_PARTITION]



@contextmanager
def _unless_modified(conflict: Callable[[], Exception]) -> Iterator[None]:
    """Raise ``conflict()`` when an If-Match write finds the entity changed (412; the SDK's ResourceModifiedError)."""
    from azure.core.exceptions import HttpResponseError, ResourceModifiedError  # Azure SDK: first use (cold start)

    try:
        yield
    except ResourceModifiedError as exc:
        raise conflict() from exc
    except HttpResponseError as exc:
        if exc.status_code != 412:
            raise
        raise conflict() from exc


def _changed(record: KeyedRecord) -> Callable[[], RecordConflict]:
    return lambda: RecordConflict(f"{record.kind} record {record.key} changed since it was read")


@contextmanager
def infrastructure_errors() -> Iterator[None]:
    """Wrap Azure SDK errors not already translated, once: refusals of the call itself as permanent, the rest as
    LedgerUnavailable (an outage, throttling, a connection lost: retry later)."""
    # Azure SDK, loaded on first use (cold start).
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        # Table storage refuses oversized entities for good (Table service error codes, learn.microsoft.com/rest/api/storageservices/table-service-error-codes):
        # retrying cannot help, so they are permanent, not an outage.
        if getattr(exc, "error_code", None) in _TOO_LARGE or any(code in str(exc) for code in _TOO_LARGE):
            raise RecordTooLarge(f"the ledger table refused the record as too large: {exc}") from exc
        # 400 is the service saying the call itself is malformed (OutOfRangeInput, InvalidInput: a key with '/', '\\',
        # '#' or '?', Table service error codes): the same call is refused again however often it is retried.
        if getattr(exc, "status_code", None) == 400:
            raise LedgerRefused(f"the ledger table refused the call: {exc}") from exc
        raise LedgerUnavailable(f"the ledger table failed: {exc}") from exc


_TOO_LARGE = ("PropertyValueTooLarge", "EntityTooLarge", "RequestBodyTooLarge")


def _is_open(record: RequestRecord) -> bool:
    return not record.stage.is_final or record.reply_pending


def _to_entity(record: RequestRecord) -> dict[str, Any]:
    body, details = serialised(record)
    entity: dict[str, Any] = {
        "PartitionKey": record.request_id,
        "RowKey": _ROW_KEY,
        "Stage": record.stage.value,
        "Body": body,
        "Details": details,
        "CreatedAt": record.created_at.isoformat(timespec="microseconds"),
        "UpdatedAt": record.updated_at.isoformat(timespec="microseconds"),
        "ReplyPending": record.reply_pending,
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


class TableRecords:
    """Records as extra rows of the ledger's table.

    PartitionKey = ``<kind>-<sha256 of the key>`` (resource ids contain ``/``,
    which Table keys forbid, and may be long), RowKey = ``<kind>``: one point
    read or write per record, no hot partition, and the ledger's queries (which
    keep only RowKey ``request``) never see these rows.

    A member key (:func:`shared.store.records.member_key`) shares its group's
    partition: PartitionKey = ``<kind>-<sha256 of the group>``, RowKey =
    ``<kind>-<sha256 of the key>``, so a group's members are one partition query.
    Every record of a kind is one PartitionKey range query (``<kind>-`` up to
    ``<kind>.``): partitions are stored and scanned in key order.
    """

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    @staticmethod
    def _partition(kind: str, key: str) -> str:
        group = group_of(record_key(key))
        return f"{kind}-{_digest(key if group is None else group)}"

    @staticmethod
    def _row(kind: str, key: str) -> str:
        return kind if group_of(record_key(key)) is None else f"{kind}-{_digest(key)}"

    def list(self, kind: str, group: str | None = None) -> list[KeyedRecord]:
        # Azure SDK, loaded on first use (cold start).
        from azure.core.exceptions import ResourceNotFoundError

        if group is None:
            query, parameters = "PartitionKey ge @low and PartitionKey lt @high", {"low": f"{kind}-", "high": f"{kind}."}
        else:
            query, parameters = "PartitionKey eq @partition", {"partition": f"{kind}-{_digest(group)}"}
        with infrastructure_errors():
            try:
                entities = list(self._table.query_entities(query, parameters=parameters))
            except ResourceNotFoundError:  # no table yet
                return []
        digest = len(kind) + 65  # "<kind>-" and 64 hex digits: a longer kind sharing the prefix is not this one
        found = [
            KeyedRecord(kind, entity["Key"], json.loads(entity["Data"]), str(entity.metadata["etag"]))
            for entity in entities
            if "Key" in entity and len(entity["PartitionKey"]) == digest
            and (entity["RowKey"] == kind or (len(entity["RowKey"]) == digest and entity["RowKey"].startswith(f"{kind}-")))
        ]
        if group is not None:
            found = [r for r in found if group_of(record_key(r.key)) == record_key(group)]
        return sorted(found, key=lambda r: record_key(r.key))

    def get(self, kind: str, key: str) -> KeyedRecord | None:
        # Azure SDK, loaded on first use (cold start).
        from azure.core.exceptions import ResourceNotFoundError

        with infrastructure_errors():
            try:
                entity = self._table.get_entity(self._partition(kind, key), self._row(kind, key))
            except ResourceNotFoundError:
                return None
        return KeyedRecord(kind, key, json.loads(entity["Data"]), str(entity.metadata["etag"]))

    def insert(self, kind: str, key: str, data: dict[str, Any]) -> KeyedRecord:
        # Azure SDK, loaded on first use (cold start).
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        entity = {"PartitionKey": self._partition(kind, key), "RowKey": self._row(kind, key), "Key": key, "Data": json.dumps(data)}
        with infrastructure_errors():
            try:
                try:
                    metadata = self._table.create_entity(entity)
                except HttpResponseError as exc:
                    if exc.status_code != 404:  # 404 on insert: no table yet
                        raise
                    self._table.create_table()
                    metadata = self._table.create_entity(entity)
            except ResourceExistsError as exc:
                raise RecordConflict(f"{kind} record {key} exists already") from exc
        return KeyedRecord(kind, key, json.loads(entity["Data"]), metadata["etag"])

    def replace(self, record: KeyedRecord, data: dict[str, Any]) -> KeyedRecord:
        from azure.core import MatchConditions  # Azure SDK: first use (cold start)
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": self._partition(record.kind, record.key), "RowKey": self._row(record.kind, record.key), "Key": record.key,
                  "Data": json.dumps(data)}
        changed = _changed(record)
        with infrastructure_errors():
            try:
                with _unless_modified(changed):
                    metadata = self._table.update_entity(
                        entity, mode=UpdateMode.REPLACE, etag=record.etag, match_condition=MatchConditions.IfNotModified
                    )
            except ResourceNotFoundError as exc:
                raise changed() from exc
        return KeyedRecord(record.kind, record.key, json.loads(entity["Data"]), metadata["etag"])

    def delete(self, record: KeyedRecord) -> None:
        from azure.core import MatchConditions  # Azure SDK: first use (cold start)
        from azure.core.exceptions import ResourceNotFoundError

        with infrastructure_errors():
            try:
                with _unless_modified(_changed(record)):
                    self._table.delete_entity(self._partition(record.kind, record.key), self._row(record.kind, record.key), etag=record.etag,
                                              match_condition=MatchConditions.IfNotModified)
            except ResourceNotFoundError:
                return


def _digest(key: str) -> str:
    return hashlib.sha256(record_key(key).encode()).hexdigest()
