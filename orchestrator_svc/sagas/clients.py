"""The orchestrator's calls to its peers: the product, order and payment services.

Each call goes through the gRPC edge (one channel per process, created after the Celery
fork by common.grpc.client) with the caller's deadline, and is keyed by purchase id on
the callee's side, so repeating one is safe. The saga's commands and compensations
(steps.py) have a single and a batch form; the audit (audit.py) has one read per peer.

These raise grpc.RpcError, not ApplicationError (common.grpc.client.call): the saga
engine and the audit classify the raw status to retry or compensate (common.grpc.errors).

A batch call carries every purchase's request in one RPC and answers, per purchase in
the same order, its item's result (`.reply` where the single call has one) or the status
its single call would have ended with (`CallFailed`), or fails as a whole
(`grpc.RpcError` raised).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from common.contract.events import PurchaseCreated
from common.grpc.client import stub
from common.grpc.errors import CallFailed, status_code_from_number
from saga_proto import (
    order_pb2,
    order_pb2_grpc,
    payment_pb2,
    payment_pb2_grpc,
    product_pb2,
    product_pb2_grpc,
)

# Per purchase of a batch call: its item's result (code OK), or why it failed.
BatchAnswers = list[Any]


# ----------------------------------------------------------------- requests


def _reserve_request(purchase: PurchaseCreated) -> product_pb2.ReserveInventoryRequest:
    return product_pb2.ReserveInventoryRequest(
        purchase_id=purchase.purchase_id,
        items=[
            product_pb2.PurchaseItem(product_id=i.product_id, quantity=i.quantity)
            for i in purchase.items
        ],
    )


def _create_order_request(purchase: PurchaseCreated) -> order_pb2.CreateOrderRequest:
    return order_pb2.CreateOrderRequest(
        purchase_id=purchase.purchase_id,
        customer_id=purchase.customer_id,
        # At the purchase's prices and names: the order service does not look them up.
        items=[
            order_pb2.OrderItem(
                product_id=i.product_id,
                quantity=i.quantity,
                unit_price=i.unit_price,
                name=i.name,
            )
            for i in purchase.items
        ],
    )


def _create_payment_request(purchase: PurchaseCreated) -> payment_pb2.CreatePaymentRequest:
    return payment_pb2.CreatePaymentRequest(
        purchase_id=purchase.purchase_id,
        customer_id=purchase.customer_id,
        amount=purchase.amount,
        currency_code=purchase.currency_code,
    )


def _purchase_id_only(message: type[Any]) -> Callable[[PurchaseCreated], Any]:
    """A compensation's request: the purchase id is all it needs."""
    return lambda purchase: message(purchase_id=purchase.purchase_id)


_release_request = _purchase_id_only(product_pb2.ReleaseInventoryRequest)
_cancel_order_request = _purchase_id_only(order_pb2.CancelOrderRequest)
_refund_payment_request = _purchase_id_only(payment_pb2.RefundPaymentRequest)


# ------------------------------------------------------------------ single

# One purchase's call: its reply (the create calls' order or payment; the others' is empty).
SingleCall = Callable[[PurchaseCreated, float], Any]


def _single(
    service: type[Any], method: str, request: Callable[[PurchaseCreated], Any]
) -> SingleCall:
    """`method` of the `service` stub with the purchase's `request`, within `timeout`."""

    def call(purchase: PurchaseCreated, timeout: float) -> Any:
        return getattr(stub(service), method)(request(purchase), timeout=timeout)

    call.__name__ = call.__qualname__ = method
    return call


ProductService = product_pb2_grpc.ProductServiceStub
OrderService = order_pb2_grpc.OrderServiceStub
PaymentService = payment_pb2_grpc.PaymentServiceStub

reserve_inventory = _single(ProductService, "ReserveInventory", _reserve_request)
release_inventory = _single(ProductService, "ReleaseInventory", _release_request)
create_order = _single(OrderService, "CreateOrder", _create_order_request)
cancel_order = _single(OrderService, "CancelOrder", _cancel_order_request)
create_payment = _single(PaymentService, "CreatePayment", _create_payment_request)
refund_payment = _single(PaymentService, "RefundPayment", _refund_payment_request)


# ------------------------------------------------------------------- batch


def _answers(results: Sequence[Any], count: int) -> BatchAnswers:
    """Each item's result, or CallFailed, from a batch reply's `results` (code 0 = OK)."""
    if len(results) != count:
        # Not the answer to this request: nothing can be concluded for any item.
        raise CallFailed(grpc.StatusCode.INTERNAL, f"{len(results)} results for {count} items")
    return [
        result
        if result.code == grpc.StatusCode.OK.value[0]
        else CallFailed(status_code_from_number(result.code), result.message)
        for result in results
    ]


def _batch(
    service: type[Any],
    method: str,
    request: Callable[..., Any],
    item: Callable[[PurchaseCreated], Any],
) -> Callable[[Sequence[PurchaseCreated], float], BatchAnswers]:
    """The batch form of a call: `method` of the `service` stub with one `item` per purchase."""

    def call(purchases: Sequence[PurchaseCreated], timeout: float) -> BatchAnswers:
        reply = getattr(stub(service), method)(
            request(items=[item(p) for p in purchases]), timeout=timeout
        )
        return _answers(reply.results, len(purchases))

    call.__name__ = call.__qualname__ = method
    return call


reserve_inventory_batch = _batch(
    ProductService,
    "ReserveInventoryBatch",
    product_pb2.ReserveInventoryBatchRequest,
    _reserve_request,
)
release_inventory_batch = _batch(
    ProductService,
    "ReleaseInventoryBatch",
    product_pb2.ReleaseInventoryBatchRequest,
    _release_request,
)
create_order_batch = _batch(
    OrderService, "CreateOrderBatch", order_pb2.CreateOrderBatchRequest, _create_order_request
)
cancel_order_batch = _batch(
    OrderService, "CancelOrderBatch", order_pb2.CancelOrderBatchRequest, _cancel_order_request
)
create_payment_batch = _batch(
    PaymentService,
    "CreatePaymentBatch",
    payment_pb2.CreatePaymentBatchRequest,
    _create_payment_request,
)
refund_payment_batch = _batch(
    PaymentService,
    "RefundPaymentBatch",
    payment_pb2.RefundPaymentBatchRequest,
    _refund_payment_request,
)


# ------------------------------------------------------------- audit reads


def reservations(purchase_ids: Sequence[str], timeout: float) -> Sequence[Any]:
    """The product service's reservations of `purchase_ids` (those it has)."""
    reply = stub(ProductService).GetReservations(
        product_pb2.GetReservationsRequest(purchase_ids=purchase_ids), timeout=timeout
    )
    return reply.reservations


def orders(purchase_ids: Sequence[str], timeout: float) -> Sequence[Any]:
    """The order service's orders of `purchase_ids` (those it has)."""
    reply = stub(OrderService).GetOrders(
        order_pb2.GetOrdersRequest(purchase_ids=purchase_ids), timeout=timeout
    )
    return reply.orders


def payments(purchase_ids: Sequence[str], timeout: float) -> Sequence[Any]:
    """The payment service's payments of `purchase_ids` (those it has)."""
    reply = stub(PaymentService).GetPayments(
        payment_pb2.GetPaymentsRequest(purchase_ids=purchase_ids), timeout=timeout
    )
    return reply.payments
