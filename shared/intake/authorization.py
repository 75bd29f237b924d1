"""May this request make the function act on these resources?

The function's identity can snapshot disks and create pools, so every resource
id a request names must be a canonical id of the expected type and sit inside
one of the configured allowed scopes (subscriptions, resource groups, Batch
accounts), compared case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arm.ids import (
    BATCH_ACCOUNT,
    BATCH_POOL,
    GALLERY,
    GALLERY_IMAGE_VERSION,
    IMAGE,
    SNAPSHOT,
    VIRTUAL_MACHINE,
    ArmId,
    ArmIdError,
    parse_arm_id,
)
from ..errors import PermanentError
from ..model.request import ImageRequest


class NotAuthorised(PermanentError, ValueError):
    """The request names a resource outside the allowed scopes (or a malformed id)."""


@dataclass(frozen=True)
class RequestIds:
    """Every resource id a request names, parsed and authorised; None (or empty) where it names none."""

    batch_account: ArmId
    virtual_machine: ArmId | None = None
    os_disk_snapshot: ArmId | None = None
    # In the order of ``source.snapshots.dataDisks``.
    data_disk_snapshots: tuple[ArmId, ...] = ()
    managed_image: ArmId | None = None
    gallery_image_version: ArmId | None = None
    gallery: ArmId | None = None
    # A refresh's pool (its account is ``batch_account``).
    pool: ArmId | None = None


def _expected_type(field_path: str) -> str:
    if field_path.startswith("source.snapshots"):
        return SNAPSHOT
    return {
        "source.virtualMachineId": VIRTUAL_MACHINE,
        "source.managedImageId": IMAGE,
        "source.galleryImageVersionId": GALLERY_IMAGE_VERSION,
        "image.galleryId": GALLERY,
        "pool.batchAccountId": BATCH_ACCOUNT,
        "refresh.poolId": BATCH_POOL,
    }[field_path]


def authorise(request: ImageRequest, allowed_scopes: tuple[str, ...]) -> RequestIds:
    """Parse every id the request names and check it against ``allowed_scopes``.

    The first problem raises :class:`NotAuthorised` naming the field and the rule.
    """
    parsed, problems = check_ids(request, allowed_scopes)
    if problems:
        raise NotAuthorised(problems[0])
    return _request_ids(request, parsed)


def check_ids(request: ImageRequest, allowed_scopes: tuple[str, ...] | None) -> tuple[dict[str, ArmId], list[str]]:
    """Every id the request names, parsed as its field's type, and every problem (``field: rule``), in field order.

    ``allowed_scopes`` None checks the ids' shapes and types only (the command line without ``ALLOWED_SCOPES``).
    """
    parsed: dict[str, ArmId] = {}
    problems: list[str] = []
    for field_path, value in request.resource_ids().items():
        try:
            arm_id = parse_arm_id(value, _expected_type(field_path))
        except ArmIdError as exc:
            problems.append(f"{field_path}: {exc}")
            continue
        if allowed_scopes is not None and not any(arm_id.is_within(scope) for scope in allowed_scopes):
            problems.append(f"{field_path}: {value} is outside the allowed scopes")
            continue
        parsed[field_path] = arm_id
    return parsed, problems


def _request_ids(request: ImageRequest, parsed: dict[str, ArmId]) -> RequestIds:
    """The ids :func:`check_ids` parsed, by what each is to the request."""
    data_disks = request.source.snapshots.data_disks if request.source.snapshots is not None else []
    pool = parsed.get("refresh.poolId")
    return RequestIds(
        batch_account=pool.parent() if pool is not None else parsed["pool.batchAccountId"],
        pool=pool,
        virtual_machine=parsed.get("source.virtualMachineId"),
        os_disk_snapshot=parsed.get("source.snapshots.osDiskSnapshotId"),
        data_disk_snapshots=tuple(parsed[f"source.snapshots.dataDisks[{index}].snapshotId"] for index in range(len(data_disks))),
        managed_image=parsed.get("source.managedImageId"),
        gallery_image_version=parsed.get("source.galleryImageVersionId"),
        gallery=parsed.get("image.galleryId"),
    )
