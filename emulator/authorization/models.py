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
from functools import lru_cache

from ..errors import ArmError, ResourceNotFound

ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
PERMISSIONS = "Microsoft.Authorization/permissions"
ANONYMOUS = "anonymous"

# Built-in roles the deployment assigns, with their permissions as published in "Azure built-in roles"
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration for Service Bus and
# Event Grid, .../built-in-roles/storage for Storage). The ids are the ones infra/ assigns.
BUILT_IN_ROLES: dict[str, dict] = {
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
        if role_definition_id.lower() not in self._definitions:
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
        if found is None:
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
