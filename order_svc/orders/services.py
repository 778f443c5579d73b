"""Writes of orders: the saga's CREATE_ORDER step and its compensation.

Both are idempotent on the purchase id, which is the order's primary key. The row
is claimed with INSERT ... ON CONFLICT (id) DO NOTHING: when a duplicate races with
the first call, PostgreSQL makes it wait for the first one's transaction and then
see its committed row, so twenty identical calls create one order and answer it
twenty times. CancelOrder claims the same key, so a cancel that overtakes its
create leaves a tombstone (CANCELLED, no customer, no lines) and the late create
answers that cancelled state without creating anything.

A refusal (bad input: INVALID_INPUT; a business rule: FAILED_PRECONDITION; an
unknown product: NOT_FOUND) is decided before anything is written, so it leaves no
trace and the same call is judged afresh next time. The rules and the inputs that
trigger them are listed in docs/business-rules.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from common.errors import ApplicationError, ErrorCode
from order_svc.orders import catalog, conf, selectors
from order_svc.orders.models import Order, OrderLine

logger = logging.getLogger(__name__)

MAX_INT64 = 2**63 - 1


@dataclass(frozen=True)
class OrderItem:
    """One wanted line: a product and how many of it."""

    product_id: int
    quantity: int


@dataclass(frozen=True)
class OrderOutcome:
    """The order a command left behind; `changed` says whether this call changed it."""

    order: Order
    changed: bool


# ------------------------------------------------------------------ checks


def _invalid(message: str, **details: Any) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID_INPUT, message, details)


def parse_purchase_id(value: Any) -> uuid.UUID:
    """A purchase id from its text (or UUID); INVALID_INPUT when empty or not a UUID."""
    if value is None or value == "":
        raise _invalid("purchase_id is required.")
    parsed = selectors.parse_order_id(value)
    if parsed is None:
        raise _invalid(f"purchase_id must be a UUID, not {value!r}.")
    return parsed


def check_customer_id(customer_id: Any) -> int:
    if not isinstance(customer_id, int) or not 1 <= customer_id <= MAX_INT64:
        raise _invalid(f"customer_id must be a positive id, not {customer_id!r}.")
    return customer_id


def check_items(items: Iterable[tuple[int, int]]) -> tuple[OrderItem, ...]:
    """Validate the wanted lines and merge repeats of a product, sorted by product id.

    Bad input answers INVALID_INPUT: no lines, a product id below 1, a quantity below 1.
    """
    totals: dict[int, int] = {}
    for product_id, quantity in items:
        if not 1 <= product_id <= MAX_INT64:
            raise _invalid(f"product_id must be a positive id, not {product_id}.")
        if quantity < 1:
            raise _invalid(f"quantity must be at least 1, not {quantity}.", product_id=product_id)
        totals[product_id] = min(totals.get(product_id, 0) + quantity, MAX_INT64)
    if not totals:
        raise _invalid("An order needs at least one item.")
    return tuple(OrderItem(p, q) for p, q in sorted(totals.items()))


def check_order_rules(items: tuple[OrderItem, ...]) -> None:
    """The shop's limits on one order (FAILED_PRECONDITION), see docs/business-rules.md.

    - more distinct products than ORDER_MAX_LINES;
    - more units of one product (repeats of it added up) than ORDER_MAX_QUANTITY_PER_LINE.
    """
    max_lines = conf.max_lines()
    if len(items) > max_lines:
        raise ApplicationError(
            ErrorCode.FAILED_PRECONDITION,
            f"An order may have at most {max_lines} products, not {len(items)}.",
            {"rule": "ORDER_MAX_LINES", "limit": max_lines, "lines": len(items)},
        )
    max_quantity = conf.max_quantity_per_line()
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


def _priced_lines(
    items: tuple[OrderItem, ...], *, timeout: float | None
) -> tuple[list[OrderLine], int]:
    """Each line at the product's current price (asked of the product service), and the
    total. An unknown product answers NOT_FOUND; a total beyond int64, FAILED_PRECONDITION."""
    facts = catalog.products_get(
        product_ids=[item.product_id for item in items],
        timeout=timeout if timeout is not None else conf.product_timeout_seconds(),
    )
    missing = [item.product_id for item in items if item.product_id not in facts]
    if missing:
        raise ApplicationError(
            ErrorCode.NOT_FOUND,
            f"No product {', '.join(str(m) for m in missing)}.",
            {"product_ids": missing},
        )
    lines: list[OrderLine] = []
    amount = 0
    for item in items:
        product = facts[item.product_id]
        line_total = product.price * item.quantity
        amount += line_total
        if amount > MAX_INT64:
            raise ApplicationError(
                ErrorCode.FAILED_PRECONDITION,
                "The order's total is larger than an amount can be.",
                {"product_id": item.product_id},
            )
        lines.append(
            OrderLine(
                product_id=item.product_id,
                name=product.name[:200],
                unit_price=product.price,
                quantity=item.quantity,
                line_total=line_total,
            )
        )
    return lines, amount


# ------------------------------------------------------------------ writes


def _claim(
    order_id: uuid.UUID, *, customer_id: int | None, status: Order.Status, amount: int
) -> bool:
    """Insert the order row unless one with this id exists; True if this call inserted it.

    Waits for a concurrent transaction that inserted the same id, then sees its row.
    """
    now = timezone.now()  # as auto_now_add would: the moment, not the transaction start
    table = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, customer_id, status, amount, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            [order_id, customer_id, status.value, amount, now, now],
        )
        return cursor.fetchone() is not None


def _invalidate_on_commit(order_id: uuid.UUID) -> None:
    """Drop the cached copy once the change is visible; a cache fault is logged, not raised
    (the write has committed: its caller must hear success)."""
    key = selectors.order_cache_key(order_id)
    transaction.on_commit(lambda: selectors.order_cache().invalidate(key), robust=True)


def _repeat(order: Order, *, customer_id: int, items: tuple[OrderItem, ...]) -> OrderOutcome:
    """The answer to a CreateOrder for an id that has an order already.

    Cancelled (or a tombstone): that state, nothing changes. The same customer and
    lines: the order as it is. Anything else is another request under a used id:
    CONFLICT, and nothing changes.
    """
    if order.status == Order.Status.CANCELLED:
        return OrderOutcome(order, changed=False)
    wanted = [(item.product_id, item.quantity) for item in items]
    if order.customer_id != customer_id or selectors.order_lines(order_id=order.id) != wanted:
        raise ApplicationError(
            ErrorCode.CONFLICT,
            f"Purchase {order.id} already has an order with other contents.",
            {"purchase_id": str(order.id)},
        )
    return OrderOutcome(order, changed=False)


def order_create(
    *,
    purchase_id: uuid.UUID,
    customer_id: int,
    items: Iterable[tuple[int, int]],
    product_timeout: float | None = None,
) -> OrderOutcome:
    """The saga's CREATE_ORDER step: store the order with each line priced as of now.

    Idempotent on purchase_id (see the module docstring). `items` are
    (product_id, quantity) pairs; repeats of a product are added up into one line.
    `product_timeout` bounds the call to the product service (default
    ORDER_PRODUCT_TIMEOUT_SECONDS); if it fails transiently this answers UNAVAILABLE.
    """
    customer_id = check_customer_id(customer_id)
    wanted = check_items(items)
    existing = selectors.order_find(order_id=purchase_id)
    if existing is not None:
        return _repeat(existing, customer_id=customer_id, items=wanted)
    check_order_rules(wanted)
    lines, amount = _priced_lines(wanted, timeout=product_timeout)
    with transaction.atomic():
        if not _claim(
            purchase_id, customer_id=customer_id, status=Order.Status.CREATED, amount=amount
        ):
            # A duplicate won the race (or a cancel came first): answer what it left.
            return _repeat(Order.objects.get(id=purchase_id), customer_id=customer_id, items=wanted)
        for line in lines:
            line.order_id = purchase_id
        OrderLine.objects.bulk_create(lines)
        _invalidate_on_commit(purchase_id)
        order = Order.objects.get(id=purchase_id)
    logger.info("order %s created for customer %s: %s", purchase_id, customer_id, amount)
    return OrderOutcome(order, changed=True)


def order_cancel(*, purchase_id: uuid.UUID) -> OrderOutcome:
    """The compensation of CREATE_ORDER: CREATED -> CANCELLED, once.

    Cancelling an order that does not exist succeeds and changes nothing a customer
    sees, but records a tombstone so that a CreateOrder arriving later does nothing.
    A repeat answers the cancelled order.
    """
    with transaction.atomic():
        if _claim(purchase_id, customer_id=None, status=Order.Status.CANCELLED, amount=0):
            logger.info("cancel of order %s before any create: tombstone recorded", purchase_id)
            _invalidate_on_commit(purchase_id)
            return OrderOutcome(Order.objects.get(id=purchase_id), changed=False)
        order = Order.objects.select_for_update().get(id=purchase_id)
        if order.status == Order.Status.CANCELLED:
            return OrderOutcome(order, changed=False)
        order.status = Order.Status.CANCELLED
        order.save(update_fields=["status", "updated_at"])
        _invalidate_on_commit(purchase_id)
    logger.info("order %s cancelled", purchase_id)
    return OrderOutcome(order, changed=True)
