"""The payment step for a wave of purchases (CreatePaymentBatch, RefundPaymentBatch), in a
constant number of statements.

`payment_create_batch` and `payment_refund_batch` answer, item by item, exactly what
`services.payment_create` / `services.payment_refund` would have answered had the items
run one by one in purchase-id order (repeats of a purchase in request order), with the
same rows, in one transaction. The single call costs about six statements per item (a
savepoint, the read, the claim, the read-back); a create batch
(common.batch_writes.create_once_each, with this module's steps) costs:

1. the input checks of every item, in Python, in the single call's order;
2. one SELECT of the payments its purchases have already;
3. each item decided in Python: a purchase's first valid payment is taken when there is
   none (unless a rule refuses it: a currency not accepted, an amount over the limit),
   the others repeat it;
4. one INSERT ... ON CONFLICT DO NOTHING RETURNING of the new payments (common.
   batch_writes.claim_rows). A key it did not get was claimed by a concurrent call after
   the read (a duplicate racing): as the single call does after a lost claim, that
   purchase's items are answered again as repeats of the payment the other call left,
   read in one more SELECT (only when that happens).

The read takes no lock, like the single call's: a create that held row locks while it
waits on a claim could deadlock with a refund batch that claims first and then locks.
A refund batch is common.batch_writes.transition_each: at most three statements.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from common.batch_writes import (
    CreatedOnce,
    checked,
    claim_rows,
    create_once_each,
    transition_purchases,
)
from common.errors import ApplicationError
from common.ids import check_customer_id, parse_purchase_id
from payment_svc.payments import selectors
from payment_svc.payments.models import Payment
from payment_svc.payments.services import (
    PAYMENT_TOMBSTONE,
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


def _decide(
    items: list[tuple[int, _Wanted]],
    recorded: PaymentState | None,
    outcomes: dict[int, PaymentState | ApplicationError],
) -> _Wanted | None:
    """Answer (into `outcomes`, by position) one purchase's payments in request order, as
    single calls one after another would: with no payment, the first that passes the
    rules takes it and the rest repeat it. Answers the payment to write, if any."""
    taking: _Wanted | None = None
    for position, wanted in items:
        if recorded is not None:
            outcomes[position] = _repeat(recorded, wanted)
            continue
        refusal = checked(
            check_payment_rules, amount=wanted.amount, currency_code=wanted.currency_code
        )
        if refusal is not None:
            outcomes[position] = refusal
            continue
        taking = wanted
        recorded = PaymentState(
            wanted.purchase_id, wanted.customer_id, COMPLETED, wanted.amount, wanted.currency_code
        )
        outcomes[position] = recorded
    return taking


@transaction.atomic
def payment_create_batch(
    *, commands: Sequence[PaymentCreate]
) -> list[PaymentState | ApplicationError]:
    """For each command, in request order, what `services.payment_create` would have
    answered (the payment, or the ApplicationError it would have raised), all in one
    transaction (see the module docstring). A refused item writes nothing."""
    done: CreatedOnce[_Wanted, PaymentState] = create_once_each(
        Payment, commands, check=_check, find=_payments_find, decide=_decide, claim=_claim
    )
    claimed = done.claimed
    cache = selectors.payment_cache()
    for purchase_id in claimed:
        cache.invalidate_on_commit(selectors.payment_cache_key(purchase_id))
    if claimed:
        logger.info("%d payments completed: %s", len(claimed), " ".join(map(str, sorted(claimed))))
    return done.outcomes


def _claim(taking: dict[uuid.UUID, _Wanted]) -> set[uuid.UUID]:
    """The new payments, in one INSERT ... ON CONFLICT DO NOTHING: the ids this call got.
    (Stamped with the moment, as auto_now_add would, not the transaction's start.)"""
    return claim_rows(
        Payment,
        key="id",
        rows=[
            {
                "id": purchase_id,
                "customer_id": take.customer_id,
                "amount": take.amount,
                "currency_code": take.currency_code,
                "status": COMPLETED,
            }
            for purchase_id, take in taking.items()
        ],
        stamped_at=timezone.now(),
    )


# ------------------------------------------------------------------ refund


@transaction.atomic
def payment_refund_batch(*, purchase_ids: Sequence[Any]) -> list[PaymentState | ApplicationError]:
    """For each purchase id, in request order, what `services.payment_refund` would have
    answered (the payment, or the ApplicationError it would have raised), all in one
    transaction: COMPLETED -> REFUNDED once, a tombstone for a purchase with no payment."""
    parsed, done = transition_purchases(
        Payment,
        purchase_ids=purchase_ids,
        status=REFUNDED,
        tombstone=PAYMENT_TOMBSTONE,
        columns=("customer_id", "status", "amount", "currency_code"),
    )
    cache = selectors.payment_cache()
    for purchase_id, transition in done.items():
        if transition.changed or transition.tombstone:
            cache.invalidate_on_commit(selectors.payment_cache_key(purchase_id))
    refunded = sorted(str(pk) for pk, transition in done.items() if transition.changed)
    tombstones = sorted(str(pk) for pk, transition in done.items() if transition.tombstone)
    if refunded:
        logger.info("%d payments refunded: %s", len(refunded), " ".join(refunded))
    if tombstones:
        logger.info("refund before any payment, tombstones recorded: %s", " ".join(tombstones))
    return [
        purchase_id
        if isinstance(purchase_id, ApplicationError)
        else PaymentState(purchase_id, **done[purchase_id].values)
        for purchase_id in parsed
    ]
