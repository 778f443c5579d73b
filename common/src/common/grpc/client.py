"""Long-lived gRPC channels to the edge, one per target per process.

A channel is expensive (a TCP+HTTP/2 connection with its own threads) and safe
to share across threads, so every caller in a process reuses one per target.
Traefik balances each call across the service's replicas, so one connection to
the edge is enough. Channels do not survive fork (Celery prefork, gunicorn), so
the cache is keyed by pid: a child builds its own on first use and never
touches its parent's.

A service's calls to a peer live in its own `clients.py` (request building, reply
reading); a caller that answers its own client with an ApplicationError makes each
call through `call`, which maps a failure to that error the one way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common.errors import DEFAULT_RETRY_AFTER, ApplicationError, ErrorCode
from common.grpc.errors import details_of, status_code_of
from common.observability.metrics import counter, histogram
from common.topology import INFRA

logger = logging.getLogger(__name__)

StubT = TypeVar("StubT")
ReplyT = TypeVar("ReplyT")

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    # Modest keepalive: find a dead edge connection within ~40s without pinging
    # an idle channel (Go's HTTP/2 server in Traefik tolerates this rate).
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Reconnect quickly after the edge restarts instead of backing off for minutes.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)

GRPC_CLIENT_HANDLED = counter(
    "grpc_client_handled",
    "RPCs this process made, by full method name and the status code it got.",
    ["method", "code"],
)
GRPC_CLIENT_HANDLING = histogram(
    "grpc_client_handling_seconds",
    "Seconds from starting an RPC to its answer, as this process saw them.",
    ["method"],
)
_HEALTH_METHOD_PREFIX = f"/{health.SERVICE_NAME}/"

_lock = threading.Lock()
_owner_pid: int | None = None
_channels: dict[tuple[int, str], grpc.Channel] = {}
_stubs: dict[tuple[int, str, type], Any] = {}


def default_target() -> str:
    """The gRPC edge: settings.GRPC_EDGE_TARGET under Django, else the topology's."""
    from django.conf import settings

    if settings.configured:
        return str(getattr(settings, "GRPC_EDGE_TARGET", INFRA.grpc_edge_target))
    return INFRA.grpc_edge_target


class ClientMetricsInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Count and time each unary-unary call by method and the status code it ended with
    (a deadline or an unreachable edge included). Health checks are not counted."""

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        if method.startswith(_HEALTH_METHOD_PREFIX):
            return continuation(client_call_details, request)
        start = time.perf_counter()
        outcome = continuation(client_call_details, request)

        def record(done: Any) -> None:
            code = done.code()
            name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
            GRPC_CLIENT_HANDLING.labels(method).observe(time.perf_counter() - start)
            GRPC_CLIENT_HANDLED.labels(method, name).inc()

        # A blocking call's outcome is already done and runs `record` at once; a
        # future's runs it when the call ends.
        outcome.add_done_callback(record)
        return outcome


def _forget_other_processes(pid: int) -> None:
    """Drop (without closing) entries a parent process made; closing them here
    would act on connection state this process does not own. Call with _lock held."""
    global _owner_pid
    if _owner_pid != pid:
        _channels.clear()
        _stubs.clear()
        _owner_pid = pid


def channel(target: str | None = None) -> grpc.Channel:
    """The process's shared insecure (h2c) channel to `target` (default: the edge), its
    calls counted and timed (ClientMetricsInterceptor)."""
    target = target or default_target()
    pid = os.getpid()
    with _lock:
        _forget_other_processes(pid)
        found = _channels.get((pid, target))
        if found is None:
            found = grpc.intercept_channel(
                grpc.insecure_channel(target, options=CHANNEL_OPTIONS),
                ClientMetricsInterceptor(),
            )
            _channels[(pid, target)] = found
        return found


def stub(stub_class: type[StubT], target: str | None = None) -> StubT:
    """A cached `stub_class` bound to the shared channel for `target`."""
    target = target or default_target()
    ch = channel(target)
    pid = os.getpid()
    with _lock:
        found = _stubs.get((pid, target, stub_class))
        if found is None:
            found = stub_class(ch)  # type: ignore[call-arg]
            _stubs[(pid, target, stub_class)] = found
        return found


def health_check(service: str, target: str | None = None, timeout: float = 2.0) -> bool:
    """True when `service` answers SERVING through `target` within `timeout`.

    Through the edge, the answer comes from whichever replica Traefik routes the
    health path to; pass a process's own address to ask that process.
    """
    health = stub(health_pb2_grpc.HealthStub, target)
    try:
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def close_channels() -> None:
    """Close this process's channels (shutdown, tests); later calls open new ones."""
    pid = os.getpid()
    with _lock:
        _forget_other_processes(pid)
        for ch in _channels.values():
            ch.close()
        _channels.clear()
        _stubs.clear()


def call(method: Callable[..., ReplyT], request: Any, *, timeout: float, peer: str) -> ReplyT:
    """`method(request)` with a deadline, e.g. `call(stub(ProductServiceStub).CheckProducts,
    request, timeout=2.0, peer="product")`; a failure raises `application_error(...)`."""
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as error:
        raise application_error(error, peer=peer) from None


def application_error(error: grpc.RpcError, *, peer: str) -> ApplicationError:
    """What a failed call to the `peer` service means to our own client.

    The peer refusing what our client asked for (INVALID_ARGUMENT, NOT_FOUND) is that
    client's 400 or 404. Anything else, a refusal of us (PERMISSION_DENIED between
    services) included, means the peer cannot answer now: 503, try again (logged).
    """
    code = status_code_of(error)
    message = details_of(error)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return ApplicationError(ErrorCode.INVALID_INPUT, f"The {peer} service refused: {message}")
    if code is grpc.StatusCode.NOT_FOUND:
        return ApplicationError(ErrorCode.NOT_FOUND, message or "Not found.")
    logger.warning("a call to the %s service failed: %s %s", peer, code, message)
    return ApplicationError(
        ErrorCode.UNAVAILABLE,
        f"The {peer} service is not available right now; try again.",
        {"retry_after": DEFAULT_RETRY_AFTER},
    )
