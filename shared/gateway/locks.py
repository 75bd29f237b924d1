"""Management locks through ``azure-mgmt-resource-locks``: the only code that calls its operations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arm.ids import ArmId
from ..arm.views import Listing, LockView
from .failures import Waiting, read_arm, read_view, send

if TYPE_CHECKING:
    from azure.mgmt.resource.locks import ManagementLockClient

    from ..clients import AzureClients


class SdkLocks:
    """:class:`~shared.gateway.protocol.LockGateway` on the per-subscription lock clients."""

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    def _client(self, subscription: str) -> ManagementLockClient:
        return self._clients.locks(subscription)

    def lock(self, scope: ArmId, name: str) -> LockView | None:
        return read_view(f"read lock on {scope.id}", lambda: self._client(scope.subscription).management_locks.get_by_scope(scope.id, name),
                         LockView.from_sdk)

    def create_lock(self, scope: ArmId, name: str, notes: str) -> Waiting | None:
        from azure.mgmt.resource.locks.models import ManagementLockObject  # Azure SDK: first use (cold start)

        return send(f"lock {scope.id}", lambda: self._client(scope.subscription).management_locks.create_or_update_by_scope(
            scope.id, name, ManagementLockObject(level="CanNotDelete", notes=notes)))

    def delete_lock(self, scope: ArmId, name: str) -> Waiting | None:
        return send(f"unlock {scope.id}", lambda: self._client(scope.subscription).management_locks.delete_by_scope(scope.id, name))

    def subscription_locks(self, subscription: str) -> Listing[LockView]:
        locks = self._client(subscription).management_locks
        pages = read_arm("list the management locks (protection audit)", lambda: [list(page) for page in locks.list_at_subscription_level().by_page()])
        return Listing(tuple(LockView.from_sdk(lock) for page in pages for lock in page), len(pages))
