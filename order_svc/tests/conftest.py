"""Fixtures of the order service's tests.

Two kinds of test live here:
- through the edge (REST at INFRA.edge_url, gRPC at the gRPC edge): they drive the
  running order service and its database (order_db), as the orchestrator and a
  customer would. `live_db` reads order_db directly, to count what was written;
- in-process (services, selectors, admin): they use pytest-django's test database
  (test_order_db) and a cache namespace of their own (session_cache_names), so test
  rows never reach the live service's cache entries, nor the other way round.

Both kinds price orders with products that exist in the running product service:
`make_product` creates them through the edge with a staff token (register, grant
staff, log in again), as a person would.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
from common.settings import REPO_ROOT
from common.topology import INFRA, SERVICES
from saga_proto import order_pb2_grpc, product_pb2_grpc

HTTP_TIMEOUT = 10.0
GRPC_TIMEOUT = 10.0
STALENESS_BOUND = 1.0
"""Seconds within which every process sees a write (the cache's local level lifetime)."""

PASSWORD = "orders-tests-Secret-42"


# --------------------------------------------------------------- in-process


@pytest.fixture(scope="session", autouse=True)
def session_cache_names() -> Iterator[dict[str, str]]:
    """A per-session order cache namespace for in-process tests."""
    names = {"ORDER_CACHE_NAMESPACE": f"order-test-{uuid.uuid4().hex[:8]}"}
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


def new_email(kind: str) -> str:
    return f"order-{kind}-{uuid.uuid4().hex[:12]}@example.com"


def _access_token(body: dict[str, Any]) -> str:
    return str(body.get("access_token") or body["access"])


def register_customer(kind: str = "customer") -> Customer:
    """Register a fresh customer through the edge and answer them with their token."""
    email = new_email(kind)
    response = edge(
        "POST",
        "/api/v1/account/auth/register",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Order",
            "last_name": "Tester",
            "address": "1 Test Street",
            "phone_number": "0123456788",
        },
    )
    assert response.status_code in (200, 201), response.text
    token = _access_token(response.json())
    return Customer(id=verify_access_token(token).customer_id, email=email, token=token)


def login(email: str) -> str:
    response = edge(
        "POST", "/api/v1/account/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return _access_token(response.json())


def grant_staff(email: str) -> None:
    """What `make staff EMAIL=...` runs (with the account service's settings, not ours)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "account_svc/manage.py", "grant_staff", email],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr or done.stdout


@pytest.fixture(scope="session")
def staff_token() -> str:
    """A fresh staff account's access token: register, grant staff, log in again."""
    customer = register_customer("staff")
    grant_staff(customer.email)
    return login(customer.email)


@pytest.fixture(scope="session")
def alice() -> Customer:
    return register_customer("alice")


@pytest.fixture(scope="session")
def bob() -> Customer:
    return register_customer("bob")


@pytest.fixture(scope="session")
def category_id(staff_token: str) -> int:
    body = {"name": f"order tests {uuid.uuid4().hex[:10]}", "description": "for order tests"}
    response = edge("POST", "/api/v1/categories", token=staff_token, json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture(scope="session")
def make_product(staff_token: str, category_id: int) -> Callable[..., dict[str, Any]]:
    """Create a product in the running product service; answers it as the API does."""

    def make(**fields: Any) -> dict[str, Any]:
        body = {
            "category_id": category_id,
            "name": f"Whey {uuid.uuid4().hex[:10]}",
            "description": "for order tests",
            "brand_name": "Acme",
            "price": 1390,
            "inventory": 10_000,
            **fields,
        }
        response = edge("POST", "/api/v1/products", token=staff_token, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return make


@pytest.fixture(scope="session")
def whey(make_product: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_product(price=1390)


@pytest.fixture(scope="session")
def casein(make_product: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_product(price=3780)


@pytest.fixture
def orders() -> Any:
    """The OrderService stub, through the gRPC edge."""
    return stub(order_pb2_grpc.OrderServiceStub)


@pytest.fixture
def products() -> Any:
    """The ProductService stub, through the gRPC edge."""
    return stub(product_pb2_grpc.ProductServiceStub)


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
    """Read-only questions to the running service's database (order_db)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            return row[0] if row else None

    def order_count(self, order_id: str) -> int:
        return int(self.scalar("SELECT count(*) FROM orders_order WHERE id = %s", (order_id,)))

    def order_status(self, order_id: str) -> str | None:
        return self.scalar("SELECT status FROM orders_order WHERE id = %s", (order_id,))

    def line_count(self, order_id: str) -> int:
        return int(
            self.scalar("SELECT count(*) FROM orders_orderline WHERE order_id = %s", (order_id,))
        )


@pytest.fixture(scope="session")
def live_db() -> Iterator[LiveDatabase]:
    db = settings.DATABASES["default"]
    connection = psycopg2.connect(
        dbname=SERVICES["order"].database,
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
