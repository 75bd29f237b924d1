"""Microsoft.Authorization/locks: management locks at any scope.

A ``CanNotDelete`` or ``ReadOnly`` lock on a resource, or on any scope above
it (parent resource, resource group, subscription), makes its DELETE fail with
409 ``ScopeLocked``, as ARM does; a ``ReadOnly`` one makes a change to it (a
pool's PATCH, a PUT over it) fail the same way.
"""

from __future__ import annotations

from ..errors import InvalidParameter, ScopeLocked
from ..http import ArmResponse
from ..store import ArmResource

LOCK = "Microsoft.Authorization/locks"
LOCK_LEVELS = ("CanNotDelete", "ReadOnly")
_LOCKS_SEGMENT = "/providers/microsoft.authorization/locks/"


def lock_id(scope: str, name: str) -> str:
    return f"{scope.rstrip('/')}/providers/Microsoft.Authorization/locks/{name}"


def scope_of(lock_resource_id: str) -> str:
    at = lock_resource_id.lower().rindex(_LOCKS_SEGMENT)
    return lock_resource_id[:at]


class LocksBackend:
    """State and operations of management locks."""

    def __init__(self, emulator) -> None:
        self._emulator = emulator
        # The last listing, kept while the store is unchanged: the pages of one long list read it once (emulator speed).
        self._listed: tuple[tuple[str, str, int], list[ArmResource]] | None = None
        self._scopes: tuple[int, dict[str, list[str]]] | None = None

    @property
    def _store(self):
        return self._emulator.store

    def put(self, scope: str, name: str, body: dict, *, url: str) -> ArmResponse:
        properties = dict(body.get("properties") or {})
        level = properties.get("level")
        if level not in LOCK_LEVELS:
            raise InvalidParameter(f"The lock level '{level}' is invalid; allowed values: {', '.join(LOCK_LEVELS)}.", code="LockLevelInvalid")
        if len(properties.get("notes") or "") > 512:
            raise InvalidParameter("The lock notes may be at most 512 characters.")
        if scope.lower().count("/providers/") and not self._store.exists(scope):
            raise InvalidParameter(f"The scope '{scope}' of the lock does not exist.", code="ResourceNotFound", status=404)
        existing = self._store.find(lock_id(scope, name))
        resource = ArmResource(existing.id if existing else lock_id(scope, name), LOCK, None, properties)
        self._store.put(resource)
        self._emulator.emit(resource.id, "PUT", True, url)
        return ArmResponse(200 if existing else 201, resource.to_dict())

    def get(self, scope: str, name: str) -> ArmResource:
        found = self._store.find(lock_id(scope, name))
        if found is None:
            raise InvalidParameter(f"The lock '{name}' could not be found at scope '{scope}'.", code="LockNotFound", status=404)
        return found

    def delete(self, scope: str, name: str, *, url: str) -> ArmResponse:
        removed = self._store.remove(lock_id(scope, name))
        if removed is None:
            return ArmResponse(204)
        self._emulator.emit(removed.id, "DELETE", True, url)
        return ArmResponse(200)

    def at_scope(self, scope: str) -> list[ArmResource]:
        """Locks that apply at ``scope``: on it and on every scope above it (in the order they were made)."""
        target = scope.lower().rstrip("/")
        by_scope = self._by_scope()
        above = [target[:at] for at in range(len(target)) if target[at] == "/" and at] + [target]
        return self._store.find_many([lock_id for prefix in above for lock_id in by_scope.get(prefix, ())])

    def _by_scope(self) -> dict[str, list[str]]:
        """Every lock's id by its scope (lower-cased), rebuilt only when a lock changed (every write checks the locks above
        it: emulator speed)."""
        version = self._store.type_version(LOCK)
        if self._scopes is None or self._scopes[0] != version:
            index: dict[str, list[str]] = {}
            for lock in self._store.of_type(LOCK):
                index.setdefault(scope_of(lock.id).lower(), []).append(lock.id)
            self._scopes = (version, index)
        return self._scopes[1]

    def listed_at(self, scope: str, filter_expression: str | None = None) -> list[ArmResource]:
        """What a GET of ``{scope}/providers/Microsoft.Authorization/locks`` lists.

        At subscription scope (ManagementLocks_ListAtSubscriptionLevel, "Gets all the management locks for a
        subscription") every lock in the subscription is listed, the resource-group and resource ones too: the
        REST spec example ManagementLocks_ListAtSubscriptionLevel.json (Microsoft.Authorization 2020-05-01) answers
        with a lock whose id is at resource-group scope. ``$filter=atScope()`` keeps only the locks that apply at
        the scope. Other scopes keep the emulator's earlier answer (locks on the scope and above it).
        """
        target = scope.lower().rstrip("/")
        key = (target, (filter_expression or "").replace(" ", "").lower(), self._store.type_version(LOCK))
        cached = self._listed
        if cached is not None and cached[0] == key:
            return cached[1]
        at_subscription = target.count("/") == 2 and target.startswith("/subscriptions/")
        if not at_subscription or key[1].startswith("atscope()"):
            listed = self.at_scope(scope)
        else:
            listed = self._store.of_type(LOCK, under=target)
        self._listed = (key, listed)
        return listed

    def check_write(self, resource_id: str) -> None:
        """Raise ScopeLocked if a ReadOnly lock forbids changing ``resource_id`` (a PUT over it, a PATCH).

        "ReadOnly means authorized users can read a resource, but they can't delete or update it"
        (azure-resource-manager/management/lock-resources.md); the answer is 409 ScopeLocked "The scope '...' cannot
        perform write operation because following scope(s) are locked: '...'. Please remove the lock and try again."
        (quoted in MicrosoftDocs azure-docs, automation/troubleshoot/start-stop-vm.md; code as the Azure CLI prints it).
        """
        blocking = [lock for lock in self.at_scope(resource_id) if lock.properties.get("level") == "ReadOnly"]
        if blocking:
            scopes = ", ".join(f"'{scope_of(lock.id)}'" for lock in blocking)
            raise ScopeLocked(
                f"The scope '{resource_id}' cannot perform write operation because following scope(s) are locked: "
                f"{scopes}. Please remove the lock and try again."
            )

    def check_delete(self, resource_id: str) -> None:
        """Raise ScopeLocked if a lock forbids deleting ``resource_id``."""
        blocking = [lock for lock in self.at_scope(resource_id) if lock.properties.get("level") in LOCK_LEVELS]
        if blocking:
            scopes = ", ".join(f"'{scope_of(lock.id)}'" for lock in blocking)
            raise ScopeLocked(
                f"The scope '{resource_id}' cannot perform delete operation because following scope(s) are locked: "
                f"{scopes}. Please remove the lock and try again."
            )
