"""order.OrderService through the gRPC edge, against the running service and order_db.

These are the calls the orchestrator makes, with its duplicates and its reorderings.
Each line carries the unit price the purchase stored; the order records it as given.
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

pytestmark = pytest.mark.live

CUSTOMER = 424242


def create_request(
    purchase_id: str, items: list[tuple[int, int, int]], customer_id: int = CUSTOMER
) -> order_pb2.CreateOrderRequest:
    """A CreateOrder as the saga sends it; `items` are (product_id, quantity, unit_price)."""
    return order_pb2.CreateOrderRequest(
        purchase_id=purchase_id,
        customer_id=customer_id,
        items=[
            order_pb2.OrderItem(product_id=p, quantity=q, unit_price=price) for p, q, price in items
        ],
    )


def line(product: dict[str, Any], quantity: int) -> tuple[int, int, int]:
    """A line of `product` at its catalog price, as the purchase would have priced it."""
    return (int(product["id"]), quantity, int(product["price"]))


def test_twenty_concurrent_identical_creates_make_one_order(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any], casein: dict[str, Any]
) -> None:
    purchase = str(uuid.uuid4())
    request = create_request(purchase, [line(whey, 4), line(casein, 5)])
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
    created = grpc_call(orders.CreateOrder, create_request(purchase, [line(whey, 1)]))

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
    late = grpc_call(orders.CreateOrder, create_request(purchase, [line(whey, 1)]))

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
        create_request(purchase, [line(plenty, 101)]),
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
    # 21 distinct product ids (ORDER_MAX_LINES is 20).
    items = [(whey["id"] + n, 1, 100) for n in range(21)]
    assert_refused_and_nothing_written(
        orders,
        live_db,
        create_request(str(uuid.uuid4()), items),
        grpc.StatusCode.FAILED_PRECONDITION,
        "failed_precondition",
    )


def test_the_order_records_the_prices_it_is_given_not_the_catalog_s(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any], casein: dict[str, Any]
) -> None:
    # The saga carries the prices the customer was shown; the catalog may have changed
    # since, and the order service does not ask it.
    purchase = str(uuid.uuid4())
    shown = [(whey["id"], 2, whey["price"] + 11), (casein["id"], 1, 0)]

    reply = grpc_call(orders.CreateOrder, create_request(purchase, shown))

    assert (reply.status, reply.amount) == ("CREATED", 2 * (whey["price"] + 11))
    assert live_db.lines(purchase) == sorted((p, q, price) for p, q, price in shown)


def test_the_order_keeps_the_names_the_customer_was_shown(
    orders: Any, live_db: LiveDatabase, whey: dict[str, Any], casein: dict[str, Any]
) -> None:
    # Names travel with the saga as prices do; a purchase in flight when they were added
    # carries none, and its line keeps an empty one.
    purchase = str(uuid.uuid4())
    request = create_request(purchase, [line(whey, 1), line(casein, 1)])
    request.items[0].name = "Whey, as the customer saw it"

    reply = grpc_call(orders.CreateOrder, request)

    assert reply.status == "CREATED"
    assert live_db.line_names(purchase) == {
        whey["id"]: "Whey, as the customer saw it",
        casein["id"]: "",
    }


@pytest.mark.parametrize(
    ("purchase_id", "items", "customer_id"),
    [
        ("", [(1, 1, 100)], CUSTOMER),
        ("not-a-uuid", [(1, 1, 100)], CUSTOMER),
        ("NEW", [], CUSTOMER),
        ("NEW", [(1, 0, 100)], CUSTOMER),
        ("NEW", [(1, -1, 100)], CUSTOMER),
        ("NEW", [(0, 1, 100)], CUSTOMER),
        ("NEW", [(1, 1, -1)], CUSTOMER),
        ("NEW", [(1, 1, 100), (1, 1, 101)], CUSTOMER),
        ("NEW", [(1, 1, 2**63 - 1), (2, 1, 1)], CUSTOMER),
        ("NEW", [(1, 1, 100)], 0),
    ],
    ids=[
        "empty id",
        "non-uuid id",
        "no items",
        "zero quantity",
        "negative quantity",
        "product 0",
        "negative unit price",
        "one product at two prices",
        "total beyond int64",
        "no customer",
    ],
)
def test_bad_input_is_invalid_argument(
    orders: Any,
    live_db: LiveDatabase,
    purchase_id: str,
    items: list[tuple[int, int, int]],
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
    grpc_refusal(orders.CreateOrder, create_request(purchase, [line(whey, 101)]))

    reply = grpc_call(orders.CreateOrder, create_request(purchase, [line(whey, 1)]))

    assert (reply.status, reply.amount) == ("CREATED", whey["price"])


def test_cancel_of_a_malformed_id_is_invalid_argument(orders: Any) -> None:
    error = grpc_refusal(orders.CancelOrder, order_pb2.CancelOrderRequest(purchase_id="nope"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
