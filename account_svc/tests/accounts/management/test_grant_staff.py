"""`manage.py grant_staff EMAIL`, which `make staff EMAIL=...` runs."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from account_svc.accounts import services
from account_svc.accounts.models import Customer
from account_svc.tests.conftest import PASSWORD, new_email
from common.auth import verify_access_token


def _customer() -> Customer:
    return services.customer_register(
        email=new_email("staff"),
        password=PASSWORD,
        first_name="Sam",
        last_name="Staff",
        address="Office 1",
        phone_number="0301234567",
    )


@pytest.mark.django_db
def test_grant_staff_makes_the_next_login_carry_the_staff_claim() -> None:
    customer = _customer()
    out = StringIO()

    call_command("grant_staff", customer.email, stdout=out)
    call_command("grant_staff", customer.email, stdout=out)  # idempotent

    stored = Customer.objects.get(pk=customer.pk)
    assert stored.is_staff is True and stored.is_superuser is False
    assert customer.email in out.getvalue()
    sign_in = services.customer_login(email=customer.email, password=PASSWORD, client_ip=None)
    assert verify_access_token(sign_in.pair.access_token).is_staff is True


@pytest.mark.django_db
def test_grant_staff_superuser_and_revoke() -> None:
    customer = _customer()

    call_command("grant_staff", customer.email, "--superuser", stdout=StringIO())
    assert Customer.objects.get(pk=customer.pk).is_superuser is True

    call_command("grant_staff", customer.email, "--revoke", stdout=StringIO())
    stored = Customer.objects.get(pk=customer.pk)
    assert stored.is_staff is False and stored.is_superuser is False


@pytest.mark.django_db
def test_grant_staff_of_an_unknown_email_fails_with_a_message() -> None:
    with pytest.raises(CommandError, match="No account"):
        call_command("grant_staff", new_email("nobody"), stdout=StringIO())
