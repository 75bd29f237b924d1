"""Small keyed records beside the ledger: conditional writes on one JSON document per key.

The alert log (one alert per condition and resource per window) and the image
usage registry (which pools use which image and lineage resource) each need a
handful of tiny documents that concurrent deliveries update safely. They live
in the ledger's own store, so they are exactly as durable as the requests: a
dict beside :class:`~shared.ledger.InMemoryLedger`, extra rows in the table of
:class:`~shared.ledger.TableLedger`. Every write is conditional (insert-only,
or replace/delete on the ETag read), which is what makes them race-free.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from azure.data.tables import TableClient


class RecordConflict(RuntimeError):
    """Another writer got there first (the key exists, or the ETag changed): re-read and decide again."""


@dataclass(frozen=True)
class KeyedRecord:
    """One stored document: ``kind`` and ``key`` name it, ``etag`` guards the next write."""

    kind: str
    key: str
    data: dict[str, Any]
    etag: str


class RecordStore(Protocol):
    def get(self, kind: str, key: str) -> KeyedRecord | None:
        """The record, or None."""
        ...

    def insert(self, kind: str, key: str, data: dict[str, Any]) -> KeyedRecord:
        """Store a new record; RecordConflict if the key exists."""
        ...

    def replace(self, record: KeyedRecord, data: dict[str, Any]) -> KeyedRecord:
        """Replace ``record`` if unchanged since read; RecordConflict otherwise."""
        ...

    def delete(self, record: KeyedRecord) -> None:
        """Delete ``record`` if unchanged since read (gone already: fine); RecordConflict if changed."""
        ...


def _normal(key: str) -> str:
    # Resource ids compare case-insensitively; so do the keys made from them.
    return key.lower()


class InMemoryRecords:
    """Records in a dict (the rehearsal's store); thread-safe, JSON round-tripped like the table."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[str, str]] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def get(self, kind: str, key: str) -> KeyedRecord | None:
        with self._lock:
            found = self._items.get((kind, _normal(key)))
        return KeyedRecord(kind, key, json.loads(found[0]), found[1]) if found else None

    def insert(self, kind: str, key: str, data: dict[str, Any]) -> KeyedRecord:
        text = json.dumps(data)
        with self._lock:
            if (kind, _normal(key)) in self._items:
                raise RecordConflict(f"{kind} record {key} exists already")
            etag = f'W/"{next(self._etags)}"'
            self._items[(kind, _normal(key))] = (text, etag)
        return KeyedRecord(kind, key, json.loads(text), etag)

    def replace(self, record: KeyedRecord, data: dict[str, Any]) -> KeyedRecord:
        text = json.dumps(data)
        with self._lock:
            found = self._items.get((record.kind, _normal(record.key)))
            if found is None or found[1] != record.etag:
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read")
            etag = f'W/"{next(self._etags)}"'
            self._items[(record.kind, _normal(record.key))] = (text, etag)
        return KeyedRecord(record.kind, record.key, json.loads(text), etag)

    def delete(self, record: KeyedRecord) -> None:
        with self._lock:
            found = self._items.get((record.kind, _normal(record.key)))
            if found is None:
                return
            if found[1] != record.etag:
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read")
            del self._items[(record.kind, _normal(record.key))]


class TableRecords:
    """Records as extra rows of the ledger's table.

    PartitionKey = ``<kind>-<sha256 of the key>`` (resource ids contain ``/``,
    which Table keys forbid, and may be long), RowKey = ``<kind>``: one point
    read or write per record, no hot partition, and the ledger's queries (which
    keep only RowKey ``request``) never see these rows.
    """

    def __init__(self, table_client: "TableClient") -> None:
        self._table = table_client

    @staticmethod
    def _partition(kind: str, key: str) -> str:
        return f"{kind}-{hashlib.sha256(_normal(key).encode()).hexdigest()}"

    def get(self, kind: str, key: str) -> KeyedRecord | None:
        from azure.core.exceptions import ResourceNotFoundError

        from .ledger import _infrastructure_errors

        with _infrastructure_errors():
            try:
                entity = self._table.get_entity(self._partition(kind, key), kind)
            except ResourceNotFoundError:
                return None
        return KeyedRecord(kind, key, json.loads(entity["Data"]), entity.metadata["etag"])

    def insert(self, kind: str, key: str, data: dict[str, Any]) -> KeyedRecord:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        from .ledger import _infrastructure_errors

        entity = {"PartitionKey": self._partition(kind, key), "RowKey": kind, "Key": key, "Data": json.dumps(data)}
        with _infrastructure_errors():
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
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        from .ledger import _infrastructure_errors

        entity = {"PartitionKey": self._partition(record.kind, record.key), "RowKey": record.kind, "Key": record.key, "Data": json.dumps(data)}
        with _infrastructure_errors():
            try:
                metadata = self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=record.etag, match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError) as exc:
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read") from exc
            except HttpResponseError as exc:
                if exc.status_code != 412:
                    raise
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read") from exc
        return KeyedRecord(record.kind, record.key, json.loads(entity["Data"]), metadata["etag"])

    def delete(self, record: KeyedRecord) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

        from .ledger import _infrastructure_errors

        with _infrastructure_errors():
            try:
                self._table.delete_entity(self._partition(record.kind, record.key), record.kind, etag=record.etag,
                                          match_condition=MatchConditions.IfNotModified)
            except ResourceNotFoundError:
                return
            except ResourceModifiedError as exc:
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read") from exc
            except HttpResponseError as exc:
                if exc.status_code != 412:
                    raise
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read") from exc
