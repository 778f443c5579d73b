"""`OrderService.GetOrders` through the gRPC edge: the read the orchestrator's
consistency audit makes, many purchases in one call, answered from order_db."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from common.grpc.servicer import MAX_BATCH_ITEMS
from common.testing import grpc_call, grpc_refusal
from order_svc.tests.orders.test_grpc import create_request, line
from saga_proto import order_pb2

pytestmark = pytest.mark.live


def get_orders(orders: Any, *purchase_ids: str) -> Any:
    return grpc_call(orders.GetOrders, order_pb2.GetOrdersRequest(purchase_ids=purchase_ids))


def test_orders_of_many_purchases_in_one_call(orders: Any, whey: dict[str, Any]) -> None:
    # Given an order created, one cancelled and a purchase without one
    created, cancelled, unknown = (str(uuid.uuid4()) for _ in range(3))
    grpc_call(orders.CreateOrder, create_request(created, [line(whey, 2)]))
    grpc_call(orders.CreateOrder, create_request(cancelled, [line(whey, 1)]))
    grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=cancelled))

    # when the audit asks about all three at once
    reply = get_orders(orders, created, cancelled, unknown)

    # then each order is answered as it stands, the unknown one left out
    assert {(o.order_id, o.status, o.amount) for o in reply.orders} == {
        (created, "CREATED", 2 * whey["price"]),
        (cancelled, "CANCELLED", whey["price"]),
    }


@pytest.mark.parametrize(
    "purchase_ids",
    [["not-a-uuid"], [str(uuid.uuid4()) for _ in range(MAX_BATCH_ITEMS + 1)]],
    ids=["malformed id", "too many ids"],
)
def test_bad_input_answers_invalid_argument(orders: Any, purchase_ids: list[str]) -> None:
    error = grpc_refusal(orders.GetOrders, order_pb2.GetOrdersRequest(purchase_ids=purchase_ids))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
