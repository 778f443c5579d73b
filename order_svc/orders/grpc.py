"""gRPC `order.OrderService`: thin adapters over services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc), so the
saga knows what to do: INVALID_ARGUMENT, FAILED_PRECONDITION and ALREADY_EXISTS
compensate; UNAVAILABLE (our database could not answer) retries. CreateOrder calls no
other service: the unit prices and product names come in the request.
"""

from __future__ import annotations

import logging

import grpc

from common.grpc.servicer import answer
from common.ids import parse_purchase_id
from order_svc.orders import services
from order_svc.orders.models import Order
from saga_proto import order_pb2, order_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "order.OrderService"


def _reply(order: Order) -> order_pb2.OrderReply:
    return order_pb2.OrderReply(order_id=str(order.id), status=order.status, amount=order.amount)


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        def call() -> order_pb2.OrderReply:
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
