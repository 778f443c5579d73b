"""Fixtures of the product service's tests.

Two kinds of test live here (those through the edge are marked `live`; with
`backing_services`, `-m "not live"` runs the others without `make up`):
- through the edge (REST at INFRA.edge_url, gRPC at the gRPC edge): they drive the
  running service, its database (product_db) and the live cache;
- in-process (selectors, services, commands, admin): they use pytest-django's test
  database (test_product_db). Their product cache and cuckoo filter get names of
  their own (session_cache_names), so ids of the test database never reach the
  live service's cache entries or filter, nor the other way round.

Tokens come from the account service, through the edge as a client would get them
(common.testing).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings

from common import testing
from common.admin_identity.testing import admin_client, fake_identities  # noqa: F401
from common.cache import CacheUnavailable, CuckooFilter
from common.grpc.client import stub
from deploy.local.throwaway import backing_services  # noqa: F401
from saga_proto import product_pb2_grpc

TEST_FILTER_NAME = "product-ids-test"
PASSWORD = "catalog-tests-Secret-42"


# --------------------------------------------------------------- in-process


@pytest.fixture(scope="session")
def django_db_modify_db_settings() -> None:
    """A test database of this run's own (`test_product_db_<pid>`, dropped at the end):
    `make test` of another engineer may run this suite at the same time, and two runs
    sharing one test database drop it under each other."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def session_cache_names() -> Iterator[dict[str, str]]:
    """Per-session cache namespace and a test-only filter for in-process tests."""
    names = {
        "PRODUCT_CACHE_NAMESPACE": f"product-test-{uuid.uuid4().hex[:8]}",
        "PRODUCT_FILTER_NAME": TEST_FILTER_NAME,
    }
    with override_settings(**names):
        _fresh_test_filter()
        yield names


def _fresh_test_filter(patience: float = 20.0) -> None:
    """A fresh test database starts empty; so does its filter. Waits out a failover
    (other suites kill cache nodes on purpose) rather than failing the whole session."""
    test_filter = CuckooFilter(TEST_FILTER_NAME)
    deadline = time.monotonic() + patience
    while True:
        try:
            test_filter.drop()
            test_filter.create(1024)
            return
        except CacheUnavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


# ------------------------------------------------------------ through the edge


@pytest.fixture(scope="session")
def staff() -> str:
    """A fresh staff account's access token (register, grant staff, log in again)."""
    return testing.new_staff(testing.new_email("product", "staff"), password=PASSWORD).token


@pytest.fixture(scope="session")
def customer() -> str:
    """An access token of a customer without the staff role."""
    email = testing.new_email("product", "customer")
    testing.register_customer(email, password=PASSWORD)
    return testing.login(email, password=PASSWORD).token


@pytest.fixture
def make_category(staff: str) -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        return testing.create_category(staff, **fields)

    return make


@pytest.fixture
def make_product(
    staff: str, make_category: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    category_ids: list[int] = []

    def make(**fields: Any) -> dict[str, Any]:
        if "category_id" not in fields:
            if not category_ids:
                category_ids.append(make_category()["id"])
            fields["category_id"] = category_ids[0]
        return testing.create_product(staff, **fields)

    return make


@pytest.fixture
def products() -> Any:
    """The ProductService stub, through the gRPC edge."""
    return stub(product_pb2_grpc.ProductServiceStub)
