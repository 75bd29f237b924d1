"""The Activity Log: every write, delete and action on a resource, whether ARM raised its event or not.

Sources (copies and addresses in tests/data/published/SOURCES.md):

- REST spec ``ActivityLogs_List`` (Microsoft.Insights 2015-04-01, activityLogs_API.json): the list is
  ``GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values``; "The $filter argument
  is very restricted and allows only the following patterns": a time range (``eventTimestamp ge '..' and
  eventTimestamp le '..'``) alone or with one of ``resourceGroupName``, ``resourceUri``, ``resourceProvider``,
  ``correlationId`` ``eq '..'``; "No other syntax is allowed." ``$select`` keeps the named properties; pages
  follow ``nextLink``. Item shape: the spec example GetActivityLogsFiltered.json and the Administrative sample
  of the activity log schema page.
- Recorded in Azure/azure-cli (monitor module, test_activity_log_list_scenario.yaml): a start more than 90
  days back is refused: 400 ``BadRequest`` "The start time cannot be more than 90 days in the past."
- Recorded in Azure/azure-sdk-for-python (azure-mgmt-monitor, test_mgmt_monitor.test_activity_log.yaml): with
  ``$select`` an item carries the selected properties and its ``id``.
- Activity log schema page: "If the operation type is Write, Delete, or Action, the records of both the start
  and success or fail of that operation are recorded in the Administrative category." The emulator keeps the
  finished record only. Whether ARM records a DELETE it refused for a lock (409 ``ScopeLocked``) is not
  stated anywhere we found; the emulator records it as Failed with subStatus Conflict, and ``python -m cli
  verify --probe-events`` checks it on a real deployment.
- A lock's delete is a control-plane write like any other: its entry has ``operationName``
  ``Microsoft.Authorization/locks/delete`` and names the lock itself, ``.../providers/Microsoft.Authorization/locks/<name>``
  (the Administrative sample in DataDog/stratus-red-team, v2/internal/attacktechniques/azure/impact/resource-lock/main.go:
  ``"operationName": {"value": "Microsoft.Authorization/locks/delete", "localizedValue": "Delete management locks"}``,
  ``properties.entity`` the lock's id under its resource group). The activity log schema page's Administrative sample
  carries the same id in ``resourceId`` and ``properties.entity``, so the emulator records the lock's id as
  ``resourceId`` and the group of the scope it was on as ``resourceGroupName`` (what a ``resourceGroupName eq``
  filter lists), as it does for every resource.
- Activity log page: "Activity log entries are usually available for analysis and alerting within 3 to 20
  minutes of the event occurring." An entry is listed from ``available_after`` past its time (default 3
  minutes, the lower bound; set it to 20 to play the upper one).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import InvalidParameter
from ..events import timestamp_text, uuid4_text

ACTIVITY_LOG = "Microsoft.Insights/eventtypes/values"
MAX_LOOKBACK = timedelta(days=90)
_FILTER = re.compile(
    r"^\s*eventTimestamp\s+ge\s+'(?P<start>[^']+)'\s+and\s+eventTimestamp\s+le\s+'(?P<end>[^']+)'"
    r"(?:\s+and\s+(?P<field>resourceGroupName|resourceUri|resourceProvider|correlationId)\s+eq\s+'(?P<value>[^']*)')?\s*$",
    re.IGNORECASE,
)


class BadActivityLogQuery(InvalidParameter):
    code = "BadRequest"


@dataclass(frozen=True)
class ActivityRecord:
    at: datetime
    body: dict


class ActivityLog:
    """Records what ARM did and lists it the way ``ActivityLogs_List`` does."""

    def __init__(self, emulator, available_after: timedelta = timedelta(minutes=3)) -> None:
        self._emulator = emulator
        self.available_after = available_after
        self._records: list[ActivityRecord] = []
        # The same records by (subscription, resource group), lower-cased: a group's list never walks the others.
        self._by_group: dict[tuple[str, str], list[ActivityRecord]] = {}
        # The last answer, kept while nothing was recorded and the clock stood still: its pages read it once (emulator speed).
        self._listed: tuple[tuple, list[dict]] | None = None

    def record(self, event, *, refusal: str | None = None) -> None:
        """Log the call an ARM event describes (built by emulator.events.ArmEventFactory)."""
        data = event.body["data"]
        when = self._emulator.now()
        resource_id = data["resourceUri"]
        parts = resource_id.strip("/").split("/")
        group = parts[3] if len(parts) > 3 and parts[2].lower() == "resourcegroups" else None
        operation = data["operationName"]
        succeeded = data["status"] == "Succeeded"
        event_data_id = uuid4_text(len(self._records) + 1)
        sub_status = {"value": "Conflict", "localizedValue": "Conflict (HTTP Status Code: 409)"} if refusal else {"value": "", "localizedValue": ""}
        body = {
            "authorization": {"action": operation, "role": data["authorization"]["evidence"]["role"], "scope": resource_id},
            "caller": data["claims"]["appid"],
            "correlationId": data["correlationId"],
            "eventDataId": event_data_id,
            "eventName": {"value": "EndRequest", "localizedValue": "End request"},
            "category": {"value": "Administrative", "localizedValue": "Administrative"},
            "httpRequest": {"clientRequestId": data["httpRequest"]["clientRequestId"], "clientIpAddress": "127.0.0.1",
                            "method": data["httpRequest"]["method"]},
            "id": f"{resource_id}/events/{event_data_id}/ticks/{int(when.timestamp() * 10**7)}",
            "level": "Informational" if succeeded else "Error",
            "resourceGroupName": group,
            "resourceProviderName": {"value": data["resourceProvider"], "localizedValue": data["resourceProvider"]},
            "resourceId": resource_id,
            "resourceType": {"value": operation.rsplit("/", 1)[0], "localizedValue": operation.rsplit("/", 1)[0]},
            "operationId": data["correlationId"],
            "operationName": {"value": operation, "localizedValue": operation},
            "properties": {"statusCode": "Conflict" if refusal else ("OK" if succeeded else "InternalServerError")},
            "status": {"value": data["status"], "localizedValue": data["status"]},
            "subStatus": sub_status,
            "eventTimestamp": _iso(when),
            "submissionTimestamp": _iso(when + self.available_after),
            "subscriptionId": data["subscriptionId"],
            "tenantId": data["tenantId"],
        }
        record = ActivityRecord(when, body)
        with self._emulator.lock:
            self._records.append(record)
            self._by_group.setdefault((str(data["subscriptionId"]).lower(), (group or "").lower()), []).append(record)

    def list(self, subscription: str, filter_expression: str | None, select: str | None) -> list[dict]:
        """The records a filter asks for, available by now, newest first."""
        key = (subscription.lower(), filter_expression, select, len(self._records), self._emulator.now(), self.available_after)
        cached = self._listed
        if cached is not None and cached[0] == key:
            return cached[1]
        found = _FILTER.match(filter_expression or "")
        if found is None:
            raise BadActivityLogQuery("The $filter is not one of the allowed patterns (eventTimestamp ge and le, then at most one of "
                                      "resourceGroupName, resourceUri, resourceProvider, correlationId eq).")
        start, end = _moment(found["start"]), _moment(found["end"])
        now = self._emulator.now()
        if now - start > MAX_LOOKBACK:
            raise BadActivityLogQuery("The start time cannot be more than 90 days in the past.")
        field_name, value = (found["field"] or "").lower(), (found["value"] or "").lower()
        fields = {"resourcegroupname": lambda b: b["resourceGroupName"], "resourceuri": lambda b: b["resourceId"],
                  "resourceprovider": lambda b: b["resourceProviderName"]["value"], "correlationid": lambda b: b["correlationId"]}
        with self._emulator.lock:
            # Recorded as the virtual clock moves forward: in time order, so the window is found by bisection.
            pool = self._by_group.get((subscription.lower(), value), []) if field_name == "resourcegroupname" else self._records
            records = pool[bisect_left(pool, start, key=_at):bisect_right(pool, end, key=_at)]
        items = [
            r.body for r in records
            if start <= r.at <= end and r.at + self.available_after <= now
            and r.body["subscriptionId"].lower() == subscription.lower()
            and (not field_name or str(fields[field_name](r.body) or "").lower() == value)
        ]
        items.reverse()
        if select:
            wanted = {name.strip() for name in select.split(",")} | {"id"}
            items = [{k: v for k, v in item.items() if k in wanted} for item in items]
        self._listed = (key, items)
        return items


def _at(record: ActivityRecord) -> datetime:
    return record.at


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadActivityLogQuery(f"'{text}' is not a date and time.") from exc
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment


def _iso(moment: datetime) -> str:
    return timestamp_text(moment)
