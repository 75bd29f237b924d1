"""Service Bus control plane: Queues_Get, answered from the emulator's queues.

REST spec specification/servicebus/resource-manager/Microsoft.ServiceBus/stable/2021-11-01/
Queue.json (Queues_Get; azure-mgmt-servicebus calls its own later api-version, same shape).
The emulator has one Service Bus namespace: any namespace name reaches it. A queue exists
once something created it (``ServiceBusEmulator.queue``) and answers 404 otherwise.
"""

from __future__ import annotations

from ..errors import ResourceNotFound
from ..http import ArmRequest, ArmResponse

QUEUE = "Microsoft.ServiceBus/namespaces/queues"


def get_queue(emulator, request: ArmRequest, subscription: str, resource_group: str, namespace: str, queue: str) -> ArmResponse:
    found = emulator.servicebus.queues.get(queue)
    if found is None:
        # Queues_Get of a missing queue: 404 with ARM's error body (the emulator's wording).
        raise ResourceNotFound(f"The messaging entity '{namespace}:Queue:{queue}' could not be found.", code="MessagingEntityNotFound")
    body = {
        "id": request.path.rstrip("/"),
        "name": queue,
        "type": QUEUE,
        "properties": {"status": "Active", "maxDeliveryCount": found.max_delivery_count, "deadLetteringOnMessageExpiration": True},
    }
    return ArmResponse(200, body)
