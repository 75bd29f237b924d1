"""Sending Service Bus messages, and the messages the app sends: replies and scheduled pool checks.

Service Bus speaks AMQP, so azure-servicebus has no azure-core transport seam.
Everything the project sends goes through :class:`MessageSender`; production
uses :class:`ServiceBusMessageSender`, the emulator provides its own queues.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from .naming import REQUEST_ID_PATTERN

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.servicebus import ServiceBusClient

log = logging.getLogger(__name__)

REPLY_SUBJECT = "PoolRequestOutcome"
POOL_CHECK_SUBJECT = "PoolCheck"
# More checks than the guard ever schedules for one resize: a larger attempt was not written by it.
MAX_CHECK_ATTEMPT = 1000
# The first look after a resize starts: long enough for nodes to arrive, so the next look can be timed by them.
FIRST_LOOK = timedelta(minutes=2)

REQUEST_CHECK_SUBJECT = "RequestCheck"
# Looks at one resource still in progress after its write event, before the reconcile timer takes over.
MAX_REQUEST_LOOKS = 12
# Azure publishes no duration for snapshot, image or gallery version operations: the looks back off from
# 30 seconds, doubling, to every 5 minutes (the guard timer's default period), so a short operation is seen
# within moments and a long one at most 5 minutes late, at a handful of reads each.
REQUEST_LOOK_FIRST = timedelta(seconds=30)
REQUEST_LOOK_MAX = timedelta(minutes=5)


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to send; ``scheduled_enqueue_time`` delays its delivery."""

    body: str
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    subject: str | None = None
    content_type: str = "application/json"
    scheduled_enqueue_time: datetime | None = None
    application_properties: dict[str, str | int | float | bool] = field(default_factory=dict)


class MessageSender(Protocol):
    """Sends one message to a queue (or schedules it)."""

    def send(self, queue: str, message: OutgoingMessage) -> None: ...


class ServiceBusMessageSender:
    """:class:`MessageSender` on azure-servicebus with an identity-based connection."""

    def __init__(self, fully_qualified_namespace: str, credential: TokenCredential, **client_kwargs: Any) -> None:
        self._namespace = fully_qualified_namespace
        self._credential = credential
        self._client_kwargs = client_kwargs
        self._client: ServiceBusClient | None = None

    def _service_bus(self) -> ServiceBusClient:
        if self._client is None:
            # Azure SDK, loaded on first use (cold start).
            from azure.servicebus import ServiceBusClient

            self._client = ServiceBusClient(self._namespace, self._credential, **self._client_kwargs)
        return self._client

    def send(self, queue: str, message: OutgoingMessage) -> None:
        # Azure SDK, loaded on first use (cold start).
        from azure.servicebus import ServiceBusMessage

        properties: dict[str | bytes, int | float | bytes | bool | str | UUID] = dict(message.application_properties.items())
        outgoing = ServiceBusMessage(
            message.body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            subject=message.subject,
            content_type=message.content_type,
            application_properties=properties or None,
        )
        with self._service_bus().get_queue_sender(queue) as sender:
            if message.scheduled_enqueue_time is not None:
                sender.schedule_messages(outgoing, message.scheduled_enqueue_time)
            else:
                sender.send_messages(outgoing)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def outcome_reply(request_id: str, stage: str, reason: str | None, pool_id: str | None, *,
                  answers_request_id: str | None = None, steps: Sequence[Mapping[str, str]] = (),
                  message_id: str | None = None) -> OutgoingMessage:
    """The reply a requester gets when its request reaches a final stage (one message id per stage).

    ``answers_request_id``: a message refused because its requestId belongs to another request is
    answered in the name of that requestId (what its sender knows), under a message id of its own.
    ``steps``: what the request did on the way ({"at", "step", "detail"}; a refresh's), when it kept them.
    ``message_id``: another id than the stage's (a later answer about the same outcome).
    """
    shown = answers_request_id or request_id
    body: dict[str, Any] = {"requestId": shown, "stage": stage, "reason": reason, "poolId": pool_id}
    if steps:
        body["steps"] = [dict(step) for step in steps]
    return OutgoingMessage(
        json.dumps(body), message_id=message_id or f"{request_id}-{stage.lower()}", correlation_id=shown, subject=REPLY_SUBJECT
    )


def interim_reply(request_id: str, reason: str, alert_type: str, condition_key: str) -> OutgoingMessage:
    """A reply while the request is still SCALING: its pool cannot reach its target without help (one per condition)."""
    body = {"requestId": request_id, "stage": "SCALING", "reason": reason, "alertType": alert_type}
    digest = hashlib.sha256(condition_key.encode()).hexdigest()[:16]
    return OutgoingMessage(
        json.dumps(body), message_id=f"{request_id}-scaling-{digest}", correlation_id=request_id, subject=REPLY_SUBJECT
    )


# Application properties of a request sent again later by this automation. Teams send to the same queue and may
# set any property: these count only with a valid RETRY_SIGNATURE (an HMAC keyed by MESSAGE_SIGNING_KEY).
RETRY_ATTEMPT = "cip-attempt"
RETRY_ORIGINAL_MESSAGE_ID = "cip-original-message-id"
RETRY_ORIGINAL_ENQUEUED_AT = "cip-original-enqueued-at"
RETRY_SIGNATURE = "cip-signature"
# Waits between attempts at a request while the ledger or Azure is down: 15 s doubling, at most 10 minutes;
# eight attempts span about 36 minutes, then the platform's own redelivery and dead-lettering take over.
RETRY_FIRST_DELAY = timedelta(seconds=15)
RETRY_MAX_DELAY = timedelta(minutes=10)
MAX_REQUEST_ATTEMPTS = 8


@dataclass(frozen=True)
class Redelivery:
    """Where a message stands in this automation's own retries (from its application properties)."""

    attempt: int = 0
    original_message_id: str | None = None
    original_enqueued_at: datetime | None = None

    @classmethod
    def from_message(cls, properties: Any, *, body: bytes, message_id: str | None, key: str) -> Redelivery:
        """Read the retry properties of a message this automation sent itself; from anyone else (no valid signature
        over the properties, the body and the message id) or unreadable, they count as a first attempt.

        A sender could otherwise name its own version from a made-up first enqueue time (and sort it above every
        other team's in a shared definition), or skip the retries its request is owed.
        """
        if not isinstance(properties, dict):
            return cls()
        attempt = properties.get(RETRY_ATTEMPT)
        original = properties.get(RETRY_ORIGINAL_MESSAGE_ID)
        enqueued = properties.get(RETRY_ORIGINAL_ENQUEUED_AT)
        signature = properties.get(RETRY_SIGNATURE)
        if not (isinstance(attempt, int) and not isinstance(attempt, bool) and 0 < attempt <= MAX_REQUEST_ATTEMPTS):
            return cls()
        if not isinstance(original, str) or not isinstance(signature, str) or (enqueued is not None and not isinstance(enqueued, str)):
            return cls()
        expected = _retry_signature(key, body, message_id or "", attempt, original, enqueued or "")
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            log.warning("message %.100s carries retry properties without a valid signature: handled as a first attempt", message_id)
            return cls()
        try:
            moment = datetime.fromisoformat(enqueued) if isinstance(enqueued, str) else None
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            moment = None
        return cls(attempt, original[:256] if isinstance(original, str) else None, moment)

    def delay(self) -> timedelta:
        """How long to wait before the next attempt."""
        return min(RETRY_MAX_DELAY, RETRY_FIRST_DELAY * (2 ** self.attempt))


def _retry_signature(key: str, body: bytes, message_id: str, attempt: int, original_id: str, original_enqueued_at: str) -> str:
    """HMAC-SHA256 over everything a retry's handling depends on: the properties, the message id and the body."""
    signed = "\n".join((str(attempt), original_id, original_enqueued_at, message_id, hashlib.sha256(body).hexdigest()))
    return base64.urlsafe_b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest()).decode()


def retry_later(sender: MessageSender, queue: str, body: bytes, message_id: str | None, reply_to: str | None,
                enqueued_at: datetime | None, redelivery: Redelivery, now: datetime, *, key: str) -> datetime:
    """Send a request back to its queue for a later attempt, its retry properties signed with ``key``; when it will arrive."""
    original_id = redelivery.original_message_id or message_id or ""
    attempt = redelivery.attempt + 1
    when = now + redelivery.delay()
    first_enqueued = redelivery.original_enqueued_at or enqueued_at
    enqueued_text = first_enqueued.isoformat() if first_enqueued is not None else ""
    text = body.decode("utf-8", errors="replace")
    retry_id = f"{original_id}-retry{attempt}"
    properties: dict[str, str | int | float | bool] = {
        RETRY_ATTEMPT: attempt, RETRY_ORIGINAL_MESSAGE_ID: original_id,
        RETRY_SIGNATURE: _retry_signature(key, text.encode(), retry_id, attempt, original_id, enqueued_text)}
    if enqueued_text:
        properties[RETRY_ORIGINAL_ENQUEUED_AT] = enqueued_text
    sender.send(queue, OutgoingMessage(
        text, message_id=retry_id, reply_to=reply_to, scheduled_enqueue_time=when, application_properties=properties,
    ))
    return when


@dataclass(frozen=True)
class PoolCheck:
    """A pool-checks queue message: which pool, and how many times it was looked at already."""

    pool_id: str
    attempt: int = 0
    # What the previous look saw: the pool's nodes, and when; and how fast nodes were arriving (per minute).
    seen_nodes: int | None = None
    seen_at: datetime | None = None
    pace: float | None = None
    # When a look first saw the current node count after this resize added nodes, and the longest quiet spell the
    # resize recovered from (seconds): what the guard's stall policy judges by.
    grew_at: datetime | None = None
    quiet_seconds: float = 0.0

    @classmethod
    def from_body(cls, body: bytes) -> PoolCheck | None:
        """The check, or None for a body that is not one (logged once; never retried)."""
        try:
            data = json.loads(body)
            pool_id, attempt = data["poolId"], data.get("attempt") or 0
            if not isinstance(pool_id, str) or len(pool_id) > 1024:
                raise ValueError("poolId is not a resource id")
            if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= MAX_CHECK_ATTEMPT:
                raise ValueError(f"attempt {str(attempt)[:20]} is not a count of checks")
            pace = data.get("pace")
            pace = float(pace) if isinstance(pace, (int, float)) and not isinstance(pace, bool) and 0 < pace < 10**6 else None
            grew_at, quiet = _aware(data.get("grewAt")), data.get("quietSeconds")
            quiet = float(quiet) if isinstance(quiet, (int, float)) and not isinstance(quiet, bool) and 0 <= quiet < 10**6 else 0.0
            seen_nodes, seen_at = data.get("seenNodes"), data.get("seenAt")
            if not (isinstance(seen_nodes, int) and not isinstance(seen_nodes, bool) and 0 <= seen_nodes < 10**7 and isinstance(seen_at, str)):
                return cls(pool_id, attempt, pace=pace, grew_at=grew_at, quiet_seconds=quiet)
            return cls(pool_id, attempt, seen_nodes, _aware(seen_at), pace, grew_at, quiet)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            log.warning("pool check message ignored: %.200s", exc)
            return None

    def message(self, when: datetime) -> OutgoingMessage:
        """The scheduled message that makes the guard look at the pool at ``when``."""
        return OutgoingMessage(
            json.dumps({"poolId": self.pool_id, "attempt": self.attempt,
                        **({"seenNodes": self.seen_nodes, "seenAt": self.seen_at.isoformat()}
                           if self.seen_nodes is not None and self.seen_at is not None else {}),
                        **({"pace": round(self.pace, 3)} if self.pace else {}),
                        **({"grewAt": self.grew_at.isoformat()} if self.grew_at is not None else {}),
                        **({"quietSeconds": round(self.quiet_seconds, 3)} if self.quiet_seconds else {})}),
            # The pool's name for people, a digest of its id so two accounts' pools of one name never share an id
            # (the queue drops a MessageId seen within a day).
            message_id=f"check-{self.pool_id.rsplit('/', 1)[-1]}-{_digest(self.pool_id.lower(), 8)}-{when.strftime('%Y%m%dT%H%M%S')}",
            subject=POOL_CHECK_SUBJECT,
            scheduled_enqueue_time=when,
        )


def _aware(text: object) -> datetime | None:
    """A time with its zone from a message; None for anything else (raises ValueError for a malformed time)."""
    if not isinstance(text, str):
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else None


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def schedule_pool_check(sender: MessageSender, queue: str, check: PoolCheck, when: datetime) -> None:
    """Have the guard look at one pool at ``when``."""
    sender.send(queue, check.message(when))


def look_after_creation(sender: MessageSender, queue: str, pool_id: str, now: datetime) -> None:
    """A new pool's first look, once nodes have had time to arrive: each look then times the next one by the
    pace the nodes arrive at (see the guard's rules), so the pool is seen when it reaches its target."""
    schedule_pool_check(sender, queue, PoolCheck(pool_id, 0, 0, now), now + FIRST_LOOK)


@dataclass(frozen=True)
class RequestCheck:
    """A pool-checks queue message asking the pipeline to look at one resource of a request again."""

    request_id: str
    resource_id: str
    attempt: int = 1

    @classmethod
    def from_body(cls, body: bytes) -> RequestCheck | None:
        """The check, or None for a body that is not one (logged once; never retried)."""
        try:
            data = json.loads(body)
            request_id, resource_id, attempt = data["requestId"], data["resourceId"], data.get("attempt") or 1
            if not isinstance(request_id, str) or not re.fullmatch(REQUEST_ID_PATTERN, request_id):
                raise ValueError(f"requestId {str(request_id)[:80]!r} is not a request id")
            if not isinstance(resource_id, str) or len(resource_id) > 1024:
                raise ValueError("resourceId is not a resource id")
            if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= MAX_REQUEST_LOOKS:
                raise ValueError(f"attempt {str(attempt)[:20]} is not a count of looks")
            return cls(request_id, resource_id, attempt)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            log.warning("request check message ignored: %.200s", exc)
            return None

    def delay(self) -> timedelta:
        """How long after the previous look this one is due."""
        return min(REQUEST_LOOK_MAX, REQUEST_LOOK_FIRST * (2 ** (self.attempt - 1)))

    def message(self, when: datetime) -> OutgoingMessage:
        digest = hashlib.sha256(self.resource_id.lower().encode()).hexdigest()[:12]
        return OutgoingMessage(
            json.dumps({"requestId": self.request_id, "resourceId": self.resource_id, "attempt": self.attempt}),
            message_id=f"look-{self.request_id}-{digest}-{self.attempt}",
            subject=REQUEST_CHECK_SUBJECT,
            scheduled_enqueue_time=when,
        )


def is_request_check(body: bytes) -> bool:
    """Whether a pool-checks queue message asks about a request (not a pool)."""
    return _names(body, "requestId")


def _names(body: bytes, key: str) -> bool:
    """Whether ``body`` is a JSON object with ``key`` at its top level."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and key in data


ADOPTION_SUBJECT = "Adoption"
# More pools than the guard puts in one adoption batch: a larger batch was not written by it.
MAX_ADOPTION_POOLS = 100


@dataclass(frozen=True)
class AdoptedPool:
    """A pool whose image the guard records and locks (adopts): the pool, its image, and the request that made it."""

    pool_id: str
    image_id: str
    request_id: str | None = None
    # What the image was made from, when the sweep that scheduled the batch had read it (the batch need not again).
    lineage: tuple[str, ...] = ()


# Resources of one lineage, at most: a version, its managed image, and the snapshots of an OS disk and 64 data disks.
MAX_LINEAGE = 67


@dataclass(frozen=True)
class Adoption:
    """A pool-checks queue message: a batch of pools to adopt, paced within ARM's write budget (see
    :mod:`shared.guard.adoption`)."""

    pools: tuple[AdoptedPool, ...]

    @classmethod
    def from_body(cls, body: bytes) -> Adoption | None:
        """The batch, or None for a body that is not one (logged once; never retried)."""
        try:
            data = json.loads(body)
            entries = data["adopt"]
            if not isinstance(entries, list) or not 0 < len(entries) <= MAX_ADOPTION_POOLS:
                raise ValueError("adopt is not a list of at most 100 pools")
            pools = []
            for entry in entries:
                pool_id, image_id, request_id = entry["poolId"], entry["imageId"], entry.get("requestId")
                if not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in (pool_id, image_id)):
                    raise ValueError("poolId and imageId are resource ids")
                if request_id is not None and (not isinstance(request_id, str) or not re.fullmatch(REQUEST_ID_PATTERN, request_id)):
                    raise ValueError(f"requestId {str(request_id)[:80]!r} is not a request id")
                lineage = entry.get("lineage") or []
                if not isinstance(lineage, list) or len(lineage) > MAX_LINEAGE or not all(isinstance(r, str) and 0 < len(r) <= 1024 for r in lineage):
                    raise ValueError("lineage is not a list of resource ids")
                pools.append(AdoptedPool(pool_id, image_id, request_id, tuple(lineage)))
            return cls(tuple(pools))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            log.warning("adoption message ignored: %.200s", exc)
            return None

    def message(self, when: datetime) -> OutgoingMessage:
        """The scheduled message that makes the guard adopt the batch at ``when``."""
        entries = [{"poolId": p.pool_id, "imageId": p.image_id, **({"requestId": p.request_id} if p.request_id else {}),
                    **({"lineage": list(p.lineage)} if p.lineage else {})} for p in self.pools]
        digest = _digest("\n".join(sorted(p.pool_id.lower() for p in self.pools)), 12)
        return OutgoingMessage(json.dumps({"adopt": entries}), message_id=f"adopt-{digest}-{when.strftime('%Y%m%dT%H%M%S')}",
                               subject=ADOPTION_SUBJECT, scheduled_enqueue_time=when)


def is_adoption(body: bytes) -> bool:
    """Whether a pool-checks queue message is an adoption batch."""
    return _names(body, "adopt")


def schedule_request_check(sender: MessageSender, queue: str, check: RequestCheck, now: datetime) -> None:
    """Have the pipeline look at one resource of a request after the check's delay."""
    sender.send(queue, check.message(now + check.delay()))
