"""The custom roles hold exactly the actions the code performs.

Every example scenario and the default rehearsal run through the registered functions on the
emulator, which counts each call by caller and RBAC action (``emulator.actions``). The Function
App's calls carry the bearer token of its credential; the rehearsal's operator steps (deleting a
resource or a lock by hand) carry none. The actions the app used, plus the linked-access checks
ARM makes on the resources a request points at, must equal the actions of the four custom roles in
cli/deploy/roles.py (which the preprovision hook creates): an action never used or a call not granted fails.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

from emulator.authorization.models import ANONYMOUS, BUILT_IN_ROLES, matches
from tests.support import PROJECT_ROOT, example, played

INFRA = PROJECT_ROOT / "infra"
EXAMPLES = PROJECT_ROOT / "examples"
APP_TOKEN = "emulator-token"  # StaticTokenCredential's default: the credential the rehearsal gives the app

# ARM checks some writes on a second, linked resource too. Each with its source:
LINKED_ACTIONS = {
    # A snapshot made from a managed disk: 403 LinkedAuthorizationFailed "... has permission to perform action
    # 'Microsoft.Compute/snapshots/write' ...; however, it does not have permission to perform action
    # 'Microsoft.Compute/disks/beginGetAccess/action' on the linked scope(s) ..." (the error quoted in
    # Azure/OpenShift issue 186 and MicrosoftDocs/azure-docs issue 11362).
    "Microsoft.Compute/snapshots/write": {"Microsoft.Compute/disks/beginGetAccess/action"},
}
# Data-plane actions are granted by built-in roles on the resource (infra/app/alerts.bicep: EventGrid Data Sender).
DATA_ACTIONS = {"Microsoft.EventGrid/events/send/action"}
# Calls that need no role action of their own. A Resource Graph query (POST /providers/Microsoft.ResourceGraph/resources)
# needs "at least read access to the resources you want to query" and returns only those ("Permissions in Azure Resource
# Graph", learn.microsoft.com/azure/governance/resource-graph/overview): the emulator records, for each query, the read
# action of every resource type it returned, and those reads are what the roles must grant.
NO_ROLE_ACTION = {"Microsoft.ResourceGraph/resources/read"}


@cache
def app_actions() -> Counter[str]:
    used: Counter[str] = Counter()
    for name in ["default", *(p.name for p in sorted(EXAMPLES.glob("*.json")))]:
        emulator = played(example(name)).emulator
        for (caller, action), count in emulator.actions.items():
            if caller != ANONYMOUS:
                assert caller == APP_TOKEN, f"an unexpected caller {caller!r} made {action}"
                used[action] += count
    return used


def role_actions() -> dict[str, set[str]]:
    from cli.deploy import roles

    return {key: set(roles.actions(key)) for key in roles.ACTIONS}


def needed_actions() -> set[str]:
    control = {a for a in app_actions() if a not in DATA_ACTIONS and a not in NO_ROLE_ACTION}
    return control | {linked for action in control for linked in LINKED_ACTIONS.get(action, ())}


def test_given_every_scenario_when_the_app_identity_calls_azure_then_every_call_is_granted_by_a_custom_role():
    granted = set().union(*role_actions().values())
    missing = sorted(a for a in needed_actions() if not any(matches(g, a) for g in granted))
    assert missing == [], f"calls the roles in cli/deploy/roles.py do not grant: {missing}"


def test_given_the_custom_roles_when_compared_with_the_calls_then_no_action_is_unused():
    needed = needed_actions()
    unused = sorted(a for a in set().union(*role_actions().values()) if not any(matches(a, n) for n in needed))
    assert unused == [], f"actions granted but never used by the code (remove them): {unused}"


def test_given_the_imaging_role_when_read_then_it_cannot_delete_what_it_protects():
    imaging = role_actions()["imaging"] | role_actions()["batch"]
    for protected in ("Microsoft.Compute/snapshots/delete", "Microsoft.Compute/images/delete", "Microsoft.Compute/galleries/images/versions/delete", "Microsoft.Batch/batchAccounts/pools/delete"):
        assert not any(matches(g, protected) for g in imaging), protected


def test_given_the_alerts_publish_when_checked_then_a_built_in_data_role_grants_it():
    alerts = (INFRA / "app" / "alerts.bicep").read_text()
    assert "d5a91429-5739-47e2-a06b-3470a27159e7" in alerts  # EventGrid Data Sender on the topic
    used_data = {a for a in app_actions() if a in DATA_ACTIONS}
    assert used_data == DATA_ACTIONS
    assert all(any(matches(g, a) for g in BUILT_IN_ROLES["d5a91429-5739-47e2-a06b-3470a27159e7"]["dataActions"]) for a in used_data)


def test_given_the_scenarios_when_run_then_the_operator_steps_are_told_apart_from_the_app():
    # The lock and resource deletes of the protection scenarios are the operator's: they must not count.
    assert "Microsoft.Compute/images/delete" not in app_actions()
    assert app_actions()["Microsoft.Compute/snapshots/write"] > 0
