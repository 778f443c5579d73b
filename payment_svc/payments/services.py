"""Writes of payments: the saga's CREATE_PAYMENT step and its compensation.

Both are idempotent on the purchase id, which is the payment's primary key. The row
is claimed with INSERT ... ON CONFLICT (id) DO NOTHING: when a duplicate races with
the first call, PostgreSQL makes it wait for the first one's transaction and then
see its committed row, so twenty identical calls charge once and answer that payment
twenty times. RefundPayment claims the same key, so a refund that overtakes its
payment leaves a tombstone (REFUNDED, no customer, amount 0) and the late
CreatePayment answers that refunded state without charging anything.

A refusal (bad input: INVALID_INPUT; a business rule: FAILED_PRECONDITION) is decided
before anything is written, so it leaves no trace and the same call is judged afresh
next time. The rules and the inputs that trigger them are listed in
docs/business-rules.md.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.db import Compensation, claim_row, compensate_once
from common.errors import ApplicationError, ErrorCode, invalid_input
from common.ids import MAX_INT64, check_customer_id
from payment_svc.payments import selectors
from payment_svc.payments.conf import config
from payment_svc.payments.models import Payment

logger = logging.getLogger(__name__)

CURRENCY_CODE = re.compile(r"[A-Za-z]{3}")

PAYMENT_REFUND = Compensation(
    Payment,
    status=Payment.Status.REFUNDED.value,
    # A tombstone: refunded before any payment (no customer, nothing charged).
    tombstone={"customer_id": None, "amount": 0, "currency_code": ""},
    invalidate=selectors.payment_records.invalidate_on_commit,
    moved="payment %s refunded",
    recorded="refund of payment %s before any payment: tombstone recorded",
    moved_many="%d payments refunded: %s",
    recorded_many="refund before any payment, tombstones recorded: %s",
)
"""The compensation of CREATE_PAYMENT, single (payment_refund) or in a batch."""


@dataclass(frozen=True)
class PaymentOutcome:
    """The payment a command left behind; `changed` says whether this call changed it."""

    payment: Payment
    changed: bool


# ------------------------------------------------------------------ checks


def check_amount(amount: Any) -> int:
    if not isinstance(amount, int) or not 0 <= amount <= MAX_INT64:
        raise invalid_input(f"amount must be a whole number of minor units >= 0, not {amount!r}.")
    return amount


def check_currency_code(currency_code: Any) -> str:
    """Three ASCII letters (ISO 4217's shape), answered in upper case."""
    if not isinstance(currency_code, str) or not CURRENCY_CODE.fullmatch(currency_code):
        raise invalid_input(
            f"currency_code must be three letters (ISO 4217), not {currency_code!r}."
        )
    return currency_code.upper()


def check_payment_rules(*, amount: int, currency_code: str) -> None:
    """The shop's rules for taking a payment (FAILED_PRECONDITION), see docs/business-rules.md.

    - the currency is not one of ACCEPTED_CURRENCIES;
    - the amount is above PAYMENT_MAX_AMOUNT, the most one customer may be charged at once.
    """
    accepted = config().accepted_currencies
    if currency_code not in accepted:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            f"Payments in {currency_code} are not accepted.",
            {
                "rule": "ACCEPTED_CURRENCIES",
                "currency_code": currency_code,
                "accepted": sorted(accepted),
            },
        )
    limit = config().max_amount
    if amount > limit:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            f"An amount of {amount} is over the spending limit of {limit}.",
            {"rule": "PAYMENT_MAX_AMOUNT", "limit": limit, "amount": amount},
        )


# ------------------------------------------------------------------ writes


def payment_conflict(payment_id: uuid.UUID) -> ApplicationError:
    """The refusal of a CreatePayment whose purchase has a payment with other terms."""
    return ApplicationError(
        ErrorCode.CONFLICT,
        f"Purchase {payment_id} already has a payment with other terms.",
        {"purchase_id": str(payment_id)},
    )


def _repeat(
    payment: Payment, *, customer_id: int, amount: int, currency_code: str
) -> PaymentOutcome:
    """The answer to a CreatePayment for an id that has a payment already.

    Refunded (or a tombstone): that state, nothing changes. The same customer, amount
    and currency: the payment as it is. Anything else is another request under a used
    id: CONFLICT, and nothing changes.
    """
    if payment.status == Payment.Status.REFUNDED:
        return PaymentOutcome(payment, changed=False)
    if (payment.customer_id, payment.amount, payment.currency_code) != (
        customer_id,
        amount,
        currency_code,
    ):
        raise payment_conflict(payment.id)
    return PaymentOutcome(payment, changed=False)


def payment_create(
    *, purchase_id: uuid.UUID, customer_id: int, amount: int, currency_code: str
) -> PaymentOutcome:
    """The saga's CREATE_PAYMENT step: charge the customer `amount` in `currency_code`.

    Idempotent on purchase_id (see the module docstring).
    """
    customer_id = check_customer_id(customer_id)
    amount = check_amount(amount)
    currency_code = check_currency_code(currency_code)
    terms: dict[str, Any] = {
        "customer_id": customer_id,
        "amount": amount,
        "currency_code": currency_code,
    }
    existing = selectors.payment_find(payment_id=purchase_id)
    if existing is not None:
        return _repeat(existing, **terms)
    check_payment_rules(amount=amount, currency_code=currency_code)
    with transaction.atomic():
        row = {"id": purchase_id, **terms, "status": Payment.Status.COMPLETED.value}
        # (The moment, as auto_now_add would stamp it, not the transaction's start.)
        if not claim_row(Payment, key="id", values=row, stamped_at=timezone.now()):
            # A duplicate won the race (or a refund came first): answer what it left.
            return _repeat(Payment.objects.get(id=purchase_id), **terms)
        selectors.payment_records.invalidate_on_commit(purchase_id)
        payment = Payment.objects.get(id=purchase_id)
    logger.info(
        "payment %s completed for customer %s: %s %s",
        purchase_id,
        customer_id,
        amount,
        currency_code,
    )
    return PaymentOutcome(payment, changed=True)


def payment_refund(*, purchase_id: uuid.UUID) -> PaymentOutcome:
    """The compensation of CREATE_PAYMENT: COMPLETED -> REFUNDED, once. A refund before
    any payment records a tombstone, so a late CreatePayment charges nothing."""
    done = compensate_once(PAYMENT_REFUND, pk=purchase_id, logger=logger)
    return PaymentOutcome(done.row, changed=done.changed)
