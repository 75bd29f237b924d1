"""Every name the project gives or reserves in Azure: resource names, tags, pool metadata, locks.

Deterministic names make every step idempotent (a second PUT finds the first
one's resource) and let an event's subject alone say which request it is about,
without an ARM call. Tags and pool metadata link each resource back as well,
so the state can be rebuilt from Azure. Every ``cip-`` string lives here.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta

NAME_PREFIX = "cip-"
# A request id names the request's snapshots, image and definition (cip-<requestId>...): lower case letters,
# digits and hyphens, at most 40, so every name it makes is a valid Azure resource name and Table Storage key.
REQUEST_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$|^[a-z0-9]$"

# Tags on every resource a request creates.
TAG_REQUEST = "cip-request"
TAG_ROLE = "cip-role"

# Batch pool metadata: the request that made the pool and the targets the guard keeps it at.
METADATA_REQUEST = "cip-request"
METADATA_TARGET_DEDICATED = "cip-target-dedicated"
METADATA_TARGET_LOW_PRIORITY = "cip-target-low-priority"
# The guard's memory between sweeps (JSON), kept on the pool so it is rebuilt from Azure.
METADATA_GUARD_STATE = "cip-guard-state"
# An operator re-arms a pool whose circuit breaker is open by setting this to any new value.
METADATA_GUARD_REARM = "cip-guard-rearm"

# The CanNotDelete lock on every resource a pool depends on. Only locks whose
# notes start with the marker are ever removed, so a lock someone else placed stays.
LOCK_NAME = "cip-protect"
LOCK_NOTES_MARKER = "custom-image-pools:"

# Azure Batch limits for managed-image pools: nodes across all pools sharing
# the image lineage (Batch docs, "Use a managed image to create a custom image pool").
MAX_DEDICATED_NODES_PER_IMAGE = 2500
MAX_LOW_PRIORITY_NODES_PER_IMAGE = 1000
# Batch retired custom-image pools made straight from a managed image on this day (Batch docs,
# batch-custom-image-pools-to-azure-compute-gallery-migration-guide): the gallery is the only path.
LEGACY_POOLS_RETIRED = "2026-03-31"
# One gallery replica serves about 300 pool nodes (Batch docs, batch-sig-images).
NODES_PER_REPLICA = 300
# Batch docs (batch-sig-images): for large gallery pools, at least 15 minutes of resize timeout per 1,000 VMs.
RESIZE_TIMEOUT_PER_1000_NODES = timedelta(minutes=15)
# Compute Gallery (azure-docs, virtual-machines/azure-compute-gallery.md): "you can have a maximum of 50 replicas per
# region" (best practices) and "There's a limit of 100 replicas per image version" (limits).
MAX_REGIONAL_REPLICAS = 50
MAX_VERSION_REPLICAS = 100

_SNAPSHOT_NAME = re.compile(r"^cip-(?P<request>[a-z0-9-]+)-(?:os|lun\d+)$", re.IGNORECASE)
_REQUEST_NAME = re.compile(r"^cip-(?P<request>[a-z0-9-]+)$", re.IGNORECASE)


# The resources ``python -m cli verify --probe-events`` makes: a period never appears in a request id, so a
# probe's names can never be a request's (cip-<request>...) and its events never move a request.
PROBE_NAME_PREFIX = "cip.event-probe."
PROBE_LOCK_NAME = "cip-event-probe"
_PROBE_RESOURCE = re.compile(r"/providers/Microsoft\.Compute/(?:snapshots|disks)/cip\.event-probe\.(?P<probe>[a-z0-9-]+)(?:\.disk)?(?:/|$)",
                             re.IGNORECASE)


def probe_snapshot_name(probe_id: str) -> str:
    """The snapshot an event probe creates, locks and deletes."""
    return f"{PROBE_NAME_PREFIX}{probe_id}"


def probe_disk_name(probe_id: str) -> str:
    """The empty managed disk an event probe snapshots."""
    return f"{PROBE_NAME_PREFIX}{probe_id}.disk"


def probe_id_from_resource(resource_id: str) -> str | None:
    """The probe a resource (or a lock on it) belongs to; None if it is not a probe's."""
    found = _PROBE_RESOURCE.search(resource_id)
    return found["probe"].lower() if found else None


def snapshot_name(request_id: str, lun: int | None) -> str:
    """The snapshot of the OS disk (``lun`` None) or of the data disk at ``lun``."""
    return f"{NAME_PREFIX}{request_id}-{'os' if lun is None else f'lun{lun}'}"


def image_name(request_id: str) -> str:
    """The managed image, and the default gallery image definition, of a request."""
    return f"{NAME_PREFIX}{request_id}"


def image_version_name(request_id: str, submitted_at: datetime) -> str:
    """``Major.Minor.Patch`` that grows with the request's submission time: ``YYYYMMDD.HHMMSS.mmmNNNNNN``.

    Batch takes the highest version when a pool names a definition without one, so a newer request
    must sort higher in a shared definition. Each part fits a 32-bit integer, as the gallery requires
    (Compute REST, GalleryImageVersions_CreateOrUpdate: "Digits must be within the range of a 32-bit
    integer"). The milliseconds and six digits of the request id's CRC keep two requests of the same
    second apart; the submission time is the message's, so a redelivery names the same version.
    """
    moment = submitted_at.astimezone(UTC)
    patch = (moment.microsecond // 1000) * 1_000_000 + zlib.crc32(request_id.encode()) % 1_000_000
    return f"{moment:%Y%m%d}.{int(moment.strftime('%H%M%S'))}.{patch}"


def request_tags(request_id: str, role: str) -> dict[str, str]:
    """The tags that link a resource back to its request."""
    return {TAG_REQUEST: request_id, TAG_ROLE: role}


def request_id_from_snapshot_name(name: str) -> str | None:
    """The request a snapshot belongs to, from its :func:`snapshot_name`; None if not ours."""
    found = _SNAPSHOT_NAME.match(name)
    return found["request"].lower() if found else None


def request_id_from_image_name(name: str) -> str | None:
    """The request a managed image or image definition belongs to, from its :func:`image_name`; None if not ours."""
    found = _REQUEST_NAME.match(name)
    return found["request"].lower() if found else None
