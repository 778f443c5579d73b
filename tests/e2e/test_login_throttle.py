"""Login throttling through the edge (docs/adr/0016): guessers do not lock the owner out.

Every client of this suite reaches the edge from the same address, so the edge cannot
tell the attacker from the owner by address: here they share one, as behind one office
NAT, the harder case. What tells them apart is the owner's device cookie, earned by
signing up or in. Splits by client address are tested at the API
(account_svc/tests/accounts/test_throttling.py), where the address is named as the
edge forwards it.
"""

from __future__ import annotations

from typing import Any

import requests

from tests.e2e.conftest import PASSWORD, edge, register

LOGIN = "/api/v1/account/auth/login"
DEVICE_COOKIE = "account_login_device"


def _login(email: str, password: str, cookies: dict[str, str] | None = None) -> requests.Response:
    return edge("POST", LOGIN, json={"email": email, "password": password}, cookies=cookies)


def _device_cookie(response: requests.Response) -> dict[str, str]:
    value = response.cookies.get(DEVICE_COOKIE)
    assert value, f"no {DEVICE_COOKIE} cookie in {response.headers}"
    return {DEVICE_COOKIE: value}


def _error_code(response: requests.Response) -> Any:
    return response.json()["error"]["code"]


def test_an_attackers_failures_do_not_stop_the_owners_login() -> None:
    owner = register("throttle-owner")
    signed_in = _login(owner.email, PASSWORD)  # the owner's usual client
    assert signed_in.status_code == 200, signed_in.text
    owners_device = _device_cookie(signed_in)

    # Twenty wrong passwords from another client (no cookie): refused once the limit is hit.
    statuses = [_login(owner.email, "not-the-Password-1").status_code for _ in range(20)]
    first_refusal = statuses.index(429)
    assert set(statuses[:first_refusal]) == {401}
    assert set(statuses[first_refusal:]) == {429}

    # A brute force from one client stays refused, even once it has the password ...
    attacker = _login(owner.email, PASSWORD)
    assert attacker.status_code == 429 and _error_code(attacker) == "throttled"
    assert int(attacker.headers["Retry-After"]) > 0
    assert DEVICE_COOKIE not in attacker.cookies

    # ... while the owner's client signs in, and its cookie is renewed.
    again = _login(owner.email, PASSWORD, cookies=owners_device)
    assert again.status_code == 200, again.text
    assert again.json()["customer_id"] == owner.id
    assert _device_cookie(again)
