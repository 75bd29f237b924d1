"""The request ledger's contract: one record per pool request, its stage and why.

Stage changes are conditional writes on the record's ETag, so concurrent or
duplicated deliveries advance a request once: the loser gets
:class:`StaleRecord`, re-reads and sees the winner's work. Production uses
Azure Table Storage (:class:`shared.store.tables.TableLedger`); the rehearsal
uses :class:`shared.store.memory.InMemoryLedger`; the same contract tests run
against both (``tests/ledger/test_ledger_contract.py``).

A record's stored request and plan are read through :attr:`RequestRecord.request`
and :attr:`RequestRecord.plan`, the only code that knows how they are stored.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..arm.ids import ArmIdError
from ..errors import PermanentError, TransientError
from ..model.plan import ResourcePlan
from ..model.request import Request, request_model
from .progress import (
    AGED_OUT_DETAIL,
    ANSWERS_REQUEST_DETAIL,
    PLAN_DETAIL,
    REPLIED_DETAIL,
    REPLY_REFUSED_DETAIL,
    Progress,
)

if TYPE_CHECKING:
    from .records import RecordStore


class Stage(str, Enum):
    """Where a request stands. READY, FAILED and REJECTED are final.

    A refresh goes from its version (PUBLISHING) to REFRESHING (its pool moving to the new image), then SCALING.
    """

    RECEIVED = "RECEIVED"
    SNAPSHOTTING = "SNAPSHOTTING"
    IMAGING = "IMAGING"
    PUBLISHING = "PUBLISHING"
    CREATING_POOL = "CREATING_POOL"
    REFRESHING = "REFRESHING"
    SCALING = "SCALING"
    READY = "READY"
    FAILED = "FAILED"
    REJECTED = "REJECTED"

    @property
    def is_final(self) -> bool:
        """True for the stages a request never leaves."""
        return self in FINAL_STAGES


FINAL_STAGES: frozenset[Stage] = frozenset({Stage.READY, Stage.FAILED, Stage.REJECTED})
# Stages the pipeline drives; REFRESHING belongs to the refresh (driven by the guard's looks), SCALING to the pool guard.
PIPELINE_STAGES: tuple[Stage, ...] = (Stage.RECEIVED, Stage.SNAPSHOTTING, Stage.IMAGING, Stage.PUBLISHING, Stage.CREATING_POOL)

# What an aged-out record keeps of its details: small, and what tells ops which resources the id named.
_KEPT_WHEN_AGED_OUT = (PLAN_DETAIL, REPLIED_DETAIL, REPLY_REFUSED_DETAIL, ANSWERS_REQUEST_DETAIL)
# A reason longer than this is cut: a reason must fit the record however long the field names in it are.
MAX_REASON_CHARS = 2000


class LedgerError(RuntimeError):
    """Base of every ledger failure."""


class RequestAlreadyExists(LedgerError, PermanentError):
    """A record with this request id exists already."""


class RequestNotFound(LedgerError, PermanentError):
    """No record with this request id."""


class StaleRecord(LedgerError, TransientError):
    """The record changed since it was read: another delivery advanced it first."""


class FinalStageError(LedgerError, PermanentError):
    """READY, FAILED and REJECTED are final: a request never leaves them."""


class RecordTooLarge(LedgerError, PermanentError):
    """The body or details are too large to store: permanent, retrying will not help."""


class LedgerRefused(LedgerError, PermanentError):
    """The store refused the request itself (400: a key or value it cannot hold): retrying the same call cannot help."""


class LedgerUnavailable(LedgerError, TransientError):
    """The store could not be reached or failed: transient, retry later."""


@dataclass(frozen=True)
class RequestRecord:
    """One request as the ledger holds it.

    ``body`` is the validated request and ``details`` its plan and progress, both JSON-able
    (read through :attr:`plan` and :attr:`progress`, written through :mod:`shared.store.progress`). Times are timezone-aware UTC;
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
        object.__setattr__(self, "created_at", utc(self.created_at, "created_at"))
        object.__setattr__(self, "updated_at", utc(self.updated_at, "updated_at"))

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
        reason: str | None = None,
    ) -> RequestRecord:
        """A record not yet stored, created and updated at ``now``."""
        return cls(request_id, stage, bounded_reason(reason) if reason is not None else None, body, reply_to,
                   dict(details or {}), now, now)

    @cached_property
    def request(self) -> Request | None:
        """The validated request (a pool request or a refresh), or None when the body is not one (a rejected message keeps
        its raw text)."""
        try:
            return request_model(self.body).model_validate(self.body)
        except ValidationError:
            return None

    @cached_property
    def plan(self) -> ResourcePlan | None:
        """What the request creates, as planned at intake; None before (or without) a plan."""
        stored = self.details.get(PLAN_DETAIL)
        if not isinstance(stored, dict):
            return None
        try:
            return ResourcePlan.from_details(self.request_id, stored)
        except (KeyError, TypeError, ArmIdError):
            return None

    @cached_property
    def progress(self) -> Progress:
        """The steps claimed, the resources confirmed and the replies sent, as the details say."""
        return Progress.of(self.details)

    @property
    def pool_id(self) -> str | None:
        """The planned pool's id, if the request got that far."""
        return self.plan.pool.id if self.plan is not None else None

    @property
    def reply_pending(self) -> bool:
        """Final, with a reply queue, and the outcome not yet sent there."""
        return self.stage.is_final and self.reply_to is not None and not self.progress.replied

    @property
    def source_os_type(self) -> str | None:
        """The source's OS type as intake read it (``Linux`` / ``Windows``)."""
        return self.progress.os_type


class Ledger(ABC):
    """What the functions need from the ledger, whatever stores it."""

    @abstractmethod
    def create(self, record: RequestRecord) -> RequestRecord:
        """Store a new record; return it with its ETag. RequestAlreadyExists if the id is taken."""

    @abstractmethod
    def get(self, request_id: str) -> RequestRecord:
        """The stored record. RequestNotFound if there is none."""

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
        return self._replace(record, advanced(record, stage, reason, details, now))

    @abstractmethod
    def _replace(self, record: RequestRecord, updated: RequestRecord) -> RequestRecord:
        """Store ``updated`` in place of ``record`` if its ETag still matches; the stored copy."""

    def list_by_stage(self, stage: Stage) -> list[RequestRecord]:
        """Every record in ``stage``, oldest created first."""
        return self.list_in_stages((stage,))

    def list_in_stages(self, stages: Iterable[Stage]) -> list[RequestRecord]:
        """Every record in any of ``stages``, oldest created first: one query, however many stages."""
        wanted = frozenset(stages)
        if not wanted:
            return []
        return sorted(self._in_stages(wanted), key=lambda r: (r.created_at, r.request_id))

    def list_recent(self, limit: int) -> list[RequestRecord]:
        """At most ``limit`` records, most recently updated first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        return sorted(self._in_stages(None), key=lambda r: (r.updated_at, r.request_id), reverse=True)[:limit]

    @abstractmethod
    def _in_stages(self, stages: frozenset[Stage] | None) -> list[RequestRecord]:
        """Every record in one of ``stages`` (None: every record), in any order."""

    def list_reply_pending(self) -> list[RequestRecord]:
        """Final records whose outcome has not yet been sent to their ReplyTo, oldest first."""
        return sorted((r for r in self._reply_pending() if r.reply_pending), key=lambda r: (r.created_at, r.request_id))

    def age_out(self, record: RequestRecord, now: datetime) -> RequestRecord:
        """Drop an answered final record's body and progress details; its id, stage, reason, times and plan stay.

        A request id names the request's snapshots and image: a later request reusing it would name resources
        that may still exist, so the id is never freed. Raises ValueError for a record that is open.
        """
        if not record.stage.is_final or record.reply_pending:
            raise ValueError(f"request {record.request_id} is not final and answered; it cannot age out")
        kept = {key: record.details[key] for key in _KEPT_WHEN_AGED_OUT if key in record.details}
        kept[AGED_OUT_DETAIL] = utc(now, "now").isoformat()
        return self._replace(record, replace(record, body={}, details=kept))

    def list_final_before(self, cutoff: datetime) -> list[RequestRecord]:
        """Final records last updated before ``cutoff`` that have not aged out yet, oldest update first."""
        cutoff = utc(cutoff, "cutoff")
        found = [r for r in self._final_before(cutoff) if r.updated_at < cutoff and r.progress.aged_out is None]
        return sorted(found, key=lambda r: (r.updated_at, r.request_id))

    def _final_before(self, cutoff: datetime) -> list[RequestRecord]:
        """At least every final record updated before ``cutoff`` (a back-end may return more; the caller filters)."""
        return self._in_stages(FINAL_STAGES)

    @abstractmethod
    def _reply_pending(self) -> list[RequestRecord]:
        """At least every record whose reply is pending (a back-end may return more; the caller filters)."""

    @abstractmethod
    def records(self) -> RecordStore:
        """Small keyed records kept in the same store (alert log, image usage): see :mod:`shared.store.records`."""


# Azure Tables caps a string property at 64 KiB of UTF-16; the in-memory ledger keeps the same limit.
MAX_PROPERTY_BYTES = 64 * 1024


def utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC; a naive time is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


def advanced(
    record: RequestRecord, stage: Stage, reason: str | None, details: dict[str, Any] | None, now: datetime | None
) -> RequestRecord:
    """The record as :meth:`Ledger.advance` would store it; refuses an unread record or a final stage change."""
    if record.etag is None:
        raise StaleRecord(f"request {record.request_id} was never read from the ledger")
    if record.stage.is_final and stage is not record.stage:
        raise FinalStageError(f"request {record.request_id} is {record.stage.value}; it cannot move to {stage.value}")
    return replace(
        record,
        stage=stage,
        reason=bounded_reason(reason) if reason is not None else record.reason,
        details={**record.details, **(details or {})},
        updated_at=now or datetime.now(UTC),
    )


def bounded_reason(reason: str) -> str:
    """``reason`` cut to :data:`MAX_REASON_CHARS` (the cut marked), so any reason can be stored."""
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 16] + " ... (shortened)"


def serialised(record: RequestRecord) -> tuple[str, str]:
    """Body and details as the JSON stored, checked against the store's limits."""
    body, details = json.dumps(record.body), json.dumps(record.details)
    for name, text in (("body", body), ("details", details), ("reason", record.reason or "")):
        if len(text.encode("utf-16-le")) > MAX_PROPERTY_BYTES:
            raise RecordTooLarge(f"request {record.request_id}: {name} is over {MAX_PROPERTY_BYTES} bytes as UTF-16 JSON")
    return body, details


def thawed(record: RequestRecord, body: str, details: str) -> RequestRecord:
    """A copy the caller may change without changing the stored one."""
    return replace(record, body=json.loads(body), details=json.loads(details))
