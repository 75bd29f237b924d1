"""The command line's habits: validate before sending, -o everywhere, "did you mean", plain help, settings named at once.

Each test runs the real parser (in process, or ``python -m cli`` in a subprocess where the exit and stderr
matter); nothing here reaches Azure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import cli.__main__ as cli_main
from rehearsal.scenario import DEFAULT_ACCOUNT_ID, DEFAULT_RG, ScenarioError, default_request, load_scenario
from shared import settings as names
from shared.model.request import RequestRejected, json_schema, parse_request
from shared.settings import SettingError, Settings
from tests.support import PROJECT_ROOT, VALID_SETTINGS


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in VALID_SETTINGS and k not in ("NO_COLOR", "SERVICEBUS_NAMESPACE")}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, env={**clean, **env})


def write(tmp_path: Path, name: str, body: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return path


# -- validate, and submit checking the same -----------------------------------------------------


def test_given_a_garbage_vm_id_when_submitted_then_it_is_refused_as_the_function_would_and_nothing_is_sent(tmp_path, monkeypatch, capsys):
    path = write(tmp_path, "garbage.json", {**default_request(), "source": {"virtualMachineId": "garbage"}})
    monkeypatch.setattr(cli_main, "_clients", lambda settings: pytest.fail("an invalid request must not reach Azure"))

    code = cli_main.main(["submit", str(path)])

    assert code == cli_main.EXIT_INVALID
    err = capsys.readouterr().err
    assert "invalid request, not sent" in err and "source.virtualMachineId: is not a Microsoft.Compute/virtualMachines resource id" in err
    assert "validate FILE names each problem" in err


def test_given_allowed_scopes_in_the_environment_when_submitting_outside_them_then_it_is_refused_before_sending(tmp_path, monkeypatch, capsys):
    path = write(tmp_path, "request.json", default_request())
    monkeypatch.setenv(names.ALLOWED_SCOPES, DEFAULT_ACCOUNT_ID)
    monkeypatch.setattr(cli_main, "_clients", lambda settings: pytest.fail("a request outside the scopes must not reach Azure"))

    assert cli_main.main(["submit", str(path)]) == cli_main.EXIT_INVALID
    err = capsys.readouterr().err
    assert "source.virtualMachineId" in err and "is outside the allowed scopes" in err and "image.galleryId" in err


def test_given_several_files_when_validated_as_json_then_each_has_its_verdict_and_problems(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(names.ALLOWED_SCOPES, f"{DEFAULT_RG},{DEFAULT_ACCOUNT_ID}")
    good = write(tmp_path, "good.json", default_request())
    bad = write(tmp_path, "bad.json", {**default_request(), "requestedBy": ""})
    unreadable = tmp_path / "missing.json"

    code = cli_main.main(["validate", str(good), str(bad), str(unreadable), "-o", "json"])

    assert code == cli_main.EXIT_INVALID
    verdicts = {Path(item["file"]).name: item for item in json.loads(capsys.readouterr().out)}
    assert verdicts["good.json"]["valid"] is True and verdicts["good.json"]["scopesChecked"] is True
    assert verdicts["good.json"]["requestId"] == "team-a-render-001"
    assert verdicts["bad.json"]["problems"] == ["requestedBy: String should have at least 1 character"]
    assert verdicts["missing.json"]["problems"] == ["cannot read the file (No such file or directory)"]


def test_given_a_malformed_allowed_scopes_when_validating_then_it_is_a_setting_error_not_a_verdict(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(names.ALLOWED_SCOPES, "rg-imaging")

    assert cli_main.main(["validate", str(write(tmp_path, "r.json", default_request()))]) == cli_main.EXIT_SETTINGS
    assert "App setting ALLOWED_SCOPES must list" in capsys.readouterr().err


# -- the request's own errors: did you mean, durations ------------------------------------------------


def test_given_a_misspelt_field_or_a_bad_duration_when_parsed_then_the_reason_names_the_nearest_field_and_shows_a_duration():
    body = default_request(resizeTimeout="25m")
    body["pool"]["vmsize"] = body["pool"].pop("vmSize")
    body["sourse"] = body.pop("source")

    with pytest.raises(RequestRejected) as rejected:
        parse_request(json.dumps(body), "m-1")

    reason = rejected.value.reason
    assert "pool.vmsize: unknown field (did you mean vmSize?)" in reason
    assert "sourse: unknown field (did you mean source?)" in reason
    assert "pool.resizeTimeout: not a duration" in reason and "PT25M" in reason


def test_given_a_misspelt_scenario_field_or_step_when_loaded_then_the_error_names_the_nearest(tmp_path):
    with pytest.raises(ScenarioError, match=r"world\.virtualMachine: unknown field \(did you mean virtualMachines\?\)"):
        load_scenario(write(tmp_path, "a.json", {"world": {"virtualMachine": []}, "steps": []}))
    with pytest.raises(ScenarioError, match=r"did you mean runUntillIdle -> runUntilIdle\?"):
        load_scenario(write(tmp_path, "b.json", {"steps": [{"runUntillIdle": True}]}))


def test_given_a_world_azure_could_not_hold_when_loaded_then_the_error_names_the_field_and_the_rule(tmp_path):
    vm = {"id": f"{DEFAULT_RG}/providers/Microsoft.Compute/virtualMachines/old", "hyperVGeneration": "V1", "vmSize": "Standard_DC2s_v2"}
    with pytest.raises(ScenarioError, match=r"a generation V1 VM cannot run on Standard_DC2s_v2 \(HyperVGenerations V2\)"):
        load_scenario(write(tmp_path, "a.json", {"world": {"virtualMachines": [vm]}, "steps": []}))
    with pytest.raises(ScenarioError, match=r"regionVmSizes: no published capabilities for Standard_DS1_v2"):
        load_scenario(write(tmp_path, "b.json", {"world": {"regionVmSizes": {"westeurope": ["Standard_DS1_v2"]}}, "steps": []}))


# -- flags and commands ----------------------------------------------------------------------------


def test_given_a_misspelt_flag_or_command_then_the_error_names_the_nearest_one():
    flag = run_cli("rehearse", "--scenaro", "examples/guard-quota-error.json")
    command = run_cli("sumbit", "request.json")

    assert flag.returncode == command.returncode == 2
    assert "unrecognized arguments: --scenaro" in flag.stderr and "did you mean --scenaro -> --scenario?" in flag.stderr
    assert "usage: python -m cli rehearse" in flag.stderr
    assert "invalid choice: 'sumbit'" in command.stderr and "did you mean submit?" in command.stderr


def test_given_json_and_another_output_format_when_rehearsing_then_it_is_refused_before_the_run(capsys):
    assert cli_main.main(["rehearse", "--json", "-o", "table"]) == cli_main.EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.out == "" and "--json and -o table ask for two formats" in captured.err
    assert cli_main.main(["rehearse", "--list", "--json", "-o", "json", "--query", "length(@)"]) == 0
    assert json.loads(capsys.readouterr().out) == len(list((PROJECT_ROOT / "examples").glob("*.json")))


def test_given_schema_with_an_output_format_then_it_prints_the_same_schema_in_it(capsys):
    assert cli_main.main(["schema", "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == json_schema()
    assert cli_main.main(["schema", "--query", '["$defs".PoolRequest.required, "$defs".RefreshRequest.required]']) == 0
    assert json.loads(capsys.readouterr().out) == [["requestedBy", "source", "pool"], ["requestedBy", "source", "refresh"]]


def test_given_verify_with_json_output_then_stdout_is_the_report_and_the_table_goes_to_stderr():
    result = run_cli("verify", "-o", "json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["checks"][0]["check"] == "deployment outputs" and report["checks"][0]["status"] == "FAIL"
    assert "missing: AZURE_SUBSCRIPTION_ID" in report["checks"][0]["detail"] and "FAIL    deployment outputs" in result.stderr


def test_given_every_command_when_its_help_is_shown_then_it_has_no_docstring_markup(capsys):
    parser = cli_main.build_parser("cip")
    [commands] = [action for action in parser._actions if action.__class__.__name__ == "_SubParsersAction"]  # noqa: SLF001 - argparse lists subcommands nowhere public
    assert isinstance(commands.choices, dict)
    for name, command in commands.choices.items():
        text = command.format_help()
        for markup in ("``", ":mod:`", ":func:`", ":class:`", ":data:`", "*caller*"):
            assert markup not in text, (name, markup)
    assert "python -m cli" not in parser.format_help()


# -- settings: every missing one at once, azd's names, the shell's wording ------------------------------


def test_given_several_settings_missing_when_read_then_one_error_names_each_and_where_to_set_them():
    with pytest.raises(SettingError) as error:
        Settings.from_environ({names.LEDGER_TABLE_ENDPOINT: "ftp://ledger"})

    message = str(error.value)
    for name in (names.SERVICEBUS_NAMESPACE, names.POOL_REQUESTS_QUEUE, names.ALERTS_TOPIC_ENDPOINT, names.ALLOWED_SCOPES,
                 names.POOL_CHECKS_QUEUE, names.MESSAGE_SIGNING_KEY):
        assert f"App setting {name} is missing" in message
    assert "App setting LEDGER_TABLE_ENDPOINT must be an absolute URL" in message
    assert message.endswith(SettingError.where_to_set)


def test_given_an_azd_environment_when_a_command_reads_the_service_bus_namespace_then_azds_output_name_is_enough(monkeypatch):
    monkeypatch.delenv(names.SERVICEBUS_NAMESPACE, raising=False)
    monkeypatch.setenv("SERVICEBUS_NAMESPACE", "pools-prod.servicebus.windows.net")
    monkeypatch.setenv(names.POOL_REQUESTS_QUEUE, "pool-requests")

    settings = cli_main._settings(names.SERVICEBUS_NAMESPACE, names.POOL_REQUESTS_QUEUE)  # noqa: SLF001 - the settings reader itself

    assert settings.servicebus_namespace == "pools-prod.servicebus.windows.net"


def test_given_a_malformed_setting_in_the_shell_then_the_message_speaks_of_the_shell_not_the_function_app():
    result = run_cli("status", LEDGER_TABLE_ENDPOINT="ftp://ledger")

    assert result.returncode == cli_main.EXIT_SETTINGS
    assert "App setting LEDGER_TABLE_ENDPOINT must be an absolute URL" in result.stderr and "(in this shell's environment)" in result.stderr
    assert "Function App configuration" not in result.stderr


# -- the first run says what it installs ----------------------------------------------------------------


def test_given_a_fresh_clone_when_bootstrap_installs_then_it_says_what_it_is_installing(tmp_path):
    # GIVEN the bootstrap script in a folder with the requirement files and a stand-in for .venv's python that
    # records what it is asked to do (the real install takes a minute and needs the registry)
    (tmp_path / "scripts").mkdir()
    shutil.copy2(PROJECT_ROOT / "scripts" / "bootstrap", tmp_path / "scripts" / "bootstrap")
    for name in ("requirements.txt", "requirements-cli.txt", "requirements-deploy.txt", "requirements-dev.txt", "constraints.txt"):
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'calls.txt'}\n")
    fake.chmod(0o755)

    first = subprocess.run([str(tmp_path / "scripts" / "bootstrap")], capture_output=True, text=True, check=True)
    again = subprocess.run([str(tmp_path / "scripts" / "bootstrap")], capture_output=True, text=True, check=True)

    # THEN the first run says what it installs, on stderr, and the second (nothing to do) says nothing
    assert "bootstrap: installing the pinned Python packages of requirements-dev.txt into .venv" in first.stderr
    assert first.stdout == "" and again.stderr == "" and again.stdout == ""
    assert (tmp_path / "calls.txt").read_text().count("-m pip install") == 1
