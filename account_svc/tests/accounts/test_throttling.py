"""Login throttling: per email and per client, in the real Redis Cluster.

Through the edge with the live settings (5 failures per email in 300 s), and
in-process with a short window to see the lock end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from account_svc.accounts import throttling
from account_svc.accounts.services import customer_register
from account_svc.tests.conftest import PASSWORD, Registered, edge, new_email
from common.testing import assert_error

WRONG = "wrong-Password-1"

# ------------------------------------------------------------ through the edge


def test_after_five_failures_the_email_is_locked_out_even_with_the_right_password(
    customer: Registered,
) -> None:
    for _ in range(5):
        response = edge("POST", "auth/login", json={"email": customer.email, "password": WRONG})
        assert_error(response, 401, "unauthenticated")

    locked = edge("POST", "auth/login", json={"email": customer.email, "password": PASSWORD})

    error = assert_error(locked, 429, "throttled")
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= 300
    assert error["details"]["retry_after"] == retry_after
    # The lock is the email's: another customer on the same client still logs in.
    other = edge(
        "POST",
        "auth/register",
        json={
            "email": new_email(),
            "password": PASSWORD,
            "first_name": "B",
            "last_name": "C",
            "address": "D",
            "phone_number": "0301234567",
        },
    )
    assert other.status_code == 201, other.text


# ------------------------------------------------------------------ in-process


def _login(client: APIClient, email: str, password: str, ip: str) -> Any:
    return client.post(
        "/api/v1/account/auth/login",
        {"email": email, "password": password},
        format="json",
        HTTP_X_FORWARDED_FOR=ip,
    )


def _new_customer() -> str:
    email = new_email("throttle")
    customer_register(
        email=email,
        password=PASSWORD,
        first_name="T",
        last_name="R",
        address="Somewhere 1",
        phone_number="0301234567",
    )
    return email


def _fresh_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _wait_until_forgotten(key: str, *, bound: float = 10.0) -> None:
    """Wait for Redis to expire the counter (bounded so a bug cannot hang the suite)."""
    deadline = time.monotonic() + bound
    client = throttling.cluster_client()
    while client.exists(key):
        assert time.monotonic() < deadline, f"{key} outlived its window"
        time.sleep(0.05)


@pytest.fixture
def client() -> Iterator[APIClient]:
    yield APIClient()


@pytest.mark.django_db
# A window long enough for two password checks, short enough to wait out.
@override_settings(LOGIN_THROTTLE_WINDOW_SECONDS=3, LOGIN_THROTTLE_EMAIL_THRESHOLD=2)
def test_the_right_password_gets_in_again_after_the_window(client: APIClient) -> None:
    email, ip = _new_customer(), _fresh_ip()
    for _ in range(2):
        assert _login(client, email, WRONG, ip).status_code == 401
    assert _login(client, email, PASSWORD, ip).status_code == 429

    _wait_until_forgotten(throttling.email_key(email))

    response = _login(client, email, PASSWORD, ip)
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_EMAIL_THRESHOLD=3)
def test_a_success_clears_the_emails_failures(client: APIClient) -> None:
    email, ip = _new_customer(), _fresh_ip()
    for _ in range(2):
        assert _login(client, email, WRONG, ip).status_code == 401
    assert _login(client, email, PASSWORD, ip).status_code == 200

    for _ in range(2):
        assert _login(client, email, WRONG, ip).status_code == 401
    assert _login(client, email, PASSWORD, ip).status_code == 200


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_EMAIL_THRESHOLD=100, LOGIN_THROTTLE_IP_THRESHOLD=3)
def test_a_client_guessing_across_emails_is_locked_out(client: APIClient) -> None:
    guesser, bystander = _fresh_ip(), _fresh_ip()
    for _ in range(3):
        assert _login(client, new_email("guess"), WRONG, guesser).status_code == 401
    victim = _new_customer()

    locked = _login(client, victim, PASSWORD, guesser)
    other_client = _login(client, victim, PASSWORD, bystander)

    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert other_client.status_code == 200


@pytest.mark.django_db
def test_a_cache_outage_does_not_lock_customers_out(
    client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = _new_customer()

    class DownCluster:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise RedisConnectionError("cluster down")

            return fail

    monkeypatch.setattr(throttling, "cluster_client", DownCluster)

    assert _login(client, email, WRONG, _fresh_ip()).status_code == 401
    assert _login(client, email, PASSWORD, _fresh_ip()).status_code == 200
