"""GET /api/v1/payments and /api/v1/payments/{id} through the edge: a customer reads their own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.testing import Customer, assert_error, eventually, grpc_call
from payment_svc.tests.conftest import edge
from saga_proto import payment_pb2

pytestmark = pytest.mark.live


def pay(payments: Any, customer: Customer, amount: int = 24460) -> str:
    """A payment of the customer's, as the saga takes it."""
    purchase = str(uuid.uuid4())
    grpc_call(
        payments.CreatePayment,
        payment_pb2.CreatePaymentRequest(
            purchase_id=purchase, customer_id=customer.id, amount=amount, currency_code="VND"
        ),
    )
    return purchase


@pytest.fixture
def alice_payment(payments: Any, alice: Customer) -> str:
    return pay(payments, alice)


def test_the_owner_reads_the_payment(alice: Customer, alice_payment: str) -> None:
    response = edge("GET", f"/api/v1/payments/{alice_payment}", token=alice.token)

    assert response.status_code == 200, response.text
    payment = response.json()
    assert {k: payment[k] for k in ("id", "customer_id", "status", "amount", "currency_code")} == {
        "id": alice_payment,
        "customer_id": alice.id,
        "status": "COMPLETED",
        "amount": 24460,
        "currency_code": "VND",
    }


def test_another_customer_gets_404(bob: Customer, alice_payment: str) -> None:
    assert_error(
        edge("GET", f"/api/v1/payments/{alice_payment}", token=bob.token), 404, "not_found"
    )


def test_anonymous_gets_401(alice_payment: str) -> None:
    assert_error(edge("GET", f"/api/v1/payments/{alice_payment}"), 401, "unauthenticated")
    assert_error(edge("GET", "/api/v1/payments"), 401, "unauthenticated")


@pytest.mark.parametrize("payment_id", ["not-a-uuid", "12345", str(uuid.uuid4())])
def test_a_malformed_or_unknown_id_gets_404_json(alice: Customer, payment_id: str) -> None:
    assert_error(edge("GET", f"/api/v1/payments/{payment_id}", token=alice.token), 404, "not_found")


def test_a_tombstone_is_nobody_s_payment(payments: Any, alice: Customer) -> None:
    purchase = str(uuid.uuid4())
    grpc_call(payments.RefundPayment, payment_pb2.RefundPaymentRequest(purchase_id=purchase))

    assert_error(edge("GET", f"/api/v1/payments/{purchase}", token=alice.token), 404, "not_found")


def test_a_refund_is_seen_within_the_staleness_bound(
    payments: Any, alice: Customer, alice_payment: str
) -> None:
    def status() -> str:
        response = edge("GET", f"/api/v1/payments/{alice_payment}", token=alice.token)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    assert status() == "COMPLETED"  # now cached

    grpc_call(payments.RefundPayment, payment_pb2.RefundPaymentRequest(purchase_id=alice_payment))

    assert eventually(status, "REFUNDED") == "REFUNDED"


def test_the_list_holds_one_s_own_payments_only(
    alice: Customer, bob: Customer, alice_payment: str
) -> None:
    mine = edge("GET", "/api/v1/payments?page_size=100", token=alice.token)
    theirs = edge("GET", "/api/v1/payments?page_size=100", token=bob.token)

    assert mine.status_code == theirs.status_code == 200
    assert alice_payment in [p["id"] for p in mine.json()["results"]]
    assert {p["customer_id"] for p in mine.json()["results"]} == {alice.id}
    assert alice_payment not in [p["id"] for p in theirs.json()["results"]]


def test_the_list_is_paginated_newest_first_and_filters_by_status(
    payments: Any, alice: Customer
) -> None:
    made = [pay(payments, alice) for _ in range(3)]
    grpc_call(payments.RefundPayment, payment_pb2.RefundPaymentRequest(purchase_id=made[0]))

    page = edge("GET", "/api/v1/payments?page_size=2", token=alice.token).json()
    refunded = edge("GET", "/api/v1/payments?status=REFUNDED&page_size=100", token=alice.token)

    assert [p["id"] for p in page["results"]] == [made[2], made[1]]
    assert page["count"] >= 3 and page["next"]
    assert made[0] in [p["id"] for p in refunded.json()["results"]]
    assert {p["status"] for p in refunded.json()["results"]} == {"REFUNDED"}


def test_an_unknown_status_filter_is_400(alice: Customer) -> None:
    assert_error(
        edge("GET", "/api/v1/payments?status=LOST", token=alice.token), 400, "invalid_input"
    )
