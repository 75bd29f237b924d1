"""What a request creates, named deterministically from its id.

Deterministic names make every step idempotent (a second PUT finds the first
one's resource) and let an event's subject alone say which request it is about,
without an ARM call. Tags and pool metadata link each resource back as well,
so the state can be rebuilt from Azure.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

from .arm_ids import BATCH_POOL, GALLERY_IMAGE, GALLERY_IMAGE_VERSION, IMAGE, SNAPSHOT, ArmId, parse_arm_id

NAME_PREFIX = "cip-"
TAG_REQUEST = "cip-request"
TAG_ROLE = "cip-role"
METADATA_REQUEST = "cip-request"
METADATA_TARGET_DEDICATED = "cip-target-dedicated"
METADATA_TARGET_LOW_PRIORITY = "cip-target-low-priority"
# One replica serves about 300 pool nodes (Batch custom-image guidance).
NODES_PER_REPLICA = 300
MAX_REGIONAL_REPLICAS = 100

_SNAPSHOT_NAME = re.compile(r"^cip-(?P<request>[a-z0-9-]+)-(?:os|lun\d+)$", re.IGNORECASE)
_REQUEST_NAME = re.compile(r"^cip-(?P<request>[a-z0-9-]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class PlannedSnapshot:
    """A snapshot of one disk (``lun`` None for the OS disk)."""

    snapshot: ArmId
    lun: int | None
    source_disk_id: str | None  # None when the request brought the snapshot


@dataclass(frozen=True)
class ResourcePlan:
    """Every resource of one request, from snapshots to pool."""

    request_id: str
    location: str
    snapshots: tuple[PlannedSnapshot, ...]
    image: ArmId | None
    image_definition: ArmId | None
    image_version: ArmId | None
    pool: ArmId
    replica_count: int

    @property
    def pool_image_id(self) -> str:
        """What the pool's ``imageReference.id`` points at."""
        chosen = self.image_version or self.image
        assert chosen is not None, "a plan always has an image for its pool"
        return chosen.id

    def to_details(self) -> dict:
        """JSON-able form for the ledger."""
        return {
            "location": self.location,
            "snapshots": [
                {"id": s.snapshot.id, "lun": s.lun, "sourceDiskId": s.source_disk_id} for s in self.snapshots
            ],
            "imageId": self.image.id if self.image else None,
            "imageDefinitionId": self.image_definition.id if self.image_definition else None,
            "imageVersionId": self.image_version.id if self.image_version else None,
            "poolId": self.pool.id,
            "replicaCount": self.replica_count,
        }

    @classmethod
    def from_details(cls, request_id: str, details: dict) -> "ResourcePlan":
        def optional(value: str | None, kind: str) -> ArmId | None:
            return parse_arm_id(value, kind) if value else None

        return cls(
            request_id=request_id,
            location=details["location"],
            snapshots=tuple(
                PlannedSnapshot(parse_arm_id(s["id"], SNAPSHOT), s["lun"], s["sourceDiskId"]) for s in details["snapshots"]
            ),
            image=optional(details["imageId"], IMAGE),
            image_definition=optional(details["imageDefinitionId"], GALLERY_IMAGE),
            image_version=optional(details["imageVersionId"], GALLERY_IMAGE_VERSION),
            pool=parse_arm_id(details["poolId"], BATCH_POOL),
            replica_count=details["replicaCount"],
        )


def snapshot_name(request_id: str, lun: int | None) -> str:
    return f"{NAME_PREFIX}{request_id}-{'os' if lun is None else f'lun{lun}'}"


def image_name(request_id: str) -> str:
    return f"{NAME_PREFIX}{request_id}"


def image_version_name(request_id: str) -> str:
    """A version name unique to the request (definitions may be shared by several requests)."""
    return f"1.0.{zlib.crc32(request_id.encode()) % 2_000_000_000}"


def replica_count(total_target_nodes: int) -> int:
    """Gallery replicas for a pool of this size: one per 300 nodes, at least one, within the gallery maximum."""
    return min(MAX_REGIONAL_REPLICAS, max(1, math.ceil(total_target_nodes / NODES_PER_REPLICA)))


def request_tags(request_id: str, role: str) -> dict[str, str]:
    return {TAG_REQUEST: request_id, TAG_ROLE: role}


def request_id_from_name(resource_type: str, name: str) -> str | None:
    """The request a resource belongs to, from its deterministic name; None if not ours."""
    if resource_type.lower() == SNAPSHOT.lower():
        found = _SNAPSHOT_NAME.match(name)
    elif resource_type.lower() in (IMAGE.lower(), GALLERY_IMAGE.lower()):
        found = _REQUEST_NAME.match(name)
    else:
        return None
    return found["request"].lower() if found else None
