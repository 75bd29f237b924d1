"""The protection audit's cost bounded by what changed: after a subscription's first look, removed locks are found from
the lock deletes the Activity Log lists (each confirmed with one read of the lock), and the subscription's locks are
listed in full only every RECONCILE_EVERY, the backstop for an entry the Activity Log never lists."""

from __future__ import annotations

from emulator.store import ArmResource
from shared.eventfacts.findings import EventFindings
from shared.protection.audit import LOCKS_KIND, RECONCILE_EVERY, UNREADABLE_KIND
from shared.protection.locks import ImageUse, protect
from tests.protection.test_fleet_protection import POOLS, SUB
from tests.protection.test_protection_audit import ACTIVITY, APP_TOKEN, OTHER_SUB, audit, audit_calls, protected_world

UNPROBED = EventFindings()
MINUTES = 60


def lock_of(resource_id: str) -> str:
    return f"{resource_id}/providers/Microsoft.Authorization/locks/cip-protect"


def looked_once(images: int):
    """GIVEN a protected world whose audit has had its first look (the full listing), then a look half an hour later (its
    window, reaching back ACTIVITY_LOG_LAG, still held the lock writes of the setup), five minutes ago."""
    rehearsal, used = protected_world(images=images, pools_per_image=2)
    first = audit(rehearsal.services, UNPROBED)
    assert first.lock_lists >= 1 and first.reconciled == [SUB]
    rehearsal.emulator.advance(30 * MINUTES)
    assert audit(rehearsal.services, UNPROBED).lock_lists == 0
    rehearsal.emulator.advance(5 * MINUTES)
    return rehearsal, used


def test_given_nothing_changed_when_looked_again_then_only_the_activity_log_is_read_however_many_locks():
    small, _ = looked_once(images=3)
    large, _ = looked_once(images=30)  # 60 locks: two pages to list
    assert audit_calls(small) == audit_calls(large) == {ACTIVITY: 1}


def test_given_a_lock_removed_after_the_first_look_when_the_activity_log_lists_it_then_one_read_confirms_it_and_it_is_alerted_once():
    rehearsal, used = looked_once(images=30)
    image = used[0]
    rehearsal.delete_as_operator(lock_of(image))
    rehearsal.emulator.advance(5 * MINUTES)  # the Activity Log lists it a few minutes later

    found = audit(rehearsal.services, UNPROBED)
    assert found.protection_removed == [image]
    assert (found.lock_lists, found.lock_reads, found.activity_reads) == (0, 1, 1)
    rehearsal.emulator.advance(5 * MINUTES)
    again = audit(rehearsal.services, UNPROBED)  # the same entry is read again (the windows overlap): no second alert
    assert again.protection_removed == [] and again.lock_lists == 0
    removed = [a for a in rehearsal.emulator.topic.received if a["type"] == "CustomImagePool.ProtectionRemoved"]
    assert [a["data"]["lockId"] for a in removed] == [lock_of(image)]


def test_given_a_lock_removed_and_placed_again_when_looked_then_its_read_finds_it_and_nothing_is_alerted():
    rehearsal, used = looked_once(images=2)
    image = used[0]
    rehearsal.delete_as_operator(lock_of(image))
    deps = rehearsal.services
    protect(deps.records, deps.gateway.locks, ImageUse(f"{POOLS}/p000-009", image, (used[1],), "req-9"))  # names a new pool: written
    assert rehearsal.emulator.store.find(lock_of(image)) is not None
    rehearsal.emulator.advance(5 * MINUTES)

    found = audit(deps, UNPROBED)
    assert found.lock_reads == 1 and found.protection_removed == [] and rehearsal.emulator.topic.received == []


def test_given_a_lock_gone_with_no_activity_log_entry_when_a_day_passes_then_the_reconciliation_finds_it():
    rehearsal, used = looked_once(images=3)
    image = used[0]
    # An entry the Activity Log never lists (Azure says "usually" within 20 minutes): the lock goes without one.
    assert rehearsal.emulator.store.remove(lock_of(image)) is not None
    rehearsal.emulator.advance(10 * MINUTES)
    assert audit(rehearsal.services, UNPROBED).protection_removed == []

    rehearsal.emulator.advance(int(RECONCILE_EVERY.total_seconds()))
    found = audit(rehearsal.services, UNPROBED)
    assert found.reconciled == [SUB] and found.lock_lists == 1 and found.protection_removed == [image]
    rehearsal.emulator.advance(5 * MINUTES)
    assert audit_calls(rehearsal) == {ACTIVITY: 1}  # reconciled: the next look is a steady one again


def test_given_two_subscriptions_due_again_when_looked_then_one_is_listed_a_look():
    rehearsal, used = protected_world(images=1, pools_per_image=1)
    image, snapshot = used
    other_snapshot, other_image = snapshot.replace(SUB, OTHER_SUB), image.replace(SUB, OTHER_SUB)
    rehearsal.emulator.store.put(ArmResource(other_snapshot, "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    rehearsal.emulator.store.put(ArmResource(other_image, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded",
                                                                                                      "storageProfile": {}}))
    deps = rehearsal.services
    protect(deps.records, deps.gateway.locks, ImageUse(f"{POOLS}/p000-001", other_image, (other_snapshot,), "req-other"))
    assert sorted(audit(deps, UNPROBED).reconciled) == sorted([SUB, OTHER_SUB])  # first looks: both
    rehearsal.emulator.advance(int(RECONCILE_EVERY.total_seconds()))
    first, second, third = (audit(deps, UNPROBED) for _ in range(3))
    assert len(first.reconciled) == 1 and len(second.reconciled) == 1 and first.reconciled != second.reconciled
    assert third.reconciled == []


def test_given_a_removed_lock_that_cannot_be_read_when_looked_then_the_subscription_is_reported_and_the_lock_read_next_look():
    rehearsal, used = looked_once(images=1)
    image = used[0]
    rehearsal.delete_as_operator(lock_of(image))
    rehearsal.emulator.advance(5 * MINUTES)
    rehearsal.emulator.authorization.deny(APP_TOKEN, f"/subscriptions/{SUB}", "Microsoft.Authorization/locks/read")
    deps = rehearsal.services

    blind = audit(deps, UNPROBED)
    assert list(blind.unreadable) == [f"/subscriptions/{SUB}"] and blind.protection_removed == []
    [state] = deps.records.list(LOCKS_KIND)
    assert state.data["pending"] == [image.lower()]

    rehearsal.emulator.authorization.lift_denials(APP_TOKEN)
    rehearsal.emulator.advance(30 * MINUTES)  # past the window's overlap: only the kept candidate says to read it
    found = audit(deps, UNPROBED)
    assert found.protection_removed == [image] and found.unreadable == {} and deps.records.list(UNREADABLE_KIND) == []
    assert audit(deps, UNPROBED).protection_removed == []
