"""Reads of orders.

One order is read through the shared two-level cache (common.cache), as a plain
dict with its lines; every write that changes it (create, cancel) invalidates the
entry after its transaction commits (services.py), so this process sees the change
at once and every other process within the cache's local lifetime (one second).
A miss is cached too (briefly), which keeps a flood of unknown ids off the database.

Ownership is checked after the read: an order another customer owns, a tombstone
(no customer) and an id that is not a UUID all read as "no such order".
Lists come straight from the database, newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from common.cache import ReadThroughCache, process_cache
from common.ids import read_owned
from common.serializers import api_datetime
from order_svc.orders.conf import config
from order_svc.orders.models import Order, OrderLine


def order_cache() -> ReadThroughCache:
    """The order cache of this process, named by settings (tests use their own name)."""
    return process_cache(config().cache_namespace)


def order_cache_key(order_id: uuid.UUID) -> str:
    return str(order_id)


def order_line_to_dict(line: OrderLine) -> dict[str, Any]:
    return {
        "product_id": line.product_id,
        "name": line.name,
        "unit_price": line.unit_price,
        "quantity": line.quantity,
        "line_total": line.line_total,
    }


def order_to_dict(order: Order) -> dict[str, Any]:
    """An order as cached and as the API answers it: plain JSON values, lines included."""
    return {
        "id": str(order.id),
        "customer_id": order.customer_id,
        "status": order.status,
        "amount": order.amount,
        "lines": [order_line_to_dict(line) for line in order.lines.all()],
        "created_at": api_datetime(order.created_at),
        "updated_at": api_datetime(order.updated_at),
    }


def order_find(*, order_id: uuid.UUID) -> Order | None:
    """The order row itself, from the database (for writes: never from the cache)."""
    return Order.objects.filter(id=order_id).first()


def order_lines(*, order_id: uuid.UUID) -> list[tuple[int, int, int]]:
    """(product_id, quantity, unit_price) of each line of an order, by product id."""
    return [
        (int(product_id), int(quantity), int(unit_price))
        for product_id, quantity, unit_price in OrderLine.objects.filter(order_id=order_id)
        .order_by("product_id")
        .values_list("product_id", "quantity", "unit_price")
    ]


def order_load(order_id: uuid.UUID) -> dict[str, Any] | None:
    """One order with its lines straight from the database (the cache's loader)."""
    order = Order.objects.filter(id=order_id).prefetch_related("lines").first()
    return order_to_dict(order) if order is not None else None


def order_get(*, order_id: uuid.UUID) -> dict[str, Any] | None:
    """One order (as order_to_dict) through the cache, or None if there is none."""
    return order_cache().get(order_cache_key(order_id), lambda: order_load(order_id))


def order_get_for_customer(*, order_id: Any, customer_id: int) -> dict[str, Any] | None:
    """The customer's own order with this id, or None: unknown, malformed, a tombstone,
    or another customer's all answer None, so a caller cannot tell them apart."""
    return read_owned(
        order_id, customer_id=customer_id, read=lambda parsed: order_get(order_id=parsed)
    )


def order_list(*, customer_id: int, status: str | None = None) -> QuerySet[Order]:
    """A customer's orders, newest first, with their lines; optionally of one status."""
    orders = (
        Order.objects.filter(customer_id=customer_id)
        .order_by("-created_at", "id")
        .prefetch_related("lines")
    )
    if status is not None:
        orders = orders.filter(status=status)
    return orders


def order_find_many(*, order_ids: Iterable[uuid.UUID]) -> list[Order]:
    """The orders with these ids straight from the database (the consistency audit wants
    what is, not what a cache remembers), by id; absent ones left out."""
    return list(Order.objects.filter(id__in=list(order_ids)).order_by("id"))
