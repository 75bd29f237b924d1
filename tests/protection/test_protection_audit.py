"""The sweep's own protection audit: what it costs (in-use resources, not pools), and that probe findings turn it off."""

from __future__ import annotations

from datetime import timedelta

from emulator.credentials import StaticTokenCredential
from emulator.store import ArmResource
from rehearsal.runner import Rehearsal
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, Scenario
from shared.eventfacts.findings import EventFindings, write_findings
from shared.protection.audit import UNREADABLE_KIND, audit_protection
from shared.protection.locks import IMAGE_USE, ImageUse, protect
from tests.protection.test_fleet_protection import IMAGING, POOLS, SUB, calls_during, put_image

LOCK_LISTS = "GET Microsoft.Authorization/locks"
ACTIVITY = "GET Microsoft.Insights/eventtypes/values"
ALL_DELIVERED = EventFindings(lock_delete_raises_event=True, locked_delete_raises_failure_event=True, write_success_at="completion")


def protected_world(images: int, pools_per_image: int) -> tuple[Rehearsal, list[str]]:
    """GIVEN ``images`` managed images (each made from a snapshot) used by ``pools_per_image`` pools each, all protected."""
    pools = [{"id": f"{POOLS}/p{i:03d}-{p:03d}", "imageId": f"{IMAGING}/images/img{i:03d}"}
             for i in range(images) for p in range(pools_per_image)]
    rehearsal = Rehearsal(Scenario.model_validate({"world": {
        "pools": pools, "batchAccounts": [{"id": DEFAULT_ACCOUNT_ID, "dedicatedCoreQuota": 10_000_000}]}, "steps": []}))
    deps = rehearsal.services
    used = []
    for i in range(images):
        image, snapshot = put_image(rehearsal, f"img{i:03d}")
        used += [image, snapshot]
        for p in range(pools_per_image):
            protect(deps.records, deps.gateway.locks, ImageUse(f"{POOLS}/p{i:03d}-{p:03d}", image, (snapshot,), f"req-{i}-{p}"))
    rehearsal.emulator.advance(60)
    return rehearsal, used


UNPROBED = EventFindings()


def audit(services, findings: EventFindings):
    """The sweep's audit on its own, with what the composition root gives it."""
    return audit_protection(findings, records=services.records, locks=services.gateway.locks, monitor=services.gateway.monitor,
                            alerts=services.protection_alerts(), now=services.now)


def audit_calls(rehearsal: Rehearsal, findings: EventFindings = UNPROBED) -> dict[str, int]:
    return calls_during(rehearsal, lambda: audit(rehearsal.services, findings))


def test_given_more_pools_on_the_same_images_when_audited_then_the_reads_do_not_grow():
    few, _ = protected_world(images=3, pools_per_image=1)
    many, _ = protected_world(images=3, pools_per_image=30)
    assert audit_calls(few) == audit_calls(many) == {LOCK_LISTS: 1, ACTIVITY: 1}


def test_given_more_in_use_resources_when_audited_then_the_lock_list_grows_by_pages_of_them():
    # The emulator pages lists by 50: 30 images and their snapshots are 60 locks, two pages; 3 images, one.
    small, _ = protected_world(images=3, pools_per_image=2)
    large, _ = protected_world(images=30, pools_per_image=2)
    assert audit_calls(small)[LOCK_LISTS] == 1
    assert audit_calls(large)[LOCK_LISTS] == 2
    # One resource group holds them all: one Activity Log read however many resources.
    assert audit_calls(large)[ACTIVITY] == 1


def test_given_a_probe_that_saw_every_event_when_audited_then_nothing_is_read():
    rehearsal, _ = protected_world(images=3, pools_per_image=2)
    write_findings(rehearsal.services.records, ALL_DELIVERED)
    from shared.eventfacts.findings import read_findings

    assert audit_calls(rehearsal, read_findings(rehearsal.services.records)) == {}


def test_given_a_removed_lock_when_audited_twice_then_one_protection_removed_and_the_lock_is_placed_again_on_next_use():
    rehearsal, used = protected_world(images=1, pools_per_image=2)
    image = used[0]
    lock = f"{image}/providers/Microsoft.Authorization/locks/cip-protect"
    rehearsal.delete_as_operator(lock)
    first = audit(rehearsal.services, EventFindings())
    second = audit(rehearsal.services, EventFindings())
    assert first.protection_removed == [image] and second.protection_removed == []
    [alert] = rehearsal.emulator.topic.received
    assert alert["type"] == "CustomImagePool.ProtectionRemoved" and alert["data"]["lockId"] == lock
    assert {p["id"].rsplit("/", 1)[-1] for p in alert["data"]["pools"]} == {"p000-000", "p000-001"}
    summary = rehearsal.services.records.get(IMAGE_USE, image)
    assert summary is not None and "notes" not in summary.data
    # The next pool to use it puts the lock back.
    protect(rehearsal.services.records, rehearsal.services.gateway.locks, ImageUse(f"{POOLS}/p000-009", image, (used[1],), "req-9"))
    assert rehearsal.emulator.store.find(lock) is not None


def test_given_a_refused_delete_when_audited_again_later_then_it_is_not_alerted_twice():
    rehearsal, used = protected_world(images=1, pools_per_image=1)
    snapshot = used[1]
    rehearsal.delete_as_operator(snapshot)
    rehearsal.emulator.advance(5 * 60)  # the Activity Log lists it a few minutes later
    deps = rehearsal.services
    seen = []
    for _ in range(3):
        rehearsal.emulator.advance(5 * 60)
        state = audit(deps, EventFindings(lock_delete_raises_event=True))
        seen.append(state.deletion_blocked)
    assert seen == [[snapshot], [], []]
    assert [alert["type"] for alert in rehearsal.emulator.topic.received] == ["CustomImagePool.DeletionBlocked"]
    # The look remembers where it read up to; each later look reaches back only ACTIVITY_LOG_LAG.
    from shared.protection.audit import ACTIVITY_LOG_LAG, AUDIT_KIND

    [state_record] = deps.records.list(AUDIT_KIND)
    assert state_record.data["alerted"] and ACTIVITY_LOG_LAG == timedelta(minutes=20)


def test_given_a_look_stopped_for_100_days_when_audited_again_then_it_reads_from_inside_the_90_days_the_log_keeps():
    # GIVEN a look that read the Activity Log, then a stop of 100 days (the log refuses a start more than 90 days back)
    rehearsal, used = protected_world(images=1, pools_per_image=1)
    audit(rehearsal.services, UNPROBED)
    rehearsal.emulator.advance(100 * 24 * 3600)
    # WHEN a refused delete happens and the audit looks again
    rehearsal.delete_as_operator(used[1])
    rehearsal.emulator.advance(10 * 60)
    found = audit(rehearsal.services, UNPROBED)
    # THEN the read was accepted (no 400) and found the refused delete
    assert found.deletion_blocked == [used[1]]


OTHER_SUB = "3f1c9e27-0b5d-4a8e-8c1f-7d2e6a4b9c30"
APP_TOKEN = StaticTokenCredential().token  # whose calls the emulator sees as the app's


def test_given_one_subscription_the_app_cannot_audit_when_audited_then_the_others_are_audited_and_ops_hear_once_it_persists():
    """One unreadable scope (a 403 where the app's role does not reach) must not blind the audit to every scope after it."""
    rehearsal, used = protected_world(images=1, pools_per_image=2)
    image, snapshot = used
    # GIVEN a second subscription's image and snapshot, protected for another pool; the app loses access to the first.
    other_snapshot = snapshot.replace(SUB, OTHER_SUB)
    other_image = image.replace(SUB, OTHER_SUB)
    rehearsal.emulator.store.put(ArmResource(other_snapshot, "Microsoft.Compute/snapshots", "westeurope", {"provisioningState": "Succeeded"}))
    rehearsal.emulator.store.put(ArmResource(other_image, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded", "storageProfile": {
        "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": other_snapshot}}}}))
    deps = rehearsal.services
    protect(deps.records, deps.gateway.locks, ImageUse(f"{POOLS}/p000-001", other_image, (other_snapshot,), "req-other"))
    rehearsal.delete_as_operator(f"{other_image}/providers/Microsoft.Authorization/locks/cip-protect")
    rehearsal.delete_as_operator(other_snapshot)  # refused by its lock: an Activity Log entry a few minutes later

    for action in ("Microsoft.Authorization/locks/read", "Microsoft.Insights/eventtypes/values/read"):  # the audit's role, removed there
        rehearsal.emulator.authorization.deny(APP_TOKEN, f"/subscriptions/{SUB}", action)
    rehearsal.emulator.advance(5 * 60)

    # WHEN audited: the unreadable subscription is reported, the other one audited in full.
    first = audit(deps, UNPROBED)
    assert first.protection_removed == [other_image] and first.deletion_blocked == [other_snapshot]
    unreadable_group = f"/subscriptions/{SUB}/resourcegroups/rg-imaging"
    assert set(first.unreadable) == {f"/subscriptions/{SUB}", unreadable_group}
    assert "AuthorizationFailed" in first.unreadable[unreadable_group] and first.audit_blind == []

    # A refused delete in the unreadable subscription while it is unreadable.
    rehearsal.delete_as_operator(snapshot)
    rehearsal.emulator.advance(5 * 60)
    second, third = audit(deps, UNPROBED), audit(deps, UNPROBED)
    assert sorted(second.audit_blind) == sorted(first.unreadable) and third.audit_blind == []
    blind = [alert for alert in rehearsal.emulator.topic.received if alert["type"] == "CustomImagePool.ProtectionAuditBlind"]
    assert sorted(alert["subject"] for alert in blind) == sorted(first.unreadable)
    assert {alert["data"]["severity"] for alert in blind} == {"warning"} and all(alert["data"]["runbook"] for alert in blind)
    assert all("AuthorizationFailed" in alert["data"]["reason"] for alert in blind)

    # THEN once the app can read it again, the window it missed is read: the refused delete is found.
    rehearsal.emulator.authorization.lift_denials(APP_TOKEN)
    rehearsal.emulator.advance(5 * 60)
    fourth = audit(deps, UNPROBED)
    assert fourth.unreadable == {} and fourth.deletion_blocked == [snapshot]
    assert deps.records.list(UNREADABLE_KIND) == []


def test_given_an_alert_that_cannot_be_raised_when_audited_then_the_others_are_and_it_is_raised_on_a_later_look():
    rehearsal, used = protected_world(images=2, pools_per_image=1)
    first_image, second_image = used[0], used[2]
    for image in (first_image, second_image):
        rehearsal.delete_as_operator(f"{image}/providers/Microsoft.Authorization/locks/cip-protect")
    # The pools at risk of the first alert cannot be read for now.
    rehearsal.emulator.authorization.deny(APP_TOKEN, f"{POOLS}/p000-000", "Microsoft.Batch/batchAccounts/pools/read")

    first = audit(rehearsal.services, UNPROBED)
    assert first.protection_removed == [second_image] and list(first.unreadable) == [first_image]

    rehearsal.emulator.authorization.lift_denials(APP_TOKEN)
    second = audit(rehearsal.services, UNPROBED)
    assert second.protection_removed == [first_image] and second.unreadable == {}
    removed = [alert["subject"] for alert in rehearsal.emulator.topic.received if alert["type"] == "CustomImagePool.ProtectionRemoved"]
    assert sorted(removed) == sorted([first_image, second_image])
