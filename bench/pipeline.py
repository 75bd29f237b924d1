"""Pipeline figures of the default request, on the emulator, against the bounds they are judged by.

- ``armCallsToPoolCreated`` and ``timeToPoolCreatedRatioToBound``: ARM calls and virtual time from
  submit to pool created. The bound is the critical path of the emulator's own operation durations
  (snapshots, then the managed image, then the replicated version; the definition runs alongside):
  nothing event-driven can create the pool sooner.
- ``readySeconds``, ``readyLagSeconds``, ``armReadsToReady``: the whole run as deployed (events, scheduled
  checks, the timer) with no probe findings, so the sweeps also audit protection themselves: virtual seconds
  to READY, how long after the pool reached its target the request was READY, and the ARM reads it took
  (Resource Graph queries counted apart). ``unprobed`` repeats them under the name the targets use.
- ``probed``: the same run where ``verify --probe-events`` found every ARM event raised (no sweep audits
  protection itself): an extra key, never the headline.
- ``readySecondsRatioToStallBound``: READY on the default deployment against the stop-and-resize bound of the
  same world: the pipeline up to the pool's creation, then a driver that knows the allocation model's state
  (no ARM reads) stops each resize the moment it has added the last node it will, and resizes again the
  moment the pool is Steady. No guard can see a stall sooner; the bound is measured by playing it.
- ``noStall``: the default request where one resize brings every node (no stall): READY and the stops issued (0).
- ``pollingBaseline``: the same world driven by a plain loop that polls every 30 s and takes the next
  step when the last one is done, with the same SDK clients: what a simple script would do.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from emulator.router import is_read

RESOURCE_GRAPH = "POST Microsoft.ResourceGraph/resources"
STOP_RESIZE = "POST Microsoft.Batch/batchAccounts/pools"
POLL = timedelta(seconds=30)


class CallsUntil(Counter):
    """The emulator's call counter, keeping a copy of itself as it was when ``operation`` was first called."""

    def __init__(self, operation: str) -> None:
        super().__init__()
        self.operation = operation
        self.at_first: Counter | None = None

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        if key == self.operation and self.at_first is None:
            self.at_first = Counter(self)


def time_to_pool_bound(emulator, replicas: int) -> float:
    """Seconds on the critical path of the emulator's own operations, submit to pool created."""
    timings = emulator.compute.timings
    version = timings.version_base_seconds + timings.version_seconds_per_replica * replicas
    return timings.snapshot_seconds + timings.image_seconds + math.ceil(version)


def to_pool_created() -> dict:
    """Calls and virtual time from submit to the pool's creation, deliveries one at a time (no timer)."""
    from rehearsal.pump import ConcurrentPump
    from rehearsal.runner import REQUESTS_QUEUE, Rehearsal
    from rehearsal.scenario import Scenario, default_request
    from shared import bootstrap
    from shared.messaging import OutgoingMessage

    rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
    request = default_request()
    pool_id = f"{request['pool']['batchAccountId']}/pools/{request['pool']['poolName']}"
    counted = CallsUntil("PUT Microsoft.Batch/batchAccounts/pools")
    rehearsal.emulator.calls = counted
    bootstrap.install(rehearsal.services)
    try:
        rehearsal.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json.dumps(request), message_id="bench-pool"))
        ConcurrentPump(rehearsal, workers=1).run(until=lambda: rehearsal.emulator.store.find(pool_id) is not None)
    finally:
        bootstrap.install(None)
    plan = rehearsal.ledger.get(request["requestId"]).plan
    assert plan is not None and counted.at_first is not None
    seconds = rehearsal.emulator.clock.elapsed_seconds
    return {
        "armCallsToPoolCreated": sum(counted.at_first.values()),
        "armCallsToPoolCreatedByOperation": dict(sorted(counted.at_first.items())),
        "secondsToPoolCreated": seconds,
        "timeToPoolCreatedRatioToBound": round(seconds / time_to_pool_bound(rehearsal.emulator, plan.replica_count), 4),
    }


def stall_bound() -> dict:
    """The stop-and-resize bound: the default request up to its pool's creation, then an all-knowing driver (see above)."""
    from rehearsal.pump import ConcurrentPump
    from rehearsal.runner import REQUESTS_QUEUE, Rehearsal
    from rehearsal.scenario import Scenario, default_request
    from shared import bootstrap
    from shared.messaging import OutgoingMessage

    rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
    emulator, request = rehearsal.emulator, default_request()
    pool_id = f"{request['pool']['batchAccountId']}/pools/{request['pool']['poolName']}"
    bootstrap.install(rehearsal.services)
    try:
        rehearsal.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json.dumps(request), message_id="bench-bound"))
        ConcurrentPump(rehearsal, workers=1).run(until=lambda: emulator.store.find(pool_id) is not None)
    finally:
        bootstrap.install(None)
    created = emulator.clock.elapsed_seconds
    batch, url = emulator.batch, f"https://management.azure.com{pool_id}"
    stops = 0
    for _ in range(24 * 3600):
        pool = emulator.store.find(pool_id)
        if pool is None:
            raise RuntimeError("the pool is gone")
        props = pool.properties
        fixed = props["scaleSettings"]["fixedScale"]
        if props["currentDedicatedNodes"] >= fixed["targetDedicatedNodes"]:
            break
        if props["allocationState"] == "Steady":
            batch.update_pool(pool_id, {"properties": {"scaleSettings": {"fixedScale": dict(fixed)}}}, url=url)
        elif props["allocationState"] == "Resizing" and batch.resize_exhausted(pool_id):
            batch.stop_resize(pool_id, url=url + "/stopResize")
            stops += 1
        emulator.advance(1)
    else:
        raise RuntimeError("the stall bound never reached the pool's target")
    return {"poolCreatedSeconds": created, "targetSeconds": emulator.clock.elapsed_seconds, "stops": stops}


def to_ready(probed: bool = False, allocation: dict | None = None) -> dict:
    """The default rehearsal as deployed: seconds to READY, the lag after the pool reached its target, reads.

    ``probed``: the deployment's probe found every event raised (so no sweep audits protection itself); by default
    it found nothing, as on a deployment nobody probed. ``allocation``: the world's allocation model, if not the default.
    """
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import Scenario, default_scenario
    from shared.eventfacts.findings import EventFindings, write_findings

    scenario = default_scenario()
    if allocation is not None:
        scenario = Scenario.model_validate({**scenario.model_dump(by_alias=True, exclude_none=True), "world": {"allocation": allocation}})
    rehearsal = Rehearsal(scenario)
    if probed:
        write_findings(rehearsal.services.records, EventFindings(True, True, "completion"))
    rehearsal.run()
    emulator = rehearsal.emulator
    [ready_at] = [entry.at for entry in rehearsal.timeline if entry.stage == "READY"]
    reached = max(end for _, _, end in emulator.batch.resize_history)
    calls = emulator.calls
    return {
        "readySeconds": emulator.clock.elapsed_seconds - (emulator.now() - ready_at).total_seconds(),
        "readyLagSeconds": (ready_at - reached).total_seconds(),
        "armReadsToReady": sum(n for op, n in calls.items() if is_read(op) and op != RESOURCE_GRAPH),
        "resourceGraphQueriesToReady": calls.get(RESOURCE_GRAPH, 0),
        "armCallsToReady": sum(calls.values()),
        "stopResizes": calls.get(STOP_RESIZE, 0),
    }


def polling_baseline() -> dict:
    """The default request driven by a loop that polls every 30 s: seconds to READY and its ARM calls.

    Bodies are ARM's JSON handed to the SDK's models (a model takes its raw JSON as a mapping).
    """
    from azure.mgmt.compute.models import GalleryImage, GalleryImageVersion, Image, Snapshot

    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import DEFAULT_ACCOUNT_ID, DEFAULT_GALLERY_ID, DEFAULT_VM_ID, Scenario, default_request
    from shared.arm.ids import BATCH_ACCOUNT, GALLERY, VIRTUAL_MACHINE, parse_arm_id

    rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
    emulator = rehearsal.emulator
    clients = rehearsal.clients
    request = default_request()["pool"]
    vm_id, gallery, account = (parse_arm_id(DEFAULT_VM_ID, VIRTUAL_MACHINE), parse_arm_id(DEFAULT_GALLERY_ID, GALLERY),
                               parse_arm_id(DEFAULT_ACCOUNT_ID, BATCH_ACCOUNT))
    compute, batch = clients.compute(vm_id.subscription), clients.batch(account.subscription)
    rg, location = vm_id.resource_group, "westeurope"
    target, replicas = request["targetDedicatedNodes"], math.ceil(request["targetDedicatedNodes"] / 300)

    def wait_until(done) -> None:
        while not done():
            emulator.advance(POLL.total_seconds())

    def succeeded(read) -> bool:
        return read().provisioning_state == "Succeeded"

    vm = compute.virtual_machines.get(rg, vm_id.name)
    disks = [(None, vm.storage_profile.os_disk.managed_disk.id)] + [(d.lun, d.managed_disk.id) for d in vm.storage_profile.data_disks]
    names = {lun: f"poll-{'os' if lun is None else f'lun{lun}'}" for lun, _ in disks}
    for lun, disk in disks:
        compute.snapshots.begin_create_or_update(rg, names[lun], Snapshot({"location": location, "properties": {
            "creationData": {"createOption": "Copy", "sourceResourceId": disk}}}), polling=False)
    compute.gallery_images.begin_create_or_update(rg, gallery.name, "poll", GalleryImage({"location": location, "properties": {
        "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
        "identifier": {"publisher": "poll", "offer": "poll", "sku": "poll"}}}), polling=False)
    wait_until(lambda: all(succeeded(lambda name=name: compute.snapshots.get(rg, name)) for name in names.values()))
    snapshot_id = f"/subscriptions/{vm_id.subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/snapshots/"
    compute.images.begin_create_or_update(rg, "poll", Image({"location": location, "properties": {"hyperVGeneration": "V2", "storageProfile": {
        "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": snapshot_id + names[None]}},
        "dataDisks": [{"lun": lun, "snapshot": {"id": snapshot_id + name}} for lun, name in names.items() if lun is not None]}}}),
        polling=False)
    wait_until(lambda: succeeded(lambda: compute.images.get(rg, "poll")))
    image_id = f"/subscriptions/{vm_id.subscription}/resourceGroups/{rg}/providers/Microsoft.Compute/images/poll"
    compute.gallery_image_versions.begin_create_or_update(rg, gallery.name, "poll", "1.0.0", GalleryImageVersion({"location": location, "properties": {
        "publishingProfile": {"targetRegions": [{"name": location, "regionalReplicaCount": replicas}], "replicaCount": replicas},
        "storageProfile": {"source": {"id": image_id}}}}), polling=False)
    wait_until(lambda: succeeded(lambda: compute.gallery_image_versions.get(rg, gallery.name, "poll", "1.0.0")))
    batch.pool.create(account.resource_group, account.name, "poll-pool", {"properties": {
        "vmSize": request["vmSize"],
        "deploymentConfiguration": {"virtualMachineConfiguration": {
            "imageReference": {"id": f"{DEFAULT_GALLERY_ID}/images/poll/versions/1.0.0"}, "nodeAgentSkuId": request["nodeAgentSkuId"]}},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": target, "resizeTimeout": request["resizeTimeout"]}}}})
    while True:
        pool = batch.pool.get(account.resource_group, account.name, "poll-pool")
        if pool.allocation_state == "Steady":
            if (pool.current_dedicated_nodes or 0) >= target:
                break
            batch.pool.update(account.resource_group, account.name, "poll-pool", {"properties": {"scaleSettings": {"fixedScale": {
                "targetDedicatedNodes": target, "resizeTimeout": request["resizeTimeout"]}}}})
        emulator.advance(POLL.total_seconds())
    return {"readySeconds": emulator.clock.elapsed_seconds, "armCalls": sum(emulator.calls.values())}


CONCURRENT_REQUESTS = 30
CONCURRENT_SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class ConcurrentOutcome:
    seconds_to_last_pool: float
    bound_seconds: float
    # Pools never created: their requests were dropped by the pipeline.
    stranded: list[str]


def deliver_concurrently(seed: int, requests: int, event_delivery: dict | None = None, workers: int = 4) -> ConcurrentOutcome:
    """``requests`` small pool requests submitted at once, every delivery made by ``workers`` threads in shuffled order
    (as a scaled-out Functions host delivers them).

    Only events and scheduled looks drive the requests (no timer): a request the pipeline drops stays where it is.
    """
    from rehearsal.pump import ConcurrentPump
    from rehearsal.runner import REQUESTS_QUEUE, Rehearsal
    from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario, default_request
    from shared import bootstrap
    from shared.messaging import OutgoingMessage

    rehearsal = Rehearsal(Scenario.model_validate(
        {"seed": seed, "world": {"replyQueues": ["replies"], "eventDelivery": event_delivery or {}}, "steps": []}))
    pool_ids = [f"{DEFAULT_ACCOUNT_ID}/pools/pool-{index:03d}" for index in range(requests)]
    bootstrap.install(rehearsal.services)
    try:
        for index in range(requests):
            body = default_request(poolName=f"pool-{index:03d}", targetDedicatedNodes=4)
            body["requestId"] = f"concurrent-{index:03d}"
            rehearsal.emulator.servicebus.send(
                REQUESTS_QUEUE, OutgoingMessage(json.dumps(body), message_id=f"message-{index:03d}", reply_to="replies"))
        ConcurrentPump(rehearsal, workers=workers, seed=seed).run(
            until=lambda: all(rehearsal.emulator.store.find(pool_id) is not None for pool_id in pool_ids),
            limit=timedelta(hours=2))
    finally:
        bootstrap.install(None)
    stranded = [pool_id.rpartition("/")[2] for pool_id in pool_ids if rehearsal.emulator.store.find(pool_id) is None]
    return ConcurrentOutcome(rehearsal.emulator.clock.elapsed_seconds, time_to_pool_bound(rehearsal.emulator, replicas=1), stranded)


def concurrent_delivery() -> dict:
    """30 small requests submitted at once, every event delivered three times, shuffled, by four threads, over three
    seeds: requests whose pool was never created, and the last pool's time against the critical path of Azure's own
    operations (no timer: events and looks only)."""
    outcomes = [deliver_concurrently(seed, CONCURRENT_REQUESTS, {"copies": 3, "reorder": True, "maxDelaySeconds": 20})
                for seed in CONCURRENT_SEEDS]
    return {"requests": CONCURRENT_REQUESTS, "workers": 4, "eventCopies": 3, "runs": len(CONCURRENT_SEEDS),
            "requestsStranded": sum(len(outcome.stranded) for outcome in outcomes),
            "worstSecondsToLastPoolRatioToBound": round(max(o.seconds_to_last_pool / o.bound_seconds for o in outcomes), 4)}


def figures(concurrent: bool = True) -> dict:
    """Every pipeline figure, in one run. The headline figures are the default deployment's (nothing probed).

    ``concurrent=False`` leaves out ``concurrent`` (:func:`concurrent_delivery`, most of the time), for a caller
    that runs it apart and adds it under that key."""
    unprobed, probed, bound = to_ready(), to_ready(probed=True), stall_bound()
    no_stall = to_ready(allocation={"maxNodesPerResize": 1000})
    return {**to_pool_created(), **unprobed,
            "readySecondsRatioToStallBound": round(unprobed["readySeconds"] / bound["targetSeconds"], 4),
            "stallBound": bound,
            "noStall": {key: no_stall[key] for key in ("readySeconds", "stopResizes", "armReadsToReady")},
            "pollingBaseline": polling_baseline(),
            "unprobed": {key: unprobed[key] for key in ("readySeconds", "armReadsToReady", "armCallsToReady")},
            "probed": {key: probed[key] for key in ("readySeconds", "readyLagSeconds", "armReadsToReady", "armCallsToReady")},
            **({"concurrent": concurrent_delivery()} if concurrent else {})}
