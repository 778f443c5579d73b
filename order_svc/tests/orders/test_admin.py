"""The orders admin, in-process: staff find and read orders; nobody edits the saga's record."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from order_svc.orders import services
from order_svc.orders.services import OrderItem

pytestmark = pytest.mark.django_db

ADMIN = "/admin/order/orders/order"
CUSTOMER = 31
PRODUCT, PRICE, NAME = 7_654_321, 1390, "Whey Isolate 1kg"


@pytest.fixture
def staff_client(admin_client: Client) -> Client:
    """A superuser's client: pytest-django's `admin_client`."""
    return admin_client


@pytest.fixture
def order_id() -> uuid.UUID:
    purchase = uuid.uuid4()
    services.order_create(
        purchase_id=purchase,
        customer_id=CUSTOMER,
        items=[OrderItem(product_id=PRODUCT, quantity=2, unit_price=PRICE, name=NAME)],
    )
    return purchase


def test_the_list_shows_status_customer_amount_and_date(
    staff_client: Client, order_id: uuid.UUID
) -> None:
    page = staff_client.get(f"{ADMIN}/")

    assert page.status_code == 200
    text = page.content.decode()
    assert str(order_id) in text
    assert "CREATED" in text and str(CUSTOMER) in text and str(2 * PRICE) in text
    for column in ("status", "customer", "amount", "created"):
        assert f"column-{column}" in text


@pytest.mark.parametrize(
    "query",
    [
        "status__exact=CREATED",
        "status__exact=CANCELLED",
        "created_at__gte=2000-01-01+00:00:00%2B00:00",
        "created_at__year=2030",
    ],
)
def test_the_filters_answer(staff_client: Client, order_id: uuid.UUID, query: str) -> None:
    assert staff_client.get(f"{ADMIN}/?{query}").status_code == 200


def test_the_status_filter_narrows_the_list(staff_client: Client, order_id: uuid.UUID) -> None:
    assert str(order_id) in staff_client.get(f"{ADMIN}/?status__exact=CREATED").content.decode()
    assert (
        str(order_id) not in staff_client.get(f"{ADMIN}/?status__exact=CANCELLED").content.decode()
    )


def test_search_finds_by_id_part_of_it_customer_and_product(
    staff_client: Client, order_id: uuid.UUID
) -> None:
    for term in (str(order_id), str(order_id)[:8], str(CUSTOMER), NAME, "isolate"):
        page = staff_client.get(f"{ADMIN}/", {"q": term})
        assert page.status_code == 200
        assert str(order_id) in page.content.decode(), term
    other = staff_client.get(f"{ADMIN}/", {"q": "no such thing"})
    assert str(order_id) not in other.content.decode()


def test_the_detail_page_shows_the_lines_read_only(
    staff_client: Client, order_id: uuid.UUID
) -> None:
    page = staff_client.get(f"{ADMIN}/{order_id}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert NAME in text and str(PRODUCT) in text and str(PRICE) in text
    assert 'name="_save"' not in text  # nothing to save: read-only


def test_staff_may_not_add_change_or_delete(staff_client: Client, order_id: uuid.UUID) -> None:
    assert staff_client.get(f"{ADMIN}/add/").status_code == 403
    assert staff_client.get(f"{ADMIN}/{order_id}/delete/").status_code == 403
    response = staff_client.post(f"{ADMIN}/{order_id}/change/", {"status": "CANCELLED"})
    assert response.status_code == 403
    assert services.order_cancel(purchase_id=order_id).changed  # it was still CREATED


def test_a_tombstone_shows_in_the_list(staff_client: Client) -> None:
    purchase = uuid.uuid4()
    services.order_cancel(purchase_id=purchase)

    assert staff_client.get(f"{ADMIN}/{purchase}/change/").status_code == 200


@pytest.mark.parametrize("path", ["/", "/?status__exact=CREATED", "/?q=x"])
def test_anonymous_is_sent_to_the_login(client: Client, path: str) -> None:
    response = client.get(f"{ADMIN}{path}")

    assert response.status_code == 302
    assert "/admin/order/login/" in response["Location"]
