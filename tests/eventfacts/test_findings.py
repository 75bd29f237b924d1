"""What the functions do with a probe's findings, and with none."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rehearsal.runner import Rehearsal
from rehearsal.scenario import EventBehaviourSpec, default_scenario
from shared.eventfacts.findings import EventFindings, read_findings, write_findings
from shared.messaging import MAX_REQUEST_LOOKS, RequestCheck, is_request_check
from shared.store.memory import InMemoryLedger


def test_given_no_probe_when_read_then_every_fact_is_unknown_and_every_fallback_is_on():
    findings = read_findings(InMemoryLedger().records())
    assert findings == EventFindings()
    assert findings.sweep_checks_locks and findings.sweep_checks_refused_deletes and findings.pipeline_rechecks_writes


def test_given_a_probe_that_saw_every_event_when_read_then_every_fallback_is_off():
    records = InMemoryLedger().records()
    write_findings(records, EventFindings(True, True, "completion", "20261126t010000", "2026-11-26T01:00:00+00:00"))
    findings = read_findings(records)
    assert not (findings.sweep_checks_locks or findings.sweep_checks_refused_deletes or findings.pipeline_rechecks_writes)


@pytest.mark.parametrize("data", [{"lock_delete_raises_event": "yes"}, {"write_success_at": "later"}, {"probe_id": 5}, {}])
def test_given_unreadable_findings_when_read_then_the_fact_counts_as_unknown(data):
    findings = EventFindings.from_data(data)
    assert findings.lock_delete_raises_event is None and findings.write_success_at is None and findings.probe_id is None


def play_default(behaviour: EventBehaviourSpec, findings: EventFindings | None) -> Rehearsal:
    scenario = default_scenario()
    scenario = scenario.model_copy(update={"world": scenario.world.model_copy(update={"event_behaviour": behaviour})})
    rehearsal = Rehearsal(scenario)
    if findings is not None:
        write_findings(rehearsal.services.records, findings)
    return rehearsal.run()


def looks(rehearsal: Rehearsal) -> list:
    return [m for m in rehearsal.emulator.servicebus.queues["pool-checks"].sent if m.message.subject == "RequestCheck"]


def test_given_findings_that_writes_come_at_completion_when_the_pipeline_waits_then_it_schedules_no_looks():
    probed = play_default(EventBehaviourSpec(), EventFindings(True, True, "completion"))
    unprobed = play_default(EventBehaviourSpec(), None)
    assert looks(probed) == []
    # With completion-time events a resource is read done on its event: no look is needed either way.
    assert looks(unprobed) == []
    assert probed.ledger.get("team-a-render-001").stage.value == unprobed.ledger.get("team-a-render-001").stage.value == "READY"


def test_given_findings_that_writes_come_at_completion_when_they_come_at_acceptance_then_the_timer_still_finishes_it():
    # A wrong finding costs time (the reconcile timer re-drives the request), never the request.
    wrong = play_default(EventBehaviourSpec(write_success_at="acceptance"), EventFindings(True, True, "completion"))
    assert looks(wrong) == []
    assert wrong.ledger.get("team-a-render-001").stage.value == "READY"


def test_given_a_request_check_body_when_parsed_then_bad_ones_are_refused_by_field():
    good = RequestCheck("team-a-1", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/x", 2)
    message = good.message(datetime(2026, 11, 26, tzinfo=UTC))
    body = message.body.encode()
    assert is_request_check(body) and RequestCheck.from_body(body) == good
    assert not is_request_check(json.dumps({"poolId": "x"}).encode()) and not is_request_check(b"not json")
    for bad in ({"requestId": "", "resourceId": "x"}, {"requestId": "a", "resourceId": 5},
                {"requestId": "a", "resourceId": "x", "attempt": MAX_REQUEST_LOOKS + 1}, {"requestId": "a"}):
        assert RequestCheck.from_body(json.dumps(bad).encode()) is None


def test_given_successive_looks_when_delayed_then_they_back_off_to_five_minutes():
    delays = [RequestCheck("r", "x", attempt).delay().total_seconds() for attempt in range(1, 8)]
    assert delays == [30, 60, 120, 240, 300, 300, 300]


AUDIT_READS = ("GET Microsoft.Authorization/locks", "GET Microsoft.Insights/eventtypes/values")


def test_given_a_probe_that_saw_every_event_when_the_default_runs_then_the_sweeps_make_no_audit_reads():
    # The findings are read: a probed deployment skips the protection audit an unprobed one runs every sweep.
    probed = play_default(EventBehaviourSpec(), EventFindings(True, True, "completion"))
    unprobed = play_default(EventBehaviourSpec(), None)
    assert [probed.emulator.calls.get(op, 0) for op in AUDIT_READS] == [0, 0]
    assert all(unprobed.emulator.calls.get(op, 0) > 0 for op in AUDIT_READS)


def test_given_writes_found_to_come_at_acceptance_when_the_pipeline_waits_then_it_looks_again_itself():
    # ARM raising the write event when a PUT is accepted: only the pipeline's own looks see the resource done.
    behaviour = EventBehaviourSpec(write_success_at="acceptance")
    probed = play_default(behaviour, EventFindings(True, True, "acceptance"))
    assert looks(probed) != []
    assert probed.ledger.get("team-a-render-001").stage.value == "READY"
