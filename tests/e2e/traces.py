"""Traces as Zipkin holds them: a purchase bought as the first hop of a trace of our
choosing, and that trace read back from Zipkin's API (`make up OBSERVABILITY=1`, which
`make test` does, runs Zipkin; every process sends its spans there).

Zipkin's JSON v2 spans: `traceId`, `id`, `parentId`, `kind` (SERVER, CLIENT, PRODUCER,
CONSUMER; none for an internal span), `name` (Zipkin lowercases it),
`localEndpoint.serviceName` and the attributes as string `tags`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import requests

from common.testing import Customer, create_category, create_product, login, wait_for
from common.topology import INFRA
from tests.e2e.conftest import PASSWORD, edge, make_staff, register, wait_final

ZIPKIN_API = f"{INFRA.zipkin_url}/api/v2"
# Spans leave each process in batches about a second after they end.
SPANS_WITHIN_SECONDS = 60.0
FIVE_SERVICES = frozenset({"purchase", "orchestrator", "product", "order", "payment"})

Span = dict[str, Any]


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


def completed_traced_purchase() -> tuple[str, str]:
    """A new customer buys one unit of a new product (made by a new staff account) in a
    fresh trace; answers (trace id, purchase id) once the purchase is COMPLETED."""
    staff = register("staff")
    make_staff(staff.email)
    staff = login(staff.email, password=PASSWORD, retry=True)
    category = int(create_category(staff.token, retry=True, description="trace tests")["id"])
    product = create_product(staff.token, category_id=category, retry=True, inventory=5)
    customer = register()
    trace_id = secrets.token_hex(16)
    purchase_id = buy(customer, int(product["id"]), trace_id=trace_id)
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"
    return trace_id, purchase_id


def _get(path: str, **params: str) -> requests.Response:
    url = f"{ZIPKIN_API}{path}"
    try:
        return requests.get(url, params=params, timeout=10)
    except requests.ConnectionError as error:
        raise AssertionError(
            f"Zipkin does not answer at {url}: start the platform with "
            f"`make up OBSERVABILITY=1` (make test does): {error}"
        ) from error


def zipkin_trace(trace_id: str) -> list[Span]:
    """The spans Zipkin holds for `trace_id` so far (none yet: an empty list)."""
    response = _get(f"/trace/{trace_id}")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    spans: list[Span] = response.json()
    return spans


def find_traces(service: str, tag: str, value: str) -> list[list[Span]]:
    """The traces of `service` with a span tagged `tag=value` (Zipkin's search)."""
    response = _get("/traces", serviceName=service, annotationQuery=f"{tag}={value}")
    assert response.status_code == 200, response.text
    traces: list[list[Span]] = response.json()
    return traces


def wait_for_trace(trace_id: str, done: Callable[[list[Span]], bool]) -> list[Span]:
    """The trace's spans once `done` holds for them (or as they are at the deadline)."""
    return list(
        wait_for(lambda: zipkin_trace(trace_id), done, within=SPANS_WITHIN_SECONDS, every=0.5)
    )


def service_of(span: Span) -> str:
    return str(span.get("localEndpoint", {}).get("serviceName", ""))


def services_of(spans: list[Span]) -> set[str]:
    return {service_of(span) for span in spans}


def roots(spans: list[Span]) -> list[Span]:
    """The spans whose parent is not in the trace. A parent ends, so leaves its process,
    after its children: until every batch has arrived there are more than one."""
    ids = {s["id"] for s in spans}
    return [s for s in spans if s.get("parentId") not in ids]
