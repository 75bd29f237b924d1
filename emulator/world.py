"""The emulated cloud: one object holding the clock, the resources and the services.

Production code never sees this class; it sees the real SDK clients built with
``transport=emulator.transport()``. Tests and the rehearsal use it to seed the
world, move time forward and read what happened.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from .clock import VirtualClock
from .errors import ArmError
from .events import ArmEventFactory, DeliveryOptions, EventBehaviour, EventGridBus
from .faults import FaultKind, FaultPlan
from .http import ArmResponse
from .operations import AsyncOperation, OperationTracker
from .store import ArmResource, ResourceStore, resource_group_of

ARM_BASE_URL = "https://management.azure.com"


class AzureEmulator:
    """An in-process Azure Resource Manager with Compute, Batch, locks, Resource Graph and Event Grid."""

    def __init__(self, *, seed: int = 0, delivery: DeliveryOptions | None = None, page_size: int = 50,
                 behaviour: EventBehaviour | None = None) -> None:
        from .authorization.models import AuthorizationBackend
        from .batch.models import BatchBackend
        from .compute.models import ComputeBackend
        from .eventgrid.management import EventGridManagement
        from .eventgrid.models import AlertsTopic
        from .insights.models import ActivityLog
        from .locks.models import LocksBackend
        from .resourcegraph.models import ResourceGraphBackend
        from .servicebus.models import ServiceBusEmulator
        from .web.models import WebBackend

        self.seed = seed
        self.page_size = page_size
        self.lock = threading.RLock()
        self.clock = VirtualClock()
        self.store = ResourceStore()
        self.operations = OperationTracker()
        self.faults = FaultPlan(seed=seed)
        self.events = EventGridBus(self.clock.now, seed=seed, options=delivery)
        self.event_factory = ArmEventFactory(seed=seed)
        self.behaviour = behaviour or EventBehaviour()
        self.calls: Counter[str] = Counter()
        # Refused calls by (operation, ARM error code), e.g. ("PATCH Microsoft.Batch/batchAccounts/pools", "PoolBeingResized").
        self.refusals: Counter[tuple[str, str]] = Counter()
        # Calls by (caller principal, RBAC action), e.g. ("emulator-token", "Microsoft.Compute/snapshots/write").
        self.actions: Counter[tuple[str, str]] = Counter()
        self.authorization = AuthorizationBackend(self)
        self.eventgrid = EventGridManagement(self)
        self.compute = ComputeBackend(self)
        self.batch = BatchBackend(self)
        self.locks = LocksBackend(self)
        self.resourcegraph = ResourceGraphBackend(self)
        self.activity_log = ActivityLog(self)
        self.topic = AlertsTopic(self)
        self.servicebus = ServiceBusEmulator(self.clock)
        self.web = WebBackend(self)
        # The subscriptions of the tenant, lower-cased; None: any subscription id is answered (see router._check_subscription).
        self.subscriptions: set[str] | None = None
        self._correlation = 0

    def register_subscriptions(self, *subscription_ids: str) -> None:
        """Make the emulator a tenant with exactly these subscriptions: calls naming another one get 404 SubscriptionNotFound."""
        self.subscriptions = {s.lower() for s in subscription_ids}

    # -- wiring ---------------------------------------------------------

    def transport(self):
        """A fresh azure-core ``RequestsTransport`` whose ``requests`` session answers from this emulator."""
        from .transport import requests_transport

        return requests_transport(self)

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move virtual time forward, running everything that falls due."""
        self.clock.advance(seconds)

    # -- helpers for backends -------------------------------------------

    def next_correlation_id(self) -> str:
        with self.lock:
            self._correlation += 1
            return f"00000000-0000-4000-a000-{self._correlation:012d}"

    def emit(self, resource_id: str, method: str, succeeded: bool, url: str, action: str | None = None,
             *, refusal: str | None = None) -> None:
        """Record a finished call on ``resource_id`` in the Activity Log and raise its ARM event (if ARM would).

        ``refusal``: the ARM error code a refused call was answered with (``ScopeLocked``, say).
        """
        event = self.event_factory.build(
            resource_id=resource_id,
            method=method,
            succeeded=succeeded,
            when=self.now(),
            correlation_id=self.next_correlation_id(),
            url=url,
            action=action,
        )
        self.activity_log.record(event, refusal=refusal)
        if self.behaviour.delivers(event, refusal=refusal):
            self.events.emit(event)

    def run_async(
        self,
        resource: ArmResource,
        *,
        method: str,
        operation_key: str,
        seconds: float,
        finish: Callable[[bool], None],
        url: str,
        api_version: str,
        initial_status: int,
        body: dict | None,
        failure: ArmError | None = None,
    ) -> ArmResponse:
        """Start a long-running operation and answer its initial response.

        ``finish(succeeded)`` runs when the virtual clock reaches the end; then the
        operation's status flips and the matching ARM event is raised. An
        ``lro_failed`` fault (or ``failure``) makes it end Failed.
        """
        subscription, _ = resource_group_of(resource.id)
        namespace = resource.type.split("/", 1)[0]
        operation = self.operations.start(
            resource_id=resource.id,
            method=method,
            namespace=namespace,
            location=resource.location or "westeurope",
            subscription=subscription,
            now=self.now(),
        )
        if failure is None and self.faults.draw(operation_key, (FaultKind.LRO_FAILED,)):
            failure = ArmError(
                f"The operation on '{resource.id}' failed (injected fault).", code="InternalOperationError"
            )

        # A PUT may raise its success event when it is accepted rather than when it finishes (EventBehaviour).
        at_acceptance = method == "PUT" and self.behaviour.write_success_at == "acceptance"
        if at_acceptance:
            self.emit(resource.id, method, True, url)

        def complete() -> None:
            with self.lock:
                succeeded = failure is None
                finish(succeeded)
                operation.status = "Succeeded" if succeeded else "Failed"
                operation.end = self.now()
                if failure is not None:
                    operation.error = failure.body()["error"]
            if not (at_acceptance and succeeded):
                self.emit(resource.id, method, succeeded, url)

        self.clock.call_later(seconds, complete)
        headers = {
            "Azure-AsyncOperation": operation.status_url(ARM_BASE_URL, api_version),
            "Retry-After": "10",
        }
        if method == "DELETE":
            headers["Location"] = operation.result_url(ARM_BASE_URL, api_version)
        return ArmResponse(initial_status, body, headers)

    def operation(self, op_id: str) -> AsyncOperation:
        return self.operations.get(op_id)

    def pending_work(self) -> bool:
        """Whether anything is still due: a clock callback or an undelivered event."""
        return self.clock.next_due() is not None or self.events.pending_count > 0
