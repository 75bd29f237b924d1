"""Routing of ARM events to the requests they concern.

An event is a hint: it names a resource; the request is found from the
resource's deterministic name (no ARM call) or, for pools and versions in
shared definitions, from the resource's own metadata or tags. Events about
anything else are ignored without an ARM call and without raising.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from ..arm.events import ArmEvent
from ..arm.ids import BATCH_POOL, GALLERY_IMAGE, GALLERY_IMAGE_VERSION, IMAGE, SNAPSHOT, ArmId, try_parse
from ..eventfacts.probe import probe_of, record_probe_event
from ..gateway.protocol import AzureGateway, BatchGateway, ComputeGateway, LockGateway
from ..naming import LOCK_NAME, TAG_REQUEST, request_id_from_image_name, request_id_from_snapshot_name
from ..protection.alerts import ProtectionAlerts
from ..protection.locks import forget_lock, lock_scope, recorded_request, release
from ..settings import Settings
from ..store.ledger import Ledger, RequestNotFound, RequestRecord, Stage
from ..store.records import RecordStore
from .stages import PoolPipeline

log = logging.getLogger(__name__)

_PIPELINE_TYPES = {t.lower(): t for t in (SNAPSHOT, IMAGE, GALLERY_IMAGE, GALLERY_IMAGE_VERSION, BATCH_POOL)}
_PROTECTED_TYPES = {t.lower(): t for t in (SNAPSHOT, IMAGE, GALLERY_IMAGE_VERSION)}
_LOCK_TYPE = "microsoft.authorization/locks"


def handle_resource_event(event: ArmEvent, *, ledger: Ledger, records: RecordStore, gateway: AzureGateway,
                          pipeline: Callable[[], PoolPipeline], protection_alerts: Callable[[], ProtectionAlerts], settings: Settings,
                          now: Callable[[], datetime]) -> RequestRecord | None:
    """Advance the request an ARM write event concerns, or react to a delete; None when no request moved.

    ``pipeline`` and ``protection_alerts`` are built only for an event that concerns a request or a
    protected resource: most events a subscription's topic delivers concern neither.
    """
    if not event.is_resource_event:
        return None
    probe = probe_of(event)
    if probe is not None:
        # An event probe's resource: recorded for the probe to read, and nothing else.
        record_probe_event(records, probe, event, event.event_time, now())
        return None
    if event.action == "Delete":
        handle_delete_event(event, ledger=ledger, records=records, locks=gateway.locks, pipeline=pipeline,
                            protection_alerts=protection_alerts, keep_locks=settings.keep_image_locks)
        return None
    if event.action != "Write":
        return None
    resource_type = _PIPELINE_TYPES.get(event.resource_type)
    if resource_type is None:
        return None
    resource = try_parse(event.resource_id, resource_type)
    if resource is None:
        return None
    request_id = _request_id(resource, records, gateway.compute, gateway.batch, settings.allowed_scopes)
    if request_id is None:
        return None
    try:
        record = ledger.get(request_id)
        if resource.resource_type == GALLERY_IMAGE_VERSION and not _plans_version(record, resource):
            # A version in a definition named after another request (a refresh publishes into its pool's own
            # definition): the version's own tag says whose it is.
            version = gateway.compute.image_version(resource)
            tagged = version.tags.get(TAG_REQUEST) if version is not None else None
            if not tagged or tagged == request_id:
                return None
            record = ledger.get(tagged)
    except RequestNotFound:
        log.info("event %s names request %s, which the ledger does not know", event.id, request_id)
        return None
    return pipeline().drive(record, hint=resource.id)


def _plans_version(record: RequestRecord, version: ArmId) -> bool:
    """Whether ``record``'s plan publishes (or reuses) ``version``."""
    plan = record.plan
    return plan is not None and plan.image_version is not None and plan.image_version.key() == version.key()


def handle_delete_event(event: ArmEvent, *, ledger: Ledger, records: RecordStore, locks: LockGateway, pipeline: Callable[[], PoolPipeline],
                        protection_alerts: Callable[[], ProtectionAlerts], keep_locks: bool) -> None:
    """Protection and alerts for a delete: of a pool (release its image), of a protected resource, of our lock.

    Routing is by the event alone; the only read for an event that may matter
    is one point read of the usage record in the ledger's store (no ARM call):
    ARM calls happen only when a recorded pool uses the resource.
    """
    resource_type = event.resource_type
    if resource_type == _LOCK_TYPE:
        scoped = lock_scope(event.resource_id)
        if scoped is not None and event.outcome == "Success":
            protection_alerts().on_protection_removed(event.resource_id, *scoped)
            if scoped[1].lower() == LOCK_NAME:
                forget_lock(records, scoped[0])
        return
    if resource_type == BATCH_POOL.lower():
        pool = try_parse(event.resource_id, BATCH_POOL)
        if pool is not None and event.outcome == "Success":
            release(records, locks, pool.id, keep_locks=keep_locks)
            _fail_request_of_deleted_pool(ledger, pipeline(), pool)
        return
    if resource_type not in _PROTECTED_TYPES:
        return
    resource = try_parse(event.resource_id, _PROTECTED_TYPES[resource_type])
    if resource is None:
        return
    if event.outcome == "Success":
        protection_alerts().on_resource_deleted(resource.id)
    elif event.outcome == "Failure":
        protection_alerts().on_deletion_blocked(resource.id)


def _fail_request_of_deleted_pool(ledger: Ledger, pipeline: PoolPipeline, pool: ArmId) -> None:
    """A request still growing, creating or refreshing the deleted pool will never be READY: it ends FAILED, answered."""
    for record in ledger.list_in_stages((Stage.SCALING, Stage.CREATING_POOL, Stage.REFRESHING)):
        if record.plan is not None and record.plan.pool.key() == pool.key():
            pipeline.finish(record, Stage.FAILED, f"pool {pool.id} was deleted before it reached its target", owns_subject=False)


def _request_id(resource: ArmId, records: RecordStore, compute: ComputeGateway, batch: BatchGateway, allowed_scopes: tuple[str, ...]) -> str | None:
    from_name = _request_id_from_name(resource)
    if from_name is not None:
        return from_name
    if not any(resource.is_within(scope) for scope in allowed_scopes):
        return None
    if resource.resource_type == GALLERY_IMAGE:
        definition = compute.image_definition(resource)
        return definition.tags.get(TAG_REQUEST) if definition is not None else None
    if resource.resource_type == GALLERY_IMAGE_VERSION:
        from_definition = request_id_from_image_name(resource.parent().name)
        if from_definition is not None:
            return from_definition
        version = compute.image_version(resource)
        return version.tags.get(TAG_REQUEST) if version is not None else None
    if resource.resource_type == BATCH_POOL:
        # A pool already protected names its request in the usage records: its later writes (resizes) cost no read.
        recorded = recorded_request(records, resource.id)
        if recorded is not None:
            return recorded
        pool = batch.pool(resource)
        return pool.request_id if pool is not None else None
    return None


def _request_id_from_name(resource: ArmId) -> str | None:
    if resource.resource_type == SNAPSHOT:
        return request_id_from_snapshot_name(resource.name)
    if resource.resource_type in (IMAGE, GALLERY_IMAGE):
        return request_id_from_image_name(resource.name)
    return None
