"""Every app setting the project reads, named once.

Bindings refer to these names as ``%NAME%`` (queue names) or as connection
prefixes (identity-based connections: ``SERVICEBUS__fullyQualifiedNamespace``);
``infra/`` sets each of them. Code never reads ``os.environ`` anywhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from .arm import ids as arm_ids
from .errors import PermanentError

# Connection prefix of the Service Bus trigger bindings (identity-based).
SERVICEBUS_CONNECTION = "SERVICEBUS"
SERVICEBUS_NAMESPACE = "SERVICEBUS__fullyQualifiedNamespace"
POOL_REQUESTS_QUEUE = "POOL_REQUESTS_QUEUE"
ARM_ENDPOINT = "ARM_ENDPOINT"
ALERTS_TOPIC_ENDPOINT = "ALERTS_TOPIC_ENDPOINT"
LEDGER_TABLE_ENDPOINT = "LEDGER_TABLE_ENDPOINT"
LEDGER_TABLE_NAME = "LEDGER_TABLE_NAME"
ALLOWED_SCOPES = "ALLOWED_SCOPES"
POOL_CHECKS_QUEUE = "POOL_CHECKS_QUEUE"
GUARD_SCHEDULE = "GUARD_SCHEDULE"
GUARDED_BATCH_ACCOUNTS = "GUARDED_BATCH_ACCOUNTS"
GUARD_MAX_RESIZES_WITHOUT_PROGRESS = "GUARD_MAX_RESIZES_WITHOUT_PROGRESS"
STUCK_REQUEST_MINUTES = "STUCK_REQUEST_MINUTES"
ALERT_DEDUP_MINUTES = "ALERT_DEDUP_MINUTES"
KEEP_IMAGE_LOCKS = "KEEP_IMAGE_LOCKS"
# true: requests may still ask for a pool straight from a managed image (image.legacyManagedImage), which Batch retired
# on 2026-03-31; only for a cloud that still accepts such pools.
ALLOW_LEGACY_MANAGED_IMAGE_POOLS = "ALLOW_LEGACY_MANAGED_IMAGE_POOLS"
REPLY_QUEUES = "REPLY_QUEUES"
LEDGER_RETENTION_DAYS = "LEDGER_RETENTION_DAYS"
# A gallery version a refresh moved its pool off gets publishingProfile.endOfLifeDate this many days later.
RETIRED_VERSION_END_OF_LIFE_DAYS = "RETIRED_VERSION_END_OF_LIFE_DAYS"
# Signs the properties of a request this automation sends back to its queue for a later attempt (a Key Vault
# reference in Azure: infra/). At least 32 characters.
MESSAGE_SIGNING_KEY = "MESSAGE_SIGNING_KEY"

T = TypeVar("T")

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_LEDGER_TABLE_NAME = "poolrequests"
# NCRONTAB (seconds first), as the Functions timer trigger reads it.
DEFAULT_GUARD_SCHEDULE = "0 */5 * * * *"
DEFAULT_GUARD_MAX_RESIZES_WITHOUT_PROGRESS = "3"
DEFAULT_STUCK_REQUEST_MINUTES = "30"
DEFAULT_ALERT_DEDUP_MINUTES = "60"
DEFAULT_KEEP_IMAGE_LOCKS = "false"
DEFAULT_ALLOW_LEGACY_MANAGED_IMAGE_POOLS = "false"
DEFAULT_REPLY_QUEUES = ""
DEFAULT_LEDGER_RETENTION_DAYS = "90"
DEFAULT_RETIRED_VERSION_END_OF_LIFE_DAYS = "30"


class SettingError(PermanentError, ValueError):
    """App settings are missing or malformed; the message names each one."""

    # Said once after the problems: where the Functions host reads its settings from.
    where_to_set = "set them in the Function App configuration (local.settings.json under func start)"


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


def _queue_names(name: str, value: str) -> tuple[str, ...]:
    return tuple(_queue_name(name, part) for part in re.split(r"[,;\s]+", value) if part)


def _scopes(name: str, value: str) -> tuple[str, ...]:
    try:
        scopes = tuple(arm_ids.parse_scope(part) for part in re.split(r"[,;\s]+", value) if part)
    except arm_ids.ArmIdError as exc:
        raise SettingError(f"App setting {name} must list subscription, resource group or Batch account ids: {exc}") from exc
    if not scopes:
        raise SettingError(f"App setting {name} must list at least one scope")
    return scopes


def _batch_accounts(name: str, value: str) -> tuple[str, ...]:
    try:
        return tuple(arm_ids.parse_arm_id(part, arm_ids.BATCH_ACCOUNT).id for part in re.split(r"[,;\s]+", value) if part)
    except arm_ids.ArmIdError as exc:
        raise SettingError(f"App setting {name} must list Batch account ids: {exc}") from exc


def _ncrontab(name: str, value: str) -> str:
    if len(value.split()) != 6:
        raise SettingError(f"App setting {name} must be a six-field NCRONTAB expression such as '0 */5 * * * *', got {value!r}")
    return value


def _whole_number(low: int, high: int, unit: str) -> Callable[[str, str], int]:
    """A parser for a whole number from ``low`` to ``high``: a setting beyond its bound is refused at start-up, not
    when a sweep first does arithmetic with it (a retention of a million days overflows every date it touches)."""

    def parse(name: str, value: str) -> int:
        if not value.isdigit() or not low <= int(value) <= high:
            raise SettingError(f"App setting {name} must be a whole number of {unit} from {low} to {high}, got {value[:40]!r}")
        return int(value)

    return parse


# Upper bounds: well past any sensible value, short of any arithmetic trouble.
# Each resize without progress waits at least 20 minutes, growing: 20 of them already span days.
_MAX_RESIZES_WITHOUT_PROGRESS = 20
# Event Grid retries a delivery for at most 24 hours: a request quiet for longer has lost its event for good.
_MAX_STUCK_REQUEST_MINUTES = 24 * 60
_MAX_ALERT_DEDUP_MINUTES = 24 * 60
_MAX_LEDGER_RETENTION_DAYS = 10 * 365
_MAX_RETIRED_VERSION_END_OF_LIFE_DAYS = 10 * 365


def _boolean(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise SettingError(f"App setting {name} must be true or false, got {value!r}")
    return value.lower() == "true"


def _signing_key(name: str, value: str) -> str:
    if len(value) < 32 or any(c.isspace() for c in value):
        raise SettingError(f"App setting {name} must be a secret of at least 32 characters without spaces, got {len(value)} characters "
                           "(generate one: python -c \"import secrets; print(secrets.token_urlsafe(32))\")")
    return value


def _read_one(
    environ: Mapping[str, str],
    name: str,
    parse: Callable[[str, str], T],
    default: str | None = None,
) -> T:
    raw = environ.get(name, "").strip()
    if not raw:
        if default is None:
            raise SettingError(f"App setting {name} is missing")
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
    pool_checks_queue: str
    # Never printed: a Settings repr may reach a log.
    message_signing_key: str = field(repr=False)
    guard_schedule: str = DEFAULT_GUARD_SCHEDULE
    # Accounts whose every fixed-scale pool the guard keeps at target (opt-in); empty: pipeline pools only.
    guarded_batch_accounts: tuple[str, ...] = ()
    guard_max_resizes_without_progress: int = int(DEFAULT_GUARD_MAX_RESIZES_WITHOUT_PROGRESS)
    stuck_request_minutes: int = int(DEFAULT_STUCK_REQUEST_MINUTES)
    # The same alert condition for the same resource is published at most once per this many minutes.
    alert_dedup_minutes: int = int(DEFAULT_ALERT_DEDUP_MINUTES)
    # True: image protection locks stay after the last pool using the image is deleted.
    keep_image_locks: bool = False
    # True: legacy managed-image pools (retired by Batch on 2026-03-31) are still accepted, for a cloud that still takes them.
    allow_legacy_managed_image_pools: bool = False
    # The teams' reply queues: a message's ReplyTo is answered only when it names one of these.
    reply_queues: tuple[str, ...] = ()
    # A final, answered request's body and progress details are dropped this many days after it ended (its id stays taken).
    ledger_retention_days: int = int(DEFAULT_LEDGER_RETENTION_DAYS)
    # A retired gallery version's end of life, this many days after a refresh moved its pool off it.
    retired_version_end_of_life_days: int = int(DEFAULT_RETIRED_VERSION_END_OF_LIFE_DAYS)

    def __post_init__(self) -> None:
        own = {self.pool_requests_queue.lower(), self.pool_checks_queue.lower()}
        clash = [queue for queue in self.reply_queues if queue.lower() in own]
        if clash:
            raise SettingError(f"App setting {REPLY_QUEUES} must not name the app's own queues ({', '.join(clash)})")

    def may_reply_to(self, queue: str | None) -> bool:
        """Whether ``queue`` is one of the teams' reply queues (Service Bus queue names are case-insensitive)."""
        return queue is not None and queue.lower() in {name.lower() for name in self.reply_queues}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; one :class:`SettingError` names every missing or malformed one."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def read(environ: Mapping[str, str], name: str, parse: Callable[[str, str], T], default: str | None = None) -> T:
            try:
                return _read_one(environ, name, parse, default)
            except SettingError as exc:
                problems.append(str(exc))
                return None  # type: ignore[return-value]  # never used: the problems raise below

        values: dict[str, Any] = dict(
            arm_endpoint=read(env, ARM_ENDPOINT, _https_url, DEFAULT_ARM_ENDPOINT),
            servicebus_namespace=read(env, SERVICEBUS_NAMESPACE, _namespace),
            pool_requests_queue=read(env, POOL_REQUESTS_QUEUE, _queue_name),
            alerts_topic_endpoint=read(env, ALERTS_TOPIC_ENDPOINT, _https_url),
            ledger_table_endpoint=read(env, LEDGER_TABLE_ENDPOINT, _https_url),
            ledger_table_name=read(env, LEDGER_TABLE_NAME, _table_name, DEFAULT_LEDGER_TABLE_NAME),
            allowed_scopes=read(env, ALLOWED_SCOPES, _scopes),
            pool_checks_queue=read(env, POOL_CHECKS_QUEUE, _queue_name),
            message_signing_key=read(env, MESSAGE_SIGNING_KEY, _signing_key),
            guard_schedule=read(env, GUARD_SCHEDULE, _ncrontab, DEFAULT_GUARD_SCHEDULE),
            guarded_batch_accounts=read(env, GUARDED_BATCH_ACCOUNTS, _batch_accounts, ""),
            guard_max_resizes_without_progress=read(
                env, GUARD_MAX_RESIZES_WITHOUT_PROGRESS, _whole_number(1, _MAX_RESIZES_WITHOUT_PROGRESS, "resizes"),
                DEFAULT_GUARD_MAX_RESIZES_WITHOUT_PROGRESS,
            ),
            stuck_request_minutes=read(
                env, STUCK_REQUEST_MINUTES, _whole_number(1, _MAX_STUCK_REQUEST_MINUTES, "minutes"), DEFAULT_STUCK_REQUEST_MINUTES),
            alert_dedup_minutes=read(
                env, ALERT_DEDUP_MINUTES, _whole_number(1, _MAX_ALERT_DEDUP_MINUTES, "minutes"), DEFAULT_ALERT_DEDUP_MINUTES),
            keep_image_locks=read(env, KEEP_IMAGE_LOCKS, _boolean, DEFAULT_KEEP_IMAGE_LOCKS),
            allow_legacy_managed_image_pools=read(env, ALLOW_LEGACY_MANAGED_IMAGE_POOLS, _boolean, DEFAULT_ALLOW_LEGACY_MANAGED_IMAGE_POOLS),
            reply_queues=read(env, REPLY_QUEUES, _queue_names, DEFAULT_REPLY_QUEUES),
            ledger_retention_days=read(
                env, LEDGER_RETENTION_DAYS, _whole_number(1, _MAX_LEDGER_RETENTION_DAYS, "days"), DEFAULT_LEDGER_RETENTION_DAYS),
            retired_version_end_of_life_days=read(
                env, RETIRED_VERSION_END_OF_LIFE_DAYS, _whole_number(1, _MAX_RETIRED_VERSION_END_OF_LIFE_DAYS, "days"),
                DEFAULT_RETIRED_VERSION_END_OF_LIFE_DAYS),
        )
        if problems:
            raise SettingError("; ".join(problems) + f"; {SettingError.where_to_set}")
        return cls(**values)


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
        POOL_CHECKS_QUEUE,
        GUARD_SCHEDULE,
        GUARDED_BATCH_ACCOUNTS,
        GUARD_MAX_RESIZES_WITHOUT_PROGRESS,
        STUCK_REQUEST_MINUTES,
        ALERT_DEDUP_MINUTES,
        KEEP_IMAGE_LOCKS,
        ALLOW_LEGACY_MANAGED_IMAGE_POOLS,
        REPLY_QUEUES,
        LEDGER_RETENTION_DAYS,
        MESSAGE_SIGNING_KEY,
        RETIRED_VERSION_END_OF_LIFE_DAYS,
    }
)
