"""payment.PaymentService through the gRPC edge, against the running service and payment_db.

These are the calls the orchestrator makes, with its duplicates and its reorderings.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from common.testing import grpc_call, grpc_refusal
from payment_svc.tests.conftest import LiveDatabase
from saga_proto import payment_pb2

pytestmark = pytest.mark.live

CUSTOMER = 424242


def create_request(purchase_id: str, **overrides: Any) -> payment_pb2.CreatePaymentRequest:
    terms: dict[str, Any] = {"customer_id": CUSTOMER, "amount": 24460, "currency_code": "VND"}
    terms.update(overrides)
    return payment_pb2.CreatePaymentRequest(purchase_id=purchase_id, **terms)


def refund_request(purchase_id: str) -> payment_pb2.RefundPaymentRequest:
    return payment_pb2.RefundPaymentRequest(purchase_id=purchase_id)


def test_twenty_concurrent_identical_payments_charge_once(
    payments: Any, live_db: LiveDatabase
) -> None:
    purchase = str(uuid.uuid4())
    request = create_request(purchase)
    start = threading.Barrier(20)

    def create() -> payment_pb2.PaymentReply:
        start.wait()
        return grpc_call(payments.CreatePayment, request)

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(lambda _: create(), range(20)))

    assert {(r.payment_id, r.status, r.amount, r.currency_code) for r in replies} == {
        (purchase, "COMPLETED", 24460, "VND")
    }
    assert live_db.payment_count(purchase) == 1


def test_refund_twice_changes_the_payment_once(payments: Any, live_db: LiveDatabase) -> None:
    purchase = str(uuid.uuid4())
    grpc_call(payments.CreatePayment, create_request(purchase))

    first = grpc_call(payments.RefundPayment, refund_request(purchase))
    second = grpc_call(payments.RefundPayment, refund_request(purchase))

    assert (first.payment_id, first.status, first.amount) == (purchase, "REFUNDED", 24460)
    assert (second.status, second.amount) == ("REFUNDED", 24460)
    assert (live_db.payment_count(purchase), live_db.payment_status(purchase)) == (1, "REFUNDED")


def test_a_refund_before_its_payment_makes_the_late_payment_charge_nothing(
    payments: Any, live_db: LiveDatabase
) -> None:
    purchase = str(uuid.uuid4())

    refunded = grpc_call(payments.RefundPayment, refund_request(purchase))
    late = grpc_call(payments.CreatePayment, create_request(purchase))

    assert (refunded.payment_id, refunded.status, refunded.amount) == (purchase, "REFUNDED", 0)
    assert (late.payment_id, late.status, late.amount) == (purchase, "REFUNDED", 0)
    assert live_db.payment_status(purchase) == "REFUNDED"


# ------------------------------------------------------------------ refusals


def assert_refused_and_nothing_written(
    payments: Any,
    live_db: LiveDatabase,
    request: payment_pb2.CreatePaymentRequest,
    code: grpc.StatusCode,
    error_code: str,
) -> None:
    error = grpc_refusal(payments.CreatePayment, request)
    assert error.code() is code, error.details()
    metadata: Any = error.trailing_metadata() or ()
    assert dict(metadata)["error-code"] == error_code
    with contextlib.suppress(ValueError):  # an id that is not a UUID cannot have a row
        assert live_db.payment_count(str(uuid.UUID(request.purchase_id))) == 0


def test_a_currency_not_accepted_fails_the_step(payments: Any, live_db: LiveDatabase) -> None:
    # The documented trigger (docs/business-rules.md): currency_code "XXX".
    assert_refused_and_nothing_written(
        payments,
        live_db,
        create_request(str(uuid.uuid4()), currency_code="XXX"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "failed_precondition",
    )


def test_an_amount_over_the_spending_limit_fails_the_step(
    payments: Any, live_db: LiveDatabase
) -> None:
    # The documented trigger: an amount above PAYMENT_MAX_AMOUNT (10,000,000 by default).
    assert_refused_and_nothing_written(
        payments,
        live_db,
        create_request(str(uuid.uuid4()), amount=10_000_001),
        grpc.StatusCode.FAILED_PRECONDITION,
        "failed_precondition",
    )


@pytest.mark.parametrize(
    ("purchase_id", "overrides"),
    [
        ("", {}),
        ("not-a-uuid", {}),
        ("NEW", {"amount": -1}),
        ("NEW", {"customer_id": 0}),
        ("NEW", {"currency_code": ""}),
        ("NEW", {"currency_code": "DONG"}),
    ],
    ids=["empty id", "non-uuid id", "negative amount", "no customer", "no currency", "4 letters"],
)
def test_bad_input_is_invalid_argument(
    payments: Any, live_db: LiveDatabase, purchase_id: str, overrides: dict[str, Any]
) -> None:
    purchase_id = str(uuid.uuid4()) if purchase_id == "NEW" else purchase_id
    assert_refused_and_nothing_written(
        payments,
        live_db,
        create_request(purchase_id, **overrides),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid_input",
    )


def test_a_refused_purchase_id_stays_free_for_a_valid_payment(payments: Any) -> None:
    purchase = str(uuid.uuid4())
    grpc_refusal(payments.CreatePayment, create_request(purchase, currency_code="XXX"))

    reply = grpc_call(payments.CreatePayment, create_request(purchase))

    assert (reply.status, reply.amount, reply.currency_code) == ("COMPLETED", 24460, "VND")


def test_refund_of_a_malformed_id_is_invalid_argument(payments: Any) -> None:
    error = grpc_refusal(payments.RefundPayment, refund_request("nope"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
