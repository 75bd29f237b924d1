"""Deliveries from several threads at once, as a scaled-out Functions host makes them.

The rehearsal's own runner is single-threaded. :class:`ConcurrentPump` takes
every message and event due now, shuffles them and hands them to the
registered functions from a thread pool; a failed delivery is redelivered the
way the platform does (Service Bus abandons the message, Event Grid retries
later). Virtual time moves only between rounds, when nothing is due.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

from emulator.servicebus.models import QueuedMessage

from .host import event_grid_event, service_bus_message
from .runner import CHECKS_QUEUE, REQUESTS_QUEUE, Rehearsal

_EVENT_RETRY_SECONDS = 30
_MAX_ROUNDS = 100_000


class ConcurrentPump:
    """Delivers a rehearsal's due messages and events from ``workers`` threads, in shuffled order.

    The rehearsal's services must be installed (``shared.bootstrap.install``).
    """

    def __init__(self, rehearsal: Rehearsal, *, workers: int = 4, seed: int = 0) -> None:
        self._rehearsal = rehearsal
        self._workers = workers
        self._random = random.Random(seed)
        self.deliveries = 0

    def drain(self) -> int:
        """Deliver everything due now (and whatever that makes due now); the number of deliveries."""
        emulator = self._rehearsal.emulator
        total = 0
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            while True:
                batch: list[Callable[[], None]] = []
                for queue, function in ((REQUESTS_QUEUE, self._call_request), (CHECKS_QUEUE, self._call_check)):
                    while (message := emulator.servicebus.receive_due(queue)) is not None:
                        batch.append(partial(function, message))
                batch += [partial(self._call_event, event.body) for event in emulator.events.take_due()]
                if not batch:
                    return total
                self._random.shuffle(batch)
                for future in [pool.submit(delivery) for delivery in batch]:
                    future.result()
                total += len(batch)
                self.deliveries += len(batch)

    def run(self, *, until: Callable[[], bool] | None = None, limit: timedelta = timedelta(days=1)) -> bool:
        """Drain, then move virtual time to the next due moment, until ``until()`` holds or nothing is pending.

        True when ``until`` held (or, without one, when nothing is pending any more).
        """
        emulator = self._rehearsal.emulator
        end = emulator.now() + limit
        for _ in range(_MAX_ROUNDS):
            self.drain()
            if until is not None and until():
                return True
            upcoming = [t for t in (emulator.clock.next_due(), emulator.events.next_due(), emulator.servicebus.next_due((REQUESTS_QUEUE, CHECKS_QUEUE))) if t is not None]
            if not upcoming:
                return until is None
            next_time: datetime = min(upcoming)
            if next_time > end:
                return False
            emulator.clock.advance_to(next_time)
        return False

    # -- one delivery ------------------------------------------------------------

    def _call_request(self, queued: QueuedMessage) -> None:
        self._call_queue(self._rehearsal.requests_function, queued)

    def _call_check(self, queued: QueuedMessage) -> None:
        self._call_queue(self._rehearsal.checks_function, queued)

    def _call_queue(self, function: str, queued: QueuedMessage) -> None:
        message = service_bus_message(
            body=queued.message.body.encode(), message_id=queued.message_id, reply_to=queued.message.reply_to,
            delivery_count=queued.delivery_count, enqueued_time_utc=queued.enqueued_time,
            application_properties=dict(queued.message.application_properties),
        )
        try:
            self._rehearsal.host.call(function, message)
        except Exception as exc:  # noqa: BLE001 - the platform's retry: abandon, redeliver, then dead-letter
            self._rehearsal.emulator.servicebus.abandon(queued, f"{type(exc).__name__}: {exc}")

    def _call_event(self, body: dict) -> None:
        for name in self._rehearsal.event_functions:
            try:
                self._rehearsal.host.call(name, event_grid_event(body))
            except Exception:  # noqa: BLE001 - Event Grid retries a failed delivery later
                self._rehearsal.emulator.events.retry_later(body, seconds=_EVENT_RETRY_SECONDS)
