"""Reads of orders, in-process: only the owner finds an order."""

from __future__ import annotations

import uuid

import pytest

from order_svc.orders import selectors, services
from order_svc.orders.services import OrderItem

pytestmark = pytest.mark.django_db

OWNER, OTHER = 11, 12
WHEY, PRICE, NAME = 101, 1390, "Whey 1kg"


def whey(quantity: int) -> list[OrderItem]:
    return [OrderItem(product_id=WHEY, quantity=quantity, unit_price=PRICE, name=NAME)]


@pytest.fixture
def order_id() -> uuid.UUID:
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=OWNER, items=whey(2))
    return purchase


def test_the_owner_reads_the_order_with_its_lines(order_id: uuid.UUID) -> None:
    order = selectors.order_get_for_customer(order_id=str(order_id), customer_id=OWNER)

    assert order is not None
    assert (order["id"], order["status"], order["amount"]) == (str(order_id), "CREATED", 2 * PRICE)
    assert order["lines"] == [
        {
            "product_id": WHEY,
            "name": NAME,
            "unit_price": PRICE,
            "quantity": 2,
            "line_total": 2 * PRICE,
        }
    ]


@pytest.mark.parametrize("reader", [OTHER, 0])
def test_another_customer_finds_nothing(order_id: uuid.UUID, reader: int) -> None:
    assert selectors.order_get_for_customer(order_id=str(order_id), customer_id=reader) is None


@pytest.mark.parametrize("value", ["nope", "", "1234", "../admin"])
def test_an_id_that_is_no_uuid_finds_nothing(value: str) -> None:
    assert selectors.order_get_for_customer(order_id=value, customer_id=OWNER) is None


def test_a_tombstone_is_nobody_s_order() -> None:
    purchase = uuid.uuid4()
    services.order_cancel(purchase_id=purchase)

    assert selectors.order_get_for_customer(order_id=str(purchase), customer_id=OWNER) is None
    assert not selectors.order_list(customer_id=OWNER).filter(id=purchase).exists()


def test_the_list_is_the_customer_s_own_newest_first() -> None:
    first, second, others = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for purchase, customer in ((first, OWNER), (second, OWNER), (others, OTHER)):
        services.order_create(purchase_id=purchase, customer_id=customer, items=whey(1))
    services.order_cancel(purchase_id=first)

    assert [o.id for o in selectors.order_list(customer_id=OWNER)] == [second, first]
    assert [o.id for o in selectors.order_list(customer_id=OWNER, status="CANCELLED")] == [first]
