"""The rehearsal report: a contract (``--json``) and a readable timeline."""

from __future__ import annotations

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
        resources[kind].append(_describe(kind, resource))
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
        item["provisioningState"] = properties.get("provisioningState")
    elif kind == "imageDefinitions":
        item.update({name: properties.get(name) for name in ("osType", "osState", "hyperVGeneration", "features", "purchasePlan")})
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


_RESOURCE_WIDTH = 52
_KIND_WIDTH = 13
# Alert severities as the rest of the output colours them.
SEVERITY_COLOURS = {"critical": "red", "error": "red", "warning": "yellow", "info": "cyan"}
_STAGE_COLOURS = {"READY": "green", "FAILED": "red", "REJECTED": "red"}
_DECISION_COLOURS = {"resized": "cyan", "needs a person": "red", "breaker open": "red", "image gone": "red", "backoff": "yellow",
                     "waiting": "dim", "at target": "green", "left alone": "dim"}


def render_timeline(report: dict, colour=None) -> str:
    """The report as text: the timeline (virtual time, what, resource, outcome), then outcomes and the ARM call count.

    Ids are shortened to fit their column (``--json`` has them in full); the
    guard's pool writes are shown as the guard's decisions rather than as ARM events.
    """
    paint = colour or Palette(False)
    lines = [paint.bold(f"Rehearsal: {report['scenario']}"), ""]
    start = datetime.fromisoformat(report.get("startedAt") or (report["timeline"][0]["at"] if report["timeline"] else "2000-01-01T00:00:00"))
    width = min(_RESOURCE_WIDTH, max([len(short_id(e["resource"])) for e in report["timeline"]] + [8]))
    for entry in report["timeline"]:
        details = entry.get("details") or {}
        if entry["stage"] == "azure" and details.get("by") == "guard":
            continue
        kind, outcome = entry["stage"], entry["outcome"]
        if kind == "guard":
            decision = details["guardDecision"]
            outcome = _decision_text(decision, start)
            kind_text = paint.paint(f"{kind:<{_KIND_WIDTH}}", _DECISION_COLOURS.get(decision["decision"], "cyan"))
        elif kind == "alert":
            severity = details.get("severity") or "error"
            outcome = _alert_text(entry, details)
            kind_text = paint.paint(f"{'alert':<{_KIND_WIDTH}}", SEVERITY_COLOURS.get(severity, "red"))
        elif kind == "azure":
            kind_text = paint.dim(f"{kind:<{_KIND_WIDTH}}")
            outcome = paint.dim(_short_operation(outcome))
        else:
            kind_text = paint.paint(f"{kind:<{_KIND_WIDTH}}", _STAGE_COLOURS.get(kind, "bold"))
        resource = fit(short_id(entry["resource"]), width)
        lines.append(f"  {_offset(entry['at'], start)}  {kind_text} {resource:<{width}}  {outcome}".rstrip())
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
    return "\n".join(lines)


def _offset(at: str, start: datetime) -> str:
    seconds = int((datetime.fromisoformat(at) - start).total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return (f"+{days}d{hours:02d}:{minutes:02d}:{seconds:02d}" if days else f"+{hours:02d}:{minutes:02d}:{seconds:02d}")


def _decision_text(decision: dict, start: datetime) -> str:
    counts = (f"{decision['currentDedicatedNodes']}/{decision['targetDedicatedNodes']} dedicated + "
              f"{decision['currentLowPriorityNodes']}/{decision['targetLowPriorityNodes']} low-priority")
    text = f"{counts}  {decision['errorCode'] or '-'}  -> {decision['decision']}"
    if decision["decision"] not in ("resized", "at target", "waiting"):
        text += f" ({decision['reason']})"
    if decision["repeats"]:
        text += f"  [same decision {decision['repeats']} more time(s) until {_offset(decision['lastAt'], start)}]"
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
    """``text`` shortened to ``width`` characters in the middle of its last word (the id), so the label and both ends stay."""
    if len(text) <= width:
        return text
    label, _, name = text.rpartition(" ")
    if label and len(label) + 1 < width // 2:
        return f"{label} {fit(name, width - len(label) - 1)}"
    keep = width - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2):]
