"""The purchase saga's steps, in order: each a command and the compensation that undoes it.

Adding a step is one `StepDefinition` in `PURCHASE_STEPS`. Commands and compensations
are the orchestrator's calls to its peers (clients.py), keyed by purchase id on the
callee's side, so repeating one is safe. Each raises `grpc.RpcError` on failure; the
engine (engine.py) classifies the code to retry or compensate. A command that answers
OK without taking effect (a create after its compensation answers the cancelled order
or refunded payment) raises `StepRefused`: a business refusal.

Every call also has a batch form, for a wave of sagas making the same call: per
purchase, None (done) or why not (`CallFailed`, `StepRefused`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.contract.events import PurchaseCreated, Step
from common.grpc.errors import CallFailed
from orchestrator_svc.sagas import clients
from orchestrator_svc.sagas.clients import BatchAnswers
from saga_proto import order_pb2, payment_pb2

# A call: the purchase and the deadline (seconds) of the call.
StepCall = Callable[[PurchaseCreated, float], None]
# The batch form of a call: per purchase, None (done) or why not, in the same order.
BatchCall = Callable[[Sequence[PurchaseCreated], float], list[Exception | None]]


ORDER_CREATED = "CREATED"
PAYMENT_COMPLETED = "COMPLETED"


class StepRefused(Exception):
    """The callee answered OK, but the step did not take effect: compensate."""


@dataclass(frozen=True)
class StepDefinition:
    step: Step
    participant: str  # the service both calls go to: one circuit (circuits.py) per name
    command: StepCall
    compensation: StepCall
    batch_command: BatchCall | None = None
    batch_compensation: BatchCall | None = None


# --------------------------------------------------------- what "done" means


def _order_created(reply: order_pb2.OrderReply) -> None:
    if reply.status != ORDER_CREATED:
        raise StepRefused(f"the order is {reply.status or 'missing'}, not {ORDER_CREATED}")


def _payment_completed(reply: payment_pb2.PaymentReply) -> None:
    if reply.status != PAYMENT_COMPLETED:
        raise StepRefused(f"the payment is {reply.status or 'missing'}, not {PAYMENT_COMPLETED}")


def create_order(purchase: PurchaseCreated, timeout: float) -> None:
    _order_created(clients.create_order(purchase, timeout))


def create_payment(purchase: PurchaseCreated, timeout: float) -> None:
    _payment_completed(clients.create_payment(purchase, timeout))


def _outcomes(
    batch: Callable[[Sequence[PurchaseCreated], float], BatchAnswers],
    check: Callable[[Any], None] | None = None,
) -> BatchCall:
    """`batch` as a step's batch call: each item's outcome, its reply checked like its
    single call's (`check`)."""

    def call(purchases: Sequence[PurchaseCreated], timeout: float) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        for answer in batch(purchases, timeout):
            if isinstance(answer, CallFailed):
                outcomes.append(answer)
                continue
            try:
                if check is not None:
                    check(answer.reply)
                outcomes.append(None)
            except StepRefused as refused:
                outcomes.append(refused)
        return outcomes

    call.__name__ = call.__qualname__ = batch.__name__
    return call


PURCHASE_STEPS: tuple[StepDefinition, ...] = (
    StepDefinition(
        Step.UPDATE_PRODUCT_INVENTORY,
        "product",
        clients.reserve_inventory,
        clients.release_inventory,
        _outcomes(clients.reserve_inventory_batch),
        _outcomes(clients.release_inventory_batch),
    ),
    StepDefinition(
        Step.CREATE_ORDER,
        "order",
        create_order,
        clients.cancel_order,
        _outcomes(clients.create_order_batch, _order_created),
        _outcomes(clients.cancel_order_batch),
    ),
    StepDefinition(
        Step.CREATE_PAYMENT,
        "payment",
        create_payment,
        clients.refund_payment,
        _outcomes(clients.create_payment_batch, _payment_completed),
        _outcomes(clients.refund_payment_batch),
    ),
)
