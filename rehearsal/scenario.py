"""Scenario files: the world the rehearsal starts from and the steps it plays.

A scenario is JSON; unknown fields are errors so a typo never goes unnoticed.
docs/rehearsal.md documents every field with an example.
"""

from __future__ import annotations

import difflib
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from shared.arm.pools import metadata_items
from shared.model.request import describe_errors, problem_text

DEFAULT_SUBSCRIPTION = "8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11"
DEFAULT_RG = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-imaging"
DEFAULT_BATCH_RG = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-batch"
DEFAULT_VM_ID = f"{DEFAULT_RG}/providers/Microsoft.Compute/virtualMachines/builder"
DEFAULT_GALLERY_ID = f"{DEFAULT_RG}/providers/Microsoft.Compute/galleries/teamgallery"
DEFAULT_ACCOUNT_ID = f"{DEFAULT_BATCH_RG}/providers/Microsoft.Batch/batchAccounts/teambatch"


class ScenarioError(ValueError):
    """The scenario file itself is invalid; the message names the problem."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class VirtualMachineSpec(_Model):
    id: str
    location: str = "westeurope"
    os_type: Literal["Linux", "Windows"] = "Linux"
    data_disk_luns: list[int] = Field(default_factory=list)
    extensions: list[str] = Field(default_factory=list)
    os_disk_encrypted: bool = False
    managed_disks: bool = True
    image_reference: dict[str, str] | None = None
    plan: dict[str, str] | None = None
    # The VM's securityProfile.securityType; null is Standard. Its OS disk and the snapshots copied from it carry it.
    security_type: Literal["TrustedLaunch", "ConfidentialVM"] | None = None
    # Its securityProfile.uefiSettings (a Trusted Launch or confidential VM): images with unsigned drivers, common for
    # GPU and HPC, are built on VMs with Secure Boot off.
    secure_boot_enabled: bool = True
    v_tpm_enabled: bool = True
    # Its hardwareProfile.vmSize and Hyper-V generation (its disks carry the generation, and the snapshots copied from them).
    vm_size: str = "Standard_D4ds_v5"
    hyper_v_generation: Literal["V1", "V2"] = "V2"
    # What its instance view reports: PowerState/<powerState>, and OSState/generalized when generalized.
    power_state: Literal["running", "stopped", "deallocated"] = "deallocated"
    generalized: bool = True
    # The disk encryption set (customer-managed key) its disks are encrypted with; null: platform-managed keys.
    disk_encryption_set_id: str | None = None

    @model_validator(mode="after")
    def _a_vm_azure_could_run(self) -> VirtualMachineSpec:
        from emulator.batch.models import vm_sku_capability

        # virtual-machines/trusted-launch-portal: Trusted Launch (and confidential VMs) are generation 2 VMs.
        if self.security_type and self.hyper_v_generation != "V2":
            raise ValueError(f"a {self.security_type} VM is hyperVGeneration V2")
        # A VM runs only on a size that lists its generation (the size's HyperVGenerations capability).
        generations = vm_sku_capability(self.vm_size, "HyperVGenerations")
        if generations is not None and self.hyper_v_generation not in [g.strip() for g in generations.split(",")]:
            raise ValueError(f"a generation {self.hyper_v_generation} VM cannot run on {self.vm_size} (HyperVGenerations {generations})")
        return self


class BatchAccountSpec(_Model):
    id: str
    location: str = "westeurope"
    dedicated_core_quota: int = 100_000
    low_priority_core_quota: int = 100_000


class GallerySpec(_Model):
    id: str
    location: str = "westeurope"


class ImageDefinitionSpec(_Model):
    """A gallery image definition that exists before the scenario starts."""

    id: str
    location: str = "westeurope"
    os_type: Literal["Linux", "Windows"] = "Linux"
    os_state: Literal["Generalized", "Specialized"] = "Generalized"
    hyper_v_generation: Literal["V1", "V2"] = "V2"
    security_type: Literal["Standard", "TrustedLaunch", "ConfidentialVM", "TrustedLaunchSupported", "ConfidentialVMSupported",
                           "TrustedLaunchAndConfidentialVmSupported"] | None = None
    # The definition's identifier (publisher, offer, SKU); a definition a team made has its own.
    publisher: str = "seeded"


class ImageVersionSpec(_Model):
    """A gallery image version someone already published (with its definition and source image)."""

    id: str
    location: str = "westeurope"
    os_type: Literal["Linux", "Windows"] = "Linux"
    target_regions: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)


class CapacityPauseSpec(_Model):
    """A time the region has no capacity for the pool's VM size: ``after`` the scenario starts, ``for`` how long
    (no ``for``: capacity never returns)."""

    after: timedelta
    for_: Annotated[timedelta | None, Field(alias="for")] = None


class AllocationSpec(_Model):
    max_nodes_per_resize: int = 300
    nodes_per_minute: int = 100
    quota_error: str | None = None
    capacity_pauses: list[CapacityPauseSpec] = Field(default_factory=list)


class FaultSpec(_Model):
    operation: str
    kind: Literal["throttle", "server_error", "unavailable", "latency", "lro_failed", "refuse"]
    rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    limit: int | None = None
    retry_after_seconds: int = 2
    latency_seconds: float = 0
    # kind "refuse": the 4xx answer (status, ARM error code and message) the matching calls get.
    status: Annotated[int, Field(ge=400, le=499)] = 409
    code: str = "OperationNotAllowed"
    message: str = "The operation is not allowed (injected refusal)."


class EventDeliverySpec(_Model):
    copies: Annotated[int, Field(ge=1, le=10)] = 1
    max_delay_seconds: Annotated[float, Field(ge=0)] = 0
    reorder: bool = False
    drop_rate: Annotated[float, Field(ge=0, le=1)] = 0
    drop_event_types: list[str] = Field(default_factory=list)


class EventBehaviourSpec(_Model):
    """How ARM raises events where no published source says (emulator.events.EventBehaviour); the table in docs/rehearsal.md."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    lock_delete_raises_event: bool = True
    locked_delete_raises_failure_event: bool = True
    write_success_at: Literal["completion", "acceptance"] = "completion"


class PoolSpec(_Model):
    """A Batch pool that exists before the scenario starts (not made by the pipeline)."""

    id: str
    vm_size: str = "Standard_D4ds_v5"
    image_id: str | None = None
    node_agent_sku_id: str = "batch.node.ubuntu 24.04"
    target_dedicated_nodes: int = 0
    target_low_priority_nodes: int = 0
    resize_timeout: str = "PT25M"
    auto_scale_formula: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    def body(self) -> dict:
        image = {"id": self.image_id} if self.image_id else {
            "publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
        scale: dict[str, dict[str, object]] = {"autoScale": {"formula": self.auto_scale_formula}} if self.auto_scale_formula else {"fixedScale": {
            "targetDedicatedNodes": self.target_dedicated_nodes,
            "targetLowPriorityNodes": self.target_low_priority_nodes,
            "resizeTimeout": self.resize_timeout,
        }}
        return {"properties": {
            "vmSize": self.vm_size,
            "deploymentConfiguration": {"virtualMachineConfiguration": {"imageReference": image, "nodeAgentSkuId": self.node_agent_sku_id}},
            "scaleSettings": scale,
            "metadata": metadata_items(self.metadata),
        }}


class World(_Model):
    allowed_scopes: list[str] = Field(default_factory=lambda: [DEFAULT_RG, DEFAULT_ACCOUNT_ID])
    virtual_machines: list[VirtualMachineSpec] = Field(default_factory=lambda: [VirtualMachineSpec(id=DEFAULT_VM_ID, data_disk_luns=[0, 1])])
    batch_accounts: list[BatchAccountSpec] = Field(default_factory=lambda: [BatchAccountSpec(id=DEFAULT_ACCOUNT_ID)])
    galleries: list[GallerySpec] = Field(default_factory=lambda: [GallerySpec(id=DEFAULT_GALLERY_ID)])
    image_definitions: list[ImageDefinitionSpec] = Field(default_factory=list)
    # ALLOW_LEGACY_MANAGED_IMAGE_POOLS: this deployment still accepts image.legacyManagedImage (a cloud where Batch
    # still takes pools straight from a managed image; Batch retired them on 2026-03-31).
    allow_legacy_managed_image_pools: bool = False
    # The teams' reply queues (REPLY_QUEUES): a ReplyTo naming any other queue is never answered.
    reply_queues: list[str] = Field(default_factory=lambda: ["team-a-replies", "team-b-replies", "replies"])
    image_versions: list[ImageVersionSpec] = Field(default_factory=list)
    allocation: AllocationSpec = Field(default_factory=AllocationSpec)
    faults: list[FaultSpec] = Field(default_factory=list)
    event_delivery: EventDeliverySpec = Field(default_factory=EventDeliverySpec)
    event_behaviour: EventBehaviourSpec = Field(default_factory=EventBehaviourSpec)
    # The pool guard: accounts whose every fixed-scale pool it keeps at target, and when a request counts as stuck.
    guarded_batch_accounts: list[str] = Field(default_factory=list)
    stuck_request_minutes: Annotated[int, Field(ge=1)] = 30
    pools: list[PoolSpec] = Field(default_factory=list)
    # The VM sizes Batch offers per region (region -> sizes; a region not named offers every size with published
    # capabilities, emulator/batch/vm_skus.json).
    region_vm_sizes: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _offered_sizes_are_published(self) -> World:
        from emulator.batch.models import PUBLISHED_VM_SKUS

        unknown = sorted({size for sizes in self.region_vm_sizes.values() for size in sizes if size.lower() not in PUBLISHED_VM_SKUS})
        if unknown:
            known = ", ".join(sorted(sku["name"] for sku in PUBLISHED_VM_SKUS.values()))
            raise ValueError(f"regionVmSizes: no published capabilities for {', '.join(unknown)} (sizes with published capabilities: {known})")
        return self


class SubmitStep(_Model):
    submit: dict[str, Any] | str
    message_id: str | None = None
    reply_to: str | None = None


class DeliverEventStep(_Model):
    deliver_event: dict[str, Any]


class DeleteResourceStep(_Model):
    delete_resource: str


class DeleteLockStep(_Model):
    delete_lock: str = Field(description="The lock's full resource id.")


class ResourceLock(_Model):
    resource_id: str = Field(description="The scope the lock is placed on: a resource, resource group or subscription id.")
    level: Literal["CanNotDelete", "ReadOnly"] = "ReadOnly"
    name: str = "operator-lock"


class LockResourceStep(_Model):
    """A person places a management lock through ARM (its event follows, as for any write)."""

    lock_resource: ResourceLock


class AdvanceStep(_Model):
    advance: timedelta


class StopFunctionAppStep(_Model):
    """The function app is stopped (``az functionapp stop``) for this long while nothing is pending: Azure goes on, none of
    the functions runs, and on restart the guard's timer fires once for the schedule it missed (isPastDue)."""

    stop_function_app: timedelta


class RunUntilIdleStep(_Model):
    run_until_idle: Literal[True]
    max_virtual_time: timedelta = timedelta(days=3)


class PoolResize(_Model):
    pool_id: str
    target_dedicated_nodes: Annotated[int, Field(ge=0)] = 0
    target_low_priority_nodes: Annotated[int, Field(ge=0)] = 0


class ResizePoolStep(_Model):
    """A person changes a pool's fixed-scale target through ARM (PATCH scaleSettings)."""

    resize_pool: PoolResize


class PoolMetadataChange(_Model):
    pool_id: str
    metadata: dict[str, str]


class SetPoolMetadataStep(_Model):
    """A person changes some of a pool's metadata through ARM (PATCH metadata, the other keys kept)."""

    set_pool_metadata: PoolMetadataChange


class BatchApiResize(_Model):
    pool_id: str
    target_dedicated_nodes: Annotated[int, Field(ge=0)] = 0
    target_low_priority_nodes: Annotated[int, Field(ge=0)] = 0


class BatchApiCall(_Model):
    """One call through the Batch service API (the account's endpoint: az batch, Batch Explorer, the Batch SDKs)."""

    delete_pool: str | None = Field(None, description="The pool's id: deleted, with no ARM event.")
    resize_pool: BatchApiResize | None = None
    stop_resize: str | None = Field(None, description="The pool's id: its resize is stopped, with no ARM event.")

    @model_validator(mode="after")
    def _exactly_one(self) -> BatchApiCall:
        given = [name for name in ("delete_pool", "resize_pool", "stop_resize") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of deletePool, resizePool, stopResize")
        return self


class BatchApiStep(_Model):
    """A person (or a tool) calls the Batch service API: no ARM event and no Activity Log entry follow."""

    batch_api: BatchApiCall


class Preemption(_Model):
    pool_id: str
    nodes: Annotated[int, Field(ge=1)]
    # When Azure has the capacity again and Batch brings the preempted nodes back (null: not within the scenario).
    capacity_returns_after: timedelta | None = None


class PreemptLowPriorityNodesStep(_Model):
    """Azure takes back some of a pool's Spot/low-priority nodes for capacity: they go Preempted (still counted as the
    pool's current nodes) until Batch brings them back; no ARM call or event."""

    preempt_low_priority_nodes: Preemption


class AccountQuota(_Model):
    batch_account_id: str
    dedicated_core_quota: Annotated[int, Field(ge=0)] | None = None
    low_priority_core_quota: Annotated[int, Field(ge=0)] | None = None


class SetBatchAccountQuotaStep(_Model):
    """The account's core quotas change (a support request, or capacity given to other work); not an ARM write."""

    set_batch_account_quota: AccountQuota


class AppAccess(_Model):
    scope: str = Field(description="A subscription, resource group or resource id.")
    action: str = Field("*", description="A role action pattern, e.g. Microsoft.Insights/eventtypes/values/read; every action by default.")


class RevokeAppAccessStep(_Model):
    """The app's identity loses access at ``scope`` (its role assignment there removed): every call it makes there of
    ``action`` is answered 403 AuthorizationFailed from then on."""

    revoke_app_access: AppAccess


Step = (SubmitStep | DeliverEventStep | DeleteResourceStep | DeleteLockStep | AdvanceStep | StopFunctionAppStep | RunUntilIdleStep
        | ResizePoolStep | SetPoolMetadataStep | SetBatchAccountQuotaStep | RevokeAppAccessStep | BatchApiStep | LockResourceStep
        | PreemptLowPriorityNodesStep)


_STEP_ACTIONS = {"submit", "deliverEvent", "deleteResource", "deleteLock", "advance", "stopFunctionApp", "runUntilIdle",
                 "resizePool", "setPoolMetadata", "setBatchAccountQuota", "revokeAppAccess", "batchApi", "lockResource",
                 "preemptLowPriorityNodes"}
_STEP_OPTIONS = {"messageId", "replyTo", "maxVirtualTime"}


class Scenario(_Model):
    name: str = "scenario"
    description: str = ""
    seed: int = 0
    world: World = Field(default_factory=World)
    steps: list[Step]

    @model_validator(mode="before")
    @classmethod
    def _steps_are_objects(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for index, step in enumerate(data.get("steps") or []):
                actions = step.keys() - _STEP_OPTIONS if isinstance(step, dict) else set()
                if len(actions) != 1 or not actions <= _STEP_ACTIONS:
                    guesses = [f"{key} -> {guess[0]}" for key in sorted(actions - _STEP_ACTIONS)
                               if (guess := difflib.get_close_matches(key, sorted(_STEP_ACTIONS | _STEP_OPTIONS), n=1, cutoff=0.6))]
                    raise ValueError(
                        f"steps[{index}] must be an object with exactly one of " + ", ".join(sorted(_STEP_ACTIONS))
                        + (f" (did you mean {', '.join(guesses)}?)" if guesses else "")
                    )
        return data


def default_request(**pool_overrides: Any) -> dict:
    """The default pool request: a 600-node pool from a VM with two data disks, through the gallery."""
    return {
        "requestId": "team-a-render-001",
        "requestedBy": "team-a@contoso.com",
        "source": {"virtualMachineId": DEFAULT_VM_ID},
        "image": {"galleryId": DEFAULT_GALLERY_ID, "hyperVGeneration": "V2"},
        "pool": {
            "batchAccountId": DEFAULT_ACCOUNT_ID,
            "poolName": "render-pool",
            "vmSize": "Standard_D4ds_v5",
            "nodeAgentSkuId": "batch.node.ubuntu 24.04",
            "targetDedicatedNodes": 600,
            "targetLowPriorityNodes": 0,
            "resizeTimeout": "PT25M",
            **pool_overrides,
        },
    }


def default_scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "default",
            "description": "A 600-node pool from a VM with two data disks, via a Compute Gallery image version.",
            "steps": [{"submit": default_request(), "replyTo": "team-a-replies"}, {"runUntilIdle": True}],
        }
    )


# The scenarios the project ships: one file per case docs/rehearsal.md lists. In the repository they are its
# examples/ folder; installed (pip install .), package data inside this package (pyproject.toml maps the folder).
_INSTALLED_EXAMPLES = Path(__file__).resolve().parent / "examples"
EXAMPLES_DIR = _INSTALLED_EXAMPLES if _INSTALLED_EXAMPLES.is_dir() else Path(__file__).resolve().parent.parent / "examples"


def shipped_scenarios() -> list[tuple[Path, Scenario]]:
    """Every scenario in ``examples/``, by file name; a file that does not load raises :class:`ScenarioError`."""
    return [(path, load_scenario(path)) for path in sorted(EXAMPLES_DIR.glob("*.json"))]


def scenarios_table() -> str:
    """The shipped scenarios as the Markdown table docs/rehearsal.md shows (a test keeps the two the same)."""
    rows = [f"| [`{path.name}`](../examples/{path.name}) | {scenario.description} |" for path, scenario in shipped_scenarios()]
    return "\n".join(["| scenario | what it shows |", "|---|---|", *rows])


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; problems raise :class:`ScenarioError` naming them."""
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file ({exc.strerror})") from exc
    except ValueError as exc:
        raise ScenarioError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {_describe_scenario_errors(exc, raw)}") from exc


def _step_models() -> dict[str, str]:
    """Each step action (``advance``) -> the name of its model (``AdvanceStep``)."""
    from typing import get_args

    models = {}
    for model in get_args(Step):
        for name in model.model_fields:
            if to_camel(name) in _STEP_ACTIONS:
                models[to_camel(name)] = model.__name__
    return models


def _describe_scenario_errors(error: ValidationError, raw: Any) -> str:
    """The problems that matter: for a step, only those of the kind of step it is.

    A step is a union of step kinds, so pydantic reports a bad value against every
    kind (a dozen clauses for one bad duration); the step's action key says which
    kind was meant, and only that kind's complaint names the real problem.
    """
    steps = raw.get("steps") if isinstance(raw, dict) else None
    models = _step_models()
    lines = []
    for problem in error.errors(include_url=False):
        loc = list(problem["loc"])
        if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int) and isinstance(steps, list) and loc[1] < len(steps):
            step = steps[loc[1]]
            actions = [key for key in step if key in models] if isinstance(step, dict) else []
            meant = models.get(actions[0]) if len(actions) == 1 else None
            if meant is not None and str(loc[2]).split("[", 1)[0] != meant:
                continue
            if meant is not None:
                loc = [f"steps[{loc[1]}]", *loc[3:]]
        path = ".".join(str(part) for part in loc) or "scenario"
        lines.append(f"{path}: {problem_text(problem, Scenario)}")
    return "; ".join(dict.fromkeys(lines)) or describe_errors(error)
