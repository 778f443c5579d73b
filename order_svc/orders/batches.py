"""The order step for a wave of purchases (CreateOrderBatch, CancelOrderBatch), in a
constant number of statements.

`order_create_batch` and `order_cancel_batch` answer, item by item, exactly what
`services.order_create` / `services.order_cancel` would have answered had the items
run one by one in purchase-id order (repeats of a purchase in request order), with the
same rows, in one transaction. The single call costs about eight statements per item
(a savepoint, the read, the claim, the lines, the read-back). A create batch is
common.batch_writes.create_once_each over this module's steps (`_CREATE`: the input
checks, one SELECT of the orders with their lines, the limits, the order row), then
one INSERT of the lines of the orders it claimed. A cancel batch is
common.batch_writes.compensate_each (services.ORDER_CANCEL): at most three statements.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from common.batch_writes import (
    CreateOnce,
    compensate_each,
    create_once_each,
    insert_rows,
    log_keys,
)
from common.errors import ApplicationError
from common.ids import check_customer_id, parse_purchase_id
from order_svc.orders import selectors
from order_svc.orders.models import Order, OrderLine
from order_svc.orders.services import (
    ORDER_CANCEL,
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

    @property
    def amount(self) -> int:
        return sum(item.line_total for item in self.items)


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


_CREATE: CreateOnce[OrderCreate, _Wanted, _Recorded, OrderState] = CreateOnce(
    Order,
    check=_check,
    find=_orders_find,
    rules=lambda wanted: check_order_rules(wanted.items),
    record=lambda wanted: _Recorded(
        OrderState(wanted.purchase_id, CREATED, wanted.amount),
        wanted.customer_id,
        line_terms(wanted.items),
    ),
    repeat=_repeat,
    answer=lambda recorded: recorded.state,
    row=lambda wanted: {
        "customer_id": wanted.customer_id,
        "status": CREATED,
        "amount": wanted.amount,
    },
)


@transaction.atomic
def order_create_batch(*, commands: Sequence[OrderCreate]) -> list[OrderState | ApplicationError]:
    """For each command, in request order, what `services.order_create` would have
    answered (the order, or the ApplicationError it would have raised), all in one
    transaction (see the module docstring). A refused item writes nothing."""
    done = create_once_each(_CREATE, commands)
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
            for purchase_id in sorted(done.claimed)
            for item in done.creating[purchase_id].items
        ],
    )
    selectors.order_records.invalidate_on_commit(*done.claimed)
    log_keys(logger, "%d orders created: %s", done.claimed)
    return done.outcomes


# ------------------------------------------------------------------ cancel


def order_cancel_batch(*, purchase_ids: Sequence[Any]) -> list[OrderState | ApplicationError]:
    """For each purchase id, in request order, what `services.order_cancel` would have
    answered (the order, or the ApplicationError it would have raised), all in one
    transaction: CREATED -> CANCELLED once, a tombstone for a purchase with no order."""
    return compensate_each(
        ORDER_CANCEL,
        purchase_ids=purchase_ids,
        columns=("status", "amount"),
        answer=OrderState,
        logger=logger,
    )
