"""The saga's steps: their order, and what their calls' answers mean (done, refused, or
failed per item); the calls themselves are in test_clients.py."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from common.contract.events import Step
from common.grpc.errors import CallFailed
from orchestrator_svc.sagas import steps
from orchestrator_svc.tests.fakes import purchase_event
from saga_proto import order_pb2, payment_pb2, product_pb2


def test_the_steps_run_in_the_seed_order() -> None:
    assert [d.step for d in steps.PURCHASE_STEPS] == [
        Step.UPDATE_PRODUCT_INVENTORY,
        Step.CREATE_ORDER,
        Step.CREATE_PAYMENT,
    ]


def test_each_step_calls_its_command_and_its_compensation(
    stub_calls: list[tuple[str, Any, float]],
) -> None:
    purchase = purchase_event()

    for definition in steps.PURCHASE_STEPS:
        definition.command(purchase, 5.0)
        definition.compensation(purchase, 2.5)

    assert [(method, request.purchase_id, timeout) for method, request, timeout in stub_calls] == [
        ("ReserveInventory", purchase.purchase_id, 5.0),
        ("ReleaseInventory", purchase.purchase_id, 2.5),
        ("CreateOrder", purchase.purchase_id, 5.0),
        ("CancelOrder", purchase.purchase_id, 2.5),
        ("CreatePayment", purchase.purchase_id, 5.0),
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
    stub_calls: list[tuple[str, Any, float]],
    stub_replies: dict[str, Any],
    method: str,
    reply: Any,
    index: int,
) -> None:
    # A create after its compensation answers OK with the cancelled order or the
    # refunded payment: the step did not take effect.
    stub_replies[method] = reply

    with pytest.raises(steps.StepRefused, match=reply.status):
        steps.PURCHASE_STEPS[index].command(purchase_event(), 5.0)


def test_every_call_has_a_batch_form() -> None:
    for definition in steps.PURCHASE_STEPS:
        assert definition.batch_command is not None
        assert definition.batch_compensation is not None


def test_a_batch_call_carries_every_purchase_and_answers_each_in_order(
    stub_calls: list[tuple[str, Any, float]], stub_replies: dict[str, Any]
) -> None:
    first, second, third = purchase_event(), purchase_event(), purchase_event()
    stub_replies["CreateOrderBatch"] = order_pb2.OrderBatchReply(
        results=[
            order_pb2.OrderBatchResult(code=0, reply=order_pb2.OrderReply(status="CREATED")),
            order_pb2.OrderBatchResult(code=9, message="no", error_code="FAILED_PRECONDITION"),
            order_pb2.OrderBatchResult(code=0, reply=order_pb2.OrderReply(status="CANCELLED")),
        ]
    )
    create_order_batch = steps.PURCHASE_STEPS[1].batch_command
    assert create_order_batch is not None

    outcomes = create_order_batch([first, second, third], 2.5)

    (method, request, timeout) = stub_calls[0]
    assert (method, timeout) == ("CreateOrderBatch", 2.5)
    assert [item.purchase_id for item in request.items] == [
        first.purchase_id,
        second.purchase_id,
        third.purchase_id,
    ]
    assert request.items[0].items[0].unit_price == first.items[0].unit_price
    assert outcomes[0] is None
    assert isinstance(outcomes[1], CallFailed)
    assert outcomes[1].code() is grpc.StatusCode.FAILED_PRECONDITION
    assert outcomes[1].details() == "no"
    assert isinstance(outcomes[2], steps.StepRefused)  # answered, but cancelled


def test_a_batch_call_without_replies_answers_done_or_the_item_s_status(
    stub_calls: list[tuple[str, Any, float]], stub_replies: dict[str, Any]
) -> None:
    # Inventory's batch results carry no reply: an item answered OK is done.
    stub_replies["ReleaseInventoryBatch"] = product_pb2.InventoryBatchReply(
        results=[
            product_pb2.InventoryBatchResult(code=0),
            product_pb2.InventoryBatchResult(code=5, message="gone"),
        ]
    )
    release_inventory_batch = steps.PURCHASE_STEPS[0].batch_compensation
    assert release_inventory_batch is not None

    outcomes = release_inventory_batch([purchase_event(), purchase_event()], 1.0)

    assert stub_calls[0][0] == "ReleaseInventoryBatch"
    assert outcomes[0] is None
    assert isinstance(outcomes[1], CallFailed)
    assert outcomes[1].code() is grpc.StatusCode.NOT_FOUND
