"""The saga's messages: PurchaseCreated carries the unit prices and names, and its amount
is the sum of the lines."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from common.contract.events import (
    END_REASON_CANCELLED,
    MAX_END_REASON_LENGTH,
    MAX_ITEM_NAME_LENGTH,
    CancelRequester,
    PurchaseCancelRequested,
    PurchaseCreated,
    PurchaseItem,
    PurchaseResult,
    PurchaseStatus,
    Step,
    StepStatus,
    parse_purchase_created,
    parse_purchase_message,
    parse_purchase_result,
)
from common.ids import MAX_INT64
from common.kafka.messages import PoisonMessage


def body(**changes: Any) -> dict[str, Any]:
    """A PurchaseCreated as the purchase service publishes it: 4 x 1390 + 5 x 3780."""
    return {
        "purchase_id": str(uuid.uuid4()),
        "customer_id": 42,
        "items": [
            {"product_id": 1, "quantity": 4, "unit_price": 1390, "name": "Whey 1kg"},
            {"product_id": 2, "quantity": 5, "unit_price": 3780, "name": "Casein 2kg"},
        ],
        "amount": 24460,
        "currency_code": "VND",
        **changes,
    }


def with_item(index: int, **changes: Any) -> dict[str, Any]:
    """body() with item `index` changed (a value of None removes the field)."""
    event = body()
    item = copy.deepcopy(event["items"][index])
    for key, value in changes.items():
        if value is None:
            item.pop(key)
        else:
            item[key] = value
    event["items"][index] = item
    return event


def test_the_unit_prices_and_names_travel_with_the_purchase() -> None:
    event = body()

    parsed = parse_purchase_created(event)

    assert parsed.items == (
        PurchaseItem(1, 4, 1390, "Whey 1kg"),
        PurchaseItem(2, 5, 3780, "Casein 2kg"),
    )
    assert parsed.amount == sum(i.unit_price * i.quantity for i in parsed.items) == 24460


def test_an_event_written_before_lines_had_names_parses_with_empty_names() -> None:
    # Events already in flight when the purchase service started sending names.
    event = with_item(0, name=None)
    event["items"][1].pop("name")

    parsed = parse_purchase_created(event)

    assert parsed.items == (PurchaseItem(1, 4, 1390), PurchaseItem(2, 5, 3780))
    assert [i.name for i in parsed.items] == ["", ""]


@pytest.mark.parametrize("name", ["", "é" * MAX_ITEM_NAME_LENGTH])
def test_a_name_may_be_empty_or_as_long_as_a_product_s(name: str) -> None:
    assert parse_purchase_created(with_item(0, name=name)).items[0].name == name


def test_an_event_reads_back_as_it_was_written() -> None:
    event = PurchaseCreated(
        purchase_id=str(uuid.uuid4()),
        customer_id=7,
        items=(PurchaseItem(3, 2, 500, "Bar"), PurchaseItem(4, 1, 0)),
        amount=1000,
        currency_code="USD",
    )

    wire = json.loads(json.dumps(event.to_json()))

    assert wire["items"] == [
        {"product_id": 3, "quantity": 2, "unit_price": 500, "name": "Bar"},
        {"product_id": 4, "quantity": 1, "unit_price": 0, "name": ""},
    ]
    assert parse_purchase_created(wire) == event


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (with_item(0, unit_price=None), "no unit_price"),
        (with_item(0, unit_price="1390"), "unit_price a string"),
        (with_item(0, unit_price=1390.0), "unit_price a float"),
        (with_item(0, unit_price=True), "unit_price a bool"),
        (with_item(0, unit_price=-1), "negative unit_price"),
        (with_item(0, quantity=0), "quantity 0"),
        (with_item(1, product_id=0), "product 0"),
        (body(items=[]), "no items"),
        (with_item(0, name=42), "name a number"),
        (
            body(items=[{"product_id": 1, "quantity": 1, "unit_price": 5, "name": None}], amount=5),
            "name null",
        ),
        (with_item(0, name=["Whey"]), "name a list"),
        (with_item(1, name="x" * (MAX_ITEM_NAME_LENGTH + 1)), "name too long"),
    ],
)
def test_a_line_without_a_valid_unit_price_or_name_is_poison(
    event: dict[str, Any], why: str
) -> None:
    with pytest.raises(PoisonMessage):
        parse_purchase_created(event)


@pytest.mark.parametrize("amount", [24459, 24461, 0])
def test_an_amount_that_is_not_the_sum_of_the_lines_is_poison(amount: int) -> None:
    # The order records the prices and the payment charges the amount: they must agree.
    with pytest.raises(PoisonMessage, match="not the sum"):
        parse_purchase_created(body(amount=amount))


def test_an_amount_beyond_int64_is_poison() -> None:
    price = MAX_INT64 // 2 + 1
    event = body(items=[{"product_id": 1, "quantity": 2, "unit_price": price}], amount=2 * price)

    with pytest.raises(PoisonMessage):
        parse_purchase_created(event)


def test_free_lines_make_a_zero_amount() -> None:
    event = body(items=[{"product_id": 1, "quantity": 3, "unit_price": 0}], amount=0)

    assert parse_purchase_created(event).amount == 0


# --------------------------------------------------------------- cancellation (issue 21)


def cancel_body(**changes: Any) -> dict[str, Any]:
    return {
        "type": "PurchaseCancelRequested",
        "purchase_id": str(uuid.uuid4()),
        "customer_id": 42,
        "requested_by": "customer",
        **changes,
    }


def test_a_cancel_request_reads_back_as_it_was_written() -> None:
    event = PurchaseCancelRequested(str(uuid.uuid4()), 42, CancelRequester.STAFF)

    wire = json.loads(json.dumps(event.to_json()))

    assert wire == {
        "type": "PurchaseCancelRequested",
        "purchase_id": event.purchase_id,
        "customer_id": 42,
        "requested_by": "staff",
    }
    assert parse_purchase_message(wire) == event


@pytest.mark.parametrize("kind", [None, "PurchaseCreated"])
def test_a_purchase_created_reads_with_or_without_its_type(kind: str | None) -> None:
    event = body() if kind is None else body(type=kind)

    assert parse_purchase_message(event) == parse_purchase_created(body(**event))


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (cancel_body(type="PurchaseRefunded"), "unknown type"),
        (cancel_body(type=7), "type not a string"),
        (cancel_body(requested_by="robot"), "unknown requester"),
        (cancel_body(customer_id="42"), "customer id a string"),
        (cancel_body(customer_id=0), "customer id 0"),
        (cancel_body(purchase_id="42"), "purchase id not a UUID"),
        ({k: v for k, v in cancel_body().items() if k != "requested_by"}, "no requester"),
        (["PurchaseCancelRequested"], "not an object"),
    ],
)
def test_a_purchase_topic_message_that_cannot_be_read_is_poison(event: Any, why: str) -> None:
    with pytest.raises(PoisonMessage):
        parse_purchase_message(event)


def test_a_final_result_carries_why_the_saga_ended() -> None:
    result = PurchaseResult(
        str(uuid.uuid4()),
        Step.UPDATE_PRODUCT_INVENTORY,
        StepStatus.CANCELLED,
        PurchaseStatus.CANCELLED,
        sequence=2,
        reason=END_REASON_CANCELLED,
    )

    assert parse_purchase_result(json.loads(json.dumps(result.to_json()))) == result
    assert PurchaseStatus.CANCELLED.is_final


def test_a_result_written_before_reasons_existed_reads_with_none() -> None:
    wire = {"purchase_id": str(uuid.uuid4()), "step": "CREATE_PAYMENT", "status": "FAILED"}

    assert parse_purchase_result(wire).reason == ""


@pytest.mark.parametrize(("reason", "kept"), [("deadline", True), ("operator", True), (3, False)])
def test_an_unknown_reason_is_kept_and_a_malformed_one_is_poison(reason: Any, kept: bool) -> None:
    wire = {
        "purchase_id": str(uuid.uuid4()),
        "step": "CREATE_PAYMENT",
        "status": "FAILED",
        "purchase_status": "FAILED",
        "reason": reason,
    }

    if kept:
        assert parse_purchase_result(wire).reason == reason
    else:
        with pytest.raises(PoisonMessage):
            parse_purchase_result(wire)


def test_a_reason_longer_than_the_stored_column_is_poison() -> None:
    wire = {"purchase_id": str(uuid.uuid4()), "step": "CREATE_ORDER", "status": "FAILED"}

    with pytest.raises(PoisonMessage):
        parse_purchase_result({**wire, "reason": "x" * (MAX_END_REASON_LENGTH + 1)})
