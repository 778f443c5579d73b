"""The Grafana dashboard "Saga purchase platform", built with grafana-foundation-sdk.

`python -m deploy.docker.generate` writes it to grafana/dashboards/saga.json (committed;
tests/deploy fails when that file is stale). Every query uses only the metrics of
metric_names.py (and `up`); tests/deploy checks that, and that promtool accepts each
expression. Per-service panels filter on the `service` variable, whose values are the
scrape jobs (one per service, and traefik). Ours are the panels and their PromQL; the
SDK (Grafana Labs' builders) owns the JSON model, its defaults and the grid layout.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

from grafana_foundation_sdk.builders import common as viz
from grafana_foundation_sdk.builders import dashboard as gf
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import QueryEditorMode

DASHBOARD_FILE = Path(__file__).resolve().parent / "grafana" / "dashboards" / "saga.json"
UID = "saga-platform"
TITLE = "Saga purchase platform"
# The datasource's uid, fixed by grafana/provisioning/datasources/prometheus.yml.
SOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")
DATASOURCE = SOURCE.to_json()  # as the JSON model writes it
WINDOW = "1m"  # rate window: twelve scrapes at the 5 s interval
SERVICE = 'job=~"$service"'
GRID_WIDTH = 24
PANEL_HEIGHT = 8

Query = tuple[str, str]  # (PromQL, legend)
PanelBuilder = timeseries.Panel | stat.Panel
Row = tuple[str, list[PanelBuilder]]  # a row's title and its panels


def select(series: str, selector: str = "") -> str:
    return f"{series}{{{selector}}}" if selector else series


def rate(series: str, by: str = "", selector: str = "") -> str:
    """Per-second rate of a counter (or a histogram's _count), summed by labels."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({select(series, selector)}[{WINDOW}]))"


def quantile(q: float, histogram: str, by: str, selector: str = "") -> str:
    buckets = select(f"{histogram}_bucket", selector)
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({buckets}[{WINDOW}])))"


def _queries(panel: PanelBuilder, queries: tuple[Query, ...]) -> None:
    for i, (expr, legend) in enumerate(queries):
        panel.with_target(
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + i))
            .datasource(SOURCE)
            .editor_mode(QueryEditorMode.CODE)
            .expr(expr)
            .legend_format(legend)
            .range()
        )


def graph(
    title: str,
    *queries: Query,
    unit: str = "short",
    description: str = "",
    width: int = 8,
) -> timeseries.Panel:
    """A time series panel: thin lines from zero, every series in the tooltip."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(SOURCE)
        .span(width)
        .height(PANEL_HEIGHT)
        .unit(unit)
        .min(0)
        .draw_style(common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .legend(
            viz.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            viz.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    _queries(panel, queries)
    return panel


def up_down(title: str, query: Query, *, description: str, height: int) -> stat.Panel:
    """A stat panel of 0/1 series shown as DOWN (red) / UP (green)."""
    result = model.ValueMappingResult
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(SOURCE)
        .span(GRID_WIDTH)
        .height(height)
        .unit("short")
        .mappings(
            [
                model.ValueMap(
                    {
                        "0": result(text="DOWN", color="red", index=0),
                        "1": result(text="UP", color="green", index=1),
                    }
                )
            ]
        )
        .thresholds(
            gf.ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(None, "red"), model.Threshold(1, "green")])
        )
        .reduce_options(viz.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
    )
    _queries(panel, (query,))
    return panel


def saga_row() -> Row:
    outcomes = ("started", "completed", "failed", "needs_attention", "cancelled")
    finished = " - ".join(
        f"(sum(saga_{o}_total) or vector(0))"
        for o in ("completed", "failed", "needs_attention", "cancelled")
    )
    step = "step, action"
    return (
        "Sagas (orchestrator)",
        [
            graph(
                "Sagas per second",
                *((rate(f"saga_{o}_total"), o.replace("_", " ")) for o in outcomes),
                unit="ops",
            ),
            graph(
                "Sagas in flight (estimate)",
                (f"sum(saga_started_total) - {finished}", "in flight"),
                description="Started minus finished (completed, failed, needing attention,"
                " cancelled) since the orchestrator's counters began.",
            ),
            graph(
                "Cancels and deadlines per second",
                (
                    rate("saga_cancel_requests_total", "requested_by, outcome"),
                    "cancel by {{requested_by}} {{outcome}}",
                ),
                (rate("saga_deadline_exceeded_total"), "deadline exceeded"),
                unit="ops",
                description="Cancels the orchestrator received (applied, pending: before its"
                " saga, ignored: asked before, final or compensating) and sagas its deadline"
                " stopped (ADR 0024).",
            ),
            graph(
                "Step executions per second by outcome",
                (
                    rate("saga_step_duration_seconds_count", f"{step}, outcome"),
                    "{{step}} {{action}} {{outcome}}",
                ),
                unit="ops",
                description="outcome: ok, refused (the step said no), error (it failed).",
            ),
            graph(
                "Step latency p50",
                (quantile(0.5, "saga_step_duration_seconds", step), "{{step}} {{action}}"),
                unit="s",
            ),
            graph(
                "Step latency p95",
                (quantile(0.95, "saga_step_duration_seconds", step), "{{step}} {{action}}"),
                unit="s",
            ),
            graph(
                "Retries, held calls, compensations and audit findings per second",
                (rate("saga_step_retries_total", step), "retry {{step}} {{action}}"),
                (rate("saga_compensations_total", "step"), "compensation {{step}}"),
                (rate("saga_calls_held_total", "participant"), "held {{participant}}"),
                (
                    rate("saga_circuit_opened_total", "participant"),
                    "circuit opened {{participant}}",
                ),
                (rate("saga_audit_discrepancies_total", "kind"), "audit discrepancy {{kind}}"),
                (rate("saga_audit_repairs_total"), "audit repair"),
                (rate("saga_audit_purchases_total"), "audited"),
                unit="ops",
            ),
            graph(
                "Purchases ended per second by status",
                (rate("purchase_finished_total", "status, reason"), "{{status}} {{reason}}"),
                unit="ops",
                description="Final statuses the purchase service applied: COMPLETED, FAILED,"
                " NEEDS_ATTENTION, CANCELLED; reason cancelled or deadline when that ended it.",
            ),
        ],
    )


def http_row() -> Row:
    by = "job, route"
    return (
        "HTTP",
        [
            graph(
                "Requests per second by route",
                (rate("http_requests_total", by, SERVICE), "{{job}} {{route}}"),
                unit="reqps",
            ),
            graph(
                "Latency p95 by route",
                (
                    quantile(0.95, "http_request_duration_seconds", by, SERVICE),
                    "{{job}} {{route}}",
                ),
                unit="s",
            ),
            graph(
                "Server errors (5xx) per second by route",
                (
                    rate("http_requests_total", f"{by}, status", f'{SERVICE}, status=~"5.."'),
                    "{{job}} {{route}} {{status}}",
                ),
                unit="reqps",
            ),
        ],
    )


def grpc_row() -> Row:
    by = "job, method"
    return (
        "gRPC",
        [
            graph(
                "Server calls per second by method and code",
                (
                    rate("grpc_server_handled_total", f"{by}, code", SERVICE),
                    "{{job}} {{method}} {{code}}",
                ),
                unit="ops",
                width=6,
            ),
            graph(
                "Server latency p95 by method",
                (
                    quantile(0.95, "grpc_server_handling_seconds", by, SERVICE),
                    "{{job}} {{method}}",
                ),
                unit="s",
                width=6,
            ),
            graph(
                "Client latency p95 by method",
                (
                    quantile(0.95, "grpc_client_handling_seconds", by, SERVICE),
                    "{{job}} {{method}}",
                ),
                unit="s",
                width=6,
                description="Calls this service makes, through the gRPC edge.",
            ),
            graph(
                "Client calls not OK per second by code",
                (
                    rate("grpc_client_handled_total", f"{by}, code", f'{SERVICE}, code!="OK"'),
                    "{{job}} {{method}} {{code}}",
                ),
                unit="ops",
                width=6,
            ),
        ],
    )


def messaging_row() -> Row:
    return (
        "Outbox and Kafka",
        [
            graph(
                "Outbox backlog",
                (f"max by (job) ({select('outbox_backlog_messages', SERVICE)})", "{{job}}"),
                description="Messages written to the outbox and not yet published to Kafka.",
            ),
            graph(
                "Oldest unpublished outbox message",
                (
                    f"max by (job) ({select('outbox_oldest_unpublished_age_seconds', SERVICE)})",
                    "{{job}}",
                ),
                unit="s",
            ),
            graph(
                "Published per second by topic",
                (
                    rate("kafka_messages_published_total", "job, topic", SERVICE),
                    "{{job}} {{topic}}",
                ),
                unit="ops",
            ),
            graph(
                "Consumer lag by topic and partition",
                (
                    "max by (job, group, topic, partition)"
                    f" ({select('kafka_consumer_lag_messages', SERVICE)})",
                    "{{group}} {{topic}}/{{partition}}",
                ),
                width=12,
            ),
            graph(
                "Consumed per second by outcome",
                (
                    rate("kafka_messages_consumed_total", "job, topic, outcome", SERVICE),
                    "{{job}} {{topic}} {{outcome}}",
                ),
                unit="ops",
                width=12,
                description="outcome: handled, retried, dead_lettered (sent to <topic>.DLQ).",
            ),
        ],
    )


def cache_row() -> Row:
    by = "job, cache"
    hits = rate("cache_requests_total", by, f'{SERVICE}, result=~"hit|hit_local"')
    lookups = rate("cache_requests_total", by, f'{SERVICE}, result=~"hit|hit_local|miss"')
    return (
        "Cache",
        [
            graph(
                "Hit ratio by cache",
                (f"{hits} / {lookups}", "{{job}} {{cache}}"),
                unit="percentunit",
                description="Hits (in-process or Redis) over the lookups that reached the"
                " cache; those the cuckoo filter stopped are in the next panel.",
            ),
            graph(
                "Filtered per second by cache",
                (
                    rate("cache_requests_total", by, f'{SERVICE}, result="filtered"'),
                    "{{job}} {{cache}}",
                ),
                unit="ops",
                description="Lookups the cuckoo filter answered (the key cannot exist).",
            ),
            graph(
                "Requests per second by result",
                (
                    rate("cache_requests_total", f"{by}, result", SERVICE),
                    "{{job}} {{cache}} {{result}}",
                ),
                unit="ops",
            ),
        ],
    )


def targets_row() -> Row:
    return (
        "Scrape targets",
        [
            up_down(
                "Up",
                (select("up", SERVICE), "{{job}} {{instance}}"),
                height=5,
                description="1 when Prometheus' last scrape of the target succeeded.",
            ),
        ],
    )


def rows() -> Iterator[Row]:
    """Top to bottom. Fresh builders on each call: building mutates them."""
    yield saga_row()
    yield http_row()
    yield grpc_row()
    yield messaging_row()
    yield cache_row()
    yield targets_row()


def service_variable() -> gf.QueryVariable:
    """`$service`: the scrape jobs, all of them by default."""
    query = "label_values(up, job)"
    return (
        gf.QueryVariable("service")
        .label("Service")
        .datasource(SOURCE)
        .query(
            {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"}
        )
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .regex("")
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def build() -> model.Dashboard:
    """The dashboard; the SDK lays the rows and their panels out top to bottom."""
    board = (
        gf.Dashboard(TITLE)
        .uid(UID)
        .description("Sagas, HTTP, gRPC, outbox, Kafka and cache of every service.")
        .tags(["saga"])
        .version(1)
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("10s")
        .time("now-30m", "now")
        .timezone("")
        .fiscal_year_start_month(0)
        .live_now(False)
        .links([])
        # An empty list, not none: Grafana adds its built-in annotations to it on load.
        .annotations([])
        .with_variable(service_variable())
    )
    ids = itertools.count(1)
    # Expanded rows: their panels follow them at the top level, as Grafana saves them.
    # The SDK starts a new line once one is full (x reaches 24), not before a panel that
    # would overflow it: each row's widths add up to whole lines (tests/deploy checks).
    for title, panels in rows():
        board.with_row(gf.Row(title).id(next(ids)))
        for panel in panels:
            board.with_panel(panel.id(next(ids)))
    return board.build()


def render_dashboard() -> str:
    return json.dumps(build(), cls=JSONEncoder, indent=2) + "\n"
