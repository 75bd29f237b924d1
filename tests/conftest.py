"""Fixtures shared across test folders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteError, AzuriteTable

if TYPE_CHECKING:
    from azure.data.tables import TableClient


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
