"""One ARM call at a time, its failure sorted into what the caller should do.

Transient (429, 5xx, connection) -> :class:`TransientAzureError`: raise so the
platform redelivers. Our own resource already being created (409), or a lost
conditional-write race (412) -> a :class:`Waiting` value. Any other refusal -> :class:`StepFailed`: permanent.
Only the gateway calls these: what leaves it is a view, a :class:`Waiting`, or one of the two exception roots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import PermanentError, TransientError

T = TypeVar("T")
V = TypeVar("V")


class TransientAzureError(TransientError):
    """Azure answered 429/5xx after the SDK's own retries: let the platform redeliver."""


class StepFailed(PermanentError):
    """Azure refused a step for good (a 4xx other than 'already under way'): the request fails.

    ``owns_subject``: False when the failure is about a resource the request does not own (a pool of
    the same name made by someone else), so alerts about the failure name the request, not that resource.
    """

    def __init__(self, message: str, *, owns_subject: bool = True) -> None:
        super().__init__(message)
        self.owns_subject = owns_subject


@dataclass(frozen=True)
class Waiting:
    """The next step is under way in Azure; an event will say when it is done."""

    what: str


def _status(error: Exception) -> int | None:
    return getattr(error, "status_code", None)


def error_code(error: Exception) -> str:
    """The ARM error code of an SDK error (``ScopeLocked``, ``PoolBeingResized`` ...); "" when it has none."""
    inner = getattr(error, "error", None)
    return getattr(inner, "code", None) or ""


def call_arm(description: str, action: Callable[[], T]) -> T | Waiting:
    """Run one ARM call and sort its failure: transient, already under way, or permanent."""
    # Azure SDK, loaded on first use (cold start).
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    try:
        return action()
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientAzureError(f"{description}: {exc}") from exc
    except HttpResponseError as exc:
        status = _status(exc)
        if status is None or status == 429 or status >= 500:
            raise TransientAzureError(f"{description}: HTTP {status} {error_code(exc)}") from exc
        if status == 409 and error_code(exc) in ("OperationNotAllowed", "Conflict", "AnotherOperationInProgress"):
            # Our own deterministic name is already being created: that is the step under way.
            return Waiting(description)
        if status == 412:
            # A conditional write lost a race (If-None-Match: * on a resource another
            # delivery just created, or If-Match on a changed ETag): re-read next time.
            return Waiting(description)
        message = getattr(getattr(exc, "error", None), "message", None) or str(exc)
        raise StepFailed(f"{description} was refused: {error_code(exc) or status}: {message}") from exc


def read_arm(description: str, action: Callable[[], T]) -> T:
    """:func:`call_arm` for a call that answers with data (a read, a list): an answer 'under way' is transient."""
    answer = call_arm(description, action)
    if isinstance(answer, Waiting):
        raise TransientAzureError(f"{description}: Azure answered that an operation is under way; read again later")
    return answer


def get_or_none(description: str, action: Callable[[], T]) -> T | None:
    """:func:`read_arm` for a GET, with a missing resource answered as None."""
    # Azure SDK, loaded on first use (cold start).
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return read_arm(description, action)
    except StepFailed as exc:
        if isinstance(exc.__cause__, ResourceNotFoundError):
            return None
        raise



def read_view(description: str, action: Callable[[], Any], view: Callable[[Any], V]) -> V | None:
    """:func:`get_or_none`, the SDK model it answers parsed into ``view`` (a view's ``from_sdk``)."""
    found = get_or_none(description, action)
    return view(found) if found is not None else None


def send(description: str, action: Callable[[], object]) -> Waiting | None:
    """:func:`call_arm` for a write: Waiting, or None once sent (a long-running operation's poller is not waited on)."""
    answer = call_arm(description, action)
    return answer if isinstance(answer, Waiting) else None
