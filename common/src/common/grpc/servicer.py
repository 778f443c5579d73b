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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from django.db import DatabaseError, InterfaceError, OperationalError

from common.errors import ApplicationError, ErrorCode, abort_grpc

ReplyT = TypeVar("ReplyT")
ItemT = TypeVar("ItemT")

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
