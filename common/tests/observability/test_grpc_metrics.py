"""gRPC metrics, against a real in-process server called through the shared channels:
both sides count each unary call by full method name and status code, and time it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import REGISTRY

from common.grpc.client import close_channels, health_check, stub
from common.grpc.server import GrpcServer, build_server
from saga_proto import order_pb2, order_pb2_grpc

ORDER_SERVICE = "order.OrderService"
CREATE = "/order.OrderService/CreateOrder"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class Orders(order_pb2_grpc.OrderServiceServicer):
    """The purchase id says how to answer."""

    def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.OrderReply:
        if request.purchase_id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
        if request.purchase_id == "crash":
            raise RuntimeError("a bug")
        if request.purchase_id == "duplicate":
            context.set_code(grpc.StatusCode.ALREADY_EXISTS)
            return order_pb2.OrderReply()
        if request.purchase_id == "slow":
            time.sleep(0.3)
        return order_pb2.OrderReply(order_id=request.purchase_id, status="CREATED", amount=1)


@pytest.fixture
def server() -> Iterator[str]:
    """The address of a running server of Orders."""
    spec = (ORDER_SERVICE, Orders(), order_pb2_grpc.add_OrderServiceServicer_to_server)
    built: GrpcServer = build_server(
        0, [spec], host="127.0.0.1", max_workers=4, close_db_connections=False
    )
    built.start()
    close_channels()
    yield f"127.0.0.1:{built.port}"
    close_channels()
    built.stop(grace=None).wait()


@pytest.fixture
def orders(server: str) -> order_pb2_grpc.OrderServiceStub:
    return stub(order_pb2_grpc.OrderServiceStub, server)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot(side: str, method: str, code: str) -> tuple[float, float]:
    return (
        value(f"grpc_{side}_handled_total", method=method, code=code),
        value(f"grpc_{side}_handling_seconds_count", method=method),
    )


def call(orders: order_pb2_grpc.OrderServiceStub, purchase_id: str, timeout: float = 2) -> None:
    orders.CreateOrder(order_pb2.CreateOrderRequest(purchase_id=purchase_id), timeout=timeout)


@pytest.mark.parametrize(
    ("purchase_id", "code"),
    [
        ("p1", "OK"),
        ("missing", "NOT_FOUND"),  # context.abort
        ("crash", "UNKNOWN"),  # an exception in the servicer
        ("duplicate", "ALREADY_EXISTS"),  # context.set_code, then return
    ],
)
def test_both_sides_count_a_call_by_method_and_code(
    orders: order_pb2_grpc.OrderServiceStub, purchase_id: str, code: str
) -> None:
    before = snapshot("server", CREATE, code), snapshot("client", CREATE, code)

    try:
        call(orders, purchase_id)
    except grpc.RpcError as error:
        assert error.code().name == code

    after = snapshot("server", CREATE, code), snapshot("client", CREATE, code)
    for side_before, side_after in zip(before, after, strict=True):
        assert side_after == (side_before[0] + 1, side_before[1] + 1)


def test_the_client_counts_a_missed_deadline_and_times_the_wait(
    orders: order_pb2_grpc.OrderServiceStub,
) -> None:
    count, seconds = (
        value("grpc_client_handled_total", method=CREATE, code="DEADLINE_EXCEEDED"),
        value("grpc_client_handling_seconds_sum", method=CREATE),
    )

    with pytest.raises(grpc.RpcError):
        call(orders, "slow", timeout=0.05)

    assert value("grpc_client_handled_total", method=CREATE, code="DEADLINE_EXCEEDED") == count + 1
    assert value("grpc_client_handling_seconds_sum", method=CREATE) - seconds >= 0.04


def test_a_future_call_is_counted_once_when_it_ends(
    orders: order_pb2_grpc.OrderServiceStub,
) -> None:
    before = snapshot("client", CREATE, "OK")

    future = orders.CreateOrder.future(order_pb2.CreateOrderRequest(purchase_id="p2"), timeout=2)
    assert future.result().order_id == "p2"

    deadline = time.monotonic() + 2  # the done-callback may run on gRPC's thread
    while snapshot("client", CREATE, "OK") == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert snapshot("client", CREATE, "OK") == (before[0] + 1, before[1] + 1)


def test_health_checks_are_not_counted(server: str) -> None:
    assert health_check(ORDER_SERVICE, server)

    assert snapshot("server", HEALTH_CHECK, "OK") == (0.0, 0.0)
    assert snapshot("client", HEALTH_CHECK, "OK") == (0.0, 0.0)
