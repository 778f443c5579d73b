"""The purchase saga on the running system: real Kafka, real Celery worker and beat,
real gRPC through Traefik to the product, order and payment services.

Given products created through the edge, when a PurchaseCreated reaches the `purchase`
topic, then the saga in orchestrator_db ends as a customer would expect, and the
inventory, the order and the payment (read through the edge) agree with it. Some tests
stop a service or kill the worker on purpose; every process is started again after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from common.testing import Customer, edge, edge_inventory
from orchestrator_svc.tests.fakes import INVENTORY, ORDER, PAYMENT
from orchestrator_svc.tests.integration.conftest import (
    SagaDb,
    eventually,
    program_pid,
    start_program,
    supervisorctl,
)

pytestmark = pytest.mark.live


MakeProduct = Callable[..., dict[str, Any]]
Publish = Callable[..., dict[str, Any]]


def order_of(purchase_id: str, customer: Customer) -> tuple[int, dict[str, Any]]:
    response = edge("GET", f"/api/v1/orders/{purchase_id}", token=customer.token)
    return response.status_code, response.json()


def payment_of(purchase_id: str, customer: Customer) -> tuple[int, dict[str, Any]]:
    response = edge("GET", f"/api/v1/payments/{purchase_id}", token=customer.token)
    return response.status_code, response.json()


def assert_no_active_order_or_payment(purchase_id: str, customer: Customer) -> None:
    """Nothing the customer would be charged for: no order or payment, or only undone ones."""
    status, order = order_of(purchase_id, customer)
    assert status == 404 or order["status"] == "CANCELLED", order
    status, payment = payment_of(purchase_id, customer)
    assert status == 404 or payment["status"] == "REFUNDED", payment


def assert_each_step_succeeded_once(sagas: SagaDb, purchase_id: str) -> None:
    successes = [step for step, status, _, _ in sagas.log(purchase_id) if status == "SUCCESS"]
    assert successes == [INVENTORY, ORDER, PAYMENT]


def assert_events_published_in_sequence(sagas: SagaDb, purchase_id: str, last: str) -> None:
    """Every transition left through the outbox, numbered 1..n, the last one final."""
    deadline = time.monotonic() + 10
    events = sagas.events(purchase_id)
    while not all(e["published"] for e in events) and time.monotonic() < deadline:
        time.sleep(0.1)
        events = sagas.events(purchase_id)
    assert all(e["published"] for e in events)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["purchase_status"] == last
    assert all(e["purchase_status"] == "PENDING" for e in events[:-1])


def test_the_happy_path_completes_with_one_order_and_one_payment_for_the_right_amount(
    make_product: MakeProduct, publish_purchase: Publish, sagas: SagaDb, customer: Customer
) -> None:
    first, second = make_product(inventory=10, price=1390), make_product(inventory=5, price=2500)

    event = publish_purchase([(first, 2), (second, 1)])
    purchase_id = event["purchase_id"]

    assert sagas.wait_for_state(purchase_id, "COMPLETED", "FAILED", "NEEDS_ATTENTION") == (
        "COMPLETED"
    )
    assert eventually(lambda: edge_inventory(first["id"]), 8) == 8
    assert eventually(lambda: edge_inventory(second["id"]), 4) == 4
    status, order = order_of(purchase_id, customer)
    assert status == 200, order
    assert (order["id"], order["status"], order["amount"]) == (purchase_id, "CREATED", 5280)
    status, payment = payment_of(purchase_id, customer)
    assert status == 200, payment
    assert (payment["id"], payment["status"]) == (purchase_id, "COMPLETED")
    assert (payment["amount"], payment["currency_code"]) == (5280, "VND")
    assert_each_step_succeeded_once(sagas, purchase_id)
    assert_events_published_in_sequence(sagas, purchase_id, "COMPLETED")


@pytest.mark.parametrize(
    ("failing_step", "stock", "quantity", "currency"),
    [
        (INVENTORY, 3, 4, "VND"),  # more than the stock
        (ORDER, 2000, 1001, "VND"),  # over ORDER_MAX_QUANTITY_PER_LINE
        (PAYMENT, 10, 2, "XXX"),  # a currency the payment service never accepts
    ],
    ids=["inventory", "order", "payment"],
)
def test_a_business_rejection_fails_the_saga_and_undoes_every_earlier_step(
    make_product: MakeProduct,
    publish_purchase: Publish,
    sagas: SagaDb,
    customer: Customer,
    failing_step: str,
    stock: int,
    quantity: int,
    currency: str,
) -> None:
    product = make_product(inventory=stock, price=100)

    event = publish_purchase([(product, quantity)], currency_code=currency)
    purchase_id = event["purchase_id"]

    assert sagas.wait_for_state(purchase_id, "COMPLETED", "FAILED", "NEEDS_ATTENTION") == "FAILED"
    log = sagas.log(purchase_id)
    failed = [(step, error) for step, status, _, error in log if status == "FAILED"]
    assert len(failed) == 1 and failed[0][0] == failing_step, log
    assert "FAILED_PRECONDITION" in failed[0][1] or "NOT_FOUND" in failed[0][1], failed
    steps = [INVENTORY, ORDER, PAYMENT]
    done = steps[: steps.index(failing_step) + 1]
    rollbacks = [step for step, status, _, _ in log if status == "ROLLBACK"]
    assert rollbacks == done[::-1]
    assert eventually(lambda: edge_inventory(product["id"]), stock) == stock
    assert_no_active_order_or_payment(purchase_id, customer)
    assert_events_published_in_sequence(sagas, purchase_id, "FAILED")


def test_the_same_purchase_created_twice_runs_one_saga_with_one_effect_of_each_step(
    make_product: MakeProduct, publish_purchase: Publish, sagas: SagaDb, customer: Customer
) -> None:
    product = make_product(inventory=10, price=700)

    event = publish_purchase([(product, 3)])
    publish_purchase([(product, 3)], purchase_id=event["purchase_id"])
    purchase_id = event["purchase_id"]

    assert sagas.wait_for_state(purchase_id, "COMPLETED", "FAILED") == "COMPLETED"
    time.sleep(1.0)  # let the second delivery arrive and be handled too
    assert sagas.count(purchase_id) == 1
    assert_each_step_succeeded_once(sagas, purchase_id)
    assert eventually(lambda: edge_inventory(product["id"]), 7) == 7
    assert order_of(purchase_id, customer)[1]["amount"] == 2100
    assert payment_of(purchase_id, customer)[1]["amount"] == 2100


@pytest.mark.slow
def test_the_payment_service_stopped_for_ten_seconds_is_retried_then_completes(
    make_product: MakeProduct,
    publish_purchase: Publish,
    sagas: SagaDb,
    customer: Customer,
    stopped: Callable[[str], None],
) -> None:
    product = make_product(inventory=10, price=1000)
    stopped("payment-grpc")

    event = publish_purchase([(product, 1)])
    purchase_id = event["purchase_id"]
    sagas.wait_for_log(purchase_id, PAYMENT, "RETRY")
    time.sleep(10)
    start_program("payment-grpc")

    assert sagas.wait_for_state(purchase_id, "COMPLETED", "FAILED", timeout=60) == "COMPLETED"
    payment_rows = [
        (s, attempt) for step, s, attempt, _ in sagas.log(purchase_id) if step == PAYMENT
    ]
    assert ("RETRY", 1) in payment_rows and ("SUCCESS", 1) not in payment_rows
    assert_each_step_succeeded_once(sagas, purchase_id)
    assert payment_of(purchase_id, customer)[1]["status"] == "COMPLETED"
    assert eventually(lambda: edge_inventory(product["id"]), 9) == 9


@pytest.mark.slow
def test_a_worker_killed_mid_saga_is_replaced_and_the_saga_finishes_with_each_effect_once(
    make_product: MakeProduct,
    publish_purchase: Publish,
    sagas: SagaDb,
    customer: Customer,
    stopped: Callable[[str], None],
) -> None:
    product = make_product(inventory=10, price=1200)
    stopped("payment-grpc")  # the payment step keeps failing: the saga is mid-flight
    event = publish_purchase([(product, 2)])
    purchase_id = event["purchase_id"]
    sagas.wait_for_log(purchase_id, PAYMENT, "RETRY")
    worker = program_pid("orchestrator-worker")

    # The worker holds the saga's retry task (unacknowledged) when it dies.
    supervisorctl("signal", "KILL", "apps:orchestrator-worker")
    start_program("payment-grpc")

    assert sagas.wait_for_state(purchase_id, "COMPLETED", "FAILED", timeout=90) == "COMPLETED"
    assert program_pid("orchestrator-worker") not in (0, worker)  # supervisord restarted it
    assert_each_step_succeeded_once(sagas, purchase_id)
    assert eventually(lambda: edge_inventory(product["id"]), 8) == 8
    assert order_of(purchase_id, customer)[1]["status"] == "CREATED"
    status, payment = payment_of(purchase_id, customer)
    assert (status, payment["status"], payment["amount"]) == (200, "COMPLETED", 2400)
    assert_events_published_in_sequence(sagas, purchase_id, "COMPLETED")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_compensation_whose_participant_is_down_waits_for_it_and_finishes_by_itself(
    make_product: MakeProduct,
    publish_purchase: Publish,
    sagas: SagaDb,
    customer: Customer,
    stopped: Callable[[str], None],
) -> None:
    product = make_product(inventory=10, price=500)
    stopped("payment-grpc")
    event = publish_purchase([(product, 3)], currency_code="XXX")
    purchase_id = event["purchase_id"]
    sagas.wait_for_log(purchase_id, PAYMENT, "RETRY")
    assert eventually(lambda: edge_inventory(product["id"]), 7) == 7  # reserved
    # The product service goes away; the payment comes back and refuses XXX, so the
    # saga must release the inventory through a service that does not answer.
    stopped("product-grpc")
    start_program("payment-grpc")
    sagas.wait_for_log(purchase_id, INVENTORY, "RETRY")

    # Its compensation's window is a day (ADR 0015): no person is needed for an outage.
    assert sagas.state(purchase_id) == "COMPENSATING"
    assert sagas.events(purchase_id)[-1]["purchase_status"] == "PENDING"
    start_program("product-grpc")

    assert sagas.wait_for_state(purchase_id, "FAILED", "NEEDS_ATTENTION", timeout=90) == "FAILED"
    assert eventually(lambda: edge_inventory(product["id"]), 10) == 10
    assert_no_active_order_or_payment(purchase_id, customer)
    assert sagas.events(purchase_id)[-1]["purchase_status"] == "FAILED"
