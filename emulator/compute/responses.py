"""HTTP handlers for Microsoft.Compute: parse the call, hand it to the backend. No logic."""

from __future__ import annotations

from ..http import ArmRequest, ArmResponse
from ..paging import page
from . import models


def _get(resource_type: str):
    def handler(emulator, request: ArmRequest, **_: str) -> ArmResponse:
        return ArmResponse(200, emulator.compute.get(request.path, resource_type).to_dict())

    return handler


def _delete(resource_type: str):
    def handler(emulator, request: ArmRequest, **_: str) -> ArmResponse:
        return emulator.compute.delete(request.path, resource_type, url=request.url, api_version=request.query["api-version"])

    return handler


def _list(resource_type: str):
    def handler(emulator, request: ArmRequest, **_: str) -> ArmResponse:
        # Children of a gallery (definitions) or of a definition (versions) are listed below their parent; the rest by resource group.
        if resource_type == models.GALLERY_IMAGE_VERSION:
            scope = request.path.rsplit("/versions", 1)[0]
        elif resource_type == models.GALLERY_IMAGE:
            scope = request.path.rsplit("/images", 1)[0]
        else:
            scope = request.path.rsplit("/providers/", 1)[0]
        return page(request, emulator.compute.list(resource_type, scope), emulator.page_size, lambda r: r.to_dict())

    return handler


def _put(backend_method: str):
    def handler(emulator, request: ArmRequest, **_: str) -> ArmResponse:
        put = getattr(emulator.compute, backend_method)
        return put(request.path.rstrip("/"), request.json(), url=request.url, api_version=request.query["api-version"])

    return handler


def get_virtual_machine(emulator, request: ArmRequest, **_: str) -> ArmResponse:
    return ArmResponse(200, emulator.compute.get_virtual_machine(request.path, expand=request.query.get("$expand")))


get_disk = _get(models.DISK)
get_snapshot = _get(models.SNAPSHOT)
get_image = _get(models.IMAGE)
get_gallery = _get(models.GALLERY)
get_gallery_image = _get(models.GALLERY_IMAGE)
get_gallery_image_version = _get(models.GALLERY_IMAGE_VERSION)

put_snapshot = _put("put_snapshot")
put_disk = _put("put_disk")
put_image = _put("put_image")
put_gallery = _put("put_gallery")
put_gallery_image = _put("put_gallery_image")
put_gallery_image_version = _put("put_gallery_image_version")

delete_snapshot = _delete(models.SNAPSHOT)
delete_disk = _delete(models.DISK)
delete_image = _delete(models.IMAGE)
delete_gallery = _delete(models.GALLERY)
delete_gallery_image = _delete(models.GALLERY_IMAGE)
delete_gallery_image_version = _delete(models.GALLERY_IMAGE_VERSION)

list_snapshots = _list(models.SNAPSHOT)
list_images = _list(models.IMAGE)
list_galleries = _list(models.GALLERY)
list_gallery_images = _list(models.GALLERY_IMAGE)
list_gallery_image_versions = _list(models.GALLERY_IMAGE_VERSION)


def get_operation_status(emulator, request: ArmRequest, operation_id: str, **_: str) -> ArmResponse:
    return ArmResponse(200, emulator.operation(operation_id).status_body())


def get_operation_result(emulator, request: ArmRequest, operation_id: str, **_: str) -> ArmResponse:
    operation = emulator.operation(operation_id)
    if not operation.done:
        return ArmResponse(202, None, {"Retry-After": "10", "Location": request.url})
    return ArmResponse(204)
