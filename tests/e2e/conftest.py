"""The end-to-end suite: the running system (`make up`), driven as its users drive it.

Nothing here imports a service or Django settings: every request goes through the
edge (HTTP), as a customer, a staff member or nobody. Only where an invariant needs
counting what no API lists (orders and payments of many customers at once, the
reservations behind the stock) does a test read a service's database, read-only.
Final states are awaited by polling with a generous deadline; no test asserts on time.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from psycopg2.extensions import connection as PgConnection

from common.settings import REPO_ROOT
from common.testing import (
    Customer,
    connect,
    create_category,
    create_product,
    login,
    new_email,
    register_customer,
    without_django_settings,
)
from common.testing import edge as _edge
from common.topology import INFRA

PASSWORD = "e2e-tests-Secret-42"
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "NEEDS_ATTENTION"})
# A saga that retries a transient fault can take a minute (docs/adr/0008): wait longer.
FINAL_WITHIN_SECONDS = 180.0
HTTP_TIMEOUT = 30.0


def edge(method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
    """One request through the edge, as the holder of `token` (anonymous without one);
    once more after a 502/503 or a refused connection (another engineer's `make restart`).
    Purchases are POSTed with an Idempotency-Key, so that retry never buys twice."""
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    return _edge(method, path, token=token, retry=True, **kwargs)


def register(kind: str = "customer") -> Customer:
    """A new customer, registered through the edge, with the token it answers."""
    return register_customer(new_email("e2e", kind), password=PASSWORD, retry=True)


def make_staff(email: str) -> None:
    """`make staff EMAIL=...`, as an operator grants the role."""
    result = subprocess.run(
        ["make", "--no-print-directory", "staff", f"EMAIL={email}"],
        cwd=REPO_ROOT,
        env=without_django_settings(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def staff() -> Customer:
    customer = register("staff")
    make_staff(customer.email)
    return login(customer.email, password=PASSWORD, retry=True)


@pytest.fixture(scope="session")
def category_id(staff: Customer) -> int:
    return int(create_category(staff.token, retry=True, description="end-to-end tests")["id"])


@pytest.fixture
def make_product(staff: Customer, category_id: int) -> Callable[..., int]:
    """`make_product(inventory=, price=)` creates a product as staff and answers its id."""

    def make(*, inventory: int, price: int = 1390) -> int:
        product = create_product(
            staff.token, category_id=category_id, retry=True, inventory=inventory, price=price
        )
        return int(product["id"])

    return make


@pytest.fixture
def customer() -> Customer:
    return register()


def register_many(count: int, *, threads: int = 8) -> list[Customer]:
    """`count` new customers, registered concurrently (password hashing is the cost)."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda i: register(f"buyer{i}"), range(count)))


def inventory_of(product_id: int) -> int:
    """The stock as the product service's database holds it: the source of truth, read
    without the API's cache (docs/adr/0004 says how fresh that is)."""
    with read_only("product") as conn, conn.cursor() as cursor:
        cursor.execute("SELECT inventory FROM catalog_product WHERE id = %s", [product_id])
        row = cursor.fetchone()
    assert row is not None, f"no product {product_id}"
    return int(row[0])


def purchase(
    customer: Customer,
    lines: list[tuple[int, int]],
    *,
    currency_code: str = "VND",
    idempotency_key: str | None = None,
) -> str:
    """POST a purchase; answer its id once it is accepted (202)."""
    headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
    response = edge(
        "POST",
        "/api/v1/purchases",
        token=customer.token,
        headers=headers,
        json={
            "order_items": [{"product_id": p, "quantity": q} for p, q in lines],
            "payment": {"currency_code": currency_code},
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_final(customer: Customer, purchase_id: str) -> dict[str, Any]:
    """The purchase once it is final (polled; the deadline only bounds a hang)."""
    deadline = time.monotonic() + FINAL_WITHIN_SECONDS
    every = 0.1
    while True:
        response = edge("GET", f"/api/v1/purchases/{purchase_id}", token=customer.token)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            if body["status"] in FINAL:
                return body
        elif response.status_code not in (502, 503, 504):  # a restart of the service
            raise AssertionError(f"GET purchase {purchase_id}: {response.text}")
        assert time.monotonic() < deadline, f"purchase {purchase_id} still not final"
        time.sleep(every)
        every = min(every * 1.5, 1.0)


def steps_of(purchase: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["step"], step["status"]) for step in purchase["steps"]]


class read_only:
    """`with read_only("order") as conn:` a read-only connection to a live database."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.conn: PgConnection | None = None

    def __enter__(self) -> PgConnection:
        self.conn = connect(self.service)
        self.conn.set_session(readonly=True, autocommit=True)
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()


def count_by_status(service: str, table: str, ids: list[str]) -> dict[str, int]:
    """{status: rows} of `table` among the rows whose id (the purchase id) is in `ids`."""
    with read_only(service) as conn, conn.cursor() as cursor:
        cursor.execute(
            f"SELECT status, count(*) FROM {table} WHERE id = ANY(%s::uuid[]) GROUP BY status",
            [ids],
        )
        return {str(status): int(n) for status, n in cursor.fetchall()}


@pytest.fixture(autouse=True, scope="session")
def _edge_is_up() -> Iterator[None]:
    """Fail fast, and clearly, when the platform is not running."""
    try:
        response = edge("GET", "/api/v1/products?page_size=1")
    except requests.ConnectionError as error:
        pytest.fail(f"the edge {INFRA.edge_url} does not answer (make up?): {error}")
    assert response.status_code == 200, response.text
    yield
