"""gRPC `payment.PaymentService`: thin adapters over services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc), so the
saga knows what to do: INVALID_ARGUMENT, FAILED_PRECONDITION and ALREADY_EXISTS
compensate; UNAVAILABLE (our database could not answer) retries.
"""

from __future__ import annotations

import logging

import grpc

from common.grpc.servicer import answer
from common.ids import parse_purchase_id
from payment_svc.payments import services
from payment_svc.payments.models import Payment
from saga_proto import payment_pb2, payment_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "payment.PaymentService"


def _reply(payment: Payment) -> payment_pb2.PaymentReply:
    return payment_pb2.PaymentReply(
        payment_id=str(payment.id),
        status=payment.status,
        amount=payment.amount,
        currency_code=payment.currency_code,
    )


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def CreatePayment(
        self, request: payment_pb2.CreatePaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentReply:
        def call() -> payment_pb2.PaymentReply:
            outcome = services.payment_create(
                purchase_id=parse_purchase_id(request.purchase_id),
                customer_id=int(request.customer_id),
                amount=int(request.amount),
                currency_code=request.currency_code,
            )
            return _reply(outcome.payment)

        return answer(context, call, service=SERVICE_NAME, logger=logger)

    def RefundPayment(
        self, request: payment_pb2.RefundPaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentReply:
        def call() -> payment_pb2.PaymentReply:
            outcome = services.payment_refund(purchase_id=parse_purchase_id(request.purchase_id))
            return _reply(outcome.payment)

        return answer(context, call, service=SERVICE_NAME, logger=logger)


def register(server: grpc.Server) -> list[str]:
    """Add PaymentService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    payment_pb2_grpc.add_PaymentServiceServicer_to_server(PaymentServicer(), server)
    return [SERVICE_NAME]
