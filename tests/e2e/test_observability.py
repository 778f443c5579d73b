"""What the people who run the platform see: one trace per purchase, saga and cache
metrics that move, `/metrics` on every service.

The trace test needs Zipkin (`make up OBSERVABILITY=1`, which `make test` does): every
process sends its spans there, and the test reads the purchase's trace back from
Zipkin's API (tests/e2e/traces.py), as it left the real processes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from common.testing import wait_for
from common.topology import SERVICES
from tests.e2e.conftest import Customer, edge, wait_final
from tests.e2e.traces import (
    FIVE_SERVICES,
    Span,
    buy,
    find_traces,
    roots,
    service_of,
    services_of,
    wait_for_trace,
)

PARTICIPANTS = ("product", "order", "payment")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""A scrape: (sample name, sorted labels) -> value."""


# ------------------------------------------------------------------- traces


def hop(spans: list[Span], topic: str, producer: str, consumer: str) -> bool:
    """Whether a `<topic> process` span of `consumer` hangs below a `<topic> publish`
    span of `producer`: the trace crossed Kafka."""
    published = {
        s["id"] for s in spans if s["name"] == f"{topic} publish" and service_of(s) == producer
    }
    return any(
        s["name"] == f"{topic} process"
        and service_of(s) == consumer
        and s.get("parentId") in published
        for s in spans
    )


def step_spans(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s["name"].startswith("saga.execute")]


def test_one_purchase_is_one_trace_across_every_service_and_kafka(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    trace_id = secrets.token_hex(16)
    purchase_id = buy(customer, make_product(inventory=5), trace_id=trace_id)
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"

    def complete(spans: list[Span]) -> bool:
        return (
            services_of(spans) >= FIVE_SERVICES
            and hop(spans, "purchase", "purchase", "orchestrator")
            and hop(spans, "purchase-result", "orchestrator", "purchase")
            and len(step_spans(spans)) >= 3
            and len(roots(spans)) == 1
        )

    spans = wait_for_trace(trace_id, complete)

    assert services_of(spans) >= FIVE_SERVICES, services_of(spans)
    assert hop(spans, "purchase", "purchase", "orchestrator"), "no hop purchase -> orchestrator"
    assert hop(spans, "purchase-result", "orchestrator", "purchase"), "no hop back"
    # Every span belongs to this one trace and hangs below another one of it, but the root
    # (whose parent is the caller's span, in our traceparent header).
    assert {s["traceId"] for s in spans} == {trace_id}
    (root,) = roots(spans)
    assert service_of(root) == "purchase" and root["kind"] == "SERVER", root
    tags = [s.get("tags", {}) for s in spans if s["name"].startswith("saga.")]
    steps = {t.get("saga.step") for t in tags}
    assert steps >= {"UPDATE_PRODUCT_INVENTORY", "CREATE_ORDER", "CREATE_PAYMENT"}
    assert {s["tags"].get("saga.purchase_id") for s in step_spans(spans)} == {purchase_id}
    # Each participant's gRPC server span sits in the trace, with its database queries.
    for service in PARTICIPANTS:
        assert any(service_of(s) == service and s.get("kind") == "SERVER" for s in spans), service
        assert any(service_of(s) == service and s.get("kind") == "CLIENT" for s in spans), service


def test_zipkin_finds_a_purchases_trace_by_its_id(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    # As an operator looks a purchase up: its id is a tag of the saga's spans.
    trace_id = secrets.token_hex(16)
    purchase_id = buy(customer, make_product(inventory=5), trace_id=trace_id)
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"

    def found(traces: list[list[Span]]) -> bool:
        return any(trace and trace[0]["traceId"] == trace_id for trace in traces)

    traces = wait_for(
        lambda: find_traces("orchestrator", "saga.purchase_id", purchase_id), found, within=60.0
    )

    assert [trace[0]["traceId"] for trace in traces] == [trace_id]


# ------------------------------------------------------------------ metrics


def scrape(service: str) -> Samples:
    """A service's `/metrics` (on its own port: not routed through the edge), parsed."""
    url = f"http://127.0.0.1:{SERVICES[service].http_port}/metrics"
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def test_metrics_of_every_service_parse_and_are_not_public() -> None:
    for service in SERVICES:
        samples = scrape(service)
        assert total(samples, "http_requests_total") > 0, service  # probes count too
    assert edge("GET", "/metrics").status_code == 404


def test_the_saga_services_report_their_outbox_and_kafka_consumer() -> None:
    # Earlier tests bought things: both relays published, both consumers handled.
    for service, consumes in (("purchase", "purchase-result"), ("orchestrator", "purchase")):

        def lag_of(samples: Samples, topic: str = consumes) -> list[float]:
            return [
                value
                for (name, labels), value in samples.items()
                if name == "kafka_consumer_lag_messages" and dict(labels)["topic"] == topic
            ]

        # librdkafka reports every 5 s: a consumer restarted a moment ago may not have yet.
        samples = wait_for_samples(service, lambda found: bool(lag_of(found)))
        names = {name for name, _ in samples}
        assert {"outbox_backlog_messages", "outbox_oldest_unpublished_age_seconds"} <= names
        assert lag_of(samples), f"{service}: no lag reported for {consumes}"
        assert all(lag >= 0 for lag in lag_of(samples))
        assert total(samples, "kafka_messages_consumed_total", topic=consumes) > 0
        assert total(samples, "kafka_messages_published_total") > 0


def wait_for_samples(service: str, done: Callable[[Samples], bool]) -> Samples:
    """The service's samples once `done` holds for them (or after a minute)."""
    samples: Samples = wait_for(lambda: scrape(service), done, within=60.0)
    return samples


def wait_for_metric(service: str, name: str, at_least: float) -> Samples:
    return wait_for_samples(service, lambda samples: total(samples, name) >= at_least)


STEPS = ("UPDATE_PRODUCT_INVENTORY", "CREATE_ORDER", "CREATE_PAYMENT")


def test_saga_counters_and_step_histograms_move_for_a_completed_purchase(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    before = scrape("orchestrator")

    purchase_id = buy(customer, make_product(inventory=5), trace_id=secrets.token_hex(16))
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"
    after = wait_for_metric(
        "orchestrator", "saga_completed_total", total(before, "saga_completed_total") + 1
    )

    for name in ("saga_started_total", "saga_completed_total"):
        assert total(after, name) >= total(before, name) + 1, name
    for step in STEPS:
        count = "saga_step_duration_seconds_count"
        labels = {"step": step, "action": "execute", "outcome": "ok"}
        assert total(after, count, **labels) >= total(before, count, **labels) + 1, step


def test_saga_counters_and_compensations_move_for_a_compensated_purchase(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    before = scrape("orchestrator")

    # The payment service refuses XXX: the saga compensates all three steps.
    purchase_id = buy(
        customer, make_product(inventory=5), currency="XXX", trace_id=secrets.token_hex(16)
    )
    assert wait_final(customer, purchase_id)["status"] == "FAILED"
    after = wait_for_metric(
        "orchestrator", "saga_failed_total", total(before, "saga_failed_total") + 1
    )

    assert total(after, "saga_failed_total") >= total(before, "saga_failed_total") + 1
    refused = {"step": "CREATE_PAYMENT", "action": "execute", "outcome": "refused"}
    count = "saga_step_duration_seconds_count"
    assert total(after, count, **refused) >= total(before, count, **refused) + 1
    for step in STEPS:
        name = "saga_compensations_total"
        assert total(after, name, step=step) >= total(before, name, step=step) + 1, step


def test_cache_and_filter_counters_move_after_reads(make_product: Callable[..., int]) -> None:
    product = make_product(inventory=5)
    before = scrape("product")

    for _ in range(3):  # a miss loads it; the next reads hit a cache level
        assert edge("GET", f"/api/v1/products/{product}").status_code == 200
    absent = 2_000_000_000 + secrets.randbelow(100_000_000)
    assert edge("GET", f"/api/v1/products/{absent}").status_code == 404
    after = scrape("product")

    def moved(result: str) -> float:
        name = "cache_requests_total"
        return total(after, name, result=result) - total(before, name, result=result)

    assert moved("miss") >= 1
    assert moved("hit") + moved("hit_local") >= 1
    assert moved("filtered") >= 1
