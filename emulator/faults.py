"""Deterministic fault injection, per operation and rate.

An operation key is ``"<METHOD> <resource type>"`` (the same key the call
counters use, e.g. ``"PUT Microsoft.Compute/snapshots"``); ``"*"`` matches all.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase


class FaultKind(str, Enum):
    THROTTLE = "throttle"  # 429 with Retry-After
    SERVER_ERROR = "server_error"  # 500
    UNAVAILABLE = "unavailable"  # 503
    LATENCY = "latency"  # virtual seconds added before answering
    LRO_FAILED = "lro_failed"  # the long-running operation ends Failed
    REFUSE = "refuse"  # a 4xx answer with the rule's status, code and message (a permanent refusal, say)


@dataclass(frozen=True)
class FaultRule:
    """Inject ``kind`` into ``rate`` of the calls matching ``operation``.

    ``limit`` caps how many times the rule fires (None: no cap). ``refuse``: the call is answered
    ``status`` with ARM's error body ``{code, message}``, as ARM refuses it (a failure event and
    Activity Log entry follow for a write).
    """

    operation: str
    kind: FaultKind
    rate: float = 1.0
    retry_after_seconds: int = 2
    latency_seconds: float = 0.0
    limit: int | None = None
    status: int = 409
    code: str = "OperationNotAllowed"
    message: str = "The operation is not allowed (injected refusal)."

    def matches(self, operation: str) -> bool:
        return fnmatchcase(operation.lower(), self.operation.lower())


class FaultPlan:
    """The rules in force, drawn with a seeded random generator."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules = list(rules or [])
        self._random = random.Random(seed)
        self._fired: dict[int, int] = {}
        # How many calls each kind of fault was injected into (what a test checks actually happened).
        self.fired_by_kind: Counter[FaultKind] = Counter()
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def draw(self, operation: str, kinds: tuple[FaultKind, ...]) -> FaultRule | None:
        """The first matching rule of one of ``kinds`` that fires for this call, if any."""
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.kind not in kinds or not rule.matches(operation):
                    continue
                if rule.limit is not None and self._fired.get(index, 0) >= rule.limit:
                    continue
                if self._random.random() < rule.rate:
                    self._fired[index] = self._fired.get(index, 0) + 1
                    self.fired_by_kind[rule.kind] += 1
                    return rule
        return None
