"""What the rehearsal sees of the functions besides Azure's own events.

* The pool guard's decisions: ``shared.guard.sweep`` logs one structured record
  per decision (``extra={"guardDecision": {...}}``); :class:`FunctionLog`
  captures them so the timeline shows each decision with its node counts, the
  resize error code and what the guard did.
* Errors the functions handled (logged) or raised (the platform redelivers):
  counted by kind, so a run that ends READY shows one summary line instead of
  tracebacks; ``--verbose`` still prints each.
* ARM calls by purpose (:class:`CallAttribution`): the emulator counts calls per
  operation; the rehearsal knows which function was running, so each call is
  counted for the pipeline, the guard, image protection (locks) or the operator.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulator.router import is_read
from shared.alerts import ALERT_LOG_FIELD

# The loggers the Function App's code writes to (its packages).
FUNCTION_LOGGERS = ("shared", "handlers", "function_app")
_DECISION_LOGGER = "shared.guard.sweep"

PURPOSES = ("pipeline", "guard", "protection", "operator")
_LOCKS = "microsoft.authorization/locks"


# -- guard decisions -------------------------------------------------------------------


_CONDITION_LABELS = {"circuit-open": "breaker open", "needs-a-person": "needs a person", "image-gone": "image gone"}


def decision_label(decision: dict[str, Any]) -> str:
    """What the guard did, in ops' words: resized / waiting / backoff / breaker open / needs a person / ..."""
    action = decision.get("action")
    if action == "resize":
        return "resized"
    if action == "wait":
        return "backoff"
    if action == "at-target":
        return "at target"
    if action == "stop-stalled-resize":
        return "stalled: resize stopped"
    if action == "skip":
        state = str(decision.get("allocationState") or "").lower()
        return "waiting" if state in ("resizing", "stopping") else "left alone"
    label = _CONDITION_LABELS.get(str(decision.get("condition")), str(decision.get("condition") or action))
    return label if action == "alert" else f"{label} (alerted before)"


def decision_counts(decision: dict[str, Any]) -> str:
    """``300/600 dedicated + 0/0 low-priority``."""
    return (f"{decision.get('currentDedicated', 0)}/{decision.get('targetDedicated', 0)} dedicated + "
            f"{decision.get('currentLowPriority', 0)}/{decision.get('targetLowPriority', 0)} low-priority")


def decision_signature(decision: dict[str, Any]) -> tuple:
    """Decisions with the same signature in a row are one timeline line (a resize is always its own)."""
    label = decision_label(decision)
    if label == "resized":
        return (label, decision.get("currentDedicated"), decision.get("currentLowPriority"), id(decision))
    return (label, decision.get("errorCode"), decision.get("targetDedicated"), decision.get("targetLowPriority"))


@dataclass
class GuardDecision:
    """A run of identical decisions about one pool: the first one, and how often it repeated until when."""

    at: datetime
    decision: dict[str, Any]
    repeats: int = 0
    last_at: datetime | None = None

    @property
    def label(self) -> str:
        return decision_label(self.decision)

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "at": self.at.isoformat(),
            "poolId": d.get("poolId"),
            "requestId": d.get("requestId"),
            "decision": self.label,
            "action": d.get("action"),
            "condition": d.get("condition"),
            "errorCode": d.get("errorCode"),
            "reason": d.get("reason"),
            "currentDedicatedNodes": d.get("currentDedicated"),
            "targetDedicatedNodes": d.get("targetDedicated"),
            "currentLowPriorityNodes": d.get("currentLowPriority"),
            "targetLowPriorityNodes": d.get("targetLowPriority"),
            "repeats": self.repeats,
            "lastAt": self.last_at.isoformat() if self.last_at else None,
        }


# -- handled errors ----------------------------------------------------------------------


_HTTP = re.compile(r"HTTP (\d{3}) (\w+)")


def error_kind(error: BaseException | str) -> str:
    """``HTTP 429 TooManyRequests``, or the exception's type: what a count of errors is grouped by."""
    if isinstance(error, str):
        found = _HTTP.search(error)
        return f"HTTP {found[1]} {found[2]}" if found else error.split(":", 1)[0]
    seen: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in seen:
        seen.append(cause)
        status = getattr(cause, "status_code", None)
        if isinstance(status, int):
            code = getattr(getattr(cause, "error", None), "code", None) or getattr(cause, "reason", None) or ""
            return f"HTTP {status} {code}".strip()
        cause = cause.__cause__ or cause.__context__
    found = _HTTP.search(str(error))
    return f"HTTP {found[1]} {found[2]}" if found else type(error).__name__


@dataclass
class HandledErrors:
    """Errors inside the functions, by kind: logged and handled, or raised and redelivered.

    A published alert's own log line (at ERROR or CRITICAL for those severities) is an alert, not an error:
    it is counted in ``alerts`` by type, never here.
    """

    logged: Counter[str] = field(default_factory=Counter)
    raised: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.logged.values()) + sum(self.raised.values())

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "logged": dict(self.logged.most_common()), "redelivered": dict(self.raised.most_common())}


def handled_errors_line(summary: dict[str, Any]) -> str | None:
    """One line for stderr: how many errors the functions handled, by kind; None when there were none."""
    if not summary.get("total"):
        return None
    kinds: Counter[str] = Counter(summary.get("logged") or {})
    kinds.update(summary.get("redelivered") or {})
    listed = ", ".join(f"{n} x {kind}" for kind, n in kinds.most_common())
    redelivered = sum((summary.get("redelivered") or {}).values())
    return (f"note: the functions handled {summary['total']} transient error(s) ({listed}); "
            f"{redelivered} deliveries were retried by the platform. --verbose shows each one.")


# -- the log handler ----------------------------------------------------------------------


class FunctionLog(logging.Handler):
    """Captures the functions' guard decisions and errors while a rehearsal runs."""

    def __init__(self, now: Callable[[], datetime], on_decision: Callable[[datetime, dict[str, Any]], None]) -> None:
        super().__init__(level=logging.DEBUG)
        self._now = now
        self._on_decision = on_decision
        self.errors = HandledErrors()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        decision = getattr(record, "guardDecision", None)
        alert = getattr(record, ALERT_LOG_FIELD, None)
        with self._guard:
            if isinstance(decision, dict):
                self._on_decision(self._now(), dict(decision))
            elif isinstance(alert, dict):
                self.errors.alerts[str(alert.get("type"))] += 1
            elif record.levelno >= logging.ERROR:
                error = record.exc_info[1] if record.exc_info and record.exc_info[1] is not None else record.getMessage()
                self.errors.logged[error_kind(error)] += 1

    def note_raised(self, error: str) -> None:
        with self._guard:
            self.errors.raised[error_kind(error)] += 1

    @contextmanager
    def installed(self) -> Iterator[FunctionLog]:
        """Attached to the functions' loggers for the duration; the guard's routine decisions (DEBUG) included."""
        loggers = [logging.getLogger(name) for name in FUNCTION_LOGGERS]
        # The guard's routine decisions are DEBUG: its logger is opened to DEBUG for this handler only;
        # everything else it logs goes on to the usual handlers at their usual level (no DEBUG noise elsewhere).
        decisions = logging.getLogger(_DECISION_LOGGER)
        previous = decisions.level, decisions.propagate
        forward = _Forward(decisions.parent or logging.getLogger(), self)
        decisions.setLevel(logging.DEBUG)
        decisions.propagate = False
        decisions.addHandler(forward)
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)
            decisions.removeHandler(forward)
            decisions.setLevel(previous[0])
            decisions.propagate = previous[1]


class _Forward(logging.Handler):
    """Gives a record to ``capture`` always, and to ``parent``'s handlers when the parent would have logged it."""

    def __init__(self, parent: logging.Logger, capture: logging.Handler) -> None:
        super().__init__(level=logging.DEBUG)
        self._parent = parent
        self._capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        self._capture.handle(record)
        if self._parent.isEnabledFor(record.levelno):
            logger: logging.Logger | None = self._parent
            while logger is not None:
                for handler in logger.handlers:
                    if handler is not self._capture and record.levelno >= handler.level:
                        handler.handle(record)
                logger = logger.parent if logger.propagate else None


# -- ARM calls by purpose ----------------------------------------------------------------------


class CallAttribution:
    """ARM calls counted per purpose: the function running when they were made, locks as protection."""

    def __init__(self, calls: Counter[str]) -> None:
        self._calls = calls
        self.by_purpose: dict[str, Counter[str]] = {purpose: Counter() for purpose in PURPOSES}

    @contextmanager
    def purpose(self, purpose: str) -> Iterator[None]:
        before = Counter(self._calls)
        try:
            yield
        finally:
            for operation, n in (Counter(self._calls) - before).items():
                self.by_purpose["protection" if _LOCKS in operation.lower() and purpose != "operator" else purpose][operation] += n

    def to_json(self, total: Counter[str]) -> dict[str, Any]:
        report: dict[str, Any] = {}
        for purpose, calls in self.by_purpose.items():
            if calls:
                report[purpose] = {"total": sum(calls.values()), **_kinds(calls), "calls": dict(sorted(calls.items()))}
        unattributed = Counter(total)
        for calls in self.by_purpose.values():
            unattributed -= calls
        if unattributed:
            report["other"] = {"total": sum(unattributed.values()), **_kinds(unattributed), "calls": dict(sorted(unattributed.items()))}
        return report


_POLLS = ("/operations", "/operationresults", "/pooloperationresults")


def _kinds(calls: Counter[str]) -> dict[str, int]:
    """Writes, reads and long-running-operation polls (the GETs an LRO's status URL costs)."""
    polls = sum(n for op, n in calls.items() if op.startswith("GET ") and op.lower().endswith(_POLLS))
    reads = sum(n for op, n in calls.items() if is_read(op)) - polls
    return {"writes": sum(calls.values()) - reads - polls, "reads": reads, "operationPolls": polls}
