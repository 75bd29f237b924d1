"""Azure Resource Graph through ``azure-mgmt-resourcegraph``: the only code that calls it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from ..arm.ids import ArmId, resource_key
from ..arm.views import DELETING
from .failures import read_arm
from .protocol import PresentResources

if TYPE_CHECKING:
    from ..clients import AzureClients

# Ids per Resource Graph query: a page of results holds at most 1,000 rows ($top's maximum, resourcegraph.json
# 2021-03-01 QueryRequestOptions), so one query per 1,000 ids answers in one page.
IDS_PER_QUERY = 1000


class SdkResourceGraph:
    """:class:`~shared.gateway.protocol.ResourceGraphGateway` on the tenant's Resource Graph client."""

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    def present(self, resources: Sequence[ArmId]) -> PresentResources:
        # Azure SDK: first use (cold start)
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        wanted = {resource.key(): resource for resource in resources}
        keys = sorted(wanted)
        graph = self._clients.resource_graph()
        present: set[str] = set()
        queries = 0
        for start in range(0, len(keys), IDS_PER_QUERY):
            chunk = [wanted[key] for key in keys[start : start + IDS_PER_QUERY]]
            listed = ", ".join(_kql_string(a.id) for a in chunk)
            request = QueryRequest(
                subscriptions=sorted({a.subscription.lower() for a in chunk}),
                query=f"Resources | where id in~ ({listed}) | project id, provisioningState = tostring(properties.provisioningState)",
                options=QueryRequestOptions(top=IDS_PER_QUERY),
            )
            while True:
                queries += 1
                page = read_arm("check the in-use image lineage (Resource Graph)", partial(graph.resources, request))
                for row in page.data or []:
                    if isinstance(row, dict) and row.get("id") and row.get("provisioningState") != DELETING:
                        present.add(resource_key(row["id"]))
                if not page.skip_token:
                    break
                request = QueryRequest(subscriptions=request.subscriptions, query=request.query,
                                       options=QueryRequestOptions(top=IDS_PER_QUERY, skip_token=page.skip_token))
        return PresentResources(frozenset(present), queries)


def _kql_string(value: str) -> str:
    """A KQL string literal: single-quoted, with quotes and backslashes escaped (ids never hold them, but a query is code)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
