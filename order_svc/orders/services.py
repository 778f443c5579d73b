"""Writes of orders: the saga's CREATE_ORDER step and its compensation.

CreateOrder records the lines at the unit prices and under the product names it is
given: what the customer was shown, stored with the purchase and carried by the saga;
the payment charges the sum of the prices. The order service asks nobody for prices
or names, so the order's amount is always the purchase's.

Both are idempotent on the purchase id, which is the order's primary key. The row
is claimed with INSERT ... ON CONFLICT (id) DO NOTHING: when a duplicate races with
the first call, PostgreSQL makes it wait for the first one's transaction and then
see its committed row, so twenty identical calls create one order and answer it
twenty times. CancelOrder claims the same key, so a cancel that overtakes its
create leaves a tombstone (CANCELLED, no customer, no lines) and the late create
answers that cancelled state without creating anything.

A refusal (bad input: INVALID_INPUT; a business rule: FAILED_PRECONDITION) is decided
before anything is written, so it leaves no trace and the same call is judged afresh
next time. The rules and the inputs that trigger them are listed in
docs/business-rules.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from common.db import Compensation, claim_row, compensate_once
from common.errors import ApplicationError, ErrorCode, invalid_input
from common.ids import MAX_INT64, check_customer_id
from order_svc.orders import selectors
from order_svc.orders.conf import config
from order_svc.orders.models import MAX_NAME_LENGTH, Order, OrderLine

logger = logging.getLogger(__name__)

ORDER_CANCEL = Compensation(
    Order,
    status=Order.Status.CANCELLED.value,
    # A tombstone: cancelled before any create (no customer, no lines).
    tombstone={"customer_id": None, "amount": 0},
    invalidate=selectors.order_records.invalidate_on_commit,
    moved="order %s cancelled",
    recorded="cancel of order %s before any create: tombstone recorded",
    moved_many="%d orders cancelled: %s",
    recorded_many="cancel before any create, tombstones recorded: %s",
)
"""The compensation of CREATE_ORDER, single (order_cancel) or in a batch."""


@dataclass(frozen=True)
class OrderItem:
    """One wanted line: a product, how many of it, and the unit price (minor unit) and
    name the customer was shown; the name may be empty (the purchase had none)."""

    product_id: int
    quantity: int
    unit_price: int
    name: str = ""

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class OrderOutcome:
    """The order a command left behind; `changed` says whether this call changed it."""

    order: Order
    changed: bool


# ------------------------------------------------------------------ checks


def check_items(items: Iterable[OrderItem]) -> tuple[OrderItem, ...]:
    """Validate the wanted lines and merge repeats of a product, sorted by product id.

    Bad input answers INVALID_INPUT: no lines, a product id below 1, a quantity below 1,
    a negative unit price, one product at two prices, a total beyond a 64-bit integer.
    A name is descriptive, never a reason to refuse: a repeat of a product keeps the
    first one, and one longer than a line holds is cut to MAX_NAME_LENGTH.
    """
    merged: dict[int, OrderItem] = {}
    for item in items:
        if not 1 <= item.product_id <= MAX_INT64:
            raise invalid_input(f"product_id must be a positive id, not {item.product_id}.")
        if item.quantity < 1:
            raise invalid_input(
                f"quantity must be at least 1, not {item.quantity}.", product_id=item.product_id
            )
        if not 0 <= item.unit_price <= MAX_INT64:
            raise invalid_input(
                f"unit_price must be from 0 to {MAX_INT64}, not {item.unit_price}.",
                product_id=item.product_id,
            )
        earlier = merged.get(item.product_id)
        if earlier is not None and earlier.unit_price != item.unit_price:
            raise invalid_input(
                f"Product {item.product_id} comes at two prices.", product_id=item.product_id
            )
        quantity = item.quantity if earlier is None else earlier.quantity + item.quantity
        merged[item.product_id] = OrderItem(
            item.product_id,
            min(quantity, MAX_INT64),
            item.unit_price,
            item.name[:MAX_NAME_LENGTH] if earlier is None else earlier.name,
        )
    if not merged:
        raise invalid_input("An order needs at least one item.")
    if sum(item.line_total for item in merged.values()) > MAX_INT64:
        raise invalid_input("The order's total is larger than an amount can be.")
    return tuple(merged[p] for p in sorted(merged))


def check_order_rules(items: tuple[OrderItem, ...]) -> None:
    """The shop's limits on one order (FAILED_PRECONDITION), see docs/business-rules.md.

    - more distinct products than ORDER_MAX_LINES;
    - more units of one product (repeats of it added up) than ORDER_MAX_QUANTITY_PER_LINE.
    """
    max_lines = config().max_lines
    if len(items) > max_lines:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            f"An order may have at most {max_lines} products, not {len(items)}.",
            {"rule": "ORDER_MAX_LINES", "limit": max_lines, "lines": len(items)},
        )
    max_quantity = config().max_quantity_per_line
    for item in items:
        if item.quantity > max_quantity:
            raise ApplicationError(
                ErrorCode.FAILED_PRECONDITION,
                f"An order may have at most {max_quantity} units of one product, "
                f"not {item.quantity} of product {item.product_id}.",
                {
                    "rule": "ORDER_MAX_QUANTITY_PER_LINE",
                    "limit": max_quantity,
                    "product_id": item.product_id,
                    "quantity": item.quantity,
                },
            )


# ------------------------------------------------------------------ writes


def line_terms(items: Iterable[OrderItem]) -> list[tuple[int, int, int]]:
    """What a repeat compares of checked lines: (product_id, quantity, unit_price) of each,
    as selectors.order_lines answers a stored order's."""
    return [(item.product_id, item.quantity, item.unit_price) for item in items]


def order_conflict(order_id: uuid.UUID) -> ApplicationError:
    """The refusal of a CreateOrder whose purchase has an order with other contents."""
    return ApplicationError(
        ErrorCode.CONFLICT,
        f"Purchase {order_id} already has an order with other contents.",
        {"purchase_id": str(order_id)},
    )


def _repeat(order: Order, *, customer_id: int, items: tuple[OrderItem, ...]) -> OrderOutcome:
    """The answer to a CreateOrder for an id that has an order already.

    Cancelled (or a tombstone): that state, nothing changes. The same customer and
    lines (products, quantities and unit prices): the order as it is. Anything else is
    another request under a used id: CONFLICT, and nothing changes. Names are not
    compared: they describe the lines, and a line recorded without one (by the code
    before names came back) must not turn the saga's retry into a conflict.
    """
    if order.status == Order.Status.CANCELLED:
        return OrderOutcome(order, changed=False)
    wanted = line_terms(items)
    if order.customer_id != customer_id or selectors.order_lines(order_id=order.id) != wanted:
        raise order_conflict(order.id)
    return OrderOutcome(order, changed=False)


def order_create(
    *, purchase_id: uuid.UUID, customer_id: int, items: Iterable[OrderItem]
) -> OrderOutcome:
    """The saga's CREATE_ORDER step: store the order with each line at its given unit price.

    Idempotent on purchase_id (see the module docstring). Repeats of a product in
    `items` are added up into one line. The amount is the sum of the line totals.
    """
    customer_id = check_customer_id(customer_id)
    wanted = check_items(items)
    existing = selectors.order_find(order_id=purchase_id)
    if existing is not None:
        return _repeat(existing, customer_id=customer_id, items=wanted)
    check_order_rules(wanted)
    amount = sum(item.line_total for item in wanted)
    with transaction.atomic():
        row = {
            "id": purchase_id,
            "customer_id": customer_id,
            "status": Order.Status.CREATED.value,
            "amount": amount,
        }
        # (The moment, as auto_now_add would stamp it, not the transaction's start.)
        if not claim_row(Order, key="id", values=row, stamped_at=timezone.now()):
            # A duplicate won the race (or a cancel came first): answer what it left.
            return _repeat(Order.objects.get(id=purchase_id), customer_id=customer_id, items=wanted)
        OrderLine.objects.bulk_create(
            OrderLine(
                order_id=purchase_id,
                product_id=item.product_id,
                name=item.name,
                unit_price=item.unit_price,
                quantity=item.quantity,
                line_total=item.line_total,
            )
            for item in wanted
        )
        selectors.order_records.invalidate_on_commit(purchase_id)
        order = Order.objects.get(id=purchase_id)
    logger.info("order %s created for customer %s: %s", purchase_id, customer_id, amount)
    return OrderOutcome(order, changed=True)


def order_cancel(*, purchase_id: uuid.UUID) -> OrderOutcome:
    """The compensation of CREATE_ORDER: CREATED -> CANCELLED, once; with no order yet,
    a tombstone that a late CreateOrder answers (common.db.compensate_once)."""
    done = compensate_once(ORDER_CANCEL, pk=purchase_id, logger=logger)
    return OrderOutcome(done.row, changed=done.changed)
