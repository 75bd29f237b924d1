"""``verify --probe-events`` on the emulator: it tells each event behaviour apart, prints its table and writes the findings.

The deployment's functions run through the rehearsal (events delivered to ``resource_events``); the probe
makes its calls as an operator, through the real SDK clients, and waits on virtual time.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from cli.probe import ProbeResult, run_probe
from emulator.credentials import StaticTokenCredential
from rehearsal.runner import Rehearsal
from rehearsal.scenario import EventBehaviourSpec, Scenario
from shared import bootstrap
from shared import settings as names
from shared.eventfacts.findings import EventFindings, read_findings
from tests.support import VALID_SETTINGS

ASSUMED = EventBehaviourSpec()
WORST = EventBehaviourSpec(lock_delete_raises_event=False, locked_delete_raises_failure_event=False, write_success_at="acceptance")


def probe(behaviour: EventBehaviourSpec) -> tuple[Rehearsal, str, ProbeResult]:
    scenario = Scenario.model_validate({"steps": []})
    scenario = scenario.model_copy(update={"world": scenario.world.model_copy(update={"event_behaviour": behaviour})})
    rehearsal = Rehearsal(scenario)
    environ = {**VALID_SETTINGS, names.ALLOWED_SCOPES: ",".join(scenario.world.allowed_scopes), "AZURE_LOCATION": "westeurope"}
    out = io.StringIO()
    bootstrap.install(rehearsal.services)
    try:
        result = run_probe(environ, StaticTokenCredential("operator-token"), out, records=rehearsal.ledger.records(),
                           now=rehearsal.emulator.now, sleep=lambda seconds: rehearsal.advance(timedelta(seconds=seconds)),
                           transport=rehearsal.emulator.transport())
    finally:
        bootstrap.install(None)
    return rehearsal, out.getvalue(), result


def row(printed: str, label: str) -> list[str]:
    line = next(line for line in printed.splitlines() if line.startswith(label))
    return [cell for cell in line[len(label):].split("  ") if cell.strip()]


@pytest.mark.parametrize(("behaviour", "lock_event", "refused_event", "written_at"), [
    (ASSUMED, True, True, "completion"),
    (WORST, False, False, "acceptance"),
    (EventBehaviourSpec(lock_delete_raises_event=False), False, True, "completion"),
    (EventBehaviourSpec(write_success_at="acceptance"), True, True, "acceptance"),
], ids=["as-assumed", "worst", "no-lock-event", "write-at-acceptance"])
def test_given_a_behaviour_when_probed_then_the_table_and_the_findings_say_it(behaviour, lock_event, refused_event, written_at):
    rehearsal, printed, result = probe(behaviour)
    assert result.problem is None and result.written
    assert read_findings(rehearsal.ledger.records()) == result.findings
    assert (result.findings.lock_delete_raises_event, result.findings.locked_delete_raises_failure_event,
            result.findings.write_success_at) == (lock_event, refused_event, written_at)
    assert printed.splitlines()[0].split() == ["event", "expected", "seen", "delay"]
    assert row(printed, "ResourceDeleteSuccess: lock deleted")[1].strip() == ("yes" if lock_event else "no")
    assert row(printed, "ResourceDeleteFailure: delete refused by the lock")[1].strip() == ("yes" if refused_event else "no")
    assert row(printed, "ResourceWriteSuccess raised at")[1].strip() == written_at
    assert row(printed, "the delete was refused")[1].strip() == "409 ScopeLocked"
    assert row(printed, "the Activity Log lists the refused delete")[1].strip() == "yes"


def test_given_a_probe_when_it_ends_then_it_leaves_nothing_behind_and_moves_no_request():
    rehearsal, _, result = probe(WORST)
    left = [r.id for r in rehearsal.emulator.store if "cip.event-probe." in r.id.lower()]
    assert left == []
    assert rehearsal.ledger.list_recent(10) == [] and rehearsal.emulator.topic.received == []
    assert rehearsal.host.errors == []
    # Nine writes: disk, snapshot, lock, the refused delete, the lock's and the snapshot's deletes, and the removals.
    writes = {op: n for op, n in rehearsal.emulator.calls.items() if not op.startswith("GET")}
    assert sum(writes.values()) == 9, writes


def test_given_events_that_never_reach_the_function_when_probed_then_nothing_is_learned_and_nothing_is_written():
    scenario = Scenario.model_validate({"world": {"eventDelivery": {"dropRate": 1.0}}, "steps": []})
    rehearsal = Rehearsal(scenario)
    environ = {**VALID_SETTINGS, names.ALLOWED_SCOPES: ",".join(scenario.world.allowed_scopes)}
    out = io.StringIO()
    bootstrap.install(rehearsal.services)
    try:
        result = run_probe(environ, StaticTokenCredential("operator-token"), out, records=rehearsal.ledger.records(),
                           now=rehearsal.emulator.now, sleep=lambda seconds: rehearsal.advance(timedelta(seconds=seconds)),
                           transport=rehearsal.emulator.transport(), wait=timedelta(minutes=5))
    finally:
        bootstrap.install(None)
    assert not result.written and "events are not flowing" in (result.problem or "")
    assert read_findings(rehearsal.ledger.records()) == EventFindings()
