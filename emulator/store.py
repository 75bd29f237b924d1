"""ARM resources and the store that holds them.

ARM resource ids are case-insensitive; the store keys on the lower-cased id and
keeps the casing the resource was created with, as ARM does.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from azure.mgmt.core.tools import parse_resource_id

from .errors import ParentResourceNotFound, ResourceNotFound

_etag_sequence = itertools.count(1)


def new_etag() -> str:
    """A fresh ETag in the quoted weak form ARM returns (``W/"0x8D..."``)."""
    return f'W/"0x8D{next(_etag_sequence):013X}"'


def resource_group_of(resource_id: str) -> tuple[str, str]:
    """(subscription id, resource group name) of a resource id."""
    parts = parse_resource_id(resource_id)
    return str(parts["subscription"]), str(parts["resource_group"])


@dataclass
class ArmResource:
    """One ARM resource: the envelope plus its ``properties``."""

    id: str
    type: str
    location: str | None
    properties: dict
    tags: dict = field(default_factory=dict)
    etag: str | None = None
    extra: dict = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def provisioning_state(self) -> str | None:
        return self.properties.get("provisioningState")

    def to_dict(self) -> dict:
        """The resource as ARM serialises it."""
        body: dict = {"id": self.id, "name": self.name, "type": self.type}
        if self.location is not None:
            body["location"] = self.location
        if self.tags:
            body["tags"] = dict(self.tags)
        if self.etag is not None:
            body["etag"] = self.etag
        body.update(_copied(self.extra))
        body["properties"] = _copied(self.properties)
        return body


def _copied(value):
    """A deep copy of JSON-shaped data (dicts, lists, scalars) without ``copy.deepcopy``'s bookkeeping (every answer
    copies its resource: emulator speed); anything else is deep-copied as before."""
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


class ResourceStore:
    """All resources of the emulated cloud, keyed case-insensitively by id."""

    def __init__(self) -> None:
        self._resources: dict[str, ArmResource] = {}
        # The same resources by lower-cased type, and by (type, parent id) for nested resources such as pools:
        # listing one type (or one parent's children) never walks the whole cloud.
        self._by_type: dict[str, dict[str, ArmResource]] = {}
        self._children: dict[tuple[str, str], dict[str, ArmResource]] = {}
        # Where each resource sits in creation order (find_many answers in it), and a count of every change: a listing
        # computed once is served again, page after page, until the store changes (emulator speed only).
        self._position: dict[str, int] = {}
        self._positions = itertools.count()
        self.version = 0
        self._type_versions: dict[str, int] = {}
        self._lock = threading.RLock()

    def put(self, resource: ArmResource) -> ArmResource:
        key = resource.id.lower()
        with self._lock:
            previous = self._resources.get(key)
            if previous is not None and previous.type.lower() != resource.type.lower():
                self._unindex(key, previous)
            if previous is None:
                self._position[key] = next(self._positions)
            self._resources[key] = resource
            self.version += 1
            for changed in {resource.type.lower(), previous.type.lower() if previous is not None else resource.type.lower()}:
                self._type_versions[changed] = self._type_versions.get(changed, 0) + 1
            self._by_type.setdefault(resource.type.lower(), {})[key] = resource
            self._children.setdefault((resource.type.lower(), _parent_key(key)), {})[key] = resource
        return resource

    def _unindex(self, key: str, resource: ArmResource) -> None:
        self._by_type.get(resource.type.lower(), {}).pop(key, None)
        self._children.get((resource.type.lower(), _parent_key(key)), {}).pop(key, None)

    def find(self, resource_id: str) -> ArmResource | None:
        with self._lock:
            return self._resources.get(resource_id.lower().rstrip("/"))

    def get(self, resource_id: str) -> ArmResource:
        """The resource, or ARM's ResourceNotFound naming it."""
        resource = self.find(resource_id)
        if resource is None:
            raise ResourceNotFound(_not_found_message(resource_id))
        return resource

    def require_parent(self, resource_id: str, parent_id: str) -> ArmResource:
        """The parent of a nested resource, or ParentResourceNotFound."""
        parent = self.find(parent_id)
        if parent is None:
            raise ParentResourceNotFound(
                f"Can not perform requested operation on nested resource '{resource_id}'. "
                f"Parent resource '{parent_id}' not found."
            )
        return parent

    def exists(self, resource_id: str) -> bool:
        return self.find(resource_id) is not None

    def remove(self, resource_id: str) -> ArmResource | None:
        key = resource_id.lower().rstrip("/")
        with self._lock:
            removed = self._resources.pop(key, None)
            if removed is not None:
                self._unindex(key, removed)
                self._position.pop(key, None)
                self.version += 1
                self._type_versions[removed.type.lower()] = self._type_versions.get(removed.type.lower(), 0) + 1
            return removed

    def of_type(self, resource_type: str, *, under: str | None = None) -> list[ArmResource]:
        """Resources of one type, optionally below a scope id, in creation order."""
        prefix = under.lower().rstrip("/") + "/" if under else ""
        with self._lock:
            return [r for key, r in self._by_type.get(resource_type.lower(), {}).items() if key.startswith(prefix)]

    def count(self, resource_type: str) -> int:
        """How many resources of one type there are (``len(of_type(...))`` without building the list)."""
        with self._lock:
            return len(self._by_type.get(resource_type.lower(), {}))

    def type_version(self, resource_type: str) -> int:
        """A count of the changes to resources of ``resource_type``: equal twice, nothing of that type changed between."""
        return self._type_versions.get(resource_type.lower(), 0)

    def find_many(self, resource_ids: Iterable[str]) -> list[ArmResource]:
        """The resources of ``resource_ids`` that exist, in creation order (as iterating the store meets them)."""
        with self._lock:
            keys = {resource_id.lower().rstrip("/") for resource_id in resource_ids}
            found = [key for key in keys if key in self._resources]
            found.sort(key=self._position.__getitem__)
            return [self._resources[key] for key in found]

    def children(self, resource_type: str, parent_id: str) -> list[ArmResource]:
        """The child resources of one type directly below ``parent_id`` (a Batch account's pools), in creation order."""
        with self._lock:
            return list(self._children.get((resource_type.lower(), parent_id.lower().rstrip("/")), {}).values())

    def __iter__(self) -> Iterator[ArmResource]:
        with self._lock:
            return iter(list(self._resources.values()))


def _parent_key(key: str) -> str:
    """The id a nested resource's own two segments hang from (``.../batchAccounts/a`` for ``.../batchAccounts/a/pools/p``)."""
    return key.rsplit("/", 2)[0]


def _not_found_message(resource_id: str) -> str:
    try:
        parts = parse_resource_id(resource_id)
    except (ValueError, KeyError):
        return f"The Resource '{resource_id}' was not found."
    kind = "/".join(str(p) for p in (parts.get("namespace"), parts.get("type"), parts.get("name")) if p)
    return (
        f"The Resource '{kind}' under resource group '{parts.get('resource_group')}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )
