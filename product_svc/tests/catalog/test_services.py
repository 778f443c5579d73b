"""Catalog writes, in-process against the test database: what they record and refuse."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.errors import ApplicationError, ErrorCode
from common.ids import parse_purchase_id
from product_svc.catalog import selectors, services
from product_svc.catalog.models import Category, Product, Reservation

pytestmark = pytest.mark.django_db


def _category() -> Category:
    return services.category_create(name=f"c-{uuid.uuid4().hex[:10]}")


def _product(**fields: Any) -> Product:
    body = {"name": "p", "price": 100, "inventory": 10, **fields}
    category_id = body.pop("category_id", None) or _category().id
    return services.product_create(category_id=category_id, **body)


def _inventory(product: Product) -> int:
    return Product.objects.get(id=product.id).inventory


def test_a_new_product_is_readable_through_the_filter_before_its_commit_callbacks() -> None:
    # The session's filter started empty; the id must have gone in with the insert.
    product = _product(name="fresh")

    found = selectors.product_get(product_id=product.id)

    assert found is not None and found["name"] == "fresh"


def test_a_product_in_an_unknown_category_is_refused() -> None:
    with pytest.raises(ApplicationError) as raised:
        _product(category_id=10**12)

    assert raised.value.code is ErrorCode.INVALID_INPUT
    assert not Product.objects.exists()


def test_an_update_is_read_back_after_commit(django_capture_on_commit_callbacks: Any) -> None:
    product = _product(price=100)
    assert selectors.product_get(product_id=product.id)["price"] == 100  # type: ignore[index]

    with django_capture_on_commit_callbacks(execute=True):
        services.product_update(product_id=product.id, price=250, name="renamed")

    found = selectors.product_get(product_id=product.id)
    assert found is not None and (found["price"], found["name"]) == (250, "renamed")


def test_a_reserve_records_its_lines_and_invalidates_the_cached_stock(
    django_capture_on_commit_callbacks: Any,
) -> None:
    a, b = _product(inventory=10), _product(inventory=4)
    assert selectors.product_get(product_id=a.id)["inventory"] == 10  # type: ignore[index]
    purchase = uuid.uuid4()

    with django_capture_on_commit_callbacks(execute=True):
        result = services.inventory_reserve(purchase_id=purchase, items=[(b.id, 4), (a.id, 3)])

    assert result.changed is True
    assert [(line.product_id, line.quantity) for line in result.lines] == sorted(
        [(a.id, 3), (b.id, 4)]
    )
    reservation = Reservation.objects.get(purchase_id=purchase)
    assert reservation.state == Reservation.State.RESERVED
    assert sorted(reservation.lines.values_list("product_id", "quantity")) == sorted(
        [(a.id, 3), (b.id, 4)]
    )
    assert (_inventory(a), _inventory(b)) == (7, 0)
    assert selectors.product_get(product_id=a.id)["inventory"] == 7  # type: ignore[index]


def test_a_repeat_reserve_answers_the_first_result_and_changes_nothing() -> None:
    product = _product(inventory=10)
    purchase = uuid.uuid4()
    services.inventory_reserve(purchase_id=purchase, items=[(product.id, 3)])

    again = services.inventory_reserve(purchase_id=purchase, items=[(product.id, 3)])

    assert again.changed is False
    assert [(line.product_id, line.quantity) for line in again.lines] == [(product.id, 3)]
    assert _inventory(product) == 7


def test_a_refused_reserve_leaves_no_reservation_and_no_stock_change() -> None:
    a, b = _product(inventory=10), _product(inventory=1)
    purchase = uuid.uuid4()

    with pytest.raises(ApplicationError) as raised:
        services.inventory_reserve(purchase_id=purchase, items=[(a.id, 5), (b.id, 2)])

    assert raised.value.code is ErrorCode.INSUFFICIENT_STOCK
    assert raised.value.details == {"product_id": b.id, "available": 1, "wanted": 2}
    assert not Reservation.objects.filter(purchase_id=purchase).exists()
    assert (_inventory(a), _inventory(b)) == (10, 1)


def test_a_release_gives_back_once_and_keeps_the_record() -> None:
    product = _product(inventory=10)
    purchase = uuid.uuid4()
    services.inventory_reserve(purchase_id=purchase, items=[(product.id, 6)])

    first = services.inventory_release(purchase_id=purchase)
    again = services.inventory_release(purchase_id=purchase)

    assert (first.released, first.changed) == (True, True)
    assert (again.released, again.changed) == (True, False)
    assert _inventory(product) == 10
    reservation = Reservation.objects.get(purchase_id=purchase)
    assert reservation.state == Reservation.State.RELEASED
    assert reservation.lines.count() == 1


def test_a_release_before_the_reserve_leaves_a_tombstone_that_stops_the_reserve() -> None:
    product = _product(inventory=10)
    purchase = uuid.uuid4()

    released = services.inventory_release(purchase_id=purchase)
    with pytest.raises(ApplicationError) as raised:
        services.inventory_reserve(purchase_id=purchase, items=[(product.id, 1)])

    assert (released.released, released.changed) == (False, False)
    assert raised.value.code is ErrorCode.FAILED_PRECONDITION
    tombstone = Reservation.objects.get(purchase_id=purchase)
    assert tombstone.state == Reservation.State.RELEASED
    assert tombstone.lines.count() == 0
    assert _inventory(product) == 10


@pytest.mark.parametrize("text", ["", "nope", "1234", "g" * 32])
def test_a_purchase_id_must_be_a_uuid(text: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        parse_purchase_id(text)

    assert raised.value.code is ErrorCode.INVALID_INPUT


def test_category_names_are_unique() -> None:
    category = _category()

    with pytest.raises(ApplicationError) as raised:
        services.category_create(name=category.name)

    assert raised.value.code is ErrorCode.CONFLICT
