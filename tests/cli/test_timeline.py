"""The rehearsal's timeline as a person reads it: lines that fit, ids shortened only between their parts, one line
per fact, in time order, the runbook with each alert, and why a step was skipped.

Each scenario is played for real (the functions on the emulator); the text is what ``rehearse`` prints.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from rehearsal.report import LINE_WIDTH, build_report, fit, render_timeline, short_id
from rehearsal.runner import Rehearsal
from rehearsal.scenario import Scenario, default_request, default_scenario, load_scenario
from tests.support import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"


def played(name: str | None) -> dict:
    scenario = default_scenario() if name is None else load_scenario(EXAMPLES / f"{name}.json")
    return build_report(Rehearsal(scenario).run())


@pytest.fixture(scope="module")
def reports() -> dict[str | None, dict]:
    return {name: played(name) for name in (None, "guard-image-deleted", "guard-quota-error", "trusted-launch-vm")}


def offsets(text: str) -> list[int]:
    found = []
    for line in text.splitlines():
        match = re.match(r"  \+(?:(\d+)d)?(\d\d):(\d\d):(\d\d)  ", line)
        if match:
            days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
            found.append(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    return found


def test_given_the_examples_when_rendered_then_every_line_fits_and_the_lines_are_in_time_order(reports):
    for name, report in reports.items():
        text = render_timeline(report)
        assert max(len(line) for line in text.splitlines()) <= LINE_WIDTH, name
        assert offsets(text) == sorted(offsets(text)), name


def test_given_long_ids_when_shortened_then_only_whole_parts_of_the_name_are_dropped(reports):
    report = build_report(Rehearsal(Scenario.model_validate({"steps": [
        {"submit": {**default_request(poolName="a-very-long-pool-name-that-pushes-every-column-out-of-line-x64"),
                    "requestId": "a-request-id-of-the-longest-allowed-form"}},
        {"runUntilIdle": True}]})).run())
    names = {short_id(entry["resource"]) for r in (report, *reports.values()) for entry in r["timeline"]}
    shortened = 0
    for name in names:
        shown = fit(name, 46)
        assert len(shown) <= 46
        if shown == name:
            continue
        shortened += 1
        label, _, kept = shown.rpartition(" ")
        full_name = name.rpartition(" ")[2]
        # The name is whole, or its kept tail starts right after a "/", "-" or ".": never inside a part.
        tail = kept.removeprefix("…")
        assert kept == full_name or (kept.startswith("…") and full_name.endswith(tail) and full_name[-len(tail) - 1] in "/-."), (name, shown)
        assert set(label.split()) <= set(name.rpartition(" ")[0].split()), (name, shown)
    assert shortened >= 3


def test_given_a_decision_repeated_after_an_alert_then_it_is_said_once_and_its_repeats_close_in_time_order(reports):
    text = render_timeline(reports["guard-image-deleted"])

    assert "(alerted before) (already alerted" not in text and "already alerted:" not in text
    joined = re.sub(r"\n {27}", " ", text)
    # The image-gone decision after its alert is said once; its repeats close at their own time.
    assert re.search(r"\+00:25:00  guard .* -> image gone \(alerted before\): .*, then 7 more times until \+01:00:00", joined)
    assert "-> image gone (alerted before): the pool's image or its lineage is gone: image cip-guard-image-deleted" in joined
    default = re.sub(r"\n {27}", " ", render_timeline(reports[None]))
    assert re.search(r"\+00:22:00  guard .* 300/600 nodes -> stalled: resize stopped", default)


def test_given_alerts_when_rendered_then_each_shows_its_runbook(reports):
    report = reports["guard-image-deleted"]
    text = re.sub(r"\n {27}", " ", render_timeline(report))

    for alert in report["alerts"]:
        assert f"{alert['severity']} {alert['type']}" in text
        assert f"runbook: {alert['data']['runbook']}" in text


def test_given_a_trusted_launch_vm_when_rendered_then_the_timeline_says_why_imaging_was_skipped(reports):
    report = reports["trusted-launch-vm"]
    stages = [entry["stage"] for entry in report["timeline"] if entry["resource"] == "trusted-001"]
    text = re.sub(r"\n {27}", " ", render_timeline(report))

    assert "IMAGING" not in stages and stages[:2] == ["SNAPSHOTTING", "PUBLISHING"]
    assert re.search(r"PUBLISHING +trusted-001 +IMAGING skipped: a TrustedLaunch source cannot become a managed image", text)
    started = datetime.fromisoformat(report["startedAt"])
    assert all(datetime.fromisoformat(entry["at"]) >= started for entry in report["timeline"])
