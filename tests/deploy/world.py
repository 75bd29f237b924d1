"""``azd up`` played on the emulator: the hooks' commands for real, the Bicep deployment and the code deploy seeded.

What infra/main.bicep would make is seeded the way it declares it (role assignments, the new system topic,
the Function App with its settings and indexed functions); what the hooks do runs through
``cli.deploy.commands`` with the real SDK clients on the emulator's transport. The teams' own things are
seeded too, so tests can show that nothing of theirs is touched.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

from cli.deploy import commands, roles
from cli.deploy.environment import VirtualClock
from emulator.credentials import StaticTokenCredential
from emulator.world import AzureEmulator
from tests.support import RG_ID, SUBSCRIPTION

OPERATOR_TOKEN = "operator-token"
OPERATOR = "operator-principal"
APP_PRINCIPAL = "11111111-2222-4333-8444-555555555555"
EVENT_GRID_PRINCIPAL = "66666666-2222-4333-8444-555555555555"
TEAM_PRINCIPAL = "99999999-2222-4333-8444-555555555555"
BATCH_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-batch"
ACCOUNT_ID = f"{BATCH_RG}/providers/Microsoft.Batch/batchAccounts/teambatch"
TEAM_TOPIC = f"{BATCH_RG}/providers/Microsoft.EventGrid/systemTopics/team-batch-events"
TEAM_SUBSCRIPTION = f"{TEAM_TOPIC}/eventSubscriptions/team-audit"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


@dataclass
class Deployment:
    """One azd environment's deployment on the emulator: its app resource group, outputs and the environment azd holds."""

    name: str
    world: AzureEmulator
    env: dict[str, str] = field(default_factory=dict)

    @property
    def app_rg(self) -> str:
        return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{self.name}"

    @property
    def function_app_id(self) -> str:
        return f"{self.app_rg}/providers/Microsoft.Web/sites/func-{self.name}"

    @property
    def new_topic_id(self) -> str:
        return f"{RG_ID}/providers/Microsoft.EventGrid/systemTopics/evgt-{self.name}"

    def clients(self) -> commands.Clients:
        return commands.Clients(StaticTokenCredential(OPERATOR_TOKEN), {"transport": self.world.transport()})

    def clock(self) -> VirtualClock:
        return VirtualClock(self.world.advance)

    def prepare(self, subscription: str = SUBSCRIPTION) -> str:
        out = io.StringIO()
        commands.prepare(self.env, subscription, self.clients(), self.clock(), self.env.__setitem__, out)
        return out.getvalue()

    def provision(self) -> None:
        """What main.bicep deploys outside rg-<env>: the role assignments and the system topic of a source without one."""
        auth = self.world.authorization
        auth.assign(RG_ID, APP_PRINCIPAL, self.env[roles.ENV_NAMES[roles.IMAGING]])
        auth.assign(ACCOUNT_ID, APP_PRINCIPAL, self.env[roles.ENV_NAMES[roles.BATCH]])
        auth.assign(f"/subscriptions/{SUBSCRIPTION}", APP_PRINCIPAL, self.env[roles.ENV_NAMES[roles.BATCH_SKUS]])
        auth.assign(f"/subscriptions/{SUBSCRIPTION}", APP_PRINCIPAL, self.env[roles.ENV_NAMES[roles.PROTECTION_AUDIT]])
        reused = json.loads(self.env["EXISTING_SYSTEM_TOPICS"])
        identity = f"{self.app_rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-evg-{self.name}"
        # The Function App exists from here on, with no functions until the code is deployed.
        self.world.web.add_function_app(self.function_app_id, app_settings={}, functions=[])
        created = []
        if RG_ID.lower() not in reused:
            self.world.eventgrid.add_system_topic(self.new_topic_id, RG_ID.lower(), tags={"azd-env-name": self.name},
                                                  identity={"type": "UserAssigned", "userAssignedIdentities": {identity: {}}})
            created.append(self.new_topic_id)
        self.env.update({
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "AZURE_RESOURCE_GROUP": f"rg-{self.name}",
            "AZURE_FUNCTION_APP_ID": self.function_app_id,
            "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID": APP_PRINCIPAL,
            "EVENTGRID_SYSTEM_TOPIC_IDS": ",".join([*reused.values(), *created]),
            "EVENTGRID_DEADLETTER_STORAGE_ID": f"{self.app_rg}/providers/Microsoft.Storage/storageAccounts/st{self.name.replace('-', '')}",
            "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
            "EVENTGRID_IDENTITY_ID": identity,
        })

    def deploy_code(self, functions: list[str], app_settings: dict[str, str] | None = None) -> None:
        self.world.web.add_function_app(self.function_app_id, app_settings=app_settings or {}, functions=functions)

    def subscribe(self) -> str:
        out = io.StringIO()
        commands.subscribe(self.env, SUBSCRIPTION, self.clients(), self.clock(), out)
        return out.getvalue()


def teams_world(seed: int = 3) -> AzureEmulator:
    """A tenant with one subscription, the operator signed in, and what the teams had before any deployment."""
    world = AzureEmulator(seed=seed)
    world.register_subscriptions(SUBSCRIPTION)
    world.authorization.sign_in(OPERATOR_TOKEN, OPERATOR)
    # Role definitions replicate slowly (see emulator.authorization.models).
    world.authorization.replication_seconds = 45
    # The Batch team's own system topic (reused by every deployment), with their system-assigned identity and their subscription.
    world.eventgrid.add_system_topic(TEAM_TOPIC, BATCH_RG.lower(), identity={"type": "SystemAssigned", "principalId": TEAM_PRINCIPAL})
    world.eventgrid.add_event_subscription(TEAM_TOPIC, "team-audit", {"destination": {"endpointType": "WebHook", "properties": {"endpointBaseUrl": "https://audit.contoso.example"}}})
    # A team member holds Contributor on the imaging resource group.
    contributor = world.authorization.define_role(SUBSCRIPTION, CONTRIBUTOR, "Contributor", actions=["*"], assignable_scopes=["/"], role_type="BuiltInRole")
    world.authorization.assign(RG_ID, TEAM_PRINCIPAL, contributor)
    return world


def new_deployment(world: AzureEmulator, name: str = "pools-prod") -> Deployment:
    return Deployment(name, world, {
        "AZURE_ENV_NAME": name,
        "AZURE_LOCATION": "westeurope",
        "IMAGING_RESOURCE_GROUP_IDS": json.dumps([RG_ID]),
        "BATCH_ACCOUNT_IDS": json.dumps([ACCOUNT_ID]),
    })


FUNCTIONS = ["pool_checks", "pool_guard_sweep", "pool_requests", "resource_events"]


def deployed(world: AzureEmulator, name: str = "pools-prod", functions: list[str] = FUNCTIONS) -> Deployment:
    """``azd up`` up to the postdeploy hook: preprovision, provision, deploy."""
    deployment = new_deployment(world, name)
    deployment.prepare()
    deployment.provision()
    deployment.deploy_code(functions)
    return deployment


def azd_up(world: AzureEmulator, name: str = "pools-prod") -> Deployment:
    """The whole ``azd up``: preprovision, provision, deploy, postdeploy."""
    deployment = deployed(world, name)
    deployment.subscribe()
    return deployment
