"""Values read from azure-mgmt models, as ARM sent them.

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
