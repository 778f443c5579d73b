"""The metrics the services expose: names, kinds and labels, in one place.

This is the contract between the code that records metrics (common.observability)
and what reads them (the Grafana dashboard, the tests). A name here that no process
exposes leaves a panel empty; a name in the dashboard that is not here fails
tests/deploy. Names are as exposed: counters with `_total`, histograms by their base
name (the `_bucket`, `_count` and `_sum` series follow). None has a `service` label:
Prometheus adds `job` (the service) and `instance` per scrape target, and our scrape
configuration adds `service` as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    labels: tuple[str, ...] = ()

    @property
    def series(self) -> tuple[str, ...]:
        """The names of the series Prometheus stores for this metric."""
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


C, G, H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM

METRICS: tuple[Metric, ...] = (
    # HTTP (every service's gunicorn); route = Django's matched pattern or `unmatched`.
    Metric("http_requests_total", C, ("method", "route", "status")),
    Metric("http_request_duration_seconds", H, ("method", "route")),
    # gRPC; method = "/pkg.Service/Method", code = grpc.StatusCode name.
    Metric("grpc_server_handled_total", C, ("method", "code")),
    Metric("grpc_server_handling_seconds", H, ("method",)),
    Metric("grpc_client_handled_total", C, ("method", "code")),
    Metric("grpc_client_handling_seconds", H, ("method",)),
    # Cache; result = hit_local | hit | miss | filtered (stopped by the cuckoo filter).
    Metric("cache_requests_total", C, ("cache", "result")),
    # Outbox (purchase, orchestrator), computed at scrape time.
    Metric("outbox_backlog_messages", G),
    Metric("outbox_oldest_unpublished_age_seconds", G),
    # Kafka; outcome = handled | dead_lettered | retried.
    Metric("kafka_consumer_lag_messages", G, ("group", "topic", "partition")),
    Metric("kafka_messages_consumed_total", C, ("topic", "outcome")),
    Metric("kafka_messages_published_total", C, ("topic",)),
    # Purchases (purchase consumer): final statuses applied; reason = cancelled | deadline
    # | "" (a step's own outcome) | other.
    Metric("purchase_finished_total", C, ("status", "reason")),
    # Saga (orchestrator); action = execute | compensate, outcome = ok | refused | error.
    Metric("saga_started_total", C),
    Metric("saga_completed_total", C),
    Metric("saga_failed_total", C),
    Metric("saga_needs_attention_total", C),
    Metric("saga_cancelled_total", C),
    Metric("saga_deadline_exceeded_total", C),
    Metric("saga_cancel_requests_total", C, ("requested_by", "outcome")),
    Metric("saga_step_duration_seconds", H, ("step", "action", "outcome")),
    Metric("saga_step_retries_total", C, ("step", "action")),
    Metric("saga_circuit_opened_total", C, ("participant",)),
    Metric("saga_calls_held_total", C, ("participant",)),
    Metric("saga_audit_purchases_total", C),
    Metric("saga_audit_discrepancies_total", C, ("kind",)),
    Metric("saga_audit_repairs_total", C),
    Metric("saga_compensations_total", C, ("step",)),
)

# Added by Prometheus (job, instance) and by our scrape configuration (service).
TARGET_LABELS: tuple[str, ...] = ("job", "instance", "service")
# Prometheus' own series per target, the one used besides the contract.
UP = Metric("up", G)


def by_series() -> dict[str, Metric]:
    """Every series name a query may use (the contract's and `up`) -> its metric."""
    return {series: m for m in (*METRICS, UP) for series in m.series}


def labels_of(series: str) -> set[str]:
    """The labels a series carries: its own, `le` for buckets, and the target's."""
    labels = set(by_series()[series].labels) | set(TARGET_LABELS)
    if series.endswith("_bucket"):
        labels.add("le")
    return labels
