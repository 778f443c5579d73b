"""Helpers for the tests of a batch servicer (CreateOrderBatch, CreatePaymentBatch, ...):
an item's outcome as a comparable tuple, the single calls of a batch run one by one
and rolled back, the statements a call costs, and batches run at once from threads.

A test module keeps what is its own (its requests, its reply's fields, its rows) and
compares a batch's outcomes with its single calls' through these.
"""

from __future__ import annotations

import contextlib
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from unittest import mock

import grpc
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.errors import GRPC_ERROR_CODE_METADATA

T = TypeVar("T")

OK = 0
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS.value[0]

Outcome = tuple[int, str, str, Any]
"""(code, message, error_code, reply as a tuple of its fields, or None) of one call."""


class Aborted(Exception):
    """Where a stand-in context ends a call (and where a test rolls its writes back)."""


def new_purchase() -> str:
    return str(uuid.uuid4())


def batch_outcomes(reply: Any, item_reply: Callable[[Any], Any]) -> list[Outcome]:
    """Each result of a batch reply as an Outcome; `item_reply` makes a reply a tuple."""
    return [
        (r.code, r.message, r.error_code, item_reply(r.reply) if r.HasField("reply") else None)
        for r in reply.results
    ]


def single_outcome(call: Any, request: Any, item_reply: Callable[[Any], Any]) -> Outcome:
    """What a single call answers: its reply, or the status it aborts with."""
    context = mock.Mock()
    context.abort.side_effect = Aborted
    try:
        return (OK, "", "", item_reply(call(request, context)))
    except Aborted:
        code, message = context.abort.call_args.args
        trailing = dict(context.set_trailing_metadata.call_args.args[0])
        return (code.value[0], message, trailing[GRPC_ERROR_CODE_METADATA], None)


def as_single_calls(
    requests: Sequence[Any], single: Callable[[Any], Outcome], rows: Callable[[], T]
) -> tuple[list[Outcome], T]:
    """The answers of `requests` as single calls one by one in purchase-id order (repeats
    of a purchase in request order), answered in request order, and the `rows` they left;
    all rolled back, so the batch under test starts from the same rows."""
    order = sorted(range(len(requests)), key=lambda i: requests[i].purchase_id)  # stable
    answers: dict[int, Outcome] = {}
    with contextlib.suppress(Aborted), transaction.atomic():
        for position in order:
            answers[position] = single(requests[position])
        left = rows()
        raise Aborted
    return [answers[position] for position in range(len(requests))], left


def in_request_order(
    requests: Iterable[Any], single: Callable[[Any], Outcome], rows: Callable[[], T]
) -> tuple[list[Outcome], T]:
    """The answers of `requests` as single calls in request order, and the `rows` they
    left; all rolled back, so the batch under test starts from the same rows."""
    with contextlib.suppress(Aborted), transaction.atomic():
        answers = [single(request) for request in requests]
        left = rows()
        raise Aborted
    return answers, left


def statuses(outcomes: list[Outcome]) -> list[tuple[int, str]]:
    return [(code, error_code) for code, _message, error_code, _reply in outcomes]


def statements(call: Callable[[], object]) -> int:
    """How many SQL statements `call()` runs."""
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def shuffled_at_once(
    workers: int, purchases: Sequence[str], run: Callable[[int, list[str]], T]
) -> list[T]:
    """`run(seed, purchases shuffled by seed)` for seeds 0 .. workers-1, from as many
    threads released at once (each closes its own database connection)."""
    start = threading.Barrier(workers)

    def one(seed: int) -> T:
        shuffled = list(purchases)
        random.Random(seed).shuffle(shuffled)
        start.wait()
        try:
            return run(seed, shuffled)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(workers)))
