"""order.OrderService through the gRPC edge, against the running service and order_db.

These are the calls the orchestrator makes, with its duplicates and its reorderings.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from common.testing import grpc_call, grpc_refusal
from order_svc.tests.conftest import LiveDatabase
from saga_proto import order_pb2, product_pb2

CUSTOMER = 424242


def create_request(
    purchase_id: str, items: list[tuple[int, int]], customer_id: int = CUSTOMER
) -> order_pb2.CreateOrderRequest:
    return order_pb2.CreateOrderRequest(
        purchase_id=purchase_id,
        customer_id=customer_id,
        items=[order_pb2.OrderItem(product_id=p, quantity=q) for p, q in items],
    )


def test_twenty_concurrent_identical_creates_make_one_order(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any], casein: dict[str, Any]
) -> None:
    purchase = str(uuid.uuid4())
    request = create_request(purchase, [(whey["id"], 4), (casein["id"], 5)])
    start = threading.Barrier(20)

    def create() -> order_pb2.OrderReply:
        start.wait()
        return grpc_call(orders.CreateOrder, request)

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(lambda _: create(), range(20)))

    expected = 4 * whey["price"] + 5 * casein["price"]
    assert {(r.order_id, r.status, r.amount) for r in replies} == {(purchase, "CREATED", expected)}
    assert live_db.order_count(purchase) == 1
    assert live_db.line_count(purchase) == 2


def test_cancel_twice_changes_the_order_once(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any]
) -> None:
    purchase = str(uuid.uuid4())
    created = grpc_call(orders.CreateOrder, create_request(purchase, [(whey["id"], 1)]))

    first = grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=purchase))
    second = grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=purchase))

    assert (first.order_id, first.status, first.amount) == (purchase, "CANCELLED", created.amount)
    assert (second.status, second.amount) == ("CANCELLED", created.amount)
    assert live_db.order_status(purchase) == "CANCELLED"
    assert (live_db.order_count(purchase), live_db.line_count(purchase)) == (1, 1)


def test_a_cancel_before_its_create_makes_the_late_create_do_nothing(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any]
) -> None:
    purchase = str(uuid.uuid4())

    cancelled = grpc_call(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id=purchase))
    late = grpc_call(orders.CreateOrder, create_request(purchase, [(whey["id"], 1)]))

    assert (cancelled.order_id, cancelled.status, cancelled.amount) == (purchase, "CANCELLED", 0)
    assert (late.order_id, late.status, late.amount) == (purchase, "CANCELLED", 0)
    assert live_db.order_status(purchase) == "CANCELLED"
    assert live_db.line_count(purchase) == 0


# ------------------------------------------------------------------ refusals


def assert_refused_and_nothing_written(
    orders: Any,
    live_db: LiveDatabase,
    request: order_pb2.CreateOrderRequest,
    code: grpc.StatusCode,
    error_code: str,
) -> None:
    error = grpc_refusal(orders.CreateOrder, request)
    assert error.code() is code, error.details()
    metadata: Any = error.trailing_metadata() or ()
    assert dict(metadata)["error-code"] == error_code
    with contextlib.suppress(ValueError):  # an id that is not a UUID cannot have a row
        assert live_db.order_count(str(uuid.UUID(request.purchase_id))) == 0


def test_more_units_of_a_product_than_the_limit_fail_the_step_while_stock_would_allow_them(
    orders: Any, products: Any, live_db: LiveDatabase, make_product: Any
) -> None:
    # The documented trigger (docs/business-rules.md): 101 units of one product, which
    # the purchase service lets through (it allows up to 1000).
    plenty = make_product(inventory=5000)
    purchase = str(uuid.uuid4())

    assert_refused_and_nothing_written(
        orders,
        live_db,
        create_request(purchase, [(plenty["id"], 101)]),
        grpc.StatusCode.FAILED_PRECONDITION,
        "failed_precondition",
    )
    # The inventory step before it would have succeeded, so it is the order step that fails.
    reserved = grpc_call(
        products.ReserveInventory,
        product_pb2.ReserveInventoryRequest(
            purchase_id=purchase,
            items=[product_pb2.PurchaseItem(product_id=plenty["id"], quantity=101)],
        ),
    )
    assert [(i.product_id, i.quantity) for i in reserved.reserved] == [(plenty["id"], 101)]
    grpc_call(products.ReleaseInventory, product_pb2.ReleaseInventoryRequest(purchase_id=purchase))


def test_more_products_than_the_limit_fail_the_step(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any]
) -> None:
    # 21 distinct product ids (ORDER_MAX_LINES is 20): refused before any product lookup.
    items = [(whey["id"] + n, 1) for n in range(21)]
    assert_refused_and_nothing_written(
        orders,
        live_db,
        create_request(str(uuid.uuid4()), items),
        grpc.StatusCode.FAILED_PRECONDITION,
        "failed_precondition",
    )


def test_an_unknown_product_fails_the_step_with_not_found(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any]
) -> None:
    assert_refused_and_nothing_written(
        orders,
        live_db,
        create_request(str(uuid.uuid4()), [(whey["id"], 1), (2**62 + 17, 1)]),
        grpc.StatusCode.NOT_FOUND,
        "not_found",
    )


@pytest.mark.parametrize(
    ("purchase_id", "items", "customer_id"),
    [
        ("", [(1, 1)], CUSTOMER),
        ("not-a-uuid", [(1, 1)], CUSTOMER),
        ("NEW", [], CUSTOMER),
        ("NEW", [(1, 0)], CUSTOMER),
        ("NEW", [(1, -1)], CUSTOMER),
        ("NEW", [(0, 1)], CUSTOMER),
        ("NEW", [(1, 1)], 0),
    ],
    ids=[
        "empty id",
        "non-uuid id",
        "no items",
        "zero quantity",
        "negative quantity",
        "product 0",
        "no customer",
    ],
)
def test_bad_input_is_invalid_argument(
    orders: Any,
    live_db: LiveDatabase,
    purchase_id: str,
    items: list[tuple[int, int]],
    customer_id: int,
) -> None:
    purchase_id = str(uuid.uuid4()) if purchase_id == "NEW" else purchase_id
    assert_refused_and_nothing_written(
        orders,
        live_db,
        create_request(purchase_id, items, customer_id),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid_input",
    )


def test_a_refused_purchase_id_stays_free_for_a_valid_create(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any]
) -> None:
    purchase = str(uuid.uuid4())
    grpc_refusal(orders.CreateOrder, create_request(purchase, [(whey["id"], 101)]))

    reply = grpc_call(orders.CreateOrder, create_request(purchase, [(whey["id"], 1)]))

    assert (reply.status, reply.amount) == ("CREATED", whey["price"])


def test_cancel_of_a_malformed_id_is_invalid_argument(orders: Any) -> None:
    error = grpc_refusal(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id="nope"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
