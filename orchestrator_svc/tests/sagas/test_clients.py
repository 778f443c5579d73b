"""The orchestrator's calls to its peers send the purchase to the right gRPC method with
the deadline (the edge replaced by a RecordingStub: `stub_calls`)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from common.contract.events import PurchaseItem
from common.grpc.errors import CallFailed
from orchestrator_svc.sagas import clients
from orchestrator_svc.tests.fakes import purchase_event
from saga_proto import product_pb2


def test_commands_carry_the_purchase_and_the_deadline(
    stub_calls: list[tuple[str, Any, float]],
) -> None:
    purchase = purchase_event(
        customer_id=7,
        items=(PurchaseItem(1, 4, 150, "Whey 1kg"), PurchaseItem(2, 5, 79)),
        amount=995,  # 4 x 150 + 5 x 79
        currency_code="USD",
    )

    for command in (clients.reserve_inventory, clients.create_order, clients.create_payment):
        command(purchase, 5.0)

    (reserve, reserve_req, t1), (order, order_req, _), (pay, pay_req, _) = stub_calls
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


def test_compensations_need_only_the_purchase_id(
    stub_calls: list[tuple[str, Any, float]],
) -> None:
    purchase = purchase_event()

    for compensation in (clients.release_inventory, clients.cancel_order, clients.refund_payment):
        compensation(purchase, 2.5)

    assert [(method, request.purchase_id, timeout) for method, request, timeout in stub_calls] == [
        ("ReleaseInventory", purchase.purchase_id, 2.5),
        ("CancelOrder", purchase.purchase_id, 2.5),
        ("RefundPayment", purchase.purchase_id, 2.5),
    ]


def test_a_batch_reply_that_does_not_answer_every_item_fails_the_whole_batch(
    stub_calls: list[tuple[str, Any, float]], stub_replies: dict[str, Any]
) -> None:
    stub_replies["ReserveInventoryBatch"] = product_pb2.InventoryBatchReply(
        results=[product_pb2.InventoryBatchResult(code=0)]
    )

    with pytest.raises(CallFailed) as failed:
        clients.reserve_inventory_batch([purchase_event(), purchase_event()], 1.0)

    assert failed.value.code() is grpc.StatusCode.INTERNAL
