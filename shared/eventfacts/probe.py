"""The events an event probe's resources raise, recorded as the ``resource_events`` function receives them.

The probe (``python -m cli verify --probe-events``) names its resources with
:data:`shared.naming.PROBE_NAME_PREFIX`; an event about one of them is recorded
here, under the probe's id, and goes nowhere else: no request, no protection, no alert.
The probe then reads what arrived, and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..arm.events import ArmEvent
from ..naming import probe_id_from_resource
from ..store.records import RecordStore, member_key, update_record

PROBE_EVENT_KIND = "event-probe"


@dataclass(frozen=True)
class ProbeEvent:
    """One probe event as received: its type, what it was about, ARM's time for it and when it arrived."""

    event_id: str
    event_type: str
    resource_id: str
    operation: str
    event_time: str | None
    received_at: datetime


def probe_of(event: ArmEvent) -> str | None:
    """The probe ``event`` belongs to; None for every other event."""
    return probe_id_from_resource(event.resource_id) or probe_id_from_resource(event.subject)


def record_probe_event(records: RecordStore, probe_id: str, event: ArmEvent, event_time: str | None, received_at: datetime) -> None:
    """Keep one row per delivered event (a second delivery of the same event keeps the first arrival)."""
    row = {"eventId": event.id, "eventType": event.event_type, "resourceId": event.resource_id,
           "operation": event.operation, "eventTime": event_time, "receivedAt": received_at.isoformat()}
    update_record(records, PROBE_EVENT_KIND, member_key(probe_id, event.id), lambda current: current or row)


def probe_events(records: RecordStore, probe_id: str) -> list[ProbeEvent]:
    """What the function received for ``probe_id`` so far, in arrival order."""
    seen = []
    for record in records.list(PROBE_EVENT_KIND, probe_id.lower()):
        data = record.data
        seen.append(ProbeEvent(str(data.get("eventId", "")), str(data.get("eventType", "")), str(data.get("resourceId", "")),
                               str(data.get("operation", "")), data.get("eventTime"), datetime.fromisoformat(data["receivedAt"])))
    return sorted(seen, key=lambda e: e.received_at)
