"""Small keyed records beside the ledger: conditional writes on one JSON document per key.

The alert log (one alert per condition and resource per window) and the image
usage registry (which pools use which image and lineage resource) each need a
handful of tiny documents that concurrent deliveries update safely. They live
in the ledger's own store, so they are exactly as durable as the requests: a
dict beside the in-memory ledger (:mod:`shared.store.memory`), extra rows in the
ledger's table (:mod:`shared.store.tables`). Every write is conditional
(insert-only, or replace/delete on the ETag read), which is what makes them race-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import TransientError

# Lost races retried before a record counts as contended.
_RACES = 5


class RecordConflict(TransientError):
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

    def list(self, kind: str, group: str | None = None) -> list[KeyedRecord]:
        """Every record of ``kind``; with ``group``, only those keyed :func:`member_key` ``(group, ...)``.

        What keeps a record small however many members it would otherwise list (the pools that use
        one image, say): one record per member, found again with one query rather than one document.
        """
        ...


def record_key(key: str) -> str:
    # Resource ids compare case-insensitively; so do the keys made from them.
    return key.lower()


# Between a group and its member in a record key. Never part of an ARM id or of the keys stored before groups existed.
GROUP_SEPARATOR = "#"


def member_key(group: str, member: str) -> str:
    """The key of ``member``'s record in ``group`` (listed together by :meth:`RecordStore.list`)."""
    return f"{group}{GROUP_SEPARATOR}{member}"


def group_of(key: str) -> str | None:
    """The group part of a member key; None for a plain key."""
    group, separator, _ = key.partition(GROUP_SEPARATOR)
    return group if separator else None


def update_record(
    records: RecordStore, kind: str, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]
) -> dict[str, Any]:
    """Read-modify-write one record with its ETag, retrying lost races; the data stored.

    ``change`` gets the current data (None when there is no record) and returns the new data;
    when that equals the current data nothing is written.
    """
    for _ in range(_RACES):
        current = records.get(kind, key)
        data = change(current.data if current is not None else None)
        if current is not None and data == current.data:
            return current.data  # nothing to change: no write (a redelivery, a pool already counted)
        try:
            stored = records.insert(kind, key, data) if current is None else records.replace(current, data)
            return stored.data
        except RecordConflict:
            continue
    raise RecordConflict(f"{kind} record {key} is contended; retry later")


def delete_record(
    records: RecordStore, kind: str, key: str, only_if: Callable[[dict[str, Any]], bool] = lambda data: True
) -> None:
    """Delete one record if ``only_if`` holds for its data as read, retrying lost races."""
    for _ in range(_RACES):
        current = records.get(kind, key)
        if current is None or not only_if(current.data):
            return
        try:
            records.delete(current)
            return
        except RecordConflict:
            continue
