"""Reads of orders, over common.records.PurchaseRecords.

One order is read through the shared two-level cache as a plain dict with its lines;
every write that changes it (create, cancel) drops the entry once its transaction commits
(services.py). Another customer's order, a tombstone and a malformed id all read as
"no such order". Lists come straight from the database, newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from common.records import PurchaseRecords
from common.serializers import api_datetime
from order_svc.orders.conf import config
from order_svc.orders.models import Order, OrderLine


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


order_records = PurchaseRecords(
    Order, namespace=lambda: config().cache_namespace, to_dict=order_to_dict, prefetch=("lines",)
)
"""The orders' cache and reads (common.records); services drop a changed one from it."""


def order_find(*, order_id: uuid.UUID) -> Order | None:
    """The order row itself, from the database (for writes: never from the cache)."""
    return order_records.find(order_id)


def order_lines(*, order_id: uuid.UUID) -> list[tuple[int, int, int]]:
    """(product_id, quantity, unit_price) of each line of an order, by product id."""
    return [
        (int(product_id), int(quantity), int(unit_price))
        for product_id, quantity, unit_price in OrderLine.objects.filter(order_id=order_id)
        .order_by("product_id")
        .values_list("product_id", "quantity", "unit_price")
    ]


def order_get(*, order_id: uuid.UUID) -> dict[str, Any] | None:
    """One order (as order_to_dict) through the cache, or None if there is none."""
    return order_records.get(order_id)


def order_get_for_customer(*, order_id: Any, customer_id: int) -> dict[str, Any] | None:
    """The customer's own order with this id, or None (see PurchaseRecords.get_owned)."""
    return order_records.get_owned(order_id, customer_id=customer_id)


def order_list(*, customer_id: int, status: str | None = None) -> QuerySet[Order]:
    """A customer's orders, newest first, with their lines; optionally of one status."""
    return order_records.list_for(customer_id=customer_id, status=status)


def order_find_many(*, order_ids: Iterable[uuid.UUID]) -> list[Order]:
    """The orders with these ids straight from the database, by id; absent ones left out."""
    return order_records.find_many(order_ids)
