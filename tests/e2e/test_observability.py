"""What the people who run the platform see: one trace per purchase, saga and cache
metrics that move, `/metrics` on every service.

The trace test needs the local trace collector (`make up OBSERVABILITY=1`, which
`make test` does): every process exports its spans there over OTLP, and the test
reads them back from the collector's JSON API.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from common.testing import wait_for
from common.topology import INFRA, SERVICES
from tests.e2e.conftest import Customer, edge, wait_final

SPANS_WITHIN_SECONDS = 60.0
PARTICIPANTS = ("product", "order", "payment")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""A scrape: (sample name, sorted labels) -> value."""


# ------------------------------------------------------------------- traces


def buy(customer: Customer, product: int, *, currency: str = "VND", trace_id: str) -> str:
    """POST a purchase as the first hop of trace `trace_id` (a W3C traceparent header)."""
    response = edge(
        "POST",
        "/api/v1/purchases",
        token=customer.token,
        headers={
            "Idempotency-Key": uuid.uuid4().hex,
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        },
        json={
            "order_items": [{"product_id": product, "quantity": 1}],
            "payment": {"currency_code": currency},
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def collected_spans(trace_id: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{INFRA.trace_viewer_port}/api/traces/{trace_id}"
    try:
        response = requests.get(url, timeout=10)
    except requests.ConnectionError as error:
        raise AssertionError(
            f"the trace collector does not answer at {url}: start the platform with "
            f"`make up OBSERVABILITY=1` (make test does): {error}"
        ) from error
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    spans: list[dict[str, Any]] = response.json()["spans"]
    return spans


def wait_for_spans(trace_id: str, done: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    """The trace's spans once `done` holds for them (spans leave their processes in
    batches, a second or so after they end)."""
    return list(
        wait_for(lambda: collected_spans(trace_id), done, within=SPANS_WITHIN_SECONDS, every=0.5)
    )


def services_of(spans: list[dict[str, Any]]) -> set[str]:
    return {span["service"] for span in spans}


def hop(spans: list[dict[str, Any]], topic: str, producer: str, consumer: str) -> bool:
    """Whether a `<topic> process` span of `consumer` hangs below a `<topic> publish`
    span of `producer`: the trace crossed Kafka."""
    published = {
        s["span_id"] for s in spans if s["name"] == f"{topic} publish" and s["service"] == producer
    }
    return any(
        s["name"] == f"{topic} process"
        and s["service"] == consumer
        and s["parent_span_id"] in published
        for s in spans
    )


def test_one_purchase_is_one_trace_across_every_service_and_kafka(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    trace_id = secrets.token_hex(16)
    purchase_id = buy(customer, make_product(inventory=5), trace_id=trace_id)
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"

    def complete(spans: list[dict[str, Any]]) -> bool:
        return (
            services_of(spans) >= {"purchase", "orchestrator", *PARTICIPANTS}
            and hop(spans, "purchase", "purchase", "orchestrator")
            and hop(spans, "purchase-result", "orchestrator", "purchase")
            and sum(s["name"].startswith("saga.execute") for s in spans) >= 3
        )

    spans = wait_for_spans(trace_id, complete)

    assert services_of(spans) >= {"purchase", "orchestrator", *PARTICIPANTS}, services_of(spans)
    assert hop(spans, "purchase", "purchase", "orchestrator"), "no hop purchase -> orchestrator"
    assert hop(spans, "purchase-result", "orchestrator", "purchase"), "no hop back"
    # Every span belongs to this one trace and hangs below another one of it, but the root.
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids]
    assert len(roots) == 1 and roots[0]["service"] == "purchase", roots
    steps = {s["attributes"].get("saga.step") for s in spans if s["name"].startswith("saga.")}
    assert steps >= {"UPDATE_PRODUCT_INVENTORY", "CREATE_ORDER", "CREATE_PAYMENT"}
    step_spans = [s for s in spans if s["name"].startswith("saga.execute")]
    assert {s["attributes"].get("saga.purchase_id") for s in step_spans} == {purchase_id}
    # Each participant's gRPC server span sits in the trace, with its database queries.
    for service in PARTICIPANTS:
        assert any(s["service"] == service and s["kind"] == "SERVER" for s in spans), service


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
