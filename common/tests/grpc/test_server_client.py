"""The shared gRPC server and client, against a real in-process server.

No Django database: the servicer is a fake OrderService, and the DB-hygiene
interceptor is observed through a stand-in for close_old_connections.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpc import client, server
from common.grpc.client import channel, close_channels, health_check, stub
from common.grpc.errors import (
    BUSINESS_CODES,
    TRANSIENT_CODES,
    CallFailed,
    Outcome,
    classify,
    classify_error,
    never_reached,
)
from common.grpc.server import GrpcServer, build_server, serve_forever
from common.topology import INFRA
from saga_proto import order_pb2, order_pb2_grpc

ORDER_SERVICE = "order.OrderService"
REJECTED_PURCHASE = "00000000-0000-0000-0000-000000000bad"


class FakeOrders(order_pb2_grpc.OrderServiceServicer):  # type: ignore[misc]
    def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        if request.purchase_id == REJECTED_PURCHASE:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "customer is blocked")
        return order_pb2.OrderReply(order_id=request.purchase_id, status="CREATED", amount=1200)


def _build(**kwargs: object) -> GrpcServer:
    spec = (ORDER_SERVICE, FakeOrders(), order_pb2_grpc.add_OrderServiceServicer_to_server)
    return build_server(0, [spec], host="127.0.0.1", max_workers=4, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fresh_channels() -> Iterator[None]:
    close_channels()
    yield
    close_channels()


@pytest.fixture
def running() -> Iterator[GrpcServer]:
    built = _build(close_db_connections=False)
    built.start()
    yield built
    built.stop(grace=None).wait()


def target(built: GrpcServer) -> str:
    return f"127.0.0.1:{built.port}"


# --- health -----------------------------------------------------------------


def test_registered_service_and_whole_server_report_serving(running: GrpcServer) -> None:
    assert running.services == (ORDER_SERVICE,)
    assert health_check(ORDER_SERVICE, target(running))
    assert health_check("", target(running))


def test_unknown_service_is_not_found_on_check_and_service_unknown_on_watch(
    running: GrpcServer,
) -> None:
    health = stub(health_pb2_grpc.HealthStub, target(running))

    with pytest.raises(grpc.RpcError) as raised:
        health.Check(health_pb2.HealthCheckRequest(service="nope.Service"), timeout=2)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert not health_check("nope.Service", target(running))

    watch = health.Watch(health_pb2.HealthCheckRequest(service="nope.Service"), timeout=2)
    first = next(watch)
    watch.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


def test_health_names_without_servicers_are_served() -> None:
    built = build_server(
        0, host="127.0.0.1", health_names=["product.ProductService"], close_db_connections=False
    )
    built.start()
    try:
        assert health_check("product.ProductService", target(built))
    finally:
        built.stop(grace=None).wait()


def test_registrars_add_their_services() -> None:
    def register(grpc_server: grpc.Server) -> list[str]:
        order_pb2_grpc.add_OrderServiceServicer_to_server(FakeOrders(), grpc_server)
        return [ORDER_SERVICE]

    built = build_server(0, host="127.0.0.1", registrars=[register], close_db_connections=False)
    built.start()
    try:
        assert built.services == (ORDER_SERVICE,)
        assert health_check(ORDER_SERVICE, target(built))
    finally:
        built.stop(grace=None).wait()


def test_a_taken_port_fails_loudly_instead_of_sharing(running: GrpcServer) -> None:
    with pytest.raises((RuntimeError, OSError)):
        build_server(running.port, host="127.0.0.1", close_db_connections=False)


def test_unreachable_target_is_unhealthy_not_an_error() -> None:
    idle = build_server(0, host="127.0.0.1", close_db_connections=False)  # bound, never started
    assert not health_check(ORDER_SERVICE, target(idle), timeout=0.5)
    idle.stop(grace=None)


# --- calls and outcomes -----------------------------------------------------


def test_call_succeeds_and_business_rejection_compensates(running: GrpcServer) -> None:
    orders = stub(order_pb2_grpc.OrderServiceStub, target(running))
    purchase_id = "6f1c2d3e-0000-4000-8000-000000000001"

    reply = orders.CreateOrder(order_pb2.CreateOrderRequest(purchase_id=purchase_id), timeout=2)
    assert (reply.order_id, reply.status, reply.amount) == (purchase_id, "CREATED", 1200)

    with pytest.raises(grpc.RpcError) as raised:
        orders.CreateOrder(order_pb2.CreateOrderRequest(purchase_id=REJECTED_PURCHASE), timeout=2)
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert classify_error(raised.value) is Outcome.COMPENSATE


def test_unimplemented_method_is_retried(running: GrpcServer) -> None:
    orders = stub(order_pb2_grpc.OrderServiceStub, target(running))
    with pytest.raises(grpc.RpcError) as raised:
        orders.CancelOrder(order_pb2.CancelOrderRequest(purchase_id="x"), timeout=2)
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert classify_error(raised.value) is Outcome.RETRY


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
    ],
)
def test_business_codes_compensate(code: grpc.StatusCode) -> None:
    assert classify(code) is Outcome.COMPENSATE


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    ],
)
def test_transient_codes_retry(code: grpc.StatusCode) -> None:
    assert classify(code) is Outcome.RETRY


def test_every_failure_code_has_exactly_one_outcome() -> None:
    failures = set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert failures == BUSINESS_CODES | TRANSIENT_CODES
    assert not BUSINESS_CODES & TRANSIENT_CODES
    with pytest.raises(ValueError):
        classify(grpc.StatusCode.OK)


@pytest.mark.parametrize(
    ("code", "details", "reached"),
    [
        # The edge had no server to send it to, or no connection opened: never sent on.
        (grpc.StatusCode.UNAVAILABLE, "Received http2 header with status: 503", False),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: x", False),
        # It may have got there: a 502, a reset, a timeout, a server's own failure.
        (grpc.StatusCode.UNAVAILABLE, "Received http2 header with status: 502", True),
        (grpc.StatusCode.UNAVAILABLE, "Socket closed", True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", True),
        (grpc.StatusCode.INTERNAL, "Received http2 header with status: 503", True),
    ],
)
def test_only_a_refusal_before_the_callee_proves_a_call_never_reached_it(
    code: grpc.StatusCode, details: str, reached: bool
) -> None:
    assert never_reached(CallFailed(code, details)) is not reached


def test_a_call_to_a_port_nobody_serves_never_reached_it() -> None:
    orders = stub(order_pb2_grpc.OrderServiceStub, "127.0.0.1:1")
    with pytest.raises(grpc.RpcError) as raised:
        orders.CreateOrder(order_pb2.CreateOrderRequest(purchase_id="x"), timeout=2)
    assert never_reached(raised.value)


def test_a_refusal_by_the_callee_reached_it(running: GrpcServer) -> None:
    orders = stub(order_pb2_grpc.OrderServiceStub, target(running))
    with pytest.raises(grpc.RpcError) as raised:
        orders.CreateOrder(order_pb2.CreateOrderRequest(purchase_id=REJECTED_PURCHASE), timeout=2)
    assert not never_reached(raised.value)


# --- channel cache ----------------------------------------------------------


def test_channel_is_shared_per_target() -> None:
    assert channel("127.0.0.1:1") is channel("127.0.0.1:1")
    assert channel("127.0.0.1:1") is not channel("127.0.0.1:2")
    assert stub(order_pb2_grpc.OrderServiceStub, "127.0.0.1:1") is stub(
        order_pb2_grpc.OrderServiceStub, "127.0.0.1:1"
    )


def test_channel_is_rebuilt_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = channel("127.0.0.1:1")
    parent_stub = stub(order_pb2_grpc.OrderServiceStub, "127.0.0.1:1")

    monkeypatch.setattr(os, "getpid", lambda: -12345)  # as in a forked child
    child = channel("127.0.0.1:1")

    assert child is not parent
    assert channel("127.0.0.1:1") is child
    assert stub(order_pb2_grpc.OrderServiceStub, "127.0.0.1:1") is not parent_stub


def test_default_target_without_django_is_the_topology_edge() -> None:
    assert client.default_target() == INFRA.grpc_edge_target


def test_channel_cache_is_thread_safe() -> None:
    seen: list[grpc.Channel] = []
    start = threading.Barrier(8)

    def grab() -> None:
        start.wait()
        seen.append(channel("127.0.0.1:3"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1


# --- DB hygiene and graceful stop ------------------------------------------


def test_each_rpc_closes_old_connections_before_and_after(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(server, "close_old_connections", lambda: calls.append("close"))
    built = _build(close_db_connections=True)
    built.start()
    try:
        orders = stub(order_pb2_grpc.OrderServiceStub, target(built))
        orders.CreateOrder(order_pb2.CreateOrderRequest(purchase_id="p1"), timeout=2)
        assert calls == ["close", "close"]

        assert health_check(ORDER_SERVICE, target(built))  # health needs no DB
        assert calls == ["close", "close"]
    finally:
        built.stop(grace=None).wait()


def test_serve_forever_reports_not_serving_and_returns_when_stopped() -> None:
    built = _build(close_db_connections=False)
    stop = threading.Event()
    serving = threading.Thread(
        target=serve_forever, args=(built,), kwargs={"grace": 0.5, "stop": stop}
    )
    serving.start()
    try:
        assert health_check(ORDER_SERVICE, target(built), timeout=2)
    finally:
        stop.set()
        serving.join(timeout=5)
    assert not serving.is_alive()
    # The port is closed now; ask the servicer itself what it last reported.
    request = health_pb2.HealthCheckRequest(service=ORDER_SERVICE)
    status = built.health.Check(request, None)  # type: ignore[arg-type]
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert not health_check(ORDER_SERVICE, target(built), timeout=0.5)
