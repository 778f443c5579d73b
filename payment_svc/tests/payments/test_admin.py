"""The payments admin, in-process: staff find and read payments; nobody edits them."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from payment_svc.payments import services

pytestmark = pytest.mark.django_db

ADMIN = "/admin/payment/payments/payment"
CUSTOMER = 31


@pytest.fixture
def staff_client(admin_client: Client) -> Client:
    """A superuser's client: pytest-django's `admin_client`."""
    return admin_client


@pytest.fixture
def payment_id() -> uuid.UUID:
    purchase = uuid.uuid4()
    services.payment_create(
        purchase_id=purchase, customer_id=CUSTOMER, amount=24460, currency_code="VND"
    )
    return purchase


def test_the_list_shows_status_customer_amount_and_date(
    staff_client: Client, payment_id: uuid.UUID
) -> None:
    page = staff_client.get(f"{ADMIN}/")

    assert page.status_code == 200
    text = page.content.decode()
    assert str(payment_id) in text
    assert "COMPLETED" in text and str(CUSTOMER) in text and "24460" in text
    for column in ("status", "customer_id", "amount", "created_at"):
        assert f"column-{column}" in text


@pytest.mark.parametrize(
    "query",
    [
        "status__exact=COMPLETED",
        "status__exact=REFUNDED",
        "currency_code__exact=VND",
        "created_at__gte=2000-01-01+00:00:00%2B00:00",
        "created_at__year=2030",
    ],
)
def test_the_filters_answer(staff_client: Client, payment_id: uuid.UUID, query: str) -> None:
    assert staff_client.get(f"{ADMIN}/?{query}").status_code == 200


def test_the_status_filter_narrows_the_list(staff_client: Client, payment_id: uuid.UUID) -> None:
    completed = staff_client.get(f"{ADMIN}/?status__exact=COMPLETED").content.decode()
    refunded = staff_client.get(f"{ADMIN}/?status__exact=REFUNDED").content.decode()
    assert str(payment_id) in completed
    assert str(payment_id) not in refunded


def test_search_finds_by_id_part_of_it_and_customer(
    staff_client: Client, payment_id: uuid.UUID
) -> None:
    for term in (str(payment_id), str(payment_id)[:8], str(CUSTOMER)):
        page = staff_client.get(f"{ADMIN}/", {"q": term})
        assert page.status_code == 200
        assert str(payment_id) in page.content.decode(), term
    other = staff_client.get(f"{ADMIN}/", {"q": "no such thing"})
    assert str(payment_id) not in other.content.decode()


def test_the_detail_page_is_read_only(staff_client: Client, payment_id: uuid.UUID) -> None:
    page = staff_client.get(f"{ADMIN}/{payment_id}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "24460" in text and "VND" in text
    assert 'name="_save"' not in text


def test_staff_may_not_add_change_or_delete(staff_client: Client, payment_id: uuid.UUID) -> None:
    assert staff_client.get(f"{ADMIN}/add/").status_code == 403
    assert staff_client.get(f"{ADMIN}/{payment_id}/delete/").status_code == 403
    response = staff_client.post(f"{ADMIN}/{payment_id}/change/", {"status": "REFUNDED"})
    assert response.status_code == 403
    assert services.payment_refund(purchase_id=payment_id).changed  # it was still COMPLETED


@pytest.mark.parametrize("path", ["/", "/?status__exact=COMPLETED", "/?q=x"])
def test_anonymous_is_sent_to_the_login(client: Client, path: str) -> None:
    response = client.get(f"{ADMIN}{path}")

    assert response.status_code == 302
    assert "/admin/payment/login/" in response["Location"]
