"""Fixtures of the live saga tests: the running system, as `make up` starts it.

Products are created through the edge by a staff account, PurchaseCreated goes to
the real `purchase` topic, the real consumer, Celery worker and beat run the saga by
gRPC through Traefik, and the outcome is read from the live orchestrator_db and
through the edge (products, orders, payments). Nothing here uses the test database.

The staff/customer helpers mirror the ones of the product and order suites; they
belong in common's testing helpers once a third suite needs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg2
import pytest
import requests
from confluent_kafka import Producer

from common.settings import REPO_ROOT, db_password
from common.topology import INFRA, SERVICES, Topic
from deploy.local.health import grpc_health

HTTP_TIMEOUT = 10.0
PASSWORD = "saga-tests-Secret-42"
SUPERVISORCTL = [
    str(REPO_ROOT / ".venv" / "bin" / "supervisorctl"),
    "-c",
    str(REPO_ROOT / "var" / "etc" / "supervisord.conf"),
]


def manage(service: str, *args: str) -> str:
    """Run a service's manage.py command against the live system (its own settings,
    not the ones pytest-django put in this process's environment)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, f"{SERVICES[service].package}/manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def edge(method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(
        method, f"{INFRA.edge_url}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs
    )


@dataclass(frozen=True)
class Account:
    token: str
    customer_id: int


def account(kind: str, *, staff: bool = False) -> Account:
    """Register a customer through the edge (and grant staff, as `make staff` does); log in."""
    email = f"saga-{kind}-{uuid.uuid4().hex[:12]}@example.com"
    registered = edge(
        "POST",
        "/api/v1/account/auth/register",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Saga",
            "last_name": "Tester",
            "address": "1 Test Street",
            "phone_number": "0123456789",
        },
    )
    assert registered.status_code in (200, 201), registered.text
    if staff:
        manage("account", "grant_staff", email)
    login = edge("POST", "/api/v1/account/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = login.json()
    token = str(body.get("access_token") or body["access"])
    claims = jwt.decode(token, options={"verify_signature": False})
    return Account(token=token, customer_id=int(claims["user_id"]))


@pytest.fixture(scope="session")
def staff() -> Account:
    return account("staff", staff=True)


@pytest.fixture(scope="session")
def customer() -> Account:
    return account("customer")


@pytest.fixture(scope="session")
def category_id(staff: Account) -> int:
    response = edge(
        "POST",
        "/api/v1/categories",
        token=staff.token,
        json={"name": f"saga tests {uuid.uuid4().hex[:8]}", "description": "live saga tests"},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
def make_product(staff: Account, category_id: int) -> Callable[..., dict[str, Any]]:
    def make(*, inventory: int, price: int = 1390) -> dict[str, Any]:
        response = edge(
            "POST",
            "/api/v1/products",
            token=staff.token,
            json={
                "category_id": category_id,
                "name": f"saga product {uuid.uuid4().hex[:10]}",
                "description": "for the live saga tests",
                "brand_name": "Acme",
                "price": price,
                "inventory": inventory,
            },
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    return make


def inventory(product_id: int) -> int:
    response = edge("GET", f"/api/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["inventory"])


def eventually(read: Callable[[], Any], expected: Any, *, within: float = 3.0) -> Any:
    """Read until `read()` answers `expected` or `within` seconds pass (caches lag ~1 s)."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if value == expected or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


# ------------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def producer() -> Iterator[Producer]:
    producer = Producer({"bootstrap.servers": INFRA.kafka_bootstrap, "enable.idempotence": True})
    yield producer
    producer.flush(10)


@pytest.fixture
def publish_purchase(producer: Producer, customer: Account) -> Callable[..., dict[str, Any]]:
    """Publish a PurchaseCreated on `purchase` as the purchase service's relay would.

    `lines` are (product, quantity); the amount is what the purchase service computes.
    """

    def publish(
        lines: list[tuple[dict[str, Any], int]],
        *,
        currency_code: str = "VND",
        purchase_id: str | None = None,
    ) -> dict[str, Any]:
        event = {
            "purchase_id": purchase_id or str(uuid.uuid4()),
            "customer_id": customer.customer_id,
            "items": [{"product_id": p["id"], "quantity": q} for p, q in lines],
            "amount": sum(p["price"] * q for p, q in lines),
            "currency_code": currency_code,
        }
        producer.produce(
            Topic.PURCHASE.value, key=event["purchase_id"].encode(), value=json.dumps(event)
        )
        assert producer.flush(10) == 0
        return event

    return publish


# --------------------------------------------------------- orchestrator_db


class SagaDb:
    """Reads of the live orchestrator_db (autocommit, so every read sees the latest)."""

    def __init__(self) -> None:
        svc = SERVICES["orchestrator"]
        self.conn = psycopg2.connect(
            host=INFRA.pg_host,
            port=INFRA.pg_port,
            user=svc.db_role,
            password=db_password("orchestrator"),
            dbname=svc.database,
            connect_timeout=5,
        )
        self.conn.autocommit = True

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def state(self, purchase_id: str) -> str | None:
        found = self.rows("SELECT state FROM saga WHERE purchase_id = %s", purchase_id)
        return str(found[0][0]) if found else None

    def count(self, purchase_id: str) -> int:
        return int(self.rows("SELECT count(*) FROM saga WHERE purchase_id = %s", purchase_id)[0][0])

    def log(self, purchase_id: str) -> list[tuple[str, str, int, str]]:
        """(step, status, attempt, error) of each step-log row, in order."""
        return [
            (str(step), str(status), int(attempt), str(error))
            for step, status, attempt, error in self.rows(
                "SELECT step, status, attempt, error FROM saga_step_log"
                " WHERE saga_id = %s ORDER BY id",
                purchase_id,
            )
        ]

    def events(self, purchase_id: str) -> list[dict[str, Any]]:
        """The purchase-result events of the saga in the outbox, with whether they left."""
        return [
            {**payload, "published": published_at is not None}
            for payload, published_at in self.rows(
                "SELECT payload, published_at FROM outbox_message WHERE key = %s ORDER BY id",
                purchase_id,
            )
        ]

    def wait_for_state(self, purchase_id: str, *states: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.state(purchase_id)
            if state in states:
                return state
            time.sleep(0.1)
        raise AssertionError(
            f"saga {purchase_id} is {state}, not {states} after {timeout}s;"
            f" log: {self.log(purchase_id)}"
        )

    def wait_for_log(
        self, purchase_id: str, step: str, status: str, *, timeout: float = 30.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r[:2] == (step, status) for r in self.log(purchase_id)):
                return
            time.sleep(0.1)
        raise AssertionError(f"no {step} {status} in {self.log(purchase_id)}")


@pytest.fixture(scope="session")
def sagas() -> Iterator[SagaDb]:
    db = SagaDb()
    yield db
    db.conn.close()


# -------------------------------------------------------------- processes


def supervisorctl(*args: str) -> str:
    result = subprocess.run(
        [*SUPERVISORCTL, *args], capture_output=True, text=True, timeout=90, cwd=REPO_ROOT
    )
    return result.stdout + result.stderr


def program_pid(program: str) -> int:
    return int(supervisorctl("pid", f"apps:{program}").strip() or 0)


def serving_through_the_edge(name: str) -> bool:
    """The service answers its gRPC health check through Traefik (as `make up` asks it);
    Traefik's own health check re-admits a restarted server within seconds."""
    ok, _ = grpc_health(name, SERVICES[name].grpc_services[0])
    return ok


def start_program(program: str, *, timeout: float = 40.0) -> None:
    """Start a supervisord program and, for a gRPC server, wait until the edge reaches it."""
    supervisorctl("start", f"apps:{program}")
    name, _, kind = program.partition("-")
    if kind != "grpc":
        return
    deadline = time.monotonic() + timeout
    while not serving_through_the_edge(name):
        if time.monotonic() > deadline:
            raise AssertionError(f"{program} not serving through the edge after {timeout}s")
        time.sleep(0.2)


@pytest.fixture
def stopped() -> Iterator[Callable[[str], None]]:
    """`stopped(program)` stops a program for the test; every one is started again after."""
    programs: list[str] = []

    def stop(program: str) -> None:
        programs.append(program)
        supervisorctl("stop", f"apps:{program}")

    yield stop
    for program in programs:
        start_program(program)


@pytest.fixture(autouse=True)
def system_is_up() -> None:
    """Every saga dependency answers before a test starts (a previous test may have
    stopped one)."""
    for program in ("product-grpc", "order-grpc", "payment-grpc", "orchestrator-worker"):
        start_program(program)
