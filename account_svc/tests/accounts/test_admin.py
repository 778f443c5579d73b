"""The admin at /admin/account/: customers searchable by email and name."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.test import Client

from account_svc.accounts import services
from account_svc.accounts.models import Customer
from account_svc.tests.conftest import PASSWORD, new_email


def _customer(first: str, last: str, *, email: str | None = None) -> Customer:
    return services.customer_register(
        email=email or new_email("admin"),
        password=PASSWORD,
        first_name=first,
        last_name=last,
        address="Somewhere 2",
        phone_number="0301234567",
    )


@pytest.fixture
def admin_client() -> Client:
    admin = _customer("Ada", "Admin")
    services.customer_staff_set(email=admin.email, superuser=True)
    client = Client()
    client.force_login(cast(Any, Customer.objects.get(pk=admin.pk)))
    return client


def _search(client: Client, q: str) -> str:
    response = client.get("/admin/account/accounts/customer/", {"q": q})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_customers_are_found_by_email_first_and_last_name(admin_client: Client) -> None:
    target = _customer("Zephyrine", "Quillfeather", email=new_email("zq"))
    bystander = _customer("Bob", "Plain")

    for q in (target.email, "Zephyrine", "quillfeather"):
        page = _search(admin_client, q)
        assert target.email in page, q
        assert bystander.email not in page, q


@pytest.mark.django_db
def test_the_admin_login_page_is_served_under_the_service_prefix() -> None:
    response = Client().get("/admin/account/login/")
    assert response.status_code == 200
    assert b"password" in response.content.lower()


@pytest.mark.django_db
def test_a_customer_without_staff_cannot_use_the_admin() -> None:
    customer = _customer("No", "Staff")
    client = Client()
    client.force_login(cast(Any, customer))

    response = client.get("/admin/account/accounts/customer/")

    assert response.status_code == 302
    assert "/admin/account/login/" in response["Location"]
