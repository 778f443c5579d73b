"""How a servicer answers an error: one ApplicationError, one gRPC status (abort_grpc).

Every servicer method runs its work through `answer`:

    def CreateOrder(self, request, context):
        def call() -> order_pb2.OrderReply:
            return _reply(services.order_create(...).order)

        return answer(context, call, service=SERVICE_NAME, logger=logger)

A refusal (ApplicationError) ends the call with the status mapped from its code and the
code in the `error-code` trailing metadata, so the saga knows whether to compensate or
retry; it is logged at INFO, or at WARNING when it is a failure of ours (INTERNAL,
UNAVAILABLE). With `database_errors`, a database that cannot answer now answers
UNAVAILABLE (the same call may succeed soon) and any other database error INTERNAL.

A batch method (one request carrying the calls of many purchases) answers through
`answer_all`, with a handler that takes the whole batch and answers, per item, its reply
or the refusal its single call would have ended with:

    def CreateOrderBatch(self, request, context):
        results = answer_all(context, request.items, _create_all, service=..., logger=...)
        return order_pb2.OrderBatchReply(results=[... r.code, r.message, r.error_code ...])

An item's refusal becomes its result; an error of the whole batch (the database, say)
ends the whole call as `answer` would end a single one.

A servicer whose batch replies share one shape (a list of results, each `code`, `message`,
`error_code` and `reply`: OrderBatchReply, PaymentBatchReply) declares one `Answers`
and its methods call `answers.one(context, call)` / `answers.batch(context, items,
handle_all)`, where `handle_all` answers the services' own values (or refusals) and
`Answers.reply` makes each a reply message.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from django.db import DatabaseError, InterfaceError, OperationalError

from common.errors import ApplicationError, ErrorCode, abort_grpc
from common.ids import parse_purchase_ids

ReplyT = TypeVar("ReplyT")
ItemT = TypeVar("ItemT")
ValueT = TypeVar("ValueT")  # what a service answers for one item, before it is a reply
BatchT = TypeVar("BatchT")  # a batch reply message
T = TypeVar("T")

MAX_BATCH_ITEMS = 500
"""The most items one batch call may carry; more is INVALID_ARGUMENT for the whole call
(the orchestrator sends waves of at most 100)."""

FAILURE_CODES = frozenset({ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE})
"""ApplicationError codes that are our failure rather than a refusal of the request."""


def answer(
    context: grpc.ServicerContext,
    call: Callable[[], ReplyT],
    *,
    service: str,
    logger: logging.Logger,
    database_errors: bool = True,
) -> ReplyT:
    """The reply `call()` answers, or the call aborted with the status of its error.

    `service` names the gRPC service in the log lines, written to the servicer's `logger`.
    Without `database_errors`, a database error is left to grpc (UNKNOWN).
    """
    try:
        return call()
    except ApplicationError as error:
        _log_refusal(logger, service, error)
        abort_grpc(context, error)
    except (OperationalError, InterfaceError) as exc:
        if not database_errors:
            raise
        # The database is restarting or unreachable: the same call may succeed soon.
        logger.warning("%s: database unavailable: %s", service, exc)
        abort_grpc(context, ApplicationError(ErrorCode.UNAVAILABLE, "Database unavailable."))
    except DatabaseError:
        if not database_errors:
            raise
        logger.exception("%s: database error", service)
        abort_grpc(context, ApplicationError(ErrorCode.INTERNAL, "Internal error."))


def _log_refusal(logger: logging.Logger, service: str, error: ApplicationError) -> None:
    if error.code in FAILURE_CODES:
        logger.warning("%s failed: %s %s", service, error.code.value, error.message)
    else:
        logger.info("%s refused: %s %s", service, error.code.value, error.message)


@dataclass(frozen=True)
class ItemResult(Generic[ReplyT]):
    """One item of a batch: the reply its single call would have answered, or the
    refusal it would have ended with (exactly one of the two)."""

    reply: ReplyT | None = None
    error: ApplicationError | None = None

    @property
    def code(self) -> int:
        """The grpc.StatusCode value number of the single call's status; 0 is OK."""
        return 0 if self.error is None else int(self.error.grpc_status.value[0])

    @property
    def message(self) -> str:
        """The single call's status details; empty when OK."""
        return "" if self.error is None else self.error.message

    @property
    def error_code(self) -> str:
        """The ErrorCode its `error-code` trailing metadata would have carried; empty when OK."""
        return "" if self.error is None else self.error.code.value

    def status_fields(self) -> dict[str, int | str]:
        """`code`, `message` and `error_code`, as every batch reply's result carries them."""
        return {"code": self.code, "message": self.message, "error_code": self.error_code}


def answer_all(
    context: grpc.ServicerContext,
    items: Sequence[ItemT],
    handle_all: Callable[[Sequence[ItemT]], Sequence[ReplyT | ApplicationError]],
    *,
    service: str,
    logger: logging.Logger,
    database_errors: bool = True,
    max_items: int = MAX_BATCH_ITEMS,
) -> list[ItemResult[ReplyT]]:
    """Each item's result of a batch call, in request order; or the call aborted.

    `handle_all(items)` answers, in request order, each item's reply or the refusal
    (ApplicationError) its single call would have ended with, having written everything
    in one transaction of its own. A refusal becomes that item's result, logged as
    `answer` logs a single call's. An ApplicationError or a database error that
    `handle_all` raises ends the whole call, as `answer` ends a single one (see
    `database_errors` there); so does more than `max_items` items (INVALID_ARGUMENT,
    before any database work).
    """

    def call() -> list[ItemResult[ReplyT]]:
        if len(items) > max_items:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                f"At most {max_items} items per batch, not {len(items)}.",
            )
        results: list[ItemResult[ReplyT]] = []
        for outcome in handle_all(items):
            if isinstance(outcome, ApplicationError):
                _log_refusal(logger, service, outcome)
                results.append(ItemResult(error=outcome))
            else:
                results.append(ItemResult(reply=outcome))
        return results

    return answer(context, call, service=service, logger=logger, database_errors=database_errors)


@dataclass(frozen=True)
class Answers(Generic[ValueT, ReplyT, BatchT]):
    """How one servicer answers (see the module docstring): its `service` name and
    `logger` for `answer`, `reply` to make a service's value a reply message, and
    `batch_reply`, the batch reply message: `batch_reply(results=[{"code": ...,
    "message": ..., "error_code": ..., "reply": ...}, ...])` (protobuf takes a result as
    a mapping; a reply of None leaves the field unset)."""

    service: str
    logger: logging.Logger
    reply: Callable[[ValueT], ReplyT]
    batch_reply: Callable[..., BatchT]

    def one(self, context: grpc.ServicerContext, call: Callable[[], T]) -> T:
        """`answer` for this servicer."""
        return answer(context, call, service=self.service, logger=self.logger)

    def found(
        self,
        context: grpc.ServicerContext,
        purchase_ids: Sequence[str],
        find_many: Callable[[list[uuid.UUID]], Iterable[ValueT]],
    ) -> list[ReplyT]:
        """The replies of what `find_many` finds for these purchase ids (an audit read);
        a malformed id, or more than MAX_BATCH_ITEMS, refuses the whole call."""

        def call() -> list[ReplyT]:
            ids = parse_purchase_ids(purchase_ids, limit=MAX_BATCH_ITEMS)
            return [self.reply(value) for value in find_many(ids)]

        return self.one(context, call)

    def batch(
        self,
        context: grpc.ServicerContext,
        items: Sequence[ItemT],
        handle_all: Callable[[Sequence[ItemT]], Sequence[ValueT | ApplicationError]],
    ) -> BatchT:
        """`answer_all` for this servicer, each item's value made a reply, as its batch
        reply message."""

        def replies(batch: Sequence[ItemT]) -> list[ReplyT | ApplicationError]:
            return [
                outcome if isinstance(outcome, ApplicationError) else self.reply(outcome)
                for outcome in handle_all(batch)
            ]

        results = answer_all(context, items, replies, service=self.service, logger=self.logger)
        return self.batch_reply(
            results=[{**result.status_fields(), "reply": result.reply} for result in results]
        )
