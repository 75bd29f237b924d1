"""``python -m cli verify`` on the emulator: a good deployment passes; each fault prints the table, names the row, exits non-zero.

The deployment is what infra/ and the hooks make: the custom roles of cli/deploy/roles.py and the built-in
data roles, assigned where the Bicep assigns them (the Function App's identity, the Event Grid identity);
the Function App with its app settings, the functions its package indexes and a running host; the queues,
the alerts topic, one system topic per watched resource group carrying the Event Grid identity, with this
environment's resource_events subscription; the ledger table on Azurite. verify runs as the operator.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli import verify as verify_module
from cli.deploy import events, roles
from cli.verify import verify
from emulator.credentials import StaticTokenCredential
from emulator.world import AzureEmulator
from shared import settings as names
from tests.foundation.go_gitignore import azd_package
from tests.support import PROJECT_ROOT, RG_ID, SUBSCRIPTION

APP_PRINCIPAL = "11111111-2222-4333-8444-555555555555"
EVENT_GRID_PRINCIPAL = "66666666-2222-4333-8444-555555555555"
OPERATOR_TOKEN = "operator-token"
OPERATOR = "operator-principal"
ENVIRONMENT = "pools-prod"
BATCH_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-batch"
ACCOUNT_ID = f"{BATCH_RG}/providers/Microsoft.Batch/batchAccounts/teambatch"
APP_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-pools"
NAMESPACE_ID = f"{APP_RG}/providers/Microsoft.ServiceBus/namespaces/sb-abc"
STORAGE_ID = f"{APP_RG}/providers/Microsoft.Storage/storageAccounts/stabc"
KEY_VAULT_ID = f"{APP_RG}/providers/Microsoft.KeyVault/vaults/kv-abc"
APPINSIGHTS_ID = f"{APP_RG}/providers/Microsoft.Insights/components/appi-abc"
TOPIC_ID = f"{APP_RG}/providers/Microsoft.EventGrid/topics/evgt-alerts-abc"
FUNCTION_ID = f"{APP_RG}/providers/Microsoft.Web/sites/func-abc"
EVENT_GRID_IDENTITY = f"{APP_RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-evg-abc"
TOPIC_ENDPOINT = "https://evgt-alerts-abc.westeurope-1.eventgrid.azure.net/api/events"
SYSTEM_TOPICS = {RG_ID: f"{RG_ID}/providers/Microsoft.EventGrid/systemTopics/evgt-imaging", BATCH_RG: f"{BATCH_RG}/providers/Microsoft.EventGrid/systemTopics/evgt-batch"}
LEDGER_TABLE_ID = f"{STORAGE_ID}/tableServices/default/tables/poolrequests"
BUILT_IN = {"receiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", "sender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", "tables": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
            "publisher": "d5a91429-5739-47e2-a06b-3470a27159e7", "blob-owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
            "blob-contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "metrics": "3913510d-42f4-4e42-8a64-420c390055eb", "owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
            "table-reader": "76199698-9eea-4c19-bc75-cec21354c6b6", "secrets-user": "4633458b-17de-408a-b874-0445c86b69e6"}


def indexed(package: Path) -> list[str]:
    """The functions a package indexes, by the real indexing (function_app imported in a fresh interpreter from the package alone)."""
    probe = ("import sys\ntry:\n    import function_app\nexcept Exception as exc:\n    print('', file=sys.stderr); sys.exit(0)\n"
             "print(','.join(sorted(f.get_function_name() for f in function_app.app.get_functions())))\n")
    result = subprocess.run([sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {str(package)!r}); exec({probe!r})"],
                            cwd=package, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    return [name for name in result.stdout.strip().split(",") if name]


def package_copy(tmp_path: Path, *, without: str | None = None) -> Path:
    """What azd deploy would upload (the port of its packaging), copied; ``without`` leaves a top folder out."""
    target = tmp_path / "package"
    for relative in azd_package(PROJECT_ROOT):
        if without and relative.startswith(without + "/"):
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / relative, target / relative)
    return target


def app_settings(table_endpoint: str) -> dict[str, str]:
    return {
        names.SERVICEBUS_NAMESPACE: "sb-abc.servicebus.windows.net",
        names.POOL_REQUESTS_QUEUE: "pool-requests",
        names.POOL_CHECKS_QUEUE: "pool-checks",
        # As ARM lists it: the Key Vault reference, not the key.
        names.MESSAGE_SIGNING_KEY: "@Microsoft.KeyVault(SecretUri=https://kv-abc.vault.azure.net/secrets/message-signing-key)",
        names.ALERTS_TOPIC_ENDPOINT: TOPIC_ENDPOINT,
        names.LEDGER_TABLE_ENDPOINT: table_endpoint,
        names.LEDGER_TABLE_NAME: "poolrequests",
        names.ALLOWED_SCOPES: f"{RG_ID},{ACCOUNT_ID}",
    }


@pytest.fixture(scope="module")
def packaged_functions(tmp_path_factory) -> list[str]:
    return indexed(package_copy(tmp_path_factory.mktemp("good")))


@pytest.fixture
def deployment(azurite_table_endpoint, packaged_functions):
    """A good deployment on the emulator, and the environment azd gives the operator (outputs only: settings come from ARM)."""
    world = AzureEmulator(seed=5)
    auth = world.authorization
    auth.sign_in(OPERATOR_TOKEN, OPERATOR)
    made = {r.key: auth.define_role(SUBSCRIPTION, r.name, r.role_name, actions=roles.actions(r.key), assignable_scopes=r.assignable_scopes)
            for r in roles.custom_roles(SUBSCRIPTION, ENVIRONMENT, [RG_ID], [ACCOUNT_ID])}
    auth.assign(RG_ID, APP_PRINCIPAL, made[roles.IMAGING])
    auth.assign(ACCOUNT_ID, APP_PRINCIPAL, made[roles.BATCH])
    auth.assign(f"/subscriptions/{SUBSCRIPTION}", APP_PRINCIPAL, made[roles.BATCH_SKUS])
    auth.assign(f"/subscriptions/{SUBSCRIPTION}", APP_PRINCIPAL, made[roles.PROTECTION_AUDIT])
    built_in = {key: auth.built_in_role(SUBSCRIPTION, role) for key, role in BUILT_IN.items()}
    # The data roles where infra/core/*.bicep and app/alerts.bicep assign them.
    auth.assign(f"{NAMESPACE_ID}/queues/pool-requests", APP_PRINCIPAL, built_in["receiver"])
    auth.assign(f"{NAMESPACE_ID}/queues/pool-checks", APP_PRINCIPAL, built_in["receiver"])
    auth.assign(NAMESPACE_ID, APP_PRINCIPAL, built_in["sender"])
    auth.assign(LEDGER_TABLE_ID, APP_PRINCIPAL, built_in["tables"])
    auth.assign(TOPIC_ID, APP_PRINCIPAL, built_in["publisher"])
    auth.assign(STORAGE_ID, APP_PRINCIPAL, built_in["blob-owner"])
    auth.assign(APPINSIGHTS_ID, APP_PRINCIPAL, built_in["metrics"])
    auth.assign(f"{KEY_VAULT_ID}/secrets/message-signing-key", APP_PRINCIPAL, built_in["secrets-user"])
    auth.assign(f"{STORAGE_ID}/blobServices/default/containers/eventgrid-deadletter", EVENT_GRID_PRINCIPAL, built_in["blob-contributor"])
    auth.assign(f"{NAMESPACE_ID}/queues/alerts", EVENT_GRID_PRINCIPAL, built_in["sender"])
    # The operator (the person who ran azd): Owner on the imaging resource group, Table Data Contributor on the ledger.
    auth.assign(RG_ID, OPERATOR, built_in["owner"])
    auth.assign(LEDGER_TABLE_ID, OPERATOR, built_in["tables"])
    for queue in ("pool-requests", "pool-checks", "alerts"):
        world.servicebus.queue(queue)
    world.eventgrid.add_topic(TOPIC_ID, TOPIC_ENDPOINT)
    world.web.add_function_app(FUNCTION_ID, app_settings=app_settings(azurite_table_endpoint), functions=packaged_functions)
    for source, topic_id in SYSTEM_TOPICS.items():
        world.eventgrid.add_system_topic(topic_id, source, identity={"type": "UserAssigned", "userAssignedIdentities": {EVENT_GRID_IDENTITY: {}}})
        world.eventgrid.add_event_subscription(topic_id, events.subscription_name(ENVIRONMENT), subscription_properties())
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import TableServiceClient

    from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME

    TableServiceClient(azurite_table_endpoint, credential=AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY)).create_table_if_not_exists("poolrequests")
    environ = {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_ENV_NAME": ENVIRONMENT,
        "AZURE_FUNCTION_APP_ID": FUNCTION_ID,
        "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID": APP_PRINCIPAL,
        "SERVICEBUS_NAMESPACE_ID": NAMESPACE_ID,
        "LEDGER_TABLE_ID": LEDGER_TABLE_ID,
        "ALERTS_TOPIC_ID": TOPIC_ID,
        "EVENTGRID_SYSTEM_TOPIC_IDS": ",".join(SYSTEM_TOPICS.values()),
        "HOST_STORAGE_ID": STORAGE_ID,
        "KEY_VAULT_ID": KEY_VAULT_ID,
        "APPLICATIONINSIGHTS_ID": APPINSIGHTS_ID,
        "EVENTGRID_IDENTITY_ID": EVENT_GRID_IDENTITY,
        "EVENTGRID_IDENTITY_PRINCIPAL_ID": EVENT_GRID_PRINCIPAL,
        "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
    }
    return world, environ, made[roles.IMAGING]


def subscription_properties() -> dict:
    """resource-events-<env> as the postdeploy hook creates it (cli/deploy/events.py), in ARM's wire shape."""
    return {
        "destination": {"endpointType": "AzureFunction", "properties": {"resourceId": f"{FUNCTION_ID}/functions/resource_events", "maxEventsPerBatch": 1}},
        "filter": {
            "includedEventTypes": list(events.EVENT_TYPES),
            "advancedFilters": [{"operatorType": "StringContains", "key": "subject", "values": list(events.SUBJECT_CONTAINS)}],
        },
        "eventDeliverySchema": "EventGridSchema",
        "deadLetterWithResourceIdentity": {"identity": {"type": "UserAssigned", "userAssignedIdentity": EVENT_GRID_IDENTITY}},
    }


def run_verify(world: AzureEmulator, environ: dict, credential=None, **kwargs) -> tuple[bool, str]:
    out = io.StringIO()
    report = verify(environ, credential or StaticTokenCredential(OPERATOR_TOKEN), out, transport=world.transport(), **kwargs)
    return report.ok, out.getvalue()


def test_given_a_good_deployment_when_verified_then_every_row_passes_and_verify_only_reads(deployment):
    world, environ, _ = deployment
    ok, printed = run_verify(world, environ)
    assert ok, printed
    assert "FAIL" not in printed and "UNKNOWN " not in printed and ", 0 failed, 0 unknown" in printed
    for expected in (
        "PASS    signed in to Azure",
        "PASS    app settings of the Function App: 19 settings present and well-formed (read from ARM)",
        "PASS    functions of function_app.py listed by ARM: pool_checks, pool_guard_sweep, pool_requests, resource_events",
        "PASS    Functions host running: state Running",
        f"PASS    identity may act in {RG_ID}",
        f"PASS    identity holds nothing more in {ACCOUNT_ID}",
        "PASS    queue pool-checks exists",
        "PASS    identity may write the ledger",
        "PASS    identity may publish alerts",
        "PASS    identity may use host storage",
        "PASS    identity may send telemetry",
        "PASS    Event Grid identity may dead-letter",
        "PASS    Event Grid identity may deliver alerts",
        f"PASS    events of {RG_ID} reach resource_events: evgt-imaging/resource-events-{ENVIRONMENT}",
    ):
        assert expected in printed, printed
    # verify reads (a POST that lists settings counts as a read), as the operator
    writes = [a for (_, a), _ in world.actions.items() if not a.endswith("/read") and a != "Microsoft.Web/sites/config/list/action"]
    assert writes == []
    assert {caller for caller, _ in world.actions} == {OPERATOR}


def test_given_a_package_without_shared_when_deployed_and_verified_then_the_functions_row_fails_naming_every_missing_function(deployment, tmp_path):
    # GIVEN the functions a package without shared/ really indexes (none: function_app cannot import its handlers)
    world, environ, _ = deployment
    functions = indexed(package_copy(tmp_path, without="shared"))
    assert functions == []
    site_settings = world.web.app_settings(FUNCTION_ID)["properties"]
    world.web.add_function_app(FUNCTION_ID, app_settings=site_settings, functions=functions)
    # WHEN verified
    ok, printed = run_verify(world, environ)
    # THEN the table is printed, the row names the functions, and the run does not pass
    assert not ok
    assert ("FAIL    functions of function_app.py listed by ARM: missing: pool_checks, pool_guard_sweep, pool_requests, resource_events (listed: none)"
            in printed)
    assert "fix: the deployed package lacks what function_app.py imports" in printed
    assert printed.rstrip().splitlines()[-1] == "not passed: FAIL functions of function_app.py listed by ARM"


def test_given_the_imaging_role_lacks_an_action_when_verified_then_the_row_fails_naming_the_action_with_the_fix(deployment):
    world, environ, imaging = deployment
    world.authorization.remove_action(imaging, "Microsoft.Compute/snapshots/write")
    ok, printed = run_verify(world, environ)
    assert not ok
    assert f"FAIL    identity may act in {RG_ID}: missing: Microsoft.Compute/snapshots/write" in printed
    assert "fix: the imaging custom role (cli/deploy/roles.py) must be assigned here" in printed
    assert printed.rstrip().splitlines()[-1] == f"not passed: FAIL identity may act in {RG_ID}"


def test_given_a_missing_data_role_when_verified_then_the_row_names_it(deployment):
    world, environ, _ = deployment
    world.authorization.unassign(f"{STORAGE_ID}/blobServices/default/containers/eventgrid-deadletter", EVENT_GRID_PRINCIPAL,
                                 f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{BUILT_IN['blob-contributor']}")
    world.authorization.unassign(APPINSIGHTS_ID, APP_PRINCIPAL, f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{BUILT_IN['metrics']}")
    ok, printed = run_verify(world, environ)
    assert not ok
    assert "FAIL    Event Grid identity may dead-letter: missing: Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write" in printed
    assert "FAIL    identity may send telemetry: missing: Microsoft.Insights/Telemetry/Write" in printed


def test_given_the_signing_key_unreadable_by_the_identity_when_verified_then_its_row_fails_and_a_good_one_passes(deployment):
    world, environ, _ = deployment
    ok, printed = run_verify(world, environ)
    assert ok and "PASS    identity may read the message signing key: message-signing-key" in printed
    world.authorization.unassign(f"{KEY_VAULT_ID}/secrets/message-signing-key", APP_PRINCIPAL,
                                 f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{BUILT_IN['secrets-user']}")
    ok, printed = run_verify(world, environ)
    assert not ok
    assert "FAIL    identity may read the message signing key: missing: Microsoft.KeyVault/vaults/secrets/getSecret/action" in printed


def test_given_a_403_on_one_scope_when_verified_then_that_row_is_unknown_with_the_reason_and_every_other_row_still_runs(deployment):
    world, environ, _ = deployment
    world.authorization.deny(OPERATOR, ACCOUNT_ID)
    ok, printed = run_verify(world, environ)
    assert not ok
    assert f"UNKNOWN identity may act in {ACCOUNT_ID}: could not check: (AuthorizationFailed) The client 'operator-principal'" in printed
    assert "fix: you need Reader on this scope to verify it" in printed
    assert f"PASS    identity may act in {RG_ID}" in printed and "PASS    identity may publish alerts" in printed
    assert printed.rstrip().splitlines()[-1] == f"not passed: UNKNOWN identity may act in {ACCOUNT_ID}"


def test_given_no_credential_when_verified_then_the_table_says_not_signed_in_and_nothing_is_called(deployment):
    from azure.identity import EnvironmentCredential

    world, environ, _ = deployment
    # A real azure-identity credential with nothing to sign in with (no AZURE_CLIENT_ID / secret in its environment).
    ok, printed = run_verify(world, environ, credential=EnvironmentCredential())
    assert not ok
    assert "FAIL    signed in to Azure: EnvironmentCredential authentication unavailable" in printed
    assert "fix: az login (or azd auth login), then verify again" in printed
    assert printed.rstrip().splitlines()[-1] == "not passed: FAIL signed in to Azure"
    assert not world.actions


def test_given_no_credential_when_the_command_runs_then_it_prints_the_table_and_exits_1_without_a_traceback(deployment, monkeypatch):
    from azure.identity import EnvironmentCredential

    from cli.__main__ import main

    world, environ, _ = deployment
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(verify_module, "_credential", EnvironmentCredential)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["verify"]) == 1
    assert "FAIL    signed in to Azure" in out.getvalue() and "Traceback" not in out.getvalue()


def test_given_a_missing_queue_when_verified_then_it_fails_naming_the_queue_with_the_fix(deployment):
    world, environ, _ = deployment
    del world.servicebus._queues["pool-checks"]  # noqa: SLF001 - the emulator has no delete-queue call; the queue never existed
    ok, printed = run_verify(world, environ)
    assert not ok
    assert "FAIL    queue pool-checks exists" in printed and "fix: create it (infra/core/servicebus.bicep)" in printed
    assert "PASS    queue pool-requests exists" in printed


def test_given_a_missing_event_subscription_when_verified_then_it_fails_naming_the_source_with_the_fix(deployment):
    world, environ, _ = deployment
    world.eventgrid.remove(f"{SYSTEM_TOPICS[BATCH_RG]}/eventSubscriptions/{events.subscription_name(ENVIRONMENT)}")
    ok, printed = run_verify(world, environ)
    assert not ok
    assert f"FAIL    events of {BATCH_RG} reach resource_events: no subscription resource-events-{ENVIRONMENT} on evgt-batch" in printed
    assert "fix: run azd hooks run postdeploy" in printed


def test_given_a_topic_without_the_event_grid_identity_when_verified_then_dead_lettering_is_named(deployment):
    world, environ, _ = deployment
    world.store.get(SYSTEM_TOPICS[BATCH_RG]).extra["identity"] = {"type": "None"}
    ok, printed = run_verify(world, environ)
    assert not ok and "the topic lacks the Event Grid identity id-evg-abc its dead-lettering uses" in printed


def test_given_the_identity_also_has_contributor_when_verified_then_the_extra_power_is_named(deployment):
    world, environ, _ = deployment
    contributor = world.authorization.define_role(SUBSCRIPTION, "b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", actions=["*"], not_actions=["Microsoft.Authorization/*/Write"])
    world.authorization.assign(RG_ID, APP_PRINCIPAL, contributor)
    ok, printed = run_verify(world, environ)
    assert not ok
    assert f"FAIL    identity holds nothing more in {RG_ID}: can also: Microsoft.Compute/snapshots/delete" in printed


def test_given_a_subscription_watch_when_a_resource_group_has_no_topic_then_it_is_named(deployment):
    world, environ, _ = deployment
    environ = {**environ, "EVENTGRID_SYSTEM_TOPIC_IDS": SYSTEM_TOPICS[RG_ID]}
    ok, printed = run_verify(world, environ)
    assert not ok and f"FAIL    ARM events of {BATCH_RG} are watched" in printed


def test_given_a_missing_app_setting_in_the_function_app_when_verified_then_the_setting_is_named(deployment):
    world, environ, _ = deployment
    site_settings = {k: v for k, v in world.web.app_settings(FUNCTION_ID)["properties"].items() if k != names.POOL_CHECKS_QUEUE}
    world.web.add_function_app(FUNCTION_ID, app_settings=site_settings, functions=["pool_requests"])
    ok, printed = run_verify(world, environ)
    assert not ok and "FAIL    app settings of the Function App: App setting POOL_CHECKS_QUEUE is missing" in printed and "fix:" in printed


def test_given_missing_outputs_when_verified_then_they_are_named_and_nothing_is_called(deployment):
    world, environ, _ = deployment
    ok, printed = run_verify(world, {k: v for k, v in environ.items() if k != "HOST_STORAGE_ID"})
    assert not ok and "FAIL    deployment outputs: missing: HOST_STORAGE_ID" in printed
    assert not world.actions


def test_given_a_stopped_host_when_verified_then_its_state_and_errors_are_shown(deployment):
    world, environ, _ = deployment
    site_settings = world.web.app_settings(FUNCTION_ID)["properties"]
    world.web.add_function_app(FUNCTION_ID, app_settings=site_settings, functions=["pool_checks", "pool_guard_sweep", "pool_requests", "resource_events"],
                               host_state="Error", host_errors=["Microsoft.Azure.WebJobs.Script: the worker process exited"])
    ok, printed = run_verify(world, environ)
    assert not ok and "FAIL    Functions host running: state Error; errors: Microsoft.Azure.WebJobs.Script: the worker process exited" in printed


def test_given_the_command_line_when_asking_for_verify_help_then_it_is_registered_with_the_probe():
    result = subprocess.run([sys.executable, "-m", "cli", "verify", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--canary VM_ID" in result.stdout and "--probe-events" in result.stdout and "--probe-resource-group RG_ID" in result.stdout


def test_given_an_operator_who_may_not_write_the_ledger_when_probing_then_the_probe_is_not_started(deployment):
    from functools import partial

    from cli.probe import run_probe

    world, environ, _ = deployment
    world.authorization.unassign(LEDGER_TABLE_ID, OPERATOR, f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{BUILT_IN['tables']}")
    world.authorization.assign(LEDGER_TABLE_ID, OPERATOR, f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{BUILT_IN['table-reader']}")
    started = world.now()
    ok, printed = run_verify(world, environ, probe=partial(run_probe, now=world.now, sleep=world.advance))
    assert not ok
    assert "FAIL    operator may run the event probe: missing: Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action" in printed
    assert "Storage Table Data Contributor on the ledger table" in printed
    # no probe resource was made and no time spent waiting
    assert world.now() == started and not [r for r in world.store if "cip.event-probe." in r.id.lower()]


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
    assert not report.ok and "PASS    operator may run the event probe" in printed
    assert "FAIL    event probe" in printed and "events are not flowing" in printed
    assert "ResourceWriteSuccess: snapshot created" in printed
    site_settings = world.web.app_settings(FUNCTION_ID)["properties"]
    ledger = TableLedger(AzureClients(Settings.from_environ(site_settings), credential=StaticTokenCredential(OPERATOR_TOKEN)).ledger_table())
    assert read_findings(ledger.records()) == EventFindings()
    # and it removed what it made
    assert not [r.id for r in world.store if "cip.event-probe." in r.id.lower()]
