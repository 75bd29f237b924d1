"""azd's hooks, as ``python -m cli deploy prepare|subscribe``, on the emulator under the real SDK transport."""

from __future__ import annotations

import io
import json

import pytest
from azure.core.exceptions import HttpResponseError

from cli.deploy import commands, events, roles
from cli.deploy.environment import DeployError
from emulator.errors import ArmError
from tests.deploy.world import (
    ACCOUNT_ID,
    APP_PRINCIPAL,
    BATCH_RG,
    FUNCTIONS,
    TEAM_PRINCIPAL,
    TEAM_SUBSCRIPTION,
    TEAM_TOPIC,
    azd_up,
    deployed,
    new_deployment,
    teams_world,
)
from tests.support import RG_ID, SUBSCRIPTION


def test_given_new_custom_roles_when_prepared_then_each_is_read_back_by_id_until_it_has_replicated_and_its_id_goes_to_azd():
    world = teams_world()
    deployment = new_deployment(world)
    started = world.now()
    printed = deployment.prepare()
    # The emulator hides a new role for 45 s: reads every 10 s find it at 50 s, and the other three right after.
    assert (world.now() - started).total_seconds() == 50
    assert "(readable after 50 s)" in printed
    imaging_id = deployment.env["IMAGING_ROLE_ID"]
    assert imaging_id.startswith(f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/")
    assert {deployment.env[n] for n in roles.ENV_NAMES.values()} == {r.id for r in roles.custom_roles(SUBSCRIPTION, "pools-prod", [RG_ID], [ACCOUNT_ID])}
    # and the assignment main.bicep then makes finds it
    world.authorization.assign(RG_ID, APP_PRINCIPAL, imaging_id)


def test_given_a_role_assignable_only_on_resource_groups_when_listed_at_its_subscription_then_only_atScopeAndBelow_finds_it():
    from azure.mgmt.authorization import AuthorizationManagementClient

    from emulator.credentials import StaticTokenCredential

    world = teams_world()
    deployment = new_deployment(world)
    deployment.prepare()
    client = AuthorizationManagementClient(StaticTokenCredential("operator-token"), SUBSCRIPTION, transport=world.transport())
    custom = f"/subscriptions/{SUBSCRIPTION}"
    listed = {r.id for r in client.role_definitions.list(custom, filter="type eq 'CustomRole'")}
    below = {r.id for r in client.role_definitions.list(custom, filter="atScopeAndBelow()")}
    imaging, batch = deployment.env["IMAGING_ROLE_ID"], deployment.env["BATCH_ROLE_ID"]
    # "at scope and above" (what az role definition list --name does): the resource-group roles are not there ...
    assert imaging not in listed and batch not in listed and deployment.env["BATCH_SKUS_ROLE_ID"] in listed
    # ... atScopeAndBelow() and a read by id find them.
    assert {imaging, batch} <= below
    assert client.role_definitions.get_by_id(imaging).role_name.startswith("Custom image pools imaging")
    assert {r.id for r in client.role_definitions.list(RG_ID)} >= {imaging}


def test_given_a_role_not_yet_replicated_when_assigned_then_arm_refuses_as_the_first_azd_up_would_have():
    world = teams_world()
    deployment = new_deployment(world)
    wanted = roles.custom_roles(SUBSCRIPTION, "pools-prod", [RG_ID], [ACCOUNT_ID])
    roles.ensure_roles(deployment.clients().authorization(SUBSCRIPTION), wanted)
    with pytest.raises(ArmError) as refused:
        world.authorization.assign(RG_ID, APP_PRINCIPAL, wanted[0].id)
    assert refused.value.code == "RoleDefinitionDoesNotExist"


def test_given_a_subscription_the_tenant_does_not_have_when_prepared_then_it_is_refused_with_a_clear_message_and_nothing_is_written():
    world = teams_world()
    deployment = new_deployment(world)
    wrong = "0b1c2d3e-4f50-4617-8899-aabbccddeeff"
    with pytest.raises(DeployError) as refused:
        deployment.prepare(subscription=wrong)
    assert str(refused.value) == f"creating the imaging role: ARM does not know subscription {wrong} (SubscriptionNotFound)"
    assert "AZURE_SUBSCRIPTION_ID" in refused.value.fix and "az account list" in refused.value.fix
    assert "IMAGING_ROLE_ID" not in deployment.env
    err = io.StringIO()
    assert commands.run_guarded(lambda: None if deployment.prepare(subscription=wrong) else None, err) == 1
    assert err.getvalue().startswith("error: creating the imaging role: ARM does not know subscription") and "\nfix: " in err.getvalue()


def test_given_a_source_with_a_topic_already_when_prepared_then_that_topic_is_handed_to_the_deployment_for_reuse():
    world = teams_world()
    deployment = new_deployment(world)
    printed = deployment.prepare()
    assert json.loads(deployment.env["EXISTING_SYSTEM_TOPICS"]) == {BATCH_RG.lower(): TEAM_TOPIC}
    assert f"reusing system topic {TEAM_TOPIC}" in printed


def test_given_a_deployed_app_when_subscribed_then_every_topic_gets_this_environments_subscription_after_the_function_is_listed():
    world = teams_world()
    deployment = new_deployment(world)
    deployment.prepare()
    deployment.provision()
    # The function shows up in ARM 30 s after the hook starts waiting.
    world.clock.call_later(30, lambda: deployment.deploy_code(FUNCTIONS))
    started = world.now()
    printed = deployment.subscribe()
    assert (world.now() - started).total_seconds() == 30 and "resource_events is listed in ARM (after 30 s)" in printed
    name = events.subscription_name("pools-prod")
    assert name == "resource-events-pools-prod"
    for topic_id in (TEAM_TOPIC, deployment.new_topic_id):
        created = world.store.get(f"{topic_id}/eventSubscriptions/{name}")
        assert created.properties["destination"]["properties"]["resourceId"] == f"{deployment.function_app_id}/functions/resource_events"
        assert set(created.properties["filter"]["includedEventTypes"]) == set(events.EVENT_TYPES)
        assert created.properties["deadLetterWithResourceIdentity"]["identity"]["userAssignedIdentity"] == deployment.env["EVENTGRID_IDENTITY_ID"]
    # The reused topic got the identity dead-lettering uses, beside the team's; the team's subscription is untouched.
    identity = world.store.get(TEAM_TOPIC).extra["identity"]
    assert identity["type"] == "SystemAssigned, UserAssigned" and identity["principalId"] == TEAM_PRINCIPAL
    assert set(identity["userAssignedIdentities"]) == {deployment.env["EVENTGRID_IDENTITY_ID"]}
    assert world.store.find(TEAM_SUBSCRIPTION) is not None
    assert "gave team-batch-events (rg-batch) the Event Grid identity dead-lettering uses" in printed


def test_given_a_reused_topic_without_the_identity_when_a_subscription_dead_letters_with_it_then_event_grid_refuses():
    from azure.mgmt.eventgrid import EventGridManagementClient

    from emulator.credentials import StaticTokenCredential

    world = teams_world()
    deployment = deployed(world)
    client = EventGridManagementClient(StaticTokenCredential("operator-token"), SUBSCRIPTION, transport=world.transport())
    body = events.event_subscription(events.Deployment("pools-prod", deployment.function_app_id, "st", "c", deployment.env["EVENTGRID_IDENTITY_ID"], ()))
    with pytest.raises(HttpResponseError) as refused:
        client.system_topic_event_subscriptions.begin_create_or_update("rg-batch", "team-batch-events", "x", body).result()
    assert "is not assigned to the system topic" in str(refused.value)


def test_given_two_environments_on_the_same_resource_groups_when_both_subscribe_then_each_keeps_its_own_subscription():
    world = teams_world()
    prod = azd_up(world, "pools-prod")
    dev = azd_up(world, "pools-dev")
    names = {s.name for s in world.store.of_type("Microsoft.Eventgrid/systemTopics/eventSubscriptions", under=TEAM_TOPIC)}
    assert names == {"team-audit", "resource-events-pools-prod", "resource-events-pools-dev"}
    assert world.store.get(f"{TEAM_TOPIC}/eventSubscriptions/resource-events-pools-prod").properties["destination"]["properties"]["resourceId"].startswith(prod.function_app_id)
    assert world.store.get(f"{TEAM_TOPIC}/eventSubscriptions/resource-events-pools-dev").properties["destination"]["properties"]["resourceId"].startswith(dev.function_app_id)


def test_given_the_function_never_listed_when_subscribing_then_the_hook_gives_up_after_ten_minutes_naming_what_is_listed():
    world = teams_world()
    deployment = deployed(world, functions=["pool_requests"])
    with pytest.raises(DeployError) as gave_up:
        deployment.subscribe()
    assert str(gave_up.value) == "resource_events is still not listed for func-pools-prod after 600 s (listed: pool_requests)"
    assert "python -m cli verify" in gave_up.value.fix


def test_given_a_reused_topic_with_two_user_assigned_identities_when_subscribing_then_the_hook_stops_naming_them():
    world = teams_world()
    deployment = deployed(world)
    theirs = [f"{BATCH_RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{n}" for n in ("a", "b")]
    world.store.get(TEAM_TOPIC).extra["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {i: {} for i in theirs}}
    with pytest.raises(DeployError) as stopped:
        deployment.subscribe()
    assert "has two user-assigned identities already" in str(stopped.value) and theirs[0] in stopped.value.fix


def test_given_arm_throttling_and_a_server_error_when_the_hooks_run_then_the_sdk_retries_and_both_finish():
    from emulator.faults import FaultKind, FaultRule

    world = teams_world()
    world.faults.add(FaultRule("PUT Microsoft.Authorization/roleDefinitions", FaultKind.THROTTLE, limit=2))
    world.faults.add(FaultRule("PUT Microsoft.EventGrid/systemTopics/eventSubscriptions", FaultKind.SERVER_ERROR, limit=1))
    world.faults.add(FaultRule("GET Microsoft.Web/sites/functions", FaultKind.UNAVAILABLE, limit=1))
    deployment = azd_up(world)
    assert world.faults.fired_by_kind == {FaultKind.THROTTLE: 2, FaultKind.SERVER_ERROR: 1, FaultKind.UNAVAILABLE: 1}
    assert world.store.find(f"{TEAM_TOPIC}/eventSubscriptions/resource-events-pools-prod") is not None
    assert len(roles.custom_roles(SUBSCRIPTION, "pools-prod", [RG_ID], [ACCOUNT_ID])) == sum(
        1 for n in roles.ENV_NAMES.values() if deployment.env.get(n))
