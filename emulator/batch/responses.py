"""HTTP handlers for Microsoft.Batch: parse the call, hand it to the backend. No logic."""

from __future__ import annotations

from ..http import ArmRequest, ArmResponse
from ..paging import page

_ACCOUNT = "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Batch/batchAccounts/{}"


def _account_id(subscription: str, resource_group: str, account: str) -> str:
    return _ACCOUNT.format(subscription, resource_group, account)


def _pool_answer(pool) -> ArmResponse:
    return ArmResponse(200, pool.to_dict(), {"ETag": pool.etag})


def get_account(emulator, request: ArmRequest, subscription: str, resource_group: str, account: str, **_: str) -> ArmResponse:
    return ArmResponse(200, emulator.batch.get_account(_account_id(subscription, resource_group, account)).to_dict())


def list_pools(emulator, request: ArmRequest, subscription: str, resource_group: str, account: str, **_: str) -> ArmResponse:
    pools = emulator.batch.list_pools(_account_id(subscription, resource_group, account))
    size = int(request.query.get("maxresults") or emulator.page_size)
    return page(request, pools, size, lambda pool: pool.to_dict())


def list_virtual_machine_skus(emulator, request: ArmRequest, location: str, **_: str) -> ArmResponse:
    skus = emulator.batch.virtual_machine_skus(location)
    size = int(request.query.get("maxresults") or emulator.page_size)
    return page(request, skus, size)


def get_pool(emulator, request: ArmRequest, **_: str) -> ArmResponse:
    return _pool_answer(emulator.batch.get_pool(request.path.rstrip("/")))


def put_pool(emulator, request: ArmRequest, subscription: str, resource_group: str, account: str, pool: str, **_: str) -> ArmResponse:
    created = emulator.batch.create_pool(
        _account_id(subscription, resource_group, account), pool, request.json(),
        if_match=request.header("If-Match"), if_none_match=request.header("If-None-Match"), url=request.url,
    )
    return _pool_answer(created)


def patch_pool(emulator, request: ArmRequest, **_: str) -> ArmResponse:
    updated = emulator.batch.update_pool(request.path.rstrip("/"), request.json(), if_match=request.header("If-Match"), url=request.url)
    return _pool_answer(updated)


def stop_resize(emulator, request: ArmRequest, **_: str) -> ArmResponse:
    return _pool_answer(emulator.batch.stop_resize(request.path.rstrip("/").rsplit("/", 1)[0], url=request.url))


def delete_pool(emulator, request: ArmRequest, **_: str) -> ArmResponse:
    return emulator.batch.delete_pool(request.path.rstrip("/"), url=request.url, api_version=request.query["api-version"])


def get_pool_operation_result(emulator, request: ArmRequest, subscription: str, resource_group: str, account: str,
                              operation: str, **_: str) -> ArmResponse:
    return emulator.batch.pool_operation_result(_account_id(subscription, resource_group, account), operation, url=request.url)
