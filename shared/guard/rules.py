"""The pool guard's rules: what to do with one pool, decided without I/O.

Inputs are a typed view of the pool as ARM returned it, the guard's own state
(kept in the pool's metadata, so it is rebuilt from Azure on every sweep) and a
lineage check supplied by the caller. The answer is one :class:`Decision`.

Rules (issue "Pool guard"): act only on Steady + Succeeded fixed-scale pools;
resize error codes compare case-insensitively (the service writes
``AllocationTimedout``, SDK constants ``AllocationTimedOut``); errors of a
resize older than our last one are stale and ignored (naive checks deadlock on
them); quota and configuration errors need a person (alert once, never loop);
a gone image or lineage is one critical alert; a circuit breaker stops pools
that resize without progress; backoff grows between attempts without progress.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from ..arm.pools import PoolView, Targets
from ..naming import (
    MAX_DEDICATED_NODES_PER_IMAGE,
    MAX_LOW_PRIORITY_NODES_PER_IMAGE,
    METADATA_GUARD_REARM,
    METADATA_GUARD_STATE,
)

log = logging.getLogger(__name__)

GUARD_RESIZE_TIMEOUT_MIN = timedelta(minutes=20)
GUARD_RESIZE_TIMEOUT_MAX = timedelta(minutes=30)
GUARD_RESIZE_TIMEOUT_DEFAULT = timedelta(minutes=25)
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(minutes=60)
# A resize that started slightly before our recorded time (clock skew) is still ours.
STALE_TOLERANCE = timedelta(minutes=2)

ALLOCATION_TIMED_OUT = "allocationtimedout"
ALLOCATION_FAILED = "allocationfailed"
OVERCONSTRAINED = "overconstrainedallocationrequesterror"
RETRYABLE_CODES = frozenset({ALLOCATION_TIMED_OUT, OVERCONSTRAINED})
# Listed for the record: every code not retryable needs a person, known or not.
NEEDS_A_PERSON_CODES = frozenset(code.lower() for code in (
    "AccountCoreQuotaReached", "AccountLowPriorityCoreQuotaReached", "AccountSpotCoreQuotaReached",
    "IncompatibleVMSize", "DiskEncryptionFailure", "MarketplacePlanPropertyMissing", "ResizeStopped",
))

LineageCheck = Callable[[bool], list[str]]
"""``check(deep)``: ids of the pool image's lineage that are gone (deep: the whole lineage, else the image only)."""


@dataclass(frozen=True)
class GuardState:
    """What the guard remembers about a pool between sweeps (JSON in metadata ``cip-guard-state``)."""

    resized_at: datetime | None = None
    nodes_at_resize: int = 0
    without_progress: int = 0
    target: str | None = None
    alerted: str | None = None
    rearm: str | None = None

    def to_metadata_value(self) -> str:
        return json.dumps({
            "resizedAt": self.resized_at.isoformat() if self.resized_at else None,
            "nodesAtResize": self.nodes_at_resize,
            "withoutProgress": self.without_progress,
            "target": self.target,
            "alerted": self.alerted,
            "rearm": self.rearm,
        }, separators=(",", ":"))

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> GuardState:
        """The stored state; unreadable state starts afresh (logged) rather than blocking the pool."""
        raw = metadata.get(METADATA_GUARD_STATE)
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(
                resized_at=datetime.fromisoformat(data["resizedAt"]) if data.get("resizedAt") else None,
                nodes_at_resize=int(data.get("nodesAtResize") or 0),
                without_progress=int(data.get("withoutProgress") or 0),
                target=data.get("target"),
                alerted=data.get("alerted"),
                rearm=data.get("rearm"),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("guard state %r does not parse (%s); starting afresh", raw, exc)
            return cls()


@dataclass(frozen=True)
class Policy:
    max_resizes_without_progress: int = 3
    backoff_base: timedelta = BACKOFF_BASE
    backoff_cap: timedelta = BACKOFF_CAP

    def backoff(self, attempts_without_progress: int) -> timedelta:
        if attempts_without_progress <= 0:
            return timedelta(0)
        return min(self.backoff_cap, self.backoff_base * (2 ** (attempts_without_progress - 1)))


class Action(str, Enum):
    SKIP = "skip"  # not ours to act on now (not Steady, autoscale, bad metadata...)
    AT_TARGET = "at-target"
    RESIZE = "resize"
    ALERT = "alert"
    QUIET = "quiet"  # already alerted about exactly this condition
    WAIT = "wait"  # backing off


class Condition(str, Enum):
    NEEDS_A_PERSON = "needs-a-person"
    IMAGE_GONE = "image-gone"
    CIRCUIT_OPEN = "circuit-open"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    state: GuardState | None = None  # the state to write (RESIZE, ALERT)
    targets: Targets | None = None
    resize_timeout: timedelta | None = None
    condition: Condition | None = None
    error_code: str | None = None
    missing: tuple[str, ...] = ()
    wait_until: datetime | None = None


def desired_targets(pool: PoolView, *, guarded_account: bool) -> Targets | None:
    """The targets the guard keeps the pool at; None when the pool is not the guard's.

    Pipeline pools: their ``cip-target-*`` metadata. Other fixed-scale pools in a
    guarded account: their own fixed-scale targets. Raises :class:`BadPoolMetadata`.
    """
    requested = pool.requested_targets()
    if requested is not None:
        return requested
    if guarded_account and pool.fixed_scale:
        return Targets(pool.target_dedicated, pool.target_low_priority)
    return None


def within_limits(pool: PoolView, targets: Targets) -> Targets:
    """Targets clamped to the custom-image node limits (only custom-image pools have them)."""
    if not pool.image_id:
        return targets
    return Targets(min(targets.dedicated, MAX_DEDICATED_NODES_PER_IMAGE), min(targets.low_priority, MAX_LOW_PRIORITY_NODES_PER_IMAGE))


def guard_resize_timeout(pool: PoolView) -> timedelta:
    """The pool's own resize timeout brought within 20-30 minutes (Batch guidance for large pools)."""
    if pool.resize_timeout is None:
        return GUARD_RESIZE_TIMEOUT_DEFAULT
    return min(GUARD_RESIZE_TIMEOUT_MAX, max(GUARD_RESIZE_TIMEOUT_MIN, pool.resize_timeout))


def decide(pool: PoolView, targets: Targets, now: datetime, policy: Policy, lineage: LineageCheck) -> Decision:
    """What to do with one guarded pool now."""
    if pool.provisioning_state.lower() != "succeeded":
        return Decision(Action.SKIP, f"provisioning state is {pool.provisioning_state or 'unknown'}")
    if not pool.fixed_scale:
        return Decision(Action.SKIP, "autoscale pools are never touched")
    if pool.allocation_state.lower() != "steady":
        return Decision(Action.SKIP, f"allocation state is {pool.allocation_state or 'unknown'}")
    targets = within_limits(pool, targets)
    if pool.reaches(targets):
        return Decision(Action.AT_TARGET, "at target", targets=targets)

    state = _rearmed(GuardState.from_metadata(pool.metadata), pool, targets)
    fresh = _fresh_errors(pool, state)

    code = fresh[0] if fresh else None
    if code is not None and code.lower() not in RETRYABLE_CODES and code.lower() != ALLOCATION_FAILED:
        return _alert(pool, state, Condition.NEEDS_A_PERSON, f"resize failed with {code}, which needs a person", code=code,
                      key=f"{Condition.NEEDS_A_PERSON.value}|{code.lower()}|{_iso(pool.resize_started)}|{targets.signature}")

    missing = lineage(code is not None and code.lower() == ALLOCATION_FAILED)
    if missing:
        return _alert(pool, state, Condition.IMAGE_GONE, f"the pool's image or its lineage is gone: {', '.join(missing)}",
                      code=code, key=f"{Condition.IMAGE_GONE.value}|{pool.image_id}", missing=tuple(missing))

    total = pool.current_dedicated + pool.current_low_priority
    without_progress = 0
    if state.resized_at is not None:
        without_progress = 0 if total > state.nodes_at_resize else state.without_progress + 1
    if without_progress >= policy.max_resizes_without_progress:
        return _alert(pool, replace(state, without_progress=without_progress), Condition.CIRCUIT_OPEN,
                      f"{without_progress} resizes in a row added no nodes; stopped until the target changes or "
                      f"an operator sets metadata {METADATA_GUARD_REARM} to a new value",
                      code=code, key=f"{Condition.CIRCUIT_OPEN.value}|{targets.signature}|{state.rearm or ''}")
    if without_progress > 0 and pool.allocation_state_changed is not None:
        not_before = pool.allocation_state_changed + policy.backoff(without_progress)
        if now < not_before:
            return Decision(Action.WAIT, f"backing off after {without_progress} resize(s) without progress", wait_until=not_before)

    new_state = replace(state, resized_at=now, nodes_at_resize=total, without_progress=without_progress,
                        target=targets.signature, alerted=None)
    reason = f"resize after {code}" if code else "below target without a current resize error"
    return Decision(Action.RESIZE, reason, state=new_state, targets=targets, resize_timeout=guard_resize_timeout(pool), error_code=code)


def _rearmed(state: GuardState, pool: PoolView, targets: Targets) -> GuardState:
    """A changed target or a new re-arm value clears the breaker and the alert memory."""
    rearm = pool.metadata.get(METADATA_GUARD_REARM)
    if state.target is not None and state.target != targets.signature:
        state = replace(state, without_progress=0, alerted=None, resized_at=None, target=targets.signature)
    if rearm and rearm != state.rearm:
        state = replace(state, without_progress=0, alerted=None, resized_at=None, rearm=rearm)
    return state


def _fresh_errors(pool: PoolView, state: GuardState) -> list[str]:
    """Error codes of the last resize, unless that resize is older than ours (stale)."""
    if not pool.error_codes:
        return []
    if state.resized_at is not None and (pool.resize_started is None or pool.resize_started < state.resized_at - STALE_TOLERANCE):
        return []
    return list(pool.error_codes)


def _alert(pool: PoolView, state: GuardState, condition: Condition, reason: str, *, code: str | None, key: str,
           missing: tuple[str, ...] = ()) -> Decision:
    if state.alerted == key:
        return Decision(Action.QUIET, f"already alerted: {reason}", condition=condition, error_code=code)
    return Decision(Action.ALERT, reason, state=replace(state, alerted=key), condition=condition, error_code=code, missing=missing)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""
