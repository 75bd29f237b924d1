"""A request's progress as its record keeps it: the steps claimed, the resources confirmed, the replies sent.

A record's ``details`` is JSON, so that any store can keep it; this module is the one place that knows its
keys. :attr:`shared.store.ledger.RequestRecord.progress` reads it once into a typed, read-only
:class:`Progress`; each change is a method answering the details one conditional write
(:meth:`~shared.store.ledger.Ledger.advance`) merges in. (Powertools' idempotency ``DataRecord`` is the model:
named fields over a stored document, the status machine elsewhere.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..arm.ids import resource_key

# Keys of RequestRecord.details.
PLAN_DETAIL = "plan"
# The message id of the message a request was accepted from: the same body under another id was sent again.
MESSAGE_DETAIL = "messageId"
OS_TYPE_DETAIL = "osType"
# True once the final outcome was sent to the request's ReplyTo (or why it never will be).
REPLIED_DETAIL = "replied"
# A ReplyTo that is not one of the teams' reply queues: recorded, never sent to.
REPLY_REFUSED_DETAIL = "replyToRefused"
# Conditions (hashed) a SCALING request's team was told about in an interim reply.
INTERIM_REPLIES_DETAIL = "interimReplies"
# A conflicting message's record answers in the name of the requestId it tried to use.
ANSWERS_REQUEST_DETAIL = "answersRequestId"
# Set (to when) on a final record whose body and details were dropped after the ledger's retention.
AGED_OUT_DETAIL = "agedOut"
# The pipeline's step claims: step name -> when a delivery claimed it (ISO 8601).
CLAIMS_DETAIL = "claims"
# The resources the pipeline read as Succeeded (resource keys).
SUCCEEDED_DETAIL = "succeeded"
# The steps a request took that its team hears of in its final reply: [{"at", "step", "detail"}], oldest first.
STEPS_DETAIL = "steps"
# A refresh's own state (its shape belongs to shared.refresh).
REFRESH_DETAIL = "refresh"
# Steps kept per request: more is a request going round in circles, and the record must stay small.
MAX_STEPS = 40
# The pipeline's own looks at resources still in progress: resource key -> the last look scheduled and when it is due.
LOOKS_DETAIL = "looks"

Details = dict[str, Any]


@dataclass(frozen=True)
class Progress:
    """What a request has done so far, as its record says."""

    # Step -> when a delivery claimed it (ISO 8601); a claim is kept as written.
    claims: Mapping[str, object] = field(default_factory=dict)
    # Resource keys read as Succeeded, in the order they were.
    succeeded: tuple[str, ...] = ()
    # True once the final outcome went to the ReplyTo; a text when it never will (why); None while owed.
    replied: bool | str | None = None
    # Condition digests the team already had an interim reply about, oldest first.
    interim_replies: tuple[str, ...] = ()
    # A conflicting message's record answers in the name of this request id.
    answers_request_id: str | None = None
    # The source's OS type as intake read it.
    os_type: str | None = None
    # The id of the message the request was accepted from (None on records made before it was kept).
    message_id: str | None = None
    # When the record aged out (its body and most details dropped); None while it has not.
    aged_out: str | None = None
    # The steps its team hears of in the final reply ({"at", "step", "detail"}), oldest first.
    steps: tuple[dict[str, str], ...] = ()
    # Resource key -> the last look at it the pipeline scheduled: (which look, when it is due).
    looks: Mapping[str, ScheduledLook] = field(default_factory=dict)

    @classmethod
    def of(cls, details: Mapping[str, Any]) -> Progress:
        """Read a record's details; a value of the wrong shape counts as absent."""
        claims = details.get(CLAIMS_DETAIL)
        replied = details.get(REPLIED_DETAIL)
        return cls(
            claims=dict(claims) if isinstance(claims, dict) else {},
            succeeded=tuple(_texts(details.get(SUCCEEDED_DETAIL))),
            replied=replied if isinstance(replied, bool | str) and replied else None,
            interim_replies=tuple(_texts(details.get(INTERIM_REPLIES_DETAIL))),
            answers_request_id=_text(details.get(ANSWERS_REQUEST_DETAIL)),
            os_type=_text(details.get(OS_TYPE_DETAIL)),
            message_id=_text(details.get(MESSAGE_DETAIL)),
            aged_out=_text(details.get(AGED_OUT_DETAIL)),
            steps=tuple(step for step in details.get(STEPS_DETAIL) or [] if isinstance(step, dict)) if isinstance(details.get(STEPS_DETAIL), list) else (),
            looks=_looks(details.get(LOOKS_DETAIL)),
        )

    # -- questions ----------------------------------------------------------------

    def claimed(self, step: str) -> bool:
        """Whether a delivery ever claimed ``step`` (so its PUT may have been sent)."""
        return step in self.claims

    def claimed_at(self, step: str) -> datetime | None:
        """When ``step`` was last claimed; None when never (or not readably)."""
        value = self.claims.get(step)
        if not isinstance(value, str):
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None

    def look(self, resource_id: str) -> ScheduledLook | None:
        """The last look scheduled at ``resource_id``; None when none was."""
        return self.looks.get(resource_key(resource_id))

    def confirmed(self, resource_id: str) -> bool:
        """Whether ``resource_id`` was already read as Succeeded."""
        return resource_key(resource_id) in self.succeeded

    # -- changes: the details one conditional write merges in --------------------------

    def claim(self, step: str, now: datetime) -> Details:
        """Claim ``step`` for the delivery writing this, at ``now``."""
        return {CLAIMS_DETAIL: {**self.claims, step: now.isoformat()}}

    def release(self, step: str) -> Details:
        """Give ``step``'s claim back (its send failed), so the next delivery sends it at once."""
        return {CLAIMS_DETAIL: {name: when for name, when in self.claims.items() if name != step}}

    def confirm(self, resource_ids: Iterable[str]) -> Details:
        """Remember ``resource_ids`` as read Succeeded."""
        known = list(self.succeeded)
        return {SUCCEEDED_DETAIL: known + [key for key in dict.fromkeys(resource_key(r) for r in resource_ids) if key not in known]}

    def schedule_look(self, resource_id: str, look: ScheduledLook) -> Details:
        """Remember ``look`` as the last one scheduled at ``resource_id`` (the chain's position)."""
        stored = self.looks_as_read()[LOOKS_DETAIL]
        stored[resource_key(resource_id)] = {"attempt": look.attempt, "due": look.due.isoformat()}
        return {LOOKS_DETAIL: stored}

    def looks_as_read(self) -> Details:
        """The chains of looks as read: what a look's record is undone with when its send failed."""
        return {LOOKS_DETAIL: {key: {"attempt": look.attempt, "due": look.due.isoformat()} for key, look in self.looks.items()}}

    def interim_reply(self, digest: str, keep: int) -> Details:
        """Remember an interim reply about condition ``digest`` (the last ``keep`` are kept)."""
        return {INTERIM_REPLIES_DETAIL: [*self.interim_replies, digest][-keep:]}

    def step(self, at: datetime, step: str, detail: str) -> Details:
        """Add a step the team hears of in the final reply (the oldest are dropped past :data:`MAX_STEPS`)."""
        return {STEPS_DETAIL: [*self.steps, {"at": at.isoformat(), "step": step, "detail": detail}][-MAX_STEPS:]}

    def interim_replies_as_read(self) -> Details:
        """The interim replies as read: what an interim reply's claim is undone with when its send failed."""
        return {INTERIM_REPLIES_DETAIL: list(self.interim_replies)}


def replied(outcome: bool | str) -> Details:
    """The final outcome went to the ReplyTo (True), or never will and why (a text)."""
    return {REPLIED_DETAIL: outcome}


def new_request(plan: Mapping[str, Any], os_type: str, refused_reply_to: str | None, message_id: str | None = None) -> Details:
    """The details of a request just accepted: its plan, source OS type and message id (and a ReplyTo never sent to)."""
    kept = {MESSAGE_DETAIL: message_id} if message_id else {}
    return {PLAN_DETAIL: dict(plan), OS_TYPE_DETAIL: os_type, **kept, **refused_reply(refused_reply_to)}


def conflict(taken_id: str, refused_reply_to: str | None) -> Details:
    """The details of a message refused because its requestId is another request's: it answers in that id's name."""
    return {ANSWERS_REQUEST_DETAIL: taken_id, **refused_reply(refused_reply_to)}


def refused_reply(refused_reply_to: str | None) -> Details:
    """A message's ReplyTo that is not one of the teams' reply queues, kept (cut short) so ops can see it; else nothing."""
    return {REPLY_REFUSED_DETAIL: refused_reply_to[:260]} if refused_reply_to else {}


@dataclass(frozen=True)
class ScheduledLook:
    """One look the pipeline scheduled at a resource still in progress: which one of its chain, and when it is due."""

    attempt: int
    due: datetime


def _looks(value: object) -> dict[str, ScheduledLook]:
    looks: dict[str, ScheduledLook] = {}
    for key, entry in (value.items() if isinstance(value, dict) else ()):
        attempt = entry.get("attempt") if isinstance(entry, dict) else None
        due = entry.get("due") if isinstance(entry, dict) else None
        if isinstance(key, str) and isinstance(attempt, int) and not isinstance(attempt, bool) and isinstance(due, str):
            try:
                looks[key] = ScheduledLook(attempt, datetime.fromisoformat(due))
            except ValueError:
                continue
    return looks


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
