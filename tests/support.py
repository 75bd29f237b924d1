"""Helpers shared by the tests: published fixtures, a static credential, emulator-backed clients."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.credentials import StaticTokenCredential  # noqa: F401 - re-exported for tests
from shared import settings as names
from shared.store.ledger import Ledger, LedgerUnavailable, RequestRecord
from shared.store.memory import InMemoryLedger
from shared.store.records import RecordStore

if TYPE_CHECKING:
    from rehearsal.runner import Rehearsal
    from rehearsal.scenario import Scenario

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_ROOT / "examples"
# Verbatim copies of Microsoft's published samples, with their sources in SOURCES.md there.
FIXTURES = PROJECT_ROOT / "tests" / "data" / "published"

SUBSCRIPTION = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
RESOURCE_GROUP = "rg-imaging"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"

# A complete, valid set of app settings.
VALID_SETTINGS = {
    names.SERVICEBUS_NAMESPACE: "bus.servicebus.windows.net",
    names.POOL_REQUESTS_QUEUE: "pool-requests",
    names.ALERTS_TOPIC_ENDPOINT: "https://alerts.westeurope-1.eventgrid.azure.net/api/events",
    names.LEDGER_TABLE_ENDPOINT: "https://account.table.core.windows.net",
    names.ALLOWED_SCOPES: f"{RG_ID}, /subscriptions/{SUBSCRIPTION}/resourceGroups/rg-batch/providers/Microsoft.Batch/batchAccounts/acct",
    names.POOL_CHECKS_QUEUE: "pool-checks",
    names.MESSAGE_SIGNING_KEY: "test-message-signing-key-00000000000000",
}


def load_fixture(relative_path: str) -> Any:
    """A published Microsoft JSON document, from the project's copies (tests/data/published)."""
    return json.loads((FIXTURES / relative_path).read_text())


def example(name: str) -> Scenario:
    """An example scenario by its file name in examples/, or ``"default"`` for the default rehearsal."""
    from rehearsal.scenario import default_scenario, load_scenario

    return default_scenario() if name == "default" else load_scenario(EXAMPLES / name)


_played: dict[str, Rehearsal] = {}


def played(scenario: Scenario) -> Rehearsal:
    """``Rehearsal(scenario).run()``, run once per test process for the same scenario and shared by the tests that play it.

    Only for tests that read the finished run (its report, resources, calls, events): a test that changes the
    world afterwards (a sweep, a removed resource, other settings or findings) plays its own.
    """
    from rehearsal.runner import Rehearsal

    key = scenario.model_dump_json()
    if key not in _played:
        _played[key] = Rehearsal(scenario).run()
    return _played[key]


def played_report(scenario: Scenario) -> dict:
    """The report of :func:`played`, a copy of its own for each caller."""
    from rehearsal.report import build_report

    return copy.deepcopy(build_report(played(scenario)))


@cache
def _bicep_parser():
    from pycep import BicepParser

    return BicepParser()


@cache
def parsed_bicep(path: Path) -> dict:
    """A Bicep file as pycep parses it, once per test process (building pycep's grammar costs more than a parse: one parser serves all)."""
    return _bicep_parser().parse(file_path=path)


def shape_of(value):
    """The keys of a JSON value, recursively: what the fidelity tests compare."""
    if isinstance(value, dict):
        return {key: shape_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape_of(value[0])] if value else []
    return type(value).__name__


def keys_missing(expected, actual, path="") -> list[str]:
    """Paths of keys in a published shape that ``actual`` lacks."""
    missing = []
    if isinstance(expected, dict):
        for key, value in expected.items():
            if not isinstance(actual, dict) or key not in actual:
                missing.append(f"{path}/{key}")
            else:
                missing += keys_missing(value, actual[key], f"{path}/{key}")
    elif isinstance(expected, list) and expected and isinstance(actual, list) and actual:
        missing += keys_missing(expected[0], actual[0], f"{path}[0]")
    return missing


class OutageLedger(Ledger):
    """The in-memory ledger, unreachable while ``down(now)`` (Table Storage unavailable for a while)."""

    def __init__(self, inner: InMemoryLedger, down) -> None:
        self.inner, self.down = inner, down

    def _check(self) -> None:
        if self.down():
            raise LedgerUnavailable("the ledger table failed: 503 Server Busy (injected)")

    def create(self, record: RequestRecord) -> RequestRecord:
        self._check()
        return self.inner.create(record)

    def get(self, request_id: str) -> RequestRecord:
        self._check()
        return self.inner.get(request_id)

    def advance(self, record, stage, **kwargs) -> RequestRecord:
        self._check()
        return self.inner.advance(record, stage, **kwargs)

    def _replace(self, record, updated):  # pragma: no cover - advance delegates whole
        raise NotImplementedError

    # The ledger's back-end hooks: a wrapper around a back-end delegates them.
    def _in_stages(self, stages):
        self._check()
        return self.inner._in_stages(stages)  # noqa: SLF001

    def _reply_pending(self):
        self._check()
        return self.inner._reply_pending()  # noqa: SLF001

    def records(self) -> RecordStore:
        return OutageRecords(self.inner.records(), self.down)


class OutageRecords:
    def __init__(self, inner, down) -> None:
        self.inner, self.down = inner, down

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def guarded(*args, **kwargs):
            if self.down():
                raise LedgerUnavailable("the ledger table failed: 503 Server Busy (injected)")
            return method(*args, **kwargs)

        return guarded
