"""What a probe found about three ARM event behaviours no published source settles, and what follows from it.

``python -m cli verify --probe-events`` measures them on the deployment and writes them here (one keyed
record beside the ledger); the functions read them where they depend on them:

- no ``ResourceDeleteSuccess`` for a deleted lock: the guard's sweep reads the lock deletes the Activity Log
  lists for the resource groups holding in-use resources (and lists each subscription's locks once a day)
  and raises ProtectionRemoved for each of ours that is gone;
- no ``ResourceDeleteFailure`` for a delete refused by a lock: the sweep reads the Activity Log of the
  resource groups holding in-use resources and raises DeletionBlocked for each refused delete;
- ``ResourceWriteSuccess`` at a long-running PUT's acceptance: the pipeline, finding a resource still
  in progress after its event, schedules its own look at it instead of waiting for the reconcile timer.

A fact not measured (no probe yet, or a probe that could not tell) counts as the worst case: each
fallback above stays on. They cost little when events do arrive, and they never change an outcome.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..store.records import RecordStore, update_record

FINDINGS_KIND = "event-findings"
FINDINGS_KEY = "arm-events"
WriteSuccessAt = Literal["completion", "acceptance"]


@dataclass(frozen=True)
class EventFindings:
    """Each fact as measured (None: unknown); when and by which probe."""

    lock_delete_raises_event: bool | None = None
    locked_delete_raises_failure_event: bool | None = None
    write_success_at: WriteSuccessAt | None = None
    probe_id: str | None = None
    probed_at: str | None = None

    @property
    def sweep_checks_locks(self) -> bool:
        """Whether the sweep must look for removed locks itself (their delete events are not known to arrive)."""
        return self.lock_delete_raises_event is not True

    @property
    def sweep_checks_refused_deletes(self) -> bool:
        """Whether the sweep must look for refused deletes itself (their failure events are not known to arrive)."""
        return self.locked_delete_raises_failure_event is not True

    @property
    def pipeline_rechecks_writes(self) -> bool:
        """Whether a write event may come before its resource is done (so no later event would say it is)."""
        return self.write_success_at != "completion"

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> EventFindings:
        """The findings a record holds; anything unreadable counts as not measured."""
        data = data or {}

        def flag(name: str) -> bool | None:
            value = data.get(name)
            return value if isinstance(value, bool) else None

        written = data.get("write_success_at")
        text = {name: data.get(name) if isinstance(data.get(name), str) else None for name in ("probe_id", "probed_at")}
        return cls(
            lock_delete_raises_event=flag("lock_delete_raises_event"),
            locked_delete_raises_failure_event=flag("locked_delete_raises_failure_event"),
            write_success_at=written if written in ("completion", "acceptance") else None,
            **text,
        )


def read_findings(records: RecordStore) -> EventFindings:
    """The deployment's findings (one point read); all unknown when no probe has run."""
    record = records.get(FINDINGS_KIND, FINDINGS_KEY)
    return EventFindings.from_data(record.data if record is not None else None)


def write_findings(records: RecordStore, findings: EventFindings) -> None:
    """Store a probe's findings; the functions follow them from their next read."""
    update_record(records, FINDINGS_KIND, FINDINGS_KEY, lambda _: findings.to_data())
