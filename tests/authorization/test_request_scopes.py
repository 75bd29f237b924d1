"""A request may make the function act only inside the allowed scopes, whatever the ids look like.

Allowed (the rehearsal's default world): the resource group ``rg-imaging`` and
the Batch account ``rg-batch/.../teambatch``. Every request goes through the
registered ``pool_requests`` function, as the Functions host would call it.
"""

from __future__ import annotations

import json

import pytest

from rehearsal.host import service_bus_message
from rehearsal.runner import Rehearsal
from rehearsal.scenario import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_GALLERY_ID,
    DEFAULT_SUBSCRIPTION,
    DEFAULT_VM_ID,
    Scenario,
    default_request,
)
from shared import bootstrap

OTHER_SUBSCRIPTION = "0b7e4c1a-3f2d-4a5b-8c9d-1e2f3a4b5c6d"
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def with_field(field: str, value: str) -> dict:
    request = default_request()
    section, key = field.split(".")
    request[section][key] = value
    return request


# (field, value, why) — every one must be REJECTED, naming the field, with no ARM write.
HOSTILE = [
    ("source.virtualMachineId", DEFAULT_VM_ID.replace(DEFAULT_SUBSCRIPTION, OTHER_SUBSCRIPTION), "another subscription"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("rg-imaging", "rg-payroll"), "another resource group"),
    ("pool.batchAccountId", DEFAULT_ACCOUNT_ID.replace("teambatch", "otherbatch"), "another Batch account"),
    ("pool.batchAccountId", DEFAULT_ACCOUNT_ID.replace(DEFAULT_SUBSCRIPTION, OTHER_SUBSCRIPTION), "account in another subscription"),
    ("image.galleryId", DEFAULT_GALLERY_ID.replace("rg-imaging", "rg-imaging-prod"), "a resource group sharing the prefix"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("/virtualMachines/", "//virtualMachines/"), "extra slash"),
    ("source.virtualMachineId", "/" + DEFAULT_VM_ID, "leading double slash"),
    ("source.virtualMachineId", DEFAULT_VM_ID + "/", "trailing slash"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("rg-imaging", "rg-imaging/../rg-payroll"), "dot-dot"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("/builder", "/..") , "dot-dot name"),
    ("pool.batchAccountId", DEFAULT_ACCOUNT_ID + "/../../../../rg-payroll/providers/Microsoft.Batch/batchAccounts/x", "dot-dot escape"),
    ("source.virtualMachineId",
     f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-payroll/providers/Microsoft.Compute/virtualMachines/x"
     f"/providers/Microsoft.Compute/virtualMachines/builder", "provider smuggled after a foreign resource"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("/builder", "/builder/providers/Microsoft.Compute/virtualMachines/y"), "provider smuggled into the name"),
    ("source.virtualMachineId", DEFAULT_VM_ID + "/extensions/evil", "trailing segments"),
    ("pool.batchAccountId", DEFAULT_ACCOUNT_ID + "/pools/other", "a pool, not an account"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("/virtualMachines/builder", "%2FvirtualMachines%2Fbuilder"), "url-encoded slashes"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("rg-imaging", "rg-imaging%2F..%2Frg-payroll"), "url-encoded dot-dot"),
    ("source.virtualMachineId", " " + DEFAULT_VM_ID, "leading whitespace"),
    ("source.virtualMachineId", DEFAULT_VM_ID + " ", "trailing whitespace"),
    ("source.virtualMachineId", DEFAULT_VM_ID + "\n", "trailing newline"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("builder", "build er"), "whitespace in the name"),
    ("source.virtualMachineId", DEFAULT_VM_ID + "?api-version=2024-07-01", "query string"),
    ("source.virtualMachineId", DEFAULT_VM_ID + "#fragment", "fragment"),
    ("source.virtualMachineId", "https://management.azure.com" + DEFAULT_VM_ID, "absolute URL"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("virtualMachines", "disks"), "wrong resource type"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("Microsoft.Compute", "Microsoft.Evil"), "wrong provider"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("/subscriptions/", "/Subscriptions//"), "empty segment"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("builder", "builder\u0000"), "NUL in the name"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("builder", "bu\u0131lder"), "dotless i (not a case variant)"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("rg-imaging", "rg-\uff49maging"), "full-width letter"),
    ("source.virtualMachineId", DEFAULT_VM_ID.replace("/", "\\"), "backslashes"),
    ("source.virtualMachineId", "", "empty"),
    ("source.virtualMachineId", f"/subscriptions/{DEFAULT_SUBSCRIPTION}", "a subscription"),
]


@pytest.fixture
def world():
    rehearsal = Rehearsal(Scenario.model_validate({"steps": []}))
    bootstrap.install(rehearsal.services)
    try:
        yield rehearsal
    finally:
        bootstrap.install(None)


def submit(rehearsal: Rehearsal, body: dict, message_id: str = "auth-1"):
    rehearsal.host.call("pool_requests", service_bus_message(
        body=json.dumps(body).encode(), message_id=message_id, reply_to=None, delivery_count=1))
    return rehearsal.ledger.get(body.get("requestId") or message_id)


def arm_writes(rehearsal: Rehearsal) -> dict[str, int]:
    return {op: n for op, n in rehearsal.emulator.calls.items() if op.split(" ", 1)[0] in WRITES}


class TestHostileResourceIds:
    @pytest.mark.parametrize("field, value, why", HOSTILE, ids=[why for _, _, why in HOSTILE])
    def test_is_rejected_naming_the_field_without_any_arm_call(self, world, field, value, why):
        record = submit(world, with_field(field, value))
        assert record.stage.value == "REJECTED", why
        assert record.reason.startswith(field + ":"), record.reason
        assert sum(world.emulator.calls.values()) == 0, dict(world.emulator.calls)


class TestCaseVariants:
    """ARM ids are case-insensitive: a case variant of an allowed id names the same resource."""

    @pytest.mark.parametrize("transform", [str.upper, str.lower, str.swapcase], ids=["upper", "lower", "swapcase"])
    def test_a_case_variant_of_the_batch_account_and_gallery_is_accepted(self, world, transform):
        request = default_request()
        request["pool"]["batchAccountId"] = transform(DEFAULT_ACCOUNT_ID).replace(transform(DEFAULT_SUBSCRIPTION), DEFAULT_SUBSCRIPTION)
        request["image"]["galleryId"] = DEFAULT_GALLERY_ID.replace("resourceGroups/rg-imaging", "RESOURCEGROUPS/RG-IMAGING")
        record = submit(world, request)
        assert record.stage.value not in ("REJECTED", "FAILED"), record.reason
        assert world.emulator.calls["PUT Microsoft.Compute/snapshots"] == 3

    def test_a_case_variant_of_the_source_vm_runs_to_ready(self, world):
        request = default_request()
        request["source"]["virtualMachineId"] = DEFAULT_VM_ID.replace("/providers/Microsoft.Compute/virtualMachines/builder",
                                                                      "/PROVIDERS/microsoft.compute/VIRTUALMACHINES/Builder")
        submit(world, request)
        world.run_until_idle()
        record = world.ledger.get("team-a-render-001")
        assert record.stage.value == "READY", record.reason
        assert len(world.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools")) == 1
