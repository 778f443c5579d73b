"""OpenTelemetry tracing for every process of a service: one trace per purchase.

`configure_tracing(service)` runs once per process (from `common.apps` when Django
starts) and instruments Django, gRPC (client and server), Celery, psycopg2 and Redis.
What those libraries cannot carry, we carry ourselves: the W3C trace context rides in
outbox rows and Kafka headers (`inject_context` / `extract_context`), so a purchase
stays one trace from its POST through the relay, Kafka, the orchestrator's consumer,
the Celery task and its gRPC calls, and back to the purchase service.

Switches, all from the environment:
- TRACING=off: no SDK at all (the API's no-op tracer); anything else: spans are made.
- OTEL_EXPORTER_ZIPKIN_ENDPOINT (a Zipkin server's /api/v2/spans): spans are sent
  there as Zipkin JSON v2, in batches (what `make up OBSERVABILITY=1` and
  docker-compose set). OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT):
  sent over OTLP/HTTP to a collector instead, or as well. Neither: nothing records and
  nothing is sent.
- OTEL_SERVICE_NAME overrides the service name; OTEL_TRACES_SAMPLER and the other
  standard OTEL_* variables work as the SDK documents them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, Tracer, TraceState
from opentelemetry.util.types import Attributes

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

TRACER_NAME = "saga-platform"
_configured_pid: int | None = None
_lock = threading.Lock()


def tracing_enabled() -> bool:
    return os.environ.get("TRACING", "on").strip().lower() not in {"off", "0", "false", "no"}


def span_exporters() -> list[SpanExporter]:
    """One exporter per destination the SDK's standard variables name (see above); none
    when neither is set."""
    exporters: list[SpanExporter] = []
    zipkin = os.environ.get("OTEL_EXPORTER_ZIPKIN_ENDPOINT")
    if zipkin:
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        exporters.append(ZipkinExporter(endpoint=zipkin))
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())
    return exporters


def configure_tracing(service_name: str) -> None:
    """Install the tracer provider and the library instrumentations (once per process)."""
    global _configured_pid
    with _lock:
        if _configured_pid == os.getpid():
            return
        _configured_pid = os.getpid()
        if not tracing_enabled():
            return
        _install_provider(os.environ.get("OTEL_SERVICE_NAME") or service_name)
        _instrument_libraries()


def _install_provider(service_name: str) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": service_name,
            "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
        }
    )
    provider = TracerProvider(resource=resource, sampler=_sampler())
    exporters = span_exporters()
    for exporter in exporters:
        # Batches leave from a background thread: a request never waits on the backend.
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if exporters:
        start_recording()
    trace.set_tracer_provider(provider)


_recording = threading.Event()


def start_recording() -> None:
    """Record spans from now on: there is somewhere to send them (an exporter, or a
    test's in-memory one). Until then spans are made non-recording: trace ids and
    context still travel with every call and message, but no span collects attributes
    or timings that nobody would receive."""
    _recording.set()


def recording() -> bool:
    """Whether spans are recorded now (see `start_recording`): a hot loop may skip
    making spans that would record nothing."""
    return _recording.is_set()


def _sampler() -> Sampler:
    """The SDK's sampler from OTEL_TRACES_SAMPLER (default: parent-based, always on),
    behind a filter that starts no trace with a client call (see `_NoClientRoots`)."""
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    return _NoClientRoots(_get_from_env_or_default())


def _instrument_libraries() -> None:
    # Health probes and scrapes every few seconds would bury the purchases (read when
    # the Django instrumentation is imported, so set first).
    os.environ.setdefault("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "healthz,metrics")
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcInstrumentorClient,
        GrpcInstrumentorServer,
        filters,
    )
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # Traefik probes every gRPC service's health every few seconds: not worth a trace.
    not_health = filters.negate(filters.health_check())
    for instrumentor in (
        DjangoInstrumentor(),
        GrpcInstrumentorClient(filter_=not_health),
        GrpcInstrumentorServer(filter_=not_health),
        CeleryInstrumentor(),
        Psycopg2Instrumentor(),
        RedisInstrumentor(),
    ):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


class _NoClientRoots(Sampler):
    """Drops every span while nothing records (`start_recording`). Then drops a span that
    would start a trace as a client call: a query, a Redis command or a gRPC call made
    outside any request, message or task (health probes, the relay's idle scans, Celery
    polling its broker); they are no purchase's story and would outnumber the purchases.
    Everything else is up to the inner sampler."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not _recording.is_set() or (kind is SpanKind.CLIENT and not parent.is_valid):
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoClientRoots{{{self._inner.get_description()}}}"


_TRACER = trace.ProxyTracer(TRACER_NAME)


def tracer() -> Tracer:
    """The platform's tracer: the provider's once one is installed, a no-op one before.
    One object for the process (`get_tracer` would build a new one per call)."""
    return _TRACER


# ------------------------------------------------- context through messages


def inject_context(
    carrier: MutableMapping[str, str], context: Context | None = None
) -> MutableMapping[str, str]:
    """Write the current trace context (traceparent, tracestate) into `carrier`, or
    `context` when given (a batch handler continuing one message's trace, say)."""
    propagate.inject(carrier, context=context)
    return carrier


def extract_context(headers: Mapping[str, str | bytes | None]) -> Context:
    """Answer the trace context carried by message headers (bytes or str values)."""
    carrier = {
        name: value.decode(errors="replace") if isinstance(value, bytes) else value
        for name, value in headers.items()
        if value is not None
    }
    return propagate.extract(carrier)


@contextlib.contextmanager
def producer_span(
    topic: str, headers: MutableMapping[str, str], **attributes: Any
) -> Iterator[Span]:
    """A `<topic> publish` span, child of the context stored in `headers`, whose own
    context replaces it there (so the consumer's span hangs below this one)."""
    parent = extract_context(headers)
    with tracer().start_as_current_span(
        f"{topic} publish",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic, **attributes},
    ) as span:
        inject_context(headers)
        yield span


@contextlib.contextmanager
def consumer_span(
    topic: str, headers: Mapping[str, str | bytes | None], **attributes: Any
) -> Iterator[Span]:
    """A `<topic> process` span, child of the producer's context found in `headers`."""
    with tracer().start_as_current_span(
        f"{topic} process",
        context=extract_context(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.operation.type": "process",
            **attributes,
        },
    ) as span:
        yield span


@contextlib.contextmanager
def batch_consumer_span(
    topic: str, headers: Iterable[Mapping[str, str | bytes | None]], **attributes: Any
) -> Iterator[Span]:
    """One `<topic> process` span for a whole batch handled at once, where a span per
    message would cost more than the handling. A root of its own, linked to the
    producer context found in each message's headers (OpenTelemetry's model for batch
    consumption). The links are only worked out when spans are recorded: without an
    exporter this costs one non-recording span per batch."""
    links: list[Link] = []
    count = 0
    for carrier in headers:
        count += 1
        if recording():
            producer = trace.get_current_span(extract_context(carrier)).get_span_context()
            if producer.is_valid:
                links.append(Link(producer))
    with tracer().start_as_current_span(
        f"{topic} process",
        context=Context(),  # a root: the batch belongs to no one message's trace
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.operation.type": "process",
            "messaging.batch.message_count": count,
            **attributes,
        },
    ) as span:
        yield span


def run_in_context(ctx: Context, fn: Any, *args: Any) -> Any:
    """Call `fn` with `ctx` as the current context: for callbacks that run later
    (`transaction.on_commit`) but belong to the span that registered them."""
    token = otel_context.attach(ctx)
    try:
        return fn(*args)
    finally:
        otel_context.detach(token)
