"""What the command line does, as plain functions taking their dependencies.

``cli/__main__.py`` only parses arguments and builds the real clients; tests
call these with emulator-backed clients, an in-memory or Azurite ledger and the
Service Bus emulator (anything implementing :class:`shared.messaging.MessageSender`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from shared.messaging import MessageSender, OutgoingMessage
from shared.model.request import PoolRequest, RefreshRequest, Request, RequestRejected, parse_request
from shared.store.ledger import FINAL_STAGES, RequestRecord, Stage

if TYPE_CHECKING:
    from shared.clients import AzureClients
    from shared.store.ledger import Ledger


class InvalidRequestFile(ValueError):
    """The request file is unreadable or invalid; the message names the field."""


@dataclass(frozen=True)
class Submitted:
    """A request that was sent: its id and the queue it went to."""

    request_id: str
    queue: str


@dataclass(frozen=True)
class CheckedRequest:
    """A request file after every check the function runs before it needs Azure: the request, or each problem."""

    file: str
    request: Request | None
    problems: tuple[str, ...]
    scopes_checked: bool

    @property
    def valid(self) -> bool:
        return not self.problems

    def request_id_text(self) -> str:
        return self.request.request_id or "-" if self.request else "-"

    def to_json(self) -> dict:
        return {"file": self.file, "valid": self.valid, "requestId": self.request.request_id if self.request else None,
                "problems": list(self.problems), "scopesChecked": self.scopes_checked}


def check_request_file(path: str | Path, allowed_scopes: tuple[str, ...] | None) -> CheckedRequest:
    """Read a request file and run the function's own checks that need no Azure, naming every problem.

    The format (the model the function parses with: fields, types, limits, durations), then every resource id's
    shape and type, and, when ``allowed_scopes`` is given (``ALLOWED_SCOPES``), that it lies inside them
    (:func:`shared.intake.authorization.check_ids`, what the function's authorisation runs). Ids are checked once
    the format is valid, as the function does. A request without ``requestId`` gets a fresh one (a UUID), so that
    it can be followed with ``status`` and a re-send is recognised as the same request.
    """
    from pydantic import ValidationError

    from shared.intake.authorization import check_ids
    from shared.model.request import error_lines

    checks_scopes = allowed_scopes is not None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return CheckedRequest(str(path), None, (f"cannot read the file ({reason})",), checks_scopes)
    try:
        request = parse_request(text, str(uuid.uuid4()))
    except RequestRejected as exc:
        cause = exc.__cause__
        lines = error_lines(cause) if isinstance(cause, ValidationError) else [exc.reason]
        return CheckedRequest(str(path), None, tuple(lines), checks_scopes)
    _, problems = check_ids(request, allowed_scopes)
    return CheckedRequest(str(path), request, tuple(problems), checks_scopes)


def load_request(path: str | Path, allowed_scopes: tuple[str, ...] | None = None) -> Request:
    """A request file that passes :func:`check_request_file`; otherwise :class:`InvalidRequestFile` naming each problem."""
    checked = check_request_file(path, allowed_scopes)
    if checked.request is None or checked.problems:
        raise InvalidRequestFile(f"{path}: " + "; ".join(checked.problems))
    return checked.request


def checked_lines(checked: list[CheckedRequest]) -> str:
    """``FILE: valid (...)``, or ``FILE: N problems`` and one indented line per problem."""
    lines = []
    for item in checked:
        if item.valid:
            scopes = "ids inside ALLOWED_SCOPES" if item.scopes_checked else "scopes not checked: set ALLOWED_SCOPES to check them"
            lines.append(f"{item.file}: valid (request {item.request_id_text()}; {scopes})")
        else:
            lines.append(f"{item.file}: {len(item.problems)} problem{'s' if len(item.problems) > 1 else ''}")
            lines += [f"  {problem}" for problem in item.problems]
    return "\n".join(lines)


def submit(request: Request, sender: MessageSender, queue: str, *, reply_to: str | None = None) -> Submitted:
    """Send one validated request to the requests queue.

    The message id is the request id: the queue's duplicate detection drops an
    accidental second send.
    """
    assert request.request_id is not None, "load_request always sets the request id"
    sender.send(
        queue,
        OutgoingMessage(
            body=json.dumps(request.to_wire()),
            message_id=request.request_id,
            reply_to=reply_to,
            subject="pool-request",
        ),
    )
    return Submitted(request.request_id, queue)


# -- status -------------------------------------------------------------------------


def describe(record: RequestRecord) -> str:
    """One request in detail, as lines of text."""
    request = record.request
    targets = request.pool.targets if isinstance(request, PoolRequest) else None
    lines = [
        f"request    {record.request_id}",
        f"stage      {record.stage.value}",
        f"reason     {record.reason or '-'}",
        f"requested  {request.requested_by if request is not None else '-'}",
        f"pool       {pool_id_of(record) or '-'}",
        f"target     {targets.dedicated if targets else 0} dedicated, {targets.low_priority if targets else 0} low-priority"
        if not isinstance(request, RefreshRequest) else
        f"refresh    {request.refresh.mode}" + (f" ({request.refresh.deallocation})" if request.refresh.mode == "drain" else "")
        + f", deadline {(record.created_at + request.refresh.deadline).isoformat(timespec='minutes')}; the pool keeps its own target",
        f"reply to   {record.reply_to or '-'}",
        f"created    {record.created_at.isoformat(timespec='seconds')}",
        f"updated    {record.updated_at.isoformat(timespec='seconds')}",
    ]
    if record.details:
        lines.append("details    " + json.dumps(record.details, indent=2, sort_keys=True, default=str).replace("\n", "\n           "))
    return "\n".join(lines)


def record_json(record: RequestRecord) -> dict:
    """One request as the JSON that ``status -o json`` prints (and ``--query`` filters)."""
    request = record.request
    targets = request.pool.targets if isinstance(request, PoolRequest) else None
    return {
        "requestId": record.request_id,
        "stage": record.stage.value,
        "reason": record.reason,
        "requestedBy": request.requested_by if request is not None else None,
        "poolId": pool_id_of(record),
        "targetDedicatedNodes": targets.dedicated if targets else 0,
        "targetLowPriorityNodes": targets.low_priority if targets else 0,
        "replyTo": record.reply_to,
        "createdAt": record.created_at.isoformat(timespec="seconds"),
        "updatedAt": record.updated_at.isoformat(timespec="seconds"),
        "details": record.details or {},
    }


def table(records: list[RequestRecord]) -> str:
    """Recent requests as a fixed-width table, most recently updated first."""
    if not records:
        return "no requests yet"
    header = ("REQUEST", "STAGE", "UPDATED (UTC)", "POOL", "REASON")
    rows = [
        (
            r.request_id,
            r.stage.value,
            r.updated_at.strftime("%Y-%m-%d %H:%M"),
            _pool_name(r),
            _shorten(r.reason or "", 60),
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [header, *rows])


def pool_id_of(record: RequestRecord) -> str | None:
    """The pool's resource id: from the plan once made, else from the request body."""
    if record.pool_id is not None:
        return record.pool_id
    request = record.request
    if isinstance(request, RefreshRequest):
        return request.refresh.pool_id
    return f"{request.pool.batch_account_id}/pools/{request.pool.pool_name}" if request is not None else None


def _pool_name(record: RequestRecord) -> str:
    pool_id = pool_id_of(record)
    return pool_id.rstrip("/").rsplit("/", 1)[-1] if pool_id else "-"


def progress_bar(current: int, target: int, width: int = 30) -> str:
    """``[#########.....] 312/600 nodes``; a zero target shows as full."""
    filled = width if target <= 0 else min(width, current * width // target)
    return f"[{'#' * filled}{'.' * (width - filled)}] {current}/{target} nodes"


def pool_nodes(clients: AzureClients, pool_id: str) -> tuple[int, int] | None:
    """(current, target) nodes of a pool, or None while it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared.arm.ids import BATCH_POOL, ArmIdError, parse_arm_id

    try:
        pool_ref = parse_arm_id(pool_id, BATCH_POOL)
    except ArmIdError:
        return None
    try:
        pool = clients.batch(pool_ref.subscription).pool.get(pool_ref.resource_group, pool_ref.parent().name, pool_ref.name)
    except ResourceNotFoundError:
        return None
    current = (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0)
    fixed = pool.scale_settings.fixed_scale if pool.scale_settings else None
    target = ((fixed.target_dedicated_nodes or 0) + (fixed.target_low_priority_nodes or 0)) if fixed else current
    return current, target


def watch(
    ledger: Ledger,
    clients: AzureClients,
    request_id: str,
    out: TextIO,
    *,
    interval: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    max_polls: int | None = None,
) -> RequestRecord:
    """Poll the request and its pool, printing the node count as a progress bar until a final stage.

    Returns the last record read (its stage tells READY from FAILED/REJECTED).
    """
    polls = 0
    last_line = None
    while True:
        record = ledger.get(request_id)
        pool_id = pool_id_of(record)
        nodes = pool_nodes(clients, pool_id) if pool_id and record.stage in (Stage.CREATING_POOL, Stage.SCALING, Stage.READY) else None
        if nodes is None:
            line = f"{record.stage.value:<13} pool not created yet"
        else:
            line = f"{record.stage.value:<13} {progress_bar(*nodes)}"
        if line != last_line:
            print(line, file=out, flush=True)
            last_line = line
        polls += 1
        if record.stage in FINAL_STAGES:
            if record.reason:
                print(f"{record.stage.value}: {record.reason}", file=out, flush=True)
            return record
        if max_polls is not None and polls >= max_polls:
            return record
        sleep(interval)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
