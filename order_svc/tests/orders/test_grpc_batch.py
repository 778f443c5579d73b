"""CreateOrderBatch and CancelOrderBatch in-process, against the test database.

A batch answers each item as its single call would have (the same status and reply,
the same rows), in request order, in one transaction. test_grpc.py drives the single
calls through the edge; the running service serves the batch calls once restarted.
"""

from __future__ import annotations

import contextlib
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import grpc
import pytest
from django.db import connection, transaction

from common.errors import GRPC_ERROR_CODE_METADATA
from order_svc.orders.grpc import OrderServicer
from order_svc.orders.models import Order, OrderLine
from saga_proto import order_pb2

pytestmark = pytest.mark.django_db

CUSTOMER = 7
WHEY, CASEIN = 101, 102
OK = 0
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS.value[0]

Outcome = tuple[int, str, str, tuple[str, str, int] | None]
"""(code, message, error_code, reply as (order_id, status, amount)) of one call."""


class Aborted(Exception):
    pass


def create(
    purchase_id: str, *lines: tuple[int, int, int], customer_id: int = CUSTOMER
) -> order_pb2.CreateOrderRequest:
    """A CreateOrder as the saga sends it; `lines` are (product_id, quantity, unit_price)."""
    return order_pb2.CreateOrderRequest(
        purchase_id=purchase_id,
        customer_id=customer_id,
        items=[order_pb2.OrderItem(product_id=p, quantity=q, unit_price=u) for p, q, u in lines],
    )


def cancel(purchase_id: str) -> order_pb2.CancelOrderRequest:
    return order_pb2.CancelOrderRequest(purchase_id=purchase_id)


def _reply(reply: order_pb2.OrderReply) -> tuple[str, str, int]:
    return (reply.order_id, reply.status, reply.amount)


def _outcomes(reply: order_pb2.OrderBatchReply) -> list[Outcome]:
    return [
        (r.code, r.message, r.error_code, _reply(r.reply) if r.HasField("reply") else None)
        for r in reply.results
    ]


def create_batch(*requests: order_pb2.CreateOrderRequest) -> list[Outcome]:
    context: Any = None  # a batch that is not refused whole never touches its context
    batch = order_pb2.CreateOrderBatchRequest(items=requests)
    return _outcomes(OrderServicer().CreateOrderBatch(batch, context))


def cancel_batch(*requests: order_pb2.CancelOrderRequest) -> list[Outcome]:
    context: Any = None
    batch = order_pb2.CancelOrderBatchRequest(items=requests)
    return _outcomes(OrderServicer().CancelOrderBatch(batch, context))


def single_create(request: order_pb2.CreateOrderRequest) -> Outcome:
    """What the single CreateOrder answers: its reply, or the status it aborts with."""
    context = mock.Mock()
    context.abort.side_effect = Aborted
    try:
        return (OK, "", "", _reply(OrderServicer().CreateOrder(request, context)))
    except Aborted:
        code, message = context.abort.call_args.args
        trailing = dict(context.set_trailing_metadata.call_args.args[0])
        return (code.value[0], message, trailing[GRPC_ERROR_CODE_METADATA], None)


def new_purchase() -> str:
    return str(uuid.uuid4())


def statuses(outcomes: list[Outcome]) -> list[tuple[int, str]]:
    return [(code, error_code) for code, _message, error_code, _reply in outcomes]


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

    with contextlib.suppress(Aborted), transaction.atomic():
        one_by_one = [single_create(request) for request in requests]
        rows_one_by_one = rows()
        raise Aborted  # the batch starts from the same empty table

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


# ------------------------------------------------------------ concurrency


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_the_same_purchases_in_any_order_create_each_once() -> None:
    # Duplicates racing (a retried wave): in request order, two batches would each claim
    # a purchase the other needs next and wait for each other's commit.
    purchases = [new_purchase() for _ in range(30)]
    batches = 8
    start = threading.Barrier(batches)

    def run(seed: int) -> list[Outcome]:
        shuffled = purchases[:]
        random.Random(seed).shuffle(shuffled)
        start.wait()
        try:
            return create_batch(*(create(p, (WHEY, 1, 1390)) for p in shuffled))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=batches) as pool:
        replies = list(pool.map(run, range(batches)))

    seen = {(code, got[1] if got else None) for reply in replies for code, _, _, got in reply}
    assert seen == {(OK, "CREATED")}
    assert Order.objects.filter(id__in=purchases).count() == 30
    assert OrderLine.objects.filter(order_id__in=purchases).count() == 30
