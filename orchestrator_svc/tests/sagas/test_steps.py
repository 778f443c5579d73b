"""Each step's calls send the purchase to the right gRPC method with the deadline."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from common.events import PurchaseItem, Step
from orchestrator_svc.sagas import steps
from orchestrator_svc.tests.fakes import purchase_event
from saga_proto import order_pb2, payment_pb2, product_pb2

REPLIES: dict[str, Any] = {
    "CreateOrder": order_pb2.OrderReply(status="CREATED"),
    "CreatePayment": payment_pb2.PaymentReply(status="COMPLETED"),
}


class RecordingStub:
    def __init__(self, calls: list[tuple[str, Any, float]], replies: dict[str, Any]) -> None:
        self._calls, self._replies = calls, replies

    def __getattr__(self, method: str) -> Any:
        def call(request: Any, *, timeout: float) -> Any:
            self._calls.append((method, request, timeout))
            return self._replies.get(method)

        return call


@pytest.fixture
def replies() -> dict[str, Any]:
    return dict(REPLIES)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, replies: dict[str, Any]) -> list[tuple[str, Any, float]]:
    recorded: list[tuple[str, Any, float]] = []
    monkeypatch.setattr(steps, "stub", lambda stub_class: RecordingStub(recorded, replies))
    return recorded


def test_the_steps_run_in_the_seed_order() -> None:
    assert [d.step for d in steps.PURCHASE_STEPS] == [
        Step.UPDATE_PRODUCT_INVENTORY,
        Step.CREATE_ORDER,
        Step.CREATE_PAYMENT,
    ]


def test_commands_carry_the_purchase_and_the_deadline(calls: list[tuple[str, Any, float]]) -> None:
    purchase = purchase_event(
        customer_id=7,
        items=(PurchaseItem(1, 4, 150, "Whey 1kg"), PurchaseItem(2, 5, 79)),
        amount=995,  # 4 x 150 + 5 x 79
        currency_code="USD",
    )

    for definition in steps.PURCHASE_STEPS:
        definition.command(purchase, 5.0)

    (reserve, reserve_req, t1), (order, order_req, _), (pay, pay_req, _) = calls
    assert (reserve, order, pay) == ("ReserveInventory", "CreateOrder", "CreatePayment")
    assert t1 == 5.0
    assert reserve_req.purchase_id == purchase.purchase_id
    assert [(i.product_id, i.quantity) for i in reserve_req.items] == [(1, 4), (2, 5)]
    assert (order_req.purchase_id, order_req.customer_id) == (purchase.purchase_id, 7)
    # The order is priced and named as the purchase was: both travel with the request
    # (a line of an event that had no name goes with an empty one).
    assert [(i.product_id, i.quantity, i.unit_price, i.name) for i in order_req.items] == [
        (1, 4, 150, "Whey 1kg"),
        (2, 5, 79, ""),
    ]
    assert (pay_req.purchase_id, pay_req.customer_id, pay_req.amount, pay_req.currency_code) == (
        purchase.purchase_id,
        7,
        995,
        "USD",
    )


def test_compensations_need_only_the_purchase_id(calls: list[tuple[str, Any, float]]) -> None:
    purchase = purchase_event()

    for definition in steps.PURCHASE_STEPS:
        definition.compensation(purchase, 2.5)

    assert [(method, request.purchase_id, timeout) for method, request, timeout in calls] == [
        ("ReleaseInventory", purchase.purchase_id, 2.5),
        ("CancelOrder", purchase.purchase_id, 2.5),
        ("RefundPayment", purchase.purchase_id, 2.5),
    ]


@pytest.mark.parametrize(
    ("method", "reply", "index"),
    [
        ("CreateOrder", order_pb2.OrderReply(status="CANCELLED"), 1),
        ("CreatePayment", payment_pb2.PaymentReply(status="REFUNDED"), 2),
    ],
)
def test_a_create_answered_with_its_compensated_state_is_a_refusal(
    calls: list[tuple[str, Any, float]],
    replies: dict[str, Any],
    method: str,
    reply: Any,
    index: int,
) -> None:
    # A create after its compensation answers OK with the cancelled order or the
    # refunded payment: the step did not take effect.
    replies[method] = reply

    with pytest.raises(steps.StepRefused, match=reply.status):
        steps.PURCHASE_STEPS[index].command(purchase_event(), 5.0)


def test_every_call_has_a_batch_form() -> None:
    for definition in steps.PURCHASE_STEPS:
        assert definition.batch_command is not None
        assert definition.batch_compensation is not None


def test_a_batch_call_carries_every_purchase_and_answers_each_in_order(
    calls: list[tuple[str, Any, float]], replies: dict[str, Any]
) -> None:
    first, second, third = purchase_event(), purchase_event(), purchase_event()
    replies["CreateOrderBatch"] = order_pb2.OrderBatchReply(
        results=[
            order_pb2.OrderBatchResult(code=0, reply=order_pb2.OrderReply(status="CREATED")),
            order_pb2.OrderBatchResult(code=9, message="no", error_code="FAILED_PRECONDITION"),
            order_pb2.OrderBatchResult(code=0, reply=order_pb2.OrderReply(status="CANCELLED")),
        ]
    )

    outcomes = steps.create_order_batch([first, second, third], 2.5)

    (method, request, timeout) = calls[0]
    assert (method, timeout) == ("CreateOrderBatch", 2.5)
    assert [item.purchase_id for item in request.items] == [
        first.purchase_id,
        second.purchase_id,
        third.purchase_id,
    ]
    assert request.items[0].items[0].unit_price == first.items[0].unit_price
    assert outcomes[0] is None
    assert isinstance(outcomes[1], steps.ItemFailed)
    assert outcomes[1].code() is grpc.StatusCode.FAILED_PRECONDITION
    assert outcomes[1].details() == "no"
    assert isinstance(outcomes[2], steps.StepRefused)  # answered, but cancelled


def test_a_batch_reply_that_does_not_answer_every_item_fails_the_whole_batch(
    calls: list[tuple[str, Any, float]], replies: dict[str, Any]
) -> None:
    replies["ReserveInventoryBatch"] = product_pb2.InventoryBatchReply(
        results=[product_pb2.InventoryBatchResult(code=0)]
    )

    with pytest.raises(steps.ItemFailed) as failed:
        steps.reserve_inventory_batch([purchase_event(), purchase_event()], 1.0)

    assert failed.value.code() is grpc.StatusCode.INTERNAL
