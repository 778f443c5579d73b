"""Fixtures of the purchase service's tests.

Two kinds of test live here (those through the edge are marked `live`; with
`backing_services`, `-m "not live"` runs the others without `make up`):
- in-process (apis, services, consumers, streams, admin): pytest-django's test
  database (test_purchase_db), and a real gRPC server in the test process standing
  in for ProductService (`products`), so the REST API is driven through real gRPC
  calls, deadlines and status codes without depending on the product service's data;
- through the edge (`*_edge.py`): the running purchase service, its database
  (purchase_db), the real product service and account service, and real Kafka
  messages on `purchase-result` that the live purchase-consumer applies.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from confluent_kafka import Producer
from django.test import override_settings
from psycopg2.extensions import connection as PgConnection

from common import testing
from common.admin_identity.testing import admin_client, fake_identities  # noqa: F401
from common.contract.events import PurchaseResult, PurchaseStatus, Step, StepStatus
from common.contract.topics import Topic
from common.errors import GRPC_ERROR_CODE_METADATA
from common.kafka.messages import MESSAGE_ID_HEADER
from common.testing import Customer
from common.topology import INFRA
from deploy.local.throwaway import backing_services  # noqa: F401
from saga_proto import product_pb2, product_pb2_grpc

PURCHASES = "/api/v1/purchases"
PASSWORD = "purchase-tests-Secret-42"


# --------------------------------------------------------------- tokens


def mint_access_token(customer_id: int, **overrides: Any) -> str:
    """An access token as the account service signs it, with the platform's key pair."""
    return testing.mint_access_token(
        user_id=str(customer_id), email=f"customer-{customer_id}@example.com", **overrides
    )


def new_customer_id() -> int:
    """A customer id no other test uses (in-process tests need no account row)."""
    return 10_000_000 + uuid.uuid4().int % 1_000_000_000


@pytest.fixture
def customer() -> Customer:
    customer_id = new_customer_id()
    return Customer(customer_id, mint_access_token(customer_id))


@pytest.fixture
def other_customer() -> Customer:
    customer_id = new_customer_id()
    return Customer(customer_id, mint_access_token(customer_id))


# --------------------------------------------------------------- a stand-in ProductService


@dataclass
class FakeCatalog:
    """What the stand-in ProductService knows and how it misbehaves."""

    prices: dict[int, int] = field(default_factory=dict)
    inventory: dict[int, int] = field(default_factory=dict)
    fail_with: grpc.StatusCode | None = None
    delay: float = 0.0
    calls: list[list[tuple[int, int]]] = field(default_factory=list)

    def add(self, product_id: int, *, price: int, inventory: int = 10) -> int:
        self.prices[product_id] = price
        self.inventory[product_id] = inventory
        return product_id


class FakeProductServicer(product_pb2_grpc.ProductServiceServicer):
    def __init__(self, catalog: FakeCatalog) -> None:
        self.catalog = catalog

    def CheckProducts(
        self, request: product_pb2.CheckProductsRequest, context: grpc.ServicerContext
    ) -> product_pb2.CheckProductsResponse:
        catalog = self.catalog
        items = [(int(i.product_id), int(i.quantity)) for i in request.items]
        catalog.calls.append(items)
        if catalog.delay:
            time.sleep(catalog.delay)
        if catalog.fail_with is not None:
            context.set_trailing_metadata(((GRPC_ERROR_CODE_METADATA, "test"),))
            context.abort(catalog.fail_with, "failing on purpose")
        statuses = []
        for product_id, quantity in items:
            if product_id not in catalog.prices:
                statuses.append(product_pb2.ProductStatus(product_id=product_id, exist=False))
                continue
            statuses.append(
                product_pb2.ProductStatus(
                    product_id=product_id,
                    exist=True,
                    price=catalog.prices[product_id],
                    inventory=catalog.inventory[product_id],
                    enough=catalog.inventory[product_id] >= quantity,
                )
            )
        return product_pb2.CheckProductsResponse(products=statuses)


@pytest.fixture(scope="session")
def _product_server() -> Iterator[tuple[str, FakeProductServicer]]:
    servicer = FakeProductServicer(FakeCatalog())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    product_pb2_grpc.add_ProductServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(grace=None)


@pytest.fixture
def products(_product_server: tuple[str, FakeProductServicer]) -> Iterator[FakeCatalog]:
    """A fresh stand-in catalog; the service under test reaches it as its gRPC edge."""
    target, servicer = _product_server
    servicer.catalog = FakeCatalog()
    with override_settings(GRPC_EDGE_TARGET=target):
        yield servicer.catalog


def purchase_row(customer_id: int, *, amount: int = 2780, status: str = "PENDING") -> Any:
    """A purchase written straight to the test database (no CheckProducts, no outbox)."""
    from purchase_svc.purchases.models import Purchase

    purchase_id = uuid.uuid4()
    return Purchase.objects.create(
        id=purchase_id,
        customer_id=customer_id,
        items=[{"product_id": 1, "quantity": 2, "unit_price": amount // 2}],
        amount=amount,
        currency_code="VND",
        status=status,
        response_status=202,
        response_body=json.dumps({"id": str(purchase_id)}),
    )


def purchase_body(*lines: tuple[int, int], currency_code: str = "VND") -> dict[str, Any]:
    return {
        "order_items": [{"product_id": p, "quantity": q} for p, q in lines],
        "payment": {"currency_code": currency_code},
    }


# --------------------------------------------------------------- through the edge


def new_email(kind: str) -> str:
    return testing.new_email("purchase", kind)


@pytest.fixture
def live_customer() -> Customer:
    """A customer registered through the edge, with an access token."""
    return testing.register_customer(new_email("customer"), password=PASSWORD)


@pytest.fixture(scope="session")
def staff() -> Customer:
    """A staff account (register, grant staff as `make staff` does, log in again)."""
    return testing.new_staff(new_email("staff"), password=PASSWORD)


@pytest.fixture
def make_product(staff: Customer) -> Callable[..., dict[str, Any]]:
    """Create a product through the live product service; answer its representation."""
    category_ids: list[int] = []

    def make(**fields: Any) -> dict[str, Any]:
        if not category_ids:
            category = testing.create_category(
                staff.token, name=f"purchase tests {uuid.uuid4().hex[:8]}", description="t"
            )
            category_ids.append(int(category["id"]))
        body = {
            "category_id": category_ids[0],
            "name": f"purchase product {uuid.uuid4().hex[:10]}",
            "description": "for the purchase service's tests",
            **fields,
        }
        return testing.create_product(staff.token, **body)

    return make


@pytest.fixture
def live_db() -> Iterator[PgConnection]:
    """An autocommit connection to the live purchase_db."""
    conn = testing.live_connection("purchase")
    yield conn
    conn.close()


def live_purchase_insert(
    conn: PgConnection, *, customer_id: int, amount: int = 2780, currency_code: str = "VND"
) -> str:
    """A PENDING purchase written straight into the live purchase_db, without an outbox
    row: no saga starts, so only the events a test publishes reach it."""
    purchase_id = str(uuid.uuid4())
    items = [{"product_id": 1, "quantity": 2, "unit_price": amount // 2}]
    body = {
        "id": purchase_id,
        "status": "PENDING",
        "amount": amount,
        "currency_code": currency_code,
        "links": {},
    }
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO purchase (id, customer_id, items, amount, currency_code, status,"
            " last_sequence, idempotency_key, request_fingerprint, response_status,"
            " response_body, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, 'PENDING', 0, NULL, '', 202, %s, now(), now())",
            [purchase_id, customer_id, json.dumps(items), amount, currency_code, json.dumps(body)],
        )
    return purchase_id


class ResultPublisher:
    """Publishes PurchaseResult events to the live `purchase-result` topic, as the
    orchestrator's outbox relay does (keyed by purchase id, with a message-id header)."""

    def __init__(self) -> None:
        self._producer = Producer(
            {"bootstrap.servers": INFRA.kafka_bootstrap, "enable.idempotence": True}
        )

    def publish(
        self,
        purchase_id: str,
        step: Step,
        status: StepStatus,
        *,
        purchase_status: PurchaseStatus = PurchaseStatus.PENDING,
        sequence: int,
        attempt: int = 1,
        error: str = "",
        message_id: str | None = None,
        reason: str = "",
    ) -> str:
        result = PurchaseResult(
            purchase_id, step, status, purchase_status, sequence, attempt, error, reason=reason
        )
        message_id = message_id or f"purchase-test-{uuid.uuid4().hex}"
        self._producer.produce(
            Topic.PURCHASE_RESULT,
            key=purchase_id.encode(),
            value=json.dumps(result.to_json()).encode(),
            headers=[(MESSAGE_ID_HEADER, message_id.encode())],
        )
        assert self._producer.flush(10) == 0
        return message_id


@pytest.fixture
def results() -> ResultPublisher:
    return ResultPublisher()


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: Any
    id: str | None = None


class SseReader:
    """Reads an SSE byte stream event by event (comments are kept as event ':')."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[SseEvent]:
        return self

    def __next__(self) -> SseEvent:
        while b"\n\n" not in self._buffer:
            chunk = next(self._chunks)  # StopIteration ends the events too
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n\n", 1)
        fields: dict[str, str] = {}
        comments = []
        for line in raw.decode().split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "event" not in fields and "data" not in fields:
            if "retry" in fields:
                return SseEvent("retry", fields["retry"])
            return SseEvent(":", " ".join(comments))
        data = json.loads(fields["data"]) if "data" in fields else None
        return SseEvent(fields.get("event", "message"), data, fields.get("id"))
