"""`product.ProductService` through the gRPC edge, against the running service.

The saga's inventory step: all lines or none, never below zero, idempotent on the
purchase id (a repeat, a duplicate racing with the first, a release before the
reserve), and the gRPC codes the orchestrator decides on.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from common.errors import GRPC_ERROR_CODE_METADATA
from common.grpc.errors import Outcome, classify
from common.testing import edge, edge_inventory, eventually
from saga_proto import product_pb2

pytestmark = pytest.mark.live

Maker = Callable[..., dict[str, Any]]
DEADLINE = 30.0
NEW = "a new purchase id"


def item(product_id: int, quantity: int) -> product_pb2.PurchaseItem:
    return product_pb2.PurchaseItem(product_id=product_id, quantity=quantity)


def reserve(products: Any, purchase_id: str, *lines: tuple[int, int]) -> Any:
    return products.ReserveInventory(
        product_pb2.ReserveInventoryRequest(
            purchase_id=purchase_id, items=[item(p, q) for p, q in lines]
        ),
        timeout=DEADLINE,
    )


def release(products: Any, purchase_id: str) -> Any:
    return products.ReleaseInventory(
        product_pb2.ReleaseInventoryRequest(purchase_id=purchase_id), timeout=DEADLINE
    )


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def error_code(error: grpc.RpcError) -> str | None:
    trailing: Any = error.trailing_metadata() or ()
    found = [value for key, value in trailing if key == GRPC_ERROR_CODE_METADATA]
    return str(found[0]) if found else None


def stock(products: Any, *ids: int) -> list[int]:
    """Inventory of the products as GetProducts answers it (through the cache)."""
    reply = products.GetProducts(
        product_pb2.GetProductsRequest(product_ids=list(ids)), timeout=DEADLINE
    )
    return [p.inventory for p in reply.products]


def lines(reply: Any) -> list[tuple[int, int]]:
    return [(line.product_id, line.quantity) for line in reply.reserved]


def new_purchase() -> str:
    return str(uuid.uuid4())


# ----------------------------------------------------------------- reads


def test_check_products_answers_name_price_stock_and_whether_enough(
    products: Any, make_product: Maker
) -> None:
    plenty = make_product(name="Whey 1kg", price=1390, inventory=10)
    scarce = make_product(name="Casein 2kg", price=3780, inventory=2)

    reply = products.CheckProducts(
        product_pb2.CheckProductsRequest(
            items=[item(plenty["id"], 4), item(scarce["id"], 5), item(987654321987, 1)]
        ),
        timeout=DEADLINE,
    )

    got = [(s.product_id, s.exist, s.name, s.price, s.inventory, s.enough) for s in reply.products]
    # The name and price the customer is shown: the purchase carries both to the order.
    assert got == [
        (plenty["id"], True, "Whey 1kg", 1390, 10, True),
        (scarce["id"], True, "Casein 2kg", 3780, 2, False),
        (987654321987, False, "", 0, 0, False),
    ]


def test_check_products_judges_repeated_lines_together(products: Any, make_product: Maker) -> None:
    product = make_product(inventory=5)

    reply = products.CheckProducts(
        product_pb2.CheckProductsRequest(items=[item(product["id"], 3), item(product["id"], 3)]),
        timeout=DEADLINE,
    )

    assert [s.enough for s in reply.products] == [False, False]


def test_get_products_answers_those_that_exist_in_the_order_asked(
    products: Any, make_product: Maker
) -> None:
    first, second = make_product(name="first"), make_product(name="second")

    reply = products.GetProducts(
        product_pb2.GetProductsRequest(product_ids=[second["id"], 987654321987, first["id"]]),
        timeout=DEADLINE,
    )

    assert [(p.id, p.name, p.inventory) for p in reply.products] == [
        (second["id"], "second", 10),
        (first["id"], "first", 10),
    ]
    assert reply.products[0].category_id == second["category_id"]
    assert reply.products[0].price == second["price"]


# --------------------------------------------------------------- reserve


def test_reserve_takes_every_line_and_a_repeat_takes_nothing_more(
    products: Any, make_product: Maker
) -> None:
    a, b = make_product(inventory=10), make_product(inventory=5)
    purchase = new_purchase()

    first = reserve(products, purchase, (b["id"], 5), (a["id"], 3))
    again = reserve(products, purchase, (a["id"], 3), (b["id"], 5))

    assert first.purchase_id == purchase
    assert lines(first) == sorted([(a["id"], 3), (b["id"], 5)])
    assert lines(again) == lines(first)
    assert eventually(lambda: stock(products, a["id"], b["id"]), [7, 0]) == [7, 0]
    assert eventually(lambda: edge_inventory(a["id"]), 7) == 7


def test_reserve_merges_repeated_lines_of_a_product(products: Any, make_product: Maker) -> None:
    product = make_product(inventory=10)

    reply = reserve(products, new_purchase(), (product["id"], 2), (product["id"], 3))

    assert lines(reply) == [(product["id"], 5)]
    assert eventually(lambda: stock(products, product["id"]), [5]) == [5]


def test_not_enough_stock_takes_nothing_and_answers_failed_precondition(
    products: Any, make_product: Maker
) -> None:
    a, b = make_product(inventory=10), make_product(inventory=5)

    error = refused(lambda: reserve(products, new_purchase(), (a["id"], 3), (b["id"], 6)))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(error) == "insufficient_stock"
    assert classify(error.code()) is Outcome.COMPENSATE
    assert stock(products, a["id"], b["id"]) == [10, 5]


def test_an_unknown_product_takes_nothing_and_answers_not_found(
    products: Any, make_product: Maker
) -> None:
    product = make_product(inventory=10)

    error = refused(
        lambda: reserve(products, new_purchase(), (product["id"], 1), (987654321987, 1))
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert stock(products, product["id"]) == [10]


def test_a_failed_reserve_leaves_no_trace_so_a_retry_decides_afresh(
    products: Any, staff: str, make_product: Maker
) -> None:
    product = make_product(inventory=1)
    purchase = new_purchase()
    refused(lambda: reserve(products, purchase, (product["id"], 2)))
    patched = edge("PATCH", f"/api/v1/products/{product['id']}", token=staff, json={"inventory": 2})
    assert patched.status_code == 200

    reply = reserve(products, purchase, (product["id"], 2))

    assert lines(reply) == [(product["id"], 2)]
    assert eventually(lambda: stock(products, product["id"]), [0]) == [0]


def test_a_repeat_with_other_lines_is_refused_as_a_conflict(
    products: Any, make_product: Maker
) -> None:
    product = make_product(inventory=10)
    purchase = new_purchase()
    reserve(products, purchase, (product["id"], 2))

    error = refused(lambda: reserve(products, purchase, (product["id"], 3)))

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert eventually(lambda: stock(products, product["id"]), [8]) == [8]


@pytest.mark.parametrize(
    ("purchase_id", "lines_"),
    [
        ("not-a-uuid", [(1, 1)]),
        ("", [(1, 1)]),
        (NEW, []),
        (NEW, [(1, 0)]),
        (NEW, [(1, -3)]),
        (NEW, [(0, 1)]),
        (NEW, [(1, 2**31)]),
        (NEW, [(i + 1, 1) for i in range(101)]),
    ],
)
def test_bad_input_answers_invalid_argument(
    products: Any, purchase_id: str, lines_: list[tuple[int, int]]
) -> None:
    purchase = new_purchase() if purchase_id is NEW else purchase_id

    error = refused(lambda: reserve(products, purchase, *lines_))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# --------------------------------------------------------------- release


def test_release_gives_back_exactly_what_was_reserved_once(
    products: Any, make_product: Maker
) -> None:
    a, b = make_product(inventory=10), make_product(inventory=5)
    purchase = new_purchase()
    reserve(products, purchase, (a["id"], 3), (b["id"], 5))

    first = release(products, purchase)
    again = release(products, purchase)

    assert (first.purchase_id, first.released) == (purchase, True)
    assert again.released is True
    assert eventually(lambda: stock(products, a["id"], b["id"]), [10, 5]) == [10, 5]
    assert eventually(lambda: edge_inventory(b["id"]), 5) == 5


def test_a_reserve_after_its_release_does_nothing(products: Any, make_product: Maker) -> None:
    product = make_product(inventory=10)
    purchase = new_purchase()
    reserve(products, purchase, (product["id"], 4))
    release(products, purchase)

    error = refused(lambda: reserve(products, purchase, (product["id"], 4)))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert eventually(lambda: stock(products, product["id"]), [10]) == [10]


def test_a_release_before_any_reserve_succeeds_and_the_late_reserve_does_nothing(
    products: Any, make_product: Maker
) -> None:
    product = make_product(inventory=10)
    purchase = new_purchase()

    first = release(products, purchase)
    late = refused(lambda: reserve(products, purchase, (product["id"], 4)))
    again = release(products, purchase)

    assert first.released is False
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert again.released is False
    assert stock(products, product["id"]) == [10]


# ------------------------------------------------------------ concurrency


def _all_at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run `call(i)` in `count` threads released together; answer replies or RpcErrors."""
    barrier = threading.Barrier(count)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return call(i)
        except grpc.RpcError as error:
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_a_duplicate_reserve_racing_with_itself_reserves_once(
    products: Any, make_product: Maker
) -> None:
    product = make_product(inventory=100)
    purchase = new_purchase()

    replies = _all_at_once(20, lambda _: reserve(products, purchase, (product["id"], 3)))

    assert [r for r in replies if isinstance(r, grpc.RpcError)] == []
    assert {tuple(lines(r)) for r in replies} == {((product["id"], 3),)}
    assert eventually(lambda: stock(products, product["id"]), [97]) == [97]


def test_a_duplicate_release_racing_with_itself_gives_back_once(
    products: Any, make_product: Maker
) -> None:
    product = make_product(inventory=100)
    purchase = new_purchase()
    reserve(products, purchase, (product["id"], 30))

    replies = _all_at_once(20, lambda _: release(products, purchase))

    assert [r for r in replies if isinstance(r, grpc.RpcError)] == []
    assert {r.released for r in replies} == {True}
    assert eventually(lambda: stock(products, product["id"]), [100]) == [100]


def test_concurrent_reservations_naming_products_in_any_order_all_go_through(
    products: Any, make_product: Maker
) -> None:
    a, b = make_product(inventory=100), make_product(inventory=100)
    orders = [((a["id"], 1), (b["id"], 2)), ((b["id"], 2), (a["id"], 1))]

    replies = _all_at_once(40, lambda i: reserve(products, new_purchase(), *orders[i % 2]))

    assert [r for r in replies if isinstance(r, grpc.RpcError)] == []
    assert eventually(lambda: stock(products, a["id"], b["id"]), [60, 20]) == [60, 20]


def test_200_concurrent_reservations_of_one_unit_against_50_never_oversell(
    products: Any, make_product: Maker
) -> None:
    product = make_product(inventory=50)
    purchases = [new_purchase() for _ in range(200)]

    replies = _all_at_once(200, lambda i: reserve(products, purchases[i], (product["id"], 1)))

    outcomes = Counter(r.code().name if isinstance(r, grpc.RpcError) else "OK" for r in replies)
    assert outcomes == {"OK": 50, "FAILED_PRECONDITION": 150}
    assert eventually(lambda: stock(products, product["id"]), [0]) == [0]
    assert eventually(lambda: edge_inventory(product["id"]), 0) == 0

    # And the 50 that got a unit give back exactly 50.
    won = [purchases[i] for i, r in enumerate(replies) if not isinstance(r, grpc.RpcError)]
    _all_at_once(len(won), lambda i: release(products, won[i]))
    assert eventually(lambda: stock(products, product["id"]), [50]) == [50]
