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

import gc
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from emulator.router import is_read
from emulator.store import ArmResource

if TYPE_CHECKING:
    from shared.guard.sweep import SweepReport

SUBSCRIPTION = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
ACCOUNTS, POOLS_PER_ACCOUNT = 20, 100
RESOURCE_GRAPH = "POST Microsoft.ResourceGraph/resources"
LOCK_WRITES = "PUT Microsoft.Authorization/locks"
MINUTE = 60


def _account(i: int) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-batch{i:03d}/providers/Microsoft.Batch/batchAccounts/acct{i:03d}"


def guarded_accounts(dedicated_core_quota: int, count: int = ACCOUNTS):
    """A rehearsal whose world has ``count`` opt-in Batch accounts in one subscription, and the accounts' ids."""
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import Scenario

    accounts = [_account(i) for i in range(count)]
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


def lineage_of(rg: str, n: int) -> tuple[str, ...]:
    """What :func:`put_lineage` makes: the version, the managed image, the three snapshots."""
    compute = f"{rg}/providers/Microsoft.Compute"
    return (f"{compute}/galleries/g/images/d/versions/1.0.{n}", f"{compute}/images/i{n:04d}",
            *(f"{compute}/snapshots/s{n:04d}-{disk}" for disk in ("os", "lun0", "lun1")))


def put_lineage(emulator, rg: str, n: int) -> str:
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
    """First and steady sweep over 2,000 pools, each with its own five-resource lineage (the first adopts one batch of
    them, paced; the rest of the adoption is fast-forwarded before the steady sweep)."""

    rehearsal, accounts = guarded_accounts(100_000_000)
    emulator = rehearsal.emulator
    lineages: dict[str, tuple[str, tuple[str, ...]]] = {}
    for i, account in enumerate(accounts):
        rg = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-imaging{i:02d}"
        for p in range(POOLS_PER_ACCOUNT):
            version = put_lineage(emulator, rg, p)
            put_pool(emulator, account, f"pool{p:03d}", version, 1200)
            lineages[f"{account}/pools/pool{p:03d}"] = (version, lineage_of(rg, p))
    sweeps = {}
    for name in ("firstSweep", "steadySweep"):
        calls, wall = timed_sweep(rehearsal, 31 * MINUTE, name)  # every pool: its resize timed out below target
        sweeps[name] = {**_cost(calls), "wallSeconds": wall}
        if name == "firstSweep":
            _finish_adoption(rehearsal, lineages)  # the paced adoption's later batches, fast-forwarded
    return {**sweeps, "protectionAudit": _audit(rehearsal), "lineageResources": ACCOUNTS * POOLS_PER_ACCOUNT * 5}


def _audit(rehearsal) -> dict:
    """Two protection audits over the fleet's in-use resources, with no probe findings, 5 minutes apart: reads, wall seconds.

    The first is the subscription's first look: its locks listed in full, and an hour of Activity Log read back (the
    fleet's 10,000 lock writes among it); the steady one reads only the Activity Log since the first, less
    ACTIVITY_LOG_LAG.
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
        audits[name] = {"lockListPages": report.lock_lists, "lockReads": report.lock_reads, "activityLogPages": report.activity_reads,
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


FLEET_ACCOUNTS, FLEET_POOLS_PER_ACCOUNT = 100, 100
# One pool in FLEET_RESIZE_EVERY asks for more nodes than one resize brings: its resize times out, the sweep resizes it.
FLEET_RESIZE_EVERY = 100
# What such a pool asks for: one more resize reaches it. When the adoption is played to its end they ask for
# eight resizes' worth (300 nodes a resize), so the guard's resizes keep falling due while the lock batches flow.
FLEET_GROWING_NODES, FLEET_GROWING_NODES_PLAYED = 400, 2_400


def fleet10000(play_adoption: bool = False) -> dict:
    """:func:`_fleet10000`, the world it builds kept out of the collector's full passes (:func:`_settled`) until it returns."""
    try:
        return _fleet10000(play_adoption)
    finally:
        gc.unfreeze()


def _settled() -> None:
    """Move every object alive now out of reach of the cyclic garbage collector's full passes (``gc.freeze``).

    The emulated cloud lives in the benchmark's process: its resources, events and Activity Log (millions of objects for
    10,000 pools) would otherwise be walked by every full collection the measured code's allocations trigger, a cost
    the function app's own process, whose Azure is remote, never pays. The work measured is unchanged.
    """
    gc.freeze()


def _fleet10000(play_adoption: bool) -> dict:
    """10,000 pools in 100 accounts, each pool with its own lineage, on a deployment nobody probed.

    Every pool is already there when the guard first sweeps (a fleet to adopt): most at their target, one in a hundred
    with a timed-out resize. ``firstSweep``: the first timer run (sweep, paced adoption, audit): its resizes, writes
    and virtual seconds; ``adoptionFirstPeriod``: the adoption batches that follow it for one sweep period, delivered
    to the registered function at their times. The rest of the adoption (about 2.8 hours at that pace) is then
    fast-forwarded (:func:`_finish_adoption`) and two hours pass; the audit's first look at the subscription (its locks
    listed in full); ``steadySweep``: the next sweep, nothing changed; ``audit``: the protection audit of that timer run
    (the Activity Log of each resource group since the previous look); ``reconciliation``: the audit a day later, when
    the backstop lists the subscription's locks again (once every ``periodHours``).
    """
    from shared.guard.adoption import sweep_period
    from shared.protection.audit import RECONCILE_EVERY

    rehearsal, accounts = guarded_accounts(100_000_000, FLEET_ACCOUNTS)
    emulator, services = rehearsal.emulator, rehearsal.services
    resizing = 0
    lineages: dict[str, tuple[str, tuple[str, ...]]] = {}
    for i, account in enumerate(accounts):
        rg = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-imaging{i:03d}"
        for p in range(FLEET_POOLS_PER_ACCOUNT):
            grows = (i * FLEET_POOLS_PER_ACCOUNT + p) % FLEET_RESIZE_EVERY == 0
            resizing += grows
            version = put_lineage(emulator, rg, p)
            growing = FLEET_GROWING_NODES_PLAYED if play_adoption else FLEET_GROWING_NODES
            put_pool(emulator, account, f"pool{p:03d}", version, growing if grows else 4)
            lineages[f"{account}/pools/pool{p:03d}"] = (version, lineage_of(rg, p))
    emulator.advance(31 * MINUTE)  # at target, or timed out at 300 nodes
    lineage = FLEET_ACCOUNTS * FLEET_POOLS_PER_ACCOUNT * 5
    _settled()

    def timer_run(label: str) -> tuple[dict, SweepReport]:
        emulator.calls.clear()
        started, virtual = time.perf_counter(), emulator.clock.elapsed_seconds
        report = services.guard().run_sweep()
        return {**_cost(dict(emulator.calls)), "virtualSeconds": emulator.clock.elapsed_seconds - virtual,
                "wallSeconds": round(time.perf_counter() - started, 3)}, report

    first_run_at = emulator.now()
    first, report = timer_run("firstSweep")
    if len(report.resized) != resizing:
        raise RuntimeError(f"first sweep: expected {resizing} resizes, got {len(report.resized)}")
    first["lockedPools"] = len(report.adopted_images)
    _settled()
    played = None
    if play_adoption:
        first_writes = (0.0, first["lockWrites"], first["writes"] - first["lockWrites"])
        played = _play_to_the_end(rehearsal, lineage, first_run_at + sweep_period(services.settings.guard_schedule, first_run_at),
                                  first_writes)
        period = played.pop("firstPeriod")
    else:
        period = _play_adoption(rehearsal, 5 * MINUTE)
        _finish_adoption(rehearsal, lineages)
    _settled()
    emulator.advance(2 * 60 * MINUTE)  # the adoption is over (about 2.8 hours at its pace), and its Activity Log entries are history
    first_look = _audit_once(services)  # the subscription's first look: its locks listed in full
    if first_look.reconciled != [SUBSCRIPTION.lower()] and not play_adoption:  # a played adoption's sweeps had that look
        raise RuntimeError("the first look did not list the subscription's locks")
    emulator.advance(5 * MINUTE)
    emulator.calls.clear()
    started = time.perf_counter()
    steady_report = services.guard().sweep()
    steady_calls = dict(emulator.calls)
    steady = {**_cost(steady_calls), "wallSeconds": round(time.perf_counter() - started, 3)}
    if steady_report.adopted_images or steady_report.adoption_pending:
        raise RuntimeError("steady sweep: the fleet was not fully adopted")
    audit = _measured_audit(services, emulator)
    if audit["lockListPages"]:
        raise RuntimeError("the steady audit listed the subscription's locks")
    emulator.advance(int(RECONCILE_EVERY.total_seconds()))
    reconciliation = _measured_audit(services, emulator)  # a day later: the backstop lists the subscription's locks again
    if not reconciliation["lockListPages"]:
        raise RuntimeError("the daily reconciliation did not list the subscription's locks")
    return {"pools": FLEET_ACCOUNTS * FLEET_POOLS_PER_ACCOUNT, "accounts": FLEET_ACCOUNTS, "lineageResources": lineage,
            "firstSweep": first, "adoptionFirstPeriod": period,
            "steadySweep": {"reads": steady["reads"], "graphQueries": steady["resourceGraphQueries"], "writes": steady["writes"],
                            "wallSeconds": steady["wallSeconds"]},
            "audit": audit, "readsPerSteadySweep": steady["reads"] + audit["reads"],
            "adoptionPlayed": played if played is not None else "not played (fast-forwarded): python -m bench --play-adoption",
            "reconciliation": {**reconciliation, "periodHours": RECONCILE_EVERY.total_seconds() / 3600,
                               "sweepsPerPeriod": int(RECONCILE_EVERY / sweep_period(services.settings.guard_schedule, services.now()))}}


def _measured_audit(services, emulator) -> dict:
    """One protection audit (the timer's, unprobed): its ARM reads, lock list pages, lock reads, Activity Log pages, wall seconds."""
    emulator.calls.clear()
    started = time.perf_counter()
    audited = _audit_once(services)
    return {"reads": sum(n for op, n in emulator.calls.items() if is_read(op)), "lockListPages": audited.lock_lists,
            "lockReads": audited.lock_reads, "activityLogPages": audited.activity_reads, "wallSeconds": round(time.perf_counter() - started, 3)}


def _audit_once(services):
    from shared.eventfacts.findings import read_findings
    from shared.protection.audit import audit_protection

    return audit_protection(read_findings(services.records), records=services.records, locks=services.gateway.locks,
                            monitor=services.gateway.monitor, alerts=services.protection_alerts(), now=services.now)


class _EmulatorLocks:
    """Lock writes handed to the emulator's lock handler directly (the same store, events and Activity Log entries as a PUT
    through ARM, without the SDK's cost): how the benchmark fast-forwards an adoption it has measured the pace of."""

    def __init__(self, emulator) -> None:
        self._locks = emulator.locks

    def lock(self, scope, name):
        return None

    def create_lock(self, scope, name: str, notes: str):
        self._locks.put(scope.id, name, {"properties": {"level": "CanNotDelete", "notes": notes}},
                        url=f"https://management.azure.com{scope.id}/providers/Microsoft.Authorization/locks/{name}")
        return None


def _finish_adoption(rehearsal, lineages: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    """Adopt every pool not adopted yet with the same ``protect`` each batch runs, its lock writes fast-forwarded."""
    from shared.protection.locks import ImageUse, protect, recorded_lineage

    records, locks = rehearsal.services.records, _EmulatorLocks(rehearsal.emulator)
    for done, (pool_id, (image_id, resources)) in enumerate(lineages.items(), start=1):
        if recorded_lineage(records, pool_id, image_id) is None:
            protect(records, locks, ImageUse(pool_id, image_id, resources, None))  # type: ignore[arg-type]
        if done % 1000 == 0:
            _settled()  # what the adoption wrote is the world the rest of it runs in


def _play_adoption(rehearsal, seconds: int) -> dict:
    """Deliver the adoption batches due within ``seconds`` to the registered pool-checks function, each at its time:
    pools adopted, lock writes, the most lock writes of one batch and the least time between two batches."""
    from datetime import timedelta

    from rehearsal.host import service_bus_message
    from rehearsal.runner import CHECKS_QUEUE
    from shared import bootstrap

    emulator = rehearsal.emulator
    function = rehearsal.host.indexed("pool_checks")
    end = emulator.now() + timedelta(seconds=seconds)
    writes, times = [], []
    bootstrap.install(rehearsal.services)
    try:
        while (due := emulator.servicebus.next_due((CHECKS_QUEUE,))) is not None and due <= end:
            emulator.clock.advance_to(due)
            while (queued := emulator.servicebus.receive_due(CHECKS_QUEUE)) is not None:
                before = emulator.calls.get(LOCK_WRITES, 0)
                function(service_bus_message(body=queued.message.body.encode(), message_id=queued.message_id, reply_to=None,
                                             delivery_count=queued.delivery_count))
                if emulator.calls.get(LOCK_WRITES, 0) > before:
                    writes.append(emulator.calls.get(LOCK_WRITES, 0) - before)
                    times.append(emulator.clock.elapsed_seconds)
    finally:
        bootstrap.install(None)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return {"seconds": seconds, "batches": len(writes), "lockWrites": sum(writes), "maxLockWritesPerBatch": max(writes, default=0),
            "minSecondsBetweenBatches": min(gaps, default=None)}


def _play_to_the_end(rehearsal, lineage_resources: int, next_sweep: datetime, first_run: tuple[float, int, int]) -> dict:
    """Play the adoption to its end on virtual time: each batch delivered to the registered pool-checks function at its
    time, the registered timer function at every sweep in between (each sweep resizes first, then adopts when no batch
    is in flight). Measured: the virtual seconds until every lock is in place, the batches and lock writes, the most
    writes in any 20-second window, the lowest ARM's write bucket falls to when every write takes a token (200, refilled
    at 10 a second: "Understand how Azure Resource Manager throttles requests"), counting the adoption's writes alone and
    then every write (the resizes too), and the resizes the sweeps sent meanwhile. Virtual seconds count from the first
    timer run, whose writes (``first_run``: 0, lock writes, other writes) open the record; ``firstPeriod``: the batches
    of the first sweep period, as :func:`_play_adoption` reports them."""
    from datetime import timedelta

    from azure.functions.timer import TimerRequest

    from emulator.locks.models import LOCK
    from rehearsal.host import service_bus_message
    from rehearsal.runner import CHECKS_QUEUE
    from shared import bootstrap
    from shared.guard import adoption

    emulator, services = rehearsal.emulator, rehearsal.services
    checks, timer = rehearsal.host.indexed("pool_checks"), rehearsal.host.indexed("pool_guard_sweep")
    started, began = emulator.clock.elapsed_seconds, emulator.now()
    writes: list[tuple[float, int, int]] = [(started, *first_run[1:])]  # (virtual seconds, lock writes, other writes)
    sweeps = resizes = batches = 0
    in_place_at: float | None = None

    def counted(call) -> None:
        nonlocal in_place_at
        before_locks = emulator.calls.get(LOCK_WRITES, 0)
        before_all = sum(n for op, n in emulator.calls.items() if not is_read(op))
        call()
        locks = emulator.calls.get(LOCK_WRITES, 0) - before_locks
        others = sum(n for op, n in emulator.calls.items() if not is_read(op)) - before_all - locks
        writes.append((emulator.clock.elapsed_seconds, locks, others))
        if in_place_at is None and emulator.calls.get(LOCK_WRITES, 0) >= lineage_resources and emulator.store.count(LOCK) >= lineage_resources:
            in_place_at = emulator.clock.elapsed_seconds - started

    bootstrap.install(services)
    try:
        while in_place_at is None:
            due = emulator.servicebus.next_due((CHECKS_QUEUE,))
            if due is not None and due <= next_sweep:
                emulator.clock.advance_to(due)
                while (queued := emulator.servicebus.receive_due(CHECKS_QUEUE)) is not None:
                    message = service_bus_message(body=queued.message.body.encode(), message_id=queued.message_id, reply_to=None,
                                                  delivery_count=queued.delivery_count)
                    counted(lambda m=message: checks(m))
                    batches += 1
                continue
            if emulator.clock.elapsed_seconds - started > 6 * 3600:
                raise RuntimeError("the adoption did not end within 6 hours")
            emulator.clock.advance_to(next_sweep)
            before = emulator.calls.get("PATCH Microsoft.Batch/batchAccounts/pools", 0)
            counted(lambda: timer(TimerRequest(past_due=False)))
            resizes += emulator.calls.get("PATCH Microsoft.Batch/batchAccounts/pools", 0) - before
            sweeps += 1
            _settled()
            next_sweep = emulator.now() + adoption.sweep_period(services.settings.guard_schedule, emulator.now())
    finally:
        bootstrap.install(None)

    def lowest(bucket: int, refill: float, take: Callable[[tuple[float, int, int]], int]) -> float:
        tokens, at = float(bucket), writes[0][0] if writes else 0.0
        low = tokens
        for when, locks, others in writes:
            tokens = min(bucket, tokens + (when - at) * refill) - take((when, locks, others))
            at, low = when, min(low, tokens)
        return low

    period_end = started + adoption.sweep_period(services.settings.guard_schedule, next_sweep).total_seconds()
    first_period = [(when, locks) for when, locks, _ in writes[1:] if locks and when < period_end]
    gaps = [b[0] - a[0] for a, b in zip(first_period, first_period[1:], strict=False)]
    window = timedelta(seconds=20).total_seconds()
    most = max((sum(lk + ot for t, lk, ot in writes if when <= t < when + window) for when, _, _ in writes), default=0)
    return {**_resizes_meanwhile(emulator, began, began + timedelta(seconds=in_place_at or 0)),
            "firstPeriod": {"seconds": period_end - started, "batches": len(first_period), "lockWrites": sum(n for _, n in first_period),
                            "maxLockWritesPerBatch": max((n for _, n in first_period), default=0),
                            "minSecondsBetweenBatches": min(gaps, default=None)},
            "everyLockInPlaceSeconds": in_place_at, "sweeps": sweeps, "deliveries": batches,
            "lockWrites": sum(lk for _, lk, _ in writes), "otherWrites": sum(ot for _, _, ot in writes), "resizes": resizes,
            "maxWritesIn20Seconds": most,
            "writeBucketLowestAdoptionOnly": lowest(adoption.WRITE_BUCKET, adoption.WRITE_REFILL_PER_SECOND, lambda w: w[1]),
            "writeBucketLowestAllWrites": lowest(adoption.WRITE_BUCKET, adoption.WRITE_REFILL_PER_SECOND, lambda w: w[1] + w[2])}


def _resizes_meanwhile(emulator, began: datetime, ended: datetime) -> dict:
    """The resizes that started after the first timer run and before every lock was in place (from the emulator's record
    of finished resizes), and how long each pool waited for them: from the end of its previous resize (stopped, timed
    out) to the start of the next one. The guard looks again 30 s after a stop or a timeout (``SOONEST_LOOK``,
    ``AFTER_TIMEOUT``) and a stop takes the allocation model's ``stop_seconds``: a wait beyond that is a resize the
    adoption held up."""
    import statistics
    from collections import defaultdict

    runs: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for pool_id, start, end in emulator.batch.resize_history:
        runs[pool_id.lower()].append((start, end))
    waits = [(start - previous_end).total_seconds()
             for pool_runs in runs.values()
             for (_, previous_end), (start, _) in zip(sorted(pool_runs), sorted(pool_runs)[1:], strict=False)
             if began < start <= ended]
    return {"resizesDuringAdoption": len(waits), "poolsResizedDuringAdoption": sum(
                any(began < start <= ended for start, _ in pool_runs) for pool_runs in runs.values()),
            "secondsFromResizeEndToNextResize": {"max": max(waits, default=None),
                                                 "median": statistics.median(waits) if waits else None}}
