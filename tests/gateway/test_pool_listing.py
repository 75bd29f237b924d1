"""The guard's pool listing reads ARM's pages as JSON through the Batch client's own pipeline (a sweep lists every pool
every five minutes; building the SDK's model of each cost most of a sweep). What it reads must be exactly what the
SDK's operation gives: the same pools, every field the same, the same api-version and paging, the same errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emulator.credentials import StaticTokenCredential
from emulator.store import ArmResource
from emulator.transport import EmulatorAdapter
from emulator.world import AzureEmulator
from shared.arm.ids import BATCH_ACCOUNT, parse_arm_id
from shared.arm.pools import PoolView
from shared.clients import AzureClients
from shared.gateway.batch import POOL_LIST_API_VERSION
from shared.gateway.failures import StepFailed, read_arm
from shared.gateway.sdk import SdkGateway
from shared.settings import Settings
from tests.support import VALID_SETTINGS

SUB = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
ACCOUNT = parse_arm_id(f"/subscriptions/{SUB}/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/teambatch", BATCH_ACCOUNT)
IMAGE = f"/subscriptions/{SUB}/resourceGroups/rg-imaging/providers/Microsoft.Compute/images/img"
POOLS = 60  # more than one of the emulator's pages of 50


def _pool(n: int) -> dict:
    """Pools that differ in what the guard reads: targets that time out, low-priority nodes, metadata, Trusted Launch."""
    vm: dict = {"imageReference": {"id": IMAGE}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}
    if n % 3 == 0:
        vm["securityProfile"] = {"securityType": "trustedLaunch", "encryptionAtHost": False,
                                 "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}}
    return {"properties": {
        "vmSize": "Standard_D4ds_v5",
        "deploymentConfiguration": {"virtualMachineConfiguration": vm},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 400 if n % 4 == 0 else 2, "targetLowPriorityNodes": n % 2,
                                         "resizeTimeout": "PT25M"}},
        "metadata": [{"name": "cip-request", "value": f"r{n}"}, {"name": "note", "value": ""}] if n % 5 else [],
    }}


def _by_attributes(pool) -> PoolView:
    """The SDK model read through its typed attributes (how every pool was read before): the reference the listing's
    JSON reading is held to."""
    props = pool.properties
    fixed = props.scale_settings.fixed_scale
    status = props.resize_operation_status
    vm_config = props.deployment_configuration.virtual_machine_configuration
    profile = vm_config.security_profile
    return PoolView(
        id=pool.id, etag=pool.etag, provisioning_state=props.provisioning_state, allocation_state=props.allocation_state,
        allocation_state_changed=props.allocation_state_transition_time, current_dedicated=props.current_dedicated_nodes or 0,
        current_low_priority=props.current_low_priority_nodes or 0, fixed_scale=True, target_dedicated=fixed.target_dedicated_nodes,
        target_low_priority=fixed.target_low_priority_nodes, resize_timeout=fixed.resize_timeout,
        resize_started=status.start_time if status is not None else None,
        error_codes=tuple(e.code for e in (status.errors or [])) if status is not None else (),
        metadata={m.name: m.value for m in props.metadata or []}, image_id=vm_config.image_reference.id, vm_size=props.vm_size,
        node_agent_sku_id=vm_config.node_agent_sku_id, security_type=profile.security_type if profile is not None else None,
        vm_configuration=vm_config.as_dict())


@pytest.fixture
def listed():
    emulator = AzureEmulator(seed=3)
    emulator.batch.add_account(ACCOUNT.id, dedicated_core_quota=10_000_000)
    emulator.store.put(ArmResource(IMAGE, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {}}))
    for n in range(POOLS):
        emulator.batch.create_pool(ACCOUNT.id, f"pool{n:02d}", _pool(n), url=f"https://management.azure.com{ACCOUNT.id}/pools/pool{n:02d}")
    emulator.advance(timedelta(minutes=31).total_seconds())  # at target, or timed out short of 400
    clients = AzureClients(Settings.from_environ(VALID_SETTINGS), credential=StaticTokenCredential(), transport=emulator.transport())
    return emulator, clients, SdkGateway(clients)


def test_given_pools_on_two_pages_when_listed_then_each_reads_as_the_sdk_model_of_it_reads(listed):
    _, clients, gateway = listed
    models = list(clients.batch(SUB).pool.list_by_batch_account(ACCOUNT.resource_group, ACCOUNT.name))
    by_sdk = [_by_attributes(pool) for pool in models]

    by_page = list(gateway.batch.pools(ACCOUNT))

    assert len(by_page) == POOLS and by_page == by_sdk == [PoolView.from_sdk(pool) for pool in models]
    assert [p.vm_configuration for p in by_page] == [p.vm_configuration for p in by_sdk]
    timed_out = [p for p in by_page if p.error_codes]
    assert timed_out and all(p.resize_started is not None and p.resize_timeout == timedelta(minutes=25) for p in timed_out)
    assert {p.security_type for p in by_page} == {"trustedLaunch", None}
    assert all(p.allocation_state_changed is not None and p.etag for p in by_page)


def test_given_a_listing_when_sent_then_each_page_carries_the_sdks_api_version(listed, monkeypatch):
    _, clients, gateway = listed
    sent: list[str] = []
    answer = EmulatorAdapter.send

    def recorded(self, request, **kwargs):
        sent.append(request.url)
        return answer(self, request, **kwargs)

    monkeypatch.setattr(EmulatorAdapter, "send", recorded)

    list(clients.batch(SUB).pool.list_by_batch_account(ACCOUNT.resource_group, ACCOUNT.name))
    by_sdk, sent[:] = list(sent), []
    list(gateway.batch.pools(ACCOUNT))

    assert len(sent) == len(by_sdk) == 2
    assert all(f"api-version={POOL_LIST_API_VERSION}" in url for url in sent + by_sdk)
    assert "skiptoken" in sent[1]


def test_given_an_account_that_is_not_there_when_listed_then_the_failure_is_sorted_as_the_sdks(listed):
    _, clients, gateway = listed
    gone = parse_arm_id(ACCOUNT.id.replace("teambatch", "gone"), BATCH_ACCOUNT)

    with pytest.raises(StepFailed) as by_sdk:
        read_arm("list", lambda: list(clients.batch(SUB).pool.list_by_batch_account(gone.resource_group, gone.name)))
    with pytest.raises(StepFailed) as by_page:
        list(gateway.batch.pools(gone))

    assert type(by_page.value.__cause__) is type(by_sdk.value.__cause__)
    assert str(by_page.value).split(": ", 1)[1] == str(by_sdk.value).split(": ", 1)[1]
