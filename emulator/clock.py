"""A virtual clock: nothing in the emulator really sleeps.

Resources whose state changes with time (a snapshot copying, an image version
replicating, a pool allocating nodes) register a callback for the moment it is
due; :meth:`VirtualClock.advance` moves time forward and runs every callback
that falls due, in time order.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


class VirtualClock:
    """Monotonic virtual time with scheduled callbacks."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = start
        self._start = start
        self._due: list[tuple[datetime, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._lock = threading.RLock()

    def now(self) -> datetime:
        """The current virtual time (UTC, timezone-aware)."""
        return self._now

    @property
    def elapsed_seconds(self) -> float:
        """Virtual seconds since the clock was created."""
        return (self._now - self._start).total_seconds()

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        """Run ``callback`` once virtual time reaches ``when``."""
        with self._lock:
            heapq.heappush(self._due, (when, next(self._sequence), callback))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` ``seconds`` of virtual time from now."""
        self.call_at(self._now + timedelta(seconds=seconds), callback)

    def next_due(self) -> datetime | None:
        """When the earliest pending callback is due, or None."""
        with self._lock:
            return self._due[0][0] if self._due else None

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running callbacks as they fall due."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self.advance_to(self._now + timedelta(seconds=seconds))

    def advance_to(self, when: datetime) -> None:
        """Move time forward to ``when`` (never backwards), running due callbacks."""
        while True:
            with self._lock:
                if not self._due or self._due[0][0] > when:
                    if when > self._now:
                        self._now = when
                    return
                due_at, _, callback = heapq.heappop(self._due)
                if due_at > self._now:
                    self._now = due_at
            callback()
