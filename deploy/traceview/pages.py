"""The viewer's HTML: a list of recent traces and one waterfall per trace.

Server-rendered, inline CSS, no script; every value from a span goes through
html.escape (span names and attributes come from the services, and from requests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
a { color: #1a5fb4; text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
form { margin: 0 0 1em; } input, select { font: inherit; }
.svc { display: inline-block; padding: 0 5px; border-radius: 3px; color: #fff; font-size: 11px; }
.err, .err a { color: #c01c28; font-weight: 600; }
.wf .name { max-width: 45em; overflow-wrap: anywhere; }
.wf .lane { position: relative; width: 45%; min-width: 300px; }
.bar { position: absolute; top: 4px; height: 12px; min-width: 2px; border-radius: 2px;
       opacity: .85; }
.bar.errbar { background: #c01c28 !important; }
details { margin: 2px 0 0; } summary { cursor: pointer; color: #555; }
pre { margin: 2px 0; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
.muted { color: #777; }
"""


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><p><a href='/'>Traces</a></p>{body}</body></html>"
    )


def service_badge(service: str) -> str:
    hue = int(hashlib.sha1(service.encode()).hexdigest()[:4], 16) % 360
    return f"<span class='svc' style='background:hsl({hue},55%,42%)'>{escape(service)}</span>"


def when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def trace_list(
    traces: Sequence[dict[str, Any]],
    services: Sequence[str],
    *,
    service: str,
    min_ms: str,
    attribute: str,
    limit: int,
) -> str:
    options = "".join(
        f"<option value='{escape(s)}'{' selected' if s == service else ''}>{escape(s)}</option>"
        for s in ["", *services]
    )
    form = (
        "<form method='get' action='/'>"
        f"service <select name='service'>{options}</select> "
        f"min ms <input name='min_ms' size='6' value='{escape(min_ms)}'> "
        f"attribute <input name='attr' size='30' placeholder='key=value'"
        f" value='{escape(attribute)}'> "
        f"limit <input name='limit' size='4' value='{limit}'> "
        "<button>filter</button></form>"
    )
    rows = []
    for t in traces:
        err = " class='err'" if t["error_count"] else ""
        rows.append(
            f"<tr{err}><td>{escape(when(t['start_ns']))}</td>"
            f"<td>{service_badge(t['root_service'])} "
            f"<a href='/trace/{quote(t['trace_id'])}'>{escape(t['root_name'])}</a></td>"
            f"<td>{' '.join(service_badge(s) for s in t['services'])}</td>"
            f"<td class='num'>{t['span_count']}</td>"
            f"<td class='num'>{t['error_count'] or ''}</td>"
            f"<td class='num'>{t['duration_ms']:.1f}</td></tr>"
        )
    table = (
        "<table><tr><th>start (UTC)</th><th>root span</th><th>services</th>"
        "<th>spans</th><th>errors</th><th>ms</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p class='muted'>No traces yet (or none match).</p>"
    )
    return page("Traces", f"<h1>Traces</h1>{form}{table}")


def ordered_tree(spans: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(depth, span) depth-first, children by start time; a span whose parent is not
    in the trace (not arrived, or in another process that dropped it) is a root."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    stack = [(0, s) for s in reversed(children.get(None, []))]
    while stack:
        depth, span = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        out.append((depth, span))
        stack += [(depth + 1, c) for c in reversed(children.get(span["span_id"], []))]
    # A parent cycle has no root: show those spans flat rather than lose them.
    out += [(0, s) for s in spans if s["span_id"] not in seen]
    return out


def trace_detail(trace: dict[str, Any]) -> str:
    spans = trace["spans"]
    start, end = trace["start_ns"], trace["end_ns"]
    total = max(end - start, 1)
    ids = {s["span_id"] for s in spans}
    rows = []
    for depth, s in ordered_tree(spans):
        failed = s["status_code"] == "ERROR"
        left = (s["start_ns"] - start) / total * 100
        width = max((s["end_ns"] - s["start_ns"]) / total * 100, 0.15)
        hue = int(hashlib.sha1(s["service"].encode()).hexdigest()[:4], 16) % 360
        orphan = (
            " <span class='muted'>(parent not received)</span>"
            if s["parent_span_id"] and s["parent_span_id"] not in ids
            else ""
        )
        status = f" <span class='err'>ERROR {escape(s['status_message'])}</span>" if failed else ""
        rows.append(
            f"<tr id='span-{escape(s['span_id'])}'{' class=err' if failed else ''}>"
            f"<td class='name' style='padding-left:{8 + depth * 16}px'>"
            f"{service_badge(s['service'])} {escape(s['name'])}"
            f" <span class='muted'>{escape(s['kind'].lower())}</span>{status}{orphan}"
            f"{_details(s)}</td>"
            f"<td class='num'>{s['duration_ms']:.2f}</td>"
            f"<td class='lane'><div class='bar{' errbar' if failed else ''}'"
            f" title='{escape(s['name'])} ({s['duration_ms']:.2f} ms)'"
            f" style='left:{left:.3f}%;width:{min(width, 100 - left):.3f}%;"
            f"background:hsl({hue},55%,42%)'></div></td></tr>"
        )
    services = " ".join(service_badge(s) for s in trace["services"])
    errors = trace["error_count"]
    error_note = f" · <span class='err'>{errors} errors</span>" if errors else ""
    head = (
        f"<h1>{escape(trace['root_name'])}</h1>"
        f"<p>trace <code>{escape(trace['trace_id'])}</code> · {escape(when(start))} · "
        f"{trace['duration_ms']:.1f} ms · {trace['span_count']} spans"
        f"{error_note}"
        f" · {services} · <a href='/api/traces/{quote(trace['trace_id'])}'>JSON</a></p>"
    )
    table = (
        "<table class='wf'><tr><th>span</th><th>ms</th><th>timeline</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return page(f"Trace {trace['root_name']}", head + table)


def _details(span: dict[str, Any]) -> str:
    """Attributes, events and links, folded under the span's name."""
    parts = [
        f"<pre>span {escape(span['span_id'])}"
        f" parent {escape(span['parent_span_id'] or '-')} · {escape(span['scope'])}</pre>"
    ]
    if span["attributes"]:
        parts.append(f"<pre>{escape(_pretty(span['attributes']))}</pre>")
    for event in span["events"]:
        parts.append(
            f"<pre>event {escape(event['name'])} at +"
            f"{(event['time_ns'] - span['start_ns']) / 1e6:.2f} ms"
            f"{escape(' ' + _pretty(event['attributes']) if event['attributes'] else '')}</pre>"
        )
    for link in span["links"]:
        target = f"/trace/{quote(link['trace_id'])}#span-{quote(link['span_id'])}"
        parts.append(
            f"<pre>link → <a href='{target}'>{escape(link['trace_id'])}"
            f" / {escape(link['span_id'])}</a></pre>"
        )
    links = f" · {len(span['links'])} links" if span["links"] else ""
    events = f" · {len(span['events'])} events" if span["events"] else ""
    return (
        f"<details><summary>{len(span['attributes'])} attributes{events}{links}</summary>"
        + "".join(parts)
        + "</details>"
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)


def not_found(what: str) -> str:
    return page("Not found", f"<h1>Not found</h1><p>{escape(what)}</p>")
