"""The Activity Log through ``azure-mgmt-monitor``: the only code that calls its operations."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..arm.views import ActivityLogEntry, Listing
from .failures import read_arm

if TYPE_CHECKING:
    from ..clients import AzureClients

# Only what ActivityLogEntry reads (ActivityLogs_List $select): each property selected is parsed on every entry of every
# page (an eventTimestamp alone nearly doubled the SDK's time per entry, and nothing reads it: the filter bounds the window).
_SELECT = "operationName,status,resourceId,eventDataId"


class SdkMonitor:
    """:class:`~shared.gateway.protocol.MonitorGateway` on the per-subscription Monitor clients."""

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    def activity_log(self, subscription: str, resource_group: str, start: datetime, end: datetime) -> Listing[ActivityLogEntry]:
        # ActivityLogs_List requires an eventTimestamp range; resourceGroupName narrows it to one group.
        query = f"eventTimestamp ge '{start.isoformat()}' and eventTimestamp le '{end.isoformat()}' and resourceGroupName eq '{resource_group}'"
        logs = self._clients.monitor(subscription).activity_logs
        pages = read_arm("read the Activity Log (protection audit)", lambda: [list(page) for page in logs.list(filter=query, select=_SELECT).by_page()])
        return Listing(tuple(ActivityLogEntry.from_sdk(entry) for page in pages for entry in page), len(pages))
