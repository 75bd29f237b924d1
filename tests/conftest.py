"""Fixtures shared across test folders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import support
from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteError, AzuriteTable

if TYPE_CHECKING:
    from azure.data.tables import TableClient


# -- the fast unit tier (pytest --fast; ./scripts/test --fast) -------------------

# The end-to-end tier: whole scenarios and fleets played on the emulator, fresh interpreters (the command
# line, the package), Chromium, checkov and fuzzing. ``--fast`` leaves these out, and every test on Azurite;
# a module not named here is in the unit tier.
END_TO_END = (
    "authorization/test_request_scopes.py",
    "chaos",
    "cli",
    "emulator/test_azure_rules.py",
    "emulator/test_real_transport.py",
    "eventfacts/test_either_behaviour.py",
    "eventfacts/test_findings.py",
    "foundation/test_package.py",
    "fuzz",
    "guard/test_guard_scenarios.py",
    "infra/test_bicep.py",
    "infra/test_roles_match_operations.py",
    "pipeline/test_delivery_and_failures.py",
    "pipeline/test_refresh_scenarios.py",
    "pipeline/test_scenarios.py",
    "pipeline/test_sources_and_steps.py",
    "protection/test_event_routing.py",
    "protection/test_fleet_protection.py",
    "protection/test_protection_audit.py",
    "protection/test_protection_scenarios.py",
    "realworld",
    "reliability",
)
TESTS = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fast", action="store_true", help="the fast unit tier alone: no end-to-end module (tests/conftest.py END_TO_END), no Azurite")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("fast") and any(collection_path.is_relative_to(TESTS / part) for part in END_TO_END):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shared_runs = {support.played, support.played_report}
    for item in items:
        if "azurite_table_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.azurite)
        # Where each test runs under pytest-xdist (--dist loadgroup): the modules that read shared scenario runs
        # on one worker, so each scenario is played once per test run; any other test with the rest of its class
        # (or its module's functions), so class- and module-scoped fixtures are set up once, not on every worker.
        module = getattr(item, "module", None)
        if module is not None and shared_runs & {getattr(module, name, None) for name in ("played", "played_report")}:
            item.add_marker(pytest.mark.xdist_group("shared-scenario-runs"))
        else:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("[", 1)[0].rsplit("::", 1)[0]))
    if not config.getoption("fast"):
        return
    on_azurite = [item for item in items if item.get_closest_marker("azurite")]
    if on_azurite:
        config.hook.pytest_deselected(items=on_azurite)
        items[:] = [item for item in items if not item.get_closest_marker("azurite")]


# -- Azurite (Azure Table Storage) ---------------------------------------------


@pytest.fixture(scope="session")
def azurite_table_endpoint() -> Iterator[str]:
    """The Table endpoint of an Azurite started for this session.

    Fails (never skips) when Azurite is missing or does not start: the ledger's
    tests against Table Storage must not pass by not running.
    """
    try:
        azurite = AzuriteTable().__enter__()
    except AzuriteError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None
    try:
        yield azurite.endpoint
    finally:
        azurite.__exit__(None, None, None)


@pytest.fixture
def azurite_table_client(azurite_table_endpoint: str) -> Iterator[TableClient]:
    """A client for a table of this test's own, not yet created, on Azurite."""
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import TableClient

    table_name = "t" + uuid.uuid4().hex
    credential = AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY)
    with TableClient(azurite_table_endpoint, table_name, credential=credential) as client:
        yield client
