"""The purchase saga's steps, in order: each a command and the compensation that undoes it.

Adding a step is one `StepDefinition` in `PURCHASE_STEPS`. Commands and compensations
are gRPC calls through the Traefik edge (one channel per process, created after the
Celery fork by common.grpc.client), keyed by purchase id on the callee's side, so
repeating one is safe. Each raises `grpc.RpcError` on failure; the engine
(services.saga_advance) classifies the code to retry or compensate. A command that
answers OK without taking effect (a create after its compensation answers the
cancelled order or refunded payment) raises `StepRefused`: a business refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common.events import PurchaseCreated, Step
from common.grpc.client import stub
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


ORDER_CREATED = "CREATED"
PAYMENT_COMPLETED = "COMPLETED"


class StepRefused(Exception):
    """The callee answered OK, but the step did not take effect: compensate."""


@dataclass(frozen=True)
class StepDefinition:
    step: Step
    command: StepCall
    compensation: StepCall


def reserve_inventory(purchase: PurchaseCreated, timeout: float) -> None:
    stub(product_pb2_grpc.ProductServiceStub).ReserveInventory(
        product_pb2.ReserveInventoryRequest(
            purchase_id=purchase.purchase_id,
            items=[
                product_pb2.PurchaseItem(product_id=i.product_id, quantity=i.quantity)
                for i in purchase.items
            ],
        ),
        timeout=timeout,
    )


def release_inventory(purchase: PurchaseCreated, timeout: float) -> None:
    stub(product_pb2_grpc.ProductServiceStub).ReleaseInventory(
        product_pb2.ReleaseInventoryRequest(purchase_id=purchase.purchase_id), timeout=timeout
    )


def create_order(purchase: PurchaseCreated, timeout: float) -> None:
    reply = stub(order_pb2_grpc.OrderServiceStub).CreateOrder(
        order_pb2.CreateOrderRequest(
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
        ),
        timeout=timeout,
    )
    if reply.status != ORDER_CREATED:
        raise StepRefused(f"the order is {reply.status or 'missing'}, not {ORDER_CREATED}")


def cancel_order(purchase: PurchaseCreated, timeout: float) -> None:
    stub(order_pb2_grpc.OrderServiceStub).CancelOrder(
        order_pb2.CancelOrderRequest(purchase_id=purchase.purchase_id), timeout=timeout
    )


def create_payment(purchase: PurchaseCreated, timeout: float) -> None:
    reply = stub(payment_pb2_grpc.PaymentServiceStub).CreatePayment(
        payment_pb2.CreatePaymentRequest(
            purchase_id=purchase.purchase_id,
            customer_id=purchase.customer_id,
            amount=purchase.amount,
            currency_code=purchase.currency_code,
        ),
        timeout=timeout,
    )
    if reply.status != PAYMENT_COMPLETED:
        raise StepRefused(f"the payment is {reply.status or 'missing'}, not {PAYMENT_COMPLETED}")


def refund_payment(purchase: PurchaseCreated, timeout: float) -> None:
    stub(payment_pb2_grpc.PaymentServiceStub).RefundPayment(
        payment_pb2.RefundPaymentRequest(purchase_id=purchase.purchase_id), timeout=timeout
    )


PURCHASE_STEPS: tuple[StepDefinition, ...] = (
    StepDefinition(Step.UPDATE_PRODUCT_INVENTORY, reserve_inventory, release_inventory),
    StepDefinition(Step.CREATE_ORDER, create_order, cancel_order),
    StepDefinition(Step.CREATE_PAYMENT, create_payment, refund_payment),
)
