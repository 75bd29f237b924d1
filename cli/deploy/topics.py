"""The Event Grid system topics that already exist for the sources the deployment watches.

Azure allows one system topic per source ("System topics in Azure Event Grid": "only one system topic can
be created per Azure resource"), and a subscription's often sits in Default-EventGrid. main.bicep creates
topics only for the other sources; these are reused (``EXISTING_SYSTEM_TOPICS``, source -> topic id, every
id lower-cased: ARM ids are case-insensitive, Bicep's ``contains()`` is not).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cli.deploy.environment import resource_group_of, subscription_of
from cli.deploy.roles import arm_failure


def watched_sources(imaging_groups: list[str], batch_accounts: list[str], watch_scope: str) -> list[str]:
    """The resource groups (or, with ``subscription``, their subscriptions) whose ARM events are watched, lower-cased."""
    groups = dict.fromkeys(g.lower() for g in [*imaging_groups, *(resource_group_of(a) for a in batch_accounts)])
    if watch_scope == "subscription":
        return list(dict.fromkeys(f"/subscriptions/{subscription_of(g)}" for g in groups))
    return list(groups)


def existing_topics(eventgrid: Callable[[str], Any], sources: list[str]) -> dict[str, str]:
    """Source -> id of the system topic that exists for it, for the watched sources that have one."""
    from azure.core.exceptions import HttpResponseError  # cold start: only the deployment commands use it

    found: dict[str, str] = {}
    for subscription in dict.fromkeys(subscription_of(s) for s in sources):
        try:
            topics = list(eventgrid(subscription).system_topics.list_by_subscription())
        except HttpResponseError as exc:
            raise arm_failure(exc, "listing the Event Grid system topics", subscription) from exc
        for topic in topics:
            source = (topic.source or "").lower()
            if source in sources:
                found[source] = topic.id
    return found
