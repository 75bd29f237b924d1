"""Fleet-scale figures of the pool guard and image protection, on the emulator.

- ``guard.distinctImages2000``: 2,000 pools in 20 Batch accounts, each pool with its own
  gallery lineage (version <- managed image <- 3 snapshots, as the pipeline makes it), one
  imaging resource group per account. The first sweep meets pools nobody recorded yet (it
  reads each lineage and locks it); the steady sweep is the next one, every pool below
  target again. ARM reads, writes and lock writes of each; Resource Graph queries apart.
  ``protectionAudit``: what the timer's protection audit reads on that fleet when no probe has
  shown the lock and refused-delete events arrive (lock list pages, Activity Log pages).
- ``protection.sharedImage2000``: 2,000 pools protected one after the other on one shared
  lineage (a managed image made from one snapshot): lock writes, the largest usage record
  stored, and the wall seconds of all the protect steps together.
"""

from __future__ import annotations

import json
import time

from emulator.router import is_read
from emulator.store import ArmResource

SUBSCRIPTION = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
ACCOUNTS, POOLS_PER_ACCOUNT = 20, 100
RESOURCE_GRAPH = "POST Microsoft.ResourceGraph/resources"
LOCK_WRITES = "PUT Microsoft.Authorization/locks"
MINUTE = 60


def _account(i: int) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-batch{i:02d}/providers/Microsoft.Batch/batchAccounts/acct{i:02d}"


def guarded_accounts(dedicated_core_quota: int):
    """A rehearsal whose world has ACCOUNTS opt-in Batch accounts in one subscription, and the accounts' ids."""
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import Scenario

    accounts = [_account(i) for i in range(ACCOUNTS)]
    rehearsal = Rehearsal(Scenario.model_validate({
        "world": {"batchAccounts": [{"id": a, "dedicatedCoreQuota": dedicated_core_quota} for a in accounts],
                  "guardedBatchAccounts": accounts, "allowedScopes": [f"/subscriptions/{SUBSCRIPTION}"]},
        "steps": [],
    }))
    return rehearsal, accounts


def timed_sweep(rehearsal, after_seconds: int, label: str = "sweep") -> tuple[dict[str, int], float]:
    """Let ``after_seconds`` pass, then one guard sweep that must resize every pool: its ARM calls and wall seconds."""

    emulator = rehearsal.emulator
    emulator.advance(after_seconds)
    emulator.calls.clear()
    started = time.perf_counter()
    report = rehearsal.services.guard().sweep()
    wall = time.perf_counter() - started
    if len(report.resized) != ACCOUNTS * POOLS_PER_ACCOUNT:
        raise RuntimeError(f"{label}: expected every pool resized, got {len(report.resized)} ({len(report.failed)} failed)")
    return dict(sorted(emulator.calls.items())), round(wall, 3)


def put_pool(emulator, account: str, name: str, image_id: str, target: int) -> None:
    """A fixed-scale pool of ``target`` dedicated nodes from ``image_id``, made directly in the emulator."""
    body = {"properties": {
        "vmSize": "Standard_D4ds_v5",
        "deploymentConfiguration": {"virtualMachineConfiguration": {"imageReference": {"id": image_id}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": target, "resizeTimeout": "PT25M"}},
    }}
    emulator.batch.create_pool(account, name, body, url=f"https://management.azure.com{account}/pools/{name}")


def _cost(calls: dict[str, int]) -> dict[str, int]:
    """ARM reads (Resource Graph queries counted apart), writes, lock writes."""
    return {
        "reads": sum(n for op, n in calls.items() if is_read(op) and op != RESOURCE_GRAPH),
        "writes": sum(n for op, n in calls.items() if not is_read(op)),
        "lockWrites": calls.get(LOCK_WRITES, 0),
        "resourceGraphQueries": calls.get(RESOURCE_GRAPH, 0),
        "resizes": calls.get("PATCH Microsoft.Batch/batchAccounts/pools", 0),
    }


def _put_lineage(emulator, rg: str, n: int) -> str:
    """A gallery version made from a managed image made from three snapshots; the version's id."""
    compute = f"{rg}/providers/Microsoft.Compute"
    snapshots = [f"{compute}/snapshots/s{n:04d}-{disk}" for disk in ("os", "lun0", "lun1")]
    for snapshot in snapshots:
        emulator.store.put(ArmResource(snapshot, "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    image = f"{compute}/images/i{n:04d}"
    emulator.store.put(ArmResource(image, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {
        "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": snapshots[0]}},
        "dataDisks": [{"lun": lun, "snapshot": {"id": s}} for lun, s in enumerate(snapshots[1:])],
    }}))
    version = f"{compute}/galleries/g/images/d/versions/1.0.{n}"
    emulator.store.put(ArmResource(version, "Microsoft.Compute/galleries/images/versions", "westeurope", {
        "provisioningState": "Succeeded", "storageProfile": {"source": {"id": image}}}))
    return version


def distinct_images() -> dict:
    """First and steady sweep over 2,000 pools, each with its own five-resource lineage."""

    rehearsal, accounts = guarded_accounts(100_000_000)
    emulator = rehearsal.emulator
    for i, account in enumerate(accounts):
        rg = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-imaging{i:02d}"
        for p in range(POOLS_PER_ACCOUNT):
            put_pool(emulator, account, f"pool{p:03d}", _put_lineage(emulator, rg, p), 1200)
    sweeps = {}
    for name in ("firstSweep", "steadySweep"):
        calls, wall = timed_sweep(rehearsal, 31 * MINUTE, name)  # every pool: its resize timed out below target
        sweeps[name] = {**_cost(calls), "wallSeconds": wall}
    return {**sweeps, "protectionAudit": _audit(rehearsal), "lineageResources": ACCOUNTS * POOLS_PER_ACCOUNT * 5}


def _audit(rehearsal) -> dict:
    """Two protection audits over the fleet's in-use resources, with no probe findings, 5 minutes apart: reads, wall seconds.

    The first reads back an hour of Activity Log (the fleet's 10,000 lock writes among it); the steady one reads
    only since the first, less ACTIVITY_LOG_LAG.
    """
    from shared.eventfacts.findings import EventFindings
    from shared.protection.audit import audit_protection

    emulator, services = rehearsal.emulator, rehearsal.services
    audits = {}
    for name in ("firstAudit", "steadyAudit"):
        emulator.advance(5 * MINUTE)
        emulator.calls.clear()
        started = time.perf_counter()
        report = audit_protection(EventFindings(), records=services.records, locks=services.gateway.locks, monitor=services.gateway.monitor,
                                  alerts=services.protection_alerts(), now=services.now)
        wall = time.perf_counter() - started
        audits[name] = {"lockListPages": report.lock_lists, "activityLogPages": report.activity_reads,
                        "reads": sum(n for op, n in emulator.calls.items() if is_read(op)),
                        "alerts": len(report.protection_removed + report.deletion_blocked), "wallSeconds": round(wall, 3)}
    return audits


def shared_image() -> dict:
    """2,000 pools protected on one shared lineage: lock writes, largest record, total protect seconds."""
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario
    from shared.protection.locks import ImageUse, protect

    rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
    emulator = rehearsal.emulator
    compute = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-imaging/providers/Microsoft.Compute"
    snapshot, image = f"{compute}/snapshots/shared-os", f"{compute}/images/shared"
    emulator.store.put(ArmResource(snapshot, "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    emulator.store.put(ArmResource(image, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {
        "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": snapshot}}}}))
    emulator.calls.clear()
    pools = ACCOUNTS * POOLS_PER_ACCOUNT
    records, locks = rehearsal.services.records, rehearsal.services.gateway.locks
    started = time.perf_counter()
    for p in range(pools):
        protect(records, locks, ImageUse(f"{DEFAULT_ACCOUNT_ID}/pools/pool{p:04d}", image, (snapshot,), f"request-{p:04d}"))
    wall = time.perf_counter() - started
    largest = max(len(json.dumps(r.data)) for kind in ("image-use", "image-user", "pool-use") for r in records.list(kind))
    return {"pools": pools, "lineageResources": 2, "lockWrites": emulator.calls.get(LOCK_WRITES, 0),
            "maxRecordBytes": largest, "protectSecondsTotal": round(wall, 3)}
