"""The rehearsal report: a contract (``--json``) and a readable timeline."""

from __future__ import annotations

import re
from datetime import datetime

from .colour import Palette
from .runner import CHECKS_QUEUE, REQUESTS_QUEUE, Rehearsal

_SHORT_TYPES = {
    "microsoft.compute/snapshots": "snapshots",
    "microsoft.compute/images": "images",
    "microsoft.compute/galleries/images/versions": "imageVersions",
    "microsoft.compute/galleries/images": "imageDefinitions",
    "microsoft.batch/batchaccounts/pools": "pools",
    "microsoft.authorization/locks": "locks",
}


def build_report(rehearsal: Rehearsal) -> dict:
    """Every outcome of a rehearsal as one JSON-able object."""
    emulator = rehearsal.emulator
    resources: dict[str, list[dict]] = {name: [] for name in _SHORT_TYPES.values()}
    for resource in emulator.store:
        kind = _SHORT_TYPES.get(resource.type.lower())
        if kind is None:
            continue
        described = _describe(kind, resource)
        if kind == "pools":
            # Each node keeps the image it was deployed from (the Batch service API shows it per node).
            described["nodesByImage"] = emulator.batch.nodes_by_image(resource.id)
        resources[kind].append(described)
    for items in resources.values():
        items.sort(key=lambda item: item["id"].lower())
    requests = sorted(rehearsal.ledger.list_recent(100_000), key=lambda r: r.request_id)
    return {
        "scenario": rehearsal.scenario.name,
        "requests": [{"id": r.request_id, "stage": r.stage.value, "reason": r.reason} for r in requests],
        "resources": resources,
        "alerts": [
            {"type": e.get("type"), "severity": (e.get("data") or {}).get("severity"), "subject": e.get("subject"), "data": e.get("data")}
            for e in emulator.topic.received
        ],
        "replies": [
            {"to": queue.name, "body": _json_or_text(m.message.body)}
            for queue in emulator.servicebus.queues.values()
            if queue.name not in (REQUESTS_QUEUE, CHECKS_QUEUE)
            for m in queue.sent
        ],
        "armCalls": dict(sorted(emulator.calls.items())),
        "virtualElapsedSeconds": emulator.clock.elapsed_seconds,
        "functionErrors": [{"function": e.function, "error": e.error} for e in rehearsal.host.errors],
        "armCallsByPurpose": rehearsal.attribution.to_json(emulator.calls),
        "handledErrors": rehearsal.function_log.errors.to_json(),
        "guardDecisions": [decision.to_json() for decision in rehearsal.guard_decisions],
        "operations": _operations(rehearsal),
        "poolSeries": rehearsal.pool_series,
        "startedAt": rehearsal.started_at.isoformat(),
        "timeline": [_entry(entry) for entry in rehearsal.timeline],
    }


def _entry(entry) -> dict:
    item = {"at": entry.at.isoformat(), "stage": entry.stage, "resource": entry.resource, "outcome": entry.outcome}
    if entry.details:
        item["details"] = {key: value.to_json() if hasattr(value, "to_json") else value for key, value in entry.details.items()}
    return item


def _operations(rehearsal: Rehearsal) -> list[dict]:
    """Every long-running operation the emulator ran: what, when it started and ended, how."""
    return [
        {"resourceId": op.resource_id, "method": op.method, "start": op.start.isoformat(),
         "end": op.end.isoformat() if op.end else None, "status": op.status}
        for op in rehearsal.emulator.operations.all()
    ]


def _describe(kind: str, resource) -> dict:
    properties = resource.properties
    item = {"id": resource.id}
    if kind == "imageVersions":
        regions = (properties.get("publishingProfile") or {}).get("targetRegions") or [{}]
        item["replicaCount"] = max(int(r.get("regionalReplicaCount", 1)) for r in regions)
        # ARM's own names (publishingProfile.targetRegions[]), so a report reads like the version's GET.
        item["targetRegions"] = [{"name": r.get("name"), "regionalReplicaCount": r.get("regionalReplicaCount")}
                                 for r in regions if r]
        publishing = properties.get("publishingProfile") or {}
        item["excludeFromLatest"] = bool(publishing.get("excludeFromLatest"))
        item["endOfLifeDate"] = publishing.get("endOfLifeDate")
        item["provisioningState"] = properties.get("provisioningState")
    elif kind == "imageDefinitions":
        item.update({name: properties.get(name) for name in ("osType", "osState", "hyperVGeneration", "identifier", "features", "purchasePlan")})
        item["provisioningState"] = properties.get("provisioningState")
    elif kind == "pools":
        scale = (properties.get("scaleSettings") or {}).get("fixedScale") or {}
        item.update(
            imageReference=properties["deploymentConfiguration"]["virtualMachineConfiguration"]["imageReference"].get("id"),
            targetDedicatedNodes=scale.get("targetDedicatedNodes", 0),
            targetLowPriorityNodes=scale.get("targetLowPriorityNodes", 0),
            currentDedicatedNodes=properties.get("currentDedicatedNodes", 0),
            currentLowPriorityNodes=properties.get("currentLowPriorityNodes", 0),
            allocationState=properties.get("allocationState"),
            securityProfile=properties["deploymentConfiguration"]["virtualMachineConfiguration"].get("securityProfile"),
        )
    elif kind == "locks":
        item.update(level=properties.get("level"), scope=resource.id.rsplit("/providers/Microsoft.Authorization/locks/", 1)[0])
    else:
        item["provisioningState"] = properties.get("provisioningState")
    return item


def _json_or_text(body: str):
    import json

    try:
        return json.loads(body)
    except ValueError:
        return body


_RESOURCE_WIDTH = 46
_KIND_WIDTH = 13
# A timeline line is at most this wide: what does not fit wraps at a space onto lines indented under the resource.
LINE_WIDTH = 120
_TIME_WIDTH = 13  # "  +00:17:00  "
_CONTINUATION = " " * (_TIME_WIDTH + _KIND_WIDTH + 1)
# Alert severities as the rest of the output colours them.
SEVERITY_COLOURS = {"critical": "red", "error": "red", "warning": "yellow", "info": "cyan"}
_STAGE_COLOURS = {"READY": "green", "FAILED": "red", "REJECTED": "red", "refresh": "cyan"}
_DECISION_COLOURS = {"resized": "cyan", "needs a person": "red", "breaker open": "red", "image gone": "red", "backoff": "yellow",
                     "waiting": "dim", "at target": "green", "left alone": "dim"}
_FULL_ID = re.compile(r"/subscriptions/[^\s,;()]+")


def render_timeline(report: dict, colour=None) -> str:
    """The report as text: the timeline (virtual time, what, resource, outcome), then outcomes and the ARM call count.

    Lines are at most :data:`LINE_WIDTH` characters: ids are shortened to fit their column by whole parts of
    their name (``--json`` has them in full), longer outcomes and an alert's runbook wrap onto indented lines.
    The guard's pool writes are shown as its decisions rather than as ARM events; a decision the guard repeated
    at later sweeps is one line, closed by a line at its last time when anything else happened in between.
    """
    paint = colour or Palette(False)
    lines = [paint.bold(f"Rehearsal: {report['scenario']}"), ""]
    start = datetime.fromisoformat(report.get("startedAt") or (report["timeline"][0]["at"] if report["timeline"] else "2000-01-01T00:00:00"))
    width = min(_RESOURCE_WIDTH, max([len(short_id(e["resource"])) for e in report["timeline"]] + [8]))
    shown = [e for e in report["timeline"] if not (e["stage"] == "azure" and (e.get("details") or {}).get("by") == "guard")]
    rows: list[tuple[datetime, str, str, str, list[str]]] = []  # (when, kind text, resource, outcome, continuation texts)
    for index, entry in enumerate(shown):
        details = entry.get("details") or {}
        kind, outcome, more = entry["stage"], entry["outcome"], []
        at = datetime.fromisoformat(entry["at"])
        if kind == "guard":
            decision = details["guardDecision"]
            kind_text = paint.paint(f"{kind:<{_KIND_WIDTH}}", _DECISION_COLOURS.get(decision["decision"], "cyan"))
            outcome = _decision_text(decision)
            if decision["repeats"]:
                last = datetime.fromisoformat(decision["lastAt"])
                again = f"{decision['repeats']} more time{'s' if decision['repeats'] > 1 else ''}"
                if any(at < datetime.fromisoformat(other["at"]) <= last for other in shown[index + 1:]):
                    # Something else happened meanwhile: the repeats end with a line of their own, in time order.
                    rows.append((last, kind_text, entry["resource"], f"-> {decision['decision']} again: {again} since {_offset(entry['at'], start)}", []))
                else:
                    outcome += f", then {again} until {_offset(decision['lastAt'], start)}"
        elif kind == "alert":
            severity = details.get("severity") or "error"
            kind_text = paint.paint(f"{'alert':<{_KIND_WIDTH}}", SEVERITY_COLOURS.get(severity, "red"))
            outcome = _alert_text(entry, details)
            more = [f"runbook: {details['runbook']}"] if details.get("runbook") else []
        elif kind == "azure":
            kind_text = paint.dim(f"{kind:<{_KIND_WIDTH}}")
            outcome = _short_operation(outcome)
        else:
            kind_text = paint.paint(f"{kind:<{_KIND_WIDTH}}", _STAGE_COLOURS.get(kind, "bold"))
        rows.append((at, kind_text, entry["resource"], _short_ids(outcome), more))
    rows.sort(key=lambda row: row[0])  # stable: entries at the same time keep their order
    for at, kind_text, resource, outcome, more in rows:
        head = f"  {_offset(at.isoformat(), start)}  {kind_text} {fit(short_id(resource), width):<{width}}  "
        lines += _wrapped(head, len(_TIME_WIDTH * " ") + _KIND_WIDTH + 1 + width + 2, outcome, more, paint if kind_text.startswith("azure") else None)
    lines.append("")
    for request in report["requests"]:
        stage = paint.paint(request["stage"], _STAGE_COLOURS.get(request["stage"], "bold"))
        lines.append(f"request {request['id']}: {stage}" + (f" ({request['reason']})" if request["reason"] else ""))
    for pool in report["resources"]["pools"]:
        lines.append(
            f"{short_id(pool['id'])}: {pool['currentDedicatedNodes']}/{pool['targetDedicatedNodes']} dedicated, "
            f"{pool['currentLowPriorityNodes']}/{pool['targetLowPriorityNodes']} low-priority, {pool['allocationState']}"
        )
    decisions = report.get("guardDecisions") or []
    if decisions:
        counts: dict[str, int] = {}
        for decision in decisions:
            counts[decision["decision"]] = counts.get(decision["decision"], 0) + 1 + decision["repeats"]
        lines.append("guard decisions: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    for alert_count in [len(report["alerts"])] if report["alerts"] else []:
        lines.append(f"alerts: {alert_count} (" + ", ".join(sorted({f"{a['severity']} {a['type']}" for a in report["alerts"]})) + ")")
    lines.append(_calls_text(report))
    lines.append(f"virtual time: {report['virtualElapsedSeconds'] / 60:.1f} min; function errors: {len(report['functionErrors'])}")
    return "\n".join(_within_width(line) for line in lines)


def _within_width(line: str) -> str:
    """A summary line longer than :data:`LINE_WIDTH` goes on at a space, indented."""
    pieces = []
    while len(line) > LINE_WIDTH:
        piece, line = _split_words(line, LINE_WIDTH)
        pieces.append(piece)
        line = "    " + line
    return "\n".join([*pieces, line])


def _wrapped(head: str, head_width: int, outcome: str, more: list[str], dim) -> list[str]:
    """``head`` + ``outcome`` within :data:`LINE_WIDTH`; the rest of the outcome, then each of ``more``, on indented lines."""
    first_room = max(20, LINE_WIDTH - head_width)
    first, rest = _split_words(outcome, first_room)
    lines = [(head + (dim.dim(first) if dim else first)).rstrip()]
    room = LINE_WIDTH - len(_CONTINUATION)
    for text in ([rest] if rest else []) + more:
        while text:
            piece, text = _split_words(text, room)
            lines.append(_CONTINUATION + piece)
    return lines


def _split_words(text: str, room: int) -> tuple[str, str]:
    """The longest start of ``text`` that fits ``room`` and ends at a space (a single longer word is cut), and the rest."""
    if len(text) <= room:
        return text, ""
    cut = text.rfind(" ", 0, room + 1)
    if cut <= 0:
        return text[:room], text[room:]
    return text[:cut], text[cut + 1:]


def _short_ids(text: str) -> str:
    """Full resource ids inside a reason, as the timeline names resources (``image cip-x``)."""
    return _FULL_ID.sub(lambda match: short_id(match.group(0)), text)


def _offset(at: str, start: datetime) -> str:
    seconds = int((datetime.fromisoformat(at) - start).total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return (f"+{days}d{hours:02d}:{minutes:02d}:{seconds:02d}" if days else f"+{hours:02d}:{minutes:02d}:{seconds:02d}")


def _decision_text(decision: dict) -> str:
    """``300/600 nodes after AllocationTimedout -> resized``; a decision the guard explains adds its reason, once."""
    low = decision["targetLowPriorityNodes"] or decision["currentLowPriorityNodes"]
    nodes = (f"{decision['currentDedicatedNodes']}/{decision['targetDedicatedNodes']} "
             + (f"dedicated + {decision['currentLowPriorityNodes']}/{decision['targetLowPriorityNodes']} low-priority" if low else "nodes"))
    text = nodes + (f" after {decision['errorCode']}" if decision["errorCode"] else "") + f" -> {decision['decision']}"
    reason = (decision.get("reason") or "").removeprefix("already alerted: ")
    if decision["decision"] not in ("resized", "at target", "waiting") and reason:
        text += f": {reason}"
    return text


def _alert_text(entry: dict, details: dict) -> str:
    pools = ", ".join(
        f"{short_id(p['id'])} {p.get('currentDedicatedNodes')}/{p.get('targetDedicatedNodes')}" for p in details.get("pools") or [])
    text = f"{details.get('severity')} {entry['outcome']}"
    if details.get("errorCode"):
        text += f" ({details['errorCode']})"
    return text + (f"; pools: {pools}" if pools else "; pools: none")


def _short_operation(outcome: str) -> str:
    """``Microsoft.Compute/snapshots/write Succeeded`` -> ``snapshots/write Succeeded``."""
    operation, _, status = outcome.partition(" ")
    parts = operation.split("/")
    return f"{'/'.join(parts[-2:]) if len(parts) > 2 else operation} {status}".strip()


def _calls_text(report: dict) -> str:
    """The ARM call count, explained by purpose (what each part of the product costs)."""
    total = sum(report["armCalls"].values())
    parts = []
    for purpose, figures in (report.get("armCallsByPurpose") or {}).items():
        kinds = ", ".join(f"{figures[k]} {label}" for k, label in (("writes", "writes"), ("reads", "reads"), ("operationPolls", "operation polls")) if figures.get(k))
        parts.append(f"{purpose} {figures['total']} ({kinds})")
    return f"ARM calls: {total}" + (" = " + " + ".join(parts) if parts else "")


_TYPE_NAMES = (
    ("/Microsoft.Compute/galleries/", "version", lambda p: p.replace("/images/", "/").replace("/versions/", "/")),
    ("/Microsoft.Compute/snapshots/", "snapshot", None),
    ("/Microsoft.Compute/images/", "image", None),
    ("/Microsoft.Batch/batchAccounts/", "pool", lambda p: p.replace("/pools/", "/")),
)


def short_id(resource_id: str) -> str:
    """A resource id as a person reads it: ``snapshot cip-x-os``, ``lock cip-protect on image cip-x``, ``pool teambatch/render-pool``."""
    if "/providers/Microsoft.Authorization/locks/" in resource_id:
        scope, name = resource_id.rsplit("/providers/Microsoft.Authorization/locks/", 1)
        return f"lock {name} on {short_id(scope)}"
    for marker, label, tidy in _TYPE_NAMES:
        if marker in resource_id:
            rest = resource_id.split(marker, 1)[1]
            if label == "version" and "/versions/" not in rest:
                label = "definition" if "/images/" in rest else "gallery"
            if label == "pool" and "/pools/" not in rest:
                label = "account"
            return f"{label} {tidy(rest) if tidy else rest}"
    marker = "/providers/"
    return resource_id.split(marker, 1)[-1] if marker in resource_id else resource_id


def fit(text: str, width: int) -> str:
    """``text`` (``label name``) shortened to ``width`` by dropping whole leading parts of the name (``…render-001-lun1``).

    A name is cut only where it has a ``/``, ``-`` or ``.``, never inside a part; when that is not enough the label
    loses its middle words (``lock cip-protect on snapshot`` -> ``lock on snapshot``).
    """
    if len(text) <= width:
        return text
    label, _, name = text.rpartition(" ")
    words = label.split(" ")
    parts = re.split(r"(?<=[/.-])", name)
    labels = [label] + ([" ".join([words[0], *words[-2:]])] if len(words) > 3 else [])
    # The fewest parts dropped first, with the whole label or without its middle words; then the first word alone.
    for prefixes in (labels, [words[0]]):
        for first in range(len(parts)):
            for prefix in prefixes:
                candidate = f"{prefix} {'…' if first else ''}{''.join(parts[first:])}".lstrip()
                if len(candidate) <= width:
                    return candidate
    return text[: width - 1] + "…"
