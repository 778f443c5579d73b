"""GET /api/v1/payments and /api/v1/payments/{id} through the edge: a customer reads their own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.testing import Customer, grpc_call
from common.testing_reads import OwnedReads
from saga_proto import payment_pb2

pytestmark = pytest.mark.live

PAYMENTS = OwnedReads("/api/v1/payments")


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
    response = PAYMENTS.get(alice_payment, alice.token)

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
    PAYMENTS.assert_hidden(alice_payment, bob.token)


def test_anonymous_gets_401(alice_payment: str) -> None:
    PAYMENTS.assert_anonymous_refused(alice_payment)


@pytest.mark.parametrize("payment_id", ["not-a-uuid", "12345", str(uuid.uuid4())])
def test_a_malformed_or_unknown_id_gets_404_json(alice: Customer, payment_id: str) -> None:
    PAYMENTS.assert_hidden(payment_id, alice.token)


def test_a_tombstone_is_nobody_s_payment(payments: Any, alice: Customer) -> None:
    purchase = str(uuid.uuid4())
    grpc_call(payments.RefundPayment, payment_pb2.RefundPaymentRequest(purchase_id=purchase))

    PAYMENTS.assert_hidden(purchase, alice.token)


def test_a_refund_is_seen_within_the_staleness_bound(
    payments: Any, alice: Customer, alice_payment: str
) -> None:
    assert PAYMENTS.status(alice_payment, alice.token) == "COMPLETED"  # now cached

    grpc_call(payments.RefundPayment, payment_pb2.RefundPaymentRequest(purchase_id=alice_payment))

    PAYMENTS.assert_seen_within_the_staleness_bound(alice_payment, alice.token, "REFUNDED")


def test_the_list_holds_one_s_own_payments_only(
    alice: Customer, bob: Customer, alice_payment: str
) -> None:
    PAYMENTS.assert_own_only(alice_payment, owner=alice, other=bob)


def test_the_list_is_paginated_newest_first_and_filters_by_status(
    payments: Any, alice: Customer
) -> None:
    made = [pay(payments, alice) for _ in range(3)]
    grpc_call(payments.RefundPayment, payment_pb2.RefundPaymentRequest(purchase_id=made[0]))

    PAYMENTS.assert_newest_first_and_filtered(made, alice.token, moved="REFUNDED")


def test_an_unknown_status_filter_is_400(alice: Customer) -> None:
    PAYMENTS.assert_unknown_status_refused(alice.token)
