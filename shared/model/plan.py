"""What a request creates, and the ARM body of each step.

The plan is made once at intake and stored with the request; every later step
reads it back through :attr:`shared.store.ledger.RequestRecord.plan`. Bodies are
built here, from the plan and the request alone (no I/O), so what the pipeline
sends is visible and testable in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import isodate

from ..arm.ids import BATCH_POOL, GALLERY_IMAGE, GALLERY_IMAGE_VERSION, IMAGE, SNAPSHOT, ArmId, parse_arm_id
from ..arm.pools import metadata_items
from ..naming import (
    MAX_REGIONAL_REPLICAS,
    METADATA_REQUEST,
    METADATA_TARGET_DEDICATED,
    METADATA_TARGET_LOW_PRIORITY,
    NODES_PER_REPLICA,
    request_tags,
)
from .request import PoolRequest


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

    @property
    def image_lineage(self) -> tuple[str, ...]:
        """What the pool's image is made from: the managed image behind a version, then the snapshots."""
        lineage = [self.image.id] if self.image_version is not None and self.image is not None else []
        return tuple(lineage + [s.snapshot.id for s in self.snapshots])

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
    def from_details(cls, request_id: str, details: dict) -> ResourcePlan:
        """The plan as :meth:`to_details` stored it."""

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


def replica_count(total_target_nodes: int) -> int:
    """Gallery replicas for a pool of this size: one per 300 nodes, at least one, within the gallery maximum."""
    return min(MAX_REGIONAL_REPLICAS, max(1, math.ceil(total_target_nodes / NODES_PER_REPLICA)))


# -- ARM bodies, one per step --------------------------------------------------------


def snapshot_body(plan: ResourcePlan, planned: PlannedSnapshot) -> dict[str, Any]:
    """PUT Microsoft.Compute/snapshots: a full copy of one disk."""
    role = "os-snapshot" if planned.lun is None else f"data-snapshot-lun{planned.lun}"
    return {
        "location": plan.location,
        "tags": request_tags(plan.request_id, role),
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": planned.source_disk_id}, "incremental": False},
    }


def image_body(plan: ResourcePlan, request: PoolRequest, os_type: str) -> dict[str, Any]:
    """PUT Microsoft.Compute/images: a generalized managed image from the snapshots."""
    os_snapshot = next(s for s in plan.snapshots if s.lun is None)
    data_snapshots = sorted((s for s in plan.snapshots if s.lun is not None), key=lambda s: s.lun or 0)
    return {
        "location": plan.location,
        "tags": request_tags(plan.request_id, "managed-image"),
        "properties": {
            "hyperVGeneration": request.image.hyper_v_generation,
            "storageProfile": {
                "osDisk": {"osType": os_type, "osState": "Generalized", "snapshot": {"id": os_snapshot.snapshot.id}},
                "dataDisks": [{"lun": s.lun, "snapshot": {"id": s.snapshot.id}} for s in data_snapshots],
            },
        },
    }


def image_definition_body(plan: ResourcePlan, request: PoolRequest, os_type: str) -> dict[str, Any]:
    """PUT Microsoft.Compute/galleries/images: the definition the version is published into."""
    assert plan.image_definition is not None
    return {
        "location": plan.location,
        "tags": request_tags(plan.request_id, "image-definition"),
        "properties": {
            "osType": os_type,
            "osState": "Generalized",
            "hyperVGeneration": request.image.hyper_v_generation,
            "identifier": {"publisher": "custom-image-pools", "offer": plan.image_definition.name, "sku": plan.request_id},
            "description": f"Custom image for Batch pool {plan.pool.name}",
        },
    }


def image_version_body(plan: ResourcePlan) -> dict[str, Any]:
    """PUT Microsoft.Compute/galleries/images/versions: the managed image, replicated for the pool's size."""
    assert plan.image is not None
    return {
        "location": plan.location,
        "tags": request_tags(plan.request_id, "image-version"),
        "properties": {
            "publishingProfile": {
                "targetRegions": [{"name": plan.location, "regionalReplicaCount": plan.replica_count}],
                "replicaCount": plan.replica_count,
            },
            "storageProfile": {"source": {"id": plan.image.id}},
        },
    }


def pool_metadata(plan: ResourcePlan, request: PoolRequest) -> dict[str, str]:
    """The requester's metadata plus the keys that tie the pool to its request and targets."""
    return {
        **request.pool.metadata,
        METADATA_REQUEST: plan.request_id,
        METADATA_TARGET_DEDICATED: str(request.pool.target_dedicated_nodes),
        METADATA_TARGET_LOW_PRIORITY: str(request.pool.target_low_priority_nodes),
    }


def pool_body(plan: ResourcePlan, request: PoolRequest) -> dict[str, Any]:
    """PUT Microsoft.Batch/batchAccounts/pools: a fixed-scale pool on the plan's image."""
    settings = request.pool
    return {
        "properties": {
            "vmSize": settings.vm_size,
            "deploymentConfiguration": {
                "virtualMachineConfiguration": {
                    "imageReference": {"id": plan.pool_image_id},
                    "nodeAgentSkuId": settings.node_agent_sku_id,
                }
            },
            "scaleSettings": {
                "fixedScale": {
                    "targetDedicatedNodes": settings.target_dedicated_nodes,
                    "targetLowPriorityNodes": settings.target_low_priority_nodes,
                    "resizeTimeout": iso_duration(settings.resize_timeout),
                }
            },
            "metadata": metadata_items(pool_metadata(plan, request)),
        }
    }


def iso_duration(value: timedelta) -> str:
    """A timedelta as ISO 8601 (``PT25M``), the way Batch takes durations."""
    return isodate.duration_isoformat(value)
