"""ReserveInventoryBatch and ReleaseInventoryBatch in-process, against the test database.

A batch answers each item as its single call would have (the same status, the same
effect on stock), in request order, in one transaction. test_grpc.py drives the single
calls through the edge; the running service serves the batch calls once restarted.
"""

from __future__ import annotations

import contextlib
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import grpc
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.errors import GRPC_ERROR_CODE_METADATA
from common.ids import parse_uuid
from product_svc.catalog import services
from product_svc.catalog.grpc import ProductServicer
from product_svc.catalog.models import Product, Reservation
from saga_proto import product_pb2

pytestmark = pytest.mark.django_db

UNKNOWN = 987654321987
OK = 0
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS.value[0]

Status = tuple[int, str, str]
"""(code, message, error_code) of one call, as a batch result states it."""


def _by_purchase_id(request: product_pb2.ReserveInventoryRequest) -> str:
    """The order a batch handles its items in: purchase id (a malformed one first)."""
    parsed = parse_uuid(request.purchase_id)
    return "" if parsed is None else str(parsed)


class Rollback(Exception):
    pass


def _product(inventory: int) -> Product:
    category = services.category_create(name=f"batch-{uuid.uuid4().hex[:10]}")
    return services.product_create(
        category_id=category.id, name="p", price=100, inventory=inventory
    )


def _stock(*products: Product) -> list[int]:
    return [Product.objects.get(id=p.id).inventory for p in products]


def reserve(purchase_id: str, *lines: tuple[int, int]) -> product_pb2.ReserveInventoryRequest:
    return product_pb2.ReserveInventoryRequest(
        purchase_id=purchase_id,
        items=[product_pb2.PurchaseItem(product_id=p, quantity=q) for p, q in lines],
    )


def release(purchase_id: str) -> product_pb2.ReleaseInventoryRequest:
    return product_pb2.ReleaseInventoryRequest(purchase_id=purchase_id)


def reserve_batch(*requests: product_pb2.ReserveInventoryRequest) -> list[Status]:
    context: Any = None  # a batch that is not refused whole never touches its context
    reply = ProductServicer().ReserveInventoryBatch(
        product_pb2.ReserveInventoryBatchRequest(items=requests), context
    )
    return [(r.code, r.message, r.error_code) for r in reply.results]


def release_batch(*requests: product_pb2.ReleaseInventoryRequest) -> list[Status]:
    context: Any = None
    reply = ProductServicer().ReleaseInventoryBatch(
        product_pb2.ReleaseInventoryBatchRequest(items=requests), context
    )
    return [(r.code, r.message, r.error_code) for r in reply.results]


def single(call: Callable[[Any, Any], Any], request: Any) -> Status:
    """The status the single servicer method ends `request` with."""
    context = mock.Mock()
    context.abort.side_effect = Rollback
    try:
        call(request, context)
    except Rollback:
        code, message = context.abort.call_args.args
        trailing = dict(context.set_trailing_metadata.call_args.args[0])
        return (code.value[0], message, trailing[GRPC_ERROR_CODE_METADATA])
    return (OK, "", "")


def new_purchase() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------- reserve


def test_a_batch_answers_each_reserve_in_request_order_as_its_single_call_would() -> None:
    a, b = _product(inventory=5), _product(inventory=1)
    first, second, third = new_purchase(), new_purchase(), new_purchase()

    results = reserve_batch(
        reserve(first, (a.id, 2)),
        reserve(second, (b.id, 2)),
        reserve(third, (UNKNOWN, 1)),
        reserve("not-a-uuid", (a.id, 1)),
        reserve(new_purchase(), (a.id, 3)),
    )

    assert [(code, error_code) for code, _message, error_code in results] == [
        (OK, ""),
        (FAILED_PRECONDITION, "insufficient_stock"),
        (NOT_FOUND, "not_found"),
        (INVALID_ARGUMENT, "invalid_input"),
        (OK, ""),
    ]
    assert results[1][1] == f"Product {b.id} has 1 in stock, 2 wanted."
    assert _stock(a, b) == [0, 1]
    # A refused item leaves no trace: its purchase id is free for a retry.
    assert not Reservation.objects.filter(purchase_id__in=[second, third]).exists()
    assert Reservation.objects.get(purchase_id=first).state == Reservation.State.RESERVED


def test_the_same_purchase_twice_in_a_batch_and_a_repeated_batch_reserve_once() -> None:
    product = _product(inventory=10)
    purchase = new_purchase()
    batch = [reserve(purchase, (product.id, 3)), reserve(purchase, (product.id, 3))]

    first = reserve_batch(*batch)
    again = reserve_batch(*batch)

    assert first == again == [(OK, "", ""), (OK, "", "")]
    assert _stock(product) == [7]


def test_a_repeat_with_other_lines_in_the_same_batch_is_a_conflict() -> None:
    product = _product(inventory=10)
    purchase = new_purchase()

    results = reserve_batch(reserve(purchase, (product.id, 3)), reserve(purchase, (product.id, 4)))

    assert [(code, error_code) for code, _, error_code in results] == [
        (OK, ""),
        (ALREADY_EXISTS, "conflict"),
    ]
    assert _stock(product) == [7]


def test_a_batch_has_the_effect_and_answers_of_its_single_calls_one_by_one() -> None:
    # One by one in the order the batch handles its items: by purchase id (the order in
    # which every batch takes purchase-keyed rows), repeats of a purchase as they came.
    a, b = _product(inventory=5), _product(inventory=1)
    p1, p2, p3 = new_purchase(), new_purchase(), new_purchase()
    requests = [
        reserve(p1, (a.id, 2)),
        reserve(p2, (b.id, 1)),
        reserve(p3, (a.id, 3), (b.id, 1)),  # competes with p2 for b's last unit
        reserve(p1, (a.id, 2)),
        reserve(p1, (a.id, 1)),
        reserve(new_purchase(), (UNKNOWN, 1)),
        reserve(new_purchase()),
    ]
    handled = sorted(range(len(requests)), key=lambda i: _by_purchase_id(requests[i]))
    servicer = ProductServicer()
    one_by_one: dict[int, Status] = {}
    with contextlib.suppress(Rollback), transaction.atomic():
        for i in handled:
            one_by_one[i] = single(servicer.ReserveInventory, requests[i])
        stock_one_by_one = _stock(a, b)
        raise Rollback  # the same starting stock for the batch

    assert _stock(a, b) == [5, 1]
    assert reserve_batch(*requests) == [one_by_one[i] for i in range(len(requests))]
    assert _stock(a, b) == stock_one_by_one
    assert sorted(code for code, _, _ in one_by_one.values()) == sorted(
        [OK, OK, OK, ALREADY_EXISTS, NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION]
    )


def test_items_competing_for_the_last_units_are_served_in_purchase_id_order() -> None:
    product = _product(inventory=1)
    low, high = sorted([uuid.uuid4(), uuid.uuid4()])

    results = reserve_batch(reserve(str(high), (product.id, 1)), reserve(str(low), (product.id, 1)))

    assert [(code, error_code) for code, _, error_code in results] == [
        (FAILED_PRECONDITION, "insufficient_stock"),
        (OK, ""),
    ]


def test_many_items_competing_for_the_last_units_are_served_in_purchase_id_order() -> None:
    scarce, plenty = _product(inventory=3), _product(inventory=100)
    purchases = sorted(uuid.uuid4() for _ in range(8))
    shuffled = purchases[:]
    random.Random(15).shuffle(shuffled)

    results = dict(
        zip(
            shuffled,
            reserve_batch(*(reserve(str(p), (plenty.id, 1), (scarce.id, 1)) for p in shuffled)),
            strict=True,
        )
    )

    assert [results[p][0] for p in purchases] == [OK] * 3 + [FAILED_PRECONDITION] * 5
    assert {results[p][1] for p in purchases[3:]} == {
        f"Product {scarce.id} has 0 in stock, 1 wanted."
    }
    # All or nothing per item: the refused ones took nothing of the plentiful product.
    assert _stock(scarce, plenty) == [0, 97]
    assert set(
        Reservation.objects.filter(purchase_id__in=purchases).values_list("purchase_id", flat=True)
    ) == set(purchases[:3])


def _statements(batch: Callable[[], object]) -> list[str]:
    """The SQL statements `batch()` sends (savepoints of the test's transaction left out)."""
    with CaptureQueriesContext(connection) as queries:
        batch()
    return [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]


def _mixed_reserves(size: int) -> list[product_pb2.ReserveInventoryRequest]:
    """`size` reserves cycling through every case a batch decides: new, repeat, other
    lines, after a release, not enough stock, unknown product, bad input."""
    plenty, empty = _product(inventory=10_000), _product(inventory=0)
    reserved, released = new_purchase(), new_purchase()
    reserve_batch(reserve(reserved, (plenty.id, 1)), reserve(released, (plenty.id, 1)))
    release_batch(release(released))
    cases = [
        lambda: reserve(new_purchase(), (plenty.id, 1)),
        lambda: reserve(reserved, (plenty.id, 1)),
        lambda: reserve(reserved, (plenty.id, 2)),
        lambda: reserve(released, (plenty.id, 1)),
        lambda: reserve(new_purchase(), (plenty.id, 1), (empty.id, 1)),
        lambda: reserve(new_purchase(), (UNKNOWN, 1)),
        lambda: reserve("nope", (plenty.id, 1)),
    ]
    return [cases[i % len(cases)]() for i in range(size)]


def test_a_reserve_batch_costs_the_same_statements_for_50_items_as_for_2() -> None:
    a, b = _product(inventory=10_000), _product(inventory=10_000)

    def wave(size: int) -> list[str]:
        requests = [reserve(new_purchase(), (a.id, 1), (b.id, 2)) for _ in range(size)]
        return _statements(lambda: reserve_batch(*requests))

    two, fifty = wave(2), wave(50)

    assert len(fifty) == len(two) <= 8
    assert _stock(a, b) == [10_000 - 52, 10_000 - 104]


def test_a_reserve_batch_of_every_case_costs_a_constant_number_of_statements() -> None:
    small, large = _mixed_reserves(7), _mixed_reserves(50)

    statements_small = _statements(lambda: reserve_batch(*small))
    statements_large = _statements(lambda: reserve_batch(*large))

    assert len(statements_large) == len(statements_small) <= 8


def test_a_release_batch_costs_the_same_statements_for_50_items_as_for_2() -> None:
    product = _product(inventory=10_000)

    def wave(size: int) -> list[str]:
        reserved = [new_purchase() for _ in range(size)]
        reserve_batch(*(reserve(p, (product.id, 1)) for p in reserved))
        never = [new_purchase() for _ in range(size)]  # tombstones
        requests = [release(p) for pair in zip(reserved, never, strict=True) for p in pair]
        return _statements(lambda: release_batch(*requests))

    two, fifty = wave(2), wave(50)

    assert len(fifty) == len(two) <= 8
    assert _stock(product) == [10_000]


def _lock_order(sql: list[str]) -> tuple[int, int, int]:
    """Where the reservation rows are claimed, the existing ones locked, and the products
    locked (-1: not sent)."""

    def first(marker: str) -> int:
        return next((i for i, s in enumerate(sql) if marker in s), -1)

    return first("ON CONFLICT"), first("FOR UPDATE OF"), first("FOR NO KEY UPDATE")


def test_a_batch_takes_its_reservation_rows_then_every_product_in_id_order() -> None:
    # The order of every inventory write, single or batch: no two wait in opposite orders.
    low, high = _product(inventory=10), _product(inventory=10)
    repeated = new_purchase()
    reserve_batch(reserve(repeated, (low.id, 1)))

    with CaptureQueriesContext(connection) as queries:
        reserve_batch(
            reserve(new_purchase(), (high.id, 1)),
            reserve(repeated, (low.id, 1)),
            reserve(new_purchase(), (low.id, 1)),
        )

    sql = [q["sql"] for q in queries]
    claim, existing, lock = _lock_order(sql)
    assert 0 <= claim < existing < lock
    assert "ORDER BY" in sql[lock] and f"IN ({low.id}, {high.id})" in sql[lock]


def test_a_batch_larger_than_the_cap_is_refused_whole() -> None:
    product = _product(inventory=1000)
    context = mock.Mock()
    context.abort.side_effect = Rollback

    with pytest.raises(Rollback):
        ProductServicer().ReserveInventoryBatch(
            product_pb2.ReserveInventoryBatchRequest(
                items=[reserve(new_purchase(), (product.id, 1)) for _ in range(501)]
            ),
            context,
        )

    assert context.abort.call_args.args[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert _stock(product) == [1000]


# --------------------------------------------------------------- release


def test_a_release_batch_after_a_reserve_batch_gives_back_exactly_once() -> None:
    a, b = _product(inventory=10), _product(inventory=5)
    reserved, never = new_purchase(), new_purchase()
    reserve_batch(reserve(reserved, (a.id, 3), (b.id, 5)))

    first = release_batch(release(reserved), release(never), release("nope"))
    again = release_batch(release(reserved), release(never))

    assert [(code, error_code) for code, _, error_code in first] == [
        (OK, ""),
        (OK, ""),
        (INVALID_ARGUMENT, "invalid_input"),
    ]
    assert again == first[:2]
    assert _stock(a, b) == [10, 5]
    # A release before any reserve leaves a tombstone: the late reserve does nothing.
    late = reserve_batch(reserve(never, (a.id, 1)))
    assert [(code, error_code) for code, _, error_code in late] == [
        (FAILED_PRECONDITION, "failed_precondition")
    ]
    assert _stock(a, b) == [10, 5]


def test_a_release_batch_answers_released_as_single_calls_do() -> None:
    product = _product(inventory=10)
    reserved, never = new_purchase(), new_purchase()
    reserve_batch(reserve(reserved, (product.id, 4)))

    reply = ProductServicer().ReleaseInventoryBatch(
        product_pb2.ReleaseInventoryBatchRequest(
            items=[release(never), release(reserved), release(reserved)]
        ),
        None,  # type: ignore[arg-type]
    )

    assert [r.code for r in reply.results] == [OK, OK, OK]
    assert _stock(product) == [10]
    assert set(
        Reservation.objects.filter(purchase_id__in=[reserved, never]).values_list(
            "state", flat=True
        )
    ) == {Reservation.State.RELEASED}


def test_a_release_batch_takes_its_reservation_rows_then_the_products_in_id_order() -> None:
    low, high = _product(inventory=10), _product(inventory=10)
    first, second = new_purchase(), new_purchase()
    reserve_batch(reserve(first, (high.id, 1)), reserve(second, (low.id, 1)))

    with CaptureQueriesContext(connection) as queries:
        release_batch(release(first), release(second), release(new_purchase()))

    sql = [q["sql"] for q in queries]
    claim, existing, lock = _lock_order(sql)
    assert 0 <= claim < existing < lock
    assert "ORDER BY" in sql[lock] and f"IN ({low.id}, {high.id})" in sql[lock]
    assert _stock(low, high) == [10, 10]


# ------------------------------------------------------------ concurrency


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_naming_products_in_any_order_all_go_through() -> None:
    # Without the up-front lock in id order, these batches deadlock on the products.
    products = [_product(inventory=1000) for _ in range(4)]
    batches = 12
    start = threading.Barrier(batches)

    def run(seed: int) -> list[Status]:
        shuffled = random.Random(seed)
        requests = []
        for _ in range(20):
            chosen = shuffled.sample(products, 2)
            requests.append(reserve(new_purchase(), *((p.id, 1) for p in chosen)))
        start.wait()
        try:
            return reserve_batch(*requests)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=batches) as pool:
        replies = list(pool.map(run, range(batches)))

    assert {status for reply in replies for status in reply} == {(OK, "", "")}
    assert sum(_stock(*products)) == 4 * 1000 - batches * 20 * 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_release_batches_of_the_same_purchases_in_any_order_all_go_through() -> None:
    # Duplicates racing (a retried wave) before any reserve: each claims a tombstone per
    # purchase. Handled in request order, two batches would wait for each other's.
    purchases = [new_purchase() for _ in range(30)]
    batches = 8
    start = threading.Barrier(batches)

    def run(seed: int) -> list[Status]:
        shuffled = purchases[:]
        random.Random(seed).shuffle(shuffled)
        start.wait()
        try:
            return release_batch(*(release(p) for p in shuffled))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=batches) as pool:
        replies = list(pool.map(run, range(batches)))

    assert {status for reply in replies for status in reply} == {(OK, "", "")}
    states = Reservation.objects.filter(purchase_id__in=purchases).values_list("state", flat=True)
    assert sorted(states) == [Reservation.State.RELEASED] * 30
