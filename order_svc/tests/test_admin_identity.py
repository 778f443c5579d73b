"""common.admin_identity in one service's admin, in-process, the account service faked.

The shared code needs a service's settings and database to run; the order service
hosts its tests (every service but the account one runs the same backend, from
common.settings.build). The live account service is exercised by
account_svc/tests/accounts/test_grpc.py and tests/browser/test_admin.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from common.admin_identity.backends import shadow_username
from common.admin_identity.testing import FakeIdentities, logged_in_client
from common.testing import assert_error

pytestmark = pytest.mark.django_db

LOGIN = "/admin/order/login/"
INDEX = "/admin/order/"
ORDERS = "/admin/order/orders/order/"
PASSWORD = "staff-Secret-42"
NORMAL_ERROR = "Please enter the correct email and password for a staff account"


def _login(email: str, password: str = PASSWORD, **headers: Any) -> tuple[Client, Any]:
    client = Client()
    response = client.post(
        f"{LOGIN}?next={INDEX}",
        {"username": email, "password": password, "next": INDEX},
        **headers,
    )
    return client, response


def test_a_staff_account_logs_in_as_a_shadow_user_without_a_password(
    fake_identities: FakeIdentities,
) -> None:
    account = fake_identities.add("ops@example.com", PASSWORD)

    client, response = _login("ops@example.com")

    assert response.status_code == 302 and response["Location"] == INDEX
    user = User.objects.get(username=shadow_username(account.customer_id))
    assert (user.email, user.is_staff, user.is_superuser) == ("ops@example.com", True, False)
    assert not user.has_usable_password()
    assert client.get(INDEX).status_code == 200


@pytest.mark.parametrize("kind", ["customer", "wrong password", "unknown email"])
def test_a_refused_login_answers_the_admins_usual_error(
    fake_identities: FakeIdentities, kind: str
) -> None:
    fake_identities.add("shopper@example.com", PASSWORD, staff=False)
    fake_identities.add("ops@example.com", PASSWORD)
    email, password = {
        "customer": ("shopper@example.com", PASSWORD),
        "wrong password": ("ops@example.com", "not-it"),
        "unknown email": ("nobody@example.com", PASSWORD),
    }[kind]

    client, response = _login(email, password)

    assert response.status_code == 200
    assert NORMAL_ERROR in response.content.decode()
    assert client.get(INDEX).status_code == 302
    assert not User.objects.exists()


def test_a_throttled_login_says_how_long_to_wait(fake_identities: FakeIdentities) -> None:
    fake_identities.add("ops@example.com", PASSWORD)
    fake_identities.throttle = 42

    _, response = _login("ops@example.com")

    assert response.status_code == 200
    assert "Too many failed logins; try again in 42 seconds." in response.content.decode()


def test_a_login_while_the_account_service_is_down_says_so(
    fake_identities: FakeIdentities,
) -> None:
    fake_identities.add("ops@example.com", PASSWORD)
    fake_identities.down = True

    _, response = _login("ops@example.com")

    assert response.status_code == 200
    assert "The account service, which checks every admin login, is not answering" in (
        response.content.decode()
    )


def test_the_login_hands_the_client_address_the_edge_saw_to_the_account_service(
    fake_identities: FakeIdentities,
) -> None:
    fake_identities.add("ops@example.com", PASSWORD)

    _login("ops@example.com", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9")

    assert fake_identities.logins[-1]["client_address"] == "203.0.113.9"


def test_revoking_staff_ends_access_on_the_next_request(fake_identities: FakeIdentities) -> None:
    account = fake_identities.add("ops@example.com", PASSWORD)
    client = logged_in_client(account)
    assert client.get(ORDERS).status_code == 200

    fake_identities.change(account.customer_id, is_staff=False)
    response = client.get(ORDERS)

    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not User.objects.get(username=shadow_username(account.customer_id)).is_staff


def test_an_account_deleted_or_deactivated_is_logged_out(fake_identities: FakeIdentities) -> None:
    gone = fake_identities.add("gone@example.com", PASSWORD)
    inactive = fake_identities.add("inactive@example.com", PASSWORD)
    gone_client, inactive_client = logged_in_client(gone), logged_in_client(inactive)

    del fake_identities.accounts[gone.customer_id]
    fake_identities.change(inactive.customer_id, is_active=False)

    assert gone_client.get(ORDERS).status_code == 302
    assert inactive_client.get(ORDERS).status_code == 302


def test_roles_and_names_follow_the_account_service_on_each_request(
    fake_identities: FakeIdentities,
) -> None:
    account = fake_identities.add("ops@example.com", PASSWORD, superuser=True)
    client = logged_in_client(account)

    fake_identities.change(account.customer_id, is_superuser=False, email="new@example.com")
    assert client.get(ORDERS).status_code == 200

    user = User.objects.get(username=shadow_username(account.customer_id))
    assert (user.email, user.is_superuser, user.is_staff) == ("new@example.com", False, True)


def test_a_page_whose_roles_cannot_be_checked_answers_503_not_500(
    fake_identities: FakeIdentities,
) -> None:
    client = logged_in_client(fake_identities.add("ops@example.com", PASSWORD))
    fake_identities.down = True

    response = client.get(ORDERS)

    assert_error(response, 503, "unavailable")
    assert response["Retry-After"] == "5"


def test_staff_may_view_and_superusers_may_change(fake_identities: FakeIdentities) -> None:
    staff = logged_in_client(fake_identities.add("staff@example.com", PASSWORD))
    boss = logged_in_client(fake_identities.add("boss@example.com", PASSWORD, superuser=True))
    staff_user = User.objects.get(email="staff@example.com")
    boss_user = User.objects.get(email="boss@example.com")

    assert staff_user.has_perm("orders.view_order")
    assert not staff_user.has_perm("orders.change_order")
    assert not staff_user.has_perm("orders.delete_order")
    assert boss_user.has_perm("orders.change_order")
    # The shadow users' own page: listed, read-only, for both.
    assert staff.get("/admin/order/auth/user/").status_code == 200
    assert boss.get("/admin/order/auth/user/add/").status_code == 403


def test_a_local_user_that_is_no_shadow_cannot_use_the_admin(
    fake_identities: FakeIdentities,
) -> None:
    local = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    client.force_login(local, backend="common.admin_identity.backends.AccountServiceBackend")

    assert client.get(ORDERS).status_code == 302
    assert _login("root", PASSWORD)[1].status_code == 200  # refused: no such account
