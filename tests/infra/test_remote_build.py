"""What the Function App runs with: the remote build installs exactly the tested packages; host.json settings agree.

The remote build runs ``pip install -r requirements.txt`` on the Function App's platform (Linux, CPython
3.11: ``infra/app/function.bicep`` runtime). Only a fully pinned list makes it install the versions the
tests ran with: a pin of the direct packages alone lets pip pick the newest of everything below them.
The closure is computed from the installed distributions' own metadata (``Requires-Dist`` with its
environment markers evaluated for that platform).
"""

from __future__ import annotations

import json
import re
from importlib.metadata import distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import PROJECT_ROOT

# The Function App's platform (infra/app/function.bicep: Flex Consumption, Linux, python 3.11).
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
TRANSITIVE_MARK = "# Transitive:"


def pins(path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line} is not pinned with =="
            found[canonicalize_name(name)] = version
    return found


def direct_requirements() -> list[str]:
    text = (PROJECT_ROOT / "requirements.txt").read_text()
    assert TRANSITIVE_MARK in text, f"requirements.txt lists its transitive pins after a line starting {TRANSITIVE_MARK!r}"
    head = text.split(TRANSITIVE_MARK, 1)[0]
    return [line.split("#", 1)[0].strip() for line in head.splitlines() if line.split("#", 1)[0].strip()]


def closure(requirements: list[str]) -> dict[str, str]:
    """Every distribution the requirements pull in on the target platform, with its installed version."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras) | found.get(name, ("", frozenset()))[1]
        if name in found and extras == found[name][1]:
            continue
        dist = distribution(requirement.name)
        found[name] = (dist.version, extras)
        for spec in dist.requires or ():
            needed = Requirement(spec)
            if needed.marker is None or any(needed.marker.evaluate({**TARGET, "extra": extra}) for extra in {"", *extras}):
                pending.append(needed)
    return {name: version for name, (version, _) in found.items()}


def test_given_the_direct_runtime_packages_when_their_closure_is_computed_then_requirements_pins_all_of_it_and_nothing_more():
    needed = closure(direct_requirements())
    pinned = pins(PROJECT_ROOT / "requirements.txt")
    assert sorted(set(needed) - set(pinned)) == [], "pin these in requirements.txt (transitive)"
    assert sorted(set(pinned) - set(needed)) == [], "requirements.txt pins packages nothing needs"
    assert {n: v for n, v in pinned.items() if needed[n] != v} == {}, "requirements.txt pins other versions than the tests run with"


def test_given_requirements_and_constraints_when_compared_then_every_runtime_pin_is_the_tested_version():
    constraints = pins(PROJECT_ROOT / "constraints.txt")
    runtime = pins(PROJECT_ROOT / "requirements.txt")
    assert {n: (v, constraints.get(n)) for n, v in runtime.items() if constraints.get(n) != v} == {}


def test_given_host_json_when_read_then_service_bus_locks_are_renewed_for_as_long_as_a_function_may_run():
    # A message whose lock expires while its function still runs is delivered again to another instance.
    host = json.loads((PROJECT_ROOT / "host.json").read_text())

    def seconds(value: str) -> int:
        parsed = re.fullmatch(r"(\d+):(\d\d):(\d\d)", value)
        assert parsed is not None, value
        hours, minutes, secs = (int(part) for part in parsed.groups())
        return hours * 3600 + minutes * 60 + secs

    renewal = seconds(host["extensions"]["serviceBus"]["maxAutoLockRenewalDuration"])
    assert renewal >= seconds(host["functionTimeout"])
