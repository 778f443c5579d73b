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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc
from django.db import DatabaseError, InterfaceError, OperationalError

from common.errors import ApplicationError, ErrorCode, abort_grpc

ReplyT = TypeVar("ReplyT")

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
        if error.code in FAILURE_CODES:
            logger.warning("%s failed: %s %s", service, error.code.value, error.message)
        else:
            logger.info("%s refused: %s %s", service, error.code.value, error.message)
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
