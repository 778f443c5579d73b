"""CreateOrder and CancelOrder as services, in-process against the test database.

Prices come from the running product service through the gRPC edge, as in production.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import override_settings

from common.errors import ApplicationError, ErrorCode
from common.ids import parse_purchase_id
from order_svc.orders import selectors, services
from order_svc.orders.models import Order, OrderLine

pytestmark = pytest.mark.django_db

CUSTOMER = 7


def refusal(**kwargs: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        services.order_create(**kwargs)
    return raised.value


def assert_nothing_written() -> None:
    assert Order.objects.count() == 0
    assert OrderLine.objects.count() == 0


# ------------------------------------------------------------------ create


def test_an_order_keeps_each_line_at_the_price_of_the_moment(
    whey: dict[str, Any], casein: dict[str, Any]
) -> None:
    purchase = uuid.uuid4()

    outcome = services.order_create(
        purchase_id=purchase,
        customer_id=CUSTOMER,
        items=[(casein["id"], 5), (whey["id"], 4)],
    )

    assert outcome.changed
    order = Order.objects.get(id=purchase)
    assert (order.status, order.customer_id) == (Order.Status.CREATED, CUSTOMER)
    assert order.amount == 4 * whey["price"] + 5 * casein["price"]
    lines = list(order.lines.values_list("product_id", "name", "unit_price", "quantity"))
    assert lines == sorted(
        [
            (whey["id"], whey["name"], whey["price"], 4),
            (casein["id"], casein["name"], casein["price"], 5),
        ]
    )


def test_repeats_of_a_product_are_one_line(whey: dict[str, Any]) -> None:
    purchase = uuid.uuid4()

    services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 2), (whey["id"], 3)]
    )

    line = OrderLine.objects.get(order_id=purchase)
    assert (line.quantity, line.line_total) == (5, 5 * whey["price"])


def test_a_repeat_answers_the_first_order_and_creates_nothing(whey: dict[str, Any]) -> None:
    purchase = uuid.uuid4()
    first = services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)]
    )

    again = services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)]
    )

    assert not again.changed
    assert (again.order.id, again.order.amount) == (first.order.id, first.order.amount)
    assert (Order.objects.count(), OrderLine.objects.count()) == (1, 1)


def test_other_contents_under_a_used_purchase_id_conflict(whey: dict[str, Any]) -> None:
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)])

    error = refusal(purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 2)])

    assert error.code is ErrorCode.CONFLICT
    assert OrderLine.objects.get(order_id=purchase).quantity == 1


# ------------------------------------------------------------------ cancel


def test_cancel_twice_changes_the_order_once(whey: dict[str, Any]) -> None:
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)])

    first = services.order_cancel(purchase_id=purchase)
    second = services.order_cancel(purchase_id=purchase)

    assert (first.changed, second.changed) == (True, False)
    assert first.order.status == second.order.status == Order.Status.CANCELLED
    order = Order.objects.get(id=purchase)
    assert (order.status, order.customer_id, order.lines.count()) == ("CANCELLED", CUSTOMER, 1)


def test_cancel_before_create_leaves_a_tombstone_and_the_late_create_does_nothing(
    whey: dict[str, Any],
) -> None:
    purchase = uuid.uuid4()

    cancelled = services.order_cancel(purchase_id=purchase)
    late = services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)]
    )

    assert cancelled.order.status == late.order.status == Order.Status.CANCELLED
    assert not late.changed
    tombstone = Order.objects.get(id=purchase)
    assert tombstone.is_tombstone
    assert (tombstone.amount, tombstone.lines.count()) == (0, 0)


def test_a_create_after_a_cancel_answers_the_cancelled_order(whey: dict[str, Any]) -> None:
    purchase = uuid.uuid4()
    services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)])
    services.order_cancel(purchase_id=purchase)

    late = services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)]
    )

    assert (late.order.status, late.changed) == (Order.Status.CANCELLED, False)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("customer_id", "items", "why"),
    [
        (CUSTOMER, [], "no items"),
        (CUSTOMER, [("WHEY", 0)], "quantity below 1"),
        (CUSTOMER, [("WHEY", -3)], "negative quantity"),
        (CUSTOMER, [(0, 1)], "product id 0"),
        (0, [("WHEY", 1)], "no customer"),
    ],
)
def test_bad_input_is_invalid_and_writes_nothing(
    whey: dict[str, Any], customer_id: int, items: list[tuple[Any, int]], why: str
) -> None:
    items = [(whey["id"] if p == "WHEY" else p, q) for p, q in items]

    error = refusal(purchase_id=uuid.uuid4(), customer_id=customer_id, items=items)

    assert error.code is ErrorCode.INVALID_INPUT, why
    assert_nothing_written()


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1234", None])
def test_a_purchase_id_that_is_no_uuid_is_invalid(value: Any) -> None:
    with pytest.raises(ApplicationError) as raised:
        parse_purchase_id(value)
    assert raised.value.code is ErrorCode.INVALID_INPUT


def test_more_units_of_a_product_than_the_limit_is_refused(whey: dict[str, Any]) -> None:
    with override_settings(ORDER_MAX_QUANTITY_PER_LINE=10):
        error = refusal(
            purchase_id=uuid.uuid4(), customer_id=CUSTOMER, items=[(whey["id"], 6), (whey["id"], 5)]
        )

    assert error.code is ErrorCode.FAILED_PRECONDITION
    assert error.details["rule"] == "ORDER_MAX_QUANTITY_PER_LINE"
    assert_nothing_written()


def test_more_products_than_the_limit_is_refused(
    whey: dict[str, Any], casein: dict[str, Any]
) -> None:
    with override_settings(ORDER_MAX_LINES=1):
        error = refusal(
            purchase_id=uuid.uuid4(),
            customer_id=CUSTOMER,
            items=[(whey["id"], 1), (casein["id"], 1)],
        )

    assert error.code is ErrorCode.FAILED_PRECONDITION
    assert error.details["rule"] == "ORDER_MAX_LINES"
    assert_nothing_written()


def test_an_unknown_product_is_not_found(whey: dict[str, Any]) -> None:
    unknown = 2**62 + 17

    error = refusal(
        purchase_id=uuid.uuid4(), customer_id=CUSTOMER, items=[(whey["id"], 1), (unknown, 1)]
    )

    assert error.code is ErrorCode.NOT_FOUND
    assert error.details["product_ids"] == [unknown]
    assert_nothing_written()


def test_a_product_service_that_does_not_answer_is_unavailable_so_the_saga_retries(
    whey: dict[str, Any],
) -> None:
    purchase = uuid.uuid4()
    with override_settings(GRPC_EDGE_TARGET="127.0.0.1:1"):
        error = refusal(
            purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)], product_timeout=0.5
        )

    assert error.code is ErrorCode.UNAVAILABLE
    assert_nothing_written()
    # And the retry, once the product service answers, creates the order.
    assert services.order_create(
        purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)]
    ).changed


# ------------------------------------------------------------------ cache upkeep


def test_a_cancel_is_read_at_once_through_the_cache(
    whey: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    purchase = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)])
    assert selectors.order_get(order_id=purchase)["status"] == "CREATED"  # type: ignore[index]

    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(purchase_id=purchase)

    assert selectors.order_get(order_id=purchase)["status"] == "CANCELLED"  # type: ignore[index]


def test_a_miss_read_before_the_create_does_not_hide_the_order(
    whey: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    purchase = uuid.uuid4()
    assert selectors.order_get(order_id=purchase) is None  # a miss, cached

    with django_capture_on_commit_callbacks(execute=True):
        services.order_create(purchase_id=purchase, customer_id=CUSTOMER, items=[(whey["id"], 1)])

    order = selectors.order_get(order_id=purchase)
    assert order is not None and order["lines"][0]["product_id"] == whey["id"]
