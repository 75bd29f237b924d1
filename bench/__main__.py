"""``python -m bench``: the pool guard's precision and sweep cost, on the emulator.

- Time to target of the 2,500-node example, with scheduled re-checks and with
  the timer alone, as a ratio to the allocation model's lower bound (the sum of
  the pool's resize durations: nothing can be faster than back-to-back resizes).
- One sweep over 2,000 pools in 20 Batch accounts: ARM calls by operation, wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "guard-2500-nodes.json"
SUBSCRIPTION = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
ACCOUNTS, POOLS_PER_ACCOUNT = 20, 100


def time_to_target_ratio(deliver_pool_checks: bool) -> float:
    """(last resize end - first resize start) / sum of resize durations, for the example's pool."""
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import load_scenario

    rehearsal = Rehearsal(load_scenario(EXAMPLE), deliver_pool_checks=deliver_pool_checks).run()
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
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import Scenario
    from shared.pool_guard import PoolGuard

    accounts = [f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-batch{i:02d}/providers/Microsoft.Batch/batchAccounts/acct{i:02d}"
                for i in range(ACCOUNTS)]
    rehearsal = Rehearsal(Scenario.model_validate({
        "world": {"batchAccounts": [{"id": a, "dedicatedCoreQuota": 10_000_000} for a in accounts], "guardedBatchAccounts": accounts,
                  "allowedScopes": [f"/subscriptions/{SUBSCRIPTION}"]},
        "steps": [],
    }))
    emulator = rehearsal.emulator
    for i, account in enumerate(accounts):
        image = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-imaging/providers/Microsoft.Compute/images/img{i:02d}"
        emulator.store.put(ArmResource(image, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {}}))
        for p in range(POOLS_PER_ACCOUNT):
            body = {"properties": {
                "vmSize": "Standard_D4ds_v5",
                "deploymentConfiguration": {"virtualMachineConfiguration": {"imageReference": {"id": image}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
                "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 400, "resizeTimeout": "PT25M"}},
            }}
            emulator.batch.create_pool(account, f"pool{p:03d}", body, url=f"https://management.azure.com{account}/pools/pool{p:03d}")
    emulator.advance(26 * 60)  # every pool: 300 nodes, then AllocationTimedout
    emulator.calls.clear()
    started = time.perf_counter()
    report = PoolGuard(rehearsal.dependencies).sweep()
    wall = time.perf_counter() - started
    if len(report.resized) != ACCOUNTS * POOLS_PER_ACCOUNT:
        raise RuntimeError(f"expected every pool resized, got {len(report.resized)}")
    return dict(sorted(emulator.calls.items())), round(wall, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    calls, wall = sweep_cost()
    results = {"guard": {
        "timeToTargetRatioToBound": time_to_target_ratio(True),
        "timerOnlyRatioToBound": time_to_target_ratio(False),
        "sweepArmCalls": calls,
        "sweepWallSeconds": wall,
    }}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        guard = results["guard"]
        print(f"time to target / lower bound: {guard['timeToTargetRatioToBound']} with scheduled checks, "
              f"{guard['timerOnlyRatioToBound']} timer only (target: within 1.05)")
        print(f"sweep of {ACCOUNTS * POOLS_PER_ACCOUNT} pools in {ACCOUNTS} accounts: {wall} s, ARM calls {calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
