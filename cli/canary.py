"""``verify --canary VM_ID``: one real one-node request from a small VM, end to end, then removal.

Sends a request (its id ``canary-<time>``) to the requests queue, follows it in the ledger until it
is final (bounded), and removes what it made, as the operator (the Function App's identity may not
delete): the pool first (the function then releases its ``cip-protect`` locks, unless
KEEP_IMAGE_LOCKS), then the version, the image definition, the managed image and the snapshots.
Each step is one check in the report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

CANARY_WAIT_SECONDS = 45 * 60


def run_canary(
    environ: Mapping[str, str],
    credential: Any,
    vm_id: str,
    report: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 20.0,
    **client_kwargs: Any,
) -> None:
    from shared.arm.ids import BATCH_ACCOUNT, parse_arm_id
    from shared.clients import AzureClients
    from shared.messaging import OutgoingMessage
    from shared.settings import Settings
    from shared.store.ledger import FINAL_STAGES, RequestNotFound, Stage
    from shared.store.tables import TableLedger

    settings = Settings.from_environ(environ)
    clients = AzureClients(settings, credential=credential, **client_kwargs)
    account = next((s for s in settings.allowed_scopes if "/providers/microsoft.batch/batchaccounts/" in s.lower()), None)
    gallery = environ.get("CANARY_GALLERY_ID") or None
    if account is None:
        report.add("canary request", False, "no Batch account in ALLOWED_SCOPES", "add one (BATCH_ACCOUNT_IDS) and provision")
        return
    if gallery is None and not settings.allow_legacy_managed_image_pools:
        # Batch retired pools straight from a managed image on 2026-03-31: the canary publishes to a gallery.
        report.add("canary request", False, "CANARY_GALLERY_ID is not set (pools straight from a managed image are retired)",
                   "set CANARY_GALLERY_ID to a Compute Gallery in the allowed scopes")
        return
    request_id = f"canary-{int(time.time())}"
    image: dict[str, object] = {"galleryId": gallery} if gallery else {"legacyManagedImage": True}
    body = {
        "requestId": request_id,
        "requestedBy": "python -m cli verify --canary",
        "source": {"virtualMachineId": vm_id},
        "image": image,
        "pool": {
            "batchAccountId": parse_arm_id(account, BATCH_ACCOUNT).id,
            "poolName": request_id,
            "vmSize": environ.get("CANARY_VM_SIZE", "Standard_D2ds_v5"),
            "nodeAgentSkuId": environ.get("CANARY_NODE_AGENT_SKU", "batch.node.ubuntu 24.04"),
            "targetDedicatedNodes": 1,
        },
    }
    clients.message_sender().send(settings.pool_requests_queue, OutgoingMessage(json.dumps(body), message_id=request_id, subject="pool-request"))
    ledger = TableLedger(clients.ledger_table())
    waited = 0.0
    record = None
    while waited <= CANARY_WAIT_SECONDS:
        try:
            record = ledger.get(request_id)
        except RequestNotFound:
            record = None
        if record is not None and record.stage in FINAL_STAGES:
            break
        sleep(poll_seconds)
        waited += poll_seconds
    ready = record is not None and record.stage is Stage.READY
    report.add(
        "canary request reaches READY",
        ready,
        f"{request_id}: {record.stage.value if record else 'never recorded'}" + (f" ({record.reason})" if record and record.reason else ""),
        "python -m cli status " + request_id + " shows where it stopped; Application Insights has the function logs",
    )
    if record is not None:
        _remove(clients, record, report, sleep=sleep, poll_seconds=poll_seconds)


def _remove(clients: Any, record: Any, report: Any, *, sleep: Callable[[float], None], poll_seconds: float) -> None:
    """Delete what the canary made, pool first; a delete refused by a lock is retried (the function removes its locks)."""
    plan = record.plan
    made: list[str] = [str(record.pool_id)] if record.pool_id else []
    if plan is not None and not plan.reuses_version:
        made += [str(i) for i in (plan.image_version, plan.image_definition, plan.image) if i is not None]
        made += [str(s.snapshot) for s in plan.snapshots if s.source_disk_id is not None]
    failures = []
    for resource_id in made:
        for _ in range(30):
            try:
                _delete(clients, resource_id)
                break
            except Exception:  # noqa: BLE001 - ScopeLocked until the function released its lock; retried
                sleep(poll_seconds)
        else:
            failures.append(resource_id)
    report.add(
        "canary resources removed",
        not failures,
        f"{len(made) - len(failures)} of {len(made)} deleted" + (f"; left: {', '.join(failures)}" if failures else ""),
        "delete the rest by hand (names start with cip-<request id>); a cip-protect lock may hold them",
    )


def _delete(clients: Any, resource_id: str) -> None:
    """Delete one resource the canary made with its typed SDK call, waiting for the operation."""
    parts = resource_id.strip("/").split("/")
    subscription, group = parts[1], parts[3]
    kind = "/".join(parts[5::2]).lower()
    names = parts[6::2]
    compute = clients.compute(subscription)
    if kind == "microsoft.batch/batchaccounts/pools":
        clients.batch(subscription).pool.begin_delete(group, names[0], names[1]).result()
    elif kind == "microsoft.compute/galleries/images/versions":
        compute.gallery_image_versions.begin_delete(group, *names).result()
    elif kind == "microsoft.compute/galleries/images":
        compute.gallery_images.begin_delete(group, *names).result()
    elif kind == "microsoft.compute/images":
        compute.images.begin_delete(group, names[0]).result()
    elif kind == "microsoft.compute/snapshots":
        compute.snapshots.begin_delete(group, names[0]).result()
    else:
        raise ValueError(f"the canary does not delete {resource_id}")
