"""The purchase saga's steps, in order: each a command and the compensation that undoes it.

Adding a step is one `StepDefinition` in `PURCHASE_STEPS`. Commands and compensations
are gRPC calls through the Traefik edge (one channel per process, created after the
Celery fork by common.grpc.client), keyed by purchase id on the callee's side, so
repeating one is safe. Each raises `grpc.RpcError` on failure; the engine (engine.py)
classifies the code to retry or compensate. A command that answers OK without taking
effect (a create after its compensation answers the cancelled order or refunded
payment) raises `StepRefused`: a business refusal.

Every call also has a batch form, for a wave of sagas making the same call: one RPC
carries every purchase's request and answers each with the status its single call
would have ended with (`ItemFailed`), or fails as a whole (`grpc.RpcError` raised).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from common.events import PurchaseCreated, Step
from common.grpc.client import stub
from common.grpc.errors import status_code_from_number
from saga_proto import (
    order_pb2,
    order_pb2_grpc,
    payment_pb2,
    payment_pb2_grpc,
    product_pb2,
    product_pb2_grpc,
)

# A call: the purchase and the deadline (seconds) of the call.
StepCall = Callable[[PurchaseCreated, float], None]
# The batch form of a call: per purchase, None (done) or why not, in the same order.
BatchCall = Callable[[Sequence[PurchaseCreated], float], list[Exception | None]]


ORDER_CREATED = "CREATED"
PAYMENT_COMPLETED = "COMPLETED"


class StepRefused(Exception):
    """The callee answered OK, but the step did not take effect: compensate."""


class ItemFailed(grpc.RpcError):
    """One item of a batch call ended with this status (its single call would have)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@dataclass(frozen=True)
class StepDefinition:
    step: Step
    participant: str  # the service both calls go to: one circuit (circuits.py) per name
    command: StepCall
    compensation: StepCall
    batch_command: BatchCall | None = None
    batch_compensation: BatchCall | None = None


# ----------------------------------------------------------------- requests


def _reserve_request(purchase: PurchaseCreated) -> product_pb2.ReserveInventoryRequest:
    return product_pb2.ReserveInventoryRequest(
        purchase_id=purchase.purchase_id,
        items=[
            product_pb2.PurchaseItem(product_id=i.product_id, quantity=i.quantity)
            for i in purchase.items
        ],
    )


def _release_request(purchase: PurchaseCreated) -> product_pb2.ReleaseInventoryRequest:
    return product_pb2.ReleaseInventoryRequest(purchase_id=purchase.purchase_id)


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


def _cancel_order_request(purchase: PurchaseCreated) -> order_pb2.CancelOrderRequest:
    return order_pb2.CancelOrderRequest(purchase_id=purchase.purchase_id)


def _create_payment_request(purchase: PurchaseCreated) -> payment_pb2.CreatePaymentRequest:
    return payment_pb2.CreatePaymentRequest(
        purchase_id=purchase.purchase_id,
        customer_id=purchase.customer_id,
        amount=purchase.amount,
        currency_code=purchase.currency_code,
    )


def _refund_payment_request(purchase: PurchaseCreated) -> payment_pb2.RefundPaymentRequest:
    return payment_pb2.RefundPaymentRequest(purchase_id=purchase.purchase_id)


def _order_created(reply: order_pb2.OrderReply) -> None:
    if reply.status != ORDER_CREATED:
        raise StepRefused(f"the order is {reply.status or 'missing'}, not {ORDER_CREATED}")


def _payment_completed(reply: payment_pb2.PaymentReply) -> None:
    if reply.status != PAYMENT_COMPLETED:
        raise StepRefused(f"the payment is {reply.status or 'missing'}, not {PAYMENT_COMPLETED}")


# ------------------------------------------------------------------ single


def reserve_inventory(purchase: PurchaseCreated, timeout: float) -> None:
    stub(product_pb2_grpc.ProductServiceStub).ReserveInventory(
        _reserve_request(purchase), timeout=timeout
    )


def release_inventory(purchase: PurchaseCreated, timeout: float) -> None:
    stub(product_pb2_grpc.ProductServiceStub).ReleaseInventory(
        _release_request(purchase), timeout=timeout
    )


def create_order(purchase: PurchaseCreated, timeout: float) -> None:
    _order_created(
        stub(order_pb2_grpc.OrderServiceStub).CreateOrder(
            _create_order_request(purchase), timeout=timeout
        )
    )


def cancel_order(purchase: PurchaseCreated, timeout: float) -> None:
    stub(order_pb2_grpc.OrderServiceStub).CancelOrder(
        _cancel_order_request(purchase), timeout=timeout
    )


def create_payment(purchase: PurchaseCreated, timeout: float) -> None:
    _payment_completed(
        stub(payment_pb2_grpc.PaymentServiceStub).CreatePayment(
            _create_payment_request(purchase), timeout=timeout
        )
    )


def refund_payment(purchase: PurchaseCreated, timeout: float) -> None:
    stub(payment_pb2_grpc.PaymentServiceStub).RefundPayment(
        _refund_payment_request(purchase), timeout=timeout
    )


# ------------------------------------------------------------------- batch


def _outcomes(
    results: Sequence[Any], count: int, check: Callable[[Any], None] | None = None
) -> list[Exception | None]:
    """Each item's outcome from a batch reply's `results` (code 0 = OK)."""
    if len(results) != count:
        # Not the answer to this request: nothing can be concluded for any item.
        raise ItemFailed(grpc.StatusCode.INTERNAL, f"{len(results)} results for {count} items")
    outcomes: list[Exception | None] = []
    for result in results:
        if result.code != grpc.StatusCode.OK.value[0]:
            outcomes.append(ItemFailed(status_code_from_number(result.code), result.message))
            continue
        try:
            if check is not None:
                check(result.reply)
            outcomes.append(None)
        except StepRefused as refused:
            outcomes.append(refused)
    return outcomes


def _batch(
    service: type[Any],
    method: str,
    request: Callable[..., Any],
    item: Callable[[PurchaseCreated], Any],
    check: Callable[[Any], None] | None = None,
) -> BatchCall:
    """The batch form of a call: `method` of the `service` stub with one `item` per
    purchase; each item's outcome checked like its single call's reply (`check`)."""

    def call(purchases: Sequence[PurchaseCreated], timeout: float) -> list[Exception | None]:
        reply = getattr(stub(service), method)(
            request(items=[item(p) for p in purchases]), timeout=timeout
        )
        return _outcomes(reply.results, len(purchases), check)

    call.__name__ = call.__qualname__ = method
    return call


reserve_inventory_batch = _batch(
    product_pb2_grpc.ProductServiceStub,
    "ReserveInventoryBatch",
    product_pb2.ReserveInventoryBatchRequest,
    _reserve_request,
)
release_inventory_batch = _batch(
    product_pb2_grpc.ProductServiceStub,
    "ReleaseInventoryBatch",
    product_pb2.ReleaseInventoryBatchRequest,
    _release_request,
)
create_order_batch = _batch(
    order_pb2_grpc.OrderServiceStub,
    "CreateOrderBatch",
    order_pb2.CreateOrderBatchRequest,
    _create_order_request,
    _order_created,
)
cancel_order_batch = _batch(
    order_pb2_grpc.OrderServiceStub,
    "CancelOrderBatch",
    order_pb2.CancelOrderBatchRequest,
    _cancel_order_request,
)
create_payment_batch = _batch(
    payment_pb2_grpc.PaymentServiceStub,
    "CreatePaymentBatch",
    payment_pb2.CreatePaymentBatchRequest,
    _create_payment_request,
    _payment_completed,
)
refund_payment_batch = _batch(
    payment_pb2_grpc.PaymentServiceStub,
    "RefundPaymentBatch",
    payment_pb2.RefundPaymentBatchRequest,
    _refund_payment_request,
)


PURCHASE_STEPS: tuple[StepDefinition, ...] = (
    StepDefinition(
        Step.UPDATE_PRODUCT_INVENTORY,
        "product",
        reserve_inventory,
        release_inventory,
        reserve_inventory_batch,
        release_inventory_batch,
    ),
    StepDefinition(
        Step.CREATE_ORDER,
        "order",
        create_order,
        cancel_order,
        create_order_batch,
        cancel_order_batch,
    ),
    StepDefinition(
        Step.CREATE_PAYMENT,
        "payment",
        create_payment,
        refund_payment,
        create_payment_batch,
        refund_payment_batch,
    ),
)
