"""The purchase API through the edge, against the running platform.

Real customers (account service), real products and CheckProducts (product service,
gRPC through Traefik), the live purchase_db, the purchase relay, Kafka, and the live
purchase-consumer applying `purchase-result` messages.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from psycopg2.extensions import connection as PgConnection

from common.contract.events import PurchaseStatus, Step, StepStatus
from common.testing import assert_error, edge, wait_until
from purchase_svc.tests.conftest import (
    PURCHASES,
    Customer,
    ResultPublisher,
    SseEvent,
    SseReader,
    live_purchase_insert,
    purchase_body,
)

pytestmark = pytest.mark.live

STREAM_TIMEOUT = (5.0, 20.0)  # connect, and the longest silence between two chunks


def purchases_of(conn: PgConnection, customer_id: int) -> list[tuple[str, int]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id::text, amount FROM purchase WHERE customer_id = %s ORDER BY created_at",
            [customer_id],
        )
        return list(cur.fetchall())


def outbox_of(conn: PgConnection, purchase_id: str) -> list[tuple[dict[str, Any], bool]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT payload, published_at IS NOT NULL FROM outbox_message"
            " WHERE topic = 'purchase' AND key = %s",
            [purchase_id],
        )
        return list(cur.fetchall())


def test_a_purchase_of_real_products_is_priced_stored_and_published(
    live_customer: Customer, make_product: Callable[..., dict[str, Any]], live_db: PgConnection
) -> None:
    whey = make_product(price=1390, inventory=50)
    bar = make_product(price=250, inventory=50)

    response = edge(
        "POST",
        PURCHASES,
        token=live_customer.token,
        json=purchase_body((whey["id"], 2), (bar["id"], 1), (whey["id"], 1)),
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["amount"], body["currency_code"]) == ("PENDING", 4420, "VND")
    assert response.headers["Location"] == body["links"]["self"]
    published = wait_until(lambda: [o for o in outbox_of(live_db, body["id"]) if o[1]])
    assert published[0][0] == {
        "purchase_id": body["id"],
        "customer_id": live_customer.id,
        "items": [
            {
                "product_id": whey["id"],
                "quantity": 3,
                "unit_price": whey["price"],
                "name": whey["name"],
            },
            {
                "product_id": bar["id"],
                "quantity": 1,
                "unit_price": bar["price"],
                "name": bar["name"],
            },
        ],
        "amount": 4420,
        "currency_code": "VND",
    }
    view = shown(live_customer, body["id"])
    assert view["id"] == body["id"] and view["amount"] == 4420
    assert view["status"] in {s.value for s in PurchaseStatus}


def test_an_unknown_product_answers_404_and_stores_nothing(
    live_customer: Customer, make_product: Callable[..., dict[str, Any]], live_db: PgConnection
) -> None:
    real = make_product()
    unknown = 2**62 + uuid.uuid4().int % 1000

    response = edge(
        "POST",
        PURCHASES,
        token=live_customer.token,
        json=purchase_body((real["id"], 1), (unknown, 1)),
    )

    assert assert_error(response, 404, "not_found")["details"] == {"product_ids": [unknown]}
    assert purchases_of(live_db, live_customer.id) == []


def test_concurrent_retries_with_one_idempotency_key_create_one_purchase(
    live_customer: Customer, make_product: Callable[..., dict[str, Any]], live_db: PgConnection
) -> None:
    product = make_product(price=990, inventory=50)
    body = purchase_body((product["id"], 1))
    key = f"checkout-{uuid.uuid4()}"
    barrier = threading.Barrier(6)
    answers: list[requests.Response] = []

    def send() -> None:
        barrier.wait()
        answers.append(
            edge(
                "POST",
                PURCHASES,
                token=live_customer.token,
                json=body,
                headers={"Idempotency-Key": key},
            )
        )

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    later = edge(
        "POST", PURCHASES, token=live_customer.token, json=body, headers={"Idempotency-Key": key}
    )

    assert len(answers) == 6
    assert {r.status_code for r in [*answers, later]} == {202}
    assert len({r.text for r in [*answers, later]}) == 1
    assert later.headers["Idempotent-Replayed"] == "true"
    assert len(purchases_of(live_db, live_customer.id)) == 1


def open_events(customer: Customer, purchase_id: str, **headers: str) -> requests.Response:
    response = edge(
        "GET",
        f"{PURCHASES}/{purchase_id}/events",
        token=customer.token,
        headers={"Accept": "text/event-stream", **headers},
        stream=True,
        timeout=STREAM_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response


def next_event(events: SseReader) -> SseEvent:
    for event in events:
        if event.event not in ("retry", ":"):
            return event
    raise AssertionError("the stream ended")


@pytest.mark.parametrize(
    ("changes", "final"),
    [
        (
            [
                (Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE, PurchaseStatus.PENDING),
                (Step.UPDATE_PRODUCT_INVENTORY, StepStatus.SUCCESS, PurchaseStatus.PENDING),
                (Step.CREATE_ORDER, StepStatus.EXECUTE, PurchaseStatus.PENDING),
                (Step.CREATE_ORDER, StepStatus.SUCCESS, PurchaseStatus.PENDING),
                (Step.CREATE_PAYMENT, StepStatus.EXECUTE, PurchaseStatus.PENDING),
                (Step.CREATE_PAYMENT, StepStatus.SUCCESS, PurchaseStatus.COMPLETED),
            ],
            PurchaseStatus.COMPLETED,
        ),
        (
            [
                (Step.UPDATE_PRODUCT_INVENTORY, StepStatus.EXECUTE, PurchaseStatus.PENDING),
                (Step.UPDATE_PRODUCT_INVENTORY, StepStatus.SUCCESS, PurchaseStatus.PENDING),
                (Step.CREATE_ORDER, StepStatus.EXECUTE, PurchaseStatus.PENDING),
                (Step.CREATE_ORDER, StepStatus.FAILED, PurchaseStatus.PENDING),
                (Step.UPDATE_PRODUCT_INVENTORY, StepStatus.ROLLBACK, PurchaseStatus.FAILED),
            ],
            PurchaseStatus.FAILED,
        ),
    ],
    ids=["completed", "failed"],
)
def test_the_event_stream_delivers_each_change_in_order_and_ends_at_the_final_state(
    live_customer: Customer,
    live_db: PgConnection,
    results: ResultPublisher,
    changes: list[tuple[Step, StepStatus, PurchaseStatus]],
    final: PurchaseStatus,
) -> None:
    """Through Traefik and gunicorn: each message the live consumer applies reaches the
    open stream before the next one is even published, so none is batched or held back."""
    purchase_id = live_purchase_insert(live_db, customer_id=live_customer.id)
    response = open_events(live_customer, purchase_id)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    events = SseReader(response.iter_content(chunk_size=None))
    state = next_event(events)
    assert (state.event, state.data["status"]) == ("state", "PENDING")

    latencies = []
    for sequence, (step, status, overall) in enumerate(changes, start=1):
        sent = time.monotonic()
        results.publish(purchase_id, step, status, purchase_status=overall, sequence=sequence)
        event = next_event(events)
        latencies.append(time.monotonic() - sent)
        assert event.event == "step"
        assert (event.data["sequence"], event.data["step"], event.data["status"]) == (
            sequence,
            step.value,
            status.value,
        )
        assert event.data["purchase_status"] == overall.value

    rest = [e for e in events if e.event not in ("retry", ":")]
    assert rest == [SseEvent("status", {"id": purchase_id, "status": final.value, "reason": ""})]
    assert max(latencies) < 5.0, latencies
    view = shown(live_customer, purchase_id)
    assert view["status"] == final.value
    assert [s["sequence"] for s in view["steps"]] == list(range(1, len(changes) + 1))


def shown(customer: Customer, purchase_id: str) -> dict[str, Any]:
    response = edge("GET", f"{PURCHASES}/{purchase_id}", token=customer.token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_repeated_or_late_message_neither_repeats_a_step_nor_moves_the_status_back(
    live_customer: Customer, live_db: PgConnection, results: ResultPublisher
) -> None:
    purchase_id = live_purchase_insert(live_db, customer_id=live_customer.id)
    response = open_events(live_customer, purchase_id)
    events = SseReader(response.iter_content(chunk_size=None))
    assert next_event(events).event == "state"
    inventory = Step.UPDATE_PRODUCT_INVENTORY

    first = results.publish(purchase_id, inventory, StepStatus.EXECUTE, sequence=1)
    results.publish(purchase_id, inventory, StepStatus.EXECUTE, sequence=1, message_id=first)
    results.publish(
        purchase_id,
        inventory,
        StepStatus.FAILED,
        purchase_status=PurchaseStatus.FAILED,
        sequence=3,
    )
    received = [e for e in events if e.event not in ("retry", ":")]
    results.publish(purchase_id, inventory, StepStatus.SUCCESS, sequence=2)  # late

    assert [(e.event, (e.data or {}).get("sequence")) for e in received] == [
        ("step", 1),
        ("step", 3),
        ("status", None),
    ]
    assert received[-1].data["status"] == "FAILED"

    def with_three_steps() -> dict[str, Any] | None:
        view = shown(live_customer, purchase_id)
        return view if len(view["steps"]) == 3 else None

    final = wait_until(with_three_steps)
    assert final["status"] == "FAILED"  # the late sequence 2 did not move it back
    assert [s["sequence"] for s in final["steps"]] == [1, 2, 3]


def test_an_event_source_client_authenticates_in_the_query_and_is_told_to_stop(
    live_customer: Customer, live_db: PgConnection, results: ResultPublisher
) -> None:
    purchase_id = live_purchase_insert(live_db, customer_id=live_customer.id)
    results.publish(
        purchase_id,
        Step.CREATE_PAYMENT,
        StepStatus.SUCCESS,
        purchase_status=PurchaseStatus.COMPLETED,
        sequence=1,
    )
    url = f"{PURCHASES}/{purchase_id}/events?access_token={live_customer.token}"
    wait_until(lambda: shown(live_customer, purchase_id)["status"] == "COMPLETED")

    story = edge("GET", url, headers={"Accept": "text/event-stream"}, timeout=STREAM_TIMEOUT)
    events = list(SseReader(iter([story.content])))
    step_id = [e.id for e in events if e.event == "step"][-1]
    reconnect = edge(
        "GET", url, headers={"Accept": "text/event-stream", "Last-Event-ID": str(step_id)}
    )
    stranger = edge("GET", url.replace(live_customer.token, "not-a-token"))

    assert [e.event for e in events if e.event != "retry"] == ["state", "step", "status"]
    assert reconnect.status_code == 204
    assert_error(stranger, 401, "unauthenticated")
