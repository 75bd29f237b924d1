"""The four least-privilege custom roles of the Function App's identity, created before the deployment assigns them.

Every action the code performs, and why. tests/infra/test_roles_match_operations.py compares them with the
calls the Function App's identity makes across every scenario the tests run (an action never used, or a
call not granted, fails it); ``python -m cli verify`` checks the deployment against them. The identity can
create and lock what a pool uses, never delete it: no snapshots/delete, images/delete,
galleries/images/versions/delete or pools/delete. The guard's fleet-wide lineage check is a Resource Graph
query: it needs no action of its own, only read access to the resources it returns ("Permissions in Azure
Resource Graph", Resource Graph overview), which the */read actions below give on the imaging resource groups.

Why here and not in Bicep: a new role definition takes time to replicate, and an assignment made before it
has fails with RoleDefinitionDoesNotExist (up to 10 minutes: Azure/terraform-azurerm-caf-enterprise-scale
wiki, Troubleshooting). The preprovision hook creates the roles with the SDK, reads each back *by id* until
ARM finds it (a list at the subscription, "at scope and above", never shows a role assignable only on
resource groups), and hands the ids to infra/main.bicep, which only assigns them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cli.deploy.environment import Clock, DeployError, resource_group_of, subscription_of

IMAGING = "imaging"
BATCH = "batch"
BATCH_SKUS = "batch-skus"
PROTECTION_AUDIT = "protection-audit"

# (action, why) for each role.
IMAGING_ACTIONS: tuple[tuple[str, str], ...] = (
    ("Microsoft.Compute/virtualMachines/read", "the builder VM: location, OS and data disks, prerequisites"),
    # A snapshot PUT with creationData.sourceResourceId = a managed disk is also checked on the disk: without this
    # ARM answers 403 LinkedAuthorizationFailed naming 'Microsoft.Compute/disks/beginGetAccess/action' on the disk.
    ("Microsoft.Compute/disks/beginGetAccess/action", "ARM's linked check on the disk a snapshot is made from"),
    ("Microsoft.Compute/snapshots/read", "re-read a snapshot on its event (state, OS type); lineage checks (also what a Resource Graph query needs to see it)"),
    ("Microsoft.Compute/snapshots/write", "create the OS and data disk snapshots"),
    ("Microsoft.Compute/galleries/read", "the request's gallery exists (checked before anything is created)"),
    ("Microsoft.Compute/images/read", "re-read the managed image on its event; lineage checks (point reads and Resource Graph); the version's source"),
    ("Microsoft.Compute/images/write", "create the managed image from the snapshots"),
    ("Microsoft.Compute/galleries/images/read", "find the image definition before creating it"),
    ("Microsoft.Compute/galleries/images/write", "create the image definition on first use"),
    ("Microsoft.Compute/galleries/images/versions/read", "follow replication; the pool's imageReference is checked on it; lineage checks (Resource Graph)"),
    ("Microsoft.Compute/galleries/images/versions/write", "publish the version from the managed image"),
    ("Microsoft.Authorization/locks/read", "whether an image or its lineage is already protected"),
    ("Microsoft.Authorization/locks/write", "the CanNotDelete lock cip-protect on what a pool uses"),
    ("Microsoft.Authorization/locks/delete", "release our lock when the last pool using the resource is gone"),
)
BATCH_ACTIONS: tuple[tuple[str, str], ...] = (
    ("Microsoft.Batch/batchAccounts/read", "the account's region and core quotas, checked before a pool is created"),
    ("Microsoft.Batch/batchAccounts/pools/read", "pool state for the guard: allocation state, node counts, resize errors"),
    ("Microsoft.Batch/batchAccounts/pools/write", "create the pool; PATCH scaleSettings to resize"),
    ("Microsoft.Batch/batchAccounts/pools/stopResize/action", "stop a stalled resize (the guard's stall policy), to resize again"),
)
# GET /subscriptions/{id}/providers/Microsoft.Batch/locations/{region}/virtualMachineSkus is at subscription
# scope, which an assignment on the account does not cover.
BATCH_SKUS_ACTIONS: tuple[tuple[str, str], ...] = (
    ("Microsoft.Batch/locations/virtualMachineSkus/read", "cores per node of the pool's VM size, for the quota check"),
)
# Where a probe has not shown that ARM raises events for a deleted lock or a refused delete
# (python -m cli verify --probe-events), the guard's sweep looks for them itself: two reads at subscription scope.
PROTECTION_AUDIT_ACTIONS: tuple[tuple[str, str], ...] = (
    ("Microsoft.Authorization/locks/read", "ManagementLocks_ListAtSubscriptionLevel: one paged list finds every removed cip-protect lock"),
    ("Microsoft.Insights/eventtypes/values/read", "ActivityLogs_List (GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values): refused deletes"),
)
ACTIONS = {IMAGING: IMAGING_ACTIONS, BATCH: BATCH_ACTIONS, BATCH_SKUS: BATCH_SKUS_ACTIONS, PROTECTION_AUDIT: PROTECTION_AUDIT_ACTIONS}
TITLES = {IMAGING: "imaging", BATCH: "Batch", BATCH_SKUS: "Batch VM sizes", PROTECTION_AUDIT: "protection audit"}
DESCRIPTIONS = {
    IMAGING: "What the custom-image pool automation does in the teams' imaging resource groups: snapshot a prepared VM, build a managed image "
             "and a gallery image version, lock what a pool uses.",
    BATCH: "What the custom-image pool automation does in the allowed Batch accounts: create pools from the published image, keep them resizing to target.",
    BATCH_SKUS: "Read the VM sizes Azure Batch supports in a region (the custom-image pool automation checks a pool's cores against the account quota).",
    PROTECTION_AUDIT: "Read management locks and the Activity Log (the custom-image pool automation checks that what pools use is still locked, and finds refused deletes).",
}
# azd environment names of the role ids infra/main.parameters.json hands to main.bicep.
ENV_NAMES = {IMAGING: "IMAGING_ROLE_ID", BATCH: "BATCH_ROLE_ID", BATCH_SKUS: "BATCH_SKUS_ROLE_ID", PROTECTION_AUDIT: "PROTECTION_AUDIT_ROLE_ID"}
# A new role may take this long to be readable (the wiki above: "up to 10 minutes"); read every 10 seconds.
REPLICATION_WAIT_SECONDS = 600.0
READ_INTERVAL_SECONDS = 10.0
_NAMESPACE = uuid.UUID("5b1d0c3e-6f0a-4a55-9d8e-1c6f3f5b2a77")


def actions(key: str) -> tuple[str, ...]:
    return tuple(action for action, _ in ACTIONS[key])


@dataclass(frozen=True)
class CustomRole:
    """One role as this deployment defines it: its name (a GUID fixed by subscription, environment and kind) and scopes."""

    key: str
    subscription: str
    name: str
    role_name: str
    assignable_scopes: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription}/providers/Microsoft.Authorization/roleDefinitions/{self.name}"

    def definition(self) -> Any:
        from azure.mgmt.authorization.models import Permission, RoleDefinition  # cold start: only the deployment commands use it

        return RoleDefinition(role_name=self.role_name, description=DESCRIPTIONS[self.key], role_type="CustomRole",
                              permissions=[Permission(actions=list(actions(self.key)), not_actions=[], data_actions=[], not_data_actions=[])],
                              assignable_scopes=list(self.assignable_scopes))


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased and de-duplicated, first seen first (ARM ids are case-insensitive)."""
    return tuple(dict.fromkeys(i.lower() for i in ids))


def custom_roles(subscription: str, environment: str, imaging_groups: list[str], batch_accounts: list[str]) -> list[CustomRole]:
    """The four roles of this environment: imaging on the imaging resource groups, Batch on the accounts' resource
    groups (an account is assignable only through its resource group), VM sizes on the accounts' subscriptions,
    the protection audit on the imaging subscriptions."""
    scopes = {
        IMAGING: _unique(imaging_groups),
        BATCH: _unique(resource_group_of(a) for a in batch_accounts),
        BATCH_SKUS: _unique(f"/subscriptions/{subscription_of(a)}" for a in batch_accounts),
        PROTECTION_AUDIT: _unique(f"/subscriptions/{subscription_of(g)}" for g in imaging_groups),
    }
    return [
        CustomRole(key, subscription, str(uuid.uuid5(_NAMESPACE, f"{subscription.lower()}/{environment}/{key}")),
                   f"Custom image pools {TITLES[key]} ({environment}, {subscription.lower()})", scopes[key])
        for key in ACTIONS
    ]


def ensure_roles(client: Any, roles: list[CustomRole]) -> None:
    """Create or update each role at its subscription (RoleDefinitions_CreateOrUpdate); the same content again is a no-op."""
    from azure.core.exceptions import HttpResponseError  # cold start: only the deployment commands use it

    for role in roles:
        try:
            client.role_definitions.create_or_update(f"/subscriptions/{role.subscription}", role.name, role.definition())
        except HttpResponseError as exc:
            raise arm_failure(exc, f"creating the {TITLES[role.key]} role", role.subscription) from exc


def wait_until_readable(client: Any, roles: list[CustomRole], clock: Clock, *, wait_seconds: float = REPLICATION_WAIT_SECONDS) -> dict[str, float]:
    """Read each role by id (RoleDefinitions_GetById) until ARM finds it; the seconds each took. Gives up after ``wait_seconds``."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # cold start: only the deployment commands use it

    waited: dict[str, float] = {}
    for role in roles:
        spent = 0.0
        while True:
            try:
                client.role_definitions.get_by_id(role.id)
                break
            except ResourceNotFoundError as exc:
                if spent >= wait_seconds:
                    raise DeployError(f"the {TITLES[role.key]} role {role.id} is still not readable after {spent:.0f} s ({_code(exc)})",
                                      "role definitions can take up to 10 minutes to replicate: run azd provision again") from exc
                clock.sleep(READ_INTERVAL_SECONDS)
                spent += READ_INTERVAL_SECONDS
            except HttpResponseError as exc:
                raise arm_failure(exc, f"reading the {TITLES[role.key]} role", role.subscription) from exc
        waited[role.key] = spent
    return waited


def arm_failure(exc: Any, doing: str, subscription: str) -> DeployError:
    """An ARM refusal as a DeployError with the fix for its code."""
    code = _code(exc)
    if code == "SubscriptionNotFound":
        return DeployError(f"{doing}: ARM does not know subscription {subscription} (SubscriptionNotFound)",
                           "check azd's subscription (azd env get-value AZURE_SUBSCRIPTION_ID) against az account list, in the tenant you signed in to")
    if code in ("AuthorizationFailed", "LinkedAuthorizationFailed") or getattr(exc, "status_code", None) == 403:
        return DeployError(f"{doing}: not allowed in subscription {subscription} ({code or 403})",
                           "run azd as Owner (or User Access Administrator + Contributor) of the subscription and of the teams' resource groups")
    return DeployError(f"{doing}: {code or type(exc).__name__}: {_first_line(exc)}", "retry; if it persists, the message above names what ARM refused")


def _code(exc: Any) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", None) or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
