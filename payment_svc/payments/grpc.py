"""gRPC `payment.PaymentService`: thin adapters over services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc), so the
saga knows what to do: INVALID_ARGUMENT, FAILED_PRECONDITION and ALREADY_EXISTS
compensate; UNAVAILABLE (our database could not answer) retries.

The batch forms (CreatePaymentBatch, RefundPaymentBatch) hand the whole wave to
payments.batches, which answers every item as its single call would (in purchase-id
order) in one transaction and a constant number of statements; an item's refusal becomes
its result, with the status its single call would have ended with
(common.grpc.servicer.Answers.batch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc

from common.errors import ApplicationError
from common.grpc.servicer import Answers
from common.ids import parse_purchase_id
from payment_svc.payments import batches, selectors, services
from payment_svc.payments.models import Payment
from saga_proto import payment_pb2, payment_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "payment.PaymentService"


def _reply(payment: Payment | batches.PaymentState) -> payment_pb2.PaymentReply:
    return payment_pb2.PaymentReply(
        payment_id=str(payment.id),
        status=payment.status,
        amount=payment.amount,
        currency_code=payment.currency_code,
    )


_answers = Answers(
    service=SERVICE_NAME, logger=logger, reply=_reply, batch_reply=payment_pb2.PaymentBatchReply
)


def _create(request: payment_pb2.CreatePaymentRequest) -> payment_pb2.PaymentReply:
    """CreatePayment's work."""
    outcome = services.payment_create(
        purchase_id=parse_purchase_id(request.purchase_id),
        customer_id=int(request.customer_id),
        amount=int(request.amount),
        currency_code=request.currency_code,
    )
    return _reply(outcome.payment)


def _refund(request: payment_pb2.RefundPaymentRequest) -> payment_pb2.PaymentReply:
    """RefundPayment's work."""
    outcome = services.payment_refund(purchase_id=parse_purchase_id(request.purchase_id))
    return _reply(outcome.payment)


def _create_all(
    requests: Sequence[payment_pb2.CreatePaymentRequest],
) -> list[batches.PaymentState | ApplicationError]:
    """CreatePaymentBatch's work: each item's payment or refusal, in request order."""
    commands = [
        batches.PaymentCreate(
            purchase_id=request.purchase_id,
            customer_id=int(request.customer_id),
            amount=int(request.amount),
            currency_code=request.currency_code,
        )
        for request in requests
    ]
    return batches.payment_create_batch(commands=commands)


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def CreatePayment(
        self, request: payment_pb2.CreatePaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentReply:
        return _answers.one(context, lambda: _create(request))

    def RefundPayment(
        self, request: payment_pb2.RefundPaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentReply:
        return _answers.one(context, lambda: _refund(request))

    def CreatePaymentBatch(
        self, request: payment_pb2.CreatePaymentBatchRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentBatchReply:
        return _answers.batch(context, request.items, _create_all)

    def RefundPaymentBatch(
        self, request: payment_pb2.RefundPaymentBatchRequest, context: grpc.ServicerContext
    ) -> payment_pb2.PaymentBatchReply:
        return _answers.batch(
            context,
            request.items,
            lambda items: batches.payment_refund_batch(purchase_ids=[i.purchase_id for i in items]),
        )

    def GetPayments(
        self, request: payment_pb2.GetPaymentsRequest, context: grpc.ServicerContext
    ) -> payment_pb2.GetPaymentsResponse:
        payments = _answers.found(
            context, request.purchase_ids, lambda ids: selectors.payment_find_many(payment_ids=ids)
        )
        return payment_pb2.GetPaymentsResponse(payments=payments)


def register(server: grpc.Server) -> list[str]:
    """Add PaymentService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    payment_pb2_grpc.add_PaymentServiceServicer_to_server(PaymentServicer(), server)
    return [SERVICE_NAME]
