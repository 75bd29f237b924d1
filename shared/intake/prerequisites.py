"""The Batch seed's prerequisites for a VM whose disks become a custom image.

Checked from what ARM shows of the VM; the in-guest ones (temp drive left as
default, data disks mounted and formatted) cannot be seen from outside and are
the requester's to meet.
"""

from __future__ import annotations

from ..arm.views import VirtualMachineView

# Publishers whose Marketplace images are first-party (Microsoft or endorsed
# distributions without a purchase plan), lower-case.
FIRST_PARTY_PUBLISHERS = frozenset(
    {
        "canonical",
        "microsoftwindowsserver",
        "microsoftwindowsdesktop",
        "microsoftcblmariner",
        "microsoft-azure-batch",
        "microsoft-dsvm",
        "openlogic",
        "redhat",
        "suse",
        "debian",
        "almalinux",
    }
)


def unmet_prerequisites(vm: VirtualMachineView, *, allow_purchase_plan: bool = False) -> list[str]:
    """Every prerequisite the VM fails, each as ``check: what was found``; empty when it qualifies.

    ``allow_purchase_plan``: the gallery path may start from a Marketplace image with purchase terms
    (the seed's note; Batch needs the plan on the gallery image definition, batch-sig-images), so a
    VM with a plan passes the Marketplace checks there; a managed image cannot carry a plan.
    """
    failures: list[str] = []
    if vm.os_disk.managed_disk_id is None:
        failures.append("managedDisks: the OS disk is not a managed disk")
    unmanaged = [str(disk.lun) for disk in vm.data_disks if disk.managed_disk_id is None]
    if unmanaged:
        failures.append(f"managedDisks: data disks at LUN {', '.join(unmanaged)} are not managed disks")
    if vm.extensions:
        failures.append(f"noExtensions: the VM has extensions installed ({', '.join(vm.extensions)})")
    if vm.generalized is False:
        # The image definitions this automation makes say Generalized, as Batch needs (batch-sig-images); Azure marks a VM
        # generalized only through VirtualMachines_Generalize, after which its instance view reports OSState/generalized
        # (virtual-machines/windows/capture-image-resource: deallocate, generalize, check the status, then capture).
        failures.append("generalized: the VM is not generalized (no OSState/generalized in its instance view): deprovision it "
                        "(Sysprep, or waagent -deprovision+user), deallocate it and run az vm generalize")
    if vm.power_state == "running":
        # capture-image-resource deallocates the VM before its image is taken; disks copied from a running VM hold whatever
        # was in flight (each snapshot is crash-consistent on its own, the disks are not copied at one instant).
        failures.append("notRunning: the VM is running (PowerState/running): stop or deallocate it before its disks are copied")
    if vm.os_disk.encrypted:
        failures.append("osDiskNotEncrypted: the OS disk is encrypted (Azure Disk Encryption)")
    with_plan = vm.plan is not None and allow_purchase_plan
    if not vm.from_marketplace_image:
        failures.append("firstPartyMarketplaceImage: the VM was not created from a Marketplace image")
    elif vm.image_publisher.lower() not in FIRST_PARTY_PUBLISHERS and not with_plan:
        failures.append(f"firstPartyMarketplaceImage: publisher '{vm.image_publisher}' is not a first-party publisher")
    if vm.plan is not None and not allow_purchase_plan:
        failures.append(
            f"noPurchasePlan: the base image has a purchase plan ({vm.plan.publisher}/{vm.plan.product}/{vm.plan.name}); "
            "a managed image cannot carry it: use the gallery path (image.galleryId)"
        )
    return failures
