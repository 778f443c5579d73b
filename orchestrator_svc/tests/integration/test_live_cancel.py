"""Cancellation and the saga deadline on the running system (the orchestrator's side).

Given sagas created by the real consumer while the Celery worker is stopped (so each
waits before its first step, whatever the machine's speed), when a cancel arrives on
the `purchase` topic (also before its PurchaseCreated), staff cancel with
`manage.py saga cancel`, or a saga's deadline passes, then once the worker runs each
ends as the purchase service is told, by its final `purchase-result` event, and no
stock stays reserved. The purchase side's endpoint and the race tests live elsewhere.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer

from common.contract.topics import Topic
from common.testing import Customer, edge_inventory, live_connection, manage
from orchestrator_svc.tests.integration.conftest import SagaDb, eventually, start_program

pytestmark = pytest.mark.live

WORKER = "orchestrator-worker"


def publish_cancel(producer: Producer, purchase_id: str, customer_id: int) -> None:
    """A PurchaseCancelRequested as the purchase service's relay publishes it."""
    body = {
        "type": "PurchaseCancelRequested",
        "purchase_id": purchase_id,
        "customer_id": customer_id,
        "requested_by": "customer",
    }
    producer.produce(Topic.PURCHASE, key=purchase_id.encode(), value=json.dumps(body))
    assert producer.flush(10) == 0


def wait_for_saga(sagas: SagaDb, purchase_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sagas.count(purchase_id) == 0:
        assert time.monotonic() < deadline, f"no saga {purchase_id} after {timeout}s"
        time.sleep(0.1)


def pass_deadline(purchase_id: str) -> None:
    """Move a saga's deadline to the past in the live orchestrator_db."""
    connection = live_connection("orchestrator")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE saga SET deadline_at = now() - interval '1 second' WHERE purchase_id = %s",
                (purchase_id,),
            )
    finally:
        connection.close()


def final_event(sagas: SagaDb, purchase_id: str) -> dict[str, Any]:
    events = sagas.events(purchase_id)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    return events[-1]


def test_cancels_and_a_deadline_end_sagas_waiting_for_their_first_step(
    make_product: Callable[..., dict[str, Any]],
    publish_purchase: Callable[..., dict[str, Any]],
    producer: Producer,
    sagas: SagaDb,
    customer: Customer,
    stopped: Callable[[str], None],
) -> None:
    product = make_product(inventory=10, price=1000)
    stopped(WORKER)  # sagas wait before their first step; started again at the end
    # A cancel that comes before its purchase is kept; the saga starts cancelled.
    early = str(uuid.uuid4())
    publish_cancel(producer, early, customer.id)
    publish_purchase([(product, 1)], purchase_id=early)
    by_customer = publish_purchase([(product, 2)])["purchase_id"]
    publish_cancel(producer, by_customer, customer.id)
    by_staff = publish_purchase([(product, 3)])["purchase_id"]
    late = publish_purchase([(product, 4)])["purchase_id"]
    for purchase_id in (early, by_customer, by_staff, late):
        wait_for_saga(sagas, purchase_id)
    manage("orchestrator", "saga", "cancel", by_staff)
    pass_deadline(late)

    start_program(WORKER)

    for purchase_id in (early, by_customer, by_staff):
        assert sagas.wait_for_state(purchase_id, "CANCELLED", "COMPLETED", "FAILED") == (
            "CANCELLED"
        )
        event = final_event(sagas, purchase_id)
        assert (event["step"], event["status"]) == ("UPDATE_PRODUCT_INVENTORY", "CANCELLED")
        assert (event["purchase_status"], event["reason"]) == ("CANCELLED", "cancelled")
    assert sagas.wait_for_state(late, "CANCELLED", "COMPLETED", "FAILED") == "FAILED"
    event = final_event(sagas, late)
    assert (event["status"], event["purchase_status"], event["reason"]) == (
        "FAILED",
        "FAILED",
        "deadline",
    )
    assert sagas.log(by_staff)[-1][3] == "cancelled at the staff's request"
    # Not a step ran: every unit is still in stock.
    assert eventually(lambda: edge_inventory(product["id"]), 10, within=5.0) == 10
