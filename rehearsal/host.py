"""Calls the registered functions the way the Functions host would.

Functions are found through ``function_app.app.get_functions()`` by trigger
type; each call gets a real ``azure.functions`` object built with the
library's own converter (Event Grid) or constructor (Service Bus).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class FunctionError:
    function: str
    error: str


class FunctionHost:
    """The app's functions by trigger, and a record of what they raised."""

    def __init__(self, app: Any | None = None) -> None:
        if app is None:
            import function_app

            app = function_app.app
        self._functions = indexed_functions(app)
        self.errors: list[FunctionError] = []

    def names(self, trigger_type: str) -> list[str]:
        return [name for name, (kind, _, _) in self._functions.items() if kind == trigger_type]

    def queue_function(self, queue_setting: str) -> str:
        """The Service Bus function bound to ``%queue_setting%``."""
        for name, (kind, _, binding) in self._functions.items():
            if kind == "serviceBusTrigger" and binding.get("queueName") == f"%{queue_setting}%":
                return name
        raise LookupError(f"no Service Bus function is bound to %{queue_setting}%")

    def indexed(self, name: str) -> Callable[..., Any]:
        """The user function itself (for benchmarks: no bookkeeping around the call)."""
        return self._functions[name][1]

    def call(self, name: str, argument: Any) -> bool:
        """Invoke one function; an exception is recorded (and re-raised for the platform's retry)."""
        _, function, _ = self._functions[name]
        try:
            function(argument)
        except Exception as exc:
            self.errors.append(FunctionError(name, f"{type(exc).__name__}: {exc}"))
            raise
        return True


_INDEX: dict[int, dict[str, tuple[str, Callable[..., Any], dict]]] = {}


def indexed_functions(app: Any) -> dict[str, tuple[str, Callable[..., Any], dict]]:
    """Index an app once: ``get_functions`` builds the functions and may run only once per app."""
    if id(app) not in _INDEX:
        functions = {}
        for function in app.get_functions():
            trigger = function.get_trigger()
            functions[function.get_function_name()] = (trigger.type, function.get_user_function(), trigger.get_dict_repr())
        _INDEX[id(app)] = functions
    return _INDEX[id(app)]


def service_bus_message(*, body: bytes, message_id: str, reply_to: str | None, delivery_count: int,
                        correlation_id: str | None = None, application_properties: dict | None = None,
                        enqueued_time_utc: datetime | None = None):
    """A real ``azure.functions.ServiceBusMessage``."""
    from azure.functions.servicebus import ServiceBusMessage

    return ServiceBusMessage(
        body=body,
        message_id=message_id,
        reply_to=reply_to,
        delivery_count=delivery_count,
        correlation_id=correlation_id,
        enqueued_time_utc=enqueued_time_utc,
        content_type="application/json",
        application_properties=application_properties or {},
        user_properties={},
    )


def event_grid_event(body: dict):
    """A real ``azure.functions.EventGridEvent``, decoded by the library's converter."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    return EventGridEventInConverter.decode(Datum(json.dumps(body), "json"), trigger_metadata=None)
