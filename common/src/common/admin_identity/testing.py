"""Fakes and fixtures for tests of an admin in-process (pytest-django, one service).

`FakeIdentities` stands in for the account service; the `admin_client` fixture replaces
pytest-django's: a client logged in as the shadow of an account-service superuser, whose
roles the fake answers on each request, as the live service's would. A service's
conftest imports the fixtures it wants (`from common.admin_identity.testing import
admin_client, fake_identities`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from django.test import Client

from common.admin_identity import identity
from common.admin_identity.backends import shadow_user_sync
from common.admin_identity.identity import (
    IdentityRefused,
    IdentityThrottled,
    IdentityUnavailable,
    StaffIdentity,
)

BACKEND = "common.admin_identity.backends.AccountServiceBackend"
_ids = itertools.count(900_001)


class FakeIdentities:
    """The account service's answers, held in memory: accounts with a password and
    roles; `down` makes every call fail as an unreachable service does, `throttle`
    makes logins fail as a throttled one does."""

    def __init__(self) -> None:
        self.accounts: dict[int, tuple[StaffIdentity, str]] = {}
        self.down = False
        self.throttle: int | None = None
        self.logins: list[dict[str, str]] = []

    def add(
        self, email: str, password: str = "", *, staff: bool = True, superuser: bool = False
    ) -> StaffIdentity:
        account = StaffIdentity(
            customer_id=next(_ids),
            email=email,
            first_name="Fay",
            last_name="Ake",
            is_staff=staff or superuser,
            is_superuser=superuser,
        )
        self.accounts[account.customer_id] = (account, password)
        return account

    def change(self, customer_id: int, **roles: Any) -> None:
        """Change an account's roles or names, as `make staff --revoke` would."""
        account, password = self.accounts[customer_id]
        self.accounts[customer_id] = (replace(account, **roles), password)

    def login(self, *, email: str, password: str, client_address: str) -> StaffIdentity:
        self.logins.append({"email": email, "client_address": client_address})
        if self.down:
            raise IdentityUnavailable("UNAVAILABLE")
        if self.throttle is not None:
            raise IdentityThrottled(self.throttle)
        for account, known_password in self.accounts.values():
            if account.email == email and password == known_password:
                if not account.is_staff:
                    raise IdentityRefused("PERMISSION_DENIED")
                return account
        raise IdentityRefused("UNAUTHENTICATED")

    def roles(self, *, customer_id: int) -> StaffIdentity:
        if self.down:
            raise IdentityUnavailable("UNAVAILABLE")
        if customer_id not in self.accounts:
            raise IdentityRefused("NOT_FOUND")
        return self.accounts[customer_id][0]


@pytest.fixture
def fake_identities(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIdentities]:
    """The account service replaced by a FakeIdentities for this test."""
    fake = FakeIdentities()
    monkeypatch.setattr(identity, "identity_source", lambda: fake)
    yield fake


def logged_in_client(account: StaffIdentity) -> Client:
    """A test client with a session of `account`'s shadow user, as after a login."""
    client = Client()
    client.force_login(shadow_user_sync(account), backend=BACKEND)
    return client


@pytest.fixture
def admin_client(db: None, fake_identities: FakeIdentities) -> Client:
    """pytest-django's `admin_client`, with one identity: an account-service superuser."""
    return logged_in_client(fake_identities.add("admin@example.com", superuser=True))
