"""Microsoft.Compute through ``azure-mgmt-compute``: the only code that calls its operations."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..arm.ids import ArmId
from ..arm.views import GalleryView, ImageDefinitionView, ImageVersionView, ImageView, SnapshotView, VirtualMachineView
from .failures import Waiting, read_view, send
from .protocol import ArmBody

if TYPE_CHECKING:
    from azure.mgmt.compute import ComputeManagementClient

    from ..clients import AzureClients

# What ARM returns in a gallery image version but refuses (or ignores) in its PUT body.
_VERSION_READ_ONLY = ("provisioningState", "replicationStatus")


class SdkCompute:
    """:class:`~shared.gateway.protocol.ComputeGateway` on the per-subscription Compute clients.

    Long-running PUTs are sent with ``polling=False``: the pipeline learns of their end from events and reads.
    """

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    def _client(self, resource: ArmId) -> ComputeManagementClient:
        return self._clients.compute(resource.subscription)

    def virtual_machine(self, vm: ArmId) -> VirtualMachineView | None:
        # With its instance view: the VM's Hyper-V generation, power state and whether it was generalized, in the same call.
        return read_view(f"read VM {vm.name}", lambda: self._client(vm).virtual_machines.get(vm.resource_group, vm.name, expand="instanceView"),
                         VirtualMachineView.from_sdk)

    def snapshot(self, snapshot: ArmId) -> SnapshotView | None:
        return read_view(f"read snapshot {snapshot.name}", lambda: self._client(snapshot).snapshots.get(snapshot.resource_group, snapshot.name),
                         SnapshotView.from_sdk)

    def create_snapshot(self, snapshot: ArmId, body: ArmBody) -> Waiting | None:
        return send(f"create snapshot {snapshot.name}", lambda: self._client(snapshot).snapshots.begin_create_or_update(
            snapshot.resource_group, snapshot.name, _json(body), polling=False))

    def image(self, image: ArmId) -> ImageView | None:
        return read_view(f"read image {image.name}", lambda: self._client(image).images.get(image.resource_group, image.name), ImageView.from_sdk)

    def create_image(self, image: ArmId, body: ArmBody) -> Waiting | None:
        return send(f"create image {image.name}", lambda: self._client(image).images.begin_create_or_update(
            image.resource_group, image.name, _json(body), polling=False))

    def gallery(self, gallery: ArmId) -> GalleryView | None:
        return read_view(f"read gallery {gallery.name}", lambda: self._client(gallery).galleries.get(gallery.resource_group, gallery.name),
                         GalleryView.from_sdk)

    def image_definition(self, definition: ArmId) -> ImageDefinitionView | None:
        gallery, name = definition.names
        return read_view(f"read gallery image definition {name}",
                         lambda: self._client(definition).gallery_images.get(definition.resource_group, gallery, name), ImageDefinitionView.from_sdk)

    def create_image_definition(self, definition: ArmId, body: ArmBody) -> Waiting | None:
        gallery, name = definition.names
        return send(f"create gallery image definition {name}", lambda: self._client(definition).gallery_images.begin_create_or_update(
            definition.resource_group, gallery, name, _json(body), polling=False))

    def image_version(self, version: ArmId) -> ImageVersionView | None:
        gallery, definition, name = version.names
        return read_view(f"read gallery image version {name}",
                         lambda: self._client(version).gallery_image_versions.get(version.resource_group, gallery, definition, name),
                         ImageVersionView.from_sdk)

    def create_image_version(self, version: ArmId, body: ArmBody) -> Waiting | None:
        return self._put_version(version, f"create gallery image version {version.name}", body)

    def replicate_image_version(self, version: ArmId, as_read: ImageVersionView, regions: Sequence[tuple[str, int]]) -> Waiting | None:
        body = _as_read(as_read)
        body["properties"].setdefault("publishingProfile", {})["targetRegions"] = [
            {"name": name, "regionalReplicaCount": count} for name, count in regions]
        return self._put_version(version, f"replicate gallery image version {version.name}", body)

    def retire_image_version(self, version: ArmId, as_read: ImageVersionView, end_of_life: datetime) -> Waiting | None:
        body = _as_read(as_read)
        publishing = body["properties"].setdefault("publishingProfile", {})
        publishing["excludeFromLatest"] = True
        publishing["endOfLifeDate"] = end_of_life.isoformat()
        return self._put_version(version, f"retire gallery image version {version.name}", body)

    def _put_version(self, version: ArmId, description: str, body: ArmBody) -> Waiting | None:
        gallery, definition, name = version.names
        return send(description, lambda: self._client(version).gallery_image_versions.begin_create_or_update(
            version.resource_group, gallery, definition, name, _json(body), polling=False))


def _as_read(version: ImageVersionView) -> dict[str, Any]:
    """A version's body as read, less what ARM returns but refuses in a PUT: what a change of it is sent back as."""
    body: dict[str, Any] = copy.deepcopy(dict(version.body))
    properties = body.setdefault("properties", {})
    for read_only in _VERSION_READ_ONLY:
        properties.pop(read_only, None)
    return body


def _json(body: ArmBody) -> Any:
    """A REST-shaped body for an SDK operation: the operations send JSON as given, though their stubs name only models."""
    return dict(body)
