"""The rehearsal as one self-contained HTML page: a picture of one run.

A Gantt chart of each request's stages and of the long-running operations (and
the pools' resizes), then per pool its node count over virtual time with the
guard's resizes and the alerts marked. Everything is inline (data as JSON, a
small script drawing SVG, system fonts only), so the file opens anywhere,
offline, and can be attached to a ticket.
"""

from __future__ import annotations

import html
import json
from datetime import datetime

from .report import fit, short_id

# A Gantt row's label: at most this many characters, shortened between the parts of an id (never inside one).
LABEL_WIDTH = 46

_STAGE_KINDS = {"RECEIVED", "SNAPSHOTTING", "IMAGING", "PUBLISHING", "CREATING_POOL", "REFRESHING", "SCALING", "READY", "FAILED", "REJECTED"}


def chart_data(report: dict) -> dict:
    """What the page draws, from the ``--json`` report: times in seconds from the start of the run."""
    start = datetime.fromisoformat(report["startedAt"])

    def seconds(at: str | None) -> float | None:
        return None if at is None else (datetime.fromisoformat(at) - start).total_seconds()

    end = max([report["virtualElapsedSeconds"], *(seconds(e["at"]) or 0 for e in report["timeline"])] or [0])
    rows: list[dict] = []
    stages: dict[str, list[tuple[float, str, str]]] = {}
    for entry in report["timeline"]:
        if entry["stage"] in _STAGE_KINDS:
            stages.setdefault(entry["resource"], []).append((seconds(entry["at"]) or 0, entry["stage"], entry["outcome"]))
    for request_id, changes in stages.items():
        for index, (at, stage, reason) in enumerate(changes):
            final = stage in ("READY", "FAILED", "REJECTED")
            until = changes[index + 1][0] if index + 1 < len(changes) else (at if final else end)
            rows.append({"group": f"request {request_id}", "label": fit(f"{request_id} {stage}", LABEL_WIDTH), "start": at, "end": until, "kind": "stage",
                         "final": final, "title": f"{request_id}: {stage}" + (f" ({reason})" if reason else "")})
    for operation in report.get("operations") or []:
        rows.append({"group": "long-running operations", "label": fit(f"{operation['method']} {short_id(operation['resourceId'])}", LABEL_WIDTH),
                     "start": seconds(operation["start"]), "end": seconds(operation["end"]) if operation["end"] else end,
                     "kind": "operation", "failed": operation["status"] == "Failed",
                     "title": f"{operation['method']} {operation['resourceId']}: {operation['status']}"})
    pools = []
    for pool_id, series in (report.get("poolSeries") or {}).items():
        points = [{"t": seconds(s["at"]), "nodes": s["currentDedicatedNodes"] + s["currentLowPriorityNodes"],
                   "target": s["targetDedicatedNodes"] + s["targetLowPriorityNodes"], "state": s["allocationState"]} for s in series]
        resizing_since = None
        for point in points + [{"t": end, "state": "end"}]:
            if point["state"] == "Resizing" and resizing_since is None:
                resizing_since = point["t"]
            elif point["state"] != "Resizing" and resizing_since is not None:
                rows.append({"group": "pool resizes", "label": fit(f"resize {short_id(pool_id)}", LABEL_WIDTH), "start": resizing_since, "end": point["t"],
                             "kind": "resize", "title": f"{pool_id} resizing"})
                resizing_since = None
        decisions = [{"t": seconds(d["at"]), "decision": d["decision"], "errorCode": d["errorCode"],
                      "nodes": f"{d['currentDedicatedNodes']}/{d['targetDedicatedNodes']} + {d['currentLowPriorityNodes']}/{d['targetLowPriorityNodes']}"}
                     for d in report.get("guardDecisions") or [] if (d["poolId"] or "").lower() == pool_id.lower()
                     and d["decision"] in ("resized", "backoff", "breaker open", "needs a person", "image gone")]
        alerts = [{"t": seconds(e["at"]), "type": e["outcome"], "severity": (e.get("details") or {}).get("severity") or "error",
                   "resource": short_id(e["resource"])}
                  for e in report["timeline"] if e["stage"] == "alert"
                  and any((p.get("id") or "").lower() == pool_id.lower() for p in (e.get("details") or {}).get("pools") or [])]
        pools.append({"id": pool_id, "name": short_id(pool_id), "points": points, "decisions": decisions, "alerts": alerts})
    return {"scenario": report["scenario"], "end": end, "rows": rows, "pools": pools,
            "requests": [{"id": r["id"], "stage": r["stage"], "reason": r["reason"]} for r in report["requests"]]}


def render_html(report: dict) -> str:
    data = json.dumps(chart_data(report), default=str).replace("</", "<\\/")
    title = html.escape(f"Rehearsal: {report['scenario']}")
    summary = "".join(f"<li><b>{html.escape(r['id'])}</b>: {html.escape(r['stage'])}{' (' + html.escape(r['reason']) + ')' if r['reason'] else ''}</li>"
                      for r in report["requests"])
    return _PAGE.replace("__TITLE__", title).replace("__SUMMARY__", summary).replace("__DATA__", data)


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
  body { font: 13px system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1b1f24; background: #fff; }
  h1 { font-size: 18px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 24px 0 6px; }
  ul { margin: 4px 0 12px; padding-left: 18px; }
  svg { display: block; background: #fafbfc; border: 1px solid #d0d7de; }
  .axis text, .label { font-size: 11px; fill: #57606a; }
  .grid { stroke: #e1e4e8; }
  .stage { fill: #54aeff; } .stage.final { fill: #2da44e; } .stage.bad { fill: #cf222e; }
  .operation { fill: #a475f9; } .operation.failed { fill: #cf222e; } .resize { fill: #fb8f44; }
  .node-line { fill: none; stroke: #0969da; stroke-width: 2; }
  .target-line { fill: none; stroke: #57606a; stroke-width: 1.5; stroke-dasharray: 5 4; }
  .resize-marker { stroke: #fb8f44; stroke-width: 2; } .decision-marker { stroke: #bf8700; stroke-width: 2; }
  .alert-marker { stroke: #fff; stroke-width: 1.5; } .alert-line { stroke-width: 1.5; stroke-dasharray: 2 3; }
  .critical { fill: #82071e; stroke: #82071e; } .error { fill: #cf222e; stroke: #cf222e; } .warning { fill: #bf8700; stroke: #bf8700; }
  .alert-marker.critical, .alert-marker.error, .alert-marker.warning { stroke: #fff; }
  .alert-label { font-size: 11px; stroke: none; } .alert-label.warning { fill: #7d5a00; }
  .swatch.stage { background: #54aeff; } .swatch.operation { background: #a475f9; } .swatch.resize { background: #fb8f44; }
  .legend span { display: inline-block; margin-right: 14px; } .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<ul>__SUMMARY__</ul>
<noscript><p>This page draws its charts with an inline script; the same facts are in <code>python -m cli rehearse -o json</code>.</p></noscript>
<h2>Stages and long-running operations (virtual time)</h2>
<div class="legend"><span><i class="swatch stage"></i>request stage</span><span><i class="swatch operation"></i>long-running operation</span><span><i class="swatch resize"></i>pool resizing</span></div>
<div id="gantt"></div>
<div id="pools"></div>
<script type="application/json" id="report-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var LEFT = 300, RIGHT = 30, WIDTH = 1100;
  var end = Math.max(data.end, 60);
  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (text !== undefined) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function x(t) { return LEFT + (WIDTH - LEFT - RIGHT) * Math.max(0, t) / end; }
  function clock(t) {
    var m = Math.round(t / 60), h = Math.floor(m / 60);
    return "+" + h + ":" + String(m % 60).padStart(2, "0");
  }
  function axis(svg, top, bottom) {
    var g = el("g", {"class": "axis"}, svg), steps = [60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400];
    var step = steps.filter(function (s) { return end / s <= 12; })[0] || 86400;
    for (var t = 0; t <= end; t += step) {
      el("line", {"class": "grid", x1: x(t), x2: x(t), y1: top, y2: bottom}, g);
      el("text", {x: x(t), y: bottom + 14, "text-anchor": "middle"}, g, clock(t));
    }
  }
  function tip(node, text) { el("title", {}, node, text); return node; }

  // Gantt: one row per stage of a request, long-running operation and pool resize.
  var rowHeight = 18, rows = data.rows, top = 10;
  var gantt = el("svg", {id: "gantt-chart", width: WIDTH, height: top + rows.length * rowHeight + 30, role: "img",
                         "aria-label": "Gantt chart of the run"}, document.getElementById("gantt"));
  axis(gantt, top, top + rows.length * rowHeight);
  rows.forEach(function (row, i) {
    var y = top + i * rowHeight;
    el("text", {"class": "label", x: 6, y: y + 13}, gantt, row.label);
    var bad = /(FAILED|REJECTED)$/.test(row.label) && row.kind === "stage";
    var cls = row.kind + (row.final ? " final" : "") + (bad || row.failed ? " bad" : "")
              + (row.failed ? " failed" : "");
    var w = Math.max(3, x(row.end) - x(row.start));
    tip(el("rect", {"class": cls, "data-kind": row.kind, x: x(row.start), y: y + 3, width: w, height: rowHeight - 6, rx: 2}, gantt),
        row.title + " (" + clock(row.start) + " - " + clock(row.end) + ")");
  });

  // Per pool: nodes over virtual time, the target dashed, the guard's decisions and the alerts marked.
  data.pools.forEach(function (pool) {
    var section = document.getElementById("pools");
    var h2 = document.createElement("h2");
    h2.textContent = "Nodes of " + pool.name;
    section.appendChild(h2);
    var height = 220, plotTop = 12, plotBottom = height - 30;
    var max = Math.max.apply(null, pool.points.map(function (p) { return Math.max(p.nodes, p.target); }).concat([1]));
    function y(n) { return plotBottom - (plotBottom - plotTop) * n / max; }
    var svg = el("svg", {"class": "pool-chart", width: WIDTH, height: height, "data-pool": pool.id, role: "img",
                         "aria-label": "Nodes of " + pool.name + " over virtual time"}, section);
    axis(svg, plotTop, plotBottom);
    [0, max / 2, max].forEach(function (n) {
      el("text", {"class": "label", x: LEFT - 8, y: y(n) + 4, "text-anchor": "end"}, svg, Math.round(n) + " nodes");
    });
    function steps(key) {
      var d = "";
      pool.points.forEach(function (p, i) {
        d += (i === 0 ? "M" : "H" + x(p.t) + " V") + (i === 0 ? x(p.t) + " " + y(p[key]) : y(p[key])) + " ";
      });
      return d + "H" + x(end);
    }
    el("path", {"class": "target-line", d: steps("target")}, svg);
    el("path", {"class": "node-line", d: steps("nodes")}, svg);
    pool.decisions.forEach(function (d) {
      tip(el("line", {"class": d.decision === "resized" ? "resize-marker" : "decision-marker", x1: x(d.t), x2: x(d.t), y1: plotTop, y2: plotBottom}, svg),
          clock(d.t) + " guard: " + d.decision + " at " + d.nodes + (d.errorCode ? " after " + d.errorCode : ""));
    });
    pool.alerts.forEach(function (a) {
      tip(el("line", {"class": "alert-line " + a.severity, x1: x(a.t), x2: x(a.t), y1: plotTop, y2: plotBottom}, svg),
          clock(a.t) + " " + a.severity + " " + a.type + " on " + a.resource);
    });
    var legend = el("g", {"class": "label"}, svg);
    el("text", {x: 6, y: plotTop + 12}, legend, "— nodes (solid), target (dashed)");
    el("text", {x: 6, y: plotTop + 28}, legend, "| guard resize (orange), other decision (ochre)");
    el("text", {x: 6, y: plotTop + 44}, legend, "¦ alert (above: what and when)");
    if (pool.alerts.length) { alertStrip(pool, svg); }
  });

  // Alerts of a pool: a marker in the severity's colour at the alert's time and a label naming it, each label in
  // the first row where it clears the labels before it (measured by the browser), so none overlaps another.
  function alertStrip(pool, chart) {
    var strip = el("svg", {"class": "alert-strip", width: WIDTH, "data-pool": pool.id, role: "img",
                           "aria-label": "Alerts about " + pool.name}, null);
    chart.parentNode.insertBefore(strip, chart);
    var rowEnds = [], ROW = 18;
    pool.alerts.slice().sort(function (a, b) { return a.t - b.t; }).forEach(function (a) {
      var text = a.severity + " " + a.type.replace("CustomImagePool.", "") + " " + clock(a.t);
      var label = el("text", {"class": "alert-label " + a.severity, x: x(a.t) + 9, y: 0}, strip, text);
      var width = label.getComputedTextLength();
      var row = 0;
      while (rowEnds[row] !== undefined && rowEnds[row] + 6 > x(a.t) - 7) { row += 1; }
      rowEnds[row] = x(a.t) + 9 + width;
      var y = 14 + row * ROW;
      label.setAttribute("y", y + 4);
      tip(el("circle", {"class": "alert-marker " + a.severity, cx: x(a.t), cy: y, r: 6}, strip),
          clock(a.t) + " " + a.severity + " " + a.type + " on " + a.resource);
      strip.appendChild(label);
    });
    strip.setAttribute("height", 10 + rowEnds.length * ROW);
  }

  // What a test reads back: how many alert labels overlap another (the browser's own layout boxes).
  var boxes = Array.prototype.map.call(document.querySelectorAll(".alert-label, .alert-strip .alert-marker"), function (node) {
    var box = node.getBoundingClientRect();
    return {node: node, left: box.left, right: box.right, top: box.top, bottom: box.bottom};
  });
  var overlaps = 0;
  for (var i = 0; i < boxes.length; i += 1) {
    for (var j = i + 1; j < boxes.length; j += 1) {
      var a = boxes[i], b = boxes[j];
      var related = a.node.nextSibling === b.node || b.node.nextSibling === a.node;
      if (!related && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) { overlaps += 1; }
    }
  }
  document.body.setAttribute("data-alert-overlaps", String(overlaps));
  document.body.setAttribute("data-rendered", "true");
})();
</script>
</body>
</html>
"""
