"""gRPC `order.OrderService`: thin adapters over services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc), so the
saga knows what to do: INVALID_ARGUMENT, FAILED_PRECONDITION and ALREADY_EXISTS
compensate; UNAVAILABLE (our database could not answer) retries. CreateOrder calls no
other service: the unit prices and product names come in the request.

The batch forms (CreateOrderBatch, CancelOrderBatch) run the single call's code per item
(`_create`, `_cancel`) in one transaction (common.grpc.servicer.answer_batch). Each item
writes only rows keyed by its purchase id, so the items are handled in purchase-id order:
concurrent batches then take those rows in one order and cannot deadlock.
"""

from __future__ import annotations

import logging

import grpc

from common.grpc.servicer import ItemResult, answer, answer_batch, by_purchase_id
from common.ids import parse_purchase_id
from order_svc.orders import services
from order_svc.orders.models import Order
from saga_proto import order_pb2, order_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "order.OrderService"


def _reply(order: Order) -> order_pb2.OrderReply:
    return order_pb2.OrderReply(order_id=str(order.id), status=order.status, amount=order.amount)


def _create(request: order_pb2.CreateOrderRequest) -> order_pb2.OrderReply:
    """CreateOrder's work, for the single call and each item of a batch."""
    outcome = services.order_create(
        purchase_id=parse_purchase_id(request.purchase_id),
        customer_id=int(request.customer_id),
        items=[
            services.OrderItem(
                product_id=int(item.product_id),
                quantity=int(item.quantity),
                unit_price=int(item.unit_price),
                name=item.name,
            )
            for item in request.items
        ],
    )
    return _reply(outcome.order)


def _cancel(request: order_pb2.CancelOrderRequest) -> order_pb2.OrderReply:
    """CancelOrder's work, for the single call and each item of a batch."""
    return _reply(services.order_cancel(purchase_id=parse_purchase_id(request.purchase_id)).order)


def _batch_reply(results: list[ItemResult[order_pb2.OrderReply]]) -> order_pb2.OrderBatchReply:
    return order_pb2.OrderBatchReply(
        results=[
            order_pb2.OrderBatchResult(
                code=result.code,
                message=result.message,
                error_code=result.error_code,
                reply=result.reply,
            )
            for result in results
        ]
    )


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        return answer(context, lambda: _create(request), service=SERVICE_NAME, logger=logger)

    def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        return answer(context, lambda: _cancel(request), service=SERVICE_NAME, logger=logger)

    def CreateOrderBatch(
        self, request: order_pb2.CreateOrderBatchRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderBatchReply:
        results = answer_batch(
            context,
            list(request.items),
            _create,
            service=SERVICE_NAME,
            logger=logger,
            sort_key=by_purchase_id,
        )
        return _batch_reply(results)

    def CancelOrderBatch(
        self, request: order_pb2.CancelOrderBatchRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderBatchReply:
        results = answer_batch(
            context,
            list(request.items),
            _cancel,
            service=SERVICE_NAME,
            logger=logger,
            sort_key=by_purchase_id,
        )
        return _batch_reply(results)


def register(server: grpc.Server) -> list[str]:
    """Add OrderService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    order_pb2_grpc.add_OrderServiceServicer_to_server(OrderServicer(), server)
    return [SERVICE_NAME]
