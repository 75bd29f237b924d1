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
that resize without progress; backoff grows between attempts without progress;
a resize that has stalled is stopped and issued again (:func:`stalled`, the stall policy).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum

from ..arm.ids import IMAGE, try_parse
from ..arm.pools import PoolView, Targets
from ..naming import (
    MAX_DEDICATED_NODES_PER_IMAGE,
    MAX_LOW_PRIORITY_NODES_PER_IMAGE,
    METADATA_GUARD_REARM,
    METADATA_GUARD_STATE,
    RESIZE_TIMEOUT_PER_1000_NODES,
)

log = logging.getLogger(__name__)

# Batch docs (the seed, "Use a managed image to create a custom image pool"): a resize timeout of 20-30 minutes
# for large fixed-size pools; Batch's own default when none is set is PT15M (FixedScaleSettings.resizeTimeout).
GUARD_RESIZE_TIMEOUT_MIN = timedelta(minutes=20)
BATCH_DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=15)
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(minutes=60)
# A resize that started slightly before our recorded time (clock skew) is still ours.
STALE_TOLERANCE = timedelta(minutes=2)

ALLOCATION_TIMED_OUT = "allocationtimedout"
ALLOCATION_FAILED = "allocationfailed"
RESIZE_STOPPED = "resizestopped"
OVERCONSTRAINED = "overconstrainedallocationrequesterror"
RETRYABLE_CODES = frozenset({ALLOCATION_TIMED_OUT, OVERCONSTRAINED})
# Listed for the record: every code not retryable needs a person, known or not.
NEEDS_A_PERSON_CODES = frozenset(code.lower() for code in (
    "AccountCoreQuotaReached", "AccountLowPriorityCoreQuotaReached", "AccountSpotCoreQuotaReached",
    "IncompatibleVMSize", "DiskEncryptionFailure", "MarketplacePlanPropertyMissing", "ResizeStopped",
))

# Batch's resize errors for a core quota the account has reached (Microsoft.Azure.Batch.Common.PoolResizeErrorCodes:
# "The specified account has reached core quota", "... low priority core quota", "... spot core quota"). Batch's quota
# page: "if your pool doesn't reach your target number of compute nodes, you might have reached the core quota limit",
# raised only by a quota request. The pool cannot grow until a person raises it, so its request ends, not waits.
QUOTA_CODES = frozenset(code.lower() for code in (
    "AccountCoreQuotaReached", "AccountLowPriorityCoreQuotaReached", "AccountSpotCoreQuotaReached",
))


def quota_reached(code: str | None) -> bool:
    """Whether a resize error code says the account's core quota stops the pool (compared case-insensitively)."""
    return code is not None and code.lower() in QUOTA_CODES


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
    # The pool's own resize timeout when the guard first resized it (the request's): later resizes never go below it.
    base_timeout: timedelta | None = None

    def to_metadata_value(self) -> str:
        return json.dumps({
            "resizedAt": self.resized_at.isoformat() if self.resized_at else None,
            "nodesAtResize": self.nodes_at_resize,
            "withoutProgress": self.without_progress,
            "target": self.target,
            "alerted": self.alerted,
            "rearm": self.rearm,
            "baseTimeoutSeconds": int(self.base_timeout.total_seconds()) if self.base_timeout else None,
        }, separators=(",", ":"))

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> GuardState:
        """The stored state; unreadable state (any type, size, time zone or nesting) starts afresh, logged once."""
        raw = metadata.get(METADATA_GUARD_STATE)
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return cls(
                resized_at=_moment(data.get("resizedAt")),
                nodes_at_resize=_count(data.get("nodesAtResize")),
                without_progress=_count(data.get("withoutProgress")),
                target=_text(data.get("target")),
                alerted=_text(data.get("alerted")),
                rearm=_text(data.get("rearm")),
                base_timeout=timedelta(seconds=_count(data.get("baseTimeoutSeconds"))) if data.get("baseTimeoutSeconds") else None,
            )
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("pool guard: state %.200r does not parse (%s); starting afresh", raw, exc)
            return cls()


# Bounds of what the guard itself ever writes: anything else was planted or garbled.
_MAX_STATE_COUNT = 1_000_000
_MAX_STATE_TEXT = 1024
_EARLIEST_STATE_TIME = datetime(2020, 1, 1, tzinfo=UTC)


def _count(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_STATE_COUNT:
        raise ValueError(f"{value!r} is not a count the guard writes")
    return value


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_STATE_TEXT:
        raise ValueError("not a short string")
    return value


def _moment(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone")
    if moment < _EARLIEST_STATE_TIME:
        raise ValueError(f"{value!r} is earlier than any resize the guard made")
    return moment


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
    """Targets clamped to the managed-image node limits; gallery pools are bounded by quotas instead."""
    if not pool.image_id or try_parse(pool.image_id, IMAGE) is None:
        return targets
    return Targets(min(targets.dedicated, MAX_DEDICATED_NODES_PER_IMAGE), min(targets.low_priority, MAX_LOW_PRIORITY_NODES_PER_IMAGE))


def guard_resize_timeout(pool: PoolView, targets: Targets, base: timedelta | None = None) -> timedelta:
    """The timeout of a resize to ``targets``: never below the request's own (``base``, else the pool's),
    at least 20 minutes, and at least 15 minutes per 1,000 nodes the resize adds."""
    adding = max(0, targets.dedicated - pool.current_dedicated) + max(0, targets.low_priority - pool.current_low_priority)
    for_size = RESIZE_TIMEOUT_PER_1000_NODES * math.ceil(adding / 1000)
    return max(base or pool.resize_timeout or BATCH_DEFAULT_RESIZE_TIMEOUT, GUARD_RESIZE_TIMEOUT_MIN, for_size)


# Bounds of the next look at a resizing pool: not sooner than this, and a little after the resize's timeout at the latest.
SOONEST_LOOK = timedelta(seconds=30)
AFTER_TIMEOUT = timedelta(seconds=30)


def pace_since(pool: PoolView, seen_nodes: int | None, seen_at: datetime | None, now: datetime, known: float | None) -> float | None:
    """The fastest pace (nodes per minute) seen so far: since the last look, or before it.

    Nodes arrive in bursts and a resize may stall before its timeout, so the slowest measure says
    little; the fastest is what the next nodes can do, and a look that comes too early only looks again.
    """
    nodes = pool.current_dedicated + pool.current_low_priority
    if seen_nodes is not None and seen_at is not None and now > seen_at and nodes > seen_nodes:
        measured = (nodes - seen_nodes) * 60 / (now - seen_at).total_seconds()
        return max(measured, known or 0.0)
    return known


def next_look(pool: PoolView, pace: float | None, now: datetime, targets: Targets | None = None,
              timeout: timedelta | None = None) -> datetime:
    """When to look at a resizing pool (or one just resized to ``targets``): when its nodes, arriving at ``pace``
    per minute, reach the target.

    Without a pace (nodes not seen arriving yet): at the resize's timeout, when Batch ends it. Never
    sooner than 30 s from now, never later than 30 s after the timeout.
    """
    timeout = timeout or pool.resize_timeout or BATCH_DEFAULT_RESIZE_TIMEOUT
    started = pool.resize_started if targets is None and pool.resize_started is not None else now
    deadline = started + timeout + AFTER_TIMEOUT
    wanted = targets or Targets(pool.target_dedicated, pool.target_low_priority)
    remaining = max(0, wanted.dedicated - pool.current_dedicated) + max(0, wanted.low_priority - pool.current_low_priority)
    eta = now + timedelta(minutes=remaining / pace) + SOONEST_LOOK if pace else deadline
    return max(now + SOONEST_LOOK, min(eta, deadline))


# The stall policy. A fixed-scale resize that Batch cannot complete is not ended by Batch before its timeout:
# "If Batch can't obtain the target number of nodes during the resize timeout period the pool goes into a steady
# state and reports resize errors" (batch-pool-node-error-checking), and a custom-image pool "with more than 300
# compute nodes" may "need to resize the pool multiple times to reach the target size" (batch-custom-images), so
# a resize that has allocated what it will sits Resizing until its timeout (20-30 minutes for such pools). Batch
# offers to stop it: Pools_StopResize "only stops any further changes being made, and the pool maintains its current
# state ... the pool allocation state changes first to stopping and then to steady" (Batch management REST spec);
# a new resize may then start at once. How often nodes arrive during a resize is not documented; in the emulator's
# allocation model they arrive every minute (its allocation step). So the guard calls a resize stalled when:
# - the pool is Resizing below the resize's targets, and this resize has added nodes (a resize that has added none
#   is left to run to its timeout: the first nodes take minutes to come, and if capacity is short a new resize
#   would get none either; Batch keeps trying, and nodes arrive once capacity returns);
# - no node has arrived for the stall window: two minutes (two of the emulator's allocation steps: one missed
#   arrival is not a stall), or twice the longest quiet spell this resize already had and recovered from, if longer
#   (a resize that has paused and resumed before is not stopped for a shorter pause: nodes still arriving at the
#   rate they came is never a stall).
# Then the guard records the stop (a record in its own store, not a pool write), stops the resize, and resizes again
# once the pool is Steady (its own ResizeStopped is not a person's, which still needs one). The resize after a stop starts with no nodes added, so it is
# never stopped before it brings some: a stall for lack of capacity costs at most one stop.
STALL_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True)
class Arrivals:
    """What the looks at one resize saw of its nodes arriving."""

    # When a look first saw the pool's current node count, once this resize had added nodes; None before.
    grew_at: datetime | None = None
    # The longest time this resize went without a new node and then got more.
    quiet: timedelta = timedelta(0)

    def seen(self, seen_nodes: int | None, seen_at: datetime | None, nodes: int, now: datetime) -> Arrivals:
        """After a look at ``now`` finding ``nodes``, the previous look having found ``seen_nodes`` at ``seen_at``."""
        if seen_nodes is None or nodes <= seen_nodes:
            return self
        quiet = self.quiet
        if self.grew_at is not None and seen_at is not None and seen_at > self.grew_at:
            quiet = max(quiet, seen_at - self.grew_at)  # quiet from the look that saw the last count until at least the previous look
        return Arrivals(now, quiet)

    @property
    def window(self) -> timedelta:
        """How long without a new node makes this resize stalled."""
        return max(STALL_WINDOW, 2 * self.quiet)


def stalled(pool: PoolView, arrivals: Arrivals, now: datetime) -> bool:
    """Whether the pool's resize has stalled (the stall policy above): stop it and resize again."""
    if pool.allocation_state.lower() != "resizing" or not pool.fixed_scale or arrivals.grew_at is None:
        return False
    if pool.reaches(Targets(pool.target_dedicated, pool.target_low_priority)):
        return False
    return now - arrivals.grew_at >= arrivals.window


def next_look_while_resizing(pool: PoolView, pace: float | None, arrivals: Arrivals, now: datetime) -> datetime:
    """The next look at a resizing pool: when its nodes should be there (:func:`next_look`), but once nodes have come,
    twice per stall window at least, so a stall is seen within one and a half windows of the last node."""
    look = next_look(pool, pace, now)
    if arrivals.grew_at is not None:
        look = max(now + SOONEST_LOOK, min(look, now + arrivals.window / 2, arrivals.grew_at + arrivals.window))
    return look


def operator_targets(pool: PoolView, state: GuardState) -> Targets | None:
    """A person's new fixed-scale target for a pipeline pool, or None.

    The pool's target differs from the one last set by the guard or by the pipeline's create (both kept
    in the guard's state): someone resized it on purpose, through ARM, the portal or the Batch API. That
    target becomes the pool's desired one; the guard never resizes it back. Without a recorded target
    (state lost or garbled) nothing can be told apart, and the ``cip-target-*`` metadata stays the target.
    """
    if pool.request_id is None or not pool.fixed_scale or state.target is None:
        return None
    current = Targets(pool.target_dedicated, pool.target_low_priority)
    return current if current.signature != state.target else None


def resize_key(pool: PoolView) -> str:
    """What names the pool's current (or last) resize: its start time."""
    return _iso(pool.resize_started)


def decide(pool: PoolView, targets: Targets, now: datetime, policy: Policy, lineage: LineageCheck,
           stopped_by_guard: str | None = None) -> Decision:
    """What to do with one guarded pool now. ``stopped_by_guard``: the :func:`resize_key` of the last resize the guard
    itself stopped (its stall policy), if any: that resize's ResizeStopped is the guard's own, not a person's."""
    if pool.provisioning_state.lower() != "succeeded":
        return Decision(Action.SKIP, f"provisioning state is {pool.provisioning_state or 'unknown'}")
    if not pool.fixed_scale:
        return Decision(Action.SKIP, "autoscale pools are never touched")
    if pool.allocation_state.lower() != "steady":
        return Decision(Action.SKIP, f"allocation state is {pool.allocation_state or 'unknown'}")
    targets = within_limits(pool, targets)
    if pool.reaches(targets):
        return Decision(Action.AT_TARGET, "at target", targets=targets)

    recorded = GuardState.from_metadata(pool.metadata)
    state = _rearmed(recorded, pool, targets)
    # A new re-arm value is a person saying the cause is fixed (a quota raised, a size changed): the errors of the resize
    # before it are what they fixed, so the guard resizes again instead of alerting about them once more.
    fresh = [] if state.rearm != recorded.rearm else _fresh_errors(pool, state)

    code = fresh[0] if fresh else None
    ours = stopped_by_guard is not None and stopped_by_guard == resize_key(pool)
    if code is not None and code.lower() == RESIZE_STOPPED and ours:
        code = None  # the guard stopped this resize itself (a stall): resize again, as after a timeout
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

    base_timeout = state.base_timeout or pool.resize_timeout
    new_state = replace(state, resized_at=now, nodes_at_resize=total, without_progress=without_progress,
                        target=targets.signature, alerted=None, base_timeout=base_timeout)
    if code:
        reason = f"resize after {code}"
    elif ours:
        reason = "resize after the guard stopped a stalled resize"
    else:
        reason = "below target without a current resize error"
    return Decision(Action.RESIZE, reason, state=new_state, targets=targets,
                    resize_timeout=guard_resize_timeout(pool, targets, base_timeout), error_code=code)


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
