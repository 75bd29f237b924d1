"""Route table for Microsoft.Batch."""

from __future__ import annotations

from ..router import Route
from . import models
from . import responses as r

_ACCOUNT = "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Batch/batchAccounts/{account}"
_POOL = _ACCOUNT + "/pools/{pool}"

ROUTES = [
    Route("GET", _ACCOUNT, models.ACCOUNT, r.get_account),
    Route("GET", _ACCOUNT + "/pools", models.POOL, r.list_pools),
    Route("GET", _POOL, models.POOL, r.get_pool),
    Route("PUT", _POOL, models.POOL, r.put_pool),
    Route("PATCH", _POOL, models.POOL, r.patch_pool),
    Route("DELETE", _POOL, models.POOL, r.delete_pool),
    Route("POST", _POOL + "/stopResize", models.POOL, r.stop_resize),
    Route("GET", "/subscriptions/{subscription}/providers/Microsoft.Batch/locations/{location}/virtualMachineSkus",
          models.VIRTUAL_MACHINE_SKUS, r.list_virtual_machine_skus, emits_events=False),
    Route("GET", _ACCOUNT + "/poolOperationResults/{operation}", models.POOL_OPERATION_RESULTS, r.get_pool_operation_result, emits_events=False),
]
