"""Whether the pool's VM size can run the image: security type, Hyper-V generation and Spot/low-priority nodes.

Read from the capabilities Batch lists for the size in the account's region (Location - List Supported Virtual
Machine Skus, the same read the core quotas use), so a size Azure would refuse is REJECTED at intake, before any
snapshot, image or version is made for a pool that could never start.
"""

from __future__ import annotations

from ..arm.views import VmSkuView
from ..model.request import PoolRequest, RequestRejected


def check_size_runs_image(request: PoolRequest, size: VmSkuView, *, security_type: str | None, hyper_v_generation: str) -> None:
    """Refuse a size whose listed capabilities rule the image out. A capability the list does not give is not held against
    the size, except ConfidentialComputingType: Compute lists it on confidential sizes only, so without it a size is not one."""
    name = size.name
    where = f"pool.vmSize: {name}"
    if security_type == "ConfidentialVM" and not size.capabilities.get("confidentialcomputingtype"):
        # Compute refuses a confidential VM on any other size: "The VM size '...' is not supported for creation of VMs
        # and Virtual Machine Scale Set with 'ConfidentialVM' security type" (400 BadRequest, recorded in
        # confidential-containers/cloud-api-adaptor issue 1742). Confidential sizes carry the Resource SKU capability
        # ConfidentialComputingType (virtual-machines/dcasv5-dcadsv5-series: SEV-SNP).
        raise RequestRejected(
            f"{where} has no confidential computing (no ConfidentialComputingType capability): a ConfidentialVM image runs only "
            "on confidential sizes such as the DCasv5/DCadsv5 or ECasv5/ECadsv5 series", request.id)
    if security_type == "TrustedLaunch" and size.capabilities.get("trustedlaunchdisabled", "").lower() == "true":
        # virtual-machines/trusted-launch-faq: "TrustedLaunchDisabled True in the output indicates that the Generation 2
        # VM size doesn't support Trusted launch."
        raise RequestRejected(f"{where} does not support Trusted Launch (TrustedLaunchDisabled True): a TrustedLaunch image "
                              "needs a size that supports it", request.id)
    generations = [g.strip().upper() for g in size.capabilities.get("hypervgenerations", "").split(",") if g.strip()]
    if generations and hyper_v_generation.upper() not in generations:
        # virtual-machines/generation-2: a size supports generation 1, generation 2 or both (HyperVGenerations); a
        # generation 2 image cannot run on a size that supports only generation 1, nor the other way round.
        raise RequestRejected(
            f"{where} supports Hyper-V generation {' and '.join(generations)} only; the image is generation {hyper_v_generation}",
            request.id)
    if request.pool.target_low_priority_nodes and size.capabilities.get("lowprioritycapable", "").lower() == "false":
        # Batch lists LowPriorityCapable per size (batch-spot-vms: not every size can be a Spot/low-priority node).
        raise RequestRejected(f"pool.targetLowPriorityNodes: {name} cannot run Spot/low-priority nodes (LowPriorityCapable False)",
                              request.id)
