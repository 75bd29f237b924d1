"""``python -m cli teardown`` on emulator deployments: it lists, then removes, exactly what the deployment made
outside azd's resource group, and nothing a team (or another environment) made."""

from __future__ import annotations

import io

from cli.deploy import roles
from cli.deploy.teardown import plan, teardown
from emulator.store import ArmResource
from tests.deploy.world import ACCOUNT_ID, APP_PRINCIPAL, CONTRIBUTOR, TEAM_PRINCIPAL, TEAM_SUBSCRIPTION, TEAM_TOPIC, azd_up, teams_world
from tests.support import RG_ID, SUBSCRIPTION

IMAGE_ID = f"{RG_ID}/providers/Microsoft.Compute/images/cip-req-1"


def with_locks(world):
    """An image a pool used, locked by the functions, and a lock of the team's own on the resource group."""
    world.store.put(ArmResource(IMAGE_ID, "Microsoft.Compute/images", "westeurope", {"provisioningState": "Succeeded"}))
    world.locks.put(IMAGE_ID, "cip-protect", {"properties": {"level": "CanNotDelete", "notes": "custom-image-pools: used by pool p1"}}, url="https://management.azure.com/x")
    world.locks.put(RG_ID, "team-keep", {"properties": {"level": "CanNotDelete"}}, url="https://management.azure.com/x")


def rows(printed: str) -> set[tuple[str, str, str]]:
    """(action, kind, id) of each table row."""
    found = set()
    for line in printed.splitlines()[1:]:
        for action in ("would remove", "removed", "kept"):
            if line.startswith(action + " "):
                rest = line[len(action):].strip()
                for kind in ("event subscription", "identity on a reused topic", "system topic", "role assignment", "custom role", "lock"):
                    if rest.startswith(kind + " "):
                        found.add((action, kind, rest[len(kind):].strip().split("  ")[0]))
    return found


def test_given_two_environments_and_the_teams_things_when_one_is_torn_down_then_exactly_its_own_things_are_listed_then_removed():
    world = teams_world()
    prod = azd_up(world, "pools-prod")
    dev = azd_up(world, "pools-dev")
    with_locks(world)
    prod_roles = roles.custom_roles(SUBSCRIPTION, "pools-prod", [RG_ID], [ACCOUNT_ID])
    assignments = {a.id for a in world.authorization.assignments() if a.role_definition_id in {r.id for r in prod_roles}}
    assert len(assignments) == 4
    before = {r.id for r in world.store}

    # WHEN the operator runs the dry run
    out = io.StringIO()
    assert teardown(prod.env, SUBSCRIPTION, prod.clients(), out, yes=False, remove_locks=False) == 0
    listed = rows(out.getvalue())
    # THEN it lists exactly prod's things, and says what it keeps and why; nothing changed
    would = {(kind, id_) for action, kind, id_ in listed if action == "would remove"}
    assert would == {
        ("event subscription", f"{TEAM_TOPIC}/eventSubscriptions/resource-events-pools-prod"),
        ("event subscription", f"{prod.new_topic_id}/eventSubscriptions/resource-events-pools-prod"),
        ("identity on a reused topic", f"{TEAM_TOPIC} (id-evg-pools-prod)"),
        *{("role assignment", a) for a in assignments},
        *{("custom role", r.id) for r in prod_roles},
    }
    kept = {(kind, id_) for action, kind, id_ in listed if action == "kept"}
    assert kept == {("system topic", TEAM_TOPIC), ("system topic", prod.new_topic_id), ("lock", f"{IMAGE_ID}/providers/Microsoft.Authorization/locks/cip-protect")}
    assert "carries event subscriptions of others: resource-events-pools-dev" in out.getvalue()
    assert "reused: it existed before this deployment" in out.getvalue() and "pass --remove-locks" in out.getvalue()
    assert {r.id for r in world.store} == before

    # WHEN it runs with --yes
    out = io.StringIO()
    assert teardown(prod.env, SUBSCRIPTION, prod.clients(), out, yes=True, remove_locks=False) == 0
    assert {(kind, id_) for action, kind, id_ in rows(out.getvalue()) if action == "removed"} == would
    # THEN prod's things are gone ...
    assert world.store.find(f"{TEAM_TOPIC}/eventSubscriptions/resource-events-pools-prod") is None
    assert not [a for a in world.authorization.assignments() if a.id in assignments]
    assert not world.authorization.list_definitions(f"/subscriptions/{SUBSCRIPTION}", f"roleName eq '{prod_roles[0].role_name}'")
    # ... and the team's and the other environment's are all there
    assert world.store.find(TEAM_SUBSCRIPTION) is not None
    team_identity = world.store.get(TEAM_TOPIC).extra["identity"]
    assert team_identity["principalId"] == TEAM_PRINCIPAL and set(team_identity["userAssignedIdentities"]) == {dev.env["EVENTGRID_IDENTITY_ID"]}
    assert world.store.find(f"{prod.new_topic_id}/eventSubscriptions/resource-events-pools-dev") is not None
    assert world.store.find(f"{TEAM_TOPIC}/eventSubscriptions/resource-events-pools-dev") is not None
    assert len([a for a in world.authorization.assignments() if a.role_definition_id in {dev.env[n] for n in roles.ENV_NAMES.values()}]) == 4
    assert [a.principal_id for a in world.authorization.assignments() if a.role_definition_id.endswith(CONTRIBUTOR)] == [TEAM_PRINCIPAL]
    assert world.store.find(f"{IMAGE_ID}/providers/Microsoft.Authorization/locks/cip-protect") is not None
    assert world.store.find(f"{RG_ID}/providers/Microsoft.Authorization/locks/team-keep") is not None

    # AND a second dry run finds only what it keeps
    out = io.StringIO()
    teardown(prod.env, SUBSCRIPTION, prod.clients(), out, yes=False, remove_locks=False)
    assert {action for action, _, _ in rows(out.getvalue())} == {"kept"}


def test_given_the_only_environment_when_torn_down_with_remove_locks_then_its_topic_and_the_locks_go_too_and_the_team_lock_stays():
    world = teams_world()
    prod = azd_up(world, "pools-prod")
    with_locks(world)
    out = io.StringIO()
    assert teardown(prod.env, SUBSCRIPTION, prod.clients(), out, yes=True, remove_locks=True) == 0
    removed = {(kind, id_) for action, kind, id_ in rows(out.getvalue()) if action == "removed"}
    assert ("system topic", prod.new_topic_id) in removed
    assert ("lock", f"{IMAGE_ID}/providers/Microsoft.Authorization/locks/cip-protect") in removed
    assert world.store.find(prod.new_topic_id) is None
    assert world.store.find(f"{IMAGE_ID}/providers/Microsoft.Authorization/locks/cip-protect") is None
    assert world.store.find(f"{RG_ID}/providers/Microsoft.Authorization/locks/team-keep") is not None
    assert world.store.get(TEAM_TOPIC).extra["identity"] == {"type": "SystemAssigned", "principalId": TEAM_PRINCIPAL}
    assert world.store.find(TEAM_SUBSCRIPTION) is not None


def test_given_one_of_the_roles_assigned_to_someone_else_when_torn_down_then_that_assignment_and_its_role_are_kept_and_named():
    world = teams_world()
    prod = azd_up(world, "pools-prod")
    world.authorization.assign(RG_ID, TEAM_PRINCIPAL, prod.env["IMAGING_ROLE_ID"])
    items = plan(prod.env, SUBSCRIPTION, prod.clients(), remove_locks=False)
    kept = {(i.kind, i.reason) for i in items if not i.remove}
    assert ("custom role", next(r.role_name for r in roles.custom_roles(SUBSCRIPTION, "pools-prod", [RG_ID], [ACCOUNT_ID]) if r.key == roles.IMAGING)
            + ": still assigned to another principal") in kept
    assert any(kind == "role assignment" and TEAM_PRINCIPAL in reason for kind, reason in kept)
    assert [i for i in items if i.kind == "role assignment" and i.remove and APP_PRINCIPAL]  # the app's own still go


def test_given_the_command_line_when_asking_for_teardown_help_then_the_options_are_offered():
    from cli.__main__ import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["teardown"].format_help()  # type: ignore[union-attr, index]  # noqa: SLF001 - argparse lists subcommands nowhere public
    assert "--yes" in help_text and "--remove-locks" in help_text
