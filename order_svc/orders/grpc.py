"""gRPC `order.OrderService`: thin adapters over services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc), so the
saga knows what to do: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION and
ALREADY_EXISTS compensate; UNAVAILABLE (the product service or our database could
not answer) retries.
"""

from __future__ import annotations

import logging

import grpc

from common.grpc.servicer import answer
from common.ids import parse_purchase_id
from order_svc.orders import conf, services
from order_svc.orders.models import Order
from saga_proto import order_pb2, order_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "order.OrderService"
DEADLINE_MARGIN_SECONDS = 0.2
"""Of the caller's deadline, kept back for our own database work after GetProducts."""


def _reply(order: Order) -> order_pb2.OrderReply:
    return order_pb2.OrderReply(order_id=str(order.id), status=order.status, amount=order.amount)


def _product_timeout(context: grpc.ServicerContext) -> float:
    """ORDER_PRODUCT_TIMEOUT_SECONDS, shortened to fit in what is left of the caller's deadline."""
    timeout = conf.product_timeout_seconds()
    remaining = context.time_remaining()
    if remaining is not None:
        timeout = min(timeout, max(remaining - DEADLINE_MARGIN_SECONDS, 0.05))
    return timeout


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        def call() -> order_pb2.OrderReply:
            outcome = services.order_create(
                purchase_id=parse_purchase_id(request.purchase_id),
                customer_id=int(request.customer_id),
                items=[(int(item.product_id), int(item.quantity)) for item in request.items],
                product_timeout=_product_timeout(context),
            )
            return _reply(outcome.order)

        return answer(context, call, service=SERVICE_NAME, logger=logger)

    def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        def call() -> order_pb2.OrderReply:
            outcome = services.order_cancel(purchase_id=parse_purchase_id(request.purchase_id))
            return _reply(outcome.order)

        return answer(context, call, service=SERVICE_NAME, logger=logger)


def register(server: grpc.Server) -> list[str]:
    """Add OrderService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    order_pb2_grpc.add_OrderServiceServicer_to_server(OrderServicer(), server)
    return [SERVICE_NAME]
