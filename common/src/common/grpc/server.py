"""One way to serve gRPC in every service: thread pool, health, graceful stop.

Traefik sits in front and speaks h2c to us, so the port is plaintext. The
standard health service (grpc.health.v1) answers SERVING for every registered
service name and for "" (the whole server), and turns NOT_SERVING when a stop
begins so the edge drains us before the port closes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import Any

import grpc
from django.db import close_old_connections
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common.observability.metrics import counter, histogram

logger = logging.getLogger(__name__)

GRPC_SERVER_HANDLED = counter(
    "grpc_server_handled",
    "RPCs this server answered, by full method name and status code.",
    ["method", "code"],
)
GRPC_SERVER_HANDLING = histogram(
    "grpc_server_handling_seconds",
    "Seconds this server spent answering an RPC.",
    ["method"],
)

ServicerSpec = tuple[str, object, Callable[[Any, grpc.Server], None]]
"""(fully-qualified service name, servicer instance, generated add_XServicer_to_server)."""

Registrar = Callable[[grpc.Server], Iterable[str]]
"""Adds servicers to a server and answers the fully-qualified names it registered."""

HEALTH_METHOD_PREFIX = f"/{health.SERVICE_NAME}/"

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    # Fail loudly if the port is taken instead of silently sharing it with a
    # stale process (Linux SO_REUSEPORT is on by default in gRPC).
    ("grpc.so_reuseport", 0),
    # Accept the clients' keepalive pings (see common.grpc.client) without GOAWAY.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


class _HandlerInterceptor(grpc.ServerInterceptor):
    """Wraps the handler of every RPC but the health service's (`wrap`).

    Health RPCs are passed through untouched: Traefik asks every few seconds, they need
    no database, and wrapping would drop their non-blocking Watch.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(HEALTH_METHOD_PREFIX):
            return handler
        return self.wrap(handler, handler_call_details.method)

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        raise NotImplementedError


class CloseOldConnectionsInterceptor(_HandlerInterceptor):
    """Give each RPC the connection hygiene Django gives each HTTP request.

    Servicers use the ORM from pool threads that Django's request signals never
    see; without this, a connection broken or past CONN_MAX_AGE would be reused
    forever by its thread.
    """

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return _wrap_handler(handler)


class ServerMetricsInterceptor(_HandlerInterceptor):
    """Count and time each unary-unary RPC (all this project serves) by method and code.

    The code is the one the servicer set (`context.abort`, `context.set_code`), else
    OK on return and UNKNOWN on an exception, as gRPC itself answers. Health RPCs and
    unknown methods are not counted.
    """

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if not handler.unary_unary:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _measured(handler.unary_unary, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _measured(behavior: Callable[[Any, Any], Any], method: str) -> Callable[[Any, Any], Any]:
    def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
        start = time.perf_counter()
        outcome = grpc.StatusCode.UNKNOWN  # unless the servicer returns
        try:
            response = behavior(request, context)
            outcome = grpc.StatusCode.OK
        finally:
            GRPC_SERVER_HANDLING.labels(method).observe(time.perf_counter() - start)
            GRPC_SERVER_HANDLED.labels(method, _status(context, outcome).name).inc()
        return response

    return wrapper


def _status(context: grpc.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    # ServicerContext.code() answers what abort()/set_code() set, else None.
    code = getattr(context, "code", lambda: None)()
    return code if isinstance(code, grpc.StatusCode) else default


def _around_unary(behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def wrapper(request: Any, context: Any) -> Any:
        close_old_connections()
        try:
            return behavior(request, context)
        finally:
            close_old_connections()

    return wrapper


def _around_stream(behavior: Callable[[Any, Any], Iterator[Any]]) -> Callable[[Any, Any], Any]:
    def wrapper(request: Any, context: Any) -> Iterator[Any]:
        close_old_connections()
        try:
            yield from behavior(request, context)
        finally:
            close_old_connections()

    return wrapper


def _wrap_handler(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_around_unary(handler.unary_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_around_stream(handler.unary_stream), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_around_unary(handler.stream_unary), **kwargs)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            _around_stream(handler.stream_stream), **kwargs
        )
    return handler


def _django_configured() -> bool:
    from django.conf import settings

    return bool(settings.configured)


@dataclass
class GrpcServer:
    """A built, not yet started server with its health servicer and bound port."""

    server: grpc.Server
    health: health.HealthServicer
    port: int
    services: tuple[str, ...]

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float | None = 10.0) -> threading.Event:
        """Report NOT_SERVING, then let in-flight RPCs finish within `grace` seconds."""
        self.health.enter_graceful_shutdown()
        return self.server.stop(grace)


def build_server(
    port: int,
    servicers: Sequence[ServicerSpec] = (),
    *,
    registrars: Sequence[Registrar] = (),
    health_names: Iterable[str] = (),
    max_workers: int = 16,
    max_concurrent_rpcs: int | None = None,
    host: str = "0.0.0.0",
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    close_db_connections: bool | None = None,
) -> GrpcServer:
    """Build a plaintext (h2c) server on host:port with servicers and health.

    `servicers` suits code that holds servicer objects; `registrars` suits the
    `grpcserve` command's dotted-path callables. Every name either registers,
    plus `health_names`, answers SERVING. Each pool thread may hold one DB
    connection, so `max_workers` bounds this process's connections. Port 0 binds
    a free port (see `.port`). `close_db_connections` defaults to "Django is
    configured". Every RPC is counted and timed (ServerMetricsInterceptor, outermost).
    """
    if close_db_connections is None:
        close_db_connections = _django_configured()
    chain: list[grpc.ServerInterceptor[Any, Any]] = [ServerMetricsInterceptor()]
    if close_db_connections:
        chain.append(CloseOldConnectionsInterceptor())
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[*chain, *interceptors],
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )

    names: list[str] = []
    for name, servicer, add_to_server in servicers:
        add_to_server(servicer, server)
        names.append(name)
    for register in registrars:
        names.extend(register(server))
    names.extend(health_names)
    services = tuple(dict.fromkeys(names))  # ordered, without duplicates

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC server could not bind {host}:{port}")
    return GrpcServer(server=server, health=health_servicer, port=bound, services=services)


def serve_forever(
    built: GrpcServer,
    *,
    grace: float = 10.0,
    stop: threading.Event | None = None,
) -> None:
    """Start `built` and block until SIGTERM/SIGINT (or `stop` is set), then stop gracefully.

    Signal handlers are installed only from the main thread (Python allows no
    other) and the previous ones are restored on return.
    """
    stop = stop or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "gRPC server received %s; stopping within %.1fs", signal.Signals(signum).name, grace
        )
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)

    built.start()
    try:
        # A bounded wait keeps the main thread returning to the interpreter, so
        # signal handlers run promptly on every platform.
        while not stop.wait(timeout=1.0):
            pass
    finally:
        built.stop(grace).wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.info("gRPC server on port %d stopped", built.port)
