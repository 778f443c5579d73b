"""gRPC `payment.PaymentService`: thin adapters over services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc), so the
saga knows what to do: INVALID_ARGUMENT, FAILED_PRECONDITION and ALREADY_EXISTS
compensate; UNAVAILABLE (our database could not answer) retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import grpc
from django.db import DatabaseError, InterfaceError, OperationalError

from common.errors import ApplicationError, ErrorCode, abort_grpc
from payment_svc.payments import services
from payment_svc.payments.models import Payment
from saga_proto import payment_pb2, payment_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "payment.PaymentService"

ReplyT = TypeVar("ReplyT")


def _reply(payment: Payment) -> payment_pb2.PaymentReply:
    return payment_pb2.PaymentReply(
        payment_id=str(payment.id),
        status=payment.status,
        amount=payment.amount,
        currency_code=payment.currency_code,
    )


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def _answer(self, context: grpc.ServicerContext, call: Callable[[], ReplyT]) -> ReplyT:
        try:
            return call()
        except ApplicationError as error:
            if error.code in (ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE):
                logger.warning("%s failed: %s %s", SERVICE_NAME, error.code.value, error.message)
            else:
                logger.info("%s refused: %s %s", SERVICE_NAME, error.code.value, error.message)
            abort_grpc(context, error)
        except (OperationalError, InterfaceError) as exc:
            # The database is restarting or unreachable: the same call may succeed soon.
            logger.warning("%s: database unavailable: %s", SERVICE_NAME, exc)
            abort_grpc(context, ApplicationError(ErrorCode.UNAVAILABLE, "Database unavailable."))
        except DatabaseError:
            logger.exception("%s: database error", SERVICE_NAME)
            abort_grpc(context, ApplicationError(ErrorCode.INTERNAL, "Internal error."))

    def CreatePayment(
        self, request: payment_pb2.CreatePaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentReply:
        def call() -> payment_pb2.PaymentReply:
            outcome = services.payment_create(
                purchase_id=services.parse_purchase_id(request.purchase_id),
                customer_id=int(request.customer_id),
                amount=int(request.amount),
                currency_code=request.currency_code,
            )
            return _reply(outcome.payment)

        return self._answer(context, call)

    def RefundPayment(
        self, request: payment_pb2.RefundPaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentReply:
        def call() -> payment_pb2.PaymentReply:
            outcome = services.payment_refund(
                purchase_id=services.parse_purchase_id(request.purchase_id)
            )
            return _reply(outcome.payment)

        return self._answer(context, call)


def register(server: grpc.Server) -> list[str]:
    """Add PaymentService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    payment_pb2_grpc.add_PaymentServiceServicer_to_server(PaymentServicer(), server)
    return [SERVICE_NAME]
