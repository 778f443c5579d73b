"""A customer cancels a purchase in flight; a saga past its deadline ends: the races.

Cancel travels like every command (outbox, Kafka); the orchestrator stops forward
progress at the next transition, never in the middle of a call, and compensates what was
done with the same idempotent compensations; the purchase ends CANCELLED. A deadline ends a
saga by compensating it (FAILED, reason `deadline`) and never cuts a compensation short.
Each race ends in exactly one final state with inventory, orders and payments consistent
with it (docs/adr/0024-cancellation-and-deadlines.md).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from common.testing import assert_error, connect
from deploy.local import supervisor
from tests.e2e.conftest import (
    Customer,
    count_by_status,
    edge,
    inventory_of,
    purchase,
    register,
    wait_final,
)
from tests.e2e.test_outages import detail, stopped, wait_waiting

STEP_WITHIN_SECONDS = 60.0  # bounds a hang only


def cancel(customer: Customer, purchase_id: str, key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return edge(
        "POST", f"/api/v1/purchases/{purchase_id}/cancel", token=customer.token, headers=headers
    )


def assert_undone(purchase_id: str, product_id: int, stock: int) -> None:
    """Nothing of the purchase is left: stock back, no live order, no payment taken."""
    assert inventory_of(product_id) == stock
    assert count_by_status("order", "orders_order", [purchase_id]).get("CREATED", 0) == 0
    assert count_by_status("payment", "payments_payment", [purchase_id]).get("COMPLETED", 0) == 0


def wait_step(customer: Customer, purchase_id: str, step: str, status: str) -> None:
    deadline = time.monotonic() + STEP_WITHIN_SECONDS
    while (step, status) not in {
        (s["step"], s["status"]) for s in detail(customer, purchase_id)["steps"]
    }:
        assert time.monotonic() < deadline, f"{purchase_id} never had {step} {status}"
        time.sleep(0.2)


@contextmanager
def frozen(program: str) -> Iterator[None]:
    """`program` is paused (SIGSTOP) inside the block: a call to it hangs until its
    deadline, as a call in flight; it runs on (SIGCONT) however the block ends."""
    pid = supervisor.pids()[program]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_cancel_before_the_saga_starts_ends_cancelled_with_nothing_done(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=5)
    with stopped("orchestrator-consumer"):
        purchase_id = purchase(customer, [(product_id, 2)])
        answer = cancel(customer, purchase_id)
        assert answer.status_code == 202, answer.text
        assert answer.json()["cancel_requested_at"]

    final = wait_final(customer, purchase_id)
    assert final["status"] == "CANCELLED" and final["reason"] == "cancelled"
    assert_undone(purchase_id, product_id, 5)


def test_cancel_while_a_step_waits_for_its_participant_compensates_the_done_steps(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=5)
    with stopped("payment-grpc"):
        purchase_id = purchase(customer, [(product_id, 2)])
        wait_waiting(customer, purchase_id, "CREATE_PAYMENT")
        assert inventory_of(product_id) == 3  # reserved, ordered, waiting to pay
        assert cancel(customer, purchase_id).status_code == 202
        # While payment is still down the saga stops waiting on it: the cancel acted.
        wait_step(customer, purchase_id, "CREATE_PAYMENT", "CANCELLED")
    # A payment call the edge answered 502 may have reached the service: the saga asks
    # the payment service to refund it (idempotent) before it can end, so it ends once
    # payment is back (docs/adr/0024).
    final = wait_final(customer, purchase_id)

    assert final["status"] == "CANCELLED" and final["reason"] == "cancelled"
    steps = {(s["step"], s["status"]) for s in final["steps"]}
    assert ("CREATE_ORDER", "ROLLBACK") in steps
    assert ("UPDATE_PRODUCT_INVENTORY", "ROLLBACK") in steps
    assert_undone(purchase_id, product_id, 5)
    assert count_by_status("order", "orders_order", [purchase_id]) == {"CANCELLED": 1}


def test_cancel_while_a_call_is_in_flight_waits_for_the_call_then_compensates(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=5)
    # The edge must route to payment-grpc (an earlier test stopped it, and Traefik's
    # health check may still count it down): a purchase that completes proves it.
    assert wait_final(customer, purchase(customer, [(product_id, 1)]))["status"] == "COMPLETED"
    with frozen("payment-grpc"):
        purchase_id = purchase(customer, [(product_id, 1)])
        wait_step(customer, purchase_id, "CREATE_PAYMENT", "EXECUTE")  # the call hangs
        assert cancel(customer, purchase_id).status_code == 202
        time.sleep(1.0)
        # Not in the middle of a call: nothing is compensated while it is in flight.
        assert detail(customer, purchase_id)["status"] == "PENDING"
    final = wait_final(customer, purchase_id)

    # The call ended one way or the other; the saga then stopped and undid everything
    # (a payment the thawed call took is refunded).
    assert final["status"] == "CANCELLED"
    assert_undone(purchase_id, product_id, 4)  # the first purchase keeps its unit


def test_cancel_during_a_compensation_changes_nothing_the_purchase_ends_failed(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=5)
    with stopped("payment-grpc"):
        purchase_id = purchase(customer, [(product_id, 1)], currency_code="XXX")
        wait_waiting(customer, purchase_id, "CREATE_PAYMENT")
        supervisor.stop(["order-grpc"])
    try:
        wait_waiting(customer, purchase_id, "CREATE_ORDER")  # refused: cancelling the order
        assert cancel(customer, purchase_id).status_code == 202
    finally:
        supervisor.start(["order-grpc"])
    final = wait_final(customer, purchase_id)

    assert final["status"] == "FAILED" and final["reason"] != "cancelled"
    assert_undone(purchase_id, product_id, 5)


def test_cancel_after_completion_is_refused_with_the_reason(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=5)
    purchase_id = purchase(customer, [(product_id, 1)])
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"

    error = assert_error(cancel(customer, purchase_id), 409, "failed_precondition")
    assert error["details"]["reason"] == "purchase_completed"
    assert "refund" in error["message"].lower()
    assert inventory_of(product_id) == 4
    assert detail(customer, purchase_id)["status"] == "COMPLETED"


def test_cancelling_twice_and_with_an_idempotency_key_is_one_cancel(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=5)
    with stopped("orchestrator-consumer"):
        purchase_id = purchase(customer, [(product_id, 1)])
        key = uuid.uuid4().hex
        first = cancel(customer, purchase_id, key)
        again = cancel(customer, purchase_id, key)
        plain = cancel(customer, purchase_id)
        assert first.status_code == again.status_code == plain.status_code == 202
        assert again.json() == first.json()
    assert wait_final(customer, purchase_id)["status"] == "CANCELLED"
    assert cancel(customer, purchase_id).status_code == 202  # already cancelled: the same
    assert_undone(purchase_id, product_id, 5)


def test_only_the_owner_can_cancel(customer: Customer, make_product: Callable[..., int]) -> None:
    product_id = make_product(inventory=5)
    purchase_id = purchase(customer, [(product_id, 1)])

    assert cancel(register("stranger"), purchase_id).status_code == 404
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"


def test_a_deadline_reached_while_a_participant_is_down_ends_the_saga_failed(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    product_id = make_product(inventory=5)
    with stopped("payment-grpc"):
        purchase_id = purchase(customer, [(product_id, 2)])
        wait_waiting(customer, purchase_id, "CREATE_PAYMENT")
        # The deadline passes (as hours would): the saga must end, not wait on.
        conn = connect("orchestrator")
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(
                    "UPDATE saga SET deadline_at = now() - interval '1 second'"
                    " WHERE purchase_id = %s",
                    [purchase_id],
                )
        finally:
            conn.close()
        # While payment is still down the saga stops waiting on it: the deadline acted.
        wait_step(customer, purchase_id, "CREATE_PAYMENT", "FAILED")
    final = wait_final(customer, purchase_id)  # a possible payment is refunded first

    assert final["status"] == "FAILED" and final["reason"] == "deadline"
    assert_undone(purchase_id, product_id, 5)
    assert count_by_status("order", "orders_order", [purchase_id]) == {"CANCELLED": 1}
