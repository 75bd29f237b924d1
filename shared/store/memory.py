"""The ledger and its keyed records in memory: the rehearsal's store.

Bodies and details go through JSON on every write, so what these accept and
return is what the Table Storage back-end (:mod:`shared.store.tables`) would.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import replace
from typing import Any

from .ledger import Ledger, RequestAlreadyExists, RequestNotFound, RequestRecord, Stage, StaleRecord, serialised, thawed
from .records import KeyedRecord, RecordConflict, group_of, record_key


class InMemoryLedger(Ledger):
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
        self._records: InMemoryRecords | None = None

    def records(self) -> InMemoryRecords:
        """See :meth:`Ledger.records`."""
        with self._lock:
            if self._records is None:
                self._records = InMemoryRecords()
            return self._records

    def create(self, record: RequestRecord) -> RequestRecord:
        """See :meth:`Ledger.create`."""
        body, details = serialised(record)
        with self._lock:
            if record.request_id in self._entities:
                raise RequestAlreadyExists(f"request {record.request_id} exists already")
            stored = replace(record, etag=self._next_etag())
            self._entities[record.request_id] = (stored, body, details)
            return thawed(stored, body, details)

    def get(self, request_id: str) -> RequestRecord:
        """See :meth:`Ledger.get`."""
        with self._lock:
            found = self._entities.get(request_id)
        if found is None:
            raise RequestNotFound(f"request {request_id} is not in the ledger")
        return thawed(*found)

    def _replace(self, record: RequestRecord, updated: RequestRecord) -> RequestRecord:
        body, merged = serialised(updated)
        with self._lock:
            current = self._entities.get(record.request_id)
            if current is None:
                raise RequestNotFound(f"request {record.request_id} is not in the ledger")
            if current[0].etag != record.etag:
                raise StaleRecord(f"request {record.request_id} changed since it was read")
            stored = replace(updated, etag=self._next_etag())
            self._entities[record.request_id] = (stored, body, merged)
            return thawed(stored, body, merged)

    def _in_stages(self, stages: frozenset[Stage] | None) -> list[RequestRecord]:
        with self._lock:
            return [thawed(*entity) for entity in self._entities.values() if stages is None or entity[0].stage in stages]

    def _reply_pending(self) -> list[RequestRecord]:
        return self._in_stages(None)

    def _next_etag(self) -> str:
        return f'W/"{next(self._etags)}"'


class InMemoryRecords:
    """Records in a dict (the rehearsal's store); thread-safe, JSON round-tripped like the table."""

    def __init__(self) -> None:
        # kind -> lower-cased key -> (JSON text, ETag): a kind is listed without walking the others, as a table query by
        # partition is; and each group's member keys, so a group is listed without walking its kind.
        self._items: dict[str, dict[str, tuple[str, str]]] = {}
        self._members: dict[tuple[str, str], set[str]] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def get(self, kind: str, key: str) -> KeyedRecord | None:
        with self._lock:
            found = self._items.get(kind, {}).get(record_key(key))
        return KeyedRecord(kind, key, json.loads(found[0]), found[1]) if found else None

    def insert(self, kind: str, key: str, data: dict[str, Any]) -> KeyedRecord:
        text = json.dumps(data)
        stored = record_key(key)
        with self._lock:
            items = self._items.setdefault(kind, {})
            if stored in items:
                raise RecordConflict(f"{kind} record {key} exists already")
            etag = f'W/"{next(self._etags)}"'
            items[stored] = (text, etag)
            if (group := group_of(stored)) is not None:
                self._members.setdefault((kind, group), set()).add(stored)
        return KeyedRecord(kind, key, json.loads(text), etag)

    def replace(self, record: KeyedRecord, data: dict[str, Any]) -> KeyedRecord:
        text = json.dumps(data)
        with self._lock:
            items = self._items.get(record.kind, {})
            found = items.get(record_key(record.key))
            if found is None or found[1] != record.etag:
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read")
            etag = f'W/"{next(self._etags)}"'
            items[record_key(record.key)] = (text, etag)
        return KeyedRecord(record.kind, record.key, json.loads(text), etag)

    def delete(self, record: KeyedRecord) -> None:
        stored = record_key(record.key)
        with self._lock:
            items = self._items.get(record.kind, {})
            found = items.get(stored)
            if found is None:
                return
            if found[1] != record.etag:
                raise RecordConflict(f"{record.kind} record {record.key} changed since it was read")
            del items[stored]
            if (group := group_of(stored)) is not None:
                self._members.get((record.kind, group), set()).discard(stored)

    def list(self, kind: str, group: str | None = None) -> list[KeyedRecord]:
        with self._lock:
            items = self._items.get(kind, {})
            keys: set[str] | dict[str, tuple[str, str]] = items if group is None else self._members.get((kind, record_key(group)), set())
            found = sorted((key, *items[key]) for key in keys)
        # The stored key is the lower-cased one: what a caller gets back compares equal under record_key.
        return [KeyedRecord(kind, key, json.loads(text), etag) for key, text, etag in found]
