"""`answer_all` (and `Answers`, a servicer's way to it): a batch call handled as a
whole, answered item by item as its single calls would have been.

The handlers' SQL is the services' business; their batch tests run it against their test
databases (product_svc/tests/catalog/test_grpc_batch.py, order_svc/tests/orders/
test_grpc_batch.py, payment_svc/tests/payments/test_grpc_batch.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import grpc
import pytest
from django.db import OperationalError

from common.batch_writes import checked, log_keys
from common.errors import GRPC_ERROR_CODE_METADATA, ApplicationError, ErrorCode
from common.grpc.servicer import MAX_BATCH_ITEMS, Answers, ItemResult, answer_all

SERVICE = "test.BatchService"
logger = logging.getLogger("test.batch")


class Aborted(Exception):
    """What the stand-in context raises where grpc's would end the call."""


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: tuple[tuple[str, str], ...] = ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted


def _halve(value: int) -> int:
    if value % 2:
        raise ApplicationError(ErrorCode.INVALID_INPUT, f"{value} is odd.")
    return value // 2


def test_an_item_result_carries_the_status_its_single_call_would_end_with() -> None:
    refused = ItemResult[str](error=ApplicationError(ErrorCode.INSUFFICIENT_STOCK, "1 left."))
    accepted = ItemResult(reply="the reply")

    assert (refused.code, refused.message, refused.error_code, refused.reply) == (
        grpc.StatusCode.FAILED_PRECONDITION.value[0],
        "1 left.",
        "insufficient_stock",
        None,
    )
    assert (accepted.code, accepted.message, accepted.error_code, accepted.reply) == (
        0,
        "",
        "",
        "the reply",
    )


def test_checked_answers_the_value_or_the_refusal_instead_of_raising_it() -> None:
    assert checked(_halve, 4) == 2
    refusal = checked(_halve, value=3)
    assert isinstance(refusal, ApplicationError)
    assert refusal.message == "3 is odd."


def test_each_item_answers_its_reply_or_its_refusal_in_request_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handle_all(items: Sequence[int]) -> list[int | ApplicationError]:
        return [checked(_halve, item) for item in items]

    context: Any = FakeContext()

    with caplog.at_level(logging.INFO, logger=logger.name):
        results = answer_all(context, [4, 3, 8], handle_all, service=SERVICE, logger=logger)

    assert [(r.code, r.message, r.error_code, r.reply) for r in results] == [
        (0, "", "", 2),
        (grpc.StatusCode.INVALID_ARGUMENT.value[0], "3 is odd.", "invalid_input", None),
        (0, "", "", 4),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        f"{SERVICE} refused: invalid_input 3 is odd."
    ]


def test_a_batch_over_the_cap_is_refused_whole_before_the_handler_runs() -> None:
    context: Any = FakeContext()
    handled: list[Sequence[int]] = []

    def handle_all(items: Sequence[int]) -> list[int | ApplicationError]:
        handled.append(items)
        return list(items)

    with pytest.raises(Aborted):
        answer_all(
            context, list(range(MAX_BATCH_ITEMS + 1)), handle_all, service=SERVICE, logger=logger
        )

    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(context.trailing)[GRPC_ERROR_CODE_METADATA] == "invalid_input"
    assert handled == []


@pytest.mark.parametrize(
    ("raised", "status"),
    [
        (ApplicationError(ErrorCode.UNAVAILABLE, "Try later."), grpc.StatusCode.UNAVAILABLE),
        (OperationalError("the database restarts"), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_an_error_of_the_whole_batch_ends_the_call_as_a_single_call_would_end(
    raised: Exception, status: grpc.StatusCode
) -> None:
    context: Any = FakeContext()

    def handle_all(items: Sequence[int]) -> list[int | ApplicationError]:
        raise raised

    with pytest.raises(Aborted):
        answer_all(context, [1, 2], handle_all, service=SERVICE, logger=logger)

    assert context.code is status


def _batch_reply(*, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stand-in batch reply message: its results."""
    return results


ANSWERS = Answers(
    service=SERVICE,
    logger=logger,
    reply=lambda value: f"reply {value}",
    batch_reply=_batch_reply,
)


def test_answers_batch_makes_each_value_a_reply_and_each_refusal_a_status() -> None:
    def handle_all(items: Sequence[int]) -> list[int | ApplicationError]:
        return [checked(_halve, item) for item in items]

    context: Any = FakeContext()

    assert ANSWERS.batch(context, [4, 3], handle_all) == [
        {"code": 0, "message": "", "error_code": "", "reply": "reply 2"},
        {
            "code": grpc.StatusCode.INVALID_ARGUMENT.value[0],
            "message": "3 is odd.",
            "error_code": "invalid_input",
            "reply": None,
        },
    ]
    assert context.code is None


def test_answers_one_ends_a_refused_call_with_its_status() -> None:
    context: Any = FakeContext()

    assert ANSWERS.one(context, lambda: _halve(4)) == 2
    with pytest.raises(Aborted):
        ANSWERS.one(context, lambda: _halve(3))

    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(context.trailing)[GRPC_ERROR_CODE_METADATA] == "invalid_input"


def test_log_keys_logs_how_many_and_which_sorted_and_nothing_for_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_keys(logger, "%d done: %s", {"b", "a"})
        log_keys(logger, "%d done: %s", set())

    assert [r.getMessage() for r in caplog.records] == ["2 done: a b"]


def test_answers_found_replies_what_is_found_and_refuses_a_malformed_id() -> None:
    known = uuid.uuid4()
    context: Any = FakeContext()

    assert ANSWERS.found(context, [str(known), str(uuid.uuid4())], lambda ids: ids[:1]) == [
        f"reply {known}"
    ]
    with pytest.raises(Aborted):
        ANSWERS.found(context, ["not-a-uuid"], lambda ids: ids)

    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
