"""The whole pipeline under every fault at once: duplicated, shuffled, concurrent deliveries,
throttling and outages, a long-running operation ending Failed, and a crash between two ARM calls.

Deterministic: the emulator, the event bus and the pump are seeded; only the
threads' interleaving varies, and the end state must not depend on it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from emulator.faults import FaultKind, FaultRule
from rehearsal.pump import ConcurrentPump
from rehearsal.runner import REQUESTS_QUEUE, Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario, default_request
from shared import bootstrap
from shared.messaging import OutgoingMessage
from shared.store.ledger import RequestRecord

REQUESTS = 20
OUTSIDE_SCOPE_ACCOUNT = DEFAULT_ACCOUNT_ID.replace("rg-batch", "rg-elsewhere")


def chaos_request(index: int) -> dict:
    request = default_request(poolName=f"chaos-pool-{index:02d}", targetDedicatedNodes=4)
    request["requestId"] = f"chaos-req-{index:02d}"
    return request


def rejected_request() -> dict:
    request = default_request(poolName="chaos-outside", batchAccountId=OUTSIDE_SCOPE_ACCOUNT)
    request["requestId"] = "chaos-outside"
    return request


class CrashOnceAfter:
    """A worker dying between two ARM calls: after the first call whose description starts with ``prefix``
    went through (the image PUT, before the stage write), the delivery raises, once.

    Wraps the Compute gateway: its managed-image PUT is the call that goes through first."""

    def __init__(self, prefix: str, compute) -> None:
        self.prefix = prefix
        self.crashed_after: str | None = None
        self._compute = compute

    def __getattr__(self, name):
        return getattr(self._compute, name)

    def create_image(self, image, body):
        result = self._compute.create_image(image, body)
        description = f"create image {image.name}"
        if self.crashed_after is None and description.startswith(self.prefix):
            self.crashed_after = description
            raise RuntimeError(f"worker crashed after {description} (injected)")
        return result

    @property
    def request_id(self) -> str:
        assert self.crashed_after is not None, "no crash happened"
        return self.crashed_after.removeprefix(self.prefix + "cip-")


class GatewayWith:
    """The rehearsal's gateway with one service replaced."""

    def __init__(self, gateway, **services) -> None:
        self._gateway, self._services = gateway, services

    def __getattr__(self, name):
        return self._services.get(name) or getattr(self._gateway, name)


@pytest.fixture(scope="module")
def chaos(request):
    rehearsal = Rehearsal(Scenario.model_validate({
        "seed": 7,
        "world": {"eventDelivery": {"copies": 3, "reorder": True, "maxDelaySeconds": 20}, "replyQueues": ["chaos-replies"]},
        "steps": [],
    }))
    emulator = rehearsal.emulator
    # Pool creations fail past the SDK's retries: the platform redelivers.
    emulator.faults.add(FaultRule("PUT Microsoft.Batch/batchAccounts/pools", FaultKind.UNAVAILABLE, limit=8, retry_after_seconds=1))
    # 10% of ARM calls answered 429 or 503 (the SDK retries some; the platform redelivers the rest).
    emulator.faults.add(FaultRule("*", FaultKind.THROTTLE, rate=0.05, retry_after_seconds=1))
    emulator.faults.add(FaultRule("*", FaultKind.UNAVAILABLE, rate=0.05, retry_after_seconds=1))
    # One long-running operation ends Failed.
    emulator.faults.add(FaultRule("PUT Microsoft.Compute/galleries/images/versions", FaultKind.LRO_FAILED, limit=1))
    gateway = rehearsal.services.gateway
    crash = CrashOnceAfter("create image ", gateway.compute)
    rehearsal.services = replace(rehearsal.services, gateway=GatewayWith(gateway, compute=crash))
    bootstrap.install(rehearsal.services)
    try:
        bodies = [chaos_request(i) for i in range(REQUESTS)] + [rejected_request()]
        for index, body in enumerate(bodies):
            emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json.dumps(body), message_id=f"chaos-msg-{index:02d}", reply_to="chaos-replies"))
        pump = ConcurrentPump(rehearsal, workers=6, seed=11)
        pump.run()
        # Then the guard's own timer, until nothing is pending and the world is quiet.
        rehearsal.run_until_idle()
    finally:
        bootstrap.install(None)
    return rehearsal, crash, pump


def stages(rehearsal: Rehearsal) -> dict[str, RequestRecord]:
    return {r.request_id: r for r in rehearsal.ledger.list_recent(1000)}


def resources_of(rehearsal: Rehearsal, resource_type: str, request_id: str) -> list:
    return [r for r in rehearsal.emulator.store.of_type(resource_type) if request_id in r.id]


class TestChaos:
    def test_the_faults_actually_happened(self, chaos):
        rehearsal, crash, pump = chaos
        assert crash.crashed_after is not None
        assert pump.deliveries > 3 * REQUESTS
        errors = [e.error for e in rehearsal.host.errors]
        assert any("injected" in e for e in errors)
        assert any("TransientAzureError" in e for e in errors)
        fired = rehearsal.emulator.faults.fired_by_kind
        calls = sum(rehearsal.emulator.calls.values())
        assert fired[FaultKind.THROTTLE] > 0 and fired[FaultKind.UNAVAILABLE] > 8
        assert 0.07 < (fired[FaultKind.THROTTLE] + fired[FaultKind.UNAVAILABLE] - 8) / calls < 0.13
        assert fired[FaultKind.LRO_FAILED] == 1

    def test_every_request_ends_ready_failed_or_rejected_with_a_reason(self, chaos):
        rehearsal, crash, _ = chaos
        records = stages(rehearsal)
        assert len(records) == REQUESTS + 1
        for record in records.values():
            assert record.stage.value in ("READY", "FAILED", "REJECTED"), (record.request_id, record.stage)
            if record.stage.value != "READY":
                assert record.reason
        assert records["chaos-outside"].stage.value == "REJECTED" and "pool.batchAccountId" in (records["chaos-outside"].reason or "")
        failed = [r for r in records.values() if r.stage.value == "FAILED"]
        assert len(failed) == 1 and "ended Failed" in (failed[0].reason or "")
        # The crashed delivery was redelivered and the request went on (unless it is the one whose version failed).
        assert records[crash.request_id].stage.value in ("READY", "FAILED")
        assert len(resources_of(rehearsal, "Microsoft.Compute/images", f"/cip-{crash.request_id}")) == 1
        assert rehearsal.emulator.servicebus.queue(REQUESTS_QUEUE).dead_letters == []

    def test_one_snapshot_per_disk_one_image_one_version_one_pool_per_successful_request(self, chaos):
        rehearsal, _, _ = chaos
        for record in stages(rehearsal).values():
            if record.stage.value != "READY":
                continue
            rid = record.request_id
            snapshots = sorted(r.name for r in resources_of(rehearsal, "Microsoft.Compute/snapshots", f"cip-{rid}-"))
            assert snapshots == [f"cip-{rid}-lun0", f"cip-{rid}-lun1", f"cip-{rid}-os"]
            assert len(resources_of(rehearsal, "Microsoft.Compute/images", f"/cip-{rid}")) == 1
            assert len(resources_of(rehearsal, "Microsoft.Compute/galleries/images/versions", f"/cip-{rid}/")) == 1
            pools = [p for p in rehearsal.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools")
                     if any(m["name"] == "cip-request" and m["value"] == rid for m in p.properties.get("metadata") or [])]
            assert len(pools) == 1
            assert pools[0].properties["currentDedicatedNodes"] == 4
        assert len(rehearsal.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools")) == REQUESTS - 1

    def test_no_condition_alerted_twice(self, chaos):
        rehearsal, _, _ = chaos
        alerts = Counter((a.get("type"), a.get("subject")) for a in rehearsal.emulator.topic.received)
        assert alerts and max(alerts.values()) == 1
        assert sum(1 for kind, _ in alerts if kind == "CustomImagePool.RequestFailed") == 1

    def test_no_pool_was_resized_while_resizing(self, chaos):
        rehearsal, _, _ = chaos
        refusals = rehearsal.emulator.refusals
        assert not any(code == "PoolBeingResized" for _, code in refusals), dict(refusals)


# -- variants: the ledger down for ten minutes; pools deleted through the Batch service API --------------------


def replies_by_request(rehearsal: Rehearsal, queue: str = "chaos-replies") -> Counter:
    return Counter(json.loads(m.message.body)["requestId"] for m in rehearsal.emulator.servicebus.queue(queue).sent
                   if json.loads(m.message.body)["stage"] in ("READY", "FAILED", "REJECTED"))


def chaos_variant(seed: int, world: dict, ledger=None) -> Rehearsal:
    return Rehearsal(Scenario.model_validate({"seed": seed, "steps": [], "world": {
        "eventDelivery": {"copies": 2, "reorder": True, "maxDelaySeconds": 20}, "replyQueues": ["chaos-replies"], **world}}), ledger=ledger)


def submit_all(rehearsal: Rehearsal, count: int) -> None:
    for index in range(count):
        body = chaos_request(index)
        rehearsal.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json.dumps(body), message_id=f"chaos-msg-{index:02d}", reply_to="chaos-replies"))


@pytest.fixture(scope="module")
def ledger_outage():
    from datetime import timedelta

    from shared.bootstrap import Services
    from shared.store.memory import InMemoryLedger
    from tests.support import OutageLedger

    inner = InMemoryLedger()
    rehearsal = chaos_variant(13, {}, ledger=inner)
    start = rehearsal.emulator.now()
    outage = OutageLedger(inner, lambda: start <= rehearsal.emulator.now() < start + timedelta(minutes=10))
    deps = rehearsal.services
    # The functions see the outage; the rehearsal's own bookkeeping reads the same ledger behind it.
    rehearsal.services = Services.on_clients(settings=deps.settings, clients=rehearsal.clients, ledger=outage, sender=deps.sender, now=deps.now)
    bootstrap.install(rehearsal.services)
    try:
        submit_all(rehearsal, 10)
        ConcurrentPump(rehearsal, workers=4, seed=5).run()
        rehearsal.run_until_idle()
    finally:
        bootstrap.install(None)
    return rehearsal


class TestLedgerDownForTenMinutes:
    def test_no_request_is_lost_and_each_gets_exactly_one_reply(self, ledger_outage):
        rehearsal = ledger_outage
        records = stages(rehearsal)
        assert sorted(records) == [f"chaos-req-{i:02d}" for i in range(10)]
        assert all(r.stage.value == "READY" for r in records.values())
        assert rehearsal.emulator.servicebus.queue(REQUESTS_QUEUE).dead_letters == []
        assert replies_by_request(rehearsal) == Counter({f"chaos-req-{i:02d}": 1 for i in range(10)})

    def test_the_outage_really_held_messages_back(self, ledger_outage):
        retried = [m for m in ledger_outage.emulator.servicebus.queue(REQUESTS_QUEUE).sent if "-retry" in m.message_id]
        assert len(retried) >= 10 and max(m.message.application_properties["cip-attempt"] for m in retried) >= 4


@pytest.fixture(scope="module")
def pools_deleted_by_batch_api():
    rehearsal = chaos_variant(17, {})
    bootstrap.install(rehearsal.services)
    try:
        for index in range(6):
            # 1,200 nodes: four resizes of 300, so the pools are still growing 30 minutes in, stalls stopped or not.
            body = default_request(poolName=f"chaos-pool-{index:02d}", targetDedicatedNodes=1200)
            body["requestId"] = f"chaos-req-{index:02d}"
            rehearsal.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(json.dumps(body), message_id=f"chaos-msg-{index:02d}", reply_to="chaos-replies"))
        # Deliveries from four threads at once, then time passes until the pools are growing.
        ConcurrentPump(rehearsal, workers=4, seed=3).drain()
        rehearsal.advance(timedelta_minutes(30))
        assert {r.stage.value for r in stages(rehearsal).values()} == {"SCALING"}
        # Half the pools are deleted through the Batch service API while growing: no ARM event says so.
        for index in range(0, 6, 2):
            rehearsal.emulator.store.remove(f"{DEFAULT_ACCOUNT_ID}/pools/chaos-pool-{index:02d}")
        rehearsal.run_until_idle()
    finally:
        bootstrap.install(None)
    return rehearsal


def timedelta_minutes(minutes: int):
    from datetime import timedelta

    return timedelta(minutes=minutes)


class TestPoolsDeletedThroughTheBatchServiceApi:
    def test_every_request_ends_and_each_team_hears_exactly_once(self, pools_deleted_by_batch_api):
        rehearsal = pools_deleted_by_batch_api
        records = stages(rehearsal)
        assert {rid: r.stage.value for rid, r in records.items()} == {
            f"chaos-req-{i:02d}": "FAILED" if i % 2 == 0 else "READY" for i in range(6)}
        for index in range(0, 6, 2):
            assert "was deleted before it reached its target" in (records[f"chaos-req-{index:02d}"].reason or "")
        assert replies_by_request(rehearsal) == Counter({f"chaos-req-{i:02d}": 1 for i in range(6)})
