"""Azure's 4xx answers sorted by code and message: under way, try again later, or refused for good (fast: no HTTP).

Each message is one Azure is recorded to answer (sources next to :func:`shared.gateway.failures.sort_refusal`).
"""

from __future__ import annotations

import pytest

from shared.gateway.failures import Refusal, sort_refusal

CONCURRENT = ("The request failed due to conflict with a concurrent request. To resolve it, please refer to "
              "https://aka.ms/activitylog to get more details on the conflicting requests.")
QUOTA = ("Operation could not be completed as it results in exceeding approved Total Regional Cores quota. Additional "
         "details - Deployment Model: Resource Manager, Location: westus2, Current Limit: 10, Current Usage: 6")


class TestUnderWay:
    @pytest.mark.parametrize("status, code, message", [
        (409, "Conflict", CONCURRENT),
        (409, "Conflict", "Cannot modify this web hosting plan because another operation is in progress."),
        (409, "AnotherOperationInProgress", "Another operation on this or dependent resource is in progress."),
        (412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."),
    ])
    def test_an_answer_that_the_same_resource_is_being_written_means_the_step_is_under_way(self, status, code, message):
        assert sort_refusal(status, code, message) is Refusal.UNDER_WAY


class TestRefusedForGood:
    @pytest.mark.parametrize("code, message", [
        ("OperationNotAllowed", QUOTA),
        ("OperationNotAllowed", "Disk pvc-1 is attached to VM /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm0."),
        ("PropertyChangeNotAllowed", "Changing property 'galleryImage.properties.hyperVGeneration' is not allowed."),
        ("ScopeLocked", "The scope '/subscriptions/s/resourceGroups/rg' cannot perform write operation because following scope(s) are locked"),
        ("Conflict", "The resource with id 'x' has a different Hypervisor generation ['V2'] than the parent gallery image"),
        ("SomethingNobodyRecorded", "An answer no source shows."),
    ])
    def test_a_409_that_does_not_say_an_operation_is_in_progress_is_permanent(self, code, message):
        assert sort_refusal(409, code, message) is Refusal.PERMANENT

    @pytest.mark.parametrize("status", [400, 403, 404])
    def test_other_4xx_are_permanent(self, status):
        assert sort_refusal(status, "Conflict", CONCURRENT) is Refusal.PERMANENT


class TestTryAgainLater:
    def test_an_operation_not_allowed_that_asks_to_retry_is_transient(self):
        message = "The resource provider cannot perform this operation currently due to system upgrade. Please retry after some time."
        assert sort_refusal(409, "OperationNotAllowed", message) is Refusal.TRANSIENT
