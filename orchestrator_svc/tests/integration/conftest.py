"""Fixtures of the live saga tests: the running system, as `make up` starts it.

Products are created through the edge by a staff account, PurchaseCreated goes to
the real `purchase` topic, the real consumer, Celery worker and beat run the saga by
gRPC through Traefik, and the outcome is read from the live orchestrator_db and
through the edge (products, orders, payments). Nothing here uses the test database.

Accounts, products and reads through the edge come from common.testing, as in the
other suites.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from common import testing
from common.contract.topics import Topic
from common.settings import REPO_ROOT
from common.testing import Customer
from common.topology import INFRA, SERVICES
from deploy.local.health import grpc_health

PASSWORD = "saga-tests-Secret-42"
SUPERVISORCTL = [
    str(REPO_ROOT / ".venv" / "bin" / "supervisorctl"),
    "-c",
    str(REPO_ROOT / "var" / "etc" / "supervisord.conf"),
]


def account(kind: str, *, staff: bool = False) -> Customer:
    """Register a customer through the edge (and grant staff, as `make staff` does); log in."""
    email = testing.new_email("saga", kind)
    testing.register_customer(email, password=PASSWORD)
    if staff:
        testing.grant_staff(email)
    return testing.login(email, password=PASSWORD)


@pytest.fixture(scope="session")
def staff() -> Customer:
    return account("staff", staff=True)


@pytest.fixture(scope="session")
def customer() -> Customer:
    return account("customer")


@pytest.fixture(scope="session")
def category_id(staff: Customer) -> int:
    category = testing.create_category(
        staff.token,
        name=f"saga tests {uuid.uuid4().hex[:8]}",
        description="live saga tests",
    )
    return int(category["id"])


@pytest.fixture
def make_product(staff: Customer, category_id: int) -> Callable[..., dict[str, Any]]:
    def make(*, inventory: int, price: int = 1390) -> dict[str, Any]:
        return testing.create_product(
            staff.token,
            category_id=category_id,
            name=f"saga product {uuid.uuid4().hex[:10]}",
            description="for the live saga tests",
            price=price,
            inventory=inventory,
        )

    return make


def eventually(read: Callable[[], Any], expected: Any, *, within: float = 3.0) -> Any:
    """Read until `read()` answers `expected` or `within` seconds pass (caches lag ~1 s)."""
    return testing.eventually(read, expected, within=within, every=0.05)


# ------------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def producer() -> Iterator[Producer]:
    producer = Producer({"bootstrap.servers": INFRA.kafka_bootstrap, "enable.idempotence": True})
    yield producer
    producer.flush(10)


@pytest.fixture
def publish_purchase(producer: Producer, customer: Customer) -> Callable[..., dict[str, Any]]:
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
            "customer_id": customer.id,
            "items": [
                {"product_id": p["id"], "quantity": q, "unit_price": p["price"]} for p, q in lines
            ],
            "amount": sum(p["price"] * q for p, q in lines),
            "currency_code": currency_code,
        }
        producer.produce(Topic.PURCHASE, key=event["purchase_id"].encode(), value=json.dumps(event))
        assert producer.flush(10) == 0
        return event

    return publish


# --------------------------------------------------------- orchestrator_db


class SagaDb(testing.LiveDatabase):
    """Reads of the live orchestrator_db (autocommit, so every read sees the latest)."""

    def __init__(self) -> None:
        super().__init__("orchestrator")

    def state(self, purchase_id: str) -> str | None:
        found = self.rows("SELECT state FROM saga WHERE purchase_id = %s", (purchase_id,))
        return str(found[0][0]) if found else None

    def count(self, purchase_id: str) -> int:
        return int(self.scalar("SELECT count(*) FROM saga WHERE purchase_id = %s", (purchase_id,)))

    def log(self, purchase_id: str) -> list[tuple[str, str, int, str]]:
        """(step, status, attempt, error) of each step-log row, in order."""
        return [
            (str(step), str(status), int(attempt), str(error))
            for step, status, attempt, error in self.rows(
                "SELECT step, status, attempt, error FROM saga_step_log"
                " WHERE saga_id = %s ORDER BY id",
                (purchase_id,),
            )
        ]

    def events(self, purchase_id: str) -> list[dict[str, Any]]:
        """The purchase-result events of the saga in the outbox, with whether they left."""
        return [
            {**payload, "published": published_at is not None}
            for payload, published_at in self.rows(
                "SELECT payload, published_at FROM outbox_message WHERE key = %s ORDER BY id",
                (purchase_id,),
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
    db.close()


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
