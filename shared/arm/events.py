"""A typed, read-only view of an ARM system event (Event Grid schema)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ARM_EVENT_PREFIX = "Microsoft.Resources.Resource"


@dataclass(frozen=True)
class ArmEvent:
    """The fields the handlers route on, parsed once; ``data`` keeps the raw payload."""

    id: str
    event_type: str
    subject: str
    data: dict[str, Any]
    # ARM's time for the event (``eventTime``, ISO 8601), when the host passed one on.
    event_time: str | None = None

    @classmethod
    def from_parts(cls, *, id: str, event_type: str, subject: str, data: Any, event_time: Any = None) -> ArmEvent:
        # The host hands over whatever JSON the sender put there: anything not a string counts as absent.
        when = event_time.isoformat() if hasattr(event_time, "isoformat") else (event_time if isinstance(event_time, str) else None)
        return cls(id=_text(id), event_type=_text(event_type), subject=_text(subject), data=data if isinstance(data, dict) else {},
                   event_time=when)

    @property
    def is_resource_event(self) -> bool:
        """A ``Microsoft.Resources.Resource{Write,Delete,Action}{Success,Failure,Cancel}`` event."""
        return self.event_type.startswith(ARM_EVENT_PREFIX)

    @property
    def operation(self) -> str:
        """``data.operationName``, e.g. ``Microsoft.Compute/snapshots/write`` (case as sent)."""
        value = self.data.get("operationName")
        return value if isinstance(value, str) else ""

    @property
    def action(self) -> str:
        """Write, Delete or Action."""
        rest = self.event_type[len(ARM_EVENT_PREFIX):]
        for action in ("Write", "Delete", "Action"):
            if rest.startswith(action):
                return action
        return ""

    @property
    def outcome(self) -> str:
        """Success, Failure or Cancel."""
        rest = self.event_type[len(ARM_EVENT_PREFIX) + len(self.action):]
        return rest if rest in ("Success", "Failure", "Cancel") else ""

    @property
    def resource_id(self) -> str:
        """``data.resourceUri``, else the subject."""
        value = self.data.get("resourceUri")
        return value if isinstance(value, str) and value else self.subject

    @property
    def resource_type(self) -> str:
        """The operation's resource type, e.g. ``microsoft.compute/snapshots`` (lower-case)."""
        return self.operation.lower().rsplit("/", 1)[0] if "/" in self.operation else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
