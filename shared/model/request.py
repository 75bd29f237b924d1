"""The requests a team sends: the only place that knows their wire format (camelCase JSON).

A team drops one of these on the requests queue: a :class:`PoolRequest` (``pool``: a new pool from a new
image) or a :class:`RefreshRequest` (``refresh``: an existing pool moved to a new image). ``python -m cli
schema`` prints their JSON Schema. Unknown fields are rejected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from ..arm.pools import Targets
from ..errors import PermanentError
from ..naming import MAX_DEDICATED_NODES_PER_IMAGE, MAX_LOW_PRIORITY_NODES_PER_IMAGE, NAME_PREFIX, REQUEST_ID_PATTERN

POOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
GALLERY_NAME_PATTERN = r"^[A-Za-z0-9-._]{1,80}$"
DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=25)
# The project's limits on what one request may carry (Batch documents none for pool metadata): a request,
# stored as UTF-16 JSON, must fit a Table Storage property (64 KiB) with room to spare.
MAX_BODY_BYTES = 16_384
MAX_BODY_DEPTH = 8
MAX_METADATA_ITEMS = 32
MAX_METADATA_NAME = 128
MAX_METADATA_VALUE = 1024
MIN_RESIZE_TIMEOUT = timedelta(minutes=5)
MAX_RESIZE_TIMEOUT = timedelta(hours=2)
# How long a refresh may wait for its pool to be idle (or drained) before it ends with the pool left as it was.
DEFAULT_REFRESH_DEADLINE = timedelta(days=1)
MIN_REFRESH_DEADLINE = timedelta(minutes=30)
MAX_REFRESH_DEADLINE = timedelta(days=7)
# What Batch does with a node a shrink removes, and its running tasks (Batch management REST spec 2025-06-01,
# ComputeNodeDeallocationOption; the team writes any case, Batch takes these spellings):
# requeue - terminate running task processes and requeue the tasks, which run again when a node is available; remove
#   nodes as soon as tasks have been terminated;
# terminate - terminate running tasks; they complete with failureInfo saying they were terminated and do not run again;
#   remove nodes as soon as tasks have been terminated;
# taskcompletion - let running tasks complete, schedule no new tasks meanwhile; remove nodes when every task completed;
# retaineddata - let running tasks complete, then wait for every task's data retention period to expire; schedule no new
#   tasks meanwhile; remove nodes when every retention period has expired.
# Batch's own default is Requeue ("If omitted, the default value is Requeue", FixedScaleSettings); a drain defaults to
# taskcompletion, so no team loses work to a refresh it asked for.
NODE_DEALLOCATION_OPTIONS = {"requeue": "Requeue", "terminate": "Terminate", "taskcompletion": "TaskCompletion", "retaineddata": "RetainedData"}
DEFAULT_DRAIN_OPTION = "taskcompletion"


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class DataDiskSnapshot(_Wire):
    """A data disk snapshot and the LUN it is attached at."""

    lun: Annotated[int, Field(ge=0, le=63)]
    snapshot_id: str


class SnapshotSet(_Wire):
    """The snapshots of a prepared VM: its OS disk and every data disk."""

    os_disk_snapshot_id: str
    data_disks: list[DataDiskSnapshot] = Field(default_factory=list)

    @field_validator("data_disks")
    @classmethod
    def _distinct_luns(cls, disks: list[DataDiskSnapshot]) -> list[DataDiskSnapshot]:
        luns = [disk.lun for disk in disks]
        if len(set(luns)) != len(luns):
            raise ValueError("each data disk needs a distinct lun")
        return disks


class Source(_Wire):
    """Where the image comes from: exactly one of the four."""

    virtual_machine_id: str | None = None
    snapshots: SnapshotSet | None = None
    managed_image_id: str | None = None
    gallery_image_version_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [name for name, value in self._fields().items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of virtualMachineId, snapshots, managedImageId, galleryImageVersionId"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def _fields(self) -> dict:
        return {
            "virtualMachineId": self.virtual_machine_id,
            "snapshots": self.snapshots,
            "managedImageId": self.managed_image_id,
            "galleryImageVersionId": self.gallery_image_version_id,
        }

    @property
    def kind(self) -> str:
        """Which source was given, by its wire name."""
        return next(name for name, value in self._fields().items() if value is not None)

    def resource_ids(self) -> dict[str, str]:
        """Every resource id in the source, by its field path."""
        # "is not None", not truthiness: an empty id is still given, and must fail authorisation, not skip it.
        ids: dict[str, str] = {}
        if self.virtual_machine_id is not None:
            ids["source.virtualMachineId"] = self.virtual_machine_id
        if self.snapshots is not None:
            ids["source.snapshots.osDiskSnapshotId"] = self.snapshots.os_disk_snapshot_id
            for index, disk in enumerate(self.snapshots.data_disks):
                ids[f"source.snapshots.dataDisks[{index}].snapshotId"] = disk.snapshot_id
        if self.managed_image_id is not None:
            ids["source.managedImageId"] = self.managed_image_id
        if self.gallery_image_version_id is not None:
            ids["source.galleryImageVersionId"] = self.gallery_image_version_id
        return ids


class ImageSettings(_Wire):
    """How the image is built and published."""

    os_state: Literal["Generalized"] = Field(
        "Generalized", description="Batch supports only generalized custom images."
    )
    hyper_v_generation: Literal["V1", "V2"] = "V2"
    gallery_id: str | None = Field(None, description="Compute Gallery that receives the image version (gallery path).")
    image_definition: Annotated[str, Field(pattern=GALLERY_NAME_PATTERN)] | None = Field(
        None, description=f"Gallery image definition name; defaults to one per request. Names starting with {NAME_PREFIX} are reserved."
    )
    legacy_managed_image: bool = Field(
        False,
        description="Create the pool straight from the managed image. Batch retired this path on 2026-03-31: refused unless the "
                    "deployment still allows it (ALLOW_LEGACY_MANAGED_IMAGE_POOLS).",
    )

    @field_validator("image_definition")
    @classmethod
    def _definition_not_reserved(cls, name: str | None) -> str | None:
        if name is not None and name.lower().startswith(NAME_PREFIX):
            raise ValueError(f"names starting with {NAME_PREFIX} are reserved for this automation's own definitions")
        return name


class PoolSettings(_Wire):
    """The Batch pool to create."""

    batch_account_id: str
    pool_name: Annotated[str, Field(pattern=POOL_NAME_PATTERN)]
    vm_size: Annotated[str, Field(min_length=1, max_length=64)]
    node_agent_sku_id: Annotated[str, Field(min_length=1, max_length=64)]
    # Gallery pools are bounded by the Batch account's core quotas (checked at intake); managed-image pools by
    # 2,500 dedicated / 1,000 low-priority nodes across the pools sharing the image's lineage.
    target_dedicated_nodes: Annotated[int, Field(ge=0, description=(
        f"Gallery pools: up to the account's core quotas. Legacy managed-image pools: at most {MAX_DEDICATED_NODES_PER_IMAGE} "
        "across the pools sharing the image."))] = 0
    target_low_priority_nodes: Annotated[int, Field(ge=0, description=(
        f"Gallery pools: up to the account's core quotas. Legacy managed-image pools: at most {MAX_LOW_PRIORITY_NODES_PER_IMAGE} "
        "across the pools sharing the image."))] = 0
    resize_timeout: timedelta = Field(DEFAULT_RESIZE_TIMEOUT, description="ISO 8601 duration, PT5M to PT2H.")
    metadata: dict[Annotated[str, Field(min_length=1, max_length=MAX_METADATA_NAME)], Annotated[str, Field(max_length=MAX_METADATA_VALUE)]] = Field(
        default_factory=dict,
        description=f"At most {MAX_METADATA_ITEMS} name/value pairs copied to the pool; names starting with {NAME_PREFIX} are reserved.",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata_within_limits(cls, metadata: dict[str, str]) -> dict[str, str]:
        if len(metadata) > MAX_METADATA_ITEMS:
            raise ValueError(f"at most {MAX_METADATA_ITEMS} items")
        reserved = sorted(name for name in metadata if name.lower().startswith(NAME_PREFIX))
        if reserved:
            raise ValueError(f"names starting with {NAME_PREFIX} are reserved for this automation ({_listed(reserved)})")
        return metadata

    @field_validator("resize_timeout")
    @classmethod
    def _timeout_in_range(cls, value: timedelta) -> timedelta:
        if not MIN_RESIZE_TIMEOUT <= value <= MAX_RESIZE_TIMEOUT:
            raise ValueError("must be between PT5M and PT2H")
        return value

    @model_validator(mode="after")
    def _some_nodes(self) -> PoolSettings:
        if self.target_dedicated_nodes + self.target_low_priority_nodes == 0:
            raise ValueError("targetDedicatedNodes + targetLowPriorityNodes must be at least 1")
        return self

    @property
    def total_target_nodes(self) -> int:
        return self.target_dedicated_nodes + self.target_low_priority_nodes

    @property
    def targets(self) -> Targets:
        return Targets(self.target_dedicated_nodes, self.target_low_priority_nodes)


def _listed(names: list[str]) -> str:
    shown = ", ".join(name[:40] for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


class ImageRequest(_Wire):
    """What every request names: who asks, where the image comes from, and how it is published."""

    request_id: Annotated[str, Field(pattern=REQUEST_ID_PATTERN)] | None = Field(
        None, description="Lower-case letters, digits and hyphens; defaults to one derived from the message id."
    )
    requested_by: Annotated[str, Field(min_length=1, max_length=256)]
    source: Source
    image: ImageSettings = Field(default_factory=ImageSettings)

    @property
    def id(self) -> str:
        """The request id; :func:`parse_request` always sets it (from the message id when the body gives none)."""
        if self.request_id is None:
            raise ValueError("the request has no id: parse it with parse_request")
        return self.request_id

    def resource_ids(self) -> dict[str, str]:
        """Every resource id the request names, by field path (what authorisation checks)."""
        ids = self.source.resource_ids()
        if self.image.gallery_id is not None:
            ids["image.galleryId"] = self.image.gallery_id
        return ids

    def to_wire(self) -> dict:
        """The request as JSON-able camelCase data (what the ledger stores)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class PoolRequest(ImageRequest):
    """A new pool from a new image, as a team sends it."""

    pool: PoolSettings

    @model_validator(mode="after")
    def _gallery_when_needed(self) -> PoolRequest:
        needs_gallery = self.source.kind in ("virtualMachineId", "snapshots", "managedImageId")
        if needs_gallery and not self.image.legacy_managed_image and not self.image.gallery_id:
            raise ValueError("image.galleryId is required unless image.legacyManagedImage is true or the source is a gallery image version")
        if self.image.legacy_managed_image and self.source.kind == "galleryImageVersionId":
            raise ValueError("image.legacyManagedImage cannot be used with a gallery image version source")
        return self

    def resource_ids(self) -> dict[str, str]:
        return {**super().resource_ids(), "pool.batchAccountId": self.pool.batch_account_id}


class RefreshSettings(_Wire):
    """Which existing pool moves to the new image, and how."""

    pool_id: str = Field(description="The Batch pool to move: made by this automation (or in a guarded account), inside the allowed scopes.")
    mode: Literal["whenIdle", "drain"] = Field(
        "whenIdle",
        description="whenIdle: wait until the pool is Steady at zero nodes by itself (a pool the team scales to zero), "
                    "never changing its size. drain: resize it to zero (nodeDeallocationOption), move it, restore its target.",
    )
    node_deallocation_option: Literal["requeue", "terminate", "taskcompletion", "retaineddata"] | None = Field(
        None, description=f"drain only: what Batch does with running tasks on the nodes it removes (any case); default {DEFAULT_DRAIN_OPTION}.")
    deadline: timedelta = Field(
        DEFAULT_REFRESH_DEADLINE,
        description="ISO 8601 duration from acceptance, PT30M to P7D: a pool not moved by then is left as it was and the request FAILS.")
    node_agent_sku_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="The node agent for the new image (e.g. batch.node.ubuntu 24.04); default: the pool's.")

    @field_validator("node_deallocation_option", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("deadline")
    @classmethod
    def _deadline_in_range(cls, value: timedelta) -> timedelta:
        if not MIN_REFRESH_DEADLINE <= value <= MAX_REFRESH_DEADLINE:
            raise ValueError("must be between PT30M and P7D")
        return value

    @model_validator(mode="after")
    def _option_for_a_drain(self) -> RefreshSettings:
        if self.node_deallocation_option is not None and self.mode != "drain":
            raise ValueError("nodeDeallocationOption applies to mode drain only (whenIdle never removes a node)")
        return self

    @property
    def deallocation(self) -> str:
        """The drain's node deallocation option as Batch spells it."""
        return NODE_DEALLOCATION_OPTIONS[self.node_deallocation_option or DEFAULT_DRAIN_OPTION]


class RefreshRequest(ImageRequest):
    """An existing pool moved to a new image, as a team sends it: the image is published as for a new pool, then the
    pool is moved (no new pool, the same name) and its old image retired once no pool uses it."""

    refresh: RefreshSettings

    @model_validator(mode="after")
    def _gallery_path(self) -> RefreshRequest:
        if self.image.legacy_managed_image:
            raise ValueError("image.legacyManagedImage: a refresh always publishes a gallery image version (Batch retired managed-image pools)")
        return self

    def resource_ids(self) -> dict[str, str]:
        return {**super().resource_ids(), "refresh.poolId": self.refresh.pool_id}


# Either kind of request; which one a body is, its top-level "refresh" says.
Request = PoolRequest | RefreshRequest


def request_model(data: object) -> type[PoolRequest] | type[RefreshRequest]:
    """The model a request body is: a refresh when it has a ``refresh`` section, else a pool request."""
    return RefreshRequest if isinstance(data, dict) and "refresh" in data else PoolRequest


class RequestRejected(PermanentError, ValueError):
    """The request is invalid; ``reason`` names the field and the rule."""

    def __init__(self, reason: str, request_id: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


def request_id_for_message(message_id: str | None) -> str:
    """A valid request id for a message whose body does not give one."""
    if message_id and re.fullmatch(REQUEST_ID_PATTERN, message_id):
        return message_id
    digest = hashlib.sha256((message_id or "").encode()).hexdigest()[:24]
    return f"m-{digest}"


def conflict_request_id(message_id: str | None, taken_id: str) -> str:
    """The id a message is recorded under when its ``requestId`` belongs to another request (the same on redelivery)."""
    digest = hashlib.sha256(f"{message_id or ''}|{taken_id}".encode()).hexdigest()[:24]
    return f"x-{digest}"


def parse_request(body: bytes | str, message_id: str | None) -> Request:
    """Parse and validate a message body (a pool request, or a refresh); a problem raises :class:`RequestRejected`.

    The request id is the body's ``requestId`` when valid, else derived from
    the message id, so every rejection can still be recorded and answered.
    """
    fallback_id = request_id_for_message(message_id)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRejected(f"body: not valid JSON ({str(exc)[:200]})", fallback_id) from exc
    except RecursionError as exc:
        raise RequestRejected(f"body: nested deeper than {MAX_BODY_DEPTH} levels", fallback_id) from exc
    if not isinstance(data, dict):
        raise RequestRejected("body: must be a JSON object", fallback_id)
    candidate = data.get("requestId")
    request_id = candidate if isinstance(candidate, str) and re.fullmatch(REQUEST_ID_PATTERN, candidate) else fallback_id
    size = len(body.encode() if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise RequestRejected(f"body: {size} bytes; a request is at most {MAX_BODY_BYTES} bytes", request_id)
    if _depth(data) > MAX_BODY_DEPTH:
        raise RequestRejected(f"body: nested deeper than {MAX_BODY_DEPTH} levels", request_id)
    if "refresh" in data and "pool" in data:
        raise RequestRejected("body: give pool (a new pool) or refresh (an existing pool moved to a new image), not both", request_id)
    try:
        request: Request = request_model(data).model_validate(data)
    except ValidationError as exc:
        raise RequestRejected(describe_errors(exc), request_id) from exc
    if request.request_id is None:
        request = request.model_copy(update={"request_id": request_id})
    return request


def _depth(value: object) -> int:
    """How deeply ``value`` nests (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                deepest = max(deepest, level + 1)
                pending.append((child, level + 1))
        deepest = max(deepest, level)
    return deepest


def describe_errors(error: ValidationError) -> str:
    """Every problem as ``field.path: rule``, joined by ``; `` (what a rejection's reason says)."""
    return "; ".join(error_lines(error))


def error_lines(error: ValidationError, root: type[BaseModel] | None = None) -> list[str]:
    """One line per problem: ``field.path: rule`` (field names cut short: any name a sender invents must fit a reason).

    ``root``: the model the field names are looked up in; by default the request model that raised ``error``.
    """
    root = root or next((model for model in (PoolRequest, RefreshRequest) if model.__name__ == error.title), PoolRequest)
    return [f"{'.'.join(str(part)[:64] for part in problem['loc']) or 'body'}: {problem_text(problem, root)}"
            for problem in error.errors(include_url=False)]


# What a duration looks like, for a person who wrote "25m" or "00:25:00".
ISO_8601_EXAMPLE = "an ISO 8601 duration such as PT25M (25 minutes), PT1H30M or P1DT2H (a day and 2 hours)"


def problem_text(problem: ErrorDetails, root: type[BaseModel]) -> str:
    """The rule a pydantic problem breaks, in words: an unknown field names the nearest known one, a bad duration shows one."""
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        name = str(problem["loc"][-1]) if problem["loc"] else ""
        guess = difflib.get_close_matches(name, field_names_at(root, problem["loc"][:-1]), n=1, cutoff=0.6)
        return "unknown field" + (f" (did you mean {guess[0]}?)" if guess else "")
    if problem["type"].startswith("time_delta"):
        detail = message.partition(", ")[2]
        return f"not a duration{f' ({detail})' if detail else ''}: write {ISO_8601_EXAMPLE}"
    return message


def field_names_at(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The wire names of the fields an object at ``loc`` may have (list indices and union member names are stepped over)."""
    models = [root]
    for part in loc:
        if isinstance(part, int):
            continue
        named = [model for model in models if model.__name__ == part]
        if named:
            models = named
            continue
        models = [found for model in models for name, info in model.model_fields.items() if part in (name, info.alias)
                  for found in _models_in(info.annotation)]
    return [info.alias or name for model in models for name, info in model.model_fields.items()]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds, through Optional, unions, Annotated, lists and dicts."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def json_schema() -> dict:
    """The published JSON Schema of a request: a new pool (``pool``) or a refresh of an existing one (``refresh``)."""
    schema = TypeAdapter(Request).json_schema(by_alias=True)
    # The two kinds never both fit one body (each requires its own section and forbids unknown fields).
    schema["oneOf"] = schema.pop("anyOf")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Custom image pool request", **schema}
