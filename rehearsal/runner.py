"""Plays a scenario: seeds the emulator, installs emulator-backed services,
delivers messages and events to the registered functions and moves virtual time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.mgmt.batch.models import Pool

from emulator.credentials import StaticTokenCredential
from emulator.events import DeliveryOptions, EventBehaviour
from emulator.faults import FaultKind, FaultRule
from emulator.router import is_read
from emulator.world import AzureEmulator
from shared import bootstrap
from shared import settings as setting_names
from shared.arm.ids import resource_key
from shared.arm.pools import BadPoolMetadata, PoolView, metadata_items
from shared.bootstrap import Services
from shared.clients import AzureClients
from shared.guard.rules import desired_targets
from shared.messaging import REQUEST_CHECK_SUBJECT, OutgoingMessage
from shared.protection.audit import ACTIVITY_LOG_LAG
from shared.settings import Settings
from shared.store.ledger import Ledger, RequestRecord, Stage
from shared.store.memory import InMemoryLedger

from .host import FunctionHost, event_grid_event, service_bus_message
from .observe import CallAttribution, FunctionLog, GuardDecision, decision_signature
from .scenario import (
    AdvanceStep,
    BatchApiStep,
    DeleteLockStep,
    DeleteResourceStep,
    DeliverEventStep,
    LockResourceStep,
    PreemptLowPriorityNodesStep,
    ResizePoolStep,
    RevokeAppAccessStep,
    RunUntilIdleStep,
    Scenario,
    ScenarioError,
    SetBatchAccountQuotaStep,
    SetPoolMetadataStep,
    StopFunctionAppStep,
    SubmitStep,
)

REQUESTS_QUEUE = "pool-requests"
CHECKS_QUEUE = "pool-checks"
# Bounds the pump so a scenario that never settles still ends.
_MAX_ROUNDS = 100_000


@dataclass
class TimelineEntry:
    at: datetime
    stage: str
    resource: str
    outcome: str
    # Structured facts behind the line (a guard decision, an alert's severity and pools, who caused an ARM event).
    details: dict | None = None


class Rehearsal:
    """One scenario's world, functions and record of what happened.

    ``ledger``: where the functions record requests (default: a fresh one in
    memory). ``deliver_pool_checks`` False: scheduled pool checks are dropped,
    only the timer sweeps (the benchmark's baseline).
    """

    def __init__(self, scenario: Scenario, ledger: Ledger | None = None, deliver_pool_checks: bool = True) -> None:
        self.scenario = scenario
        self.ledger: Ledger = ledger or InMemoryLedger()
        self.deliver_pool_checks = deliver_pool_checks
        self.timeline: list[TimelineEntry] = []
        world = self.scenario.world
        delivery = world.event_delivery
        self.emulator = AzureEmulator(
            seed=self.scenario.seed,
            delivery=DeliveryOptions(
                copies=delivery.copies,
                max_delay_seconds=delivery.max_delay_seconds,
                reorder=delivery.reorder,
                drop_rate=delivery.drop_rate,
                drop_event_types=frozenset(delivery.drop_event_types),
            ),
            behaviour=EventBehaviour(**world.event_behaviour.model_dump()),
        )
        self._seed_world()
        self.started_at = self.emulator.now()
        settings = Settings.from_environ(
            {
                setting_names.SERVICEBUS_NAMESPACE: "rehearsal.servicebus.windows.net",
                setting_names.POOL_REQUESTS_QUEUE: REQUESTS_QUEUE,
                setting_names.ALERTS_TOPIC_ENDPOINT: "https://alerts.westeurope-1.eventgrid.azure.net/api/events",
                setting_names.LEDGER_TABLE_ENDPOINT: "https://rehearsal.table.core.windows.net",
                setting_names.ALLOWED_SCOPES: ",".join(world.allowed_scopes),
                setting_names.POOL_CHECKS_QUEUE: CHECKS_QUEUE,
                # Not a secret: the rehearsal's own deployment signs its retries with it.
                setting_names.MESSAGE_SIGNING_KEY: "rehearsal-message-signing-key-0000000000",
                setting_names.GUARDED_BATCH_ACCOUNTS: ",".join(world.guarded_batch_accounts),
                setting_names.STUCK_REQUEST_MINUTES: str(world.stuck_request_minutes),
                setting_names.REPLY_QUEUES: ",".join(world.reply_queues),
                setting_names.ALLOW_LEGACY_MANAGED_IMAGE_POOLS: "true" if world.allow_legacy_managed_image_pools else "false",
            }
        )
        credential = StaticTokenCredential()
        # Whose calls the emulator sees as the app's (a step can take its access away).
        self.app_principal = credential.token
        self.clients = clients = AzureClients(
            settings,
            credential=credential,
            message_sender=self.emulator.servicebus,
            transport=self.emulator.transport(),
            polling_interval=10,
        )
        self.services = Services.on_clients(
            settings=settings, clients=clients, ledger=self.ledger, sender=self.emulator.servicebus, now=self.emulator.now
        )
        self.host = FunctionHost()
        self.requests_function = self.host.queue_function(setting_names.POOL_REQUESTS_QUEUE)
        self.event_functions = self.host.names("eventGridTrigger")
        self.checks_function = self.host.queue_function(setting_names.POOL_CHECKS_QUEUE)
        self._timer_functions = self.host.names("timerTrigger")
        self._timer = GuardTimer(self.emulator.now(), settings)
        self._alerts_seen = 0
        # A person's last call through ARM: what it did may raise no event, so the timer keeps sweeping a while after it.
        self._last_operator_call: datetime | None = None
        self._stages: dict[str, str] = {}
        self._steps_seen: dict[str, int] = {}
        self._events_seen = 0
        # What the functions decided and handled (the guard's decisions, errors), and ARM calls by purpose.
        self.function_log = FunctionLog(self.emulator.now, self._note_decision)
        self.attribution = CallAttribution(self.emulator.calls)
        self.guard_decisions: list[GuardDecision] = []
        self._last_decision: dict[str, GuardDecision] = {}
        # Node counts over virtual time per pool (a sample whenever they change), for the HTML report.
        self.pool_series: dict[str, list[dict]] = {}

    def _seed_world(self) -> None:
        world = self.scenario.world
        emulator = self.emulator
        for queue in world.reply_queues:
            # As the deployment creates them (infra/core/servicebus.bicep): duplicate detection on, one day.
            emulator.servicebus.detect_duplicates(queue, timedelta(days=1))
        # The app's own queues, with duplicate detection as the deployment creates them (infra/core/servicebus.bicep).
        emulator.servicebus.detect_duplicates(REQUESTS_QUEUE, timedelta(hours=1))
        emulator.servicebus.detect_duplicates(CHECKS_QUEUE, timedelta(days=1))
        for vm in world.virtual_machines:
            emulator.compute.add_virtual_machine(
                vm.id,
                location=vm.location,
                os_type=vm.os_type,
                data_disk_luns=tuple(vm.data_disk_luns),
                image_reference=vm.image_reference,
                plan=vm.plan,
                extensions=tuple(vm.extensions),
                os_disk_encrypted=vm.os_disk_encrypted,
                managed_disks=vm.managed_disks,
                security_type=vm.security_type,
                secure_boot=vm.secure_boot_enabled,
                vtpm=vm.v_tpm_enabled,
                vm_size=vm.vm_size,
                hyper_v_generation=vm.hyper_v_generation,
                power_state=vm.power_state,
                generalized=vm.generalized,
                disk_encryption_set_id=vm.disk_encryption_set_id,
            )
        for gallery in world.galleries:
            emulator.compute.add_gallery(gallery.id, location=gallery.location)
        for definition in world.image_definitions:
            emulator.compute.add_gallery_image(
                definition.id, location=definition.location, os_type=definition.os_type, os_state=definition.os_state,
                hyper_v_generation=definition.hyper_v_generation, security_type=definition.security_type, publisher=definition.publisher)
        for version in world.image_versions:
            emulator.compute.add_gallery_image_version(
                version.id, location=version.location, os_type=version.os_type, target_regions=version.target_regions or None)
        for account in world.batch_accounts:
            emulator.batch.add_account(
                account.id,
                location=account.location,
                dedicated_core_quota=account.dedicated_core_quota,
                low_priority_core_quota=account.low_priority_core_quota,
            )
        emulator.batch.configure_allocation(
            max_nodes_per_resize=world.allocation.max_nodes_per_resize,
            nodes_per_minute=world.allocation.nodes_per_minute,
            quota_error=world.allocation.quota_error,
            capacity_pauses=tuple((pause.after.total_seconds(), pause.for_.total_seconds() if pause.for_ is not None else None)
                                  for pause in world.allocation.capacity_pauses),
        )
        for region, sizes in world.region_vm_sizes.items():
            emulator.batch.set_region_vm_sizes(region, sizes)
        for pool in world.pools:
            account_id, name = pool.id.rsplit("/pools/", 1)
            emulator.batch.create_pool(account_id, name, pool.body(), url=f"https://management.azure.com{pool.id}")
        for fault in world.faults:
            emulator.faults.add(
                FaultRule(fault.operation, FaultKind(fault.kind), fault.rate, fault.retry_after_seconds, fault.latency_seconds, fault.limit,
                          fault.status, fault.code, fault.message)
            )

    # -- playing ------------------------------------------------------------

    def run(self) -> Rehearsal:
        """Play every step; the installed services are restored afterwards."""
        previous = bootstrap.installed()
        bootstrap.install(self.services)
        try:
            with self.function_log.installed():
                for step in self.scenario.steps:
                    self._play(step)
        finally:
            bootstrap.install(previous)
        return self

    def _play(self, step) -> None:
        if isinstance(step, SubmitStep):
            body = step.submit if isinstance(step.submit, str) else json.dumps(step.submit)
            message_id = step.message_id or f"msg-{len(self.emulator.servicebus.queue(REQUESTS_QUEUE).sent) + 1:04d}"
            self.emulator.servicebus.send(REQUESTS_QUEUE, OutgoingMessage(body, message_id=message_id, reply_to=step.reply_to))
            self._pump()
        elif isinstance(step, DeliverEventStep):
            self.emulator.events.inject(step.deliver_event)
            self._pump()
        elif isinstance(step, DeleteResourceStep):
            self.delete_as_operator(step.delete_resource)
            self._pump()
        elif isinstance(step, DeleteLockStep):
            self.delete_as_operator(step.delete_lock)
            self._pump()
        elif isinstance(step, LockResourceStep):
            lock = step.lock_resource
            self._arm("PUT", f"{lock.resource_id.rstrip('/')}/providers/Microsoft.Authorization/locks/{lock.name}", "2020-05-01",
                      {"properties": {"level": lock.level, "notes": "placed by a person"}})
            self._pump()
        elif isinstance(step, AdvanceStep):
            self.advance(step.advance)
        elif isinstance(step, StopFunctionAppStep):
            self.stop_function_app(step.stop_function_app)
        elif isinstance(step, RunUntilIdleStep):
            self.run_until_idle(step.max_virtual_time)
        elif isinstance(step, ResizePoolStep):
            change = step.resize_pool
            # Batch takes new scale settings only from a Steady pool ("stop the resize" first, as its error says): a
            # person resizing a pool that is resizing stops that resize, waits for it to stop, then resizes.
            if self.emulator.batch.get_pool(change.pool_id).properties.get("allocationState") == "Resizing":
                self._arm("POST", f"{change.pool_id}/stopResize", "2024-07-01")
                self.emulator.clock.advance(self.emulator.batch.allocation.stop_seconds)
            self._arm_patch_pool(change.pool_id, {"scaleSettings": {"fixedScale": {
                "targetDedicatedNodes": change.target_dedicated_nodes, "targetLowPriorityNodes": change.target_low_priority_nodes}}})
            self._pump()
        elif isinstance(step, SetPoolMetadataStep):
            edit = step.set_pool_metadata
            # As a person editing metadata does: read the pool, change the given keys, write the whole list back.
            current = {m["name"]: m["value"] for m in self.emulator.batch.get_pool(edit.pool_id).properties.get("metadata") or []}
            self._arm_patch_pool(edit.pool_id, {"metadata": metadata_items({**current, **edit.metadata})})
            self._pump()
        elif isinstance(step, BatchApiStep):
            self._batch_api(step)
            self._pump()
        elif isinstance(step, PreemptLowPriorityNodesStep):
            self._preempt(step)
            self._pump()
        elif isinstance(step, SetBatchAccountQuotaStep):
            quota = step.set_batch_account_quota
            self.emulator.batch.set_core_quotas(quota.batch_account_id, dedicated=quota.dedicated_core_quota,
                                                low_priority=quota.low_priority_core_quota)
            self.timeline.append(TimelineEntry(self.emulator.now(), "operator", quota.batch_account_id, "core quotas changed"))
        elif isinstance(step, RevokeAppAccessStep):
            access = step.revoke_app_access
            self.emulator.authorization.deny(self.app_principal, access.scope, access.action)
            self.timeline.append(TimelineEntry(self.emulator.now(), "operator", access.scope, f"the app's access removed ({access.action})"))

    def _batch_api(self, step: BatchApiStep) -> None:
        """A call through the Batch service API: the emulator's pool changes, and no ARM event says so."""
        from emulator.errors import ArmError

        call, batch = step.batch_api, self.emulator.batch
        pool_id = call.delete_pool or call.stop_resize or (call.resize_pool.pool_id if call.resize_pool else "")
        try:
            if call.delete_pool:
                batch.data_plane_delete_pool(call.delete_pool)
                outcome = "Batch API: pool deleted (no ARM event)"
            elif call.stop_resize:
                batch.data_plane_stop_resize(call.stop_resize)
                outcome = "Batch API: resize stopped (no ARM event)"
            else:
                assert call.resize_pool is not None
                batch.data_plane_resize(pool_id, call.resize_pool.target_dedicated_nodes, call.resize_pool.target_low_priority_nodes)
                outcome = (f"Batch API: resized to {call.resize_pool.target_dedicated_nodes}/{call.resize_pool.target_low_priority_nodes}"
                           " (no ARM event)")
        except ArmError as refused:
            outcome = f"Batch API: refused {refused.status} {refused.code}"
        self.timeline.append(TimelineEntry(self.emulator.now(), "operator", pool_id, outcome))
        self._last_operator_call = self.emulator.now()

    def _preempt(self, step: PreemptLowPriorityNodesStep) -> None:
        """Azure takes back Spot/low-priority nodes; a timeline line when they go and when Batch has them back."""
        change = step.preempt_low_priority_nodes
        after = change.capacity_returns_after.total_seconds() if change.capacity_returns_after is not None else None
        taken = self.emulator.batch.preempt_low_priority_nodes(change.pool_id, change.nodes, after)
        self.timeline.append(TimelineEntry(self.emulator.now(), "operator", change.pool_id,
                                           f"Azure preempted {taken} low-priority nodes (still counted as current nodes; no ARM event)"))
        if taken and after is not None:
            self.emulator.clock.call_later(after, lambda: self.timeline.append(TimelineEntry(
                self.emulator.now(), "operator", change.pool_id, f"capacity back: Batch restored {taken} preempted low-priority nodes")))
        # Nothing ARM shows changed, so nothing would wake the timer: it sweeps a while anyway, as it does in Azure.
        self._last_operator_call = self.emulator.now()

    def _arm(self, method: str, resource_id: str, api_version: str, body: dict | None = None) -> None:
        """One call as an operator would make it, through ARM (locks and events apply)."""
        from azure.core.rest import HttpRequest, HttpResponse
        from azure.mgmt.core import ARMPipelineClient

        client: ARMPipelineClient[HttpRequest, HttpResponse] = ARMPipelineClient(base_url="https://management.azure.com", config=None, transport=self.emulator.transport(), policies=[])
        with self.attribution.purpose("operator"):
            response = client.send_request(HttpRequest(method, f"https://management.azure.com{resource_id}?api-version={api_version}", json=body))
        self.timeline.append(TimelineEntry(self.emulator.now(), "operator", resource_id, f"{method} answered {response.status_code}"))
        self._last_operator_call = self.emulator.now()

    def delete_as_operator(self, resource_id: str) -> None:
        """Delete as an operator would, through ARM (locks and events apply)."""
        self._arm("DELETE", resource_id, "2020-05-01" if "/Microsoft.Authorization/locks/" in resource_id else "2025-06-01")

    def _arm_patch_pool(self, pool_id: str, properties: dict) -> None:
        """Change a pool as a person would: an unconditional PATCH through ARM."""
        self._arm("PATCH", pool_id, "2024-07-01", {"properties": properties})

    def advance(self, duration: timedelta) -> None:
        """Move virtual time forward by ``duration``, delivering what falls due on the way."""
        end = self.emulator.now() + duration
        self._run_until(end, stop_when_idle=False)

    def stop_function_app(self, duration: timedelta) -> None:
        """The app stopped for ``duration`` once the world is idle, then started again.

        Only from an idle world: what a stop does to deliveries in flight (Event Grid's retries for up to 24 hours, then
        dead-lettering; Service Bus messages waiting out their time to live) is not modelled. On restart the timer fires
        once for the occurrences it missed: the timer trigger's schedule monitor (``useMonitor``, on by default for
        schedules of a minute or more) persists the schedule, and a missed occurrence runs with ``isPastDue`` (Azure
        Functions, "Timer trigger for Azure Functions").
        """
        self._pump()
        pending = [what for what, due in (("an Azure operation", self.emulator.clock.next_due()), ("an event", self.emulator.events.next_due()),
                                          ("a message", self.emulator.servicebus.next_due(self._queues()))) if due is not None]
        if pending:
            raise ScenarioError(f"stopFunctionApp: the world must be idle (put a runUntilIdle step before it); {', '.join(pending)} is pending")
        self.emulator.clock.advance_to(self.emulator.now() + duration)
        if self._timer_functions:
            self._fire_timer(past_due=True)

    def run_until_idle(self, limit: timedelta = timedelta(days=3)) -> None:
        """Deliver and advance until nothing is pending (or ``limit`` of virtual time passed)."""
        self._run_until(self.emulator.now() + limit, stop_when_idle=True)

    def _run_until(self, end: datetime, *, stop_when_idle: bool) -> None:
        for _ in range(_MAX_ROUNDS):
            self._pump()
            if self._timer.due(self.emulator.now()) and self._timer_functions and self._guard_relevant():
                self._fire_timer()
                continue
            upcoming = [t for t in (self.emulator.clock.next_due(), self.emulator.events.next_due(), self.emulator.servicebus.next_due(self._queues())) if t is not None]
            if self._timer_wanted(busy=bool(upcoming)):
                upcoming.append(self._timer.next_tick(self.emulator.now()))
            if not upcoming:
                if not stop_when_idle:
                    self.emulator.clock.advance_to(end)
                return
            next_time = min(upcoming)
            if next_time > end:
                self.emulator.clock.advance_to(end)
                self._pump()
                return
            self.emulator.clock.advance_to(next_time)

    def _queues(self) -> tuple[str, ...]:
        return (REQUESTS_QUEUE, CHECKS_QUEUE) if self.deliver_pool_checks else (REQUESTS_QUEUE,)

    def _pump(self) -> None:
        """Hand every due message and event to its function until none is due now."""
        while True:
            before = self._fingerprint()
            delivered = self.emulator.servicebus.deliver_due(REQUESTS_QUEUE, self._deliver_request)
            if self.deliver_pool_checks:
                delivered += self.emulator.servicebus.deliver_due(CHECKS_QUEUE, self._deliver_check)
            else:
                while self.emulator.servicebus.receive_due(CHECKS_QUEUE) is not None:
                    pass
            events = self.emulator.events.take_due()
            for event in events:
                self._deliver_event(event.body)
            self._note_resources()
            self._note_activity(before)
            if not delivered and not events:
                return

    # -- the pool guard's timer ----------------------------------------------------

    def _timer_wanted(self, *, busy: bool) -> bool:
        """Fire the timer while the guard may have work: the world is busy or changed recently.

        A timer alone must not keep run-until-idle going forever: once nothing is
        pending and a quiet window (longer than any backoff or stuck-request
        threshold) has passed without a change, the world is idle.
        """
        if not self._timer_functions or not self._guard_relevant():
            return False
        if self.ledger.list_by_stage(Stage.REFRESHING):
            # A refresh waits on time itself (its pool going idle, its deadline): only the sweeps look at it.
            return True
        return busy or self._timer.next_tick(self.emulator.now()) <= self._timer.last_activity + self._timer.quiet_window

    def _guard_relevant(self) -> bool:
        if any(not r.stage.is_final for r in self.ledger.list_recent(1000)):
            return True
        # The sweep's protection audit sees what a person did even when ARM raised no event for it (a removed lock,
        # a refused delete), from the Activity Log within ACTIVITY_LOG_LAG: the timer runs that long after the call.
        last_call = self._last_operator_call
        if last_call is not None and self.emulator.now() - last_call <= ACTIVITY_LOG_LAG + self._timer.period:
            return True
        guarded = {resource_key(a) for a in self.services.settings.guarded_batch_accounts}
        for pool in self.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools"):
            # Read the pool as the guard does: the SDK's model of what ARM would return, through the one pool view.
            view = PoolView.from_sdk(Pool(pool.to_dict()))
            try:
                targets = desired_targets(view, guarded_account=resource_key(view.id.rsplit("/pools/", 1)[0]) in guarded)
            except BadPoolMetadata:
                continue
            if targets is not None and not view.reaches(targets):
                return True
        return False

    def _fire_timer(self, *, past_due: bool = False) -> None:
        from azure.functions.timer import TimerRequest

        self._timer.fired(self.emulator.now())
        before = self._fingerprint()
        for name in self._timer_functions:
            try:
                self._call("guard", name, TimerRequest(past_due=past_due))
            except Exception:  # noqa: BLE001 - recorded by the host; the next tick runs anyway
                pass
        self._note_stages()
        self._note_resources()
        self._note_activity(before)

    def _fingerprint(self) -> tuple:
        writes = sum(n for op, n in self.emulator.calls.items() if not is_read(op))
        sent = sum(len(q.sent) for q in self.emulator.servicebus.queues.values())
        return writes, sent, len(self.emulator.topic.received), tuple(sorted(self._stages.items()))

    def _note_activity(self, before: tuple) -> None:
        self._note_alerts()
        if self._fingerprint() != before:
            self._timer.last_activity = self.emulator.now()

    def _deliver_check(self, queued) -> None:
        # The pool-checks queue carries the guard's pool checks and the pipeline's looks at a request's resource.
        purpose = "pipeline" if queued.message.subject == REQUEST_CHECK_SUBJECT else "guard"
        self._deliver_message(self.checks_function, queued, purpose)

    def _deliver_request(self, queued) -> None:
        self._deliver_message(self.requests_function, queued, "pipeline")

    def _call(self, purpose: str, function_name: str, argument) -> None:
        """Invoke one function, counting its ARM calls for ``purpose`` and noting an error it raised."""
        try:
            with self.attribution.purpose(purpose):
                self.host.call(function_name, argument)
        except Exception as exc:
            self.function_log.note_raised(f"{type(exc).__name__}: {exc}")
            raise

    def _deliver_message(self, function_name: str, queued, purpose: str) -> None:
        message = service_bus_message(
            body=queued.message.body.encode(),
            message_id=queued.message_id,
            reply_to=queued.message.reply_to,
            delivery_count=queued.delivery_count,
            enqueued_time_utc=queued.enqueued_time,
            application_properties=dict(queued.message.application_properties),
        )
        try:
            self._call(purpose, function_name, message)
        finally:
            self._note_stages()

    def _deliver_event(self, body: dict) -> None:
        for name in self.event_functions:
            try:
                self._call("pipeline", name, event_grid_event(body))
            except Exception:  # noqa: BLE001 - Event Grid retries a failed delivery later
                self.emulator.events.retry_later(body, seconds=30)
            finally:
                self._note_stages()

    # -- timeline -----------------------------------------------------------------

    def _note_stages(self) -> None:
        for record in self.ledger.list_recent(1000):
            before = self._stages.get(record.request_id)
            steps = record.progress.steps
            # A request's steps its team hears of (a refresh's: draining, moved, released, retired, restored), as they happen.
            for step in steps[self._steps_seen.get(record.request_id, 0):]:
                self.timeline.append(TimelineEntry(self.emulator.now(), "refresh", record.request_id, f"{step.get('step')}: {step.get('detail')}"))
            self._steps_seen[record.request_id] = len(steps)
            if before != record.stage.value:
                self._stages[record.request_id] = record.stage.value
                outcome = record.reason or _skipped_imaging(before, record)
                self.timeline.append(TimelineEntry(self.emulator.now(), record.stage.value, record.request_id, outcome))

    def _note_alerts(self) -> None:
        received = self.emulator.topic.received
        for alert in received[self._alerts_seen :]:
            data = alert.get("data") or {}
            details = {
                "type": alert.get("type"),
                "severity": data.get("severity"),
                "errorCode": data.get("errorCode"),
                "pools": [{key: pool.get(key) for key in ("id", "currentDedicatedNodes", "targetDedicatedNodes", "currentLowPriorityNodes", "targetLowPriorityNodes")}
                          for pool in data.get("pools") or []],
                "runbook": data.get("runbook"),
            }
            self.timeline.append(TimelineEntry(self.emulator.now(), "alert", alert.get("subject", ""), alert.get("type", ""), details))
        self._alerts_seen = len(received)

    def _note_decision(self, at: datetime, decision: dict) -> None:
        """A guard decision: a new timeline line unless it repeats the pool's previous one."""
        pool_key = resource_key(decision.get("poolId") or "")
        previous = self._last_decision.get(pool_key)
        if previous is not None and decision_signature(previous.decision) == decision_signature(decision):
            previous.repeats += 1
            previous.last_at = at
            return
        entry = GuardDecision(at, decision)
        self._last_decision[pool_key] = entry
        self.guard_decisions.append(entry)
        self.timeline.append(TimelineEntry(at, "guard", decision.get("poolId") or "", entry.label, {"guardDecision": entry}))

    def _note_resources(self) -> None:
        emitted = self.emulator.events.emitted
        now = self.emulator.now()
        for event in emitted[self._events_seen :]:
            data = event.body["data"]
            details = None
            # A pool write at the moment the guard resized it or recorded an alert is that decision's PATCH.
            decision = self._last_decision.get(resource_key(event.subject))
            if (data["operationName"].lower().endswith("pools/write") and decision is not None
                    and decision.decision.get("action") in ("resize", "alert") and (decision.last_at or decision.at) == now):
                details = {"by": "guard"}
            self.timeline.append(TimelineEntry(now, "azure", event.subject, f"{data['operationName']} {data['status']}", details))
        self._events_seen = len(emitted)
        self._sample_pools(now)

    def _sample_pools(self, now: datetime) -> None:
        """Record each pool's node counts when they changed (and a pool's deletion)."""
        present = set()
        for pool in self.emulator.store.of_type("Microsoft.Batch/batchAccounts/pools"):
            properties = pool.properties
            scale = (properties.get("scaleSettings") or {}).get("fixedScale") or {}
            vm_configuration = (properties.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration") or {}
            sample = {
                "currentDedicatedNodes": properties.get("currentDedicatedNodes", 0),
                "currentLowPriorityNodes": properties.get("currentLowPriorityNodes", 0),
                "targetDedicatedNodes": scale.get("targetDedicatedNodes", 0),
                "targetLowPriorityNodes": scale.get("targetLowPriorityNodes", 0),
                "allocationState": properties.get("allocationState"),
                # The image the pool deploys nodes from: a refresh moves it.
                "imageReference": (vm_configuration.get("imageReference") or {}).get("id"),
            }
            preempted = self.emulator.batch.preempted_nodes(pool.id)
            if preempted:
                # Spot/low-priority nodes in state Preempted: still counted in currentLowPriorityNodes.
                sample["preemptedLowPriorityNodes"] = preempted
            present.add(pool.id)
            series = self.pool_series.setdefault(pool.id, [])
            if not series or {k: v for k, v in series[-1].items() if k != "at"} != sample:
                series.append({"at": now.isoformat(), **sample})
        for pool_id, series in self.pool_series.items():
            if pool_id not in present and series[-1].get("allocationState") != "Deleted":
                series.append({"at": now.isoformat(), "currentDedicatedNodes": 0, "currentLowPriorityNodes": 0,
                               "targetDedicatedNodes": 0, "targetLowPriorityNodes": 0, "allocationState": "Deleted"})


class GuardTimer:
    """The timer trigger's schedule on virtual time (``*/N`` minutes; anything else: every 5 minutes)."""

    def __init__(self, start: datetime, settings: Settings) -> None:
        from shared.guard.rules import Policy

        minute_field = settings.guard_schedule.split()[1]
        minutes = int(minute_field[2:]) if minute_field.startswith("*/") and minute_field[2:].isdigit() else 5
        self.period = timedelta(minutes=max(1, minutes))
        self._start = start
        self._last_fired: datetime | None = None
        self.last_activity = start
        backoff = Policy(max_resizes_without_progress=settings.guard_max_resizes_without_progress).backoff(
            settings.guard_max_resizes_without_progress)
        self.quiet_window = max(timedelta(minutes=settings.stuck_request_minutes), backoff) + 2 * self.period

    def next_tick(self, now: datetime) -> datetime:
        """The first schedule boundary not yet fired at or after ``now``."""
        ticks = max(1, -(-(now - self._start) // self.period))
        tick = self._start + ticks * self.period
        if self._last_fired is not None and tick <= self._last_fired:
            tick = self._last_fired + self.period
        return tick

    def due(self, now: datetime) -> bool:
        return self.next_tick(now) == now

    def fired(self, now: datetime) -> None:
        self._last_fired = now


def _skipped_imaging(before: str | None, record: RequestRecord) -> str:
    """Why a request went from its snapshots straight to PUBLISHING: its source is Trusted Launch or confidential."""
    plan = record.plan
    if record.stage is not Stage.PUBLISHING or before not in (None, Stage.RECEIVED.value, Stage.SNAPSHOTTING.value):
        return ""
    if plan is None or not plan.publishes_from_snapshots:
        return ""
    return (f"IMAGING skipped: a {plan.security_type or 'Trusted Launch or confidential'} source cannot become a managed image, "
            "so the version is published straight from its snapshots")
