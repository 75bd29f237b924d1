"""``python -m bench``: cold start, event routing, pipeline overhead and the pool guard, on the emulator.

- Cold start: import time of ``function_app`` over that of the Azure SDK modules
  it would otherwise import eagerly, as alternated A/B pairs of fresh interpreters, with what a
  first pool request then imports. It runs first and alone; the other sections run in two worker
  processes (``--workers``), each section in one process.
- Event routing: irrelevant ARM events handled per second by the registered
  ``resource_events`` function (prebuilt ``func.EventGridEvent`` objects), with no ARM call.
- Pipeline overhead: ARM calls and wall time from submit to pool created, for a
  VM with two data disks on the zero-latency emulator; and (:mod:`bench.pipeline`) ARM calls and
  virtual time to pool created and to READY, against a 30 s polling loop.

- Time to target of the 2,500-node example, with scheduled re-checks and with
  the timer alone, as a ratio to the allocation model's lower bound (the sum of
  the pool's resize durations: nothing can be faster than back-to-back resizes).
- One sweep over 2,000 pools in 20 Batch accounts: ARM calls by operation, wall time.
- Fleet scale (:mod:`bench.fleet`): first and steady sweeps over 2,000 pools each with its own
  lineage; 10,000 pools in 100 accounts on a default deployment (first sweep, paced adoption,
  steady sweep, audit, the audit's daily reconciliation); 2,000 pools protected on one shared lineage.
  ``--play-adoption`` plays that fleet's adoption to its end (every batch delivered to the registered function at
  its time, the timer's sweeps in between) instead of fast-forwarding it after its first sweep period.
- The command line: wall seconds for ``python -m cli submit`` to fail on a namespace that does not
  resolve (its reach check, before azure-servicebus spends about 11 s on retries).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import fleet, pipeline

if TYPE_CHECKING:
    from rehearsal.runner import Rehearsal

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "guard-2500-nodes.json"
# Microsoft's published Event Grid samples, where the tests keep them (their sources are listed there).
PUBLISHED_EVENTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "published" / "eventgrid"
SUBSCRIPTION, ACCOUNTS, POOLS_PER_ACCOUNT = fleet.SUBSCRIPTION, fleet.ACCOUNTS, fleet.POOLS_PER_ACCOUNT


def time_to_target_ratio(deliver_pool_checks: bool) -> float:
    """:func:`ratio_to_bound` of the example (examples/guard-2500-nodes.json), with or without scheduled checks."""
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import load_scenario

    return ratio_to_bound(Rehearsal(load_scenario(EXAMPLE), deliver_pool_checks=deliver_pool_checks).run())


def ratio_to_bound(rehearsal: Rehearsal) -> float:
    """(last resize end - first resize start) / sum of resize durations, for a finished rehearsal's one pool."""
    history = rehearsal.emulator.batch.resize_history
    [pool] = rehearsal.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools")
    if pool.properties["currentDedicatedNodes"] < pool.properties["scaleSettings"]["fixedScale"]["targetDedicatedNodes"]:
        raise RuntimeError("the pool never reached its target")
    bound = sum((end - start).total_seconds() for _, start, end in history)
    elapsed = (history[-1][2] - history[0][1]).total_seconds()
    return round(elapsed / bound, 4)


def sweep_cost() -> tuple[dict[str, int], float]:
    """ARM calls by operation and wall seconds of one sweep over 2,000 timed-out pools in 20 accounts."""
    from emulator.store import ArmResource

    rehearsal, accounts = fleet.guarded_accounts(10_000_000)
    emulator = rehearsal.emulator
    for i, account in enumerate(accounts):
        image = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-imaging/providers/Microsoft.Compute/images/img{i:02d}"
        emulator.store.put(ArmResource(image, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {}}))
        for p in range(POOLS_PER_ACCOUNT):
            fleet.put_pool(emulator, account, f"pool{p:03d}", image, 400)
    return fleet.timed_sweep(rehearsal, 26 * 60)  # every pool: 300 nodes, then AllocationTimedout


EAGER_SDK_MODULES = (
    "azure.mgmt.compute", "azure.mgmt.batch", "azure.mgmt.resource.locks", "azure.mgmt.resourcegraph", "azure.eventgrid",
    "azure.servicebus", "azure.identity", "azure.data.tables", "pydantic",
)
# What a pool request's first invocation imports after the host indexed the app: the handlers' deferred imports
# (the composition root and every capability) and the SDK modules of the clients the request uses first (its
# credential, the ledger's table, the VM read, the message sender).
FIRST_REQUEST_MODULES = ("shared.bootstrap", "azure.identity", "azure.data.tables", "azure.mgmt.compute", "azure.servicebus")
_TIMED_IMPORTS = ("import time\n"
                  "for modules in {groups!r}:\n"
                  "    t = time.perf_counter()\n"
                  "    for module in modules:\n"
                  "        __import__(module)\n"
                  "    print(time.perf_counter() - t)\n")


def _timed_imports(*groups: tuple[str, ...]) -> list[float]:
    """Wall seconds of importing each group of modules in turn, in one fresh interpreter."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", _TIMED_IMPORTS.format(groups=groups)], cwd=root, capture_output=True, text=True, check=True)
    return [float(line) for line in out.stdout.split()]


def cold_start(pairs: int = 4) -> dict:
    """The app's import against the eager SDK imports, as A/B pairs run alternately (A first, then B first, ...), each in
    a fresh interpreter; a first pair warms the bytecode cache and is dropped. The A run also times the first pool
    request's deferred imports, right after the app's: what the first invocation pays."""
    import statistics

    app, first, sdk = [], [], []
    for index in range(pairs + 1):
        if index % 2 == 0:
            a, b = _timed_imports(("function_app",), FIRST_REQUEST_MODULES), _timed_imports(EAGER_SDK_MODULES)
        else:
            b = _timed_imports(EAGER_SDK_MODULES)
            a = _timed_imports(("function_app",), FIRST_REQUEST_MODULES)
        if index:
            app.append(a[0])
            first.append(a[1])
            sdk.append(b[0])
    ratios = [x / y for x, y in zip(app, sdk, strict=True)]
    with_first = [(x + f) / y for x, f, y in zip(app, first, sdk, strict=True)]
    return {"functionAppImportSeconds": round(statistics.median(app), 4), "eagerSdkImportSeconds": round(statistics.median(sdk), 4),
            "ratio": round(statistics.median(ratios), 3), "pairs": pairs, "ratios": [round(r, 3) for r in ratios],
            "firstInvocationImportSeconds": round(statistics.median(first), 4),
            "toFirstRequestRatio": round(statistics.median(with_first), 3)}


def irrelevant_event_bodies() -> list[dict]:
    """ARM events the pipeline does not care about: other resource types, our types but not our names, validation."""
    import copy

    from rehearsal.scenario import DEFAULT_RG

    def published(name: str) -> Any:
        return json.loads((PUBLISHED_EVENTS / f"eventgrid-{name}.egschema.json").read_text())

    write, delete, [validation] = published("resource-write-success"), published("resource-delete-success"), published("subscription-validation-event")

    def about(sample: dict, resource_id: str, operation: str, event_type: str | None = None) -> dict:
        body = copy.deepcopy(sample)
        body["subject"] = body["data"]["resourceUri"] = resource_id
        body["data"]["operationName"] = operation
        if event_type:
            body["eventType"] = event_type
        return body

    compute = f"{DEFAULT_RG}/providers/Microsoft.Compute"
    return [
        write, delete, validation,
        about(write, f"{compute}/snapshots/nightly-backup", "Microsoft.Compute/snapshots/write"),
        about(write, f"{compute}/images/someone-elses", "Microsoft.Compute/images/write"),
        about(delete, f"{compute}/disks/scratch", "Microsoft.Compute/disks/delete"),
        about(write, f"{compute}/virtualMachines/builder", "Microsoft.Compute/virtualMachines/start/action",
              "Microsoft.Resources.ResourceActionSuccess"),
        about(write, f"{DEFAULT_RG}/providers/Microsoft.Network/networkInterfaces/nic1", "Microsoft.Network/networkInterfaces/write"),
    ]


def event_routing(count: int = 10_000) -> dict:
    """Irrelevant events per second through the registered function, and the ARM calls they cost (must be 0)."""
    from rehearsal.host import event_grid_event
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import Scenario
    from shared import bootstrap

    rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
    bodies = irrelevant_event_bodies()
    events = [event_grid_event(bodies[i % len(bodies)]) for i in range(count)]
    bootstrap.install(rehearsal.services)
    try:
        function = rehearsal.host.indexed("resource_events")
        function(events[0])  # first call: the lazy imports
        started = time.perf_counter()
        for event in events:
            function(event)
        wall = time.perf_counter() - started
    finally:
        bootstrap.install(None)
    return {"eventsPerSecond": round(count / wall), "armCalls": sum(rehearsal.emulator.calls.values())}


def pipeline_overhead() -> dict:
    """ARM calls (by operation) and wall seconds from submit to pool created, one request, deliveries one at a time.

    A first request in a throwaway world loads what the functions import on their first invocation
    (and compiles it, where bytecode is not cached), so the figure is the pipeline's own overhead.
    """
    _submit_until_pool_created()
    return _submit_until_pool_created()


def _submit_until_pool_created() -> dict:
    import json as json_module

    from rehearsal.pump import ConcurrentPump
    from rehearsal.runner import REQUESTS_QUEUE, Rehearsal
    from rehearsal.scenario import Scenario, default_request
    from shared import bootstrap
    from shared.messaging import OutgoingMessage

    rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
    request = default_request()
    bootstrap.install(rehearsal.services)
    try:
        pump = ConcurrentPump(rehearsal, workers=1)
        started = time.perf_counter()
        rehearsal.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json_module.dumps(request), message_id="bench-1"))
        done = pump.run(until=lambda: rehearsal.ledger.get(request["requestId"]).stage.value in ("SCALING", "READY"))
        wall = time.perf_counter() - started
    finally:
        bootstrap.install(None)
    if not done:
        raise RuntimeError("the request never reached its pool")
    calls = dict(sorted(rehearsal.emulator.calls.items()))
    return {"armCalls": sum(calls.values()), "armCallsByOperation": calls, "wallSeconds": round(wall, 3),
            "virtualSeconds": rehearsal.emulator.clock.elapsed_seconds}


def unreachable_namespace_seconds() -> float:
    """Wall seconds for ``python -m cli submit`` in a fresh interpreter to fail on a Service Bus namespace that does not resolve."""
    import os
    import subprocess
    import tempfile

    from rehearsal.scenario import default_request

    with tempfile.TemporaryDirectory() as folder:
        request = Path(folder) / "request.json"
        request.write_text(json.dumps(default_request()))
        env = {**os.environ, "SERVICEBUS__fullyQualifiedNamespace": "no-such-namespace.invalid", "POOL_REQUESTS_QUEUE": "q"}
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "cli", "submit", str(request)], cwd=EXAMPLE.parent.parent, capture_output=True,
                                   text=True, env=env)
        seconds = time.perf_counter() - started
    if "cannot reach the Service Bus namespace" not in completed.stderr:
        raise RuntimeError(f"the reach check did not fail the submit: {completed.stderr[-2000:]}")
    return round(seconds, 2)


def _time_to_target_with_checks() -> float:
    return time_to_target_ratio(True)


def _time_to_target_timer_only() -> float:
    return time_to_target_ratio(False)


# The sections after the cold start, longest first: two worker processes take them in turn (one per core), each
# worker the next section as soon as it is free, so the short ones at the end even out the two workers. The
# pipeline's concurrent deliveries (most of its time) are a section of their own for that reason.
SECTIONS: dict[str, Callable[[], Any]] = {
    "fleet10000": fleet.fleet10000,
    "distinctImages2000": fleet.distinct_images,
    "sweep2000": sweep_cost,
    "pipelineConcurrent": pipeline.concurrent_delivery,
    "pipeline": partial(pipeline.figures, concurrent=False),
    "eventRouting": event_routing,
    "sharedImage2000": fleet.shared_image,
    "timeToTarget": _time_to_target_with_checks,
    "timerOnly": _time_to_target_timer_only,
    "cli": unreachable_namespace_seconds,
    "pipelineOverhead": pipeline_overhead,
}


def _run_section(name: str) -> tuple[str, Any, float]:
    logging.basicConfig(level=logging.CRITICAL)
    started = time.perf_counter()
    result = SECTIONS[name]()
    return name, result, round(time.perf_counter() - started, 2)


def run_sections(workers: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Every section's result and wall seconds, ``workers`` processes at a time (each section in one process)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    results, sections = {}, {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as executor:
        for name, result, seconds in executor.map(_run_section, SECTIONS):
            results[name], sections[name] = result, seconds
    return results, sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes running sections at once (default: 2)")
    parser.add_argument("--play-adoption", action="store_true",
                        help="play the 10,000-pool fleet's adoption to its end (every batch and sweep) instead of fast-forwarding it")
    args = parser.parse_args(argv)
    if args.play_adoption:
        SECTIONS["fleet10000"] = partial(fleet.fleet10000, play_adoption=True)
    logging.basicConfig(level=logging.CRITICAL)
    began = time.perf_counter()
    start = cold_start()  # first and alone: fresh interpreters, timed while nothing else runs
    cold_seconds = round(time.perf_counter() - began, 2)
    done, sections = run_sections(max(1, args.workers))
    sections = {"coldStart": cold_seconds, **sections}
    calls, wall = done["sweep2000"]
    distinct, shared, routing = done["distinctImages2000"], done["sharedImage2000"], done["eventRouting"]
    results = {
        "coldStartImportRatio": start["ratio"],
        "coldStart": start,
        "irrelevantEventsPerSecond": routing["eventsPerSecond"],
        "irrelevantEventArmCalls": routing["armCalls"],
        "pipeline": {**done["pipelineOverhead"], **done["pipeline"], "concurrent": done["pipelineConcurrent"]},
        "guard": {
            "timeToTargetRatioToBound": done["timeToTarget"],
            "timerOnlyRatioToBound": done["timerOnly"],
            "sweepArmCalls": calls,
            "sweepWallSeconds": wall,
            "distinctImages2000": distinct,
            "fleet10000": done["fleet10000"],
        },
        "protection": {"sharedImage2000": shared},
        "cli": {"unreachableNamespaceSeconds": done["cli"]},
        "bench": {"wallSeconds": round(time.perf_counter() - began, 1), "workers": max(1, args.workers), "sectionWallSeconds": sections,
                  "cpus": os.cpu_count(), "loadAverage": [round(x, 2) for x in os.getloadavg()]},
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        guard = results["guard"]
        figures = results["pipeline"]
        print(f"cold start: function_app {start['functionAppImportSeconds']} s / eager SDK imports "
              f"{start['eagerSdkImportSeconds']} s = {start['ratio']} over {start['pairs']} alternated pairs (target <= 0.35); "
              f"first request's deferred imports {start['firstInvocationImportSeconds']} s, app + first request / eager "
              f"{start['toFirstRequestRatio']}")
        print(f"irrelevant events: {routing['eventsPerSecond']}/s, {routing['armCalls']} ARM calls (target >= 20000/s, 0 calls)")
        print(f"pipeline, submit to pool created: {figures['armCalls']} ARM calls, {figures['wallSeconds']} s")
        print(f"pipeline: {figures['armCallsToPoolCreated']} ARM calls to pool created (target <= 24), "
              f"{figures['timeToPoolCreatedRatioToBound']} of the critical path (target <= 1.005); READY at {figures['readySeconds']} s, "
              f"{figures['readySecondsRatioToStallBound']} of the stop-and-resize bound (target <= 1.15), "
              f"{figures['readyLagSeconds']} s after the pool reached its target (target <= 60), {figures['armReadsToReady']} ARM reads "
              f"(target <= 40); no stall: READY at {figures['noStall']['readySeconds']} s, {figures['noStall']['stopResizes']} stops; "
              f"a 30 s polling loop: READY at {figures['pollingBaseline']['readySeconds']} s with "
              f"{figures['pollingBaseline']['armCalls']} ARM calls; probed: {figures['probed']['armReadsToReady']} ARM reads")
        print(f"time to target / lower bound: {guard['timeToTargetRatioToBound']} with scheduled checks, "
              f"{guard['timerOnlyRatioToBound']} timer only (target: within 1.05)")
        print(f"sweep of {ACCOUNTS * POOLS_PER_ACCOUNT} pools in {ACCOUNTS} accounts: {wall} s, ARM calls {calls}")
        print(f"2,000 pools, each its own lineage: first sweep {distinct['firstSweep']}, steady sweep {distinct['steadySweep']} "
              "(targets: steady reads <= 200, Resource Graph queries <= 20, writes = resizes; first lock writes <= one per resource); "
              f"protection audit when unprobed {distinct['protectionAudit']}")
        big = guard["fleet10000"]
        print(f"10,000 pools in 100 accounts: first sweep {big['firstSweep']}; steady sweep {big['steadySweep']}; audit {big['audit']} "
              f"(target: steady reads + audit reads <= 750); the daily reconciliation {big['reconciliation']}")
        print(f"2,000 pools on one lineage: {shared['lockWrites']} lock writes (target <= 10), largest record {shared['maxRecordBytes']} bytes "
              f"(target <= 32768), protect steps {shared['protectSecondsTotal']} s in all")
        print(f"python -m cli submit to an unresolvable namespace: fails in {results['cli']['unreachableNamespaceSeconds']} s (target <= 5)")
        print(f"bench: {results['bench']['wallSeconds']} s in all (target <= 120); by section {sections}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
