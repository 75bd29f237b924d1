"""The command line for teams and ops: submit requests, follow them, clear errors.

Azure is replaced through the documented seams: the Service Bus emulator as the
MessageSender, the ledger in memory or on Azurite, Batch reads on the emulator.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from azure.mgmt.batch.models import (
    DeploymentConfiguration,
    FixedScaleSettings,
    ImageReference,
    Pool,
    PoolProperties,
    ScaleSettings,
    VirtualMachineConfiguration,
)

import cli.__main__ as cli_main
from cli.operations import InvalidRequestFile, describe, load_request, progress_bar, submit, table, watch
from emulator.store import ArmResource
from emulator.world import AzureEmulator
from shared.clients import AzureClients
from shared.settings import Settings
from shared.store.ledger import RequestRecord, Stage
from shared.store.memory import InMemoryLedger
from shared.store.tables import TableLedger
from tests.support import PROJECT_ROOT, RG_ID, VALID_SETTINGS, StaticTokenCredential

ACCOUNT_ID = f"{RG_ID}/providers/Microsoft.Batch/batchAccounts/teambatch"
VERSION_ID = f"{RG_ID}/providers/Microsoft.Compute/galleries/teamgallery/images/worker/versions/1.0.0"
POOL_ID = f"{ACCOUNT_ID}/pools/render-pool"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def request_body(**changes) -> dict:
    body = {
        "requestId": "team-a-render-001",
        "requestedBy": "team-a@contoso.com",
        "source": {"galleryImageVersionId": VERSION_ID},
        "pool": {
            "batchAccountId": ACCOUNT_ID,
            "poolName": "render-pool",
            "vmSize": "Standard_D4ds_v5",
            "nodeAgentSkuId": "batch.node.ubuntu 24.04",
            "targetDedicatedNodes": 40,
        },
    }
    body.update(changes)
    return body


@pytest.fixture
def request_file(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_body()))
    return path


@pytest.fixture
def emulator() -> AzureEmulator:
    world = AzureEmulator(seed=3)
    world.batch.add_account(ACCOUNT_ID)
    world.store.put(ArmResource(VERSION_ID, "Microsoft.Compute/galleries/images/versions", "westeurope", {"provisioningState": "Succeeded"}))
    return world


@pytest.fixture
def clients(emulator) -> AzureClients:
    return AzureClients(
        Settings.from_environ(VALID_SETTINGS),
        credential=StaticTokenCredential(),
        transport=emulator.transport(),
        message_sender=emulator.servicebus,
    )


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in VALID_SETTINGS}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, env={**clean, **(env or {})})


# -- offline: help and schema ----------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["submit", "--help"], ["status", "--help"], ["rehearse", "--help"]])
def test_given_no_azure_when_asking_for_help_then_every_command_explains_itself(args):
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "usage: python -m cli" in result.stdout


def test_given_no_azure_when_printing_the_schema_then_it_is_the_request_json_schema():
    result = run_cli("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "Custom image pool request"


def test_given_no_settings_when_submitting_then_the_missing_setting_is_named_with_a_hint(request_file):
    result = run_cli("submit", str(request_file))
    assert result.returncode == cli_main.EXIT_SETTINGS
    assert "SERVICEBUS__fullyQualifiedNamespace" in result.stderr and "hint:" in result.stderr


# -- submit ----------------------------------------------------------------------------


def test_given_a_valid_file_when_submitted_then_the_queue_gets_it_with_reply_to_and_its_id(request_file, emulator):
    request = load_request(request_file)
    sent = submit(request, emulator.servicebus, "pool-requests", reply_to="team-a-replies")

    assert sent.request_id == "team-a-render-001"
    [message] = emulator.servicebus.queue("pool-requests").sent
    assert message.message.reply_to == "team-a-replies"
    assert message.message.message_id == "team-a-render-001"
    assert json.loads(message.message.body)["pool"]["targetDedicatedNodes"] == 40


def test_given_a_file_without_request_id_when_loaded_then_it_gets_a_fresh_one(tmp_path):
    body = request_body()
    del body["requestId"]
    (tmp_path / "r.json").write_text(json.dumps(body))

    first, second = load_request(tmp_path / "r.json"), load_request(tmp_path / "r.json")
    assert first.request_id and first.request_id != second.request_id


def test_given_an_invalid_file_when_submitted_then_it_is_rejected_naming_the_field_and_nothing_is_sent(tmp_path, emulator, monkeypatch, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(request_body(pool={**request_body()["pool"], "targetDedicatedNodes": -1})))
    monkeypatch.setattr(cli_main, "_clients", lambda settings: pytest.fail("must not reach Azure"))

    code = cli_main.main(["submit", str(path)])

    assert code == cli_main.EXIT_INVALID
    assert "pool.targetDedicatedNodes" in capsys.readouterr().err
    assert not emulator.servicebus.queue("pool-requests").sent
    with pytest.raises(InvalidRequestFile, match="pool.targetDedicatedNodes"):
        load_request(path)


def test_given_emulated_azure_when_submit_runs_from_the_command_line_then_it_prints_the_request_id(request_file, clients, emulator, monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "_settings", lambda *needed: clients.settings)
    monkeypatch.setattr(cli_main, "_clients", lambda settings: clients)

    code = cli_main.main(["submit", str(request_file), "--reply-to", "team-a-replies"])

    assert code == 0
    assert capsys.readouterr().out.strip() == "team-a-render-001"
    assert emulator.servicebus.queue("pool-requests").sent[0].message.reply_to == "team-a-replies"


def test_given_a_missing_queue_when_submitting_then_the_error_says_so_with_a_hint(request_file, clients, monkeypatch, capsys):
    from azure.servicebus.exceptions import MessagingEntityNotFoundError

    class NoSuchQueue:
        def send(self, queue, message):
            raise MessagingEntityNotFoundError(message=f"The messaging entity '{queue}' could not be found.")

    monkeypatch.setattr(cli_main, "_settings", lambda *needed: clients.settings)
    monkeypatch.setattr(cli_main, "_clients", lambda settings: AzureClients(settings, credential=StaticTokenCredential(), message_sender=NoSuchQueue()))

    code = cli_main.main(["submit", str(request_file)])

    err = capsys.readouterr().err
    assert code == cli_main.EXIT_NOT_FOUND
    assert "queue does not exist" in err and "hint:" in err


def test_given_no_sign_in_when_reading_status_then_the_error_says_to_sign_in(clients, monkeypatch, capsys):
    from azure.identity import CredentialUnavailableError

    class NotSignedIn:
        def get_token(self, *scopes, **kwargs):
            raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")

        def get_token_info(self, *scopes, options=None):
            raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr(cli_main, "_settings", lambda *needed: clients.settings)
    monkeypatch.setattr(cli_main, "_clients", lambda settings: AzureClients(settings, credential=NotSignedIn()))

    code = cli_main.main(["status", "team-a-render-001"])

    err = capsys.readouterr().err
    assert code == cli_main.EXIT_NOT_SIGNED_IN
    assert "az login" in err


# -- status --------------------------------------------------------------------------


def stored(ledger, request_id: str, stage: Stage, **details) -> RequestRecord:
    record = ledger.create(RequestRecord.new(request_id=request_id, stage=Stage.RECEIVED, body=request_body(requestId=request_id), now=NOW, reply_to="team-a-replies"))
    if stage is not Stage.RECEIVED:
        record = ledger.advance(record, stage, details=details or None, now=NOW)
    return record


def test_given_requests_in_the_ledger_when_listed_then_a_table_shows_each_with_its_stage():
    ledger = InMemoryLedger()
    stored(ledger, "req-1", Stage.SCALING)
    stored(ledger, "req-2", Stage.RECEIVED)

    text = table(ledger.list_recent(10))

    assert text.splitlines()[0].split()[:2] == ["REQUEST", "STAGE"]
    assert "req-1" in text and "SCALING" in text and "req-2" in text


def test_given_one_request_when_described_then_its_stage_pool_and_target_are_shown():
    record = stored(InMemoryLedger(), "req-1", Stage.SCALING, plan={"poolId": POOL_ID})
    text = describe(record)
    assert "SCALING" in text and POOL_ID in text and "40 dedicated" in text


def test_given_the_ledger_on_azurite_when_status_lists_recent_requests_then_they_are_read_from_table_storage(azurite_table_client):
    ledger = TableLedger(azurite_table_client)
    ledger.ensure_table()
    stored(ledger, "req-azurite", Stage.SCALING)

    assert "req-azurite" in table(ledger.list_recent(5))


def test_given_an_unknown_request_when_status_runs_then_it_exits_not_found(clients, monkeypatch, capsys):
    ledger = InMemoryLedger()
    monkeypatch.setattr(cli_main, "_settings", lambda *needed: clients.settings)
    monkeypatch.setattr(cli_main, "_clients", lambda settings: clients)
    monkeypatch.setattr("shared.store.tables.TableLedger", lambda table_client: ledger)

    assert cli_main.main(["status", "nope"]) == cli_main.EXIT_NOT_FOUND
    assert "hint:" in capsys.readouterr().err


# -- watch ---------------------------------------------------------------------------


def test_given_a_scaling_pool_when_watched_then_node_counts_grow_until_ready(clients, emulator):
    ledger = InMemoryLedger()
    stored(ledger, "req-1", Stage.SCALING, plan={"poolId": POOL_ID})
    batch = clients.batch(emulator_subscription())
    batch.pool.create(RG_ID.split("/")[-1], "teambatch", "render-pool", Pool(properties=PoolProperties(
        vm_size="Standard_D4ds_v5",
        deployment_configuration=DeploymentConfiguration(virtual_machine_configuration=VirtualMachineConfiguration(
            image_reference=ImageReference(id=VERSION_ID), node_agent_sku_id="batch.node.ubuntu 24.04")),
        scale_settings=ScaleSettings(fixed_scale=FixedScaleSettings(target_dedicated_nodes=40)),
    )))

    def sleep(seconds):
        emulator.advance(seconds)
        pool = batch.pool.get(RG_ID.split("/")[-1], "teambatch", "render-pool")
        if pool.current_dedicated_nodes == 40:
            ledger.advance(ledger.get("req-1"), Stage.READY, now=NOW)

    out = io.StringIO()
    record = watch(ledger, clients, "req-1", out, interval=60, sleep=sleep, max_polls=200)

    lines = out.getvalue().splitlines()
    assert record.stage is Stage.READY
    assert lines[0].startswith("SCALING") and "/40 nodes" in lines[0]
    assert lines[-1].startswith("READY") and "40/40 nodes" in lines[-1]


def test_given_a_request_without_a_pool_when_watched_then_it_says_so_and_stops_at_failed(clients):
    ledger = InMemoryLedger()
    record = stored(ledger, "req-1", Stage.SNAPSHOTTING)
    ledger.advance(record, Stage.FAILED, reason="snapshot of the OS disk failed", now=NOW)

    out = io.StringIO()
    assert watch(ledger, clients, "req-1", out, sleep=lambda s: None).stage is Stage.FAILED
    assert "pool not created yet" in out.getvalue() and "snapshot of the OS disk failed" in out.getvalue()


def test_given_node_counts_when_drawn_then_the_bar_fills_in_proportion():
    assert progress_bar(0, 600, width=10) == "[..........] 0/600 nodes"
    assert progress_bar(300, 600, width=10) == "[#####.....] 300/600 nodes"
    assert progress_bar(0, 0, width=4) == "[####] 0/0 nodes"


def emulator_subscription() -> str:
    return RG_ID.split("/")[2]
