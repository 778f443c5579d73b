"""gRPC `order.OrderService`: thin adapters over services.

Listed in settings.GRPC_SERVICERS; `manage.py grpcserve` calls `register(server)`.
A refusal is an ApplicationError answered with its gRPC status (abort_grpc), so the
saga knows what to do: INVALID_ARGUMENT, FAILED_PRECONDITION and ALREADY_EXISTS
compensate; UNAVAILABLE (our database could not answer) retries. CreateOrder calls no
other service: the unit prices and product names come in the request.

The batch forms (CreateOrderBatch, CancelOrderBatch) hand the whole wave to
orders.batches, which answers every item as its single call would (in purchase-id order)
in one transaction and a constant number of statements; an item's refusal becomes its
result, with the status its single call would have ended with
(common.grpc.servicer.Answers.batch).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import grpc

from common.errors import ApplicationError
from common.grpc.servicer import Answers
from common.ids import parse_purchase_id
from order_svc.orders import batches, selectors, services
from order_svc.orders.models import Order
from saga_proto import order_pb2, order_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "order.OrderService"


def _reply(order: Order | batches.OrderState) -> order_pb2.OrderReply:
    return order_pb2.OrderReply(order_id=str(order.id), status=order.status, amount=order.amount)


_answers = Answers(
    service=SERVICE_NAME, logger=logger, reply=_reply, batch_reply=order_pb2.OrderBatchReply
)


def _items(items: Iterable[order_pb2.OrderItem]) -> list[services.OrderItem]:
    return [
        services.OrderItem(
            product_id=int(item.product_id),
            quantity=int(item.quantity),
            unit_price=int(item.unit_price),
            name=item.name,
        )
        for item in items
    ]


def _create(request: order_pb2.CreateOrderRequest) -> order_pb2.OrderReply:
    """CreateOrder's work."""
    outcome = services.order_create(
        purchase_id=parse_purchase_id(request.purchase_id),
        customer_id=int(request.customer_id),
        items=_items(request.items),
    )
    return _reply(outcome.order)


def _cancel(request: order_pb2.CancelOrderRequest) -> order_pb2.OrderReply:
    """CancelOrder's work."""
    return _reply(services.order_cancel(purchase_id=parse_purchase_id(request.purchase_id)).order)


def _create_all(
    requests: Sequence[order_pb2.CreateOrderRequest],
) -> list[batches.OrderState | ApplicationError]:
    """CreateOrderBatch's work: each item's order or refusal, in request order."""
    commands = [
        batches.OrderCreate(request.purchase_id, int(request.customer_id), _items(request.items))
        for request in requests
    ]
    return batches.order_create_batch(commands=commands)


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        return _answers.one(context, lambda: _create(request))

    def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        return _answers.one(context, lambda: _cancel(request))

    def CreateOrderBatch(
        self, request: order_pb2.CreateOrderBatchRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderBatchReply:
        return _answers.batch(context, request.items, _create_all)

    def CancelOrderBatch(
        self, request: order_pb2.CancelOrderBatchRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderBatchReply:
        return _answers.batch(
            context,
            request.items,
            lambda items: batches.order_cancel_batch(purchase_ids=[i.purchase_id for i in items]),
        )

    def GetOrders(
        self, request: order_pb2.GetOrdersRequest, context: grpc.ServicerContext
    ) -> order_pb2.GetOrdersResponse:
        orders = _answers.found(
            context, request.purchase_ids, lambda ids: selectors.order_find_many(order_ids=ids)
        )
        return order_pb2.GetOrdersResponse(orders=orders)


def register(server: grpc.Server) -> list[str]:
    """Add OrderService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    order_pb2_grpc.add_OrderServiceServicer_to_server(OrderServicer(), server)
    return [SERVICE_NAME]
