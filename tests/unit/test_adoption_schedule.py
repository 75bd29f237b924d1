"""The adoption's pace follows the timer's own schedule (GUARD_SCHEDULE), not an assumed five minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.guard import adoption
from shared.messaging import is_adoption
from tests.unit.test_guard import unrecorded_pools
from tests.unit.world import ACCOUNT, UnitWorld


def scheduled_batches(schedule: str | None, pools: int) -> list[datetime | None]:
    """GIVEN ``pools`` unrecorded pools under ``schedule`` (the default when None) WHEN the guard first sweeps THEN the
    times of the adoption batches it scheduled."""
    overrides = {"GUARDED_BATCH_ACCOUNTS": ACCOUNT.id} | ({"GUARD_SCHEDULE": schedule} if schedule else {})
    world = UnitWorld(settings_overrides=overrides)
    unrecorded_pools(world, pools)
    world.services.guard().sweep()
    return [m.scheduled_enqueue_time for m in world.sender.to("pool-checks") if is_adoption(m.body.encode())]


def test_given_a_sweep_every_15_minutes_when_a_fleet_is_adopted_then_its_batches_fill_15_minutes_at_the_same_pace():
    default, slower = scheduled_batches(None, 1000), scheduled_batches("0 */15 * * * *", 1000)
    # One batch every BATCH_INTERVAL until the next sweep: 14 after the one adopted now in 5 minutes, 44 in 15.
    assert len(default) == 5 * 60 // 20 - 1 and len(slower) == 15 * 60 // 20 - 1
    assert all(when is not None for when in slower)
    gaps = {b - a for a, b in zip(slower, slower[1:], strict=False) if a is not None and b is not None}
    assert gaps == {adoption.BATCH_INTERVAL}


def test_given_a_schedule_the_period_is_the_time_between_its_next_two_sweeps():
    at = datetime(2026, 1, 5, 9, 31, 7, tzinfo=UTC)
    assert adoption.sweep_period("0 */5 * * * *", at) == timedelta(minutes=5)
    assert adoption.sweep_period("30 0 * * * *", at) == timedelta(hours=1)
    # Office hours, Monday to Friday: from a Friday evening the next two sweeps are Monday 09:00 and 10:00.
    assert adoption.sweep_period("0 0 9-17 * * Mon-Fri", datetime(2026, 1, 9, 18, 0, tzinfo=UTC)) == timedelta(hours=1)
