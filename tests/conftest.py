"""Session-wide fixtures: Azurite for the ledger."""

from __future__ import annotations

import uuid

import pytest

from tests.azurite import AzuriteTable


@pytest.fixture(scope="session")
def azurite_table_endpoint():
    """The Table endpoint of an Azurite started for this test session (the test fails if it cannot start)."""
    try:
        azurite = AzuriteTable().__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield azurite.endpoint
    azurite.__exit__(None, None, None)


@pytest.fixture
def azurite_table_client(azurite_table_endpoint):
    """A fresh, empty table on Azurite, built by the production client factory."""
    from shared.clients import AzureClients
    from shared.settings import LEDGER_TABLE_ENDPOINT, LEDGER_TABLE_NAME, Settings
    from tests.support import VALID_SETTINGS

    name = "t" + uuid.uuid4().hex[:20]
    settings = Settings.from_environ({**VALID_SETTINGS, LEDGER_TABLE_ENDPOINT: azurite_table_endpoint, LEDGER_TABLE_NAME: name})
    return AzureClients(settings).ledger_table()
