"""Strict ARM resource ids: parse once, compare case-insensitively, reject anything dressed up.

A request names resources the function's identity may act on, so an id is
accepted only in its canonical form for the expected type: no extra or empty
segments, no ``..``, no second provider smuggled into a name, no trailing parts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ..errors import PermanentError

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._()-]{0,89}"
# Matched with fullmatch: "$" alone would also accept a trailing newline.
_SUBSCRIPTION_SCOPE = re.compile(rf"/subscriptions/{_GUID}", re.IGNORECASE)
_RESOURCE_GROUP_SCOPE = re.compile(rf"/subscriptions/{_GUID}/resourceGroups/{_NAME}", re.IGNORECASE)
_NAME_ONLY = re.compile(_NAME)

VIRTUAL_MACHINE = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
SNAPSHOT = "Microsoft.Compute/snapshots"
IMAGE = "Microsoft.Compute/images"
GALLERY = "Microsoft.Compute/galleries"
GALLERY_IMAGE = "Microsoft.Compute/galleries/images"
GALLERY_IMAGE_VERSION = "Microsoft.Compute/galleries/images/versions"
BATCH_ACCOUNT = "Microsoft.Batch/batchAccounts"
BATCH_POOL = "Microsoft.Batch/batchAccounts/pools"


class ArmIdError(PermanentError, ValueError):
    """A resource id is malformed or of the wrong type."""


@dataclass(frozen=True)
class ArmId:
    """A parsed resource id: subscription, resource group, type and names (outermost first)."""

    subscription: str
    resource_group: str
    resource_type: str
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[-1]

    @cached_property
    def id(self) -> str:
        namespace, *types = self.resource_type.split("/")
        path = "/".join(f"{t}/{n}" for t, n in zip(types, self.names, strict=True))
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{namespace}/{path}"

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"

    def parent(self) -> ArmId:
        namespace, *types = self.resource_type.split("/")
        return ArmId(self.subscription, self.resource_group, "/".join([namespace, *types[:-1]]), self.names[:-1])

    def child(self, child_type: str, name: str) -> ArmId:
        return ArmId(self.subscription, self.resource_group, f"{self.resource_type}/{child_type}", (*self.names, name))

    def sibling(self, resource_type: str, name: str) -> ArmId:
        """A top-level resource of ``resource_type`` in the same resource group."""
        return ArmId(self.subscription, self.resource_group, resource_type, (name,))

    def key(self) -> str:
        """The case-insensitive identity of the resource."""
        return self._key

    @cached_property
    def _key(self) -> str:
        return resource_key(self.id)

    def is_within(self, scope: str) -> bool:
        """Whether this resource sits at or below ``scope`` (segment-wise, case-insensitive)."""
        prefix = scope.rstrip("/").lower()
        own = self.key()
        return own == prefix or own.startswith(prefix + "/")


def resource_key(resource_id: str) -> str:
    """The one normal form of a resource id for comparing and keying: ARM ids are case-insensitive,
    and ids read back from Azure sometimes lack or double the leading slash."""
    return "/" + resource_id.strip().strip("/").lower()


# A sweep meets the same ids every five minutes (a fleet's pools and each one's lineage, about six ids a pool): parsing
# them once per process, not once per look, is most of a 10,000-pool sweep's own work. ArmId is immutable, so a
# cached answer cannot be changed by whoever holds it; a refusal is cached as its reason and raised anew each time.
_PARSED_IDS_KEPT = 1 << 17


def parse_arm_id(value: object, expected_type: str) -> ArmId:
    """Parse ``value`` as a canonical id of ``expected_type``; anything else raises ArmIdError."""
    if not isinstance(value, str):
        raise ArmIdError(f"is not a {expected_type} resource id")
    parsed = _parse(value, expected_type)
    if isinstance(parsed, str):
        raise ArmIdError(parsed)
    return parsed


@lru_cache(maxsize=_PARSED_IDS_KEPT)
def _parse(value: str, expected_type: str) -> ArmId | str:
    """The parsed id, or why ``value`` is not a canonical id of ``expected_type``."""
    try:
        return _parse_uncached(value, expected_type)
    except ArmIdError as refused:
        return str(refused)


def _parse_uncached(value: str, expected_type: str) -> ArmId:
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id  # Azure SDK: first use (cold start)

    if not value.lower().startswith("/subscriptions/") or not is_valid_resource_id(value):
        raise ArmIdError(f"is not a {expected_type} resource id")
    parts = parse_resource_id(value)
    children = range(1, int(parts.get("last_child_num") or 0) + 1)
    types = [_part(parts, "type"), *(_part(parts, f"child_type_{i}") for i in children)]
    names = [_part(parts, "name"), *(_part(parts, f"child_name_{i}") for i in children)]
    actual_type = "/".join([_part(parts, "namespace"), *types])
    if actual_type.lower() != expected_type.lower():
        raise ArmIdError(f"is not a {expected_type} resource id (it names a {actual_type})")
    subscription, resource_group = _part(parts, "subscription"), _part(parts, "resource_group")
    if not re.fullmatch(_GUID, subscription) or not _NAME_ONLY.fullmatch(resource_group):
        raise ArmIdError(f"is not a {expected_type} resource id (bad subscription or resource group)")
    if not all(_NAME_ONLY.fullmatch(n) for n in names):
        raise ArmIdError(f"is not a {expected_type} resource id (bad resource name)")
    parsed = ArmId(subscription, resource_group, expected_type, tuple(names))
    # Rebuilding the id and comparing catches extra slashes, trailing segments and providers smuggled into names.
    if parsed.id.lower() != value.lower():
        raise ArmIdError(f"is not a canonical {expected_type} resource id")
    return parsed


def _part(parts: Mapping[str, object], key: str) -> str:
    """One named part of a parsed id; "" when absent (azure-mgmt-core also returns counters here)."""
    value = parts.get(key)
    return value if isinstance(value, str) else ""


def parse_scope(value: str) -> str:
    """A scope for authorisation: a subscription, a resource group or a Batch account id."""
    scope = value.strip()
    if _SUBSCRIPTION_SCOPE.fullmatch(scope) or _RESOURCE_GROUP_SCOPE.fullmatch(scope):
        return scope
    try:
        return parse_arm_id(scope, BATCH_ACCOUNT).id
    except ArmIdError as exc:
        raise ArmIdError(
            f"{value!r} is not a subscription, resource group or Batch account id"
        ) from exc


def try_parse(value: str, expected_type: str) -> ArmId | None:
    """The parsed id, or None when it is not a canonical id of that type (for event routing)."""
    # A canonical id of the type holds "/providers/<namespace>/<type>/" (parse_arm_id rebuilds and compares it): without
    # it the full parse cannot succeed, so the cheap test answers first (a fleet's ids are tried against several types).
    namespace, first_type = (expected_type.lower().split("/") + [""])[:2]
    if not isinstance(value, str) or f"/providers/{namespace}/{first_type}/" not in value.lower():
        return None
    try:
        return parse_arm_id(value, expected_type)
    except ArmIdError:
        return None
