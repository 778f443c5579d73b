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
(common.grpc.servicer.answer_all).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import grpc

from common.errors import ApplicationError
from common.grpc.servicer import MAX_BATCH_ITEMS, ItemResult, answer, answer_all
from common.ids import parse_purchase_id, parse_purchase_ids
from order_svc.orders import batches, selectors, services
from order_svc.orders.models import Order
from saga_proto import order_pb2, order_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = "order.OrderService"


def _reply(order: Order | batches.OrderState) -> order_pb2.OrderReply:
    return order_pb2.OrderReply(order_id=str(order.id), status=order.status, amount=order.amount)


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


def _replies(
    outcomes: Iterable[batches.OrderState | ApplicationError],
) -> list[order_pb2.OrderReply | ApplicationError]:
    return [o if isinstance(o, ApplicationError) else _reply(o) for o in outcomes]


def _create_all(
    requests: Sequence[order_pb2.CreateOrderRequest],
) -> list[order_pb2.OrderReply | ApplicationError]:
    """CreateOrderBatch's work: each item's reply or refusal, in request order."""
    commands = [
        batches.OrderCreate(request.purchase_id, int(request.customer_id), _items(request.items))
        for request in requests
    ]
    return _replies(batches.order_create_batch(commands=commands))


def _cancel_all(
    requests: Sequence[order_pb2.CancelOrderRequest],
) -> list[order_pb2.OrderReply | ApplicationError]:
    """CancelOrderBatch's work: each item's reply or refusal, in request order."""
    purchase_ids = [request.purchase_id for request in requests]
    return _replies(batches.order_cancel_batch(purchase_ids=purchase_ids))


def _batch_reply(results: list[ItemResult[order_pb2.OrderReply]]) -> order_pb2.OrderBatchReply:
    return order_pb2.OrderBatchReply(
        results=[
            order_pb2.OrderBatchResult(**result.status_fields(), reply=result.reply)
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
        results = answer_all(
            context, request.items, _create_all, service=SERVICE_NAME, logger=logger
        )
        return _batch_reply(results)

    def CancelOrderBatch(
        self, request: order_pb2.CancelOrderBatchRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderBatchReply:
        results = answer_all(
            context, request.items, _cancel_all, service=SERVICE_NAME, logger=logger
        )
        return _batch_reply(results)

    def GetOrders(
        self, request: order_pb2.GetOrdersRequest, context: grpc.ServicerContext
    ) -> order_pb2.GetOrdersResponse:
        def call() -> order_pb2.GetOrdersResponse:
            ids = parse_purchase_ids(request.purchase_ids, limit=MAX_BATCH_ITEMS)
            orders = selectors.order_find_many(order_ids=ids)
            return order_pb2.GetOrdersResponse(orders=[_reply(order) for order in orders])

        return answer(context, call, service=SERVICE_NAME, logger=logger)


def register(server: grpc.Server) -> list[str]:
    """Add OrderService to `server` (settings.GRPC_SERVICERS) and answer its name."""
    order_pb2_grpc.add_OrderServiceServicer_to_server(OrderServicer(), server)
    return [SERVICE_NAME]
