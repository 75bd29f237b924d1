"""Ops receive each alert with its content: the log search alert rules' query reads what the functions really log.

The query (infra/app/alert-lines.kql) cannot run here (no Log Analytics), so what it relies on is checked against
the real thing: the alert log lines of a rehearsal that raises every alert type (through the real publisher on the
emulator), as the Functions Python worker hands them to the host (its ``AsyncLoggingHandler.emit`` sends
``self.format(record)``: a plain ``logging.Handler``'s formatting, ported below). The Bicep rules are read from
infra/app/alerts.bicep: one per alert severity, the query's columns as their dimensions, the ops action group.
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from rehearsal.runner import Rehearsal
from rehearsal.scenario import Scenario, default_request, load_scenario
from shared.alerts import ALERT_KINDS, ALERT_LOG_FIELD, Severity
from tests.support import PROJECT_ROOT

QUERY = (PROJECT_ROOT / "infra" / "app" / "alert-lines.kql").read_text()
BICEP = (PROJECT_ROOT / "infra" / "app" / "alerts.bicep").read_text()
# Between them, with a request whose managed image ends Failed, these raise every alert type of the catalogue.
EXAMPLES = ("guard-image-deleted", "guard-quota-error", "protection-delete-blocked", "protection-audit-blind")
IMAGE_FAILS = {"world": {"faults": [{"operation": "PUT Microsoft.Compute/images", "kind": "lro_failed", "rate": 1}]},
               "steps": [{"submit": default_request()}, {"runUntilIdle": True}]}


class WorkerHandler(logging.Handler):
    """What the Functions Python worker sends the host for a log record: ``self.format(record)`` (no formatter set)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.sent: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, ALERT_LOG_FIELD, None) is not None:
            self.sent.append((record.levelno, self.format(record)))


@pytest.fixture(scope="module")
def alert_messages() -> list[tuple[int, str]]:
    handler = WorkerHandler()
    logger = logging.getLogger("shared")
    logger.addHandler(handler)
    try:
        for name in EXAMPLES:
            Rehearsal(load_scenario(PROJECT_ROOT / "examples" / f"{name}.json")).run()
        Rehearsal(Scenario.model_validate(IMAGE_FAILS)).run()
    finally:
        logger.removeHandler(handler)
    return handler.sent


def query_prefix() -> str:
    [prefix] = re.findall(r'where message startswith "([^"]+)"', QUERY)
    return prefix


def parsed(message: str) -> dict:
    """The query's own parsing: ``parse_json(substring(message, N))``, with N read from the query."""
    [offset] = re.findall(r"parse_json\(substring\(message, (\d+)\)\)", QUERY)
    return json.loads(message[int(offset):])


def projected_columns() -> list[str]:
    [columns] = re.findall(r"\| project (.+)", QUERY)
    return [column.strip() for column in columns.split(",")]


def test_given_real_alert_log_lines_when_the_query_reads_them_then_every_alert_type_yields_its_content(alert_messages):
    types = set()
    for _, message in alert_messages:
        assert message.startswith(query_prefix())
        alert = parsed(message)
        # Every field the query reads (alert.<field>) is in every line, as text a notification can show.
        for field in re.findall(r"alert\.(\w+)", QUERY):
            assert isinstance(alert.get(field), str) and alert[field], (field, alert.get("type"))
        types.add(alert["type"])
    assert types == {kind.type for kind in ALERT_KINDS}


def test_given_an_alert_line_then_its_summary_fields_name_the_pools_at_risk_and_the_details(alert_messages):
    by_type = {parsed(message)["type"]: parsed(message) for _, message in alert_messages}

    deleted = by_type["CustomImagePool.InUseImageDeleted"]
    assert deleted["poolsAtRisk"] == "pool orphan-pool in teambatch: 200/1200 dedicated, 0/0 low-priority (request guard-image-deleted)"
    assert deleted["details"] == "requests: guard-image-deleted"
    quota = by_type["CustomImagePool.PoolCannotReachTarget"]
    assert quota["details"].startswith("error code: AccountCoreQuotaReached; reason: resize failed with AccountCoreQuotaReached")
    failed = by_type["CustomImagePool.RequestFailed"]
    assert failed["poolsAtRisk"] == "none" and "reason: " in failed["details"]


def test_given_alert_log_levels_then_each_severity_reaches_the_host_at_its_own_level(alert_messages):
    levels = {parsed(message)["severity"]: level for level, message in alert_messages}
    assert levels == {Severity.CRITICAL.value: logging.CRITICAL, Severity.ERROR.value: logging.ERROR, Severity.WARNING.value: logging.WARNING}


def test_given_the_bicep_then_one_rule_per_severity_splits_by_the_querys_columns_and_mails_ops():
    assert "var alertLinesQuery = loadTextContent('alert-lines.kql')" in BICEP and "query: alertLinesQuery" in BICEP
    severities = dict(re.findall(r"\{ name: '(\w+)', azureSeverity: (\d) \}", BICEP))
    assert severities == {"critical": "0", "error": "1", "warning": "2"}
    assert set(severities) == {severity.value for severity in Severity}
    dimensions = re.findall(r"\{ name: '(\w+)', operator: 'Include', values: \[ ([^\]]+) \] \}", BICEP)
    assert sorted(name for name, _ in dimensions) == sorted(projected_columns()[1:]) and len(dimensions) <= 6
    assert dict(dimensions)["severity"] == "rule.name" and all(values == "'*'" for name, values in dimensions if name != "severity")
    assert "scopes: [ applicationInsightsId ]" in BICEP and "actionGroups: [ opsActionGroup.id ]" in BICEP
    assert "autoMitigate: false" in BICEP and "metricAlerts" not in BICEP


def test_given_host_json_then_no_alert_line_is_sampled_away():
    host = json.loads((PROJECT_ROOT / "host.json").read_text())
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert not sampling["isEnabled"] or "Trace" in sampling["excludedTypes"].split(";")
