"""Cancelling a purchase through the edge, against the running platform (issue 21).

The purchase is written straight into the live purchase_db without its PurchaseCreated
(`live_purchase_insert`), so no saga runs: the test plays the orchestrator and publishes
the final `purchase-result` itself. What runs for real: the edge, the purchase API, its
outbox and relay (the PurchaseCancelRequested reaches Kafka), and the live
purchase-consumer applying the final CANCELLED status.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg2.extensions import connection as PgConnection

from common import testing
from common.contract.events import (
    END_REASON_CANCELLED,
    PurchaseStatus,
    Step,
    StepStatus,
    parse_purchase_message,
)
from common.testing import assert_error, edge, wait_until
from purchase_svc.tests.conftest import (
    PASSWORD,
    PURCHASES,
    Customer,
    ResultPublisher,
    SseReader,
    live_purchase_insert,
    new_email,
)

pytestmark = pytest.mark.live

STREAM_TIMEOUT = (5.0, 20.0)


def cancel(customer: Customer, purchase_id: str, **headers: str) -> Any:
    return edge(
        "POST", f"{PURCHASES}/{purchase_id}/cancel", token=customer.token, json={}, headers=headers
    )


def published_cancels(conn: PgConnection, purchase_id: str) -> list[dict[str, Any]]:
    """The PurchaseCancelRequested rows of the purchase that the relay has sent."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT payload FROM outbox_message WHERE topic = 'purchase' AND key = %s"
            " AND published_at IS NOT NULL AND payload->>'type' = 'PurchaseCancelRequested'",
            [purchase_id],
        )
        return [row[0] for row in cur.fetchall()]


def test_a_cancel_is_published_and_the_purchase_ends_cancelled(
    live_customer: Customer, live_db: PgConnection, results: ResultPublisher
) -> None:
    purchase_id = live_purchase_insert(live_db, customer_id=live_customer.id)
    key = f"cancel-{uuid.uuid4()}"

    first = cancel(live_customer, purchase_id, **{"Idempotency-Key": key})
    again = cancel(live_customer, purchase_id)

    assert first.status_code == 202, first.text
    assert (first.json()["status"], first.json()["reason"]) == ("PENDING", "")
    assert first.json()["cancel_requested_at"] is not None
    assert again.status_code == 202
    (sent,) = wait_until(lambda: published_cancels(live_db, purchase_id))
    event = parse_purchase_message(sent)
    assert (event.purchase_id, event.customer_id) == (purchase_id, live_customer.id)

    # The orchestrator's answer: the saga stopped before any step and ended CANCELLED.
    results.publish(
        purchase_id,
        Step.UPDATE_PRODUCT_INVENTORY,
        StepStatus.CANCELLED,
        purchase_status=PurchaseStatus.CANCELLED,
        sequence=1,
        reason=END_REASON_CANCELLED,
    )
    view = wait_until(
        lambda: (v := shown(live_customer, purchase_id))["status"] == "CANCELLED" and v
    )
    assert view["reason"] == "cancelled"
    story = edge(
        "GET",
        f"{PURCHASES}/{purchase_id}/events",
        token=live_customer.token,
        headers={"Accept": "text/event-stream"},
        timeout=STREAM_TIMEOUT,
    )
    events = [e for e in SseReader(iter([story.content])) if e.event not in ("retry", ":")]
    assert events[-1].data == {"id": purchase_id, "status": "CANCELLED", "reason": "cancelled"}

    replay = cancel(live_customer, purchase_id, **{"Idempotency-Key": key})
    assert (replay.status_code, replay.content) == (202, first.content)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert cancel(live_customer, purchase_id).json()["status"] == "CANCELLED"
    assert len(published_cancels(live_db, purchase_id)) == 1


def test_a_completed_purchase_answers_409_and_another_customer_404(
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
    wait_until(lambda: shown(live_customer, purchase_id)["status"] == "COMPLETED")
    stranger = testing.register_customer(new_email("stranger"), password=PASSWORD)

    refused = cancel(live_customer, purchase_id)

    assert assert_error(refused, 409, "failed_precondition")["details"]["reason"] == (
        "purchase_completed"
    )
    assert_error(cancel(stranger, purchase_id), 404, "not_found")
    assert published_cancels(live_db, purchase_id) == []


def shown(customer: Customer, purchase_id: str) -> dict[str, Any]:
    response = edge("GET", f"{PURCHASES}/{purchase_id}", token=customer.token)
    assert response.status_code == 200, response.text
    return dict(response.json())
