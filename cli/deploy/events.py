"""The ``resource_events`` event subscription on every system topic the deployment watches (the postdeploy hook).

Event Grid checks an Azure Function endpoint when the subscription is created, so this runs after the code is
deployed, and first waits until ARM lists ``resource_events`` for the Function App (right after a deploy it may
not). Dead-lettering "uses the managed identity setup on the parent resource (namely, topic or domain)" (REST
spec, ``deadLetterWithResourceIdentity``): a topic main.bicep created carries the deployment's Event Grid
identity; a reused topic (a team's, or Default-EventGrid's) gets it added here, beside any identity it has
(its ``identity.type`` may be "SystemAssigned, UserAssigned", the spec's IdentityInfo); teardown takes it off.

The subscription is named per azd environment (``resource-events-<env>``), so a second environment watching the
same resource group has its own and never takes the first's events. Re-running is safe: the same PUT again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli.deploy.environment import Clock, DeployError, subscription_of
from cli.deploy.roles import arm_failure

# The events the handlers act on (shared/arm/events.py); Cancel and Action events are not used.
EVENT_TYPES = (
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceWriteFailure",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceDeleteFailure",
)
# subjectBeginsWith takes one prefix and a subject starts with the subscription and resource group, so the
# resource types are matched with an advanced filter on the subject instead.
SUBJECT_CONTAINS = (
    "/providers/Microsoft.Compute/snapshots/",
    "/providers/Microsoft.Compute/images/",
    "/providers/Microsoft.Compute/galleries/",
    "/providers/Microsoft.Batch/batchAccounts/",
    "/providers/Microsoft.Authorization/locks/",
)
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TIME_TO_LIVE_MINUTES = 1440
FUNCTION_NAME = "resource_events"
# How long a just-deployed function may take to be listed in ARM; read every 10 seconds.
FUNCTION_WAIT_SECONDS = 600.0
READ_INTERVAL_SECONDS = 10.0


def subscription_name(environment: str) -> str:
    """``resource-events-<env>``: letters, digits and hyphens, at most 64 characters (Event Grid's rule for names)."""
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", environment).strip("-") or "env"
    return f"resource-events-{cleaned}"[:64].rstrip("-")


@dataclass(frozen=True)
class Deployment:
    """The provision outputs the subscriptions need."""

    environment: str
    function_app_id: str
    dead_letter_storage_id: str
    dead_letter_container: str
    event_grid_identity_id: str
    topic_ids: tuple[str, ...]

    @property
    def endpoint(self) -> str:
        return f"{self.function_app_id}/functions/{FUNCTION_NAME}"


def event_subscription(deployment: Deployment) -> Any:
    """The event subscription as azure-mgmt-eventgrid sends it."""
    from azure.mgmt.eventgrid import models  # cold start: only the deployment commands use it

    return models.EventSubscription(
        # azure.functions 1.x decodes the Event Grid schema (design notes).
        event_delivery_schema="EventGridSchema",
        destination=models.AzureFunctionEventSubscriptionDestination(resource_id=deployment.endpoint, max_events_per_batch=1,
                                                                     preferred_batch_size_in_kilobytes=64),
        filter=models.EventSubscriptionFilter(included_event_types=list(EVENT_TYPES),
                                              advanced_filters=[models.StringContainsAdvancedFilter(key="subject", values=list(SUBJECT_CONTAINS))]),
        retry_policy=models.RetryPolicy(max_delivery_attempts=MAX_DELIVERY_ATTEMPTS, event_time_to_live_in_minutes=EVENT_TIME_TO_LIVE_MINUTES),
        dead_letter_with_resource_identity=models.DeadLetterWithResourceIdentity(
            identity=models.EventSubscriptionIdentity(type="UserAssigned", user_assigned_identity=deployment.event_grid_identity_id),
            dead_letter_destination=models.StorageBlobDeadLetterDestination(resource_id=deployment.dead_letter_storage_id,
                                                                            blob_container_name=deployment.dead_letter_container),
        ),
    )


def wait_for_function(web: Any, function_app_id: str, clock: Clock, *, wait_seconds: float = FUNCTION_WAIT_SECONDS) -> float:
    """List the Function App's functions in ARM until ``resource_events`` is there; the seconds it took."""
    from azure.core.exceptions import HttpResponseError  # cold start: only the deployment commands use it

    parts = function_app_id.strip("/").split("/")
    spent = 0.0
    while True:
        try:
            names = {f.name.rsplit("/", 1)[-1] for f in web.web_apps.list_functions(parts[3], parts[-1])}
        except HttpResponseError as exc:
            raise arm_failure(exc, f"listing the functions of {parts[-1]}", parts[1]) from exc
        if FUNCTION_NAME in names:
            return spent
        if spent >= wait_seconds:
            raise DeployError(f"{FUNCTION_NAME} is still not listed for {parts[-1]} after {spent:.0f} s (listed: {', '.join(sorted(names)) or 'none'})",
                              "check the deployed package (python -m cli verify names what is missing); then run azd hooks run postdeploy")
        clock.sleep(READ_INTERVAL_SECONDS)
        spent += READ_INTERVAL_SECONDS


def ensure_identity(client: Any, topic_id: str, identity_id: str) -> bool:
    """Give the topic the deployment's Event Grid identity, keeping the ones it has; True when it was added."""
    from azure.mgmt.eventgrid import models  # cold start: only the deployment commands use it

    parts = topic_id.strip("/").split("/")
    topic = client.system_topics.get(parts[3], parts[-1])
    current = topic.identity
    kind = (current.type if current is not None else None) or "None"
    assigned = dict((current.user_assigned_identities or {}) if current is not None else {})
    if any(key.lower() == identity_id.lower() for key in assigned):
        return False
    if len(assigned) >= 2:
        # "You can have at most two user-assigned identities assigned to a topic or domain" (PSRule for Azure,
        # Azure.EventGrid.ManagedIdentity, quoting the Event Grid docs).
        raise DeployError(f"system topic {topic_id} has two user-assigned identities already; Event Grid allows no third",
                          f"remove one of {', '.join(assigned)} from the topic, or dead-letter elsewhere; then run azd hooks run postdeploy")
    new_kind = "SystemAssigned, UserAssigned" if "SystemAssigned" in kind else "UserAssigned"
    identities = {**{key: models.UserIdentityProperties() for key in assigned}, identity_id: models.UserIdentityProperties()}
    update = models.SystemTopicUpdateParameters(identity=models.IdentityInfo(type=new_kind, user_assigned_identities=identities))
    client.system_topics.begin_update(parts[3], parts[-1], update).result()
    return True


def subscribe(deployment: Deployment, eventgrid: Callable[[str], Any], web: Any, clock: Clock, say: Callable[[str], None]) -> None:
    """Wait for the function, then give each topic the identity and the subscription (create or update)."""
    from azure.core.exceptions import HttpResponseError  # cold start: only the deployment commands use it

    waited = wait_for_function(web, deployment.function_app_id, clock)
    say(f"{FUNCTION_NAME} is listed in ARM" + (f" (after {waited:.0f} s)" if waited else ""))
    name = subscription_name(deployment.environment)
    body = event_subscription(deployment)
    for topic_id in deployment.topic_ids:
        parts = topic_id.strip("/").split("/")
        client = eventgrid(subscription_of(topic_id))
        try:
            if ensure_identity(client, topic_id, deployment.event_grid_identity_id):
                say(f"gave {parts[-1]} ({parts[3]}) the Event Grid identity dead-lettering uses")
            client.system_topic_event_subscriptions.begin_create_or_update(parts[3], parts[-1], name, body).result()
        except HttpResponseError as exc:
            raise arm_failure(exc, f"subscribing {FUNCTION_NAME} to {parts[-1]} ({parts[3]})", parts[1]) from exc
        say(f"subscribed {FUNCTION_NAME} to {parts[-1]} ({parts[3]}) as {name}")
