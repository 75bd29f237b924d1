"""Resource Graph on the emulator, through the real azure-mgmt-resourcegraph client: answers shaped like the REST spec.

Sources: specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/stable/2021-03-01/resourcegraph.json
(QueryRequest, QueryResponse) and its examples; the paging and throttling pages of the Resource Graph docs
(cited in emulator/resourcegraph/models.py).
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from emulator.resourcegraph.models import QUOTA_QUERIES
from emulator.store import ArmResource
from emulator.world import AzureEmulator
from shared.gateway.failures import error_code
from tests.support import RG_ID, SUBSCRIPTION, StaticTokenCredential

SNAPSHOTS = f"{RG_ID}/providers/Microsoft.Compute/snapshots"


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=3)
    for i in range(25):
        world.store.put(ArmResource(f"{SNAPSHOTS}/snap{i:02d}", "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    return world


@pytest.fixture
def graph(emulator) -> ResourceGraphClient:
    return ResourceGraphClient(StaticTokenCredential(), transport=emulator.transport(), retry_total=0)


def ids_query(names: list[str], project: str = "project id, provisioningState = tostring(properties.provisioningState)") -> str:
    listed = ", ".join(f"'{SNAPSHOTS}/{n}'" for n in names)
    return f"Resources | where id in~ ({listed}) | {project}"


class TestQueryShape:
    def test_given_ids_when_queried_then_the_existing_ones_come_back_with_the_spec_fields(self, graph, emulator):
        # WHEN two existing snapshots (one in other casing) and one that never existed are asked for
        answer = graph.resources(QueryRequest(subscriptions=[SUBSCRIPTION], query=ids_query(["snap01", "SNAP02", "nothing"])))
        # THEN totalRecords, count, resultTruncated ("false", a string) and the projected rows, ids as created
        assert (answer.total_records, answer.count, answer.result_truncated) == (2, 2, "false")
        assert sorted(row["id"] for row in answer.data) == [f"{SNAPSHOTS}/snap01", f"{SNAPSHOTS}/snap02"]
        assert all(row["provisioningState"] == "Succeeded" for row in answer.data)
        assert emulator.calls["POST Microsoft.ResourceGraph/resources"] == 1

    def test_given_a_type_filter_when_queried_then_type_is_lower_case_and_dotted_columns_are_named_with_underscores(self, graph):
        query = "Resources | where type =~ 'Microsoft.Compute/snapshots' | project id, type, properties.provisioningState"
        answer = graph.resources(QueryRequest(subscriptions=[SUBSCRIPTION], query=query))
        assert answer.total_records == 25
        assert answer.data[0]["type"] == "microsoft.compute/snapshots"
        assert answer.data[0]["properties_provisioningState"] == "Succeeded"

    def test_given_other_subscriptions_when_queried_then_nothing_of_ours_is_returned(self, graph):
        answer = graph.resources(QueryRequest(subscriptions=["00000000-0000-0000-0000-000000000000"], query=ids_query(["snap01"])))
        assert (answer.total_records, answer.data) == (0, [])

    def test_given_an_operator_the_emulator_does_not_model_when_queried_then_it_refuses_with_400(self, graph):
        with pytest.raises(HttpResponseError) as refused:
            graph.resources(QueryRequest(query="Resources | summarize count() by location"))
        assert refused.value.status_code == 400 and error_code(refused.value) == "BadRequest"


class TestPaging:
    def test_given_more_rows_than_top_when_paged_then_skip_tokens_walk_every_row_once(self, graph):
        names = [f"snap{i:02d}" for i in range(25)]
        seen, token, pages = [], None, 0
        while True:
            answer = graph.resources(QueryRequest(subscriptions=[SUBSCRIPTION], query=ids_query(names),
                                                  options=QueryRequestOptions(top=10, skip_token=token)))
            pages += 1
            assert answer.total_records == 25 and answer.result_truncated == "false"
            seen += [row["id"] for row in answer.data]
            token = answer.skip_token
            if not token:
                break
        assert pages == 3 and sorted(seen) == sorted(f"{SNAPSHOTS}/{n}" for n in names)

    def test_given_no_id_column_when_more_rows_than_a_page_then_the_result_is_truncated_without_a_token(self, graph):
        answer = graph.resources(QueryRequest(subscriptions=[SUBSCRIPTION], query="Resources | project name",
                                              options=QueryRequestOptions(top=10)))
        assert (answer.count, answer.result_truncated, answer.skip_token) == (10, "true", None)


class TestThrottling:
    def test_given_queries_in_one_window_when_the_quota_is_spent_then_429_and_the_quota_headers_say_so(self, graph):
        remaining = []

        def keep_header(response):
            remaining.append(response.http_response.headers.get("x-ms-user-quota-remaining"))

        for _ in range(QUOTA_QUERIES):
            graph.resources(QueryRequest(query=ids_query(["snap01"])), raw_response_hook=keep_header)
        assert remaining[0] == str(QUOTA_QUERIES - 1) and remaining[-1] == "0"
        with pytest.raises(HttpResponseError) as throttled:
            graph.resources(QueryRequest(query=ids_query(["snap01"])))
        assert throttled.value.status_code == 429

    def test_given_the_window_passed_when_queried_again_then_the_quota_is_back(self, graph, emulator):
        for _ in range(QUOTA_QUERIES):
            graph.resources(QueryRequest(query=ids_query(["snap01"])))
        emulator.advance(5)
        assert graph.resources(QueryRequest(query=ids_query(["snap01"]))).count == 1
