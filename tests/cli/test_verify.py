"""``python -m cli verify`` on the emulator: a healthy deployment passes; each planted fault is named with its hint.

The healthy deployment is what infra/ deploys: the custom roles read from infra/access/roles.bicep
and the built-in data roles, assigned to the Function App's identity where the Bicep assigns them;
the queues, the alerts topic, one system topic per watched resource group with its
resource_events subscription as infra/events/resource-events-subscription.bicep declares it, and
the ledger table on Azurite. verify runs as the operator (a different principal).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cli import verify as verify_module
from cli.verify import AUDIT_ACTIONS, BATCH_ACTIONS, IMAGING_ACTIONS, SUBSCRIPTION_ACTIONS, verify
from emulator.credentials import StaticTokenCredential
from emulator.world import AzureEmulator
from shared import settings as names
from tests.support import PROJECT_ROOT, RG_ID, SUBSCRIPTION

INFRA = PROJECT_ROOT / "infra"
APP_PRINCIPAL = "11111111-2222-4333-8444-555555555555"
OPERATOR_TOKEN = "operator-token"
BATCH_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-batch"
ACCOUNT_ID = f"{BATCH_RG}/providers/Microsoft.Batch/batchAccounts/teambatch"
APP_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-pools"
NAMESPACE_ID = f"{APP_RG}/providers/Microsoft.ServiceBus/namespaces/sb-abc"
STORAGE_ID = f"{APP_RG}/providers/Microsoft.Storage/storageAccounts/stabc"
TOPIC_ID = f"{APP_RG}/providers/Microsoft.EventGrid/topics/evgt-alerts-abc"
FUNCTION_ID = f"{APP_RG}/providers/Microsoft.Web/sites/func-abc"
TOPIC_ENDPOINT = "https://evgt-alerts-abc.westeurope-1.eventgrid.azure.net/api/events"
SYSTEM_TOPICS = {RG_ID: f"{RG_ID}/providers/Microsoft.EventGrid/systemTopics/evgt-imaging", BATCH_RG: f"{BATCH_RG}/providers/Microsoft.EventGrid/systemTopics/evgt-batch"}


def bicep_roles() -> dict[str, list[str]]:
    from pycep import BicepParser

    resources = BicepParser().parse(file_path=Path(INFRA / "access" / "roles.bicep"))["resources"]
    return {name: [a for p in r["config"]["properties"]["permissions"] for a in p["actions"]] for name, r in resources.items()}


def subscription_properties() -> dict:
    """The resource_events subscription as the Bicep declares it, in ARM's wire shape."""
    from pycep import BicepParser

    declared = BicepParser().parse(file_path=Path(INFRA / "events" / "resource-events-subscription.bicep"))["resources"]["toResourceEvents"]["config"]["properties"]
    return {
        "destination": {"endpointType": "AzureFunction", "properties": {"resourceId": f"{FUNCTION_ID}/functions/resource_events", "maxEventsPerBatch": 1}},
        "filter": {
            "includedEventTypes": declared["filter"]["includedEventTypes"],
            "advancedFilters": [{"operatorType": "StringContains", "key": "subject", "values": declared["filter"]["advancedFilters"][0]["values"]}],
        },
        "eventDeliverySchema": declared["eventDeliverySchema"],
    }


@pytest.fixture
def deployment(azurite_table_endpoint):
    """A healthy deployment on the emulator, and the environment azd would give the operator."""
    world = AzureEmulator(seed=5)
    auth = world.authorization
    auth.sign_in(OPERATOR_TOKEN, "operator-principal")
    roles = bicep_roles()
    imaging = auth.define_role(SUBSCRIPTION, "imaging", "imaging", actions=roles["imagingRole"], assignable_scopes=[RG_ID])
    batch = auth.define_role(SUBSCRIPTION, "batch", "batch", actions=roles["batchRole"], assignable_scopes=[BATCH_RG])
    skus = auth.define_role(SUBSCRIPTION, "skus", "skus", actions=roles["batchSkusRole"], assignable_scopes=[f"/subscriptions/{SUBSCRIPTION}"])
    auth.assign(RG_ID, APP_PRINCIPAL, imaging)
    auth.assign(ACCOUNT_ID, APP_PRINCIPAL, batch)
    auth.assign(f"/subscriptions/{SUBSCRIPTION}", APP_PRINCIPAL, skus)
    audit = auth.define_role(SUBSCRIPTION, "audit", "audit", actions=roles["protectionAuditRole"], assignable_scopes=[f"/subscriptions/{SUBSCRIPTION}"])
    auth.assign(f"/subscriptions/{SUBSCRIPTION}", APP_PRINCIPAL, audit)
    # The data roles where infra/core/servicebus.bicep, storage.bicep and app/alerts.bicep assign them.
    receiver, sender = auth.built_in_role(SUBSCRIPTION, "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"), auth.built_in_role(SUBSCRIPTION, "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39")
    auth.assign(f"{NAMESPACE_ID}/queues/pool-requests", APP_PRINCIPAL, receiver)
    auth.assign(f"{NAMESPACE_ID}/queues/pool-checks", APP_PRINCIPAL, receiver)
    auth.assign(NAMESPACE_ID, APP_PRINCIPAL, sender)
    ledger_table_id = f"{STORAGE_ID}/tableServices/default/tables/poolrequests"
    auth.assign(ledger_table_id, APP_PRINCIPAL, auth.built_in_role(SUBSCRIPTION, "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"))
    auth.assign(TOPIC_ID, APP_PRINCIPAL, auth.built_in_role(SUBSCRIPTION, "d5a91429-5739-47e2-a06b-3470a27159e7"))
    for queue in ("pool-requests", "pool-checks", "alerts"):
        world.servicebus.queue(queue)
    world.eventgrid.add_topic(TOPIC_ID, TOPIC_ENDPOINT)
    for source, topic_id in SYSTEM_TOPICS.items():
        world.eventgrid.add_system_topic(topic_id, source)
        world.eventgrid.add_event_subscription(topic_id, "resource-events-to-function", subscription_properties())
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import TableServiceClient

    from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME

    TableServiceClient(azurite_table_endpoint, credential=AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY)).create_table_if_not_exists("poolrequests")
    environ = {
        names.SERVICEBUS_NAMESPACE: "sb-abc.servicebus.windows.net",
        names.POOL_REQUESTS_QUEUE: "pool-requests",
        names.POOL_CHECKS_QUEUE: "pool-checks",
        names.ALERTS_TOPIC_ENDPOINT: TOPIC_ENDPOINT,
        names.LEDGER_TABLE_ENDPOINT: azurite_table_endpoint,
        names.LEDGER_TABLE_NAME: "poolrequests",
        names.ALLOWED_SCOPES: f"{RG_ID},{ACCOUNT_ID}",
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_FUNCTION_APP_ID": FUNCTION_ID,
        "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID": APP_PRINCIPAL,
        "SERVICEBUS_NAMESPACE_ID": NAMESPACE_ID,
        "LEDGER_TABLE_ID": ledger_table_id,
        "ALERTS_TOPIC_ID": TOPIC_ID,
        "EVENTGRID_SYSTEM_TOPIC_IDS": ",".join(SYSTEM_TOPICS.values()),
    }
    return world, environ, imaging


def run_verify(world: AzureEmulator, environ: dict) -> tuple[bool, str]:
    out = io.StringIO()
    report = verify(environ, StaticTokenCredential(OPERATOR_TOKEN), out, transport=world.transport())
    return report.ok, out.getvalue()


def test_given_a_healthy_deployment_when_verified_then_every_check_passes(deployment):
    world, environ, _ = deployment
    ok, printed = run_verify(world, environ)
    assert ok, printed
    assert "FAIL" not in printed and "0 failed" in printed
    for expected in ("PASS  app settings", f"PASS  identity may act in {RG_ID}", f"PASS  identity holds nothing more in {ACCOUNT_ID}", "PASS  queue pool-checks exists",
                     "PASS  identity may write the ledger", "PASS  identity may publish alerts", f"PASS  events of {RG_ID} reach resource_events"):
        assert expected in printed, printed
    # verify reads, as the operator, and never writes
    assert not [a for (caller, a), _ in world.actions.items() if not a.endswith("/read")]
    assert {caller for caller, _ in world.actions} == {"operator-principal"}


def test_given_the_imaging_role_lacks_an_action_when_verified_then_it_fails_naming_the_action_with_a_hint(deployment):
    world, environ, imaging = deployment
    world.authorization.remove_action(imaging, "Microsoft.Compute/snapshots/write")
    ok, printed = run_verify(world, environ)
    assert not ok
    assert f"FAIL  identity may act in {RG_ID}: missing: Microsoft.Compute/snapshots/write" in printed
    assert "hint: the imaging custom role (infra/access/roles.bicep) must be assigned here" in printed


def test_given_a_missing_queue_when_verified_then_it_fails_naming_the_queue_with_a_hint(deployment):
    world, environ, _ = deployment
    del world.servicebus._queues["pool-checks"]  # noqa: SLF001 - the emulator has no delete-queue call; the queue never existed
    ok, printed = run_verify(world, environ)
    assert not ok
    assert "FAIL  queue pool-checks exists" in printed and "hint: create it (infra/core/servicebus.bicep)" in printed
    assert "PASS  queue pool-requests exists" in printed


def test_given_a_missing_event_subscription_when_verified_then_it_fails_naming_the_source_with_a_hint(deployment):
    world, environ, _ = deployment
    world.eventgrid.remove(f"{SYSTEM_TOPICS[BATCH_RG]}/eventSubscriptions/resource-events-to-function")
    ok, printed = run_verify(world, environ)
    assert not ok
    assert f"FAIL  events of {BATCH_RG} reach resource_events: no subscription resource-events-to-function" in printed
    assert "hint: run azd hooks run postdeploy" in printed


def test_given_the_identity_also_has_contributor_when_verified_then_the_extra_power_is_named(deployment):
    world, environ, _ = deployment
    contributor = world.authorization.define_role(SUBSCRIPTION, "b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", actions=["*"], not_actions=["Microsoft.Authorization/*/Write"])
    world.authorization.assign(RG_ID, APP_PRINCIPAL, contributor)
    ok, printed = run_verify(world, environ)
    assert not ok
    assert f"FAIL  identity holds nothing more in {RG_ID}: can also: Microsoft.Compute/snapshots/delete" in printed


def test_given_a_subscription_watch_when_a_resource_group_has_no_topic_then_it_is_named(deployment):
    world, environ, _ = deployment
    environ = {**environ, "EVENTGRID_SYSTEM_TOPIC_IDS": SYSTEM_TOPICS[RG_ID]}
    ok, printed = run_verify(world, environ)
    assert not ok and f"FAIL  ARM events of {BATCH_RG} are watched" in printed


def test_given_missing_settings_when_verified_then_the_setting_is_named_and_nothing_is_called(deployment):
    world, environ, _ = deployment
    ok, printed = run_verify(world, {k: v for k, v in environ.items() if k != names.POOL_CHECKS_QUEUE})
    assert not ok and "FAIL  app settings: App setting POOL_CHECKS_QUEUE is missing" in printed and "hint:" in printed
    assert not world.actions


def test_given_the_verify_actions_when_compared_with_the_bicep_roles_then_they_are_the_same():
    roles = bicep_roles()
    assert set(IMAGING_ACTIONS) == set(roles["imagingRole"])
    assert set(BATCH_ACTIONS) == set(roles["batchRole"])
    assert set(SUBSCRIPTION_ACTIONS) == set(roles["batchSkusRole"])
    assert set(AUDIT_ACTIONS) == set(roles["protectionAuditRole"])


def test_given_the_command_line_when_asking_for_verify_help_then_it_is_registered():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "cli", "verify", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--canary VM_ID" in result.stdout and verify_module.__name__ == "cli.verify"


def test_given_events_that_never_reach_the_function_when_verified_with_the_probe_then_it_fails_and_writes_nothing(deployment):
    from datetime import timedelta
    from functools import partial

    from cli.probe import run_probe
    from shared.clients import AzureClients
    from shared.eventfacts.findings import EventFindings, read_findings
    from shared.settings import Settings
    from shared.store.tables import TableLedger

    # GIVEN a deployment whose resource_events function never runs (nothing delivers the emulator's events to it)
    world, environ, _ = deployment
    out = io.StringIO()
    probe = partial(run_probe, now=world.now, sleep=world.advance, wait=timedelta(minutes=5))
    report = verify(environ, StaticTokenCredential(OPERATOR_TOKEN), out, probe=probe, transport=world.transport())
    printed = out.getvalue()
    # THEN the probe's table says its own write event was not seen, the check fails, and no finding is written
    assert not report.ok and "FAIL  event probe" in printed and "events are not flowing" in printed
    assert "ResourceWriteSuccess: snapshot created" in printed
    ledger = TableLedger(AzureClients(Settings.from_environ(environ), credential=StaticTokenCredential(OPERATOR_TOKEN)).ledger_table())
    assert read_findings(ledger.records()) == EventFindings()
    # and it removed what it made
    assert not [r.id for r in world.store if "cip.event-probe." in r.id.lower()]


def test_given_the_command_line_when_asking_for_verify_help_then_the_probe_is_offered():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "cli", "verify", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert "--probe-events" in result.stdout and "--probe-resource-group RG_ID" in result.stdout
