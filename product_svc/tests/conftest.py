"""Fixtures of the product service's tests.

Two kinds of test live here:
- through the edge (REST at INFRA.edge_url, gRPC at the gRPC edge): they drive the
  running service, its database (product_db) and the live cache;
- in-process (selectors, services, commands, admin): they use pytest-django's test
  database (test_product_db). Their product cache and cuckoo filter get names of
  their own (session_cache_names), so ids of the test database never reach the
  live service's cache entries or filter, nor the other way round.

The token helpers (`register_customer`, `staff_token`) go through the account
service as a client would; they belong in common's testing helpers once more
services need them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.test import override_settings

from common.cache import CacheUnavailable, CuckooFilter
from common.grpc.client import stub
from common.settings import REPO_ROOT
from common.topology import INFRA
from saga_proto import product_pb2_grpc

HTTP_TIMEOUT = 10.0
STALENESS_BOUND = 1.0
"""Seconds within which every process sees a write (the cache's local level lifetime)."""

TEST_FILTER_NAME = "product-ids-test"


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


def edge(method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
    """One HTTP request to the edge; `token` goes in as a Bearer Authorization header."""
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(
        method, f"{INFRA.edge_url}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs
    )


def register_customer(email: str, password: str) -> None:
    response = edge(
        "POST",
        "/api/v1/account/auth/register",
        json={
            "email": email,
            "password": password,
            "first_name": "Product",
            "last_name": "Tester",
            "address": "1 Test Street",
            "phone_number": "0123456788",
        },
    )
    assert response.status_code in (200, 201), response.text


def login(email: str, password: str) -> str:
    response = edge(
        "POST", "/api/v1/account/auth/login", json={"email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return str(body.get("access_token") or body["access"])


def grant_staff(email: str) -> None:
    """What `make staff EMAIL=...` runs (in the account service's settings, not ours)."""
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


def new_email(kind: str) -> str:
    return f"product-{kind}-{uuid.uuid4().hex[:12]}@example.com"


PASSWORD = "catalog-tests-Secret-42"


def staff_token() -> str:
    """A fresh staff account's access token: register, grant staff, log in (as a person would)."""
    email = new_email("staff")
    register_customer(email, PASSWORD)
    grant_staff(email)
    return login(email, PASSWORD)


@pytest.fixture(scope="session")
def staff() -> str:
    return staff_token()


@pytest.fixture(scope="session")
def customer() -> str:
    """An access token of a customer without the staff role."""
    email = new_email("customer")
    register_customer(email, PASSWORD)
    return login(email, PASSWORD)


@pytest.fixture
def make_category(staff: str) -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        body = {"name": f"category {uuid.uuid4().hex[:10]}", "description": "test", **fields}
        response = edge("POST", "/api/v1/categories", token=staff, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

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
        body = {
            "name": f"product {uuid.uuid4().hex[:10]}",
            "description": "for tests",
            "brand_name": "Acme",
            "price": 1390,
            "inventory": 10,
            **fields,
        }
        response = edge("POST", "/api/v1/products", token=staff, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return make


@pytest.fixture
def products() -> Any:
    """The ProductService stub, through the gRPC edge."""
    return stub(product_pb2_grpc.ProductServiceStub)


def eventually(read: Callable[[], Any], expected: Any, *, within: float = STALENESS_BOUND) -> Any:
    """Read until `read()` answers `expected` or `within` seconds pass; answer the last read.

    For reads through the edge after a write another process made: every process
    sees a write within STALENESS_BOUND (its in-process cache lifetime).
    """
    deadline = time.monotonic() + within
    while True:
        value = read()
        if value == expected or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)


def edge_inventory(product_id: int) -> int:
    response = edge("GET", f"/api/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["inventory"])
