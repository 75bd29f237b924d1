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

Writes the deployment commands make (same spec): SystemTopics_Update (PATCH: the topic's identity and
tags), SystemTopics_Delete, SystemTopicEventSubscriptions_CreateOrUpdate (PUT) and _Delete. They are
long-running in Azure; the emulator finishes them at once and answers with the spec's final codes
(200 or 201 with ``provisioningState: Succeeded``, 200 or 204 for a delete), which azure-core's poller
takes as done. An event subscription is refused (400) when:

- its ``deadLetterWithResourceIdentity`` (or ``deliveryWithResourceIdentity``) names a user-assigned
  identity the topic does not have: that destination "uses the managed identity setup on the parent
  resource (namely, topic or domain)" (the spec's description of both properties);
- its ``AzureFunction`` destination names a function the Function App does not list: Event Grid checks
  the endpoint when the subscription is created (why azd's postdeploy hook waits for the function). The
  messages are the emulator's own wording.

A topic's ``identity.type`` is one of None, SystemAssigned, UserAssigned and "SystemAssigned, UserAssigned"
(the spec's IdentityInfo).
"""

from __future__ import annotations

from typing import Any

from ..errors import ArmError, InvalidRequestContent, ResourceNotFound
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

    def add_system_topic(self, topic_id: str, source: str, topic_type: str = "Microsoft.Resources.ResourceGroups", *,
                         identity: dict | None = None, tags: dict | None = None) -> ArmResource:
        for existing in self._store.of_type(SYSTEM_TOPIC):
            if existing.properties.get("source", "").lower() == source.lower() and existing.id.lower() != topic_id.lower():
                raise ArmError(f"System topic '{existing.id}' already exists for source '{source}'; only one system topic per source is allowed.", code="InvalidRequest")
        return self._store.put(
            ArmResource(topic_id, SYSTEM_TOPIC, "global", {"source": source, "topicType": topic_type, "provisioningState": "Succeeded", "metricResourceId": topic_id},
                        tags=dict(tags or {}), extra={"identity": identity or {"type": "None"}})
        )

    # -- writes ---------------------------------------------------------------------------

    def update_system_topic(self, topic_id: str, body: dict[str, Any]) -> ArmResource:
        """SystemTopics_Update: the identity and the tags, as sent."""
        topic = self._system_topic(topic_id)
        if "identity" in body:
            # A system-assigned identity that stays keeps its principal (it is the topic's own, not sent back).
            kept = (topic.extra.get("identity") or {}).get("principalId")
            topic.extra["identity"] = _identity({**(body["identity"] or {}), "principalId": kept})
        if "tags" in body:
            topic.tags = dict(body["tags"] or {})
        return topic

    def delete_system_topic(self, topic_id: str) -> bool:
        """SystemTopics_Delete: the topic and its event subscriptions; False when there was none."""
        if self._store.find(topic_id) is None:
            return False
        for child in self._store.of_type(SYSTEM_TOPIC_SUBSCRIPTION, under=topic_id):
            self._store.remove(child.id)
        self._store.remove(topic_id)
        return True

    def put_event_subscription(self, topic_id: str, name: str, body: dict[str, Any]) -> tuple[int, ArmResource]:
        topic = self._system_topic(topic_id)
        properties = dict(body.get("properties") or {})
        assigned = {k.lower() for k in (topic.extra.get("identity") or {}).get("userAssignedIdentities") or {}}
        for key in ("deadLetterWithResourceIdentity", "deliveryWithResourceIdentity"):
            wanted = ((properties.get(key) or {}).get("identity") or {}).get("userAssignedIdentity")
            if wanted and wanted.lower() not in assigned:
                raise InvalidRequestContent(f"{key}: the identity '{wanted}' is not assigned to the system topic '{topic.name}'.", code="InvalidRequest")
        destination = properties.get("destination") or {}
        if destination.get("endpointType") == "AzureFunction":
            function_id = (destination.get("properties") or {}).get("resourceId") or ""
            if self._store.find(function_id) is None:
                raise InvalidRequestContent(f"The Azure Function '{function_id}' of the destination could not be found.", code="InvalidRequest")
        existing = self._store.find(f"{topic_id}/eventSubscriptions/{name}")
        created = self.add_event_subscription(topic_id, name, properties)
        return (200 if existing else 201), created

    def _system_topic(self, topic_id: str) -> ArmResource:
        found = self._store.find(topic_id)
        if found is None or found.type != SYSTEM_TOPIC:
            raise ResourceNotFound(f"The Resource '{SYSTEM_TOPIC}/{topic_id.rstrip('/').rsplit('/', 1)[-1]}' was not found.")
        return found

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


def _identity(identity: dict[str, Any] | None) -> dict[str, Any]:
    kinds = ("None", "SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned")
    kind = (identity or {}).get("type") or "None"
    if kind not in kinds:
        raise InvalidRequestContent(f"identity.type '{kind}' is not one of {', '.join(kinds)}.")
    shaped: dict[str, Any] = {"type": kind}
    if "UserAssigned" in kind:
        shaped["userAssignedIdentities"] = {k: {"principalId": "", "clientId": ""} for k in (identity or {}).get("userAssignedIdentities") or {}}
    if "SystemAssigned" in kind:
        shaped["principalId"] = (identity or {}).get("principalId") or "00000000-0000-0000-0000-00000000e9d1"
    return shaped


def update_system_topic(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    return ArmResponse(200, emulator.eventgrid.update_system_topic(request.path.rstrip("/"), request.json()).to_dict())


def delete_system_topic(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    return ArmResponse(200 if emulator.eventgrid.delete_system_topic(request.path.rstrip("/")) else 204)


def put_system_topic_subscription(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    topic_id, name = request.path.rstrip("/").rsplit("/eventSubscriptions/", 1)
    status, created = emulator.eventgrid.put_event_subscription(topic_id, name, request.json())
    return ArmResponse(status, created.to_dict())


def delete_system_topic_subscription(emulator: Any, request: ArmRequest, **_: str) -> ArmResponse:
    return ArmResponse(200 if emulator.store.remove(request.path.rstrip("/")) is not None else 204)
