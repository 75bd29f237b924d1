"""A refresh at intake: is the pool the team's, does the new image fit it, is nobody else moving it. Reads only.

Every check runs before the request is recorded (and before anything is written in Azure), as for a new pool; a
refresh that does not qualify is REJECTED naming the field and the rule. The pool is the team's when it lies inside
the allowed scopes (authorisation, before this) and either its ``cip-request`` metadata names a request of this
deployment that made (or last refreshed) this very pool, or it carries none and its account is one the guard was told
to keep (``GUARDED_BATCH_ACCOUNTS``: pools adopted by the deployment). A pool is moved by one refresh at a time: the
refresh claims it with a conditional insert, so two refreshes racing for one pool cannot both be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..arm.ids import GALLERY_IMAGE_VERSION, ArmId, resource_key, try_parse
from ..arm.pools import BadPoolMetadata, PoolView, Targets
from ..gateway.protocol import AzureGateway
from ..model.request import RefreshRequest, RequestRejected
from ..naming import image_name
from ..settings import Settings
from ..store.ledger import Ledger, RequestNotFound
from ..store.progress import Details
from ..store.records import RecordConflict, RecordStore
from .fit import NewImage, misfits
from .state import RefreshState

# One record per pool being refreshed: which request holds it (a conditional insert is the claim).
CLAIM_KIND = "pool-refresh"
# A claim whose request was never recorded (its intake died before the ledger write) is stale after this long.
UNRECORDED_CLAIM = timedelta(minutes=10)


@dataclass(frozen=True)
class RefreshTarget:
    """What intake found of a refresh's pool: the pool, where the new version goes and how many nodes it serves."""

    pool: PoolView
    # The definition the new version is published into (for a gallery version source: the version's own).
    definition: ArmId
    # The definition exists already: it is used as it is, never written again.
    definition_exists: bool
    # The nodes the pool is kept at: the new version's replicas serve them.
    nodes: int
    # What the refresh remembers from intake (its record's details).
    details: Details
    # Where the existing definition is (its region gets a replica of the new version); None when it is made new.
    definition_location: str | None = None


def admit(request: RefreshRequest, pool_id: ArmId, image: NewImage, *, gallery: ArmId | None, version_source: ArmId | None,
          region: str, gateway: AzureGateway, ledger: Ledger, records: RecordStore, settings: Settings, now: datetime) -> RefreshTarget:
    """Check a refresh against its pool and claim the pool for it; :class:`RequestRejected` names the first problem."""
    pool = gateway.batch.pool(pool_id)
    if pool is None:
        raise RequestRejected(f"refresh.poolId: {pool_id.id} does not exist", request.id)
    _check_ownership(request, pool, pool_id, ledger, settings)
    if request.refresh.mode == "drain" and not pool.fixed_scale:
        raise RequestRejected(f"refresh.mode: drain resizes a fixed-scale pool; {pool.name} scales automatically: use whenIdle", request.id)
    definition = _definition(request, pool, gallery, version_source, gateway)
    found = gateway.compute.image_definition(definition)
    if found is None and gateway.compute.gallery(definition.parent()) is None:
        raise RequestRejected(f"image.galleryId: {definition.parent().id} does not exist", request.id)
    if version_source is not None and found is not None:
        # The version is the image: its definition says its generation.
        image = NewImage(image.os_type, image.security_type, found.hyper_v_generation or "V1")
    sizes = {sku.name.lower(): sku for sku in gateway.batch.vm_skus(pool_id.subscription, region)}
    node_agent = request.refresh.node_agent_sku_id or pool.node_agent_sku_id
    problems = misfits(pool, image, node_agent, request.refresh.node_agent_sku_id is not None, found, sizes.get((pool.vm_size or "").lower()))
    if problems:
        raise RequestRejected("; ".join(problems), request.id)
    claim_pool(records, ledger, pool, request.id, now)
    state = RefreshState(previous_image=pool.image_id, previous_request=pool.request_id)
    return RefreshTarget(pool, definition, found is not None, desired_nodes(pool), state.changed(),
                         found.location if found is not None else None)


def desired_nodes(pool: PoolView) -> int:
    """The nodes the pool is kept at: its requested targets, else its own fixed targets, else what it has."""
    try:
        targets = pool.requested_targets()
    except BadPoolMetadata:
        targets = None
    targets = targets or (Targets(pool.target_dedicated, pool.target_low_priority) if pool.fixed_scale else pool.current)
    return targets.dedicated + targets.low_priority


def _check_ownership(request: RefreshRequest, pool: PoolView, pool_id: ArmId, ledger: Ledger, settings: Settings) -> None:
    """The pool was made (or last refreshed) by a request of this deployment, or adopted through a guarded account; and
    that request is done with it."""
    owner_id = pool.request_id
    if owner_id is None:
        if pool_id.parent().key() not in {resource_key(account) for account in settings.guarded_batch_accounts}:
            raise RequestRejected(f"refresh.poolId: {pool.name} was not made by this automation (no cip-request metadata) and its "
                                  "account is not one it keeps (GUARDED_BATCH_ACCOUNTS)", request.id)
        return
    try:
        owner = ledger.get(owner_id)
    except RequestNotFound:
        raise RequestRejected(f"refresh.poolId: {pool.name} names request {owner_id[:40]}, which this deployment does not know",
                              request.id) from None
    if owner.plan is None or owner.plan.pool.key() != pool_id.key():
        raise RequestRejected(f"refresh.poolId: {pool.name} names request {owner_id}, which did not make this pool", request.id)
    if not owner.stage.is_final:
        raise RequestRejected(f"refresh.poolId: {pool.name} is still being handled by request {owner_id} ({owner.stage.value}); "
                              "send the refresh once it is READY", request.id)


def _definition(request: RefreshRequest, pool: PoolView, gallery: ArmId | None, version_source: ArmId | None,
                gateway: AzureGateway) -> ArmId:
    """Where the new version goes: the named definition, else the pool's own (its version's), else one of the request's own."""
    if version_source is not None:
        return version_source.parent()
    current = try_parse(pool.image_id or "", GALLERY_IMAGE_VERSION)
    current_definition = current.parent() if current is not None else None
    if gallery is None:
        if current_definition is None:
            raise RequestRejected(f"image.galleryId: required: pool {pool.name}'s image is not a gallery image version "
                                  f"({pool.image_id or 'none'}), so the new one has no definition to go into", request.id)
        return current_definition
    if request.image.image_definition is not None:
        return gallery.child("images", request.image.image_definition)
    if current_definition is not None and current_definition.parent().key() == gallery.key():
        return current_definition
    return gallery.child("images", image_name(request.id))


def claim_pool(records: RecordStore, ledger: Ledger, pool: PoolView, request_id: str, now: datetime) -> None:
    """Hold ``pool`` for refresh ``request_id``: a conditional write, so of two refreshes racing for it one wins.

    A claim is free once its request is final (or was never recorded, after :data:`UNRECORDED_CLAIM`).
    """
    claim = records.get(CLAIM_KIND, pool.id)
    data = {"requestId": request_id, "at": now.isoformat()}
    if claim is not None and claim.data.get("requestId") == request_id:
        return
    try:
        if claim is None:
            records.insert(CLAIM_KIND, pool.id, data)
            return
        holder_id = str(claim.data.get("requestId"))
        try:
            holder = ledger.get(holder_id)
        except RequestNotFound:
            holder = None
        if holder is not None and not holder.stage.is_final:
            raise RequestRejected(f"refresh.poolId: {pool.name} is being refreshed by request {holder_id} ({holder.stage.value})", request_id)
        if holder is None and now - datetime.fromisoformat(str(claim.data.get("at"))) < UNRECORDED_CLAIM:
            raise RequestRejected(f"refresh.poolId: {pool.name} is being refreshed by request {holder_id}", request_id)
        records.replace(claim, data)
    except RecordConflict:
        winner = records.get(CLAIM_KIND, pool.id)
        holder_id = str(winner.data.get("requestId")) if winner is not None else "another request"
        raise RequestRejected(f"refresh.poolId: {pool.name} is being refreshed by request {holder_id}", request_id) from None
