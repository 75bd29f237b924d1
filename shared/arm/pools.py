"""A typed, read-only view of a Batch pool as ARM returns it, and the metadata shape ARM takes.

Every capability that reads a pool (the pipeline, the guard, intake's node
limits, the protection alerts, event routing) reads it through
:class:`PoolView`, parsed once from the pool's REST body (a listed page's item, or the
``azure.mgmt.batch`` model of a read, which is a mapping of that body).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import isodate

from ..errors import PermanentError
from ..naming import (
    METADATA_REQUEST,
    METADATA_TARGET_DEDICATED,
    METADATA_TARGET_LOW_PRIORITY,
)
from .values import wire_text

# Node counts are plain decimal digits: str.isdigit() would also accept "²", which int() refuses.
_COUNT = re.compile(r"[0-9]{1,9}")


class BadPoolMetadata(PermanentError, ValueError):
    """A pool's metadata cannot be read as node targets: the pool is skipped, never resized."""


@dataclass(frozen=True)
class Targets:
    """Dedicated and low-priority node targets of a pool."""

    dedicated: int
    low_priority: int

    @property
    def signature(self) -> str:
        return f"{self.dedicated}/{self.low_priority}"


@dataclass(frozen=True)
class PoolView:
    """The fields of a Batch pool the project reads, parsed once from the SDK model."""

    id: str
    etag: str | None
    provisioning_state: str
    allocation_state: str
    allocation_state_changed: datetime | None
    current_dedicated: int
    current_low_priority: int
    fixed_scale: bool
    target_dedicated: int
    target_low_priority: int
    resize_timeout: timedelta | None
    resize_started: datetime | None
    error_codes: tuple[str, ...]
    metadata: dict[str, str]
    image_id: str | None
    vm_size: str | None = None
    node_agent_sku_id: str | None = None
    # virtualMachineConfiguration.securityProfile.securityType as Batch spells it (trustedLaunch, confidentialVM); None: Standard.
    security_type: str | None = None
    # deploymentConfiguration.virtualMachineConfiguration as ARM returned it (REST shape): an image change sends it back
    # with everything else it holds (a PATCH replaces deploymentConfiguration as a whole).
    vm_configuration: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def request_id(self) -> str | None:
        """The pipeline request that created the pool, if any."""
        return self.metadata.get(METADATA_REQUEST) or None

    @property
    def idle(self) -> bool:
        """Steady with no node at all: what Pool - Update needs to change the pool's image, VM size or security profile."""
        return self.allocation_state.lower() == "steady" and self.current_dedicated == 0 and self.current_low_priority == 0

    @property
    def current(self) -> Targets:
        """The node counts the pool has now."""
        return Targets(self.current_dedicated, self.current_low_priority)

    def reaches(self, targets: Targets) -> bool:
        """Whether the pool has at least ``targets`` nodes of each kind."""
        return self.current_dedicated >= targets.dedicated and self.current_low_priority >= targets.low_priority

    def metadata_count(self, name: str) -> int | None:
        """A node count kept in metadata ``name``; None when absent. Raises :class:`BadPoolMetadata`."""
        raw = self.metadata.get(name)
        if raw is None:
            return None
        if not _COUNT.fullmatch(raw.strip()):
            raise BadPoolMetadata(f"pool {self.id} metadata {name}={raw!r} is not a non-negative whole number")
        return int(raw.strip())

    def requested_targets(self) -> Targets | None:
        """The targets a pipeline pool was requested with (``cip-target-*``); None for other pools."""
        if self.request_id is None:
            return None
        return Targets(self.metadata_count(METADATA_TARGET_DEDICATED) or 0, self.metadata_count(METADATA_TARGET_LOW_PRIORITY) or 0)

    @classmethod
    def from_sdk(cls, pool: Any) -> PoolView:
        """Read an ``azure.mgmt.batch.models.Pool``: its models are mappings of the REST body (they keep what ARM sent
        under the REST names), read as :meth:`from_rest` reads a listed page's items."""
        return cls.from_rest(pool)

    @classmethod
    def from_rest(cls, pool: Mapping[str, Any]) -> PoolView:
        """Read a pool as ARM sends it (Batch's ``Pool`` schema, REST names), or an SDK model of one."""
        props = _mapping(pool.get("properties"))
        fixed_or_none = _mapping(props.get("scaleSettings")).get("fixedScale")
        fixed = _mapping(fixed_or_none)
        status = props.get("resizeOperationStatus")
        vm_config = _mapping(_mapping(props.get("deploymentConfiguration")).get("virtualMachineConfiguration"))
        errors = _mapping(status).get("errors") or ()
        return cls(
            id=pool.get("id") or "",
            etag=pool.get("etag"),
            provisioning_state=wire_text(props.get("provisioningState")),
            allocation_state=wire_text(props.get("allocationState")),
            allocation_state_changed=_datetime(props.get("allocationStateTransitionTime")),
            current_dedicated=props.get("currentDedicatedNodes") or 0,
            current_low_priority=props.get("currentLowPriorityNodes") or 0,
            fixed_scale=isinstance(fixed_or_none, Mapping),
            target_dedicated=fixed.get("targetDedicatedNodes") or 0,
            target_low_priority=fixed.get("targetLowPriorityNodes") or 0,
            resize_timeout=_duration(fixed.get("resizeTimeout")),
            resize_started=_datetime(_mapping(status).get("startTime")),
            error_codes=tuple(_mapping(e).get("code") or "Unknown" for e in errors),
            metadata={m["name"]: m.get("value") for m in (props.get("metadata") or ()) if m.get("name")},
            image_id=_mapping(vm_config.get("imageReference")).get("id"),
            vm_size=props.get("vmSize"),
            node_agent_sku_id=vm_config.get("nodeAgentSkuId"),
            security_type=wire_text(_mapping(vm_config.get("securityProfile")).get("securityType")) or None,
            vm_configuration=_plain(vm_config),
        )


_NOTHING: Mapping[str, Any] = {}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _NOTHING


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """A REST body as plain JSON values (an SDK model's ``as_dict``; a parsed page already is)."""
    as_dict = getattr(value, "as_dict", None)
    return as_dict() if callable(as_dict) else dict(value)


def _datetime(value: Any) -> datetime | None:
    """An ISO 8601 time as azure-mgmt-batch reads one (``model_base._deserialize_datetime``: isodate, at most six
    decimals of a second). What ARM sends (``2026-12-07T20:38:23.1234567Z``) Python's own parser reads the same way,
    faster; anything it does not read goes the SDK's way."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).upper()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    whole, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{whole}.{rest[:min(digits, 6)]}{rest[digits:]}"
    parsed = isodate.parse_datetime(text)
    return parsed if isinstance(parsed, datetime) else None


def _duration(value: Any) -> timedelta | None:
    """An ISO 8601 duration as azure-mgmt-batch reads one (``model_base._deserialize_duration``: isodate)."""
    if value is None or isinstance(value, timedelta):
        return value
    parsed = isodate.parse_duration(str(value))
    return parsed if isinstance(parsed, timedelta) else None


def metadata_items(metadata: Mapping[str, str]) -> list[dict[str, str]]:
    """Pool metadata as the Batch API takes it: name/value pairs, in name order (stable bodies)."""
    return [{"name": name, "value": value} for name, value in sorted(metadata.items())]

