"""Long-running operations: ``Azure-AsyncOperation`` / ``Location`` polling.

A PUT or DELETE that takes time answers at once with the operation's status
URLs; the status endpoint reports ``InProgress`` until the virtual clock reaches
the operation's end, then ``Succeeded`` or ``Failed``.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

from .errors import ResourceNotFound


@dataclass
class AsyncOperation:
    id: str
    resource_id: str
    method: str
    namespace: str
    location: str
    subscription: str
    start: datetime
    status: str = "InProgress"
    end: datetime | None = None
    error: dict | None = None

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def status_body(self) -> dict:
        """The body of the ``Azure-AsyncOperation`` status resource."""
        body: dict[str, object] = {"name": self.id, "status": self.status, "startTime": _iso(self.start)}
        if self.end is not None:
            body["endTime"] = _iso(self.end)
        if self.error is not None:
            body["error"] = self.error
        return body

    def status_url(self, base: str, api_version: str) -> str:
        return (
            f"{base}/subscriptions/{self.subscription}/providers/{self.namespace}/locations/"
            f"{self.location}/operations/{self.id}?api-version={api_version}"
        )

    def result_url(self, base: str, api_version: str) -> str:
        return (
            f"{base}/subscriptions/{self.subscription}/providers/{self.namespace}/locations/"
            f"{self.location}/operationResults/{self.id}?api-version={api_version}"
        )


class OperationTracker:
    """Every long-running operation started, by id."""

    def __init__(self) -> None:
        self._operations: dict[str, AsyncOperation] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, *, resource_id: str, method: str, namespace: str, location: str, subscription: str, now: datetime) -> AsyncOperation:
        with self._lock:
            op_id = str(uuid.UUID(int=next(self._ids), version=4))
            operation = AsyncOperation(op_id, resource_id, method, namespace, location.replace(" ", "").lower(), subscription, now)
            self._operations[op_id] = operation
            return operation

    def get(self, op_id: str) -> AsyncOperation:
        operation = self._operations.get(op_id)
        if operation is None:
            raise ResourceNotFound(f"The operation '{op_id}' was not found.", code="OperationNotFound")
        return operation

    def all(self) -> list[AsyncOperation]:
        """Every operation started, in start order (the rehearsal's report draws them)."""
        with self._lock:
            return list(self._operations.values())

    def in_progress(self) -> list[AsyncOperation]:
        with self._lock:
            return [op for op in self._operations.values() if not op.done]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
