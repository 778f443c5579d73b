"""CreateOrderBatch and CancelOrderBatch in-process, against the test database: a batch answers
each item as its single call would have (the same status and reply, the same rows), in
request order, in one transaction (compared through common.grpc.testing).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any
from unittest import mock

import pytest

from common.grpc.testing import (
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    OK,
    Outcome,
    as_single_calls,
    batch_outcomes,
    in_request_order,
    new_purchase,
    shuffled_at_once,
    single_outcome,
    statements,
    statuses,
)
from order_svc.orders import batches
from order_svc.orders.grpc import OrderServicer
from order_svc.orders.models import Order, OrderLine
from saga_proto import order_pb2

pytestmark = pytest.mark.django_db

CUSTOMER = 7
WHEY, CASEIN = 101, 102


def create(
    purchase_id: str,
    *lines: tuple[int, int, int],
    customer_id: int = CUSTOMER,
    name: str = "",
) -> order_pb2.CreateOrderRequest:
    """A CreateOrder as the saga sends it; `lines` are (product_id, quantity, unit_price),
    each under `name`."""
    return order_pb2.CreateOrderRequest(
        purchase_id=purchase_id,
        customer_id=customer_id,
        items=[
            order_pb2.OrderItem(product_id=p, quantity=q, unit_price=u, name=name)
            for p, q, u in lines
        ],
    )


def cancel(purchase_id: str) -> order_pb2.CancelOrderRequest:
    return order_pb2.CancelOrderRequest(purchase_id=purchase_id)


def _reply(reply: order_pb2.OrderReply) -> tuple[str, str, int]:
    return (reply.order_id, reply.status, reply.amount)


def create_batch(*requests: order_pb2.CreateOrderRequest) -> list[Outcome]:
    context: Any = None  # a batch that is not refused whole never touches its context
    batch = order_pb2.CreateOrderBatchRequest(items=requests)
    return batch_outcomes(OrderServicer().CreateOrderBatch(batch, context), _reply)


def cancel_batch(*requests: order_pb2.CancelOrderRequest) -> list[Outcome]:
    context: Any = None
    batch = order_pb2.CancelOrderBatchRequest(items=requests)
    return batch_outcomes(OrderServicer().CancelOrderBatch(batch, context), _reply)


def single_create(request: order_pb2.CreateOrderRequest) -> Outcome:
    return single_outcome(OrderServicer().CreateOrder, request, _reply)


def single_cancel(request: order_pb2.CancelOrderRequest) -> Outcome:
    return single_outcome(OrderServicer().CancelOrder, request, _reply)


def rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every order and every line, comparable."""
    return (
        sorted(Order.objects.values_list("id", "customer_id", "status", "amount")),
        sorted(
            OrderLine.objects.values_list(
                "order_id", "product_id", "name", "unit_price", "quantity", "line_total"
            )
        ),
    )


# ------------------------------------------------------------------ create


def test_a_batch_answers_each_create_in_request_order_as_its_single_call_would() -> None:
    first, too_many, second = new_purchase(), new_purchase(), new_purchase()

    outcomes = create_batch(
        create(first, (WHEY, 2, 1390)),
        create(too_many, (WHEY, 101, 1390)),
        create("not-a-uuid", (WHEY, 1, 1390)),
        create(second, (WHEY, 1, 1390), (CASEIN, 1, 3780)),
    )

    assert statuses(outcomes) == [
        (OK, ""),
        (FAILED_PRECONDITION, "failed_precondition"),
        (INVALID_ARGUMENT, "invalid_input"),
        (OK, ""),
    ]
    assert outcomes[0][3] == (first, "CREATED", 2 * 1390)
    assert outcomes[3][3] == (second, "CREATED", 1390 + 3780)
    assert outcomes[1][1].startswith("An order may have at most 100 units of one product")
    # A refused item writes nothing: its purchase id stays free for a valid create.
    assert set(Order.objects.values_list("id", flat=True)) == {
        uuid.UUID(first),
        uuid.UUID(second),
    }
    assert OrderLine.objects.count() == 3


def test_the_same_purchase_twice_in_a_batch_and_a_repeated_batch_create_one_order() -> None:
    purchase = new_purchase()
    batch = [create(purchase, (WHEY, 2, 1390)), create(purchase, (WHEY, 2, 1390))]

    first = create_batch(*batch)
    again = create_batch(*batch)

    assert first == again == [(OK, "", "", (purchase, "CREATED", 2780))] * 2
    assert Order.objects.count() == 1
    assert OrderLine.objects.count() == 1


def test_a_batch_has_the_effect_and_answers_of_its_single_calls_one_by_one() -> None:
    p1, p2 = new_purchase(), new_purchase()
    requests = [
        create(p2, (WHEY, 1, 1390)),
        create(p1, (CASEIN, 3, 3780), (WHEY, 1, 1390)),
        create(p1, (WHEY, 1, 1390), (CASEIN, 3, 3780)),  # the same lines: a repeat
        create(p2, (WHEY, 2, 1390)),  # other lines: a conflict
        create(new_purchase(), *((n, 1, 10) for n in range(1, 22))),  # 21 products
        create(new_purchase(), (WHEY, 1, 1390), customer_id=0),
        create(new_purchase()),
    ]

    def rows() -> list[tuple[Any, ...]]:
        return sorted(Order.objects.values_list("id", "customer_id", "status", "amount"))

    # (rolled back: the batch starts from the same empty table)
    one_by_one, rows_one_by_one = in_request_order(requests, single_create, rows)

    assert rows() == []
    assert create_batch(*requests) == one_by_one
    assert statuses(one_by_one) == [
        (OK, ""),
        (OK, ""),
        (OK, ""),
        (ALREADY_EXISTS, "conflict"),
        (FAILED_PRECONDITION, "failed_precondition"),
        (INVALID_ARGUMENT, "invalid_input"),
        (INVALID_ARGUMENT, "invalid_input"),
    ]
    assert rows() == rows_one_by_one


def test_only_the_accepted_items_invalidate_their_cached_order_after_the_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        create_batch(
            create(new_purchase(), (WHEY, 1, 1390)),
            create(new_purchase(), (WHEY, 101, 1390)),
            create(new_purchase(), (CASEIN, 1, 3780)),
        )

    assert len(callbacks) == 2


def test_a_mixed_batch_over_existing_orders_answers_and_writes_as_its_single_calls() -> None:
    created, cancelled, tombstone = new_purchase(), new_purchase(), new_purchase()
    fresh, limited = new_purchase(), new_purchase()
    create_batch(
        create(created, (WHEY, 2, 1390), (CASEIN, 1, 3780)), create(cancelled, (WHEY, 1, 1390))
    )
    cancel_batch(cancel(cancelled), cancel(tombstone))
    requests = [
        create(created, (CASEIN, 1, 3780), (WHEY, 2, 1390), name="other name"),  # a repeat
        create(created, (WHEY, 2, 1390), (CASEIN, 1, 3780), customer_id=8),  # a conflict
        create(created, (WHEY, 3, 1390), (CASEIN, 1, 3780)),  # a conflict: other lines
        create(cancelled, (WHEY, 1, 1390)),  # after its cancel: the cancelled order
        create(tombstone, (WHEY, 5, 10)),  # after a cancel that came first: the tombstone
        create(fresh, (WHEY, 1, 1390), (WHEY, 2, 1390), name="x" * 300),  # merged, cut
        create(fresh, (WHEY, 3, 1390)),  # the order just created, repeated
        create(fresh, (WHEY, 3, 1391)),  # ... and at another price: a conflict
        create(limited, (WHEY, 101, 1)),  # over a limit: refused, writes nothing
        create(limited, (WHEY, 100, 1)),  # then within it: created
        create(limited, (WHEY, 1, -1)),  # bad input is refused before the repeat
        create("", (WHEY, 1, 1)),
    ]

    one_by_one, rows_one_by_one = as_single_calls(requests, single_create, rows)

    assert create_batch(*requests) == one_by_one
    assert rows() == rows_one_by_one
    assert statuses(one_by_one) == [
        (OK, ""),
        (ALREADY_EXISTS, "conflict"),
        (ALREADY_EXISTS, "conflict"),
        (OK, ""),
        (OK, ""),
        (OK, ""),
        (OK, ""),
        (ALREADY_EXISTS, "conflict"),
        (FAILED_PRECONDITION, "failed_precondition"),
        (OK, ""),
        (INVALID_ARGUMENT, "invalid_input"),
        (INVALID_ARGUMENT, "invalid_input"),
    ]
    assert [reply[1] for *_, reply in one_by_one if reply] == [
        "CREATED",
        "CANCELLED",
        "CANCELLED",
        "CREATED",
        "CREATED",
        "CREATED",
    ]


def test_a_create_that_loses_its_claim_to_a_concurrent_call_answers_what_that_call_left() -> None:
    # Given orders created after the batch read (found nothing) and before it claimed
    same, other = new_purchase(), new_purchase()
    create_batch(create(same, (WHEY, 1, 1390)), create(other, (WHEY, 1, 1390)))
    found = batches._CREATE.find
    reads: list[int] = []

    def read_too_early(order_ids: Any) -> Any:
        reads.append(1)
        return {} if len(reads) == 1 else found(order_ids)

    # When the batch creates them again (the same lines, then other ones) and a new one
    with mock.patch.object(
        batches, "_CREATE", dataclasses.replace(batches._CREATE, find=read_too_early)
    ):
        outcomes = create_batch(
            create(same, (WHEY, 1, 1390)),
            create(other, (WHEY, 2, 1390)),
            create(same, (WHEY, 1, 1390)),
        )

    # Then it answers them as repeats of what is there, and writes nothing more
    assert statuses(outcomes) == [(OK, ""), (ALREADY_EXISTS, "conflict"), (OK, "")]
    assert outcomes[0][3] == outcomes[2][3] == (same, "CREATED", 1390)
    assert len(reads) == 2
    assert OrderLine.objects.count() == 2


# ------------------------------------------------------------------ cancel


def test_a_cancel_batch_after_a_create_batch_cancels_once_and_leaves_tombstones() -> None:
    created, never = new_purchase(), new_purchase()
    create_batch(create(created, (WHEY, 2, 1390)))

    first = cancel_batch(cancel(created), cancel(never), cancel("nope"))
    again = cancel_batch(cancel(created), cancel(never))

    assert first == [
        (OK, "", "", (created, "CANCELLED", 2780)),
        (OK, "", "", (never, "CANCELLED", 0)),
        (INVALID_ARGUMENT, "purchase_id must be a UUID, not 'nope'.", "invalid_input", None),
    ]
    assert again == first[:2]
    # The late create of a cancelled purchase answers the cancelled order, creating nothing.
    assert create_batch(create(never, (WHEY, 1, 1390))) == [(OK, "", "", (never, "CANCELLED", 0))]
    assert OrderLine.objects.filter(order_id=never).count() == 0


def test_a_mixed_cancel_batch_answers_and_writes_as_its_single_calls() -> None:
    created, cancelled, tombstone, never = (new_purchase() for _ in range(4))
    create_batch(create(created, (WHEY, 2, 1390)), create(cancelled, (CASEIN, 1, 3780)))
    cancel_batch(cancel(cancelled), cancel(tombstone))
    requests = [
        cancel(created),
        cancel(never),
        cancel(cancelled),
        cancel(created),
        cancel(tombstone),
        cancel("nope"),
        cancel(never),
    ]

    one_by_one, rows_one_by_one = as_single_calls(requests, single_cancel, rows)

    assert cancel_batch(*requests) == one_by_one
    assert rows() == rows_one_by_one
    assert one_by_one[0][3] == (created, "CANCELLED", 2780)


def test_only_the_orders_a_cancel_batch_changes_invalidate_their_cache_after_the_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    created, cancelled, never = new_purchase(), new_purchase(), new_purchase()
    create_batch(create(created, (WHEY, 2, 1390)), create(cancelled, (CASEIN, 1, 3780)))
    cancel_batch(cancel(cancelled))

    with django_capture_on_commit_callbacks() as callbacks:
        cancel_batch(cancel(created), cancel(cancelled), cancel(never), cancel(never))

    assert len(callbacks) == 2  # the cancel and the tombstone; the repeats change nothing


# ------------------------------------------------------------ statements


@pytest.mark.parametrize("size", [2, 50])
def test_a_batch_costs_a_constant_number_of_statements(size: int) -> None:
    # Given purchases with an order, cancelled ones, and some never seen
    created = [new_purchase() for _ in range(size)]
    gone = [new_purchase() for _ in range(size)]
    create_batch(*(create(p, (WHEY, 1, 1390)) for p in gone))
    cancel_batch(*(cancel(p) for p in gone))

    # When batches of `size` items create, repeat, cancel and record tombstones
    counts = {
        "create": statements(
            lambda: create_batch(*(create(p, (WHEY, 1, 1390), (CASEIN, 2, 3780)) for p in created))
        ),
        "repeat": statements(
            lambda: create_batch(*(create(p, (WHEY, 1, 1390), (CASEIN, 2, 3780)) for p in created))
        ),
        "after cancel": statements(lambda: create_batch(*(create(p, (WHEY, 1, 1)) for p in gone))),
        "cancel": statements(lambda: cancel_batch(*(cancel(p) for p in created))),
        "tombstone": statements(
            lambda: cancel_batch(*(cancel(new_purchase()) for _ in range(size)))
        ),
    }

    # Then each costs the same whatever its size (a savepoint and its release included,
    # as the test runs in a transaction): read, claim, lines; claim, lock, update
    assert counts == {
        "create": 5,
        "repeat": 3,
        "after cancel": 3,
        "cancel": 5,
        "tombstone": 3,
    }


# ------------------------------------------------------------ concurrency


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_the_same_purchases_in_any_order_create_each_once() -> None:
    # Duplicates racing (a retried wave): in request order, two batches would each claim
    # a purchase the other needs next and wait for each other's commit.
    purchases = [new_purchase() for _ in range(30)]

    def run(_seed: int, shuffled: list[str]) -> list[Outcome]:
        return create_batch(*(create(p, (WHEY, 1, 1390)) for p in shuffled))

    replies = shuffled_at_once(8, purchases, run)

    seen = {(code, got[1] if got else None) for reply in replies for code, _, _, got in reply}
    assert seen == {(OK, "CREATED")}
    assert Order.objects.filter(id__in=purchases).count() == 30
    assert OrderLine.objects.filter(order_id__in=purchases).count() == 30


@pytest.mark.django_db(transaction=True)
def test_concurrent_create_and_cancel_batches_of_the_same_purchases_never_deadlock() -> None:
    # A compensation racing with its step and with retried waves of both, in any order.
    purchases = [new_purchase() for _ in range(30)]

    def run(seed: int, shuffled: list[str]) -> list[Outcome]:
        if seed % 2:
            return cancel_batch(*(cancel(p) for p in shuffled))
        return create_batch(*(create(p, (WHEY, 1, 1390)) for p in shuffled))

    replies = shuffled_at_once(8, purchases, run)

    assert {code for reply in replies for code, *_ in reply} == {OK}
    orders = dict(Order.objects.filter(id__in=purchases).values_list("id", "status"))
    # Every purchase was cancelled, before or after its create: none is left CREATED.
    assert len(orders) == 30 and set(orders.values()) == {"CANCELLED"}
    # A cancelled order keeps the lines of a create that came first; a tombstone has none.
    with_lines = set(
        OrderLine.objects.filter(order_id__in=purchases).values_list("order_id", flat=True)
    )
    assert with_lines == set(
        Order.objects.filter(id__in=purchases, customer_id__isnull=False).values_list(
            "id", flat=True
        )
    )
