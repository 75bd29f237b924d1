"""infra/: every Bicep file parses, checkov finds nothing, the app settings match the code."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from shared import settings
from tests.support import PROJECT_ROOT

INFRA = PROJECT_ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"

# Settings the Functions platform and the SDKs need, on top of what the code
# reads: identity-based host storage and Service Bus connections (the
# user-assigned identity's client id), DefaultAzureCredential's identity pick,
# Application Insights with Entra authentication.
PLATFORM_SETTINGS = frozenset(
    {
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "SERVICEBUS__credential",
        "SERVICEBUS__clientId",
        "AZURE_CLIENT_ID",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    }
)

# Every checkov skip in infra/, each justified in a `// checkov:skip=ID: why`
# comment beside the resource. A new skip must be added here, deliberately.
DOCUMENTED_SKIPS = {
    "CKV_AZURE_35",  # storage reachable without VNet integration (identities only, no shared keys)
    "CKV_AZURE_59",  # same
    "CKV_AZURE_43",  # storage name from uniqueString(): valid, checkov cannot evaluate it
    "CKV_AZURE_193",  # alerts topic public endpoint (local auth off)
    "CKV_AZURE_222",  # Event Grid pushes to the function's public endpoint
    "CKV_AZURE_212",  # always-ready instances cost money; triggers are retried
    "CKV_AZURE_213",  # no HTTP endpoint to health-check
    "CKV_AZURE_225",  # zone redundancy not in every Flex region; triggers are retried
    "CKV_AZURE_109",  # Key Vault reachable without VNet integration (RBAC, identities only)
    "CKV_AZURE_189",  # same
    "CKV_AZURE_110",  # no purge protection: it would hold the vault's name for 90 days after azd down
    "CKV_AZURE_42",  # soft delete on by default; purge protection as CKV_AZURE_110
    "CKV_AZURE_41",  # the signing key is replaced on every provision; an expiry would only stop signing
    "CKV_AZURE_131",  # the signing key's default is newGuid(), made by each deployment
}


@cache
def parsed(path: Path) -> dict:
    from pycep import BicepParser

    return BicepParser().parse(file_path=path)


def function_app_settings() -> set[str]:
    """App setting names the Bicep gives the Function App: main.bicep's appSettings plus function.bicep's platform ones."""
    main = parsed(INFRA / "main.bicep")
    module = main["modules"]["functionApp"]
    app_settings = module["config"]["params"]["appSettings"]
    function = parsed(INFRA / module["detail"]["path"])
    platform = function["variables"]["platformSettings"]["value"]
    return set(app_settings) | set(platform)


# -- the files parse -------------------------------------------------------------


def test_given_infra_when_listed_then_main_azure_yaml_and_modules_exist():
    assert (PROJECT_ROOT / "azure.yaml").is_file()
    assert INFRA / "main.bicep" in BICEP_FILES
    assert len(BICEP_FILES) > 5, "main.bicep should be split into modules"
    assert "postdeploy" in (PROJECT_ROOT / "azure.yaml").read_text()


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_given_a_bicep_file_when_parsed_then_it_parses(path: Path):
    document = parsed(path)
    assert document["resources"] or document["modules"] or document["outputs"]


def test_given_main_bicep_when_modules_are_read_then_each_points_at_an_existing_file():
    for name, module in parsed(INFRA / "main.bicep")["modules"].items():
        assert (INFRA / module["detail"]["path"]).is_file(), name


# -- settings parity --------------------------------------------------------------


def test_given_the_function_app_when_its_settings_are_read_then_they_are_exactly_what_the_code_reads():
    from_bicep = function_app_settings()
    assert from_bicep - PLATFORM_SETTINGS == set(settings.ALL_SETTING_NAMES), (
        f"missing in infra/main.bicep appSettings: {sorted(set(settings.ALL_SETTING_NAMES) - from_bicep)}; "
        f"set but never read: {sorted(from_bicep - PLATFORM_SETTINGS - set(settings.ALL_SETTING_NAMES))}"
    )
    assert PLATFORM_SETTINGS <= from_bicep


def test_given_the_infra_when_searched_for_secrets_then_no_keys_or_connection_strings_are_used():
    for path in BICEP_FILES:
        text = path.read_text()
        for marker in ("listKeys(", "listConnectionStrings(", "AccountKey=", "SharedAccessKey"):
            assert marker not in text, f"{path.name} uses {marker}"


def test_given_the_one_secret_when_traced_then_it_is_made_at_deploy_time_and_only_ever_written_to_key_vault():
    # The app signs the retry properties it sets on its own messages (teams send to the same queue): an HMAC key.
    # It is generated by the deployment (newGuid), passed only into the vault's secret, and read by the app through
    # a Key Vault reference: no other parameter is secure, no output or setting carries its value.
    secure = {path.name: text.count("@secure()") for path in BICEP_FILES if "@secure()" in (text := path.read_text())}
    assert secure == {"main.bicep": 1, "keyvault.bicep": 1}
    main, vault = (INFRA / "main.bicep").read_text(), (INFRA / "core" / "keyvault.bicep").read_text()
    assert "param messageSigningKey string = newGuid()" in main and len(re.findall(r"\bmessageSigningKey\b", main)) == 3
    assert "messageSigningKey: messageSigningKey" in main
    assert len(re.findall(r"\bmessageSigningKey\b", vault)) == 2 and "value: messageSigningKey" in vault
    assert "MESSAGE_SIGNING_KEY: keyVault.outputs.messageSigningKeyReference" in main


def test_given_the_custom_roles_when_read_then_every_action_is_explicit_and_explained():
    # The roles live in cli/deploy/roles.py (the preprovision hook creates them; main.bicep assigns them by id).
    from cli.deploy import roles

    assert set(roles.ACTIONS) == {roles.IMAGING, roles.BATCH, roles.BATCH_SKUS, roles.PROTECTION_AUDIT}
    pairs = [pair for key in roles.ACTIONS for pair in roles.ACTIONS[key]]
    assert pairs and not [a for a, _ in pairs if "*" in a] and all(len(why) > 10 for _, why in pairs)
    actions = {a for a, _ in pairs}
    for needed in (
        "Microsoft.Compute/snapshots/write",
        "Microsoft.Compute/disks/beginGetAccess/action",
        "Microsoft.Compute/galleries/images/versions/write",
        "Microsoft.Batch/batchAccounts/pools/write",
        "Microsoft.Authorization/locks/write",
    ):
        assert needed in actions


def test_given_main_bicep_when_read_then_it_takes_every_custom_role_id_the_hook_writes():
    from cli.deploy import roles

    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = parsed(INFRA / "main.bicep")["parameters"]
    for key, env_name in roles.ENV_NAMES.items():
        bicep_name = {"imaging": "imagingRoleId", "batch": "batchRoleId", "batch-skus": "batchSkusRoleId", "protection-audit": "protectionAuditRoleId"}[key]
        assert parameters[bicep_name]["value"] == "${" + env_name + "}"
        assert bicep_name in declared


def test_given_main_bicep_when_its_nested_deployments_are_named_then_each_outside_the_app_group_carries_the_resource_token():
    # A deployment name is unique per resource group / subscription, and a subscription-scope one keeps its region:
    # two environments (or one in two regions) must not share names ("deployment already exists in location").
    text = (INFRA / "main.bicep").read_text()
    for name in ("imagingAccess", "batchAccess", "batchSkusAccess", "protectionAuditAccess", "galleryCheck", "systemTopics"):
        block = text[text.index(f"module {name} "):]
        assert "${resourceToken}" in block.split("\n", 2)[1], name


def test_given_batch_accounts_in_one_subscription_when_the_skus_role_is_assigned_then_it_is_assigned_once_per_subscription():
    text = (INFRA / "main.bicep").read_text()
    block = text[text.index("module batchSkusAccess "):].split("\n", 1)[0]
    assert "in batchSubscriptionIds" in block
    assert "var batchSubscriptionIds = union(batchSubscriptionIdList, [])" in text


def test_given_host_storage_when_its_roles_are_read_then_only_blob_data_owner_is_granted_to_the_app():
    storage = (INFRA / "core" / "storage.bicep").read_text()
    assert "974c5e8b-45b9-4653-ba55-5f855dd0fb88" not in storage  # Storage Queue Data Contributor: nothing uses host-storage queues


# -- checkov ----------------------------------------------------------------------


def test_given_infra_when_checkov_scans_the_bicep_then_nothing_fails_and_every_skip_is_documented():
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run ./scripts/bootstrap (checkov lives in its own venv)", pytrace=False)
    result = subprocess.run(
        [str(CHECKOV), "--directory", str(INFRA), "--framework", "bicep", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [], failed
    assert report["summary"]["parsing_errors"] == 0, report["results"]["parsing_errors"]
    skipped = report["results"]["skipped_checks"]
    assert {c["check_id"] for c in skipped} == DOCUMENTED_SKIPS
    assert all(len(c["check_result"].get("suppress_comment", "").strip()) > 20 for c in skipped), "every skip needs its reason"
    assert report["summary"]["passed"] > 0


def test_given_the_hooks_when_read_then_they_run_the_python_commands_in_azds_subscription_and_pass_no_inline_json():
    scripts = INFRA.parent / "scripts"
    for hook, command in (("preprovision", "deploy prepare"), ("postdeploy", "deploy subscribe")):
        sh, ps1 = (scripts / f"{hook}.sh").read_text(), (scripts / f"{hook}.ps1").read_text() + (scripts / "deploy-env.ps1").read_text()
        assert f'-m cli {command} --subscription "$AZURE_SUBSCRIPTION_ID"' in sh
        assert f"-Step {command.split()[1]}" in ps1 and "-m cli deploy $Step --subscription $env:AZURE_SUBSCRIPTION_ID" in ps1
        for text in (sh, ps1):
            code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
            assert " az " not in f" {code} " and "az.cmd" not in code and "{" + '"' not in code, hook
