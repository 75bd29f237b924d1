"""One ARM call at a time, its failure sorted into what the caller should do.

Transient (429, 5xx, connection, a 409 that says to retry later) -> :class:`TransientAzureError`: raise so the
platform redelivers. The same resource being written right now (a 409 that says so), or a lost
conditional-write race (412) -> a :class:`Waiting` value. Any other refusal -> :class:`StepFailed`: permanent
(:func:`sort_refusal` says which, by code and message).
Only the gateway calls these: what leaves it is a view, a :class:`Waiting`, or one of the two exception roots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
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


class Refusal(str, Enum):
    """What a 4xx answer means for the step that got it."""

    # The same resource is being written right now (or a conditional write lost a race): the step is under way.
    UNDER_WAY = "under-way"
    # Azure says to try again later.
    TRANSIENT = "transient"
    # Azure refused the step for good: the request fails with the reason.
    PERMANENT = "permanent"


# Sorted by code and message, from what Azure is recorded to answer. A 409 is not always "in progress":
# - Compute answers a PUT that collides with one under way with 409 Conflict "The request failed due to conflict with a
#   concurrent request. To resolve it, please refer to https://aka.ms/activitylog ..." (recorded response of a VM PUT in
#   Azure/azure-cli#15765); App Service says "Cannot modify this ... because another operation is in progress"
#   (Azure/azure-sdk-for-java#1827); Microsoft.Network uses the code AnotherOperationInProgress.
# - Compute also answers 409 OperationNotAllowed for permanent refusals: "Disk ... is attached to VM ..." (the AKS
#   troubleshooting page, MicrosoftDocs/azure-docs), "Operation could not be completed as it results in exceeding
#   approved ... Cores quota" (azure-docs, quota errors); 409 PropertyChangeNotAllowed "Changing property
#   'galleryImage.properties.<p>' is not allowed" (virtual-machines/troubleshooting-shared-images); 409 ScopeLocked
#   (a management lock). Only one OperationNotAllowed asks to retry: "The resource provider cannot perform this operation
#   currently due to system upgrade. Please retry after some time." (azure-docs troubleshoot, cross-subscription moves).
# Any other 409 is refused for good: retrying an unknown refusal for ever is what this sorting exists to stop.
_UNDER_WAY_CODES = frozenset({"anotheroperationinprogress"})
_UNDER_WAY_WORDS = ("conflict with a concurrent request", "another operation is in progress", "operation is in progress")
_RETRY_WORDS = ("retry after some time", "please retry later", "try again later")


def sort_refusal(status: int, code: str, message: str) -> Refusal:
    """Whether a 4xx answer (not 429) means the step is under way, should be tried again later, or was refused for good."""
    if status == 412:
        # A conditional write lost a race (If-None-Match: * on a resource another delivery just created, or If-Match
        # on a changed ETag): re-read next time.
        return Refusal.UNDER_WAY
    if status != 409:
        return Refusal.PERMANENT
    text = message.lower()
    if code.lower() in _UNDER_WAY_CODES or (code.lower() == "conflict" and any(words in text for words in _UNDER_WAY_WORDS)):
        return Refusal.UNDER_WAY
    if any(words in text for words in _RETRY_WORDS):
        return Refusal.TRANSIENT
    return Refusal.PERMANENT


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
        message = getattr(getattr(exc, "error", None), "message", None) or str(exc)
        refusal = sort_refusal(status, error_code(exc), message)
        if refusal is Refusal.UNDER_WAY:
            return Waiting(description)
        if refusal is Refusal.TRANSIENT:
            raise TransientAzureError(f"{description}: HTTP {status} {error_code(exc)}: {message[:300]}") from exc
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
