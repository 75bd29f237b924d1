"""The Batch management plane through ``azure-mgmt-batch``: the only code that calls its operations."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ..arm.ids import ArmId
from ..arm.pools import PoolView, metadata_items
from ..arm.views import BatchAccountView, VmSkuView
from ..model.plan import iso_duration
from .failures import Waiting, error_code, read_arm, read_view, send
from .protocol import ArmBody, FixedScale, PoolUpdate

if TYPE_CHECKING:
    from azure.mgmt.batch import BatchManagementClient

    from ..clients import AzureClients


class SdkBatch:
    """:class:`~shared.gateway.protocol.BatchGateway` on the per-subscription Batch management clients."""

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    def _client(self, subscription: str) -> BatchManagementClient:
        return self._clients.batch(subscription)

    def account(self, account: ArmId) -> BatchAccountView | None:
        return read_view("read Batch account", lambda: self._client(account.subscription).batch_account.get(account.resource_group, account.name),
                         BatchAccountView.from_sdk)

    def pools(self, account: ArmId) -> Iterator[PoolView]:
        client = self._client(account.subscription)
        link: str | None = f"{account.id}/pools"
        while link is not None:
            # Each page is one call: its failure is sorted like any other.
            page = read_arm(f"list pools of {account.name}", partial(_pool_page, client, link))
            for item in page.get("value") or ():
                yield PoolView.from_rest(item)
            link = page.get("nextLink") or None

    def pool(self, pool: ArmId) -> PoolView | None:
        account = pool.parent()
        return read_view(f"read pool {pool.name}", lambda: self._client(pool.subscription).pool.get(pool.resource_group, account.name, pool.name),
                         PoolView.from_sdk)

    def create_pool(self, pool: ArmId, body: ArmBody) -> Waiting | None:
        from azure.core import MatchConditions  # Azure SDK: first use (cold start)

        account = pool.parent()
        return send(f"create pool {pool.name}", lambda: self._client(pool.subscription).pool.create(
            pool.resource_group, account.name, pool.name, dict(body), match_condition=MatchConditions.IfMissing))

    def update_pool(self, pool: ArmId, etag: str | None, metadata: Mapping[str, str], scale: FixedScale | None = None) -> PoolUpdate:
        properties: dict[str, Any] = {"metadata": metadata_items(metadata)}
        if scale is not None:
            fixed: dict[str, Any] = {
                "targetDedicatedNodes": scale.targets.dedicated,
                "targetLowPriorityNodes": scale.targets.low_priority,
                "resizeTimeout": iso_duration(scale.resize_timeout),
            }
            if scale.node_deallocation_option is not None:
                fixed["nodeDeallocationOption"] = scale.node_deallocation_option
            properties["scaleSettings"] = {"fixedScale": fixed}
        return self._patch(pool, etag, properties, f"update pool {pool.name}")

    def update_pool_image(self, pool: ArmId, etag: str | None, vm_configuration: Mapping[str, Any], metadata: Mapping[str, str]) -> PoolUpdate:
        properties = {"deploymentConfiguration": {"virtualMachineConfiguration": dict(vm_configuration)}, "metadata": metadata_items(metadata)}
        return self._patch(pool, etag, properties, f"change the image of pool {pool.name}")

    def _patch(self, pool: ArmId, etag: str | None, properties: dict[str, Any], description: str) -> PoolUpdate:
        """One conditional PATCH of the pool (If-Match ``etag``), its outcome sorted."""
        from azure.core import MatchConditions  # Azure SDK: first use (cold start)

        client = self._client(pool.subscription)
        # The answer (the whole pool) is read as bytes, not built into the SDK's model: nothing reads it, and a sweep of
        # 2,000 resizes spent a sixth of each PATCH building it. Reading it (rather than closing the stream) keeps the
        # connection for the next call.
        return _pool_write(description, lambda: client.pool.update(
            pool.resource_group, pool.parent().name, pool.name, {"properties": properties}, etag=etag,
            match_condition=MatchConditions.IfNotModified, stream=True, cls=_read_and_drop))

    def stop_resize(self, pool: ArmId) -> PoolUpdate:
        client = self._client(pool.subscription)
        return _pool_write(f"stop the resize of pool {pool.name}",
                           lambda: client.pool.stop_resize(pool.resource_group, pool.parent().name, pool.name))

    def vm_skus(self, subscription: str, region: str) -> list[VmSkuView]:
        skus = read_arm("list Batch VM sizes", lambda: list(self._client(subscription).location.list_supported_virtual_machine_skus(region)))
        return [VmSkuView.from_sdk(sku) for sku in skus]


def _read_and_drop(pipeline_response: Any, _deserialized: Any, _headers: Any) -> None:
    """An SDK operation's ``cls`` for a streamed answer nobody reads: its body is read and dropped."""
    pipeline_response.http_response.read()


def _pool_write(description: str, write: Callable[[], object]) -> PoolUpdate:
    """One write to a pool, its refusals sorted: 412 CHANGED, 404 GONE, 409 (or 400 PropertyCannotBeUpdated) REFUSED;
    anything else as :func:`read_arm` sorts it."""
    # Azure SDK: first use (cold start)
    from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

    def attempt() -> PoolUpdate:
        try:
            write()
        except ResourceModifiedError:
            return PoolUpdate.CHANGED
        except ResourceNotFoundError:
            return PoolUpdate.GONE
        except HttpResponseError as exc:
            # 409: busy (PoolBeingResized), or a ReadOnly lock (ScopeLocked: refused until a person removes it).
            # 400 PropertyCannotBeUpdated: a property Batch changes only while the pool is Steady at zero nodes (its
            # recorded refusal; see the emulator's Batch model for the sources).
            if exc.status_code == 409 and error_code(exc) == "ScopeLocked":
                return PoolUpdate.LOCKED
            if exc.status_code == 409 or (exc.status_code == 400 and error_code(exc) == "PropertyCannotBeUpdated"):
                return PoolUpdate.REFUSED
            raise
        return PoolUpdate.UPDATED

    return read_arm(description, attempt)


# The api-version azure-mgmt-batch sends by default (its ``BatchManagementClientConfiguration``); the listing below is
# sent with it, as the SDK's ``pool.list_by_batch_account`` would (tests/gateway check the two agree).
POOL_LIST_API_VERSION = "2025-06-01"


def _pool_page(client: BatchManagementClient, link: str) -> dict[str, Any]:
    """One page of ``Pool - List By Batch Account`` as ARM sends it, through the client's own pipeline (credential,
    retries, ARM policies, transport).

    Why not ``client.pool.list_by_batch_account``: it builds a model of every pool before the caller reads one field,
    and a sweep lists every pool of every account every five minutes; on 10,000 pools that was about 9 s of the
    sweep's CPU, against about 1 s for the same pages read as JSON. The paging follows the SDK's: ``nextLink`` as
    given, with the api-version the SDK sends (``azure.mgmt.batch.operations.PoolOperations.list_by_batch_account``).
    """
    from azure.core.exceptions import (  # Azure SDK: first use (cold start)
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ResourceNotModifiedError,
        map_error,
    )
    from azure.core.rest import HttpRequest  # Azure SDK: first use (cold start)
    from azure.mgmt.core.exceptions import ARMErrorFormat  # Azure SDK: first use (cold start)

    parts = urlsplit(link)
    params = {key: value for key, value in parse_qsl(parts.query) if key != "api-version"}
    request = HttpRequest("GET", link.split("?", 1)[0], params={**params, "api-version": POOL_LIST_API_VERSION})
    response = client.send_request(request)
    if response.status_code != 200:
        # The SDK operation's error map, then its error: the caller sorts either as it sorts the SDK's.
        map_error(status_code=response.status_code, response=response, error_map={
            401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError, 304: ResourceNotModifiedError})
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    body = response.json()
    return body if isinstance(body, dict) else {}
