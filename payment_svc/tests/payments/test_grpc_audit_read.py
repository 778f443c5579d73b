"""`PaymentService.GetPayments` through the gRPC edge: the read the orchestrator's
consistency audit makes, many purchases in one call, answered from payment_db."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from common.grpc.servicer import MAX_BATCH_ITEMS
from common.testing import grpc_call, grpc_refusal
from payment_svc.tests.payments.test_grpc import create_request, refund_request
from saga_proto import payment_pb2

pytestmark = pytest.mark.live


def get_payments(payments: Any, *purchase_ids: str) -> Any:
    return grpc_call(
        payments.GetPayments, payment_pb2.GetPaymentsRequest(purchase_ids=purchase_ids)
    )


def test_payments_of_many_purchases_in_one_call(payments: Any) -> None:
    # Given a payment taken, one refunded and a purchase without one
    taken, refunded, unknown = (str(uuid.uuid4()) for _ in range(3))
    grpc_call(payments.CreatePayment, create_request(taken, amount=500))
    grpc_call(payments.CreatePayment, create_request(refunded, amount=700))
    grpc_call(payments.RefundPayment, refund_request(refunded))

    # when the audit asks about all three at once
    reply = get_payments(payments, taken, refunded, unknown)

    # then each payment is answered as it stands, the unknown one left out
    assert {(p.payment_id, p.status, p.amount) for p in reply.payments} == {
        (taken, "COMPLETED", 500),
        (refunded, "REFUNDED", 700),
    }


@pytest.mark.parametrize(
    "purchase_ids",
    [["not-a-uuid"], [str(uuid.uuid4()) for _ in range(MAX_BATCH_ITEMS + 1)]],
    ids=["malformed id", "too many ids"],
)
def test_bad_input_answers_invalid_argument(payments: Any, purchase_ids: list[str]) -> None:
    error = grpc_refusal(
        payments.GetPayments, payment_pb2.GetPaymentsRequest(purchase_ids=purchase_ids)
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
