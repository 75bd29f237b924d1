"""A typed, read-only view of a Batch pool as ARM returns it, and the metadata shape ARM takes.

Every capability that reads a pool (the pipeline, the guard, intake's node
limits, the protection alerts, event routing) reads it through
:class:`PoolView`, parsed once from the ``azure.mgmt.batch`` model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
        """Read an ``azure.mgmt.batch.models.Pool``; enum values become their strings."""
        props = pool.properties
        scale = props.scale_settings if props is not None else None
        fixed = scale.fixed_scale if scale is not None else None
        status = props.resize_operation_status if props is not None else None
        vm_config = getattr(getattr(props, "deployment_configuration", None), "virtual_machine_configuration", None)
        image = getattr(getattr(vm_config, "image_reference", None), "id", None)
        return cls(
            id=pool.id,
            etag=pool.etag,
            provisioning_state=wire_text(getattr(props, "provisioning_state", None)),
            allocation_state=wire_text(getattr(props, "allocation_state", None)),
            allocation_state_changed=getattr(props, "allocation_state_transition_time", None),
            current_dedicated=getattr(props, "current_dedicated_nodes", None) or 0,
            current_low_priority=getattr(props, "current_low_priority_nodes", None) or 0,
            fixed_scale=fixed is not None,
            target_dedicated=(fixed.target_dedicated_nodes or 0) if fixed is not None else 0,
            target_low_priority=(fixed.target_low_priority_nodes or 0) if fixed is not None else 0,
            resize_timeout=fixed.resize_timeout if fixed is not None else None,
            resize_started=status.start_time if status is not None else None,
            error_codes=tuple(e.code or "Unknown" for e in (status.errors or [])) if status is not None else (),
            metadata={m.name: m.value for m in (getattr(props, "metadata", None) or []) if m.name},
            image_id=image,
            vm_size=getattr(props, "vm_size", None),
            node_agent_sku_id=getattr(vm_config, "node_agent_sku_id", None),
            security_type=wire_text(getattr(getattr(vm_config, "security_profile", None), "security_type", None)) or None,
            vm_configuration=vm_config.as_dict() if vm_config is not None else {},
        )


def metadata_items(metadata: Mapping[str, str]) -> list[dict[str, str]]:
    """Pool metadata as the Batch API takes it: name/value pairs, in name order (stable bodies)."""
    return [{"name": name, "value": value} for name, value in sorted(metadata.items())]

