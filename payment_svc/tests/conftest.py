"""Fixtures of the payment service's tests.

Two kinds of test live here:
- through the edge (REST at INFRA.edge_url, gRPC at the gRPC edge): they drive the
  running payment service and its database (payment_db), as the orchestrator and a
  customer would. `live_db` reads payment_db directly, to count what was written;
- in-process (services, selectors, admin): they use pytest-django's test database
  (test_payment_db) and a cache namespace of their own (session_cache_names), so
  test rows never reach the live service's cache entries, nor the other way round.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg2
import pytest
import requests
from django.conf import settings
from django.test import override_settings

from common.auth import verify_access_token
from common.grpc.client import stub
from common.topology import INFRA, SERVICES
from saga_proto import payment_pb2_grpc

HTTP_TIMEOUT = 10.0
GRPC_TIMEOUT = 10.0
STALENESS_BOUND = 1.0
"""Seconds within which every process sees a write (the cache's local level lifetime)."""

PASSWORD = "payments-tests-Secret-42"


# --------------------------------------------------------------- in-process


@pytest.fixture(scope="session", autouse=True)
def session_cache_names() -> Iterator[dict[str, str]]:
    """A per-session payment cache namespace for in-process tests."""
    names = {"PAYMENT_CACHE_NAMESPACE": f"payment-test-{uuid.uuid4().hex[:8]}"}
    with override_settings(**names):
        yield names


# ------------------------------------------------------------ through the edge


def edge(method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
    """One HTTP request to the edge; `token` goes in as a Bearer Authorization header.

    One retry on a connection error: another engineer's `make restart` may be
    restarting the service at that moment.
    """
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{INFRA.edge_url}{path}"
    for attempt in (1, 2):
        try:
            response = requests.request(
                method, url, headers=headers, timeout=HTTP_TIMEOUT, **kwargs
            )
        except requests.ConnectionError:
            if attempt == 2:
                raise
            time.sleep(2.0)
            continue
        if response.status_code in (502, 503) and attempt == 1:
            time.sleep(2.0)
            continue
        return response
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Customer:
    """A registered customer: their id and an access token."""

    id: int
    email: str
    token: str


def register_customer(kind: str = "customer") -> Customer:
    """Register a fresh customer through the edge and answer them with their token."""
    email = f"payment-{kind}-{uuid.uuid4().hex[:12]}@example.com"
    response = edge(
        "POST",
        "/api/v1/account/auth/register",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Payment",
            "last_name": "Tester",
            "address": "1 Test Street",
            "phone_number": "0123456788",
        },
    )
    assert response.status_code in (200, 201), response.text
    body = response.json()
    token = str(body.get("access_token") or body["access"])
    return Customer(id=verify_access_token(token).customer_id, email=email, token=token)


@pytest.fixture(scope="session")
def alice() -> Customer:
    return register_customer("alice")


@pytest.fixture(scope="session")
def bob() -> Customer:
    return register_customer("bob")


@pytest.fixture
def payments() -> Any:
    """The PaymentService stub, through the gRPC edge."""
    return stub(payment_pb2_grpc.PaymentServiceStub)


def grpc_call(method: Callable[..., Any], request: Any) -> Any:
    """Call through the edge with a deadline; one retry if the service is restarting."""
    try:
        return method(request, timeout=GRPC_TIMEOUT)
    except grpc.RpcError as error:
        if error.code() is not grpc.StatusCode.UNAVAILABLE:
            raise
        time.sleep(2.0)
        return method(request, timeout=GRPC_TIMEOUT)


def grpc_refusal(method: Callable[..., Any], request: Any) -> grpc.RpcError:
    """The RpcError a call answers (fails the test if it succeeds)."""
    with pytest.raises(grpc.RpcError) as raised:
        grpc_call(method, request)
    return raised.value


# ------------------------------------------------------------------ live DB


class LiveDatabase:
    """Read-only questions to the running service's database (payment_db)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            return row[0] if row else None

    def payment_count(self, payment_id: str) -> int:
        return int(
            self.scalar("SELECT count(*) FROM payments_payment WHERE id = %s", (payment_id,))
        )

    def payment_status(self, payment_id: str) -> str | None:
        return self.scalar("SELECT status FROM payments_payment WHERE id = %s", (payment_id,))


@pytest.fixture(scope="session")
def live_db() -> Iterator[LiveDatabase]:
    db = settings.DATABASES["default"]
    connection = psycopg2.connect(
        dbname=SERVICES["payment"].database,
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
    )
    connection.autocommit = True
    try:
        yield LiveDatabase(connection)
    finally:
        connection.close()


def eventually(read: Callable[[], Any], expected: Any, *, within: float = STALENESS_BOUND) -> Any:
    """Read until `read()` answers `expected` or `within` seconds pass; answer the last read."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if value == expected or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)
