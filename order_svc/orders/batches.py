"""The order step for a wave of purchases (CreateOrderBatch, CancelOrderBatch), in a
constant number of statements.

`order_create_batch` and `order_cancel_batch` answer, item by item, exactly what
`services.order_create` / `services.order_cancel` would have answered had the items
run one by one in purchase-id order (repeats of a purchase in request order), with the
same rows, in one transaction. The single call costs about eight statements per item
(a savepoint, the read, the claim, the lines, the read-back); a create batch
(common.batch_writes.create_once_each, with this module's steps) costs:

1. the input checks of every item, in Python, in the single call's order;
2. one SELECT of the orders its purchases have already, with their lines;
3. each item decided in Python: a purchase's first valid create makes the order when
   there is none (unless a limit refuses it), the others repeat it;
4. one INSERT ... ON CONFLICT DO NOTHING RETURNING of the new orders (common.batch_writes.
   claim_rows). A key it did not get was claimed by a concurrent call after the read
   (a duplicate racing): as the single call does after a lost claim, that purchase's
   items are answered again as repeats of the order the other call left, read in one
   more SELECT (only when that happens);
5. one INSERT of the lines of the orders it claimed.

The read takes no lock, like the single call's: a create that held row locks while it
waits on a claim could deadlock with a cancel batch that claims first and then locks.
A cancel batch is common.batch_writes.transition_each: at most three statements.
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
    insert_rows,
    transition_purchases,
)
from common.errors import ApplicationError
from common.ids import check_customer_id, parse_purchase_id
from order_svc.orders import selectors
from order_svc.orders.models import Order, OrderLine
from order_svc.orders.services import (
    ORDER_TOMBSTONE,
    OrderItem,
    check_items,
    check_order_rules,
    line_terms,
    order_conflict,
)

logger = logging.getLogger(__name__)

CREATED = Order.Status.CREATED.value
CANCELLED = Order.Status.CANCELLED.value


@dataclass(frozen=True)
class OrderCreate:
    """One CreateOrder of a batch as its request carried it (checked by the batch, so a
    bad one refuses only its own item)."""

    purchase_id: Any
    customer_id: int
    items: Sequence[OrderItem]


@dataclass(frozen=True)
class OrderState:
    """An order as a batch answers it (what OrderReply shows)."""

    id: uuid.UUID
    status: str
    amount: int


@dataclass(frozen=True)
class _Wanted:
    """A create that passed the input checks."""

    purchase_id: uuid.UUID
    customer_id: int
    items: tuple[OrderItem, ...]


@dataclass(frozen=True)
class _Recorded:
    """An order as the batch knows it (read, or created by an earlier item): what a
    repeat answers and compares."""

    state: OrderState
    customer_id: int | None
    lines: list[tuple[int, int, int]]


# ------------------------------------------------------------------ create


def _check(command: OrderCreate) -> _Wanted:
    """The single call's input checks, in its order (purchase id, customer, lines)."""
    purchase_id = parse_purchase_id(command.purchase_id)
    customer_id = check_customer_id(command.customer_id)
    return _Wanted(purchase_id, customer_id, check_items(command.items))


def _orders_find(order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, _Recorded]:
    """The orders among `order_ids` and their lines, by id: one SELECT, no lock."""
    wanted = list(order_ids)
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.id, o.customer_id, o.status, o.amount,"
            " ARRAY(SELECT ARRAY[l.product_id, l.quantity, l.unit_price]"
            f" FROM {OrderLine._meta.db_table} l WHERE l.order_id = o.id ORDER BY l.product_id)"
            f" FROM {Order._meta.db_table} o WHERE o.id = ANY(%s)",
            [wanted],
        )
        return {
            order_id: _Recorded(
                OrderState(order_id, status, amount),
                customer_id,
                [(product_id, quantity, unit_price) for product_id, quantity, unit_price in lines],
            )
            for order_id, customer_id, status, amount, lines in cursor.fetchall()
        }


def _repeat(recorded: _Recorded, wanted: _Wanted) -> OrderState | ApplicationError:
    """services._repeat against what the batch knows: the cancelled order as it is, the
    same customer and lines the order, anything else a conflict."""
    if recorded.state.status == CANCELLED:
        return recorded.state
    if recorded.customer_id != wanted.customer_id or recorded.lines != line_terms(wanted.items):
        return order_conflict(wanted.purchase_id)
    return recorded.state


def _decide(
    items: list[tuple[int, _Wanted]],
    recorded: _Recorded | None,
    outcomes: dict[int, OrderState | ApplicationError],
) -> _Wanted | None:
    """Answer (into `outcomes`, by position) one purchase's creates in request order, as
    single calls one after another would: with no order, the first that passes the
    limits creates it and the rest repeat it. Answers the create to write, if any."""
    creating: _Wanted | None = None
    for position, wanted in items:
        if recorded is not None:
            outcomes[position] = _repeat(recorded, wanted)
            continue
        refusal = checked(check_order_rules, wanted.items)
        if refusal is not None:
            outcomes[position] = refusal
            continue
        creating = wanted
        amount = sum(item.line_total for item in wanted.items)
        recorded = _Recorded(
            OrderState(wanted.purchase_id, CREATED, amount),
            wanted.customer_id,
            line_terms(wanted.items),
        )
        outcomes[position] = recorded.state
    return creating


@transaction.atomic
def order_create_batch(*, commands: Sequence[OrderCreate]) -> list[OrderState | ApplicationError]:
    """For each command, in request order, what `services.order_create` would have
    answered (the order, or the ApplicationError it would have raised), all in one
    transaction (see the module docstring). A refused item writes nothing."""
    done: CreatedOnce[_Wanted, OrderState] = create_once_each(
        Order, commands, check=_check, find=_orders_find, decide=_decide, claim=_claim
    )
    creating, claimed = done.creating, done.claimed
    insert_rows(
        OrderLine,
        [
            {
                "order_id": purchase_id,
                "product_id": item.product_id,
                "name": item.name,
                "unit_price": item.unit_price,
                "quantity": item.quantity,
                "line_total": item.line_total,
            }
            for purchase_id in sorted(claimed)
            for item in creating[purchase_id].items
        ],
    )
    cache = selectors.order_cache()
    for purchase_id in claimed:
        cache.invalidate_on_commit(selectors.order_cache_key(purchase_id))
    if claimed:
        logger.info("%d orders created: %s", len(claimed), " ".join(map(str, sorted(claimed))))
    return done.outcomes


def _claim(creating: dict[uuid.UUID, _Wanted]) -> set[uuid.UUID]:
    """The new orders, in one INSERT ... ON CONFLICT DO NOTHING: the ids this call got.
    (Stamped with the moment, as auto_now_add would, not the transaction's start.)"""
    return claim_rows(
        Order,
        key="id",
        rows=[
            {
                "id": purchase_id,
                "customer_id": create.customer_id,
                "status": CREATED,
                "amount": sum(item.line_total for item in create.items),
            }
            for purchase_id, create in creating.items()
        ],
        stamped_at=timezone.now(),
    )


# ------------------------------------------------------------------ cancel


@transaction.atomic
def order_cancel_batch(*, purchase_ids: Sequence[Any]) -> list[OrderState | ApplicationError]:
    """For each purchase id, in request order, what `services.order_cancel` would have
    answered (the order, or the ApplicationError it would have raised), all in one
    transaction: CREATED -> CANCELLED once, a tombstone for a purchase with no order."""
    parsed, done = transition_purchases(
        Order,
        purchase_ids=purchase_ids,
        status=CANCELLED,
        tombstone=ORDER_TOMBSTONE,
        columns=("status", "amount"),
    )
    cache = selectors.order_cache()
    for purchase_id, transition in done.items():
        if transition.changed or transition.tombstone:
            cache.invalidate_on_commit(selectors.order_cache_key(purchase_id))
    cancelled = sorted(str(pk) for pk, transition in done.items() if transition.changed)
    tombstones = sorted(str(pk) for pk, transition in done.items() if transition.tombstone)
    if cancelled:
        logger.info("%d orders cancelled: %s", len(cancelled), " ".join(cancelled))
    if tombstones:
        logger.info("cancel before any create, tombstones recorded: %s", " ".join(tombstones))
    return [
        purchase_id
        if isinstance(purchase_id, ApplicationError)
        else OrderState(purchase_id, **done[purchase_id].values)
        for purchase_id in parsed
    ]
