"""A participant's outage delays the purchases waiting on it; it does not end them.

A step's call is retried for a window of time (SAGA_STEP_RETRY_WINDOW_SECONDS, minutes)
rather than a few attempts (which a half-minute outage used to spend, cancelling the
sales in flight), and a compensation's window is longer still. While the service is
down its circuit holds the sagas waiting on it; when it answers again they resume by
themselves. docs/adr/0015-retry-windows-and-circuits.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from deploy.local import supervisor
from tests.e2e.conftest import Customer, edge, inventory_of, purchase, wait_final

# Longer than the retry budget of five attempts that a forward step used to have (15-30 s).
OUTAGE_SECONDS = 35.0
WAITING_WITHIN_SECONDS = 60.0  # bounds a hang only


@contextmanager
def stopped(program: str) -> Iterator[None]:
    """`program` is down inside the block and started again however the block ends."""
    supervisor.stop([program])
    try:
        yield
    finally:
        supervisor.start([program])


def detail(customer: Customer, purchase_id: str) -> dict[str, Any]:
    response = edge("GET", f"/api/v1/purchases/{purchase_id}", token=customer.token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_waiting(customer: Customer, purchase_id: str, step: str) -> dict[str, Any]:
    """The purchase once its status says it waits to call `step` again."""
    deadline = time.monotonic() + WAITING_WITHIN_SECONDS
    while True:
        body = detail(customer, purchase_id)
        waiting = body.get("waiting")
        if waiting is not None and waiting["step"] == step:
            return body
        assert body["status"] == "PENDING", f"{purchase_id} ended {body['status']} while waiting"
        assert time.monotonic() < deadline, f"{purchase_id} never waited on {step}: {body}"
        time.sleep(0.5)


def test_purchases_made_while_payment_is_down_complete_once_it_is_back(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=20)
    with stopped("payment-grpc"):
        started = time.monotonic()
        ids = [purchase(customer, [(product_id, 1)]) for _ in range(8)]
        # The status says why the purchase waits and when the next attempt is.
        for purchase_id in ids:
            waiting = wait_waiting(customer, purchase_id, "CREATE_PAYMENT")["waiting"]
            assert waiting["reason"] and waiting["next_attempt_at"]
        time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - started), 0))
        assert {detail(customer, pid)["status"] for pid in ids} == {"PENDING"}

    assert {wait_final(customer, pid)["status"] for pid in ids} == {"COMPLETED"}
    assert inventory_of(product_id) == 12


def test_compensations_held_by_an_order_outage_finish_by_themselves_when_it_is_back(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    # Purchases paying in XXX (refused by the payment service) wait at the payment step
    # while payment is down; order goes down next, then payment comes back and refuses
    # them: their compensations need the order service, which is down.
    product_id = make_product(inventory=10)
    with stopped("payment-grpc"):
        ids = [purchase(customer, [(product_id, 1)], currency_code="XXX") for _ in range(5)]
        for purchase_id in ids:
            wait_waiting(customer, purchase_id, "CREATE_PAYMENT")
        supervisor.stop(["order-grpc"])
    try:
        for purchase_id in ids:
            wait_waiting(customer, purchase_id, "CREATE_ORDER")  # cancelling the order
        time.sleep(OUTAGE_SECONDS)
        # No purchase was given up on for a person to finish: all still compensating.
        assert {detail(customer, pid)["status"] for pid in ids} == {"PENDING"}
        assert inventory_of(product_id) == 5  # the reservations still hold the stock
    finally:
        supervisor.start(["order-grpc"])

    finals = [wait_final(customer, pid) for pid in ids]
    assert {body["status"] for body in finals} == {"FAILED"}
    assert inventory_of(product_id) == 10  # every reservation released
