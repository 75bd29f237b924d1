"""Microsoft.Authorization role definitions, role assignments and the permissions API.

What ``python -m cli verify`` reads to check what the Function App's identity may
do, and what the role/operation test uses to name the action behind each call:

- Role definitions and assignments as ARM returns them (REST spec
  specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
  authorization-RoleDefinitionsCalls.json and authorization-RoleAssignmentsCalls.json).
- ``GET {scope}/providers/Microsoft.Authorization/permissions``: "Gets all permissions the
  caller has" at a resource group or resource (Permissions_ListForResourceGroup /
  Permissions_ListForResource, same spec file as the role definitions): one entry per role
  assigned to the caller at the scope or above it, each with the role's actions, notActions,
  dataActions and notDataActions.
- Who the caller is: the emulator accepts any bearer token; tests say which principal a
  token stands for (:meth:`AuthorizationBackend.sign_in`). Calls without a token are the
  rehearsal's operator steps (``ARMPipelineClient`` with no policies).

- Role definitions are created, read, listed and deleted (RoleDefinitions_CreateOrUpdate answers 201,
  RoleDefinitions_Delete 200, or 204 when there is none; same spec file). A list at a scope returns the
  roles "applicable at scope and above" (RoleDefinitions_List's description): those with an assignable
  scope at or above it; ``$filter=atScopeAndBelow()`` ("to search below the given scope as well") adds
  those assignable only below it, such as a role assignable only on resource groups listed at their
  subscription. ``roleName eq '...'`` and ``type eq '...'`` (the spec's RoleDefinitionFilter) narrow it.
  A read by id (RoleDefinitions_Get / _GetById) finds a role whatever its assignable scopes.
- A new custom role is not readable at once: "RoleDefinitionsClient#Get ... 404 RoleDefinitionDoesNotExist
  ... a transient error which may occur when the Resource Provider in ARM is yet to complete replication of
  the newly created Role Definition ... up to 10 minutes" (Azure/terraform-azurerm-caf-enterprise-scale wiki,
  Troubleshooting). ``replication_seconds`` (0 unless a test sets it) is how long reads, lists and
  assignments miss it.
- A role definition with assignments cannot be deleted ("You can't remove Custom Roles until you've removed
  all Permission Assignments", Azure/ALZ-PowerShell-Module issue 143): 409, with the code the Azure CLI
  reports for it, ``RoleDefinitionHasAssignments`` (no recording kept here).
- Role assignments are deleted by scope and name (RoleAssignments_Delete: 200 with the assignment, 204
  when there is none; authorization-RoleAssignmentsCalls.json).

Assignments apply at their scope and every scope below it, and an action matches a role's
``actions`` unless it also matches the same role's ``notActions``; ``*`` matches any run of
characters, comparisons ignore case ("Understand Azure role definitions",
https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions and
#notactions).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from ..errors import ArmError, Conflict, ResourceNotFound

ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
PERMISSIONS = "Microsoft.Authorization/permissions"
ANONYMOUS = "anonymous"

# Built-in roles the deployment assigns, with their permissions as published in "Azure built-in roles"
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration for Service Bus and
# Event Grid, .../built-in-roles/storage for Storage, .../built-in-roles/monitor for Monitoring, .../built-in-roles
# /general for Owner and Contributor, .../built-in-roles/security for Key Vault Secrets User). The ids are the ones
# infra/ assigns, and those an operator is told to hold.
BUILT_IN_ROLES: dict[str, dict] = {
    "4633458b-17de-408a-b874-0445c86b69e6": {
        "roleName": "Key Vault Secrets User",
        "actions": [],
        "dataActions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
    },
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": {
        "roleName": "Storage Blob Data Owner",
        "actions": ["Microsoft.Storage/storageAccounts/blobServices/containers/*", "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"],
        "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
    },
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": {
        "roleName": "Storage Blob Data Contributor",
        "actions": [
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        "dataActions": [
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
    },
    "3913510d-42f4-4e42-8a64-420c390055eb": {
        "roleName": "Monitoring Metrics Publisher",
        "actions": ["Microsoft.Insights/Register/Action", "Microsoft.Support/*", "Microsoft.Resources/subscriptions/resourceGroups/read"],
        "dataActions": ["Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"],
    },
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": {"roleName": "Owner", "actions": ["*"], "dataActions": []},
    "76199698-9eea-4c19-bc75-cec21354c6b6": {
        "roleName": "Storage Table Data Reader",
        "actions": ["Microsoft.Storage/storageAccounts/tableServices/tables/read"],
        "dataActions": ["Microsoft.Storage/storageAccounts/tableServices/tables/entities/read"],
    },
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": {
        "roleName": "Azure Service Bus Data Receiver",
        "actions": ["Microsoft.ServiceBus/*/queues/read", "Microsoft.ServiceBus/*/topics/read", "Microsoft.ServiceBus/*/topics/subscriptions/read"],
        "dataActions": ["Microsoft.ServiceBus/*/receive/action"],
    },
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": {
        "roleName": "Azure Service Bus Data Sender",
        "actions": ["Microsoft.ServiceBus/*/queues/read", "Microsoft.ServiceBus/*/topics/read", "Microsoft.ServiceBus/*/topics/subscriptions/read"],
        "dataActions": ["Microsoft.ServiceBus/*/send/action"],
    },
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": {
        "roleName": "Storage Table Data Contributor",
        "actions": [
            "Microsoft.Storage/storageAccounts/tableServices/tables/read",
            "Microsoft.Storage/storageAccounts/tableServices/tables/write",
            "Microsoft.Storage/storageAccounts/tableServices/tables/delete",
        ],
        "dataActions": [
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/read",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/write",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/delete",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/update/action",
        ],
    },
    "d5a91429-5739-47e2-a06b-3470a27159e7": {
        "roleName": "EventGrid Data Sender",
        "actions": [
            "Microsoft.EventGrid/topics/read",
            "Microsoft.EventGrid/domains/read",
            "Microsoft.EventGrid/partnerNamespaces/read",
            "Microsoft.EventGrid/namespaces/read",
        ],
        "dataActions": ["Microsoft.EventGrid/events/send/action"],
    },
}


def rbac_action(method: str, resource_type: str) -> str:
    """The RBAC action ARM checks for ``method`` on ``resource_type``.

    "{Company}.{ProviderName}/{resourceType}/{action}" with read for GET, write for PUT and
    PATCH, delete for DELETE ("Azure resource provider operations",
    https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations;
    e.g. Microsoft.Compute/snapshots/read, /write, /delete there). POST actions are named by
    their route (``Route.rbac_action``).
    """
    verb = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(method.upper())
    if verb is None:
        raise ValueError(f"{method} {resource_type}: a POST route must name its RBAC action")
    return f"{resource_type}/{verb}"


@lru_cache(maxsize=1024)
def _pattern(action_pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in action_pattern.split("*")) + "$", re.IGNORECASE)


def matches(action_pattern: str, action: str) -> bool:
    """Whether ``action`` matches a role's action pattern (``*`` wildcards, case-insensitive)."""
    return bool(_pattern(action_pattern).match(action))


def _norm(scope: str) -> str:
    return "/" + scope.strip("/").lower()


def scope_covers(assignment_scope: str, scope: str) -> bool:
    """An assignment at ``assignment_scope`` applies at ``scope`` (the same scope or one below it)."""
    outer, inner = _norm(assignment_scope), _norm(scope)
    return outer == "/" or inner == outer or inner.startswith(outer + "/")


@dataclass
class RoleDefinition:
    id: str
    role_name: str
    role_type: str = "CustomRole"
    description: str = ""
    actions: list[str] = field(default_factory=list)
    not_actions: list[str] = field(default_factory=list)
    data_actions: list[str] = field(default_factory=list)
    not_data_actions: list[str] = field(default_factory=list)
    assignable_scopes: list[str] = field(default_factory=list)
    # When a role created through the API can first be read (replication); None: at once.
    visible_from: datetime | None = None

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    def permission(self) -> dict:
        return {"actions": list(self.actions), "notActions": list(self.not_actions), "dataActions": list(self.data_actions), "notDataActions": list(self.not_data_actions)}

    def allows(self, action: str, *, data: bool = False) -> bool:
        granted, denied = (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        return any(matches(p, action) for p in granted) and not any(matches(p, action) for p in denied)

    def to_dict(self) -> dict:
        # RoleDefinitions_GetById example: stable/2022-04-01/examples/GetRoleDefinitionById.json.
        return {
            "id": self.id,
            "name": self.id.rsplit("/", 1)[-1],
            "type": ROLE_DEFINITION,
            "properties": {
                "roleName": self.role_name,
                "type": self.role_type,
                "description": self.description,
                "assignableScopes": list(self.assignable_scopes),
                "permissions": [self.permission()],
            },
        }


@dataclass
class RoleAssignment:
    id: str
    scope: str
    principal_id: str
    role_definition_id: str
    principal_type: str = "ServicePrincipal"

    def to_dict(self) -> dict:
        # RoleAssignments_ListForScope example: stable/2022-04-01/examples/RoleAssignments_ListForScope.json.
        return {
            "id": self.id,
            "name": self.id.rsplit("/", 1)[-1],
            "type": ROLE_ASSIGNMENT,
            "properties": {
                "scope": self.scope,
                "roleDefinitionId": self.role_definition_id,
                "principalId": self.principal_id,
                "principalType": self.principal_type,
            },
        }


_ASSIGNED_TO = re.compile(r"^\s*assignedTo\('(?P<id>[^']+)'\)\s*$", re.IGNORECASE)
_PRINCIPAL_EQ = re.compile(r"^\s*principalId\s+eq\s+'(?P<id>[^']+)'\s*$", re.IGNORECASE)


class AuthorizationBackend:
    """Role definitions, role assignments and the principal each bearer token stands for."""

    def __init__(self, emulator) -> None:
        self._emulator = emulator
        self._definitions: dict[str, RoleDefinition] = {}
        self._assignments: list[RoleAssignment] = []
        self._tokens: dict[str, str] = {}
        self.replication_seconds = 0.0
        self._denied: list[tuple[str, str, str]] = []

    # -- seeding (tests and the rehearsal) ---------------------------------------

    def sign_in(self, token: str, principal_id: str) -> None:
        """Calls made with bearer ``token`` are made by ``principal_id``."""
        self._tokens[token] = principal_id

    def define_role(
        self,
        subscription_id: str,
        name: str,
        role_name: str,
        *,
        actions: Iterable[str] = (),
        not_actions: Iterable[str] = (),
        data_actions: Iterable[str] = (),
        not_data_actions: Iterable[str] = (),
        assignable_scopes: Iterable[str] = (),
        role_type: str = "CustomRole",
    ) -> str:
        """Add (or replace) a role definition in a subscription; returns its id."""
        role_id = f"/subscriptions/{subscription_id}/providers/{ROLE_DEFINITION}/{name}"
        self._definitions[role_id.lower()] = RoleDefinition(
            role_id, role_name, role_type, "", list(actions), list(not_actions), list(data_actions), list(not_data_actions), list(assignable_scopes)
        )
        return role_id

    def built_in_role(self, subscription_id: str, name: str) -> str:
        """The id of a built-in role (one of :data:`BUILT_IN_ROLES`) as a subscription sees it."""
        role = BUILT_IN_ROLES[name]
        return self.define_role(
            subscription_id, name, role["roleName"], actions=role["actions"], data_actions=role["dataActions"], assignable_scopes=["/"], role_type="BuiltInRole"
        )

    def assign(self, scope: str, principal_id: str, role_definition_id: str) -> RoleAssignment:
        found = self._definitions.get(role_definition_id.lower())
        if found is None or not self._visible(found):
            # ARM refuses an assignment of an unknown role: RoleDefinitionDoesNotExist
            # (the error a role assignment made before its new custom role has replicated gets).
            raise ArmError(f"The specified role definition with ID '{role_definition_id}' does not exist.", code="RoleDefinitionDoesNotExist", status=400)
        assignment = RoleAssignment(
            f"{scope.rstrip('/')}/providers/{ROLE_ASSIGNMENT}/{uuid.uuid5(uuid.NAMESPACE_URL, (scope + principal_id + role_definition_id).lower())}",
            scope.rstrip("/"),
            principal_id,
            role_definition_id,
        )
        self._assignments = [a for a in self._assignments if a.id.lower() != assignment.id.lower()] + [assignment]
        return assignment

    def unassign(self, scope: str, principal_id: str, role_definition_id: str) -> None:
        self._assignments = [
            a
            for a in self._assignments
            if not (_norm(a.scope) == _norm(scope) and a.principal_id == principal_id and a.role_definition_id.lower() == role_definition_id.lower())
        ]

    def remove_action(self, role_definition_id: str, action: str) -> None:
        """Take one action out of a role (tests plant a missing permission this way)."""
        role = self.definition(role_definition_id)
        role.actions = [a for a in role.actions if a.lower() != action.lower()]

    # -- reads -----------------------------------------------------------------------

    def principal_of(self, authorization_header: str | None) -> str:
        if not authorization_header:
            return ANONYMOUS
        token = authorization_header.split(" ", 1)[-1].strip()
        return self._tokens.get(token, token)

    def definition(self, role_definition_id: str) -> RoleDefinition:
        found = self._definitions.get(role_definition_id.rstrip("/").lower())
        if found is None or not self._visible(found):
            # RoleDefinitions_GetById answers 404 RoleDefinitionDoesNotExist for an unknown id
            # (the code ARM uses for role definitions; no recording kept here).
            raise ResourceNotFound(f"The role definition '{role_definition_id}' could not be found.", code="RoleDefinitionDoesNotExist")
        return found

    def assignments_at(self, scope: str, filter_expression: str | None = None) -> list[RoleAssignment]:
        """RoleAssignments_ListForScope: assignments at, above and below ``scope``.

        ``$filter=atScope()`` keeps those at or above the scope; ``assignedTo('{id}')`` and
        ``principalId eq '{id}'`` keep one principal's (the spec's $filter description).
        """
        expression = (filter_expression or "").strip()
        principal = None
        at_scope_only = expression.replace(" ", "").lower() == "atscope()"
        for pattern in (_ASSIGNED_TO, _PRINCIPAL_EQ):
            found = pattern.match(expression)
            if found:
                principal = found.group("id")
        if expression and principal is None and not at_scope_only:
            raise ArmError(f"The filter '{expression}' is not supported by the emulator.", code="UnsupportedQuery", status=400)
        result = []
        for assignment in self._assignments:
            above = scope_covers(assignment.scope, scope)
            below = scope_covers(scope, assignment.scope)
            if not (above or (below and not at_scope_only)):
                continue
            if principal is not None and assignment.principal_id.lower() != principal.lower():
                continue
            result.append(assignment)
        return result

    def permissions_at(self, scope: str, principal_id: str) -> list[dict]:
        """What the permissions API answers ``principal_id`` at ``scope``: one entry per role assigned at or above it."""
        return [self.definition(a.role_definition_id).permission() for a in self._assignments if a.principal_id == principal_id and scope_covers(a.scope, scope)]

    def allows(self, principal_id: str, scope: str, action: str, *, data: bool = False) -> bool:
        """Whether any role assigned to ``principal_id`` at or above ``scope`` grants ``action``."""
        return any(
            self.definition(a.role_definition_id).allows(action, data=data)
            for a in self._assignments
            if a.principal_id == principal_id and scope_covers(a.scope, scope)
        )

    # -- refusals a test plants -------------------------------------------------------------------

    def deny(self, principal_id: str, scope: str, action: str = "*") -> None:
        """Every call ``principal_id`` makes at or below ``scope`` (of ``action``, a role action pattern) is refused with 403
        AuthorizationFailed: as when the role assignment granting it there is removed.

        A planted refusal, not an RBAC model: ARM answers it "The client '<id>' with object id '<id>' does not have
        authorization to perform action '<action>' over scope '<scope>' or the scope is invalid. If access was
        recently granted, please refresh your credentials." ("Troubleshoot Azure RBAC", learn.microsoft.com).
        """
        self._denied.append((principal_id, scope, action))

    def lift_denials(self, principal_id: str) -> None:
        """The refusals planted for ``principal_id`` are lifted (access granted again)."""
        self._denied = [denial for denial in self._denied if denial[0] != principal_id]

    def check_allowed(self, principal_id: str, path: str, action: str) -> None:
        for denied, scope, action_pattern in self._denied:
            if denied == principal_id and scope_covers(scope, path) and matches(action_pattern, action):
                raise ArmError(
                    f"The client '{principal_id}' with object id '{principal_id}' does not have authorization to perform action '{action}' over scope "
                    f"'{path}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                    code="AuthorizationFailed", status=403)

    # -- role definitions through the API (what the deployment commands create, wait for and remove) ----------

    def _visible(self, role: RoleDefinition) -> bool:
        return role.visible_from is None or self._emulator.now() >= role.visible_from

    def _by_name(self, name: str) -> RoleDefinition | None:
        return next((r for r in self._definitions.values() if r.name.lower() == name.lower()), None)

    def put_definition(self, scope: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """RoleDefinitions_CreateOrUpdate: 201 with the role; a new role becomes readable after ``replication_seconds``."""
        properties = dict(body.get("properties") or {})
        permissions = list(properties.get("permissions") or [{}])
        subscription = scope.strip("/").split("/")[1]
        existing = self._by_name(name)
        role_id = existing.id if existing else f"/subscriptions/{subscription}/providers/{ROLE_DEFINITION}/{name}"
        role = RoleDefinition(
            role_id,
            str(properties.get("roleName") or name),
            str(properties.get("type") or "CustomRole"),
            str(properties.get("description") or ""),
            [a for p in permissions for a in p.get("actions") or ()],
            [a for p in permissions for a in p.get("notActions") or ()],
            [a for p in permissions for a in p.get("dataActions") or ()],
            [a for p in permissions for a in p.get("notDataActions") or ()],
            list(properties.get("assignableScopes") or ()),
            existing.visible_from if existing else self._emulator.now() + timedelta(seconds=self.replication_seconds),
        )
        self._definitions[role_id.lower()] = role
        return 201, role.to_dict()

    def get_definition(self, name: str) -> RoleDefinition:
        """RoleDefinitions_Get / _GetById: the role by its name (a GUID), at any scope; 404 until it has replicated."""
        found = self._by_name(name)
        if found is None or not self._visible(found):
            raise ResourceNotFound(f"The specified role definition with ID '{name}' does not exist.", code="RoleDefinitionDoesNotExist")
        return found

    def list_definitions(self, scope: str, filter_expression: str | None = None) -> list[RoleDefinition]:
        """RoleDefinitions_List: roles applicable at ``scope`` and above; with ``atScopeAndBelow()`` also those below it."""
        wanted = _definition_filter(filter_expression)
        found = []
        for role in self._definitions.values():
            if not self._visible(role):
                continue
            at_or_above = any(scope_covers(s, scope) for s in role.assignable_scopes)
            below = any(scope_covers(scope, s) for s in role.assignable_scopes)
            if not (at_or_above or (wanted.get("atScopeAndBelow") and below)):
                continue
            if "roleName" in wanted and role.role_name != wanted["roleName"]:
                continue
            if "type" in wanted and role.role_type != wanted["type"]:
                continue
            found.append(role)
        return found

    def delete_definition(self, name: str) -> tuple[int, dict[str, Any] | None]:
        """RoleDefinitions_Delete: 200 with the role, 204 when there is none; 409 while it is assigned."""
        role = self._by_name(name)
        if role is None:
            return 204, None
        if any(a.role_definition_id.lower().rsplit("/", 1)[-1] == name.lower() for a in self._assignments):
            raise Conflict(f"There are existing role assignments referencing role '{name}'.", code="RoleDefinitionHasAssignments")
        del self._definitions[role.id.lower()]
        return 200, role.to_dict()

    def delete_assignment(self, scope: str, name: str) -> tuple[int, dict[str, Any] | None]:
        """RoleAssignments_Delete: 200 with the assignment, 204 when there is none."""
        for assignment in self._assignments:
            if _norm(assignment.scope) == _norm(scope) and assignment.id.rsplit("/", 1)[-1].lower() == name.lower():
                self._assignments.remove(assignment)
                return 200, assignment.to_dict()
        return 204, None

    def assignments(self) -> list[RoleAssignment]:
        """Every role assignment (tests read what a teardown left)."""
        return list(self._assignments)


_FILTER_TERM = re.compile(r"^\s*(?:(?P<below>atScopeAndBelow\(\))|(?P<key>roleName|type)\s+eq\s+'(?P<value>[^']*)')\s*$", re.IGNORECASE)


def _definition_filter(expression: str | None) -> dict[str, Any]:
    """The RoleDefinitions_List ``$filter`` terms the emulator knows, joined with ``and``; anything else is refused."""
    found: dict[str, Any] = {}
    for term in re.split(r"\s+and\s+", expression or "", flags=re.IGNORECASE) if (expression or "").strip() else []:
        match = _FILTER_TERM.match(term)
        if match is None:
            raise ArmError(f"The filter '{expression}' is not supported by the emulator.", code="UnsupportedQuery", status=400)
        if match.group("below"):
            found["atScopeAndBelow"] = True
        else:
            found["roleName" if match.group("key").lower() == "rolename" else "type"] = match.group("value")
    return found
