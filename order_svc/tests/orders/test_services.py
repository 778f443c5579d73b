"""CreateOrder and CancelOrder as services, in-process against the test database.

The order records the unit prices and names it is given (the purchase's) and asks no
other service, so these tests need no product service: any product id will do.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import override_settings

from common.errors import ApplicationError, ErrorCode
from common.ids import MAX_INT64, parse_purchase_id
from order_svc.orders import selectors, services
from order_svc.orders.models import MAX_NAME_LENGTH, Order, OrderLine
from order_svc.orders.services import OrderItem

pytestmark = pytest.mark.django_db

CUSTOMER = 7
WHEY, CASEIN = 101, 102
WHEY_PRICE, CASEIN_PRICE = 1390, 3780
WHEY_NAME, CASEIN_NAME = "Whey 1kg", "Casein 2kg"


def whey(quantity: int, unit_price: int = WHEY_PRICE, name: str = WHEY_NAME) -> OrderItem:
    return OrderItem(product_id=WHEY, quantity=quantity, unit_price=unit_price, name=name)


def casein(quantity: int, unit_price: int = CASEIN_PRICE, name: str = CASEIN_NAME) -> OrderItem:
    return OrderItem(product_id=CASEIN, quantity=quantity, unit_price=unit_price, name=name)


def refusal(**kwargs: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        services.order_create(**kwargs)
    return raised.value


def assert_nothing_written() -> None:
    assert Order.objects.count() == 0
    assert OrderLine.objects.count() == 0


# ------------------------------------------------------------------ create


def test_an_order_records_the_prices_it_is_given_and_its_total_is_their_sum() -> None:
    purchase = uuid.uuid4()

    outcome = services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[casein(5), whey(4)]
    )

    assert outcome.changed
    order = Order.objects.get(id=purchase)
    assert (order.status, order.customer_id) == (Order.Status.CREATED, CUSTOMER)
    lines = list(
        order.lines.values_list("product_id", "name", "unit_price", "quantity", "line_total")
    )
    assert lines == [
        (WHEY, WHEY_NAME, WHEY_PRICE, 4, 4 * WHEY_PRICE),
        (CASEIN, CASEIN_NAME, CASEIN_PRICE, 5, 5 * CASEIN_PRICE),
    ]
    assert order.amount == outcome.order.amount == 4 * WHEY_PRICE + 5 * CASEIN_PRICE


def test_prices_are_the_purchase_s_whatever_the_catalog_says_now() -> None:
    # Any price the saga carries is recorded as it is, a free item included: nobody
    # is asked for a current price (GRPC_EDGE_TARGET points nowhere).
    purchase = uuid.uuid4()

    with override_settings(GRPC_EDGE_TARGET="127.0.0.1:1"):
        outcome = services.order_create(
            purchase_id=purchase, customer_id=CUSTOMER, items=[whey(2, 999), casein(1, 0)]
        )

    assert outcome.order.amount == 2 * 999
    assert selectors.order_lines(order_id=purchase) == [(WHEY, 2, 999), (CASEIN, 1, 0)]


def test_repeats_of_a_product_are_one_line() -> None:
    purchase = uuid.uuid4()

    services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[whey(2), whey(3, name="Whey (old)")]
    )

    line = OrderLine.objects.get(order_id=purchase)
    assert (line.quantity, line.unit_price, line.line_total) == (5, WHEY_PRICE, 5 * WHEY_PRICE)
    assert line.name == WHEY_NAME  # a name never refuses a line: the first one stays


def test_a_line_without_a_name_is_recorded_with_an_empty_one() -> None:
    # A purchase in flight when names were added to the saga carries none.
    purchase = uuid.uuid4()

    services.order_create(
        purchase_id=purchase,
        customer_id=CUSTOMER,
        items=[OrderItem(product_id=WHEY, quantity=1, unit_price=WHEY_PRICE)],
    )

    line = OrderLine.objects.get(order_id=purchase)
    assert (line.name, str(line)) == ("", f"product {WHEY} x 1")


def test_a_name_longer_than_a_line_holds_is_cut() -> None:
    purchase = uuid.uuid4()

    services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1, name="é" * 250)]
    )

    assert OrderLine.objects.get(order_id=purchase).name == "é" * MAX_NAME_LENGTH


def test_a_repeat_answers_the_first_order_and_creates_nothing() -> None:
    purchase = uuid.uuid4()
    first = services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    again = services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    assert not again.changed
    assert (again.order.id, again.order.amount) == (first.order.id, first.order.amount)
    assert (Order.objects.count(), OrderLine.objects.count()) == (1, 1)


def test_a_repeat_with_another_name_answers_the_first_order_unchanged() -> None:
    # Names describe the lines: a retry of a step whose order was recorded without one
    # (by the code before names came back) must not become a conflict.
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1, name="")])

    again = services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    assert (again.order.status, again.changed) == (Order.Status.CREATED, False)
    assert OrderLine.objects.get(order_id=purchase).name == ""


@pytest.mark.parametrize(
    ("items", "why"),
    [([whey(2)], "another quantity"), ([whey(1, WHEY_PRICE + 1)], "another price")],
)
def test_other_contents_under_a_used_purchase_id_conflict(items: list[OrderItem], why: str) -> None:
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    error = refusal(purchase_id=purchase, customer_id=CUSTOMER, items=items)

    assert error.code is ErrorCode.CONFLICT, why
    line = OrderLine.objects.get(order_id=purchase)
    assert (line.quantity, line.unit_price) == (1, WHEY_PRICE)


# ------------------------------------------------------------------ cancel


def test_cancel_twice_changes_the_order_once() -> None:
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    first = services.order_cancel(purchase_id=purchase)
    second = services.order_cancel(purchase_id=purchase)

    assert (first.changed, second.changed) == (True, False)
    assert first.order.status == second.order.status == Order.Status.CANCELLED
    order = Order.objects.get(id=purchase)
    assert (order.status, order.customer_id, order.lines.count()) == ("CANCELLED", CUSTOMER, 1)


def test_cancel_before_create_leaves_a_tombstone_and_the_late_create_does_nothing() -> None:
    purchase = uuid.uuid4()

    cancelled = services.order_cancel(purchase_id=purchase)
    late = services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    assert cancelled.order.status == late.order.status == Order.Status.CANCELLED
    assert not late.changed
    tombstone = Order.objects.get(id=purchase)
    assert tombstone.is_tombstone
    assert (tombstone.amount, tombstone.lines.count()) == (0, 0)


def test_a_create_after_a_cancel_answers_the_cancelled_order() -> None:
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])
    services.order_cancel(purchase_id=purchase)

    late = services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    assert (late.order.status, late.changed) == (Order.Status.CANCELLED, False)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("customer_id", "items", "why"),
    [
        (CUSTOMER, [], "no items"),
        (CUSTOMER, [whey(0)], "quantity below 1"),
        (CUSTOMER, [whey(-3)], "negative quantity"),
        (CUSTOMER, [OrderItem(product_id=0, quantity=1, unit_price=1)], "product id 0"),
        (CUSTOMER, [whey(1, -1)], "negative unit price"),
        (CUSTOMER, [whey(1, MAX_INT64 + 1)], "unit price beyond int64"),
        (CUSTOMER, [whey(1), whey(1, WHEY_PRICE + 1)], "one product at two prices"),
        (CUSTOMER, [whey(2, MAX_INT64 // 2 + 1)], "a line total beyond int64"),
        (CUSTOMER, [whey(1, MAX_INT64), casein(1, 1)], "a total beyond int64"),
        (0, [whey(1)], "no customer"),
    ],
)
def test_bad_input_is_invalid_and_writes_nothing(
    customer_id: int, items: list[OrderItem], why: str
) -> None:
    error = refusal(purchase_id=uuid.uuid4(), customer_id=customer_id, items=items)

    assert error.code is ErrorCode.INVALID_INPUT, why
    assert_nothing_written()


def test_the_largest_total_an_amount_can_hold_is_accepted() -> None:
    purchase = uuid.uuid4()

    outcome = services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1, MAX_INT64 - 1), casein(1, 1)]
    )

    assert outcome.order.amount == MAX_INT64


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1234", None])
def test_a_purchase_id_that_is_no_uuid_is_invalid(value: Any) -> None:
    with pytest.raises(ApplicationError) as raised:
        parse_purchase_id(value)
    assert raised.value.code is ErrorCode.INVALID_INPUT


def test_more_units_of_a_product_than_the_limit_is_refused() -> None:
    with override_settings(ORDER_MAX_QUANTITY_PER_LINE=10):
        error = refusal(purchase_id=uuid.uuid4(), customer_id=CUSTOMER, items=[whey(6), whey(5)])

    assert error.code is ErrorCode.FAILED_PRECONDITION
    assert error.details["rule"] == "ORDER_MAX_QUANTITY_PER_LINE"
    assert_nothing_written()


def test_more_products_than_the_limit_is_refused() -> None:
    with override_settings(ORDER_MAX_LINES=1):
        error = refusal(purchase_id=uuid.uuid4(), customer_id=CUSTOMER, items=[whey(1), casein(1)])

    assert error.code is ErrorCode.FAILED_PRECONDITION
    assert error.details["rule"] == "ORDER_MAX_LINES"
    assert_nothing_written()


# ------------------------------------------------------------------ cache upkeep


def test_a_cancel_is_read_at_once_through_the_cache(
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])
    assert selectors.order_get(order_id=purchase)["status"] == "CREATED"  # type: ignore[index]

    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(purchase_id=purchase)

    assert selectors.order_get(order_id=purchase)["status"] == "CANCELLED"  # type: ignore[index]


def test_a_miss_read_before_the_create_does_not_hide_the_order(
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase = uuid.uuid4()
    assert selectors.order_get(order_id=purchase) is None  # a miss, cached

    with django_capture_on_commit_callbacks(execute=True):
        services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[whey(1)])

    order = selectors.order_get(order_id=purchase)
    assert order is not None and order["lines"][0]["product_id"] == WHEY
