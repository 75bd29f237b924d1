"""An adoption batch reads what each image was made from, and asks Resource Graph once whether the batch's snapshots
exist (not one GET each): through the real clients on the emulator, counted by the emulator."""

from __future__ import annotations

from bench.fleet import lineage_of, put_lineage
from rehearsal.runner import Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario
from shared.messaging import AdoptedPool

SUB = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
IMAGING = f"/subscriptions/{SUB}/resourceGroups/rg-imaging"
SNAPSHOT_GETS, GRAPH = "GET Microsoft.Compute/snapshots", "POST Microsoft.ResourceGraph/resources"


def fleet(count: int):
    """GIVEN ``count`` unrecorded pools in a guarded account, each from its own five-resource lineage."""
    rehearsal = Rehearsal(Scenario.model_validate({"world": {"guardedBatchAccounts": [DEFAULT_ACCOUNT_ID]}, "steps": []}))
    emulator = rehearsal.emulator
    pools, snapshots = [], {}
    for n in range(count):
        version = put_lineage(emulator, IMAGING, n)
        snapshots[n] = list(lineage_of(IMAGING, n)[2:])
        emulator.batch.create_pool(DEFAULT_ACCOUNT_ID, f"p{n}", {"properties": {
            "vmSize": "Standard_D4ds_v5",
            "deploymentConfiguration": {"virtualMachineConfiguration": {"imageReference": {"id": version}, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
            "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 2}}}}, url=f"https://management.azure.com{DEFAULT_ACCOUNT_ID}/pools/p{n}")
        pools.append(AdoptedPool(f"{DEFAULT_ACCOUNT_ID}/pools/p{n}", version))
    emulator.calls.clear()
    return rehearsal, pools, snapshots


def test_given_a_batch_when_adopted_then_its_snapshots_are_confirmed_by_one_resource_graph_query_and_every_lineage_is_locked():
    rehearsal, pools, _ = fleet(4)

    report = rehearsal.services.guard().adopt(pools)

    calls = rehearsal.emulator.calls
    assert len(report.adopted_images) == 4 and calls["PUT Microsoft.Authorization/locks"] == 4 * 5
    assert calls[GRAPH] == 1 and calls.get(SNAPSHOT_GETS, 0) == 0
    assert calls["GET Microsoft.Compute/galleries/images/versions"] == calls["GET Microsoft.Compute/images"] == 4


def test_given_a_snapshot_deleted_before_its_batch_when_adopted_then_ops_hear_it_and_that_pool_is_not_locked():
    rehearsal, pools, snapshots = fleet(3)
    rehearsal.emulator.store.remove(snapshots[1][2])

    report = rehearsal.services.guard().adopt(pools)

    assert report.adopted_images == [pools[0].pool_id, pools[2].pool_id]
    # Resource Graph did not return it: it was read once before it counted as gone
    assert rehearsal.emulator.calls[SNAPSHOT_GETS] == 1
    [alert] = rehearsal.emulator.topic.received
    assert alert["type"] == "CustomImagePool.InUseImageDeleted" and alert["subject"] == snapshots[1][2]
    assert [p["id"] for p in alert["data"]["pools"]] == [pools[1].pool_id]


def test_given_resource_graph_failing_when_a_batch_is_adopted_then_each_snapshot_is_read_instead(monkeypatch):
    rehearsal, pools, _ = fleet(2)
    gateway = rehearsal.services.gateway

    def unavailable(resources):
        raise RuntimeError("Resource Graph is unavailable")

    monkeypatch.setattr(gateway.graph, "present", unavailable)
    report = rehearsal.services.guard().adopt(pools)

    assert len(report.adopted_images) == 2 and rehearsal.emulator.calls[SNAPSHOT_GETS] == 2 * 3
