"""The emulator sits under azure-core's real ``RequestsTransport``, so SDK calls fail as they would in Azure."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ServiceRequestError
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.batch.models import (
    DeploymentConfiguration,
    FixedScaleSettings,
    ImageReference,
    Pool,
    PoolProperties,
    ScaleSettings,
    VirtualMachineConfiguration,
)
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.core import ARMPipelineClient

import emulator.transport as emulator_transport
from emulator.faults import FaultKind, FaultRule
from emulator.router import UnknownRouteError
from emulator.store import ArmResource
from emulator.world import AzureEmulator
from shared.clients import AzureClients
from shared.settings import Settings
from tests.support import PROJECT_ROOT, RESOURCE_GROUP, RG_ID, SUBSCRIPTION, VALID_SETTINGS, StaticTokenCredential

ACCOUNT = "acct"
ACCOUNT_ID = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/{ACCOUNT}"
IMAGE_ID = f"{RG_ID}/providers/Microsoft.Compute/images/worker-image"
VM_ID = f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/builder"


@pytest.fixture
def sends(monkeypatch) -> list[str]:
    """Every ``RequestsTransport.send`` call (method and URL), counted on the class so subclasses count too."""
    seen: list[str] = []
    original = RequestsTransport.send

    def counting_send(self, request, **kwargs):
        seen.append(f"{request.method} {request.url}")
        return original(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counting_send)
    return seen


@pytest.fixture
def no_sockets(monkeypatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(self, address):
        raise AssertionError(f"a socket tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=3)
    world.batch.add_account(ACCOUNT_ID)
    world.compute.add_virtual_machine(VM_ID)
    world.store.put(ArmResource(IMAGE_ID, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {}}))
    return world


@pytest.fixture
def clients(emulator) -> AzureClients:
    return AzureClients(Settings.from_environ(VALID_SETTINGS), credential=StaticTokenCredential(), transport=emulator.transport())


def _pool() -> Pool:
    return Pool(properties=PoolProperties(
        vm_size="Standard_D4ds_v5",
        deployment_configuration=DeploymentConfiguration(virtual_machine_configuration=VirtualMachineConfiguration(
            image_reference=ImageReference(id=IMAGE_ID), node_agent_sku_id="batch.node.ubuntu 24.04",
        )),
        scale_settings=ScaleSettings(fixed_scale=FixedScaleSettings(target_dedicated_nodes=0)),
    ))


class TestTheTransportIsAzureCores:
    def test_given_an_emulator_when_asked_for_a_transport_then_it_is_a_requests_transport_with_the_emulator_mounted(self, emulator):
        # GIVEN an emulator
        # WHEN a transport is asked for
        transport = emulator.transport()
        # THEN it is azure-core's RequestsTransport, whose session sends https and http to the emulator
        assert isinstance(transport, RequestsTransport)
        assert type(transport).send is RequestsTransport.send
        for url in ("https://management.azure.com/x", "http://127.0.0.1/x"):
            assert isinstance(transport.session.get_adapter(url), emulator_transport.EmulatorAdapter)

    @pytest.mark.parametrize("scenario", ["default", "guard-quota-error.json"])
    def test_given_a_rehearsal_when_it_runs_then_every_arm_and_event_grid_call_goes_through_requests_transport_send(
        self, sends, no_sockets, scenario
    ):
        from rehearsal.runner import Rehearsal
        from rehearsal.scenario import default_scenario, load_scenario

        # GIVEN the default rehearsal, and one whose pool guard publishes an alert to Event Grid
        plan = default_scenario() if scenario == "default" else load_scenario(PROJECT_ROOT / "examples" / scenario)
        # WHEN it runs, with no socket allowed to connect
        rehearsal = Rehearsal(plan).run()
        # THEN every call the emulator answered (it counts each routed call once) came through
        # RequestsTransport.send, and nothing else reached it
        answered = sum(rehearsal.emulator.calls.values())
        assert answered > 0
        assert len(sends) == answered
        assert all(call.split(" ", 1)[1].startswith("https://") for call in sends)
        if scenario != "default":
            assert rehearsal.emulator.calls["POST Microsoft.EventGrid/topics"] >= 1
            assert rehearsal.emulator.topic.received


class TestKeywordsFailAsInProduction:
    def test_given_the_client_factory_when_pool_create_gets_an_unknown_keyword_then_requests_raises_type_error(self, emulator, clients):
        # GIVEN Batch clients from the project's factory on the emulator
        batch = clients.batch(SUBSCRIPTION)
        # WHEN a keyword the SDK does not define is passed (it travels down to requests.Session.request)
        with pytest.raises(TypeError, match="if_none_match"):
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(), if_none_match="*")
        # THEN nothing reached the emulator, exactly as nothing would reach Azure
        assert sum(emulator.calls.values()) == 0
        assert not emulator.store.exists(f"{ACCOUNT_ID}/pools/workers")

    def test_given_a_pool_when_created_again_with_if_missing_then_if_none_match_star_reaches_the_emulator_and_it_is_412(
        self, emulator, clients, monkeypatch
    ):
        seen = []
        original = emulator_transport.dispatch

        def recording_dispatch(world, request):
            seen.append(request)
            return original(world, request)

        monkeypatch.setattr(emulator_transport, "dispatch", recording_dispatch)
        batch = clients.batch(SUBSCRIPTION)
        # GIVEN a pool created with the supported precondition
        batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(), match_condition=MatchConditions.IfMissing)
        # WHEN it is created again with the same precondition
        with pytest.raises(HttpResponseError) as raised:
            batch.pool.create(RESOURCE_GROUP, ACCOUNT, "workers", _pool(), match_condition=MatchConditions.IfMissing)
        # THEN the emulator got If-None-Match: * on both PUTs and answered the second 412
        assert isinstance(raised.value, ResourceExistsError) and raised.value.status_code == 412
        puts = [r for r in seen if r.method == "PUT"]
        assert [r.header("If-None-Match") for r in puts] == ["*", "*"]
        assert emulator.refusals[("PUT Microsoft.Batch/batchAccounts/pools", "PreconditionFailed")] == 1


class TestProductionPoliciesRun:
    def test_given_an_http_endpoint_when_a_client_with_a_bearer_token_calls_then_azure_core_refuses_before_sending(self, emulator, sends):
        # GIVEN a compute client pointed at plain http
        compute = ComputeManagementClient(StaticTokenCredential(), SUBSCRIPTION, base_url="http://management.azure.com",
                                          transport=emulator.transport())
        # WHEN it calls
        with pytest.raises(ServiceRequestError, match="Bearer token authentication is not permitted for non-TLS"):
            compute.virtual_machines.get(RESOURCE_GROUP, "builder")
        # THEN azure-core's bearer-token policy refused it, as in Azure: nothing was sent
        assert sends == [] and sum(emulator.calls.values()) == 0

    def test_given_throttling_when_the_sdk_retries_then_it_waits_in_virtual_time(self, emulator, monkeypatch):
        # GIVEN two throttled answers with Retry-After
        emulator.faults.add(FaultRule("GET Microsoft.Compute/virtualMachines", FaultKind.THROTTLE, limit=2, retry_after_seconds=30))
        compute = ComputeManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=emulator.transport())
        started_virtual, waiting_thread, real_waits = emulator.now(), threading.current_thread(), []
        real_sleep = time.sleep
        monkeypatch.setattr(time, "sleep", lambda seconds: real_waits.append(seconds) if threading.current_thread() is waiting_thread else real_sleep(seconds))
        # WHEN the SDK's retry policy works through them
        vm = compute.virtual_machines.get(RESOURCE_GROUP, "builder")
        # THEN the third attempt succeeded after 60 virtual seconds and no real waiting (time.sleep never called)
        assert vm.id == VM_ID and emulator.calls["GET Microsoft.Compute/virtualMachines"] == 3
        assert (emulator.now() - started_virtual).total_seconds() >= 60
        assert real_waits == []

    def test_given_a_resource_when_read_whole_or_streamed_then_both_give_the_same_json(self, emulator):
        client: ARMPipelineClient[HttpRequest, HttpResponse] = ARMPipelineClient(base_url="https://management.azure.com", config=None, transport=emulator.transport(), policies=[])
        url = f"https://management.azure.com{VM_ID}?api-version=2024-11-01"
        # GIVEN a VM WHEN it is read whole and then as a stream
        whole = client.send_request(HttpRequest("GET", url))
        streamed = client.send_request(HttpRequest("GET", url), stream=True)
        body = b"".join(streamed.iter_bytes())
        # THEN both carry the same body, with ARM's status, reason and headers
        assert whole.status_code == streamed.status_code == 200 and whole.reason == "OK"
        assert whole.headers["Content-Type"].startswith("application/json")
        assert int(whole.headers["Content-Length"]) == len(whole.content) == len(body)
        assert whole.json()["id"] == VM_ID and body == whole.content

    def test_given_an_unknown_route_when_an_sdk_client_calls_it_then_the_error_names_method_and_path(self, emulator):
        client: ARMPipelineClient[HttpRequest, HttpResponse] = ARMPipelineClient(base_url="https://management.azure.com", config=None, transport=emulator.transport(), policies=[])
        # GIVEN a call the emulator does not model WHEN it is sent THEN it fails loudly, naming it
        with pytest.raises(UnknownRouteError, match=r"DELETE management\.azure\.com/subscriptions/x/providers/Microsoft\.Storage/storageAccounts/s"):
            client.send_request(HttpRequest("DELETE", "https://management.azure.com/subscriptions/x/providers/Microsoft.Storage/storageAccounts/s?api-version=1"))
