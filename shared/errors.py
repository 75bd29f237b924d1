"""The two roots every project exception hangs from, named for what the platform does with them.

A trigger lets a :class:`TransientError` propagate: Service Bus redelivers the
message (and finally dead-letters it), Event Grid retries the event, the timer
logs it and runs again. A :class:`PermanentError` is never worth a retry: the
caller records it and answers (a request ends REJECTED or FAILED with its
message as the reason), or skips the one item it concerns.
"""

from __future__ import annotations


class TransientError(RuntimeError):
    """Try again later: Azure or the ledger is busy, throttled, unreachable, or another delivery got there first."""


class PermanentError(Exception):
    """Retrying cannot help: bad input, not allowed, refused by Azure for good, or too large to store."""
