"""Event Grid control plane: system topics, their event subscriptions and custom topics.

What ``python -m cli verify`` reads (azure-mgmt-eventgrid): SystemTopics_Get,
SystemTopics_ListByResourceGroup / _ListBySubscription, SystemTopicEventSubscriptions_Get /
_List, Topics_Get (REST spec specification/eventgrid/resource-manager/Microsoft.EventGrid/
stable/2025-02-15/EventGrid.json). Resources live in the emulator's store; tests and the
healthy-deployment seed add them with :class:`EventGridManagement`. At most one system
topic per source, as Azure allows ("System topics in Azure Event Grid",
https://learn.microsoft.com/azure/event-grid/system-topics: "only one system topic can be
created per Azure resource"); a second one is refused with 400, as the deploy of a second
topic for the same source fails (the message here is the emulator's own wording).
"""

from __future__ import annotations

from ..errors import ArmError, ResourceNotFound
from ..http import ArmRequest, ArmResponse
from ..paging import page
from ..store import ArmResource

SYSTEM_TOPIC = "Microsoft.EventGrid/systemTopics"
SYSTEM_TOPIC_SUBSCRIPTION = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
TOPIC = "Microsoft.EventGrid/topics"


class EventGridManagement:
    """Seeds and reads Event Grid topics and subscriptions in the emulator's store."""

    def __init__(self, emulator) -> None:
        self._emulator = emulator

    @property
    def _store(self):
        return self._emulator.store

    def add_system_topic(self, topic_id: str, source: str, topic_type: str = "Microsoft.Resources.ResourceGroups") -> ArmResource:
        for existing in self._store.of_type(SYSTEM_TOPIC):
            if existing.properties.get("source", "").lower() == source.lower() and existing.id.lower() != topic_id.lower():
                raise ArmError(f"System topic '{existing.id}' already exists for source '{source}'; only one system topic per source is allowed.", code="InvalidRequest")
        return self._store.put(
            ArmResource(topic_id, SYSTEM_TOPIC, "global", {"source": source, "topicType": topic_type, "provisioningState": "Succeeded", "metricResourceId": topic_id})
        )

    def add_event_subscription(self, topic_id: str, name: str, properties: dict) -> ArmResource:
        self._store.require_parent(f"{topic_id}/eventSubscriptions/{name}", topic_id)
        return self._store.put(ArmResource(f"{topic_id}/eventSubscriptions/{name}", SYSTEM_TOPIC_SUBSCRIPTION, None, {**properties, "provisioningState": "Succeeded"}))

    def add_topic(self, topic_id: str, endpoint: str, location: str = "westeurope") -> ArmResource:
        return self._store.put(
            ArmResource(topic_id, TOPIC, location, {"endpoint": endpoint, "inputSchema": "CloudEventSchemaV1_0", "provisioningState": "Succeeded", "disableLocalAuth": True})
        )

    def remove(self, resource_id: str) -> None:
        self._store.remove(resource_id)


def _get(resource_type: str):
    def handler(emulator, request: ArmRequest, **_: str) -> ArmResponse:
        found = emulator.store.find(request.path.rstrip("/"))
        if found is None or found.type != resource_type:
            raise ResourceNotFound(f"The Resource '{resource_type}/{request.path.rstrip('/').rsplit('/', 1)[-1]}' was not found.")
        return ArmResponse(200, found.to_dict())

    return handler


def list_system_topics(emulator, request: ArmRequest, **_: str) -> ArmResponse:
    scope = request.path.rsplit("/providers/", 1)[0]
    return page(request, [t.to_dict() for t in emulator.store.of_type(SYSTEM_TOPIC, under=scope)], emulator.page_size)


def list_system_topic_subscriptions(emulator, request: ArmRequest, **_: str) -> ArmResponse:
    topic_id = request.path.rsplit("/eventSubscriptions", 1)[0]
    emulator.store.get(topic_id)
    return page(request, [s.to_dict() for s in emulator.store.of_type(SYSTEM_TOPIC_SUBSCRIPTION, under=topic_id)], emulator.page_size)


get_system_topic = _get(SYSTEM_TOPIC)
get_system_topic_subscription = _get(SYSTEM_TOPIC_SUBSCRIPTION)
get_topic = _get(TOPIC)
