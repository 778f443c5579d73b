"""The payment step for a wave of purchases (CreatePaymentBatch, RefundPaymentBatch),
in a constant number of statements.

Each answers, item by item, what `services.payment_create` / `services.payment_refund`
would have answered had the items run one by one in purchase-id order (repeats of a
purchase in request order), with the same rows, in one transaction, where the single
calls cost about six statements per item (a savepoint, the read, the claim, the
read-back). Creates: common.batch_writes.create_once_each over `_CREATE` (the input
checks, one SELECT of the payments, the rules: a currency not accepted, an amount over
the limit; the payment row). Refunds: common.batch_writes.compensate_each
(services.PAYMENT_REFUND), at most three statements.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from common.batch_writes import CreateOnce, compensate_each, create_once_each, log_keys
from common.errors import ApplicationError
from common.ids import check_customer_id, parse_purchase_id
from payment_svc.payments import selectors
from payment_svc.payments.models import Payment
from payment_svc.payments.services import (
    PAYMENT_REFUND,
    check_amount,
    check_currency_code,
    check_payment_rules,
    payment_conflict,
)

logger = logging.getLogger(__name__)

COMPLETED = Payment.Status.COMPLETED.value
REFUNDED = Payment.Status.REFUNDED.value


@dataclass(frozen=True)
class PaymentCreate:
    """One CreatePayment of a batch as its request carried it (checked by the batch, so
    a bad one refuses only its own item)."""

    purchase_id: Any
    customer_id: int
    amount: int
    currency_code: str


@dataclass(frozen=True)
class PaymentState:
    """A payment as a batch knows it (read, or taken by an earlier item): what a reply
    shows and a repeat compares."""

    id: uuid.UUID
    customer_id: int | None
    status: str
    amount: int
    currency_code: str


@dataclass(frozen=True)
class _Wanted:
    """A payment that passed the input checks (currency in upper case)."""

    purchase_id: uuid.UUID
    customer_id: int
    amount: int
    currency_code: str


# ------------------------------------------------------------------ create


def _check(command: PaymentCreate) -> _Wanted:
    """The single call's input checks, in its order (purchase id, customer, amount,
    currency)."""
    return _Wanted(
        parse_purchase_id(command.purchase_id),
        check_customer_id(command.customer_id),
        check_amount(command.amount),
        check_currency_code(command.currency_code),
    )


def _payments_find(payment_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PaymentState]:
    """The payments among `payment_ids`, by id: one SELECT, no lock."""
    wanted = list(payment_ids)
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, customer_id, status, amount, currency_code"
            f" FROM {Payment._meta.db_table} WHERE id = ANY(%s)",
            [wanted],
        )
        return {row[0]: PaymentState(*row) for row in cursor.fetchall()}


def _repeat(recorded: PaymentState, wanted: _Wanted) -> PaymentState | ApplicationError:
    """services._repeat against what the batch knows: the refunded payment as it is, the
    same customer, amount and currency the payment, anything else a conflict."""
    if recorded.status == REFUNDED:
        return recorded
    if (recorded.customer_id, recorded.amount, recorded.currency_code) != (
        wanted.customer_id,
        wanted.amount,
        wanted.currency_code,
    ):
        return payment_conflict(wanted.purchase_id)
    return recorded


_CREATE: CreateOnce[PaymentCreate, _Wanted, PaymentState, PaymentState] = CreateOnce(
    Payment,
    check=_check,
    find=_payments_find,
    rules=lambda wanted: check_payment_rules(
        amount=wanted.amount, currency_code=wanted.currency_code
    ),
    record=lambda wanted: PaymentState(
        wanted.purchase_id, wanted.customer_id, COMPLETED, wanted.amount, wanted.currency_code
    ),
    repeat=_repeat,
    answer=lambda recorded: recorded,
    row=lambda wanted: {
        "customer_id": wanted.customer_id,
        "amount": wanted.amount,
        "currency_code": wanted.currency_code,
        "status": COMPLETED,
    },
)


@transaction.atomic
def payment_create_batch(
    *, commands: Sequence[PaymentCreate]
) -> list[PaymentState | ApplicationError]:
    """For each command, in request order, what `services.payment_create` would have
    answered (the payment, or the ApplicationError it would have raised), all in one
    transaction (see the module docstring). A refused item writes nothing."""
    done = create_once_each(_CREATE, commands)
    selectors.payment_records.invalidate_on_commit(*done.claimed)
    log_keys(logger, "%d payments completed: %s", done.claimed)
    return done.outcomes


# ------------------------------------------------------------------ refund


def payment_refund_batch(*, purchase_ids: Sequence[Any]) -> list[PaymentState | ApplicationError]:
    """For each purchase id, in request order, what `services.payment_refund` would have
    answered (the payment, or the ApplicationError it would have raised), all in one
    transaction: COMPLETED -> REFUNDED once, a tombstone for a purchase with no payment."""
    return compensate_each(
        PAYMENT_REFUND,
        purchase_ids=purchase_ids,
        columns=("customer_id", "status", "amount", "currency_code"),
        answer=PaymentState,
        logger=logger,
    )
