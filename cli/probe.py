"""``verify --probe-events``: measure, on the deployment, three ARM event behaviours no published source settles.

In a watched resource group (the first imaging scope unless ``--probe-resource-group`` names another)
the probe, as the operator:

1. creates an empty 4 GiB Standard_LRS managed disk and a snapshot of it (a long-running PUT);
2. places a ``CanNotDelete`` lock on the snapshot;
3. tries to delete the snapshot (ARM must refuse: 409 ``ScopeLocked``);
4. deletes the lock, then the snapshot, then the disk;

then reads which ARM events the deployment's ``resource_events`` function received (it records every
event about a probe resource under the probe's id, :mod:`shared.eventfacts.probe`, and does nothing
else with them), and whether the Activity Log lists the refused delete. It prints one row per event
(expected, seen, delay) and writes what it found where the functions read it
(:mod:`shared.eventfacts.findings`). A fact it could not tell (the snapshot's own write event never
came, say) is left unknown, and the functions keep assuming the worst for it.

Cost: 9 ARM writes, about 20 reads while the snapshot is made, and one read of the ledger and one of the
Activity Log every 30 seconds while it waits (at most 25 minutes: the Activity Log's own delay); the disk
and the snapshot live for a few minutes (storage is billed pro rata: well under a cent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

# Event Grid delivers within seconds; the Activity Log lists an entry "within 3 to 20 minutes" (Azure Monitor docs).
PROBE_WAIT = timedelta(minutes=25)
POLL_SECONDS = 30.0
DISK_SIZE_GB = 4
# An event raised this long before the operation was seen finished came at acceptance; closer than this,
# the two cannot be told apart (the poll interval and clock skew).
TIMING_MARGIN = timedelta(seconds=5)

WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"
DELETE_FAILED = "Microsoft.Resources.ResourceDeleteFailure"


@dataclass(frozen=True)
class Expectation:
    """One event the probe looks for: what it is about, what the code assumed, and when the call was made."""

    label: str
    event_type: str
    resource_id: str
    expected: str
    called_at: datetime


@dataclass
class ProbeResult:
    probe_id: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    findings: Any = None
    written: bool = False
    problem: str | None = None


@dataclass
class _Clock:
    now: Callable[[], datetime]
    sleep: Callable[[float], None]


def run_probe(
    environ: Mapping[str, str],
    credential: Any,
    out: TextIO,
    *,
    resource_group_id: str | None = None,
    records: Any = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    wait: timedelta = PROBE_WAIT,
    **client_kwargs: Any,
) -> ProbeResult:
    """Run the probe, print its table, write its findings; the result (rows, findings, or the problem)."""
    from shared.clients import AzureClients
    from shared.settings import Settings
    from shared.store.tables import TableLedger

    settings = Settings.from_environ(environ)
    clients = AzureClients(settings, credential=credential, **client_kwargs)
    if records is None:
        records = TableLedger(clients.ledger_table()).records()
    group = resource_group_id or next((s for s in settings.allowed_scopes if "/providers/" not in s.lower()), None)
    clock = _Clock(now, sleep)
    probe_id = now().strftime("%Y%m%dt%H%M%S")
    result = ProbeResult(probe_id)
    if group is None:
        result.problem = "no resource group to probe in: ALLOWED_SCOPES names none; pass --probe-resource-group"
        print(result.problem, file=out)
        return result
    parts = group.strip("/").split("/")
    if len(parts) != 4 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
        result.problem = f"{group!r} is not a resource group id (/subscriptions/<id>/resourceGroups/<name>)"
        print(result.problem, file=out)
        return result
    subscription, resource_group = parts[1], parts[3]
    location = environ.get("AZURE_LOCATION") or "westeurope"
    made = _Resources(clients, subscription, resource_group, probe_id, location, clock)
    started = now()
    try:
        expectations = made.play()
    except Exception as exc:  # noqa: BLE001 - reported with what was made so far removed
        result.problem = f"the probe's calls failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        print(result.problem, file=out)
        return result
    finally:
        made.remove()
    seen, refused_listed = _wait_for(records, clients, subscription, probe_id, made, expectations, started, clock, wait)
    result.rows, result.findings = _judge(expectations, seen, refused_listed, made, probe_id, now())
    _print_table(result, out)
    if result.findings is None:
        result.problem = "the snapshot's own write event never reached resource_events: events are not flowing, so nothing was learned"
        print(result.problem, file=out)
        return result
    from shared.eventfacts.findings import write_findings

    write_findings(records, result.findings)
    result.written = True
    print(f"findings written (probe {probe_id}); the functions follow them from their next read", file=out)
    return result


class _Resources:
    """The probe's disk, snapshot and lock, and the calls made on them."""

    def __init__(self, clients: Any, subscription: str, resource_group: str, probe_id: str, location: str, clock: _Clock) -> None:
        from shared.naming import PROBE_LOCK_NAME, probe_disk_name, probe_snapshot_name

        self._compute = clients.compute(subscription)
        self._locks = clients.locks(subscription).management_locks
        self._group = resource_group
        self._location = location
        self._clock = clock
        self.disk_name, self.snapshot_name, self.lock_name = probe_disk_name(probe_id), probe_snapshot_name(probe_id), PROBE_LOCK_NAME
        base = f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute"
        self.disk_id, self.snapshot_id = f"{base}/disks/{self.disk_name}", f"{base}/snapshots/{self.snapshot_name}"
        self.lock_id = f"{self.snapshot_id}/providers/Microsoft.Authorization/locks/{self.lock_name}"
        self.snapshot_accepted: datetime | None = None
        self.snapshot_done: datetime | None = None
        self.refused: str | None = None

    def play(self) -> list[Expectation]:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resource.locks.models import ManagementLockObject

        now, compute = self._clock.now, self._compute
        compute.disks.begin_create_or_update(self._group, self.disk_name, {
            "location": self._location, "sku": {"name": "Standard_LRS"},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": DISK_SIZE_GB}}, polling=False)
        self._until(lambda: self._state(compute.disks.get, self.disk_name) == "Succeeded")
        compute.snapshots.begin_create_or_update(self._group, self.snapshot_name, {
            "location": self._location, "sku": {"name": "Standard_LRS"},
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": self.disk_id}, "incremental": False}}, polling=False)
        self.snapshot_accepted = now()
        self._until(lambda: self._state(compute.snapshots.get, self.snapshot_name) == "Succeeded", step=TIMING_MARGIN.total_seconds())
        self.snapshot_done = now()
        expectations = [Expectation("snapshot created", WRITE, self.snapshot_id, "yes", self.snapshot_accepted)]
        self._locks.create_or_update_by_scope(self.snapshot_id, self.lock_name, ManagementLockObject(
            level="CanNotDelete", notes="custom-image-pools: event probe; removed by the probe within minutes"))
        expectations.append(Expectation("lock placed", WRITE, self.lock_id, "yes", now()))
        refused_at = now()
        try:
            compute.snapshots.begin_delete(self._group, self.snapshot_name, polling=False)
            self.refused = "not refused"
        except HttpResponseError as exc:
            self.refused = f"{exc.status_code} {getattr(exc.error, 'code', '')}".strip()
        expectations.append(Expectation("delete refused by the lock", DELETE_FAILED, self.snapshot_id, "unknown (assumed yes)", refused_at))
        self._locks.delete_by_scope(self.snapshot_id, self.lock_name)
        expectations.append(Expectation("lock deleted", DELETE, self.lock_id, "unknown (assumed yes)", now()))
        deleted_at = now()
        compute.snapshots.begin_delete(self._group, self.snapshot_name, polling=False)
        self._until(lambda: self._state(compute.snapshots.get, self.snapshot_name) is None)
        expectations.append(Expectation("snapshot deleted", DELETE, self.snapshot_id, "yes", deleted_at))
        return expectations

    def remove(self) -> None:
        """Leave nothing behind, whatever step failed (each removal on its own)."""
        for remove in (lambda: self._locks.delete_by_scope(self.snapshot_id, self.lock_name),
                       lambda: self._compute.snapshots.begin_delete(self._group, self.snapshot_name, polling=False),
                       lambda: self._compute.disks.begin_delete(self._group, self.disk_name, polling=False)):
            try:
                remove()
            except Exception:  # noqa: BLE001,S112 - best effort: what is left is named in the probe section of docs/deploy.md
                continue

    def _state(self, get: Callable[..., Any], name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return get(self._group, name).provisioning_state
        except ResourceNotFoundError:
            return None

    def _until(self, done: Callable[[], bool], step: float = POLL_SECONDS, limit: float = 15 * 60) -> None:
        waited = 0.0
        while not done():
            if waited >= limit:
                raise TimeoutError(f"still not done after {int(limit)} s")
            self._clock.sleep(step)
            waited += step


def _wait_for(records: Any, clients: Any, subscription: str, probe_id: str, made: _Resources, expectations: list[Expectation],
              started: datetime, clock: _Clock, wait: timedelta) -> tuple[dict[tuple[str, str], Any], str]:
    """Poll what resource_events recorded, and the Activity Log, until everything came or ``wait`` ran out."""
    from shared.arm.ids import resource_key
    from shared.eventfacts.probe import probe_events

    deadline = clock.now() + wait
    monitor = clients.monitor(subscription).activity_logs
    while True:
        seen: dict[tuple[str, str], Any] = {}
        for event in probe_events(records, probe_id):
            seen.setdefault((event.event_type, resource_key(event.resource_id)), event)
        listed = _refused_delete_listed(monitor, made.snapshot_id, started - timedelta(minutes=5), clock.now())
        everything = all((x.event_type, resource_key(x.resource_id)) in seen for x in expectations)
        if (everything and listed != "no") or clock.now() >= deadline:
            return seen, listed
        clock.sleep(POLL_SECONDS)


def _refused_delete_listed(monitor: Any, resource_id: str, start: datetime, end: datetime) -> str:
    """``yes`` when the Activity Log lists a failed delete of ``resource_id``, ``no``, or why it could not be read."""
    from azure.core.exceptions import HttpResponseError

    query = f"eventTimestamp ge '{start.isoformat()}' and eventTimestamp le '{end.isoformat()}' and resourceUri eq '{resource_id}'"
    try:
        entries = list(monitor.list(filter=query, select="operationName,status,resourceId"))
    except HttpResponseError as exc:
        return f"not readable: {exc.status_code} {getattr(exc.error, 'code', '') or ''}".strip()
    failed_delete = any((e.status.value if e.status else "") == "Failed"
                        and (e.operation_name.value if e.operation_name else "").lower().endswith("/delete") for e in entries)
    return "yes" if failed_delete else "no"


def _judge(expectations: list[Expectation], seen: dict, refused_listed: str, made: _Resources, probe_id: str,
           now: datetime) -> tuple[list[tuple[str, str, str, str]], Any]:
    from shared.arm.ids import resource_key
    from shared.eventfacts.findings import EventFindings

    rows = []
    arrived: dict[str, Any] = {}
    for x in expectations:
        event = seen.get((x.event_type, resource_key(x.resource_id)))
        arrived[x.label] = event
        delay = f"{(event.received_at - x.called_at).total_seconds():.0f} s after the call" if event is not None else "-"
        rows.append((f"{x.event_type.rsplit('.', 1)[-1]}: {x.label}", x.expected, "yes" if event is not None else "no", delay))
    written_at = _write_timing(arrived["snapshot created"], made)
    rows.append(("ResourceWriteSuccess raised at", "completion (assumed)", written_at or "cannot tell", _timing_note(arrived["snapshot created"], made)))
    rows.append(("the delete was refused", "409 ScopeLocked", made.refused or "-", "-"))
    rows.append(("the Activity Log lists the refused delete", "yes", refused_listed, "-"))
    if arrived["snapshot created"] is None:
        return rows, None
    lock_events_flow = arrived["lock placed"] is not None
    refused = (made.refused or "").startswith("409")
    findings = EventFindings(
        lock_delete_raises_event=(arrived["lock deleted"] is not None) if lock_events_flow else None,
        locked_delete_raises_failure_event=(arrived["delete refused by the lock"] is not None) if refused else None,
        write_success_at=written_at,  # type: ignore[arg-type]
        probe_id=probe_id,
        probed_at=now.isoformat(),
    )
    return rows, findings


def _event_time(event: Any) -> datetime | None:
    if event is None or not event.event_time:
        return None
    try:
        return datetime.fromisoformat(event.event_time.replace("Z", "+00:00"))
    except ValueError:
        return None


def _write_timing(event: Any, made: _Resources) -> str | None:
    """``acceptance`` or ``completion`` from ARM's time for the event, against the snapshot's own life; None: cannot tell."""
    raised = _event_time(event)
    accepted, done = made.snapshot_accepted, made.snapshot_done
    if raised is None or accepted is None or done is None or done - accepted < 2 * TIMING_MARGIN:
        return None
    if raised < done - TIMING_MARGIN:
        return "acceptance"
    return "completion"


def _timing_note(event: Any, made: _Resources) -> str:
    raised = _event_time(event)
    if raised is None or made.snapshot_accepted is None or made.snapshot_done is None:
        return "-"
    took = (made.snapshot_done - made.snapshot_accepted).total_seconds()
    return f"raised {(raised - made.snapshot_accepted).total_seconds():.0f} s after the PUT was accepted; it took {took:.0f} s"


def _print_table(result: ProbeResult, out: TextIO) -> None:
    header = ("event", "expected", "seen", "delay")
    widths = [max(len(str(row[i])) for row in [header, *result.rows]) for i in range(4)]
    for row in [header, *result.rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
    findings = result.findings
    if findings is not None:
        print(f"lock delete raises an event: {_said(findings.lock_delete_raises_event)}; "
              f"refused delete raises an event: {_said(findings.locked_delete_raises_failure_event)}; "
              f"write success raised at: {findings.write_success_at or 'unknown'}", file=out)


def _said(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")
