"""CreatePaymentBatch and RefundPaymentBatch in-process, against the test database: a batch answers
each item as its single call would have (the same status and reply, the same rows), in
request order, in one transaction (compared through common.grpc.testing).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any
from unittest import mock

import pytest

from common.grpc.testing import (
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    OK,
    Outcome,
    as_single_calls,
    batch_outcomes,
    in_request_order,
    new_purchase,
    shuffled_at_once,
    single_outcome,
    statements,
    statuses,
)
from payment_svc.payments import batches
from payment_svc.payments.grpc import PaymentServicer
from payment_svc.payments.models import Payment
from saga_proto import payment_pb2

pytestmark = pytest.mark.django_db

CUSTOMER = 7

Reply = tuple[str, str, int, str]
"""A PaymentReply as (payment_id, status, amount, currency_code)."""


def pay(purchase_id: str, **overrides: Any) -> payment_pb2.CreatePaymentRequest:
    terms: dict[str, Any] = {"customer_id": CUSTOMER, "amount": 24460, "currency_code": "VND"}
    terms.update(overrides)
    return payment_pb2.CreatePaymentRequest(purchase_id=purchase_id, **terms)


def refund(purchase_id: str) -> payment_pb2.RefundPaymentRequest:
    return payment_pb2.RefundPaymentRequest(purchase_id=purchase_id)


def _reply(reply: payment_pb2.PaymentReply) -> Reply:
    return (reply.payment_id, reply.status, reply.amount, reply.currency_code)


def pay_batch(*requests: payment_pb2.CreatePaymentRequest) -> list[Outcome]:
    context: Any = None  # a batch that is not refused whole never touches its context
    batch = payment_pb2.CreatePaymentBatchRequest(items=requests)
    return batch_outcomes(PaymentServicer().CreatePaymentBatch(batch, context), _reply)


def refund_batch(*requests: payment_pb2.RefundPaymentRequest) -> list[Outcome]:
    context: Any = None
    batch = payment_pb2.RefundPaymentBatchRequest(items=requests)
    return batch_outcomes(PaymentServicer().RefundPaymentBatch(batch, context), _reply)


def single_pay(request: payment_pb2.CreatePaymentRequest) -> Outcome:
    return single_outcome(PaymentServicer().CreatePayment, request, _reply)


def single_refund(request: payment_pb2.RefundPaymentRequest) -> Outcome:
    return single_outcome(PaymentServicer().RefundPayment, request, _reply)


def rows() -> list[tuple[Any, ...]]:
    """Every payment, comparable."""
    return sorted(
        Payment.objects.values_list("id", "customer_id", "status", "amount", "currency_code")
    )


# ------------------------------------------------------------------ create


def test_a_batch_answers_each_payment_in_request_order_as_its_single_call_would() -> None:
    first, refused, second = new_purchase(), new_purchase(), new_purchase()

    outcomes = pay_batch(
        pay(first),
        pay(refused, currency_code="XXX"),  # the documented trigger: a currency not accepted
        pay("", amount=1),
        pay(second, amount=100, currency_code="usd"),
    )

    assert outcomes == [
        (OK, "", "", (first, "COMPLETED", 24460, "VND")),
        (
            FAILED_PRECONDITION,
            "Payments in XXX are not accepted.",
            "failed_precondition",
            None,
        ),
        (INVALID_ARGUMENT, "purchase_id is required.", "invalid_input", None),
        (OK, "", "", (second, "COMPLETED", 100, "USD")),
    ]
    # A refused item writes nothing: its purchase id stays free for a valid payment.
    assert set(Payment.objects.values_list("id", flat=True)) == {
        uuid.UUID(first),
        uuid.UUID(second),
    }
    assert pay_batch(pay(refused)) == [(OK, "", "", (refused, "COMPLETED", 24460, "VND"))]


def test_the_same_purchase_twice_in_a_batch_and_a_repeated_batch_charge_once() -> None:
    purchase = new_purchase()
    batch = [pay(purchase), pay(purchase)]

    first = pay_batch(*batch)
    again = pay_batch(*batch)

    assert first == again == [(OK, "", "", (purchase, "COMPLETED", 24460, "VND"))] * 2
    assert Payment.objects.count() == 1


def test_a_batch_has_the_effect_and_answers_of_its_single_calls_one_by_one() -> None:
    p1, p2 = new_purchase(), new_purchase()
    requests = [
        pay(p2),
        pay(p1, amount=500),
        pay(p1, amount=500),  # the same terms: a repeat
        pay(p2, amount=1),  # other terms: a conflict
        pay(new_purchase(), amount=10_000_001),  # over the spending limit
        pay(new_purchase(), currency_code="DONG"),
        pay(new_purchase(), customer_id=0),
    ]

    def rows() -> list[tuple[Any, ...]]:
        return sorted(
            Payment.objects.values_list("id", "customer_id", "status", "amount", "currency_code")
        )

    # (rolled back: the batch starts from the same empty table)
    one_by_one, rows_one_by_one = in_request_order(requests, single_pay, rows)

    assert rows() == []
    assert pay_batch(*requests) == one_by_one
    assert statuses(one_by_one) == [
        (OK, ""),
        (OK, ""),
        (OK, ""),
        (ALREADY_EXISTS, "conflict"),
        (FAILED_PRECONDITION, "failed_precondition"),
        (INVALID_ARGUMENT, "invalid_input"),
        (INVALID_ARGUMENT, "invalid_input"),
    ]
    assert rows() == rows_one_by_one


def test_only_the_accepted_items_invalidate_their_cached_payment_after_the_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        pay_batch(pay(new_purchase()), pay(new_purchase(), currency_code="XXX"))

    assert len(callbacks) == 1


def test_a_mixed_batch_over_existing_payments_answers_and_writes_as_its_single_calls() -> None:
    paid, refunded, tombstone, fresh, refused = (new_purchase() for _ in range(5))
    pay_batch(pay(paid), pay(refunded, amount=700))
    refund_batch(refund(refunded), refund(tombstone))
    requests = [
        pay(paid, currency_code="vnd"),  # a repeat (codes are compared in upper case)
        pay(paid, amount=24461),  # a conflict
        pay(paid, customer_id=8),  # a conflict
        pay(refunded, amount=700),  # after its refund: the refunded payment
        pay(tombstone),  # after a refund that came first: the tombstone
        pay(fresh, currency_code="XXX"),  # a currency not accepted: refused
        pay(fresh, amount=10_000_001),  # over the spending limit: refused
        pay(fresh),  # then acceptable: taken
        pay(fresh),  # and repeated
        pay(fresh, currency_code="EUR"),  # ... and in another currency: a conflict
        pay(refused, currency_code="XXX"),  # refused, and nothing else: no row
        pay(fresh, amount=-1),  # bad input is refused before the repeat
        pay("nope"),
    ]

    one_by_one, rows_one_by_one = as_single_calls(requests, single_pay, rows)

    assert pay_batch(*requests) == one_by_one
    assert rows() == rows_one_by_one
    assert statuses(one_by_one) == [
        (OK, ""),
        (ALREADY_EXISTS, "conflict"),
        (ALREADY_EXISTS, "conflict"),
        (OK, ""),
        (OK, ""),
        (FAILED_PRECONDITION, "failed_precondition"),
        (FAILED_PRECONDITION, "failed_precondition"),
        (OK, ""),
        (OK, ""),
        (ALREADY_EXISTS, "conflict"),
        (FAILED_PRECONDITION, "failed_precondition"),
        (INVALID_ARGUMENT, "invalid_input"),
        (INVALID_ARGUMENT, "invalid_input"),
    ]
    assert [reply[1] for *_, reply in one_by_one if reply] == [
        "COMPLETED",
        "REFUNDED",
        "REFUNDED",
        "COMPLETED",
        "COMPLETED",
    ]


def test_a_payment_that_loses_its_claim_to_a_concurrent_call_answers_what_that_call_left() -> None:
    # Given payments taken after the batch read (found nothing) and before it claimed
    same, other = new_purchase(), new_purchase()
    pay_batch(pay(same), pay(other))
    found = batches._CREATE.find
    reads: list[int] = []

    def read_too_early(payment_ids: Any) -> Any:
        reads.append(1)
        return {} if len(reads) == 1 else found(payment_ids)

    # When the batch pays them again (the same terms, then other ones)
    with mock.patch.object(
        batches, "_CREATE", dataclasses.replace(batches._CREATE, find=read_too_early)
    ):
        outcomes = pay_batch(pay(same), pay(other, amount=1), pay(same))

    # Then it answers them as repeats of what is there, and charges nothing more
    assert outcomes == [
        (OK, "", "", (same, "COMPLETED", 24460, "VND")),
        (
            ALREADY_EXISTS,
            f"Purchase {other} already has a payment with other terms.",
            "conflict",
            None,
        ),
        (OK, "", "", (same, "COMPLETED", 24460, "VND")),
    ]
    assert len(reads) == 2
    assert Payment.objects.count() == 2


# ------------------------------------------------------------------ refund


def test_a_refund_batch_after_a_payment_batch_refunds_once_and_leaves_tombstones() -> None:
    paid, never = new_purchase(), new_purchase()
    pay_batch(pay(paid))

    first = refund_batch(refund(paid), refund(never), refund("nope"))
    again = refund_batch(refund(paid), refund(never))

    assert first == [
        (OK, "", "", (paid, "REFUNDED", 24460, "VND")),
        (OK, "", "", (never, "REFUNDED", 0, "")),
        (INVALID_ARGUMENT, "purchase_id must be a UUID, not 'nope'.", "invalid_input", None),
    ]
    assert again == first[:2]
    # The late payment of a refunded purchase answers the refund, charging nothing.
    assert pay_batch(pay(never)) == [(OK, "", "", (never, "REFUNDED", 0, ""))]


def test_a_mixed_refund_batch_answers_and_writes_as_its_single_calls() -> None:
    paid, refunded, tombstone, never = (new_purchase() for _ in range(4))
    pay_batch(pay(paid), pay(refunded, amount=700))
    refund_batch(refund(refunded), refund(tombstone))
    requests = [
        refund(paid),
        refund(never),
        refund(refunded),
        refund(paid),
        refund(tombstone),
        refund(""),
        refund(never),
    ]

    one_by_one, rows_one_by_one = as_single_calls(requests, single_refund, rows)

    assert refund_batch(*requests) == one_by_one
    assert rows() == rows_one_by_one
    assert one_by_one[0][3] == (paid, "REFUNDED", 24460, "VND")


def test_only_the_payments_a_refund_batch_changes_invalidate_their_cache_after_the_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    paid, refunded, never = new_purchase(), new_purchase(), new_purchase()
    pay_batch(pay(paid), pay(refunded))
    refund_batch(refund(refunded))

    with django_capture_on_commit_callbacks() as callbacks:
        refund_batch(refund(paid), refund(refunded), refund(never), refund(never))

    assert len(callbacks) == 2  # the refund and the tombstone; the repeats change nothing


# ------------------------------------------------------------ statements


@pytest.mark.parametrize("size", [2, 50])
def test_a_batch_costs_a_constant_number_of_statements(size: int) -> None:
    # Given purchases with a payment, refunded ones, and some never seen
    paid = [new_purchase() for _ in range(size)]
    gone = [new_purchase() for _ in range(size)]
    pay_batch(*(pay(p) for p in gone))
    refund_batch(*(refund(p) for p in gone))

    # When batches of `size` items pay, repeat, refund and record tombstones
    counts = {
        "pay": statements(lambda: pay_batch(*(pay(p) for p in paid))),
        "repeat": statements(lambda: pay_batch(*(pay(p) for p in paid))),
        "after refund": statements(lambda: pay_batch(*(pay(p) for p in gone))),
        "refused": statements(
            lambda: pay_batch(*(pay(new_purchase(), currency_code="XXX") for _ in range(size)))
        ),
        "refund": statements(lambda: refund_batch(*(refund(p) for p in paid))),
        "tombstone": statements(
            lambda: refund_batch(*(refund(new_purchase()) for _ in range(size)))
        ),
    }

    # Then each costs the same whatever its size (a savepoint and its release included,
    # as the test runs in a transaction): read, claim; claim, lock, update
    assert counts == {
        "pay": 4,
        "repeat": 3,
        "after refund": 3,
        "refused": 3,
        "refund": 5,
        "tombstone": 3,
    }


# ------------------------------------------------------------ concurrency


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_the_same_purchases_in_any_order_charge_each_once() -> None:
    # Duplicates racing (a retried wave): in request order, two batches would each claim
    # a purchase the other needs next and wait for each other's commit.
    purchases = [new_purchase() for _ in range(30)]

    def run(_seed: int, shuffled: list[str]) -> list[Outcome]:
        return pay_batch(*(pay(p) for p in shuffled))

    replies = shuffled_at_once(8, purchases, run)

    seen = {(code, got[1] if got else None) for reply in replies for code, _, _, got in reply}
    assert seen == {(OK, "COMPLETED")}
    assert Payment.objects.filter(id__in=purchases).count() == 30


@pytest.mark.django_db(transaction=True)
def test_concurrent_payment_and_refund_batches_of_the_same_purchases_never_deadlock() -> None:
    # A compensation racing with its step and with retried waves of both, in any order.
    purchases = [new_purchase() for _ in range(30)]

    def run(seed: int, shuffled: list[str]) -> list[Outcome]:
        if seed % 2:
            return refund_batch(*(refund(p) for p in shuffled))
        return pay_batch(*(pay(p) for p in shuffled))

    replies = shuffled_at_once(8, purchases, run)

    assert {code for reply in replies for code, *_ in reply} == {OK}
    # Every purchase was refunded, before or after its payment: none is left COMPLETED.
    left = list(Payment.objects.filter(id__in=purchases).values_list("status", flat=True))
    assert len(left) == 30 and set(left) == {"REFUNDED"}
