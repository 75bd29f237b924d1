"""Routing of ARM events to the requests they concern.

An event is a hint: it names a resource; the request is found from the
resource's deterministic name (no ARM call) or, for pools and versions in
shared definitions, from the resource's own metadata or tags. Events about
anything else are ignored without an ARM call and without raising.
"""

from __future__ import annotations

import logging

from ..arm.events import ArmEvent
from ..arm.ids import BATCH_POOL, GALLERY_IMAGE, GALLERY_IMAGE_VERSION, IMAGE, SNAPSHOT, ArmId, try_parse
from ..dependencies import Dependencies
from ..eventfacts.probe import probe_of, record_probe_event
from ..naming import LOCK_NAME, TAG_REQUEST, request_id_from_image_name, request_id_from_snapshot_name
from ..protection import alerts as protection_alerts
from ..protection.locks import forget_lock, lock_scope, recorded_request, release
from ..store.ledger import RequestNotFound, RequestRecord, Stage
from .stages import PoolPipeline

log = logging.getLogger(__name__)

_PIPELINE_TYPES = {t.lower(): t for t in (SNAPSHOT, IMAGE, GALLERY_IMAGE, GALLERY_IMAGE_VERSION, BATCH_POOL)}
_PROTECTED_TYPES = {t.lower(): t for t in (SNAPSHOT, IMAGE, GALLERY_IMAGE_VERSION)}
_LOCK_TYPE = "microsoft.authorization/locks"


def handle_resource_event(event: ArmEvent, deps: Dependencies) -> RequestRecord | None:
    """Advance the request an ARM write event concerns, or react to a delete; None when no request moved."""
    if not event.is_resource_event:
        return None
    probe = probe_of(event)
    if probe is not None:
        # An event probe's resource: recorded for the probe to read, and nothing else.
        record_probe_event(deps.records, probe, event, event.event_time, deps.now())
        return None
    if event.action == "Delete":
        handle_delete_event(event, deps)
        return None
    if event.action != "Write":
        return None
    resource_type = _PIPELINE_TYPES.get(event.resource_type)
    if resource_type is None:
        return None
    resource = try_parse(event.resource_id, resource_type)
    if resource is None:
        return None
    request_id = _request_id(resource, deps)
    if request_id is None:
        return None
    try:
        record = deps.ledger.get(request_id)
    except RequestNotFound:
        log.info("event %s names request %s, which the ledger does not know", event.id, request_id)
        return None
    return PoolPipeline(deps).drive(record, hint=resource.id)


def handle_delete_event(event: ArmEvent, deps: Dependencies) -> None:
    """Protection and alerts for a delete: of a pool (release its image), of a protected resource, of our lock.

    Routing is by the event alone; the only read for an event that may matter
    is one point read of the usage record in the ledger's store (no ARM call):
    ARM calls happen only when a recorded pool uses the resource.
    """
    resource_type = event.resource_type
    if resource_type == _LOCK_TYPE:
        scoped = lock_scope(event.resource_id)
        if scoped is not None and event.outcome == "Success":
            protection_alerts.on_protection_removed(deps, event.resource_id, *scoped)
            if scoped[1].lower() == LOCK_NAME:
                forget_lock(deps, scoped[0])
        return
    if resource_type == BATCH_POOL.lower():
        pool = try_parse(event.resource_id, BATCH_POOL)
        if pool is not None and event.outcome == "Success":
            release(deps, pool.id)
            _fail_request_of_deleted_pool(deps, pool)
        return
    if resource_type not in _PROTECTED_TYPES:
        return
    resource = try_parse(event.resource_id, _PROTECTED_TYPES[resource_type])
    if resource is None:
        return
    if event.outcome == "Success":
        protection_alerts.on_resource_deleted(deps, resource.id)
    elif event.outcome == "Failure":
        protection_alerts.on_deletion_blocked(deps, resource.id)


def _fail_request_of_deleted_pool(deps: Dependencies, pool: ArmId) -> None:
    """A request still growing (or creating) the deleted pool will never be READY: it ends FAILED, answered."""
    pipeline = PoolPipeline(deps)
    for record in deps.ledger.list_in_stages((Stage.SCALING, Stage.CREATING_POOL)):
        if record.plan is not None and record.plan.pool.key() == pool.key():
            pipeline.finish(record, Stage.FAILED, f"pool {pool.id} was deleted before it reached its target", owns_subject=False)


def _request_id_from_name(resource: ArmId) -> str | None:
    if resource.resource_type == SNAPSHOT:
        return request_id_from_snapshot_name(resource.name)
    if resource.resource_type in (IMAGE, GALLERY_IMAGE):
        return request_id_from_image_name(resource.name)
    return None


def _request_id(resource: ArmId, deps: Dependencies) -> str | None:
    from_name = _request_id_from_name(resource)
    if from_name is not None:
        return from_name
    if not any(resource.is_within(scope) for scope in deps.settings.allowed_scopes):
        return None
    if resource.resource_type == GALLERY_IMAGE:
        definition = deps.gateway.compute.image_definition(resource)
        return definition.tags.get(TAG_REQUEST) if definition is not None else None
    if resource.resource_type == GALLERY_IMAGE_VERSION:
        from_definition = request_id_from_image_name(resource.parent().name)
        if from_definition is not None:
            return from_definition
        version = deps.gateway.compute.image_version(resource)
        return version.tags.get(TAG_REQUEST) if version is not None else None
    if resource.resource_type == BATCH_POOL:
        # A pool already protected names its request in the usage records: its later writes (resizes) cost no read.
        recorded = recorded_request(deps, resource.id)
        if recorded is not None:
            return recorded
        pool = deps.gateway.batch.pool(resource)
        return pool.request_id if pool is not None else None
    return None
