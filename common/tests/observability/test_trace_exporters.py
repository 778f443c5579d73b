"""Where spans go, chosen by the SDK's standard variables (common.observability.tracing).

Given OTEL_EXPORTER_ZIPKIN_ENDPOINT, a finished span reaches that URL as Zipkin JSON v2
with the service's name; given nothing, no exporter is made (spans cost nothing).
A stand-in Zipkin in this process takes the POST: no platform needed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from common.observability.tracing import span_exporters

VARIABLES = (
    "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


class FakeZipkin(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FakeZipkin.received.append((self.path, json.loads(body)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def zipkin() -> Iterator[str]:
    """A stand-in Zipkin on a free port; answers its base URL."""
    FakeZipkin.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeZipkin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_without_a_destination_no_exporter_is_made() -> None:
    assert span_exporters() == []


def test_a_span_reaches_zipkin_as_json_v2_with_its_service_name(
    zipkin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", f"{zipkin}/api/v2/spans")
    (exporter,) = span_exporters()
    assert isinstance(exporter, ZipkinExporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "orchestrator"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    with provider.get_tracer("test").start_as_current_span(
        "saga.execute CREATE_ORDER", kind=SpanKind.CLIENT, attributes={"saga.step": "CREATE_ORDER"}
    ) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    ((path, spans),) = FakeZipkin.received
    assert path == "/api/v2/spans"
    (sent,) = spans
    assert sent["traceId"] == trace_id
    assert sent["name"] == "saga.execute CREATE_ORDER"
    assert sent["kind"] == "CLIENT"
    assert sent["localEndpoint"]["serviceName"] == "orchestrator"
    assert sent["tags"]["saga.step"] == "CREATE_ORDER"


def test_an_otlp_collector_can_take_the_spans_instead_or_as_well(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert [type(e) for e in span_exporters()] == [OTLPSpanExporter]

    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://127.0.0.1:9411/api/v2/spans")
    assert [type(e) for e in span_exporters()] == [ZipkinExporter, OTLPSpanExporter]
