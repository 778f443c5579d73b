"""The admin at /admin/account/: customers searchable by email and name; its login is
the staff login every admin shares (docs/adr/0019): staff view, superusers change."""

from __future__ import annotations

import random
from typing import Any, cast

import pytest
from django.test import Client, override_settings

from account_svc.accounts import services
from account_svc.accounts.models import Customer
from account_svc.tests.conftest import PASSWORD, new_email
from common.errors import ApplicationError, ErrorCode


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


# --------------------------------------------- one admin identity (docs/adr/0019)

CUSTOMERS = "/admin/account/accounts/customer/"
LOGIN = "/admin/account/login/"


def _client_address() -> str:
    """An address of its own per test: the throttle's counters are the live ones."""
    return f"203.0.113.{random.randint(1, 254)}"


def _login_form(email: str, password: str = PASSWORD, *, address: str) -> tuple[Client, Any]:
    client = Client(HTTP_X_FORWARDED_FOR=address)
    response = client.post(
        f"{LOGIN}?next=/admin/account/",
        {"username": email, "password": password, "next": "/admin/account/"},
    )
    return client, response


def _staff(*, superuser: bool = False) -> Customer:
    customer = _customer("Sam", "Staff")
    return services.customer_staff_set(email=customer.email, superuser=superuser)


@pytest.mark.django_db
def test_staff_log_in_with_the_form_and_may_view_customers_but_not_change_them() -> None:
    staff, target = _staff(), _customer("Tia", "Target")
    client, response = _login_form(staff.email, address=_client_address())
    assert response.status_code == 302

    listing = client.get(CUSTOMERS)
    change = client.post(f"{CUSTOMERS}{target.pk}/change/", {"first_name": "Hacked"})

    assert listing.status_code == 200 and target.email in listing.content.decode()
    assert change.status_code == 403
    assert Customer.objects.get(pk=target.pk).first_name == "Tia"


@pytest.mark.django_db
def test_a_superuser_may_change_a_customer() -> None:
    boss, target = _staff(superuser=True), _customer("Tia", "Target")
    client, _ = _login_form(boss.email, address=_client_address())
    form = {
        "email": target.email,
        "first_name": "Tina",
        "last_name": target.last_name,
        "phone_number": target.phone_number,
        "address": target.address,
        "is_active": "on",
    }

    response = client.post(f"{CUSTOMERS}{target.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Customer.objects.get(pk=target.pk).first_name == "Tina"


@pytest.mark.django_db
def test_a_customer_is_refused_by_the_login_form_with_the_usual_error() -> None:
    customer = _customer("No", "Staff")

    client, response = _login_form(customer.email, address=_client_address())

    assert response.status_code == 200
    assert "Please enter the correct email and password" in response.content.decode()
    assert client.get(CUSTOMERS).status_code == 302


@pytest.mark.django_db
def test_revoking_staff_ends_the_account_admin_on_the_next_request() -> None:
    staff = _staff()
    client, _ = _login_form(staff.email, address=_client_address())
    assert client.get(CUSTOMERS).status_code == 200

    services.customer_staff_set(email=staff.email, is_staff=False)

    assert client.get(CUSTOMERS).status_code == 302


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_PAIR_THRESHOLD=2)
def test_the_admin_login_is_throttled_as_the_api_login_is() -> None:
    staff, address = _staff(), _client_address()
    for _ in range(2):
        _login_form(staff.email, "wrong-Password-1", address=address)

    client, response = _login_form(staff.email, address=address)

    assert response.status_code == 200
    assert "Too many failed logins; try again in" in response.content.decode()
    assert client.get(CUSTOMERS).status_code == 302


@pytest.mark.django_db
def test_staff_login_answers_staff_and_refuses_customers_and_wrong_passwords() -> None:
    staff, customer, address = _staff(), _customer("No", "Staff"), _client_address()

    assert services.staff_login(email=staff.email.upper(), password=PASSWORD, client_ip=address)
    for email, password, code in (
        (customer.email, PASSWORD, ErrorCode.PERMISSION_DENIED),
        (staff.email, "wrong-Password-1", ErrorCode.UNAUTHENTICATED),
    ):
        with pytest.raises(ApplicationError) as refused:
            services.staff_login(email=email, password=password, client_ip=address)
        assert refused.value.code is code
