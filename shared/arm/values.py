"""Values read from azure-mgmt models, as ARM sent them, and compared as ARM compares them.

The SDKs type many fields as enums whose ``str()`` in Python 3.11 is the member's
name (``OperatingSystemTypes.LINUX``), not the wire value (``Linux``): writing that
back into a request body is a value Azure refuses.
"""

from __future__ import annotations

from typing import Any


def wire_text(value: Any) -> str:
    """The wire string of an SDK enum or plain value; "" for None."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def region_key(location: str | None) -> str:
    """A region name as ARM compares them: ``West Europe`` and ``westeurope`` are one region."""
    return (location or "").replace(" ", "").lower()
