"""What ops and teams see: the guard in the timeline, quiet logs, az-style output, the HTML picture, the image inventory.

Azure is the emulator (through the real SDK clients), the ledger in memory;
the HTML report is opened in a real headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import TextIO, cast

import pytest
import yaml

import cli.__main__ as cli_main
from cli.images import inventory
from cli.output import Palette, render
from rehearsal.report import build_report, render_timeline
from rehearsal.runner import Rehearsal
from rehearsal.scenario import Scenario, default_request
from shared.store.ledger import RequestRecord, Stage
from shared.store.memory import InMemoryLedger
from tests.support import PROJECT_ROOT, VALID_SETTINGS

POOL_ID = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/teambatch/pools/render-pool"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in VALID_SETTINGS and k != "NO_COLOR"}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, env={**clean, **(env or {})})


def logical_lines(timeline: str) -> list[str]:
    """The timeline's lines with each wrapped outcome joined back onto its line."""
    joined: list[str] = []
    for line in timeline.splitlines():
        if line.startswith(" " * 27) and joined:
            joined[-1] += " " + line.strip()
        else:
            joined.append(line)
    return joined


def scenario_file(tmp_path: Path, steps: list, world: dict | None = None, name: str = "case") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "world": world or {}, "steps": steps}))
    return path


# -- the timeline and quiet logs ----------------------------------------------------------------


def test_given_the_default_rehearsal_when_run_without_verbose_then_stderr_is_quiet_and_the_timeline_shows_the_guard():
    result = run_cli("rehearse")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "DEBUG" not in result.stderr and "INFO" not in result.stderr
    guard_lines = [line for line in logical_lines(result.stdout) if " guard " in line]
    assert any("300/600 nodes -> stalled: resize stopped" in line for line in guard_lines), result.stdout
    assert any("300/600 nodes -> resized" in line for line in guard_lines), result.stdout
    assert any("waiting" in line for line in guard_lines) and any("at target" in line for line in guard_lines)
    summary = next(line for line in result.stdout.splitlines() if line.startswith("ARM calls:"))
    assert "pipeline" in summary and "guard" in summary and "protection" in summary


def test_given_the_default_rehearsal_when_verbose_then_the_functions_log_lines_appear_without_http_headers():
    result = run_cli("rehearse", "--verbose")

    assert "INFO shared.guard.sweep" in result.stderr
    assert "Request headers" not in result.stderr and "DEBUG" not in result.stderr


def test_given_throttling_beyond_the_sdk_retries_when_rehearsed_then_one_summary_line_replaces_the_tracebacks(tmp_path):
    path = scenario_file(tmp_path, [{"submit": default_request()}, {"runUntilIdle": True}],
                         {"faults": [{"operation": "* *", "kind": "throttle", "rate": 0.6}]}, "throttled")

    result = run_cli("rehearse", "--scenario", str(path))

    assert result.returncode == 0
    assert "request team-a-render-001: READY" in result.stdout
    assert "Traceback" not in result.stderr
    [note] = result.stderr.splitlines()
    assert note.startswith("note: the functions handled") and "HTTP 429 TooManyRequests" in note and "--verbose" in note
    assert result.stderr.count("Traceback") == 0 and "Traceback" in run_cli("rehearse", "--scenario", str(path), "--verbose").stderr


def test_given_long_ids_when_the_timeline_is_rendered_then_columns_stay_aligned_and_json_keeps_the_full_id():
    report = build_report(Rehearsal(Scenario.model_validate({"steps": [
        {"submit": {**default_request(poolName="a-very-long-pool-name-that-pushes-every-column-out-of-line-x64"),
                    "requestId": "a-request-id-of-the-longest-allowed-form"}},
        {"runUntilIdle": True}]})).run())

    lines = [line for line in render_timeline(report).splitlines() if line.startswith("  +")]
    outcomes = [re.search(r"\s{2,}(\S+/(?:write|action) )", line) for line in lines if " azure " in line]
    assert all(outcomes)
    outcome_columns = {outcome.start(1) for outcome in outcomes if outcome}
    assert max(len(line.split("  ")[0]) for line in lines) < 20
    assert all(len(line) < 200 for line in lines) and len(outcome_columns) == 1
    assert any(e["resource"].endswith("out-of-line-x64") for e in report["timeline"])
    assert report["requests"][0]["stage"] == "READY"


def test_given_alerts_when_the_timeline_is_rendered_then_each_shows_its_severity_and_pools():
    rehearsal = Rehearsal(Scenario.model_validate(json.loads((PROJECT_ROOT / "examples" / "guard-quota-error.json").read_text()))).run()
    text = render_timeline(build_report(rehearsal))

    [alert] = [line for line in logical_lines(text) if " alert " in line]
    assert "error CustomImagePool.PoolCannotReachTarget" in alert and "pools: pool teambatch/quota-pool" in alert
    assert "runbook: Fix the cause named by errorCode" in alert
    assert any("needs a person" in line for line in logical_lines(text) if " guard " in line)


def test_given_a_terminal_when_rendered_then_colour_is_used_and_no_color_turns_it_off(monkeypatch):
    class Terminal:
        def isatty(self):
            return True

    from rehearsal.colour import colour_enabled

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_enabled(cast(TextIO, Terminal())) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_enabled(cast(TextIO, Terminal())) is False
    assert "\033[" in render({"a": 1}, "jsonc", colour=Palette(True)) and "\033[" not in render({"a": 1}, "jsonc", colour=Palette(False))


# -- the HTML report in a real browser ----------------------------------------------------------


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered RGB(A) rows of a PNG (8-bit, as Chromium writes them)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    idat = b""
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IDAT":
            idat += body
        chunks.setdefault(kind, body)
        at += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour_type in (2, 6)
    channels = 3 if colour_type == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        # Undo each row's filter (PNG spec 9.2): Up needs nothing else from its own row, so it is one zip.
        if kind == 2:
            line = bytearray([(value + up) & 0xFF for value, up in zip(line, previous, strict=True)])
        elif kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + (left + previous[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                if i >= channels:
                    left, corner = line[i - channels], previous[i - channels]
                else:
                    left = corner = 0
                up = previous[i]
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(r[i:i + 3]) for r in rows for i in range(0, stride, channels)]


def test_given_the_html_report_when_opened_in_headless_chromium_then_the_gantt_and_node_charts_render(tmp_path):
    from rehearsal.browser import BrowserUnavailable, dump_dom, find_chromium, screenshot

    try:
        find_chromium()
    except BrowserUnavailable as exc:
        pytest.fail(str(exc))
    page = tmp_path / "run.html"
    result = run_cli("rehearse", "--html", str(page))
    assert result.returncode == 0, result.stderr

    text = page.read_text()
    assert "<script src" not in text and "<link" not in text and "@font-face" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    dom = dump_dom(page)
    assert 'data-rendered="true"' in dom
    assert dom.count('data-kind="stage"') >= 6 and dom.count('data-kind="operation"') >= 6 and 'data-kind="resize"' in dom
    assert 'class="node-line"' in dom and 'class="target-line"' in dom and 'class="resize-marker"' in dom
    png = screenshot(page, tmp_path / "run.png", height=700)
    width, height, pixels = png_pixels(png)
    colours = set(pixels)
    assert (width, height) == (1160, 700) and len(colours) > 50
    # The stage bars' blue and the resize marker's orange are on the picture, not only in the DOM.
    assert any(abs(r - 0x54) < 12 and abs(g - 0xAE) < 12 and abs(b - 0xFF) < 12 for r, g, b in colours)
    assert any(abs(r - 0xFB) < 12 and abs(g - 0x8F) < 12 and abs(b - 0x44) < 12 for r, g, b in colours)


# -- az-style output ---------------------------------------------------------------------------


@pytest.fixture
def ledger_with_requests(monkeypatch):
    ledger = InMemoryLedger()
    now = __import__("datetime").datetime(2026, 11, 2, 9, 30, tzinfo=__import__("datetime").UTC)
    for request_id, stage in (("req-ready", Stage.READY), ("req-scaling", Stage.SCALING)):
        record = ledger.create(RequestRecord.new(request_id=request_id, stage=Stage.RECEIVED, body=default_request(), now=now))
        ledger.advance(record, stage, now=now)
    monkeypatch.setattr(cli_main, "_settings", lambda *needed: None)
    monkeypatch.setattr(cli_main, "_clients", lambda settings: type("Clients", (), {"ledger_table": lambda self: None})())
    monkeypatch.setattr("shared.store.tables.TableLedger", lambda table_client: ledger)
    return ledger


def test_given_requests_when_status_prints_json_then_it_is_json_and_query_filters_it(ledger_with_requests, capsys):
    assert cli_main.main(["status", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["requestId"]: r["stage"] for r in listed} == {"req-ready": "READY", "req-scaling": "SCALING"}

    assert cli_main.main(["status", "-o", "json", "--query", "[?stage=='READY'].requestId"]) == 0
    assert json.loads(capsys.readouterr().out) == ["req-ready"]

    assert cli_main.main(["status", "req-scaling", "-o", "tsv", "--query", "{id: requestId, stage: stage}"]) == 0
    assert capsys.readouterr().out.strip() == "req-scaling\tSCALING"

    assert cli_main.main(["status", "-o", "yaml", "--query", "[0].{id: requestId}"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) in ({"id": "req-ready"}, {"id": "req-scaling"})

    assert cli_main.main(["status", "-o", "table", "--query", "[].{Id: requestId, Stage: stage}"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["Id", "Stage"] and set(table[1]) <= {"-", " "}


def test_given_a_bad_query_when_status_runs_then_it_exits_invalid_with_a_hint(ledger_with_requests, capsys):
    assert cli_main.main(["status", "--query", "[?stage=="]) == cli_main.EXIT_INVALID
    err = capsys.readouterr().err
    assert "invalid --query" in err and "hint:" in err


def test_given_the_rehearsal_when_queried_then_the_report_is_filtered():
    result = run_cli("rehearse", "-o", "json", "--query", "guardDecisions[?decision=='resized'].[currentDedicatedNodes, targetDedicatedNodes, errorCode]")
    assert json.loads(result.stdout) == [[300, 600, None]]  # resized again after the guard stopped its stalled resize


# -- errors: every one with a hint -------------------------------------------------------------


def test_given_no_settings_when_status_or_submit_run_then_all_missing_ones_are_named_at_once_with_a_hint(tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps(default_request()))

    submit = run_cli("submit", str(request))
    status = run_cli("status")

    assert submit.returncode == status.returncode == cli_main.EXIT_SETTINGS
    assert "missing settings: SERVICEBUS__fullyQualifiedNamespace (or azd's SERVICEBUS_NAMESPACE), POOL_REQUESTS_QUEUE" in submit.stderr
    assert "missing setting: LEDGER_TABLE_ENDPOINT" in status.stderr and "ALLOWED_SCOPES" not in status.stderr
    assert "hint:" in submit.stderr and "az functionapp config appsettings list" in submit.stderr
    assert "--queue" not in run_cli("submit", str(request), "--queue", "q").stderr.split("missing")[-1].split("\n")[0]


def test_given_an_unreachable_namespace_when_submitting_then_the_reach_check_fails_it_before_the_sdk_retries_with_a_hint(tmp_path):
    # How fast that is (the SDK alone retries for about 11 s) is a budget: bench's cli.unreachableNamespaceSeconds.
    request = tmp_path / "request.json"
    request.write_text(json.dumps(default_request()))

    result = run_cli("submit", str(request), env={"SERVICEBUS__fullyQualifiedNamespace": "no-such-namespace.invalid", "POOL_REQUESTS_QUEUE": "q"})

    assert result.returncode == cli_main.EXIT_FAILED
    assert "cannot reach the Service Bus namespace" in result.stderr and "hint:" in result.stderr


def test_given_a_reader_that_closes_the_pipe_when_schema_prints_then_it_ends_quietly():
    reader = subprocess.Popen([sys.executable, "-m", "cli", "schema"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()
    reader.wait()
    assert "Traceback" not in reader.stderr.read().decode()


def test_given_a_bad_duration_in_a_scenario_when_rehearsed_then_the_error_names_the_one_clause_that_matters(tmp_path):
    path = scenario_file(tmp_path, [{"advance": "PT30X"}])

    result = run_cli("rehearse", "--scenario", str(path))

    assert result.returncode == cli_main.EXIT_INVALID
    [error, hint] = result.stderr.strip().splitlines()
    assert error.count(";") == 0 and "steps[0].advance: not a duration" in error
    assert "write an ISO 8601 duration such as PT25M" in error
    assert hint.startswith("hint:")


# -- the image inventory ---------------------------------------------------------------------------


def play_and_list(*extra_steps: dict, unused_only: bool = False) -> list[dict]:
    rehearsal = Rehearsal(Scenario.model_validate({"steps": [
        {"submit": default_request()}, {"runUntilIdle": True}, *extra_steps]})).run()
    deps = rehearsal.services
    groups = ["/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-imaging"]
    return inventory(rehearsal.clients, deps.ledger, deps.records, resource_groups=groups, batch_accounts=[POOL_ID.rsplit("/pools/", 1)[0]],
                     now=rehearsal.emulator.now(), unused_only=unused_only)


def test_given_the_default_run_when_images_are_listed_then_the_version_shows_its_pool_and_lock():
    items = play_and_list()

    [version] = [i for i in items if i["kind"] == "galleryImageVersion"]
    assert [p["name"] for p in version["pools"]] == ["render-pool"]
    assert version["pools"][0]["currentDedicatedNodes"] == 600
    assert version["lock"] == "cip-protect (CanNotDelete)" and version["inUse"] is True and version["safeToDelete"] is False
    assert sorted(i["kind"] for i in items) == ["galleryImageVersion", "managedImage", "snapshot", "snapshot", "snapshot"]
    assert all(i["pools"] and i["lock"] for i in items)
    assert play_and_list(unused_only=True) == []


def test_given_the_pool_deleted_when_unused_images_are_listed_then_the_version_is_a_candidate_with_size_and_age():
    items = play_and_list({"deleteResource": POOL_ID}, {"runUntilIdle": True}, unused_only=True)

    kinds = sorted(i["kind"] for i in items)
    assert kinds == ["galleryImageVersion", "managedImage", "snapshot", "snapshot", "snapshot"]
    [version] = [i for i in items if i["kind"] == "galleryImageVersion"]
    assert version["pools"] == [] and version["lock"] is None and version["safeToDelete"] is True
    assert version["ageDays"] is not None and "candidate" in version["advice"]
    assert sum(i["sizeGb"] or 0 for i in items if i["kind"] == "snapshot") > 0


def test_given_the_command_line_when_images_runs_on_the_rehearsal_then_it_prints_the_table_and_json():
    table = run_cli("images", "--rehearsal")
    as_json = run_cli("images", "--rehearsal", "-o", "json", "--query", "[?kind=='galleryImageVersion'].pools[].name")

    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:2] == ["KIND", "NAME"] and "render-pool (600/600)" in table.stdout
    assert json.loads(as_json.stdout) == ["render-pool"]
    assert table.stderr == ""


def test_given_the_image_of_a_growing_pool_deleted_when_images_are_listed_then_its_snapshots_are_kept_and_the_critical_alert_shows():
    # GIVEN the guard-image-deleted example: the pool's managed image unlocked and deleted mid-growth
    rehearsal = cli_main._play(str(PROJECT_ROOT / "examples" / "guard-image-deleted.json"))  # noqa: SLF001 - the CLI's own player
    deps = rehearsal.services
    groups = ["/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg-imaging"]
    # WHEN the inventory is read
    items = inventory(rehearsal.clients, deps.ledger, deps.records, resource_groups=groups, batch_accounts=[POOL_ID.rsplit("/pools/", 1)[0]],
                      now=rehearsal.emulator.now())
    snapshots = [i for i in items if i["kind"] == "snapshot"]
    # THEN the snapshots that can restore the image are in use by the pool and not safe to delete
    assert len(snapshots) == 3
    assert all(not s["safeToDelete"] and [p["name"] for p in s["pools"]] == ["orphan-pool"] for s in snapshots)
    assert all("restore it from this one" in s["advice"] for s in snapshots)
    # AND every resource shows the alerts published within the last hour (the critical first), not one that never was
    assert {tuple(i["alerts"]) for i in items} == {("CustomImagePool.InUseImageDeleted (critical) on cip-guard-image-deleted",
                                                    "CustomImagePool.ProtectionRemoved (warning) on cip-guard-image-deleted")}


@pytest.mark.parametrize("example", ["guard-image-deleted", "guard-quota-error", "protection-delete-delivered-three-times",
                                     "protection-delete-event-dropped", "protection-lock-removed-then-image-deleted"])
def test_given_an_example_that_raises_alerts_when_rehearsed_then_stderr_stays_empty(example, capsys):
    # An alert's own log line (ERROR or CRITICAL) is the alert, not an error the functions handled.
    assert cli_main.main(["rehearse", "--scenario", str(PROJECT_ROOT / "examples" / f"{example}.json"), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out)["handledErrors"]["total"] == 0


def test_given_the_shipped_examples_when_listed_then_each_file_is_named_with_what_it_shows(capsys):
    assert cli_main.main(["rehearse", "--list", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    files = sorted(f"examples/{path.name}" for path in (PROJECT_ROOT / "examples").glob("*.json"))
    assert [item["file"] for item in listed] == files
    assert all(item["name"] and item["description"] for item in listed)
    assert cli_main.main(["rehearse", "--list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == len(files) and table[0].startswith(files[0])


def test_given_several_scenarios_when_rehearsed_then_each_is_played_and_reported_in_turn(capsys):
    examples = [str(PROJECT_ROOT / "examples" / name) for name in ("guard-2500-nodes.json", "pool-name-taken.json")]
    assert cli_main.main(["rehearse", "--scenario", *examples, "-o", "json", "--query", "[].[scenario, requests[0].stage]"]) == 0
    assert json.loads(capsys.readouterr().out) == [["guard-2500-nodes", "READY"], ["pool-name-taken", "REJECTED"]]
    assert cli_main.main(["rehearse", "--scenario", *examples, "--html", "page.html"]) == 2
    assert "--html writes one scenario's page" in capsys.readouterr().err


def test_given_an_html_path_in_a_missing_folder_when_rehearsed_then_it_is_refused_before_the_run(tmp_path, capsys):
    assert cli_main.main(["rehearse", "--html", str(tmp_path / "no-such-folder" / "page.html")]) == 2
    assert "no-such-folder does not exist" in capsys.readouterr().err
