"""The azd environment the deployment commands read and write, their clock and their one error type."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


class DeployError(Exception):
    """A failure the person running azd can fix: what went wrong and how to fix it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


class Clock(Protocol):
    """Waiting between reads: real time in a hook, the emulator's virtual time in tests."""

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class RealClock:
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class VirtualClock:
    """A clock whose sleep is someone else's (the emulator's ``advance``)."""

    advance: Callable[[float], None]

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def required(environ: Mapping[str, str], *names: str) -> dict[str, str]:
    """The named values, or a DeployError naming every missing one."""
    missing = [name for name in names if not environ.get(name, "").strip()]
    if missing:
        raise DeployError(f"missing in the azd environment: {', '.join(missing)}",
                          "set them with azd env set NAME VALUE (docs/deploy.md), or run azd provision first for its outputs")
    return {name: environ[name].strip() for name in names}


def id_list(environ: Mapping[str, str], name: str) -> list[str]:
    """A JSON array of resource ids (IMAGING_RESOURCE_GROUP_IDS, BATCH_ACCOUNT_IDS), each stripped of a trailing slash."""
    raw = environ.get(name, "").strip() or "[]"
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise DeployError(f"{name} is not a JSON array: {raw[:80]}", f"azd env set {name} '[\"/subscriptions/<sub>/resourceGroups/<name>\"]'") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) and v.startswith("/subscriptions/") for v in value):
        raise DeployError(f"{name} must be a JSON array of resource ids starting /subscriptions/", f"azd env set {name} '[\"/subscriptions/<sub>/...\"]'")
    return [v.rstrip("/") for v in value]


def comma_list(environ: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated output (EVENTGRID_SYSTEM_TOPIC_IDS), empty entries dropped."""
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def subscription_of(resource_id: str) -> str:
    return resource_id.strip("/").split("/")[1]


def resource_group_of(resource_id: str) -> str:
    """The resource group id of a resource id (itself for a resource group id)."""
    return "/".join(resource_id.rstrip("/").split("/")[:5])


_SUBSCRIPTION_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def check_subscription_id(subscription: str) -> str:
    if not _SUBSCRIPTION_ID.match(subscription or ""):
        raise DeployError(f"--subscription {subscription!r} is not a subscription id (a GUID)",
                          "the hooks pass azd's: --subscription \"$AZURE_SUBSCRIPTION_ID\" (azd env get-value AZURE_SUBSCRIPTION_ID)")
    return subscription


EnvWriter = Callable[[str, str], None]


def azd_env_writer(environment_name: str) -> EnvWriter:
    """Writes a value into this azd environment (``azd env set NAME VALUE --environment ENV``).

    The arguments go to azd as an argument list, never through a shell, so a JSON value keeps its quotes.
    """

    def write(name: str, value: str) -> None:
        subprocess.run(["azd", "env", "set", name, value, "--environment", environment_name], check=True)

    return write
