"""May this request make the function act on these resources?

The function's identity can snapshot disks and create pools, so every resource
id a request names must be a canonical id of the expected type and sit inside
one of the configured allowed scopes (subscriptions, resource groups, Batch
accounts), compared case-insensitively.
"""

from __future__ import annotations

from ..arm.ids import (
    BATCH_ACCOUNT,
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
from ..model.request import PoolRequest


class NotAuthorised(PermanentError, ValueError):
    """The request names a resource outside the allowed scopes (or a malformed id)."""


def _expected_type(field_path: str) -> str:
    if field_path.startswith("source.snapshots"):
        return SNAPSHOT
    return {
        "source.virtualMachineId": VIRTUAL_MACHINE,
        "source.managedImageId": IMAGE,
        "source.galleryImageVersionId": GALLERY_IMAGE_VERSION,
        "image.galleryId": GALLERY,
        "pool.batchAccountId": BATCH_ACCOUNT,
    }[field_path]


def authorise(request: PoolRequest, allowed_scopes: tuple[str, ...]) -> dict[str, ArmId]:
    """Parse every id the request names and check it against ``allowed_scopes``.

    Returns the parsed ids by field path; the first problem raises
    :class:`NotAuthorised` naming the field and the rule.
    """
    parsed: dict[str, ArmId] = {}
    for field_path, value in request.resource_ids().items():
        try:
            arm_id = parse_arm_id(value, _expected_type(field_path))
        except ArmIdError as exc:
            raise NotAuthorised(f"{field_path}: {exc}") from exc
        if not any(arm_id.is_within(scope) for scope in allowed_scopes):
            raise NotAuthorised(f"{field_path}: {value} is outside the allowed scopes")
        parsed[field_path] = arm_id
    return parsed
