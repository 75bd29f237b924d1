"""The emulator's answers for what the deployment commands and verify call, under the real SDKs and transport."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from emulator.credentials import StaticTokenCredential
from emulator.world import AzureEmulator
from shared.gateway.failures import error_code
from tests.support import RG_ID, SUBSCRIPTION

SITE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-app/providers/Microsoft.Web/sites/func-abc"


def authorization(world: AzureEmulator, subscription: str = SUBSCRIPTION):
    from azure.mgmt.authorization import AuthorizationManagementClient

    return AuthorizationManagementClient(StaticTokenCredential(), subscription, transport=world.transport())


def web(world: AzureEmulator):
    from azure.mgmt.web import WebSiteManagementClient

    return WebSiteManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=world.transport())


def role(name: str, scopes: list[str]):
    from azure.mgmt.authorization.models import Permission, RoleDefinition

    return RoleDefinition(role_name=name, role_type="CustomRole", permissions=[Permission(actions=["Microsoft.Compute/images/read"])], assignable_scopes=scopes)


def test_given_a_tenant_with_one_subscription_when_another_is_named_then_arm_answers_subscription_not_found():
    world = AzureEmulator()
    world.register_subscriptions(SUBSCRIPTION)
    other = "0b1c2d3e-4f50-4617-8899-aabbccddeeff"
    with pytest.raises(ResourceNotFoundError) as refused:
        list(authorization(world, other).role_definitions.list(f"/subscriptions/{other}"))
    assert error_code(refused.value) == "SubscriptionNotFound" and f"The subscription '{other}' could not be found." in str(refused.value)
    assert list(authorization(world).role_definitions.list(f"/subscriptions/{SUBSCRIPTION}")) == []


def test_given_an_assigned_custom_role_when_deleted_then_arm_refuses_until_the_assignment_is_gone():
    world = AzureEmulator()
    client = authorization(world)
    name = "3b1f0c3e-6f0a-4a55-9d8e-1c6f3f5b2a77"
    created = client.role_definitions.create_or_update(f"/subscriptions/{SUBSCRIPTION}", name, role("readers", [RG_ID]))
    assignment = world.authorization.assign(RG_ID, "someone", created.id)
    with pytest.raises(ResourceExistsError) as refused:
        client.role_definitions.delete(f"/subscriptions/{SUBSCRIPTION}", name)
    assert error_code(refused.value) == "RoleDefinitionHasAssignments"
    client.role_assignments.delete_by_id(assignment.id)
    assert client.role_definitions.delete(f"/subscriptions/{SUBSCRIPTION}", name).role_name == "readers"
    # RoleDefinitions_Delete answers 204 for a role that is not there; the SDK returns None
    assert client.role_definitions.delete(f"/subscriptions/{SUBSCRIPTION}", name) is None


def test_given_a_new_role_when_read_before_it_has_replicated_then_it_is_not_found_and_after_it_is():
    world = AzureEmulator()
    world.authorization.replication_seconds = 30
    client = authorization(world)
    created = client.role_definitions.create_or_update(f"/subscriptions/{SUBSCRIPTION}", "4b1f0c3e-6f0a-4a55-9d8e-1c6f3f5b2a77", role("r", [RG_ID]))
    with pytest.raises(ResourceNotFoundError) as missing:
        client.role_definitions.get_by_id(created.id)
    assert error_code(missing.value) == "RoleDefinitionDoesNotExist"
    world.advance(30)
    assert client.role_definitions.get_by_id(created.id).role_name == "r"


def test_given_a_role_definition_filter_the_emulator_does_not_know_when_listed_then_it_is_refused_naming_it():
    with pytest.raises(HttpResponseError) as refused:
        list(authorization(AzureEmulator()).role_definitions.list(f"/subscriptions/{SUBSCRIPTION}", filter="startswith(roleName, 'x')"))
    assert "is not supported by the emulator" in str(refused.value)


def test_given_a_function_app_when_read_through_the_web_sdk_then_settings_functions_and_host_status_come_back():
    from azure.core.rest import HttpRequest

    world = AzureEmulator()
    world.web.add_function_app(SITE, app_settings={"POOL_REQUESTS_QUEUE": "pool-requests"}, functions=["pool_requests", "resource_events"])
    client = web(world)
    assert client.web_apps.list_application_settings("rg-app", "func-abc").properties == {"POOL_REQUESTS_QUEUE": "pool-requests"}
    assert sorted(f.name for f in client.web_apps.list_functions("rg-app", "func-abc")) == ["func-abc/pool_requests", "func-abc/resource_events"]
    status = client.send_request(HttpRequest("GET", f"{SITE}/host/default/properties/status", params={"api-version": "2025-05-01"}))
    assert status.status_code == 200 and status.json()["properties"]["state"] == "Running"
    assert client.web_apps.get("rg-app", "func-abc").id == SITE
    with pytest.raises(ResourceNotFoundError):
        client.web_apps.list_application_settings("rg-app", "func-other")


def test_given_a_subscription_to_a_function_the_app_does_not_list_when_created_then_event_grid_refuses():
    from azure.mgmt.eventgrid import EventGridManagementClient
    from azure.mgmt.eventgrid.models import AzureFunctionEventSubscriptionDestination, EventSubscription

    world = AzureEmulator()
    topic = f"{RG_ID}/providers/Microsoft.EventGrid/systemTopics/evgt"
    world.eventgrid.add_system_topic(topic, RG_ID)
    world.web.add_function_app(SITE, app_settings={}, functions=[])
    client = EventGridManagementClient(StaticTokenCredential(), SUBSCRIPTION, transport=world.transport())
    body = EventSubscription(destination=AzureFunctionEventSubscriptionDestination(resource_id=f"{SITE}/functions/resource_events"))
    with pytest.raises(HttpResponseError) as refused:
        client.system_topic_event_subscriptions.begin_create_or_update("rg-imaging", "evgt", "s", body).result()
    assert "could not be found" in str(refused.value)
    world.web.add_function_app(SITE, app_settings={}, functions=["resource_events"])
    created = client.system_topic_event_subscriptions.begin_create_or_update("rg-imaging", "evgt", "s", body).result()
    assert created.provisioning_state == "Succeeded"
    client.system_topic_event_subscriptions.begin_delete("rg-imaging", "evgt", "s").result()
    assert world.store.find(f"{topic}/eventSubscriptions/s") is None
