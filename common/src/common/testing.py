"""Helpers shared by the test suites: the services', the platform's and the end-to-end one.

- in-process: `assert_healthy` (with the service's Django settings), `kafka_message`;
- either kind: `assert_error` (the one JSON error shape), `mint_access_token`;
- against the running system (`make up`), through the edge and the live databases, as a
  client or an operator would: `edge`, `Customer`, `new_email`, `register_customer`,
  `login`, `manage`, `grant_staff`, `new_staff`, `create_category`, `create_product`,
  `edge_inventory`, `grpc_call`, `grpc_refusal`, `connect`, `live_connection`,
  `LiveDatabase`, and the polling of `eventually` and `wait_until`.

Only `assert_healthy` needs Django settings: tests/platform, tests/e2e and bench run
without any, so this module imports nothing that needs them at import time.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import jwt
import psycopg2
import requests
from django.conf import settings
from psycopg2.extensions import connection as PgConnection

from common import jwt_keys
from common.kafka.messages import MESSAGE_ID_HEADER, ConsumedMessage
from common.settings import REPO_ROOT, db_password
from common.topology import INFRA, SERVICES

if TYPE_CHECKING:
    from django.test import Client
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

HTTP_TIMEOUT = 10.0
"""Seconds a request through the edge may take (unless the caller gives `timeout=`)."""
GRPC_TIMEOUT = 10.0
"""The deadline of a gRPC call through the edge."""
STALENESS_BOUND = 1.0 + 0.5
"""Seconds within which a reader through the edge sees another process's write.

The local level lives 1 s; a read already in flight when the write commits may still
store the old value in it, so the bound as a client measures it is one lifetime plus
one read (0.5 s allows for a loaded machine).
"""
RESTART_PAUSE = 2.0
"""How long a retry waits for a service another engineer's `make restart` is restarting."""


# ------------------------------------------------------------------ in-process


class ManualClock:
    """A monotonic clock (seconds) that moves only when a test sets `now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_healthy(client: Client) -> dict[str, Any]:
    """`/healthz` answers 200 with every one of the service's checks ok."""
    response = client.get("/healthz")
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert body["service"] == settings.SERVICE_NAME
    expected = {path.rsplit(".", 1)[-1].removeprefix("check_") for path in settings.HEALTH_CHECKS}
    assert body["checks"] == {name: "ok" for name in expected}
    return body


def kafka_message(
    value: bytes, *, key: str = "k", message_id: str | None = None, offset: int = 0
) -> ConsumedMessage:
    """A consumed message as a handler receives it, for handler tests."""
    headers = {MESSAGE_ID_HEADER: message_id.encode()} if message_id else {}
    return ConsumedMessage(
        key=key, value=value, topic="test", partition=0, offset=offset, headers=headers
    )


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response (of `requests` or of Django's test client) is the one JSON error
    shape with this status and code; answers the error object."""
    assert response.status_code == status, getattr(response, "content", response)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert isinstance(body["error"]["details"], dict), body
    return dict(body["error"])


def mint_access_token(
    *, private_key: str | None = None, algorithm: str = "RS256", **overrides: Any
) -> str:
    """An access token as the account service signs it (with the platform's private key
    unless another is given); `overrides` change claims, or remove them with None."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "token_type": "access",
        "exp": now + 900,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "user_id": "1",
        "email": "someone@example.com",
        "is_staff": False,
        "iss": "saga-account",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, private_key or jwt_keys.private_key_pem(), algorithm=algorithm)


# ------------------------------------------------------------------ through the edge


def edge(
    method: str, path: str, *, token: str | None = None, retry: bool = False, **kwargs: Any
) -> requests.Response:
    """One HTTP request to the edge; `token` goes in as a Bearer Authorization header.

    `retry`: once more after a connection error or a 502/503 from the edge, for suites
    that run while another engineer's `make restart` may be restarting the service.
    """
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    url = f"{INFRA.edge_url}{path}"
    if not retry:
        return requests.request(method, url, headers=headers, **kwargs)
    for attempt in (1, 2):
        try:
            response = requests.request(method, url, headers=headers, **kwargs)
        except requests.ConnectionError:
            if attempt == 2:
                raise
            time.sleep(RESTART_PAUSE)
            continue
        if response.status_code in (502, 503) and attempt == 1:
            time.sleep(RESTART_PAUSE)
            continue
        return response
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Customer:
    """A customer as a test holds them: their id, an access token, and the email they
    registered with (empty for a token minted in the test)."""

    id: int
    token: str
    email: str = ""

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header of this customer's requests."""
        return {"Authorization": f"Bearer {self.token}"}


def new_email(prefix: str, kind: str = "customer") -> str:
    """An email no other test uses: `<prefix>-<kind>-<random>@example.com`."""
    return f"{prefix}-{kind}-{uuid.uuid4().hex[:12]}@example.com"


def _signed_in(email: str, body: dict[str, Any]) -> Customer:
    """The customer a register or login answer names, by its (verified) access token."""
    from common.auth import verify_access_token

    token = str(body.get("access_token") or body["access"])
    return Customer(id=verify_access_token(token).customer_id, token=token, email=email)


def register_customer(
    email: str,
    *,
    password: str,
    retry: bool = False,
) -> Customer:
    """Register a customer through the edge, as a person would; answers them with the
    access token the registration returned."""
    response = edge(
        "POST",
        "/api/v1/account/auth/register",
        json={
            "email": email,
            "password": password,
            "first_name": "Test",
            "last_name": "Tester",
            "address": "1 Test Street",
            "phone_number": "0123456788",
        },
        retry=retry,
    )
    assert response.status_code in (200, 201), response.text
    return _signed_in(email, response.json())


def login(email: str, *, password: str, retry: bool = False) -> Customer:
    """Log in through the edge; answers the customer with a fresh access token."""
    response = edge(
        "POST",
        "/api/v1/account/auth/login",
        json={"email": email, "password": password},
        retry=retry,
    )
    assert response.status_code == 200, response.text
    return _signed_in(email, response.json())


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `code` (dedented) in a fresh interpreter from the repository root and answer
    its output; fail with its stderr if it exits non-zero. For what needs a process of
    its own: Django settings of another service, a metrics mode chosen at import."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_python_json(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """`run_python`, answering the JSON document `code` printed last."""
    return json.loads(run_python(code, *args, env=env).strip().splitlines()[-1])


def without_django_settings() -> dict[str, str]:
    """This process's environment for a command that must pick its own settings."""
    return {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}


def manage(service: str, *args: str) -> str:
    """Run a service's manage.py command against the live system (with its own settings,
    not the ones pytest-django put in this process's environment); answers its output."""
    result = subprocess.run(
        [sys.executable, f"{SERVICES[service].package}/manage.py", *args],
        cwd=REPO_ROOT,
        env=without_django_settings(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def grant_staff(email: str) -> None:
    """What `make staff EMAIL=...` runs: the staff role for a registered account."""
    manage("account", "grant_staff", email)


def new_staff(email: str, *, password: str, retry: bool = False) -> Customer:
    """A fresh staff account: register, grant staff, log in again (the first token
    does not carry the role), as a person would."""
    register_customer(email, password=password, retry=retry)
    grant_staff(email)
    return login(email, password=password, retry=retry)


def create_category(token: str, *, retry: bool = False, **fields: Any) -> dict[str, Any]:
    """Create a category through the edge with a staff token; answers it as the API does."""
    body = {"name": f"category {uuid.uuid4().hex[:10]}", "description": "test", **fields}
    response = edge("POST", "/api/v1/categories", token=token, json=body, retry=retry)
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_product(
    token: str, *, category_id: int, retry: bool = False, **fields: Any
) -> dict[str, Any]:
    """Create a product through the edge with a staff token; answers it as the API does."""
    body = {
        "category_id": category_id,
        "name": f"product {uuid.uuid4().hex[:10]}",
        "description": "for tests",
        "brand_name": "Acme",
        "price": 1390,
        "inventory": 10,
        **fields,
    }
    response = edge("POST", "/api/v1/products", token=token, json=body, retry=retry)
    assert response.status_code == 201, response.text
    return dict(response.json())


def edge_inventory(product_id: int) -> int:
    """A product's stock as the product API answers it (cached: see STALENESS_BOUND)."""
    response = edge("GET", f"/api/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["inventory"])


def grpc_call(method: Callable[..., Any], request: Any) -> Any:
    """Call through the gRPC edge with a deadline; one retry if the service is restarting."""
    try:
        return method(request, timeout=GRPC_TIMEOUT)
    except grpc.RpcError as error:
        if error.code() is not grpc.StatusCode.UNAVAILABLE:
            raise
        time.sleep(RESTART_PAUSE)
        return method(request, timeout=GRPC_TIMEOUT)


def grpc_refusal(method: Callable[..., Any], request: Any) -> grpc.RpcError:
    """The RpcError a call answers (fails the test if it succeeds)."""
    import pytest  # (here: bench and scripts import this module outside pytest)

    with pytest.raises(grpc.RpcError) as raised:
        grpc_call(method, request)
    return raised.value


# ------------------------------------------------------------------ polling


def eventually(
    read: Callable[[], Any],
    expected: Any,
    *,
    within: float = STALENESS_BOUND,
    every: float = 0.02,
) -> Any:
    """Read until `read()` answers `expected` or `within` seconds pass; answer the last read.

    For reads after a write another process made: every process sees a write within
    STALENESS_BOUND (one cache lifetime plus one read). The caller asserts on the answer.
    """
    return wait_for(read, lambda value: bool(value == expected), within=within, every=every)


def wait_for(
    read: Callable[[], Any], done: Callable[[Any], bool], *, within: float, every: float = 0.3
) -> Any:
    """Read until `done(read())` holds or `within` seconds pass; answer the last read,
    on which the caller asserts (so a failure shows what was there)."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(every)


def wait_until(read: Callable[[], Any], *, within: float = 15.0, every: float = 0.05) -> Any:
    """Read until `read()` answers something truthy and answer it; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {within}s (last: {value!r})")
        time.sleep(every)


# ------------------------------------------------------------------ live databases


def connect(service: str, database: str | None = None) -> PgConnection:
    """Connect as `service`'s role to `database` (its own by default) over TCP."""
    svc = SERVICES[service]
    return psycopg2.connect(
        host=INFRA.pg_host,
        port=INFRA.pg_port,
        user=svc.db_role,
        password=db_password(service),
        dbname=database or svc.database,
        connect_timeout=5,
    )


def live_connection(service: str) -> PgConnection:
    """An autocommit connection to a service's live database: every read sees the latest."""
    conn = connect(service)
    conn.autocommit = True
    return conn


class LiveDatabase:
    """Read-only questions to a running service's database (autocommit)."""

    def __init__(self, service: str) -> None:
        self.connection = live_connection(service)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first column of the first row, or None without rows."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            return row[0] if row else None

    def close(self) -> None:
        self.connection.close()


def recorded_spans() -> InMemorySpanExporter:
    """This process's test span exporter, emptied: the spans finished from now on, for
    the test that calls it. Needs tracing on (the default)."""
    exporter = _span_exporter()
    exporter.clear()
    return exporter


@functools.cache
def _span_exporter() -> InMemorySpanExporter:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from common.observability.tracing import start_recording, tracing_enabled

    if not tracing_enabled():
        raise RuntimeError("tracing is off (TRACING=off): no spans to capture")
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # no Django app configured tracing
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    start_recording()
    return exporter


def metric_value(name: str, **labels: str) -> float:
    """A sample of this process's default Prometheus registry (0 when never set)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0
