"""Fixtures of the account service's tests.

Two kinds of test live here (those through the edge are marked `live`; with
`backing_services`, `-m "not live"` runs the others without `make up`):
- through the edge (REST at INFRA.edge_url, gRPC at the gRPC edge): they drive the
  running service and its database (account_db) as a client would, with a fresh
  email per test;
- in-process (services, throttling, commands, admin, the error handler): they use
  pytest-django's test database (test_account_db) and the real Redis Cluster.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from common import testing
from common.testing import mint_access_token
from deploy.local.throwaway import backing_services  # noqa: F401

PREFIX = "/api/v1/account"
PASSWORD = "correct-Horse-battery-9"


def edge(method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
    """One HTTP request to the edge; `path` is under /api/v1/account unless absolute."""
    url_path = path if path.startswith("/") else f"{PREFIX}/{path}"
    return testing.edge(method, url_path, token=token, **kwargs)


def new_email(kind: str = "customer") -> str:
    return testing.new_email("account", kind)


def registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": new_email(),
        "password": PASSWORD,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address": "12 St James's Square, London",
        "phone_number": "+44 20 7946 0958",
    }
    body.update(overrides)
    return body


@dataclass(frozen=True)
class Registered:
    email: str
    password: str
    customer_id: int
    access_token: str
    refresh_token: str


def register(**overrides: Any) -> Registered:
    body = registration(**overrides)
    response = edge("POST", "auth/register", json=body)
    assert response.status_code == 201, response.text
    tokens = response.json()
    return Registered(
        email=body["email"],
        password=body["password"],
        customer_id=tokens["customer_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


@pytest.fixture
def customer() -> Registered:
    """A freshly registered customer (through the edge) with its first token pair."""
    return register()


def other_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = claims_of(token)
    claims["is_staff"] = True
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ".".join([header, forged, signature])


def refused_tokens(customer: Registered) -> dict[str, str]:
    """Tokens every service must refuse, for this customer."""
    return {
        "expired": mint_access_token(
            user_id=str(customer.customer_id), exp=int(time.time()) - 10, iat=int(time.time()) - 910
        ),
        "signed with another key": mint_access_token(
            private_key=other_private_key(), user_id=str(customer.customer_id)
        ),
        "tampered": _tampered(customer.access_token),
        "refresh token": customer.refresh_token,
        "garbage": "not-a-token",
    }
