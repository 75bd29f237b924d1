"""Route table for Event Grid: custom topics (data plane) and the control plane verify reads."""

from __future__ import annotations

from ..router import Route
from . import management as m
from . import responses as r

_RG = "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.EventGrid"
_SYSTEM_TOPIC = _RG + "/systemTopics/{topic}"

ROUTES = [
    # Publishing is a data action ("EventGrid Data Sender": Microsoft.EventGrid/events/send/action,
    # https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration#eventgrid-data-sender).
    Route("POST", "/api/events", "Microsoft.EventGrid/topics", r.publish_events, host_suffix="eventgrid.azure.net", emits_events=False, rbac_action="Microsoft.EventGrid/events/send/action"),
    Route("GET", "/subscriptions/{subscription}/providers/Microsoft.EventGrid/systemTopics", m.SYSTEM_TOPIC, m.list_system_topics, emits_events=False),
    Route("GET", _RG + "/systemTopics", m.SYSTEM_TOPIC, m.list_system_topics, emits_events=False),
    Route("GET", _SYSTEM_TOPIC, m.SYSTEM_TOPIC, m.get_system_topic, emits_events=False),
    Route("PATCH", _SYSTEM_TOPIC, m.SYSTEM_TOPIC, m.update_system_topic, emits_events=False),
    Route("DELETE", _SYSTEM_TOPIC, m.SYSTEM_TOPIC, m.delete_system_topic, emits_events=False),
    Route("GET", _SYSTEM_TOPIC + "/eventSubscriptions", m.SYSTEM_TOPIC_SUBSCRIPTION, m.list_system_topic_subscriptions, emits_events=False),
    Route("GET", _SYSTEM_TOPIC + "/eventSubscriptions/{name}", m.SYSTEM_TOPIC_SUBSCRIPTION, m.get_system_topic_subscription, emits_events=False),
    Route("PUT", _SYSTEM_TOPIC + "/eventSubscriptions/{name}", m.SYSTEM_TOPIC_SUBSCRIPTION, m.put_system_topic_subscription, emits_events=False),
    Route("DELETE", _SYSTEM_TOPIC + "/eventSubscriptions/{name}", m.SYSTEM_TOPIC_SUBSCRIPTION, m.delete_system_topic_subscription, emits_events=False),
    Route("GET", _RG + "/topics/{topic}", m.TOPIC, m.get_topic, emits_events=False),
]
