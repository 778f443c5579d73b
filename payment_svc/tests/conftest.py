"""Fixtures of the payment service's tests.

Two kinds of test live here (those through the edge are marked `live`; with
`backing_services`, `-m "not live"` runs the others without `make up`):
- through the edge (REST at INFRA.edge_url, gRPC at the gRPC edge): they drive the
  running payment service and its database (payment_db), as the orchestrator and a
  customer would. `live_db` reads payment_db directly, to count what was written;
- in-process (services, selectors, admin): they use pytest-django's test database
  (test_payment_db) and a cache namespace of their own (session_cache_names), so
  test rows never reach the live service's cache entries, nor the other way round.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.test import override_settings

from common import testing
from common.admin_identity.testing import admin_client, fake_identities  # noqa: F401
from common.grpc.client import stub
from common.testing import Customer
from deploy.local.throwaway import backing_services  # noqa: F401
from saga_proto import payment_pb2_grpc

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
    """One HTTP request to the edge, retried once while a `make restart` restarts a service."""
    return testing.edge(method, path, token=token, retry=True, **kwargs)


def register_customer(kind: str = "customer") -> Customer:
    """Register a fresh customer through the edge and answer them with their token."""
    email = testing.new_email("payment", kind)
    return testing.register_customer(email, password=PASSWORD, retry=True)


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


# ------------------------------------------------------------------ live DB


class LiveDatabase(testing.LiveDatabase):
    """Read-only questions to the running service's database (payment_db)."""

    def payment_count(self, payment_id: str) -> int:
        return int(
            self.scalar("SELECT count(*) FROM payments_payment WHERE id = %s", (payment_id,))
        )

    def payment_status(self, payment_id: str) -> str | None:
        return self.scalar("SELECT status FROM payments_payment WHERE id = %s", (payment_id,))


@pytest.fixture(scope="session")
def live_db() -> Iterator[LiveDatabase]:
    db = LiveDatabase("payment")
    try:
        yield db
    finally:
        db.close()
