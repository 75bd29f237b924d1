"""Route table for Microsoft.Compute."""

from __future__ import annotations

from ..router import Route
from . import models
from . import responses as r

_RG = "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
_GALLERY = _RG + "/galleries/{gallery}"
_LOCATION_OPS = "/subscriptions/{subscription}/providers/Microsoft.Compute/locations/{location}"

ROUTES = [
    Route("GET", _RG + "/virtualMachines/{name}", models.VIRTUAL_MACHINE, r.get_virtual_machine),
    Route("GET", _RG + "/disks/{name}", models.DISK, r.get_disk),
    Route("PUT", _RG + "/disks/{name}", models.DISK, r.put_disk),
    Route("DELETE", _RG + "/disks/{name}", models.DISK, r.delete_disk),
    Route("GET", _RG + "/snapshots", models.SNAPSHOT, r.list_snapshots),
    Route("GET", _RG + "/snapshots/{name}", models.SNAPSHOT, r.get_snapshot),
    Route("PUT", _RG + "/snapshots/{name}", models.SNAPSHOT, r.put_snapshot),
    Route("DELETE", _RG + "/snapshots/{name}", models.SNAPSHOT, r.delete_snapshot),
    Route("GET", _RG + "/images", models.IMAGE, r.list_images),
    Route("GET", _RG + "/images/{name}", models.IMAGE, r.get_image),
    Route("PUT", _RG + "/images/{name}", models.IMAGE, r.put_image),
    Route("DELETE", _RG + "/images/{name}", models.IMAGE, r.delete_image),
    Route("GET", _RG + "/galleries", models.GALLERY, r.list_galleries),
    Route("GET", _GALLERY, models.GALLERY, r.get_gallery),
    Route("PUT", _GALLERY, models.GALLERY, r.put_gallery),
    Route("DELETE", _GALLERY, models.GALLERY, r.delete_gallery),
    Route("GET", _GALLERY + "/images", models.GALLERY_IMAGE, r.list_gallery_images),
    Route("GET", _GALLERY + "/images/{image}", models.GALLERY_IMAGE, r.get_gallery_image),
    Route("PUT", _GALLERY + "/images/{image}", models.GALLERY_IMAGE, r.put_gallery_image),
    Route("DELETE", _GALLERY + "/images/{image}", models.GALLERY_IMAGE, r.delete_gallery_image),
    Route("GET", _GALLERY + "/images/{image}/versions", models.GALLERY_IMAGE_VERSION, r.list_gallery_image_versions),
    Route("GET", _GALLERY + "/images/{image}/versions/{version}", models.GALLERY_IMAGE_VERSION, r.get_gallery_image_version),
    Route("PUT", _GALLERY + "/images/{image}/versions/{version}", models.GALLERY_IMAGE_VERSION, r.put_gallery_image_version),
    Route("DELETE", _GALLERY + "/images/{image}/versions/{version}", models.GALLERY_IMAGE_VERSION, r.delete_gallery_image_version),
    Route("GET", _LOCATION_OPS + "/operations/{operation_id}", "Microsoft.Compute/locations/operations", r.get_operation_status, emits_events=False),
    Route("GET", _LOCATION_OPS + "/operationResults/{operation_id}", "Microsoft.Compute/locations/operationResults", r.get_operation_result, emits_events=False),
]
