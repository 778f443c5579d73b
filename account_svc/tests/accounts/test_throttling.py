"""Login throttling (docs/adr/0016), in the real Redis Cluster.

Through the edge with the live settings, and in-process, where each test names its
clients' addresses as the edge forwards them (its own hop last in X-Forwarded-For)
and holds each client's cookies in its own APIClient.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from rest_framework.test import APIClient

from account_svc.accounts import login_clients, throttling
from account_svc.accounts.services import customer_register
from account_svc.tests.conftest import PASSWORD, Registered, edge, new_email
from common.testing import assert_error

WRONG = "wrong-Password-1"
LOGIN = "/api/v1/account/auth/login"

# ------------------------------------------------------------ through the edge


@pytest.mark.live
def test_a_brute_force_from_one_client_is_refused_even_with_the_right_password(
    customer: Registered,
) -> None:
    # Each try names another address of its own: the edge drops the header and
    # appends the address it sees, so they all count as one client.
    for n in range(5):
        response = edge(
            "POST",
            "auth/login",
            json={"email": customer.email, "password": WRONG},
            headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
        )
        assert_error(response, 401, "unauthenticated")

    locked = edge(
        "POST",
        "auth/login",
        json={"email": customer.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.99"},
    )

    error = assert_error(locked, 429, "throttled")
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= 300
    assert error["details"]["retry_after"] == retry_after


# ------------------------------------------------------------------ in-process


class Client:
    """One client: its address as the edge forwards it, and its own cookie jar (or none)."""

    def __init__(self, address: str | None = None, *, keeps_cookies: bool = True) -> None:
        self.address = address or _fresh_ip()
        self.keeps_cookies = keeps_cookies
        self.api = APIClient()

    def login(self, email: str, password: str, *, claimed: str | None = None) -> Any:
        # `claimed`: an X-Forwarded-For the client sent itself; the edge appends its own hop.
        forwarded = f"{claimed}, {self.address}" if claimed else self.address
        response = self.api.post(
            LOGIN,
            {"email": email, "password": password},
            format="json",
            HTTP_X_FORWARDED_FOR=forwarded,
        )
        if not self.keeps_cookies:
            self.api.cookies.clear()
        return response

    def device_cookie(self) -> str | None:
        cookie = self.api.cookies.get(login_clients.DEVICE_COOKIE)
        return cookie.value if cookie else None


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


def _owner_signed_in_before(email: str, address: str | None = None) -> Client:
    """The owner's usual client: it has signed in to the account once."""
    owner = Client(address)
    assert owner.login(email, PASSWORD).status_code == 200
    assert owner.device_cookie()
    return owner


def _wait_until_forgotten(key: str, *, bound: float = 10.0) -> None:
    """Wait for Redis to expire the counter (bounded so a bug cannot hang the suite)."""
    deadline = time.monotonic() + bound
    client = throttling.cluster_client()
    while client.exists(key):
        assert time.monotonic() < deadline, f"{key} outlived its window"
        time.sleep(0.05)


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_PAIR_THRESHOLD=2, LOGIN_THROTTLE_EMAIL_THRESHOLD=4)
def test_a_distributed_guess_does_not_stop_the_owners_login_from_a_known_client() -> None:
    email = _new_customer()
    usual = _owner_signed_in_before(email)
    at_home = Client(keeps_cookies=False)  # say, a script run from the owner's network
    assert at_home.login(email, PASSWORD).status_code == 200

    # Twenty guesses from ten clients, two each: the account's limit is reached.
    guessers = [Client() for _ in range(10)]
    statuses = [guesser.login(email, WRONG).status_code for guesser in guessers for _ in range(2)]
    assert statuses[:4] == [401] * 4 and set(statuses[4:]) == {429}

    unknown = Client().login(email, PASSWORD)
    from_home = at_home.login(email, PASSWORD)
    with_cookie = usual.login(email, PASSWORD)
    on_a_trip = Client()
    on_a_trip.api.cookies[login_clients.DEVICE_COOKIE] = usual.device_cookie() or ""
    travelling = on_a_trip.login(email, PASSWORD)

    assert_error(unknown, 429, "throttled")  # guessers are slowed, the right password too
    assert int(unknown["Retry-After"]) > 0
    assert from_home.status_code == 200, from_home.content
    assert with_cookie.status_code == 200, with_cookie.content
    assert travelling.status_code == 200, travelling.content


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_PAIR_THRESHOLD=3, LOGIN_THROTTLE_EMAIL_THRESHOLD=100)
def test_a_brute_force_from_one_client_stops_that_client_only() -> None:
    email = _new_customer()
    attacker, someone_else = Client(), Client()
    for n in range(3):
        # A header of its own does not make it another client.
        assert attacker.login(email, WRONG, claimed=f"203.0.113.{n}").status_code == 401

    refused = attacker.login(email, PASSWORD, claimed="203.0.113.77")
    other = someone_else.login(email, PASSWORD)

    assert_error(refused, 429, "throttled")
    assert int(refused["Retry-After"]) > 0
    assert other.status_code == 200, other.content


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_PAIR_THRESHOLD=3, LOGIN_THROTTLE_EMAIL_THRESHOLD=3)
def test_the_owners_device_is_limited_on_its_own_and_spares_the_account() -> None:
    email = _new_customer()
    device = _owner_signed_in_before(email)
    for _ in range(3):
        assert device.login(email, WRONG).status_code == 401

    stolen_cookie_guess = device.login(email, PASSWORD)
    new_client = Client().login(email, PASSWORD)

    # A device cookie buys no unlimited guessing; its typos do not slow the account.
    assert_error(stolen_cookie_guess, 429, "throttled")
    assert new_client.status_code == 200, new_client.content


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_PAIR_THRESHOLD=2, LOGIN_THROTTLE_EMAIL_THRESHOLD=2)
def test_another_accounts_or_a_forged_device_cookie_is_not_trusted() -> None:
    email, other_email = _new_customer(), _new_customer()
    other_owner = _owner_signed_in_before(other_email)
    for _ in range(2):
        assert Client().login(email, WRONG).status_code == 401

    borrowed, forged = Client(), Client()
    borrowed.api.cookies[login_clients.DEVICE_COOKIE] = other_owner.device_cookie() or ""
    forged.api.cookies[login_clients.DEVICE_COOKIE] = "eyJhY2NvdW50IjoieCJ9:forged:sig"

    assert_error(borrowed.login(email, PASSWORD), 429, "throttled")
    assert_error(forged.login(email, PASSWORD), 429, "throttled")


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_PAIR_THRESHOLD=3, LOGIN_THROTTLE_EMAIL_THRESHOLD=4)
def test_a_success_clears_the_clients_own_failures_not_the_accounts() -> None:
    email, client = _new_customer(), Client(keeps_cookies=False)
    for _ in range(2):
        assert client.login(email, WRONG).status_code == 401
    assert client.login(email, PASSWORD).status_code == 200
    for _ in range(2):
        assert client.login(email, WRONG).status_code == 401  # its pair starts again

    # The account's count of four stays: a client it does not know is still slowed.
    assert_error(Client().login(email, PASSWORD), 429, "throttled")
    assert client.login(email, PASSWORD).status_code == 200


@pytest.mark.django_db
# A window long enough for two password checks, short enough to wait out.
@override_settings(LOGIN_THROTTLE_WINDOW_SECONDS=3, LOGIN_THROTTLE_PAIR_THRESHOLD=2)
def test_the_right_password_gets_in_again_after_the_window() -> None:
    email, client = _new_customer(), Client()
    for _ in range(2):
        assert client.login(email, WRONG).status_code == 401
    assert client.login(email, PASSWORD).status_code == 429

    attempt = throttling.LoginAttempt(email=email, address=client.address)
    _wait_until_forgotten(throttling.pair_key(attempt) or "")

    response = client.login(email, PASSWORD)
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_EMAIL_THRESHOLD=100, LOGIN_THROTTLE_IP_THRESHOLD=3)
def test_a_client_guessing_across_accounts_is_locked_out() -> None:
    victim = _new_customer()
    owners_device = _owner_signed_in_before(victim)
    guesser = Client()
    for _ in range(3):
        assert guesser.login(new_email("guess"), WRONG).status_code == 401

    locked = guesser.login(victim, PASSWORD)
    bystander = Client().login(victim, PASSWORD)
    # The owner's device behind the guesser's address (one office, one NAT) still gets in.
    owners_device.address = guesser.address
    owner = owners_device.login(victim, PASSWORD)

    assert_error(locked, 429, "throttled")
    assert int(locked["Retry-After"]) > 0
    assert bystander.status_code == 200, bystander.content
    assert owner.status_code == 200, owner.content


@pytest.mark.django_db
@override_settings(LOGIN_THROTTLE_PAIR_THRESHOLD=2, LOGIN_THROTTLE_EMAIL_THRESHOLD=100)
def test_an_ipv6_client_is_counted_by_its_64_prefix() -> None:
    email = _new_customer()
    prefix = f"2001:db8:{uuid.uuid4().int % 0xFFFF:x}:1"
    for host in ("1", "2"):
        assert Client(f"{prefix}::{host}").login(email, WRONG).status_code == 401

    same_prefix = Client(f"{prefix}::3").login(email, PASSWORD)
    other_prefix = Client(f"{prefix[:-1]}2::3").login(email, PASSWORD)

    assert_error(same_prefix, 429, "throttled")
    assert other_prefix.status_code == 200, other_prefix.content


def test_the_keys_name_no_email_or_address_in_clear() -> None:
    email, address = "someone@example.com", "192.0.2.10"
    attempt = throttling.LoginAttempt(email=email, address=address)
    keys = [throttling.pair_key(attempt), throttling.email_key(email)]
    keys.append(throttling.address_key(address))

    for key in keys:
        assert key and "someone" not in key and "192.0.2" not in key


@pytest.mark.django_db
@pytest.mark.parametrize(
    "error", [RedisConnectionError("cluster down"), RedisClusterException("no nodes")]
)
def test_a_cache_outage_does_not_lock_customers_out(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = _new_customer()

    class DownCluster:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise error

            return fail

    def down() -> Any:
        if isinstance(error, RedisClusterException):
            raise error  # unreachable when the client is built
        return DownCluster()

    monkeypatch.setattr(throttling, "cluster_client", down)
    monkeypatch.setattr(login_clients, "cluster_client", down)

    assert Client().login(email, WRONG).status_code == 401
    assert Client().login(email, PASSWORD).status_code == 200
