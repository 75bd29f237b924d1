"""The rehearsal report: a contract (``--json``) and a readable timeline."""

from __future__ import annotations

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
        "timeline": [
            {"at": entry.at.isoformat(), "stage": entry.stage, "resource": entry.resource, "outcome": entry.outcome}
            for entry in rehearsal.timeline
        ],
    }


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


def render_timeline(report: dict) -> str:
    """The report as text: the timeline, then outcomes per request."""
    lines = [f"Rehearsal: {report['scenario']}", ""]
    start = report["timeline"][0]["at"] if report["timeline"] else None
    from datetime import datetime

    for entry in report["timeline"]:
        offset = datetime.fromisoformat(entry["at"]) - datetime.fromisoformat(start)
        minutes, seconds = divmod(int(offset.total_seconds()), 60)
        hours, minutes = divmod(minutes, 60)
        lines.append(f"  +{hours:02d}:{minutes:02d}:{seconds:02d}  {entry['stage']:<14} {_short(entry['resource']):<60} {entry['outcome']}")
    lines.append("")
    for request in report["requests"]:
        lines.append(f"request {request['id']}: {request['stage']}" + (f" ({request['reason']})" if request["reason"] else ""))
    for pool in report["resources"]["pools"]:
        lines.append(
            f"pool {_short(pool['id'])}: {pool['currentDedicatedNodes']}/{pool['targetDedicatedNodes']} dedicated, "
            f"{pool['currentLowPriorityNodes']}/{pool['targetLowPriorityNodes']} low-priority, {pool['allocationState']}"
        )
    calls = sum(report["armCalls"].values())
    lines.append(f"ARM calls: {calls}; virtual time: {report['virtualElapsedSeconds'] / 60:.1f} min; function errors: {len(report['functionErrors'])}")
    return "\n".join(lines)


def _short(resource_id: str) -> str:
    marker = "/providers/"
    return resource_id.split(marker, 1)[-1] if marker in resource_id else resource_id
