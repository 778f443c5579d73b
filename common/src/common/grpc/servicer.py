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

A batch method (one request carrying the calls of many purchases) runs the single
method's per-item code through `answer_batch`, in one transaction with a savepoint per
item:

    def CreateOrderBatch(self, request, context):
        results = answer_batch(context, list(request.items), _create, service=..., ...)
        return order_pb2.OrderBatchReply(results=[... r.code, r.message, r.error_code ...])

An item's refusal becomes its result (the status its single call would have ended with)
and undoes only that item's writes and on_commit hooks; a database error ends the whole
call as `answer` would end a single one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import grpc
from django.db import DatabaseError, InterfaceError, OperationalError, transaction

from common.errors import ApplicationError, ErrorCode, abort_grpc
from common.ids import parse_uuid

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


class PurchaseCommand(Protocol):
    """A saga command's request: keyed by the purchase it is for."""

    @property
    def purchase_id(self) -> str: ...


def by_purchase_id(request: PurchaseCommand) -> str:
    """A batch's `sort_key` for commands keyed by purchase id: the canonical UUID text
    (an id that is not a UUID sorts first; its item is refused before touching a row)."""
    parsed = parse_uuid(request.purchase_id)
    return "" if parsed is None else str(parsed)


def answer_batch(
    context: grpc.ServicerContext,
    items: Sequence[ItemT],
    handle_one: Callable[[ItemT], ReplyT],
    *,
    service: str,
    logger: logging.Logger,
    database_errors: bool = True,
    sort_key: Callable[[ItemT], str] | None = None,
    lock_first: Callable[[], object] | None = None,
    max_items: int = MAX_BATCH_ITEMS,
) -> list[ItemResult[ReplyT]]:
    """The result of `handle_one(item)` for each item, in request order, all in one
    transaction; or the whole call aborted as `answer` would abort a single one.

    Each item runs in a savepoint of its own: an ApplicationError becomes that item's
    result (logged as `answer` logs a refusal) and the savepoint's rollback undoes its
    writes and drops the on_commit hooks it registered, while the other items go on.
    The hooks of accepted items run once, after the batch commits. Any other error
    (a database error, a deadlock) rolls back the whole batch and ends the call.

    Concurrent batches must take their row locks in one order, or they can deadlock
    holding each other's rows until their commits: `lock_first` runs in the
    transaction before any item (to lock, in a fixed order, rows that items would
    otherwise lock in request order), and `sort_key` orders the handling of the items
    (their results still answer in request order). More than `max_items` items is
    INVALID_ARGUMENT for the whole call, before any database work.
    """

    def call() -> list[ItemResult[ReplyT]]:
        if len(items) > max_items:
            raise ApplicationError(
                ErrorCode.INVALID_INPUT,
                f"At most {max_items} items per batch, not {len(items)}.",
            )
        positions = list(range(len(items)))
        if sort_key is not None:
            positions.sort(key=lambda position: sort_key(items[position]))  # stable
        results: dict[int, ItemResult[ReplyT]] = {}
        with transaction.atomic():
            if lock_first is not None:
                lock_first()
            for position in positions:
                results[position] = _handle(items[position], handle_one, service, logger)
        return [results[position] for position in range(len(items))]

    return answer(context, call, service=service, logger=logger, database_errors=database_errors)


def _handle(
    item: ItemT,
    handle_one: Callable[[ItemT], ReplyT],
    service: str,
    logger: logging.Logger,
) -> ItemResult[ReplyT]:
    try:
        with transaction.atomic():  # a savepoint: a refusal undoes this item only
            return ItemResult(reply=handle_one(item))
    except ApplicationError as error:
        _log_refusal(logger, service, error)
        return ItemResult(error=error)
