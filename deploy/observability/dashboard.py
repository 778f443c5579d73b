"""The Grafana dashboard "Saga purchase platform", written as data.

`python -m deploy.docker.generate` writes it to grafana/dashboards/saga.json (committed;
tests/deploy fails when that file is stale). Every query uses only the metrics of
metric_names.py (and `up`); tests/deploy checks that, and that promtool accepts each
expression. Per-service panels filter on the `service` variable, whose values are the
scrape jobs (one per service, and traefik).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD_FILE = Path(__file__).resolve().parent / "grafana" / "dashboards" / "saga.json"
UID = "saga-platform"
TITLE = "Saga purchase platform"
# The datasource's uid, fixed by grafana/provisioning/datasources/prometheus.yml.
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 39
WINDOW = "1m"  # rate window: twelve scrapes at the 5 s interval
SERVICE = 'job=~"$service"'
GRID_WIDTH = 24
PANEL_HEIGHT = 8


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    width: int = 8
    height: int = PANEL_HEIGHT
    kind: str = "timeseries"  # or "stat"


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def select(series: str, selector: str = "") -> str:
    return f"{series}{{{selector}}}" if selector else series


def rate(series: str, by: str = "", selector: str = "") -> str:
    """Per-second rate of a counter (or a histogram's _count), summed by labels."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({select(series, selector)}[{WINDOW}]))"


def quantile(q: float, histogram: str, by: str, selector: str = "") -> str:
    buckets = select(f"{histogram}_bucket", selector)
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({buckets}[{WINDOW}])))"


def saga_row() -> Row:
    outcomes = ("started", "completed", "failed", "needs_attention")
    finished = " - ".join(
        f"(sum(saga_{o}_total) or vector(0))" for o in ("completed", "failed", "needs_attention")
    )
    step = "step, action"
    return Row(
        "Sagas (orchestrator)",
        (
            Panel(
                "Sagas per second",
                tuple(Query(rate(f"saga_{o}_total"), o.replace("_", " ")) for o in outcomes),
                unit="ops",
            ),
            Panel(
                "Sagas in flight (estimate)",
                (Query(f"sum(saga_started_total) - {finished}", "in flight"),),
                description="Started minus finished (completed, failed, needing attention)"
                " since the orchestrator's counters began.",
            ),
            Panel(
                "Step executions per second by outcome",
                (
                    Query(
                        rate("saga_step_duration_seconds_count", f"{step}, outcome"),
                        "{{step}} {{action}} {{outcome}}",
                    ),
                ),
                unit="ops",
                description="outcome: ok, refused (the step said no), error (it failed).",
            ),
            Panel(
                "Step latency p50",
                (Query(quantile(0.5, "saga_step_duration_seconds", step), "{{step}} {{action}}"),),
                unit="s",
            ),
            Panel(
                "Step latency p95",
                (Query(quantile(0.95, "saga_step_duration_seconds", step), "{{step}} {{action}}"),),
                unit="s",
            ),
            Panel(
                "Retries, held calls, compensations and audit findings per second",
                (
                    Query(rate("saga_step_retries_total", step), "retry {{step}} {{action}}"),
                    Query(rate("saga_compensations_total", "step"), "compensation {{step}}"),
                    Query(rate("saga_calls_held_total", "participant"), "held {{participant}}"),
                    Query(
                        rate("saga_circuit_opened_total", "participant"),
                        "circuit opened {{participant}}",
                    ),
                    Query(
                        rate("saga_audit_discrepancies_total", "kind"),
                        "audit discrepancy {{kind}}",
                    ),
                    Query(rate("saga_audit_repairs_total"), "audit repair"),
                    Query(rate("saga_audit_purchases_total"), "audited"),
                ),
                unit="ops",
            ),
        ),
    )


def http_row() -> Row:
    by = "job, route"
    return Row(
        "HTTP",
        (
            Panel(
                "Requests per second by route",
                (Query(rate("http_requests_total", by, SERVICE), "{{job}} {{route}}"),),
                unit="reqps",
            ),
            Panel(
                "Latency p95 by route",
                (
                    Query(
                        quantile(0.95, "http_request_duration_seconds", by, SERVICE),
                        "{{job}} {{route}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Server errors (5xx) per second by route",
                (
                    Query(
                        rate("http_requests_total", f"{by}, status", f'{SERVICE}, status=~"5.."'),
                        "{{job}} {{route}} {{status}}",
                    ),
                ),
                unit="reqps",
            ),
        ),
    )


def grpc_row() -> Row:
    by = "job, method"
    return Row(
        "gRPC",
        (
            Panel(
                "Server calls per second by method and code",
                (
                    Query(
                        rate("grpc_server_handled_total", f"{by}, code", SERVICE),
                        "{{job}} {{method}} {{code}}",
                    ),
                ),
                unit="ops",
                width=6,
            ),
            Panel(
                "Server latency p95 by method",
                (
                    Query(
                        quantile(0.95, "grpc_server_handling_seconds", by, SERVICE),
                        "{{job}} {{method}}",
                    ),
                ),
                unit="s",
                width=6,
            ),
            Panel(
                "Client latency p95 by method",
                (
                    Query(
                        quantile(0.95, "grpc_client_handling_seconds", by, SERVICE),
                        "{{job}} {{method}}",
                    ),
                ),
                unit="s",
                width=6,
                description="Calls this service makes, through the gRPC edge.",
            ),
            Panel(
                "Client calls not OK per second by code",
                (
                    Query(
                        rate("grpc_client_handled_total", f"{by}, code", f'{SERVICE}, code!="OK"'),
                        "{{job}} {{method}} {{code}}",
                    ),
                ),
                unit="ops",
                width=6,
            ),
        ),
    )


def messaging_row() -> Row:
    return Row(
        "Outbox and Kafka",
        (
            Panel(
                "Outbox backlog",
                (Query(f"max by (job) ({select('outbox_backlog_messages', SERVICE)})", "{{job}}"),),
                description="Messages written to the outbox and not yet published to Kafka.",
            ),
            Panel(
                "Oldest unpublished outbox message",
                (
                    Query(
                        "max by (job)"
                        f" ({select('outbox_oldest_unpublished_age_seconds', SERVICE)})",
                        "{{job}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Published per second by topic",
                (
                    Query(
                        rate("kafka_messages_published_total", "job, topic", SERVICE),
                        "{{job}} {{topic}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Consumer lag by topic and partition",
                (
                    Query(
                        "max by (job, group, topic, partition)"
                        f" ({select('kafka_consumer_lag_messages', SERVICE)})",
                        "{{group}} {{topic}}/{{partition}}",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Consumed per second by outcome",
                (
                    Query(
                        rate("kafka_messages_consumed_total", "job, topic, outcome", SERVICE),
                        "{{job}} {{topic}} {{outcome}}",
                    ),
                ),
                unit="ops",
                width=12,
                description="outcome: handled, retried, dead_lettered (sent to <topic>.DLQ).",
            ),
        ),
    )


def cache_row() -> Row:
    by = "job, cache"
    hits = rate("cache_requests_total", by, f'{SERVICE}, result=~"hit|hit_local"')
    lookups = rate("cache_requests_total", by, f'{SERVICE}, result=~"hit|hit_local|miss"')
    return Row(
        "Cache",
        (
            Panel(
                "Hit ratio by cache",
                (Query(f"{hits} / {lookups}", "{{job}} {{cache}}"),),
                unit="percentunit",
                description="Hits (in-process or Redis) over the lookups that reached the"
                " cache; those the cuckoo filter stopped are in the next panel.",
            ),
            Panel(
                "Filtered per second by cache",
                (
                    Query(
                        rate("cache_requests_total", by, f'{SERVICE}, result="filtered"'),
                        "{{job}} {{cache}}",
                    ),
                ),
                unit="ops",
                description="Lookups the cuckoo filter answered (the key cannot exist).",
            ),
            Panel(
                "Requests per second by result",
                (
                    Query(
                        rate("cache_requests_total", f"{by}, result", SERVICE),
                        "{{job}} {{cache}} {{result}}",
                    ),
                ),
                unit="ops",
            ),
        ),
    )


def targets_row() -> Row:
    return Row(
        "Scrape targets",
        (
            Panel(
                "Up",
                (Query(select("up", SERVICE), "{{job}} {{instance}}"),),
                width=GRID_WIDTH,
                height=5,
                kind="stat",
                description="1 when Prometheus' last scrape of the target succeeded.",
            ),
        ),
    )


ROWS: tuple[Row, ...] = (
    saga_row(),
    http_row(),
    grpc_row(),
    messaging_row(),
    cache_row(),
    targets_row(),
)


def _targets(panel: Panel) -> list[dict[str, Any]]:
    return [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": q.expr,
            "legendFormat": q.legend,
            "range": True,
        }
        for i, q in enumerate(panel.queries)
    ]


def _timeseries(panel: Panel) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "min": 0,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": False,
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def _stat(panel: Panel) -> dict[str, Any]:
    return {
        "type": "stat",
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "DOWN", "color": "red", "index": 0},
                            "1": {"text": "UP", "color": "green", "index": 1},
                        },
                    }
                ],
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                },
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model; rows laid out top to bottom."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in ROWS:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            body = _stat(panel) if panel.kind == "stat" else _timeseries(panel)
            panels.append(
                {
                    "id": len(panels) + 1,
                    "title": panel.title,
                    "description": panel.description,
                    "datasource": DATASOURCE,
                    "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
                    **body,
                    "targets": _targets(panel),
                }
            )
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return {
        "uid": UID,
        "title": TITLE,
        "description": "Sagas, HTTP, gRPC, outbox, Kafka and cache of every service.",
        "tags": ["saga"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "service",
                    "label": "Service",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "definition": "label_values(up, job)",
                    "query": {
                        "qryType": 1,
                        "query": "label_values(up, job)",
                        "refId": "PrometheusVariableQueryEditor-VariableQuery",
                    },
                    "refresh": 2,
                    "regex": "",
                    "sort": 1,
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".+",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "options": [],
                    "hide": 0,
                }
            ]
        },
        "panels": panels,
    }


def render_dashboard() -> str:
    return json.dumps(build(), indent=2) + "\n"


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard model's panels."""
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
