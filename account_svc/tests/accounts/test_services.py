"""Account services in-process, against the test database (test_account_db)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from account_svc.accounts import services
from account_svc.accounts.models import Customer
from account_svc.tests.conftest import PASSWORD, claims_of, new_email
from common.auth import verify_access_token
from common.errors import ApplicationError, ErrorCode


def _register(email: str | None = None, **overrides: Any) -> Customer:
    fields: dict[str, Any] = {
        "email": email or new_email("svc"),
        "password": PASSWORD,
        "first_name": "Grace",
        "last_name": "Hopper",
        "address": "Arlington 1",
        "phone_number": "+1 703 555 0100",
    }
    fields.update(overrides)
    return services.customer_register(**fields)


@pytest.mark.django_db
def test_register_stores_a_hashed_password_and_a_lowercased_email() -> None:
    customer = _register(email="  Grace.Hopper+X@Example.COM ")

    stored = Customer.objects.get(pk=customer.pk)
    assert stored.email == "grace.hopper+x@example.com"
    assert PASSWORD not in stored.password
    assert stored.password.startswith("pbkdf2_sha256$")
    assert stored.check_password(PASSWORD)
    assert not stored.is_staff


@pytest.mark.django_db
def test_a_weak_password_is_refused_before_anything_is_written() -> None:
    before = Customer.objects.count()

    with pytest.raises(ApplicationError) as refused:
        _register(password="password")

    assert refused.value.code is ErrorCode.INVALID_INPUT
    assert "password" in refused.value.details["fields"]
    assert Customer.objects.count() == before


@pytest.mark.django_db
def test_the_same_email_in_another_case_is_a_conflict() -> None:
    customer = _register()

    with pytest.raises(ApplicationError) as refused:
        _register(email=customer.email.upper())

    assert refused.value.code is ErrorCode.CONFLICT
    assert refused.value.http_status == 409


def _race(n: int, action: Callable[[], Any]) -> list[Any]:
    """Run `action` in n threads released together; answer each result or exception."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = action()
        except Exception as exc:  # collected for the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_simultaneous_registrations_of_one_email_make_one_account() -> None:
    email = new_email("race")

    results = _race(4, lambda: _register(email=email))

    created = [r for r in results if isinstance(r, Customer)]
    conflicts = [r for r in results if isinstance(r, ApplicationError)]
    assert len(created) == 1, results
    assert len(conflicts) == 3 and all(c.code is ErrorCode.CONFLICT for c in conflicts)
    assert Customer.objects.filter(email=email).count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_refreshes_with_one_token_rotate_once() -> None:
    pair = services.token_pair_issue(customer=_register())

    results = _race(4, lambda: services.token_pair_refresh(refresh_token=pair.refresh_token))

    rotated = [r for r in results if isinstance(r, services.TokenPair)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(rotated) == 1, results
    assert len(refused) == 3 and all(r.code is ErrorCode.UNAUTHENTICATED for r in refused)


@pytest.mark.django_db
def test_a_refresh_carries_the_current_staff_role() -> None:
    customer = _register()
    pair = services.token_pair_issue(customer=customer)
    assert verify_access_token(pair.access_token).is_staff is False

    services.customer_staff_set(email=customer.email)
    refreshed = services.token_pair_refresh(refresh_token=pair.refresh_token)

    assert verify_access_token(refreshed.access_token).is_staff is True
    assert claims_of(refreshed.refresh_token)["is_staff"] is True


@pytest.mark.django_db
def test_a_deactivated_customer_cannot_refresh() -> None:
    customer = _register()
    pair = services.token_pair_issue(customer=customer)
    Customer.objects.filter(pk=customer.pk).update(is_active=False)

    with pytest.raises(ApplicationError) as refused:
        services.token_pair_refresh(refresh_token=pair.refresh_token)

    assert refused.value.code is ErrorCode.UNAUTHENTICATED


@pytest.mark.django_db
def test_a_deactivated_customer_cannot_log_in() -> None:
    customer = _register()
    Customer.objects.filter(pk=customer.pk).update(is_active=False)

    with pytest.raises(ApplicationError) as refused:
        services.customer_login(email=customer.email, password=PASSWORD, client_ip="10.9.9.9")

    assert refused.value.code is ErrorCode.UNAUTHENTICATED


@pytest.mark.django_db
def test_revoking_is_idempotent_and_final() -> None:
    pair = services.token_pair_issue(customer=_register())

    services.token_revoke(refresh_token=pair.refresh_token)
    services.token_revoke(refresh_token=pair.refresh_token)

    with pytest.raises(ApplicationError):
        services.token_pair_refresh(refresh_token=pair.refresh_token)


@pytest.mark.django_db
def test_staff_can_be_granted_and_revoked() -> None:
    customer = _register()

    services.customer_staff_set(email=customer.email.upper())
    assert Customer.objects.get(pk=customer.pk).is_staff is True

    services.customer_staff_set(email=customer.email, is_staff=False)
    stored = Customer.objects.get(pk=customer.pk)
    assert stored.is_staff is False and stored.is_superuser is False


@pytest.mark.django_db
def test_granting_staff_to_an_unknown_email_is_not_found() -> None:
    with pytest.raises(ApplicationError) as refused:
        services.customer_staff_set(email=new_email("nobody"))
    assert refused.value.code is ErrorCode.NOT_FOUND
