"""GET /api/v1/orders and /api/v1/orders/{id} through the edge: a customer reads their own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.testing import Customer, grpc_call
from common.testing_reads import OwnedReads
from saga_proto import order_pb2

pytestmark = pytest.mark.live

ORDERS = OwnedReads("/api/v1/orders")


@pytest.fixture
def alice_order(orders: Any, alice: Customer, whey: dict[str, Any]) -> str:
    """An order of Alice's, as the saga creates it (at the price and under the name the
    purchase stored)."""
    purchase = str(uuid.uuid4())
    grpc_call(
        orders.CreateOrder,
        order_pb2.CreateOrderRequest(
            purchase_id=purchase,
            customer_id=alice.id,
            items=[
                order_pb2.OrderItem(
                    product_id=whey["id"], quantity=3, unit_price=whey["price"], name=whey["name"]
                )
            ],
        ),
    )
    return purchase


def test_the_owner_reads_the_order_with_its_lines(
    alice: Customer, alice_order: str, whey: dict[str, Any]
) -> None:
    response = ORDERS.get(alice_order, alice.token)

    assert response.status_code == 200, response.text
    order = response.json()
    assert (order["id"], order["customer_id"], order["status"], order["amount"]) == (
        alice_order,
        alice.id,
        "CREATED",
        3 * whey["price"],
    )
    assert order["lines"] == [
        {
            "product_id": whey["id"],
            "name": whey["name"],
            "unit_price": whey["price"],
            "quantity": 3,
            "line_total": 3 * whey["price"],
        }
    ]


def test_another_customer_gets_404(bob: Customer, alice_order: str) -> None:
    ORDERS.assert_hidden(alice_order, bob.token)


def test_anonymous_gets_401(alice_order: str) -> None:
    ORDERS.assert_anonymous_refused(alice_order)


@pytest.mark.parametrize("order_id", ["not-a-uuid", "12345", str(uuid.uuid4())])
def test_a_malformed_or_unknown_id_gets_404_json(alice: Customer, order_id: str) -> None:
    ORDERS.assert_hidden(order_id, alice.token)


def test_a_tombstone_is_nobody_s_order(orders: Any, alice: Customer) -> None:
    purchase = str(uuid.uuid4())
    grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=purchase))

    ORDERS.assert_hidden(purchase, alice.token)


def test_a_cancel_is_seen_within_the_staleness_bound(
    orders: Any, alice: Customer, alice_order: str
) -> None:
    assert ORDERS.status(alice_order, alice.token) == "CREATED"  # now cached

    grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=alice_order))

    ORDERS.assert_seen_within_the_staleness_bound(alice_order, alice.token, "CANCELLED")


def test_the_list_holds_one_s_own_orders_only(
    alice: Customer, bob: Customer, alice_order: str
) -> None:
    ORDERS.assert_own_only(alice_order, owner=alice, other=bob)


def test_the_list_is_paginated_newest_first_and_filters_by_status(
    orders: Any, alice: Customer, whey: dict[str, Any]
) -> None:
    created = []
    for _ in range(3):
        purchase = str(uuid.uuid4())
        grpc_call(
            orders.CreateOrder,
            order_pb2.CreateOrderRequest(
                purchase_id=purchase,
                customer_id=alice.id,
                items=[
                    order_pb2.OrderItem(product_id=whey["id"], quantity=1, unit_price=whey["price"])
                ],
            ),
        )
        created.append(purchase)
    grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=created[0]))

    ORDERS.assert_newest_first_and_filtered(created, alice.token, moved="CANCELLED")


def test_an_unknown_status_filter_is_400(alice: Customer) -> None:
    ORDERS.assert_unknown_status_refused(alice.token)
