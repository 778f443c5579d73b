"""CreatePayment and RefundPayment as services, in-process against the test database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import override_settings

from common.errors import ApplicationError, ErrorCode
from common.ids import parse_purchase_id
from payment_svc.payments import selectors, services
from payment_svc.payments.models import Payment

pytestmark = pytest.mark.django_db

CUSTOMER = 7


def pay(purchase: uuid.UUID, **overrides: Any) -> services.PaymentOutcome:
    terms: dict[str, Any] = {"customer_id": CUSTOMER, "amount": 24460, "currency_code": "VND"}
    terms.update(overrides)
    return services.payment_create(purchase_id=purchase, **terms)


def refusal(**overrides: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        pay(uuid.uuid4(), **overrides)
    return raised.value


# ------------------------------------------------------------------ create


def test_a_payment_is_completed_for_the_customer() -> None:
    purchase = uuid.uuid4()

    outcome = pay(purchase)

    assert outcome.changed
    payment = Payment.objects.get(id=purchase)
    assert (payment.status, payment.customer_id, payment.amount, payment.currency_code) == (
        "COMPLETED",
        CUSTOMER,
        24460,
        "VND",
    )


def test_a_currency_code_in_lower_case_is_read_as_upper_case() -> None:
    purchase = uuid.uuid4()
    pay(purchase, currency_code="usd")

    assert Payment.objects.get(id=purchase).currency_code == "USD"
    assert not pay(purchase, currency_code="USD").changed


def test_a_repeat_answers_the_first_payment_and_charges_nothing_more() -> None:
    purchase = uuid.uuid4()
    first = pay(purchase)

    again = pay(purchase)

    assert not again.changed
    assert (again.payment.id, again.payment.amount) == (first.payment.id, first.payment.amount)
    assert Payment.objects.count() == 1


def test_other_terms_under_a_used_purchase_id_conflict() -> None:
    purchase = uuid.uuid4()
    pay(purchase)

    with pytest.raises(ApplicationError) as raised:
        pay(purchase, amount=1)

    assert raised.value.code is ErrorCode.CONFLICT
    assert Payment.objects.get(id=purchase).amount == 24460


# ------------------------------------------------------------------ refund


def test_refund_twice_changes_the_payment_once() -> None:
    purchase = uuid.uuid4()
    pay(purchase)

    first = services.payment_refund(purchase_id=purchase)
    second = services.payment_refund(purchase_id=purchase)

    assert (first.changed, second.changed) == (True, False)
    assert first.payment.status == second.payment.status == "REFUNDED"
    payment = Payment.objects.get(id=purchase)
    assert (payment.status, payment.amount, payment.customer_id) == ("REFUNDED", 24460, CUSTOMER)


def test_refund_before_payment_leaves_a_tombstone_and_the_late_payment_charges_nothing() -> None:
    purchase = uuid.uuid4()

    refunded = services.payment_refund(purchase_id=purchase)
    late = pay(purchase)

    assert refunded.payment.status == late.payment.status == "REFUNDED"
    assert not late.changed
    tombstone = Payment.objects.get(id=purchase)
    assert tombstone.is_tombstone
    assert tombstone.amount == 0


def test_a_payment_after_its_refund_answers_the_refund() -> None:
    purchase = uuid.uuid4()
    pay(purchase)
    services.payment_refund(purchase_id=purchase)

    late = pay(purchase)

    assert (late.payment.status, late.changed) == ("REFUNDED", False)


# ------------------------------------------------------------------ refusals


def test_a_currency_not_accepted_is_refused_and_writes_nothing() -> None:
    error = refusal(currency_code="XXX")

    assert error.code is ErrorCode.FAILED_PRECONDITION
    assert error.details["rule"] == "ACCEPTED_CURRENCIES"
    assert Payment.objects.count() == 0


def test_the_accepted_currencies_come_from_settings() -> None:
    with override_settings(ACCEPTED_CURRENCIES=["JPY"]):
        assert refusal(currency_code="VND").code is ErrorCode.FAILED_PRECONDITION
        assert pay(uuid.uuid4(), currency_code="JPY").changed


def test_an_amount_over_the_spending_limit_is_refused_and_writes_nothing() -> None:
    with override_settings(PAYMENT_MAX_AMOUNT=1000):
        at_limit = pay(uuid.uuid4(), amount=1000)
        error = refusal(amount=1001)

    assert at_limit.changed
    assert error.code is ErrorCode.FAILED_PRECONDITION
    assert error.details == {"rule": "PAYMENT_MAX_AMOUNT", "limit": 1000, "amount": 1001}
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": -1},
        {"customer_id": 0},
        {"currency_code": ""},
        {"currency_code": "DOLLARS"},
        {"currency_code": "V1D"},
    ],
    ids=["negative amount", "no customer", "no currency", "long currency", "digit currency"],
)
def test_bad_input_is_invalid_and_writes_nothing(overrides: dict[str, Any]) -> None:
    assert refusal(**overrides).code is ErrorCode.INVALID_INPUT
    assert Payment.objects.count() == 0


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1234", None])
def test_a_purchase_id_that_is_no_uuid_is_invalid(value: Any) -> None:
    with pytest.raises(ApplicationError) as raised:
        parse_purchase_id(value)
    assert raised.value.code is ErrorCode.INVALID_INPUT


# ------------------------------------------------------------------ cache upkeep


def test_a_refund_is_read_at_once_through_the_cache(
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase = uuid.uuid4()
    assert selectors.payment_get(payment_id=purchase) is None  # a miss, cached
    with django_capture_on_commit_callbacks(execute=True):
        pay(purchase)
    assert selectors.payment_get(payment_id=purchase)["status"] == "COMPLETED"  # type: ignore[index]

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_refund(purchase_id=purchase)

    assert selectors.payment_get(payment_id=purchase)["status"] == "REFUNDED"  # type: ignore[index]
