"""Every app setting the project reads, named once.

Bindings refer to these names as ``%NAME%`` (queue names) or as connection
prefixes (identity-based connections: ``SERVICEBUS__fullyQualifiedNamespace``);
``infra/`` sets each of them. Code never reads ``os.environ`` anywhere else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlparse

# Connection prefix of the Service Bus trigger bindings (identity-based).
SERVICEBUS_CONNECTION = "SERVICEBUS"
SERVICEBUS_NAMESPACE = "SERVICEBUS__fullyQualifiedNamespace"
POOL_REQUESTS_QUEUE = "POOL_REQUESTS_QUEUE"
ARM_ENDPOINT = "ARM_ENDPOINT"
ALERTS_TOPIC_ENDPOINT = "ALERTS_TOPIC_ENDPOINT"
LEDGER_TABLE_ENDPOINT = "LEDGER_TABLE_ENDPOINT"
LEDGER_TABLE_NAME = "LEDGER_TABLE_NAME"
ALLOWED_SCOPES = "ALLOWED_SCOPES"

T = TypeVar("T")

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_LEDGER_TABLE_NAME = "poolrequests"


class SettingError(ValueError):
    """An app setting is missing or malformed; the message names it."""


def _https_url(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise SettingError(f"App setting {name} must be an absolute URL such as https://host/, got {value!r}")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost"):
        raise SettingError(f"App setting {name} must use https (http is allowed only on loopback), got {value!r}")
    return value.rstrip("/")


def _namespace(name: str, value: str) -> str:
    if "://" in value or "/" in value or "." not in value:
        raise SettingError(
            f"App setting {name} must be a fully qualified namespace such as "
            f"mybus.servicebus.windows.net, got {value!r}"
        )
    return value


def _table_name(name: str, value: str) -> str:
    if not (3 <= len(value) <= 63 and value.isalnum() and value[0].isalpha()):
        raise SettingError(
            f"App setting {name} must be 3-63 letters or digits starting with a letter (Azure table rules), got {value!r}"
        )
    return value


def _queue_name(name: str, value: str) -> str:
    if not (1 <= len(value) <= 260) or any(c.isspace() for c in value):
        raise SettingError(f"App setting {name} must be a Service Bus queue name without spaces, got {value!r}")
    return value


def _scopes(name: str, value: str) -> tuple[str, ...]:
    from .arm_ids import ArmIdError, parse_scope

    try:
        scopes = tuple(parse_scope(part) for part in re.split(r"[,;\s]+", value) if part)
    except ArmIdError as exc:
        raise SettingError(f"App setting {name} must list subscription, resource group or Batch account ids: {exc}") from exc
    if not scopes:
        raise SettingError(f"App setting {name} must list at least one scope")
    return scopes


def _read(
    environ: Mapping[str, str],
    name: str,
    parse: Callable[[str, str], T],
    default: str | None = None,
) -> T:
    raw = environ.get(name, "").strip()
    if not raw:
        if default is None:
            raise SettingError(f"App setting {name} is missing; set it in the Function App configuration")
        raw = default
    return parse(name, raw)


@dataclass(frozen=True)
class Settings:
    """Parsed app settings. Build with :meth:`from_environ`."""

    arm_endpoint: str
    servicebus_namespace: str
    pool_requests_queue: str
    alerts_topic_endpoint: str
    ledger_table_endpoint: str
    ledger_table_name: str
    allowed_scopes: tuple[str, ...]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read and validate every setting; the first problem raises :class:`SettingError`."""
        env = os.environ if environ is None else environ
        return cls(
            arm_endpoint=_read(env, ARM_ENDPOINT, _https_url, DEFAULT_ARM_ENDPOINT),
            servicebus_namespace=_read(env, SERVICEBUS_NAMESPACE, _namespace),
            pool_requests_queue=_read(env, POOL_REQUESTS_QUEUE, _queue_name),
            alerts_topic_endpoint=_read(env, ALERTS_TOPIC_ENDPOINT, _https_url),
            ledger_table_endpoint=_read(env, LEDGER_TABLE_ENDPOINT, _https_url),
            ledger_table_name=_read(env, LEDGER_TABLE_NAME, _table_name, DEFAULT_LEDGER_TABLE_NAME),
            allowed_scopes=_read(env, ALLOWED_SCOPES, _scopes),
        )


# Every app setting name the code reads; infra parity is checked against this.
ALL_SETTING_NAMES = frozenset(
    {
        SERVICEBUS_NAMESPACE,
        POOL_REQUESTS_QUEUE,
        ARM_ENDPOINT,
        ALERTS_TOPIC_ENDPOINT,
        LEDGER_TABLE_ENDPOINT,
        LEDGER_TABLE_NAME,
        ALLOWED_SCOPES,
    }
)
