"""Adoption: recording and locking the images of pools the guard finds unrecorded, paced within ARM's write budget.

A guarded account may hold thousands of pools nobody recorded yet (a fleet the guard is switched on for). Each
one's lineage (gallery version, managed image, snapshots) gets a ``CanNotDelete`` lock: five writes for the
pipeline's lineage, 50,000 for 10,000 pools. Written at once they would empty ARM's write budget and starve the
guard's own resizes. The budget, from "Understand how Azure Resource Manager throttles requests"
(learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling): writes per
subscription and service principal are a token bucket of 200 that refills at 10 a second; a request beyond it is
throttled (429) until tokens return. The pacing:

- A sweep first decides and resizes every pool; only then does it adopt, so a resize never waits for adoption.
- Adoption writes at most half the budget: batches of :data:`POOLS_PER_BATCH` pools (at most
  :data:`WRITES_PER_BATCH` lock writes for a five-resource lineage: half the bucket), one batch every
  :data:`BATCH_INTERVAL` (5 writes a second: half the refill). The other half is always there for resizes and
  the pipeline.
- The sweep adopts the first batch itself and schedules the batches of one sweep period (:func:`sweep_period`, read from
  the timer's own schedule, GUARD_SCHEDULE) after it on the
  pool-checks queue (each message carries its pools); a record says until when they are scheduled, and a sweep
  before then adopts nothing (the batches in flight are the budget's). A batch lost or failed is only a pool still unrecorded: a later
  sweep adopts it again (resumable; adopting is idempotent).

At that pace 10,000 pools with five-resource lineages are locked in 10,000 seconds (about 2.8 hours); the
whole budget alone would take half that, with nothing left for anyone else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ..messaging import AdoptedPool, Adoption, MessageSender
from ..store.records import RecordStore, update_record

# Half of ARM's subscription write bucket (200) per batch, half its refill rate (10 a second) on average.
WRITE_BUCKET, WRITE_REFILL_PER_SECOND = 200, 10
WRITES_PER_BATCH = WRITE_BUCKET // 2
LINEAGE_WRITES = 5  # the pipeline's lineage: a gallery version, a managed image, three snapshots
POOLS_PER_BATCH = WRITES_PER_BATCH // LINEAGE_WRITES
BATCH_INTERVAL = timedelta(seconds=WRITES_PER_BATCH / (WRITE_REFILL_PER_SECOND / 2))
# Until when adoption batches are scheduled (one record): the next sweep schedules more only after that.
ADOPTION_RECORD, ADOPTION_KEY = "guard-adoption", "scheduled"


def sweep_period(schedule: str, now: datetime) -> timedelta:
    """The time between the timer's next two sweeps after ``now``, by its schedule (GUARD_SCHEDULE: the six-field
    NCRONTAB expression of the timer trigger, seconds first, "{second} {minute} {hour} {day} {month} {day-of-week}",
    Azure Functions timer trigger reference, "NCRONTAB expressions"). Every 5 minutes gives 5 minutes wherever ``now``
    falls; an hourly schedule gives an hour."""
    from croniter import croniter  # first use: not paid at cold start

    fires = croniter(schedule, now, second_at_beginning=True)
    first = fires.get_next(datetime)
    return fires.get_next(datetime) - first


def batches(pools: Sequence[AdoptedPool]) -> list[tuple[AdoptedPool, ...]]:
    """The pools in batches of :data:`POOLS_PER_BATCH`, in order."""
    return [tuple(pools[i:i + POOLS_PER_BATCH]) for i in range(0, len(pools), POOLS_PER_BATCH)]


def scheduled_until(records: RecordStore) -> datetime | None:
    """When the adoption batches scheduled last are all due (None: none scheduled)."""
    record = records.get(ADOPTION_RECORD, ADOPTION_KEY)
    until = record.data.get("until") if record is not None else None
    return datetime.fromisoformat(until) if isinstance(until, str) else None


def schedule(records: RecordStore, sender: MessageSender, queue: str, later: Sequence[tuple[AdoptedPool, ...]], now: datetime,
             period: timedelta) -> int:
    """Schedule the batches after the one adopted now, one every :data:`BATCH_INTERVAL`, for one sweep ``period``;
    the number scheduled."""
    count = max(0, min(len(later), int(period / BATCH_INTERVAL) - 1))
    for index, batch in enumerate(later[:count], start=1):
        sender.send(queue, Adoption(batch).message(now + index * BATCH_INTERVAL))
    if count:
        last = now + count * BATCH_INTERVAL
        update_record(records, ADOPTION_RECORD, ADOPTION_KEY, lambda _: {"until": last.isoformat()})
    return count
