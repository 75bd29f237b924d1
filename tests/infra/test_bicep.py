"""infra/: every Bicep file parses, checkov finds nothing, the app settings match the code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shared import settings
from tests.support import PROJECT_ROOT, parsed_bicep

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
}


def function_app_settings() -> set[str]:
    """App setting names the Bicep gives the Function App: main.bicep's appSettings plus function.bicep's platform ones."""
    main = parsed_bicep(INFRA / "main.bicep")
    module = main["modules"]["functionApp"]
    app_settings = module["config"]["params"]["appSettings"]
    function = parsed_bicep(INFRA / module["detail"]["path"])
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
    document = parsed_bicep(path)
    assert document["resources"] or document["modules"] or document["outputs"]


def test_given_main_bicep_when_modules_are_read_then_each_points_at_an_existing_file():
    for name, module in parsed_bicep(INFRA / "main.bicep")["modules"].items():
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
        for marker in ("listKeys(", "listConnectionStrings(", "AccountKey=", "SharedAccessKey", "@secure()"):
            assert marker not in text, f"{path.name} uses {marker}"


def test_given_the_custom_roles_when_read_then_every_action_is_explicit():
    # The roles live in access/roles.bicep (main.bicep and scripts/preprovision deploy it).
    resources = parsed_bicep(INFRA / "access" / "roles.bicep")["resources"]
    roles = {name: r for name, r in resources.items() if r["type"] == "Microsoft.Authorization/roleDefinitions"}
    assert set(roles) == {"imagingRole", "batchRole", "batchSkusRole", "protectionAuditRole"}
    actions = [a for r in roles.values() for p in r["config"]["properties"]["permissions"] for a in p["actions"]]
    assert actions and not [a for a in actions if "*" in a]
    for needed in (
        "Microsoft.Compute/snapshots/write",
        "Microsoft.Compute/disks/beginGetAccess/action",
        "Microsoft.Compute/galleries/images/versions/write",
        "Microsoft.Batch/batchAccounts/pools/write",
        "Microsoft.Authorization/locks/write",
    ):
        assert needed in actions


def test_given_the_resource_events_subscription_when_read_then_it_filters_and_dead_letters():
    subscription = parsed_bicep(INFRA / "events" / "resource-events-subscription.bicep")["resources"]["toResourceEvents"]
    properties = subscription["config"]["properties"]
    assert properties["destination"]["properties"]["resourceId"].endswith("/functions/resource_events")
    assert set(properties["filter"]["includedEventTypes"]) == {
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.Resources.ResourceWriteFailure",
        "Microsoft.Resources.ResourceDeleteSuccess",
        "Microsoft.Resources.ResourceDeleteFailure",
    }
    assert properties["retryPolicy"] and properties["deadLetterWithResourceIdentity"]


# -- checkov ----------------------------------------------------------------------


def test_given_infra_when_checkov_scans_the_bicep_then_nothing_fails_and_every_skip_is_documented():
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run ./scripts/bootstrap (checkov lives in its own venv)", pytrace=False)
    result = subprocess.run(
        [str(CHECKOV), "--directory", str(INFRA), "--framework", "bicep", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
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


def test_given_the_preprovision_hooks_when_read_then_they_wait_for_every_custom_role():
    # An assignment made before its role definition replicates fails with RoleDefinitionDoesNotExist.
    import re

    outputs = set(re.findall(r"^output (\w+RoleId) string", (INFRA / "access" / "roles.bicep").read_text(), re.MULTILINE))
    assert len(outputs) == 4
    for hook in ("preprovision.sh", "preprovision.ps1"):
        waited = set(re.findall(r"(\w+RoleId)\.value", (INFRA.parent / "scripts" / hook).read_text()))
        assert waited == outputs, hook
