"""Does a new image fit an existing pool? The rules, without I/O: each misfit is one ``field: rule`` line.

A refresh changes only the pool's image (and, when the team names one, its node agent): the pool keeps its VM size and
its security profile, so the image must be able to run as the pool's nodes are. Batch documents the node agent SKU as
matching the image's operating system; a Trusted Launch or confidential image needs a pool with that security type
(compute refuses a TrustedLaunch-only image without Trusted Launch); a version must match its definition's OS type and
state, Hyper-V generation and security type (Compute Gallery); and the VM size must run the image's generation
(Batch's VM size list: capability ``HyperVGenerations``, where Batch lists it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arm.pools import PoolView
from ..arm.views import ImageDefinitionView, VmSkuView
from ..model.plan import definition_misfits

# A pool's virtualMachineConfiguration.securityProfile.securityType (Batch REST 2025-06-01: trustedLaunch |
# confidentialVM) as the plan spells an image's (the VM's securityProfile.securityType).
_POOL_SECURITY_TYPES = {"trustedlaunch": "TrustedLaunch", "confidentialvm": "ConfidentialVM"}


@dataclass(frozen=True)
class NewImage:
    """The image a refresh moves its pool to, as intake read its source."""

    os_type: str
    # None (Standard), TrustedLaunch or ConfidentialVM.
    security_type: str | None
    hyper_v_generation: str


def node_agent_os(node_agent_sku_id: str) -> str:
    """The OS a Batch node agent SKU runs on (``batch.node.windows amd64`` -> Windows; every other agent is Linux's)."""
    return "Windows" if "windows" in node_agent_sku_id.lower() else "Linux"


def pool_security_type(pool: PoolView) -> str | None:
    """The pool's security type as the plan spells an image's: None (Standard), TrustedLaunch or ConfidentialVM."""
    return _POOL_SECURITY_TYPES.get((pool.security_type or "").lower())


def misfits(pool: PoolView, image: NewImage, node_agent_sku_id: str | None, agent_named: bool,
            definition: ImageDefinitionView | None, size: VmSkuView | None) -> list[str]:
    """Every way ``image`` does not fit ``pool`` (and ``definition``, the one its version goes into, when it exists).

    ``agent_named``: the team named the node agent (``refresh.nodeAgentSkuId``); else it is the pool's.
    """
    problems = []
    agent_field = "refresh.nodeAgentSkuId" if agent_named else "source"
    if not node_agent_sku_id:
        problems.append(f"{agent_field}: pool {pool.name} names no node agent SKU; name one in refresh.nodeAgentSkuId")
    elif node_agent_os(node_agent_sku_id).lower() != image.os_type.lower():
        problems.append(f"{agent_field}: a {image.os_type} image cannot run under node agent {node_agent_sku_id} "
                        f"({node_agent_os(node_agent_sku_id)})" + ("" if agent_named else f", pool {pool.name}'s; name another in refresh.nodeAgentSkuId"))
    has = pool_security_type(pool)
    if has != image.security_type:
        problems.append(f"source: a {image.security_type or 'Standard'} image does not fit pool {pool.name}, whose security type is "
                        f"{has or 'Standard'} (a refresh keeps the pool's securityProfile)")
    if definition is not None:
        wrong = definition_misfits(definition, os_type=image.os_type, hyper_v_generation=image.hyper_v_generation,
                                   security_type=image.security_type)
        if wrong:
            problems.append(f"image.imageDefinition: {definition.id.rsplit('/', 1)[-1]} does not fit the image: " + "; ".join(wrong))
    generations = size.capabilities.get("hypervgenerations") if size is not None else None
    if generations and image.hyper_v_generation.lower() not in {g.strip().lower() for g in generations.split(",")}:
        problems.append(f"image.hyperVGeneration: pool {pool.name}'s VM size {size.name if size else ''} runs {generations} images, "
                        f"not {image.hyper_v_generation}")
    return problems
