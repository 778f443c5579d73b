"""Traefik routes each prefix to its service, and each gRPC service by name; refuses
what is over the limits in the JSON error shape; and starts without a 404 for a known
route (docs/adr/0014)."""

from __future__ import annotations

import errno
import itertools
import json
import re
import select
import socket
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from common.settings import max_body_bytes
from common.testing import wait_until
from common.topology import INFRA, SERVICES
from deploy.local import edge_gate, paths, render, supervisor
from deploy.local.health import grpc_health

ROUTES = [(s.name, prefix) for s in SERVICES.values() for prefix in s.route_prefixes]
GRPC = [(s.name, name) for s in SERVICES.values() for name in s.grpc_services]


@pytest.mark.parametrize(("service", "prefix"), ROUTES)
def test_each_route_prefix_reaches_its_service_health(service: str, prefix: str) -> None:
    response = requests.get(f"{INFRA.edge_url}{prefix}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == service
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"


@pytest.mark.parametrize(("service", "name"), GRPC)
def test_each_grpc_service_answers_a_health_check_through_the_grpc_entrypoint(
    service: str, name: str
) -> None:
    ok, detail = grpc_health(service, name)
    assert ok, detail


def test_a_grpc_service_is_not_reachable_under_another_services_authority() -> None:
    # The account process serves only auth.AuthService: routing really is per service.
    ok, detail = grpc_health("account", "product.ProductService")
    assert not ok
    assert "NOT_FOUND" in detail


@pytest.mark.parametrize("service", SERVICES)
def test_admin_asks_an_anonymous_visitor_to_log_in(service: str) -> None:
    response = requests.get(f"{INFRA.edge_url}/admin/{service}/", timeout=10, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/admin/{service}/login/")
    login = requests.get(f"{INFRA.edge_url}/admin/{service}/login/", timeout=10)
    assert login.status_code == 200
    assert "csrfmiddlewaretoken" in login.text


# ------------------------------------------------------------------ requests over the limits

BODY_LIMIT = max_body_bytes()
PURCHASES = f"{INFRA.edge_url}/api/v1/purchases"


def json_body(size: int) -> bytes:
    """A JSON document of exactly `size` bytes."""
    return b"{" + b" " * (size - 2) + b"}"


def assert_refused(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["details"] == {}


@pytest.mark.parametrize("size", [12 * 1024 * 1024, BODY_LIMIT + 1])
def test_a_body_over_the_limit_gets_413_json_from_the_edge(size: int) -> None:
    # Without a token: had the body reached the purchase service, it would answer 401.
    response = requests.post(
        PURCHASES,
        data=json_body(size),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )

    assert_refused(response, 413, "payload_too_large")


def test_a_chunked_body_over_the_limit_gets_413_json_from_the_edge() -> None:
    chunks = (b" " * 65536 for _ in range(BODY_LIMIT // 65536 + 2))

    response = requests.post(
        PURCHASES, data=chunks, headers={"Content-Type": "application/json"}, timeout=60
    )

    assert_refused(response, 413, "payload_too_large")


def test_a_body_at_the_limit_reaches_the_service() -> None:
    response = requests.post(
        PURCHASES,
        data=json_body(BODY_LIMIT),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )

    assert_refused(response, 401, "unauthenticated")  # the service's answer, not the edge's


def test_a_10_kb_query_string_gets_414_json() -> None:
    response = requests.get(
        f"{INFRA.edge_url}/api/v1/products", params={"q": "x" * 10_240}, timeout=10
    )

    assert_refused(response, 414, "uri_too_long")


def test_a_10_kb_header_gets_431_json() -> None:
    response = requests.get(
        f"{INFRA.edge_url}/api/v1/products", headers={"X-Padding": "y" * 10_240}, timeout=10
    )

    assert_refused(response, 431, "headers_too_large")


@pytest.mark.parametrize("service", SERVICES)
def test_each_services_gunicorn_refuses_an_overlong_request_line_in_json(service: str) -> None:
    # gunicorn answers these before Django: the JSON comes from its config module, so
    # the answer is the same through the edge, in docker-compose, or on the port itself.
    port = SERVICES[service].http_port
    response = requests.get(f"http://127.0.0.1:{port}/healthz?q={'x' * 10_240}", timeout=10)

    assert_refused(response, 414, "uri_too_long")


def test_the_edges_error_bodies_are_not_routed_to_clients() -> None:
    response = requests.get(f"{INFRA.edge_url}/edge-errors/413", timeout=10)

    assert response.status_code == 404
    assert "payload_too_large" not in response.text


# ------------------------------------------------------------------ the event stream


def dynamic_http() -> dict[str, Any]:
    http: dict[str, Any] = json.loads(render.traefik_dynamic())["http"]
    return http


def traefik_regexp(rule: str) -> re.Pattern[str]:
    (pattern,) = re.findall(r"PathRegexp\(`([^`]+)`\)", rule)
    return re.compile(pattern)


def test_only_the_event_stream_skips_the_body_limit_that_buffers_answers() -> None:
    # Traefik's buffering middleware holds an answer until it ends: the stream has a
    # router of its own, for GET only, ranked above the purchase service's.
    http = dynamic_http()
    stream = http["routers"]["purchase-events"]
    service = http["routers"]["purchase-http"]
    events = traefik_regexp(stream["rule"])

    assert "Method(`GET`)" in stream["rule"]
    assert "middlewares" not in stream
    assert stream["service"] == "purchase-http"
    assert stream["priority"] > len(service["rule"])  # Traefik's default priority
    assert events.match(f"/api/v1/purchases/{uuid.uuid4()}/events")
    assert not events.match(f"/api/v1/purchases/{uuid.uuid4()}")
    assert not events.match("/api/v1/purchases")
    for svc in SERVICES:
        chain = http["routers"][f"{svc}-http"]["middlewares"]
        assert chain == [f"{svc}-errors", f"{svc}-body-limit"]  # errors outside
        limit = http["middlewares"][f"{svc}-body-limit"]["buffering"]
        assert limit["maxRequestBodyBytes"] == BODY_LIMIT


def test_the_running_edge_routes_the_event_stream_by_its_own_router() -> None:
    api = f"http://127.0.0.1:{INFRA.traefik_dashboard_port}/api/http/routers"
    router = requests.get(f"{api}/purchase-events@file", timeout=10).json()

    assert router["status"] == "enabled"
    assert router["rule"] == dynamic_http()["routers"]["purchase-events"]["rule"]
    assert not router.get("middlewares")


# ------------------------------------------------------------------ Traefik's start


def test_the_gate_lets_only_its_probe_in_until_it_opens() -> None:
    # Given a listening socket shut by the gate's filter to all but one source port
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    edge_gate.admit_only(listener, probe.getsockname()[1])
    listener.listen(8)
    listener.setblocking(False)
    address = listener.getsockname()
    client = socket.socket()
    client.setblocking(False)
    try:
        # when a client and then the probe connect (on loopback each SYN is handled
        # within its connect call)
        assert client.connect_ex(address) == errno.EINPROGRESS
        probe.connect(address)

        # then only the probe's connection waits to be accepted
        accepted, peer = listener.accept()
        accepted.close()
        assert peer == probe.getsockname()
        with pytest.raises(BlockingIOError):
            listener.accept()

        # and once the gate opens, the client's next SYN gets through
        edge_gate.admit_all(listener)
        _, writable, _ = select.select([], [client], [], 30)
        assert writable and client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    finally:
        for sock in (client, probe, listener):
            sock.close()


def test_the_gate_guards_each_entrypoint_clients_route_through() -> None:
    entrypoints = edge_gate.entrypoints_of(paths.ETC / "traefik" / "traefik.yml")
    gated = {e.name: e for e in entrypoints if e.gated}

    assert set(gated) == set(render.GATED_ENTRYPOINTS) == {"web", "grpc"}
    assert {e.name for e in entrypoints} == {"web", "grpc", "traefik"}  # all handed over
    assert gated["web"].port == INFRA.edge_port
    assert gated["grpc"].port == INFRA.grpc_edge_port
    routers = dynamic_http()["routers"]
    for name in gated:
        ready = routers[render.edge_ready_router(name)]
        assert ready["entryPoints"] == [name]
        assert ready["service"] == "ping@internal"


KNOWN_ROUTES = [
    ("GET", "/api/v1/products"),
    ("GET", "/api/v1/account/healthz"),
    ("POST", "/api/v1/purchases"),  # 401 without a token: the route is known
]


class EdgeLoop:
    """Requests to known routes on fresh connections, counted by answer, until stopped."""

    def __init__(self) -> None:
        self.answers: Counter[int | str] = Counter()
        self.after_restart: Counter[int | str] = Counter()
        self.restarted = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(3)]

    def _run(self) -> None:
        for method, path in itertools.cycle(KNOWN_ROUTES):
            if self._stop.is_set():
                return
            answer: int | str
            try:
                answer = requests.request(method, f"{INFRA.edge_url}{path}", timeout=10).status_code
            except requests.ConnectionError:
                answer = "connection error"
            with self._lock:
                self.answers[answer] += 1
                if self.restarted.is_set():
                    self.after_restart[answer] += 1

    def __enter__(self) -> EdgeLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def started_by_the_gate(pid: int) -> bool:
    """Whether the process was handed its sockets (deploy/local/edge_gate.py)."""
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return any(item.startswith(b"LISTEN_FDS=") for item in environment)


def edge_serves() -> bool:
    try:
        return requests.get(f"{INFRA.edge_url}/api/v1/products", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_a_traefik_restart_under_requests_never_answers_404_for_a_known_route() -> None:
    # Given Traefik as supervisord runs it: through the gate, which hands it its sockets
    before = supervisor.pids()["traefik"]
    assert started_by_the_gate(before), "supervisord runs an older command: `make up`"

    # when it restarts while clients keep asking for known routes
    with EdgeLoop() as loop:
        wait_until(lambda: sum(loop.answers.values()) >= 20)
        supervisor.stop(["traefik"])
        supervisor.start(["traefik"])
        loop.restarted.set()
        wait_until(edge_serves, within=60)
        wait_until(lambda: sum(loop.after_restart.values()) >= 20, within=60)

    # then no client was told a known route does not exist: each met a refused
    # connection while Traefik was down, or an answer from the service
    assert 404 not in loop.answers, loop.answers
    assert supervisor.pids()["traefik"] != before
    # and Traefik runs again, through the gate, and serves
    wait_until(lambda: supervisor.status()["traefik"] == "RUNNING", within=30)
    assert started_by_the_gate(supervisor.pids()["traefik"])
    assert edge_serves()
