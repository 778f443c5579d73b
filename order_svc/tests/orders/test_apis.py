"""GET /api/v1/orders and /api/v1/orders/{id} through the edge: a customer reads their own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.testing import Customer, assert_error, eventually, grpc_call
from order_svc.tests.conftest import edge
from saga_proto import order_pb2

pytestmark = pytest.mark.live


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
    response = edge("GET", f"/api/v1/orders/{alice_order}", token=alice.token)

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
    assert_error(edge("GET", f"/api/v1/orders/{alice_order}", token=bob.token), 404, "not_found")


def test_anonymous_gets_401(alice_order: str) -> None:
    assert_error(edge("GET", f"/api/v1/orders/{alice_order}"), 401, "unauthenticated")
    assert_error(edge("GET", "/api/v1/orders"), 401, "unauthenticated")


@pytest.mark.parametrize("order_id", ["not-a-uuid", "12345", str(uuid.uuid4())])
def test_a_malformed_or_unknown_id_gets_404_json(alice: Customer, order_id: str) -> None:
    assert_error(edge("GET", f"/api/v1/orders/{order_id}", token=alice.token), 404, "not_found")


def test_a_tombstone_is_nobody_s_order(orders: Any, alice: Customer) -> None:
    purchase = str(uuid.uuid4())
    grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=purchase))

    assert_error(edge("GET", f"/api/v1/orders/{purchase}", token=alice.token), 404, "not_found")


def test_a_cancel_is_seen_within_the_staleness_bound(
    orders: Any, alice: Customer, alice_order: str
) -> None:
    def status() -> str:
        response = edge("GET", f"/api/v1/orders/{alice_order}", token=alice.token)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    assert status() == "CREATED"  # now cached

    grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=alice_order))

    assert eventually(status, "CANCELLED") == "CANCELLED"


def test_the_list_holds_one_s_own_orders_only(
    alice: Customer, bob: Customer, alice_order: str
) -> None:
    mine = edge("GET", "/api/v1/orders?page_size=100", token=alice.token)
    theirs = edge("GET", "/api/v1/orders?page_size=100", token=bob.token)

    assert mine.status_code == theirs.status_code == 200
    assert alice_order in [o["id"] for o in mine.json()["results"]]
    assert {o["customer_id"] for o in mine.json()["results"]} == {alice.id}
    assert alice_order not in [o["id"] for o in theirs.json()["results"]]


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

    page = edge("GET", "/api/v1/orders?page_size=2", token=alice.token).json()
    cancelled = edge("GET", "/api/v1/orders?status=CANCELLED&page_size=100", token=alice.token)

    assert [o["id"] for o in page["results"]] == [created[2], created[1]]
    assert page["count"] >= 3 and page["next"]
    assert created[0] in [o["id"] for o in cancelled.json()["results"]]
    assert {o["status"] for o in cancelled.json()["results"]} == {"CANCELLED"}


def test_an_unknown_status_filter_is_400(alice: Customer) -> None:
    assert_error(edge("GET", "/api/v1/orders?status=LOST", token=alice.token), 400, "invalid_input")
