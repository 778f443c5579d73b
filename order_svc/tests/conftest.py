"""Fixtures of the order service's tests.

Two kinds of test live here (those through the edge are marked `live`; with
`backing_services`, `-m "not live"` runs the others without `make up`):
- through the edge (REST at INFRA.edge_url, gRPC at the gRPC edge): they drive the
  running order service and its database (order_db), as the orchestrator and a
  customer would. `live_db` reads order_db directly, to count what was written;
- in-process (services, selectors, admin): they use pytest-django's test database
  (test_order_db) and a cache namespace of their own (session_cache_names), so test
  rows never reach the live service's cache entries, nor the other way round.

An order records the unit prices and names it is given and asks the product service
nothing, so in-process tests use any product id. Tests through the edge order products
that exist in the running product service at their catalog price, as a purchase would:
`make_product` creates them through the edge with a staff token (register, grant
staff, log in again), as a person would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.test import override_settings

from common import testing
from common.admin_identity.testing import admin_client, fake_identities  # noqa: F401
from common.grpc.client import stub
from common.testing import Customer
from deploy.local.throwaway import backing_services  # noqa: F401
from saga_proto import order_pb2_grpc, product_pb2_grpc

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
    """One HTTP request to the edge, retried once while a `make restart` restarts a service."""
    return testing.edge(method, path, token=token, retry=True, **kwargs)


def register_customer(kind: str = "customer") -> Customer:
    """Register a fresh customer through the edge and answer them with their token."""
    email = testing.new_email("order", kind)
    return testing.register_customer(email, password=PASSWORD, retry=True)


@pytest.fixture(scope="session")
def staff_token() -> str:
    """A fresh staff account's access token: register, grant staff, log in again."""
    email = testing.new_email("order", "staff")
    return testing.new_staff(email, password=PASSWORD, retry=True).token


@pytest.fixture(scope="session")
def alice() -> Customer:
    return register_customer("alice")


@pytest.fixture(scope="session")
def bob() -> Customer:
    return register_customer("bob")


@pytest.fixture(scope="session")
def category_id(staff_token: str) -> int:
    category = testing.create_category(
        staff_token,
        name=f"order tests {uuid.uuid4().hex[:10]}",
        description="for order tests",
        retry=True,
    )
    return int(category["id"])


@pytest.fixture(scope="session")
def make_product(staff_token: str, category_id: int) -> Callable[..., dict[str, Any]]:
    """Create a product in the running product service; answers it as the API does."""

    def make(**fields: Any) -> dict[str, Any]:
        body = {
            "category_id": category_id,
            "name": f"Whey {uuid.uuid4().hex[:10]}",
            "description": "for order tests",
            "inventory": 10_000,
            **fields,
        }
        return testing.create_product(staff_token, retry=True, **body)

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


# ------------------------------------------------------------------ live DB


class LiveDatabase(testing.LiveDatabase):
    """Read-only questions to the running service's database (order_db)."""

    def order_count(self, order_id: str) -> int:
        return int(self.scalar("SELECT count(*) FROM orders_order WHERE id = %s", (order_id,)))

    def order_status(self, order_id: str) -> str | None:
        return self.scalar("SELECT status FROM orders_order WHERE id = %s", (order_id,))

    def line_count(self, order_id: str) -> int:
        return int(
            self.scalar("SELECT count(*) FROM orders_orderline WHERE order_id = %s", (order_id,))
        )

    def lines(self, order_id: str) -> list[tuple[int, int, int]]:
        """(product_id, quantity, unit_price) of each line of an order, by product id."""
        rows = self.rows(
            "SELECT product_id, quantity, unit_price FROM orders_orderline"
            " WHERE order_id = %s ORDER BY product_id",
            (order_id,),
        )
        return [(int(p), int(q), int(price)) for p, q, price in rows]

    def line_names(self, order_id: str) -> dict[int, str]:
        """The name each line of an order keeps, by product id."""
        rows = self.rows(
            "SELECT product_id, name FROM orders_orderline WHERE order_id = %s", (order_id,)
        )
        return {int(p): str(name) for p, name in rows}


@pytest.fixture(scope="session")
def live_db() -> Iterator[LiveDatabase]:
    db = LiveDatabase("order")
    try:
        yield db
    finally:
        db.close()
