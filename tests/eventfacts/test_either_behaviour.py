"""The protection scenarios and the default pipeline reach the same outcome however ARM raises its events.

Three event behaviours have no published source (emulator.events.EventBehaviour). Each of the 8
combinations is played against the scenarios whose outcome depends on them; the final stage of every
request and the set of alert types must equal what the scenario gives under the behaviour assumed so
far (alerts may come one sweep later, never lost). The functions run with no probe findings: they
assume the worst and look for themselves.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from rehearsal.scenario import EventBehaviourSpec, Scenario
from tests.support import example, played, played_report

SCENARIOS = (
    "protection-delete-blocked.json",  # DeletionBlocked
    "protection-lock-removed-then-image-deleted.json",  # ProtectionRemoved, then InUseImageDeleted
    "protection-delete-delivered-three-times.json",
    "protection-delete-event-dropped.json",
    "default",
)
BEHAVIOURS = [
    EventBehaviourSpec(lock_delete_raises_event=lock, locked_delete_raises_failure_event=refused, write_success_at=at)
    for lock, refused, at in itertools.product((True, False), (True, False), ("completion", "acceptance"))
]
ASSUMED = EventBehaviourSpec()


def scenario(name: str, behaviour: EventBehaviourSpec) -> Scenario:
    chosen = example(name)
    return chosen.model_copy(update={"world": chosen.world.model_copy(update={"event_behaviour": behaviour})})


def outcome(name: str, behaviour: EventBehaviourSpec) -> tuple[dict[str, str], frozenset[str], list]:
    report = played_report(scenario(name, behaviour))
    stages = {r["id"]: r["stage"] for r in report["requests"]}
    return stages, frozenset(a["type"] for a in report["alerts"]), report["functionErrors"]


def describe(behaviour: EventBehaviourSpec) -> str:
    return (f"lock-delete-event={behaviour.lock_delete_raises_event},refused-delete-event={behaviour.locked_delete_raises_failure_event},"
            f"write-success-at={behaviour.write_success_at}")


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=describe)
@pytest.mark.parametrize("name", SCENARIOS)
def test_given_any_event_behaviour_when_played_then_the_final_state_and_alert_types_are_those_assumed(name, behaviour):
    expected_stages, expected_alerts, _ = outcome(name, ASSUMED)
    stages, alerts, errors = outcome(name, behaviour)
    assert errors == []
    assert stages == expected_stages
    assert alerts == expected_alerts


def test_given_the_assumed_behaviour_when_played_then_the_scenarios_raise_the_alerts_they_are_about():
    # What the comparison above holds every behaviour to: not an empty outcome that any behaviour would match.
    assert outcome("protection-delete-blocked.json", ASSUMED)[1] == {"CustomImagePool.DeletionBlocked"}
    assert outcome("protection-lock-removed-then-image-deleted.json", ASSUMED)[1] == {
        "CustomImagePool.ProtectionRemoved", "CustomImagePool.InUseImageDeleted"}
    assert outcome("default", ASSUMED)[0] == {"team-a-render-001": "READY"}


def test_given_no_event_for_a_refused_delete_when_played_then_the_sweep_finds_it_in_the_activity_log():
    behaviour = EventBehaviourSpec(locked_delete_raises_failure_event=False)
    rehearsal = played(scenario("protection-delete-blocked.json", behaviour))
    assert not [e for e in rehearsal.emulator.events.emitted if e.event_type == "Microsoft.Resources.ResourceDeleteFailure"]
    assert rehearsal.emulator.calls["GET Microsoft.Insights/eventtypes/values"] > 0
    assert [alert["type"] for alert in rehearsal.emulator.topic.received] == ["CustomImagePool.DeletionBlocked"]


def test_given_write_events_at_acceptance_when_the_default_request_runs_then_its_own_looks_finish_it_without_the_timer():
    behaviour = EventBehaviourSpec(write_success_at="acceptance")
    rehearsal = played(scenario("default", behaviour))
    looks = [m for m in rehearsal.emulator.servicebus.queues["pool-checks"].sent if m.message.subject == "RequestCheck"]
    assert looks, "no request looks were scheduled"
    assert [e for e in rehearsal.timeline if e.stage == "READY"]
    # The version takes 14 minutes: its own looks see it done within 5 minutes of that, where waiting for the
    # reconcile timer (a stage unchanged for STUCK_REQUEST_MINUTES, 30) would take until after 09:35.
    created = next(e.at for e in rehearsal.timeline if e.stage == "CREATING_POOL")
    assert created - rehearsal.started_at <= timedelta(minutes=25)
