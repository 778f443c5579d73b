"""The local trace collector and viewer (deploy/traceview), in-process on free ports.

Spans are made by the OpenTelemetry SDK and sent by its OTLP/HTTP exporter, as every
service sends them; then read back through the JSON API and the HTML pages. No
running platform needed.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind, Status, StatusCode

from deploy.local import paths
from deploy.traceview.otlp import SpanRecord
from deploy.traceview.pages import ordered_tree
from deploy.traceview.server import TraceServers
from deploy.traceview.store import TraceStore


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[TraceServers]:
    store = TraceStore(tmp_path / "traces.sqlite3")
    running = TraceServers(store, "127.0.0.1", 0, 0, poll_interval=0.05).start()
    yield running
    running.close()


def viewer(servers: TraceServers, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{servers.viewer_port}{path}", timeout=10)


def make_spans(service: str, build: Any) -> Sequence[ReadableSpan]:
    """Spans that `build(tracer)` makes in a process named `service`."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("test"))
    provider.shutdown()
    return memory.get_finished_spans()


def export(servers: TraceServers, spans: Sequence[ReadableSpan], **options: Any) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{servers.otlp_port}/v1/traces", timeout=10, **options
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def purchase_trace(servers: TraceServers, **options: Any) -> str:
    """A purchase in `purchase` whose child crosses to `orchestrator`; answer the trace id."""
    remote: list[trace.SpanContext] = []

    def purchase(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span(
            "POST api/v1/purchases", kind=SpanKind.SERVER, attributes={"http.status_code": 202}
        ):
            with tracer.start_as_current_span(
                "purchase publish",
                kind=SpanKind.PRODUCER,
                attributes={"purchase.id": "p-42", "retry": False, "lines": [1, 2]},
            ) as publish:
                remote.append(publish.get_span_context())
            time.sleep(0.01)

    def orchestrator(tracer: trace.Tracer) -> None:
        parent = trace.set_span_in_context(NonRecordingSpan(remote[0]))
        with (
            tracer.start_as_current_span(
                "purchase process", context=parent, kind=SpanKind.CONSUMER
            ),
            tracer.start_as_current_span(
                "saga.execute CREATE_ORDER", links=[Link(remote[0])]
            ) as failing,
        ):
            failing.record_exception(RuntimeError("order service is down"))
            failing.set_status(Status(StatusCode.ERROR, "order service is down"))

    export(servers, make_spans("purchase", purchase), **options)
    export(servers, make_spans("orchestrator", orchestrator), **options)
    return format(remote[0].trace_id, "032x")


def test_spans_from_two_services_come_back_as_one_trace(servers: TraceServers) -> None:
    trace_id = purchase_trace(servers)

    reply = viewer(servers, f"/api/traces/{trace_id}")

    assert reply.status_code == 200
    body = reply.json()
    assert body["trace_id"] == trace_id
    assert body["span_count"] == 4
    assert body["root_name"] == "POST api/v1/purchases"
    assert body["services"] == ["orchestrator", "purchase"]
    spans = {s["name"]: s for s in body["spans"]}
    assert set(spans) == {
        "POST api/v1/purchases",
        "purchase publish",
        "purchase process",
        "saga.execute CREATE_ORDER",
    }
    root, publish = spans["POST api/v1/purchases"], spans["purchase publish"]
    consume, step = spans["purchase process"], spans["saga.execute CREATE_ORDER"]
    assert root["parent_span_id"] is None and root["kind"] == "SERVER"
    assert root["service"] == "purchase" and root["attributes"] == {"http.status_code": 202}
    assert publish["parent_span_id"] == root["span_id"]
    assert publish["attributes"] == {"purchase.id": "p-42", "retry": False, "lines": [1, 2]}
    # Across services: the consumer hangs below the producer of the other process.
    assert consume["parent_span_id"] == publish["span_id"]
    assert consume["service"] == "orchestrator" and consume["kind"] == "CONSUMER"
    assert step["status_code"] == "ERROR" and step["status_message"] == "order service is down"
    assert [e["name"] for e in step["events"]] == ["exception"]
    assert step["links"] == [
        {"trace_id": trace_id, "span_id": publish["span_id"], "attributes": {}}
    ]
    assert root["start_ns"] <= publish["start_ns"] and root["end_ns"] >= publish["end_ns"]
    assert root["duration_ms"] >= 10
    assert root["resource"]["service.name"] == "purchase"


def test_gzip_exports_are_read(servers: TraceServers) -> None:
    trace_id = purchase_trace(servers, compression=Compression.Gzip)

    assert viewer(servers, f"/api/traces/{trace_id}").json()["span_count"] == 4


def test_the_trace_list_filters_by_service_duration_and_attribute(servers: TraceServers) -> None:
    first = purchase_trace(servers)
    lone = make_spans("account", lambda t: t.start_span("POST api/v1/account/login").end())
    export(servers, lone)
    second = format(lone[0].context.trace_id, "032x")

    def listed(query: str) -> list[str]:
        reply = viewer(servers, f"/api/traces?{query}")
        assert reply.status_code == 200
        return [t["trace_id"] for t in reply.json()["traces"]]

    assert listed("") == [second, first]  # the most recent first
    assert listed("limit=1") == [second]
    assert listed("service=orchestrator") == [first]
    assert listed("service=order") == []  # a whole name, not a prefix
    assert listed("min_ms=10") == [first]
    assert listed("attr=purchase.id=p-42") == [first]
    assert listed("attr=purchase.id=p-43") == []
    summary = viewer(servers, "/api/traces?service=purchase").json()["traces"][0]
    assert summary["span_count"] == 4 and summary["error_count"] == 1
    assert summary["root_service"] == "purchase"
    services = viewer(servers, "/api/services").json()["services"]
    assert services == ["account", "orchestrator", "purchase"]
    assert viewer(servers, "/api/traces?limit=many").status_code == 400


def test_the_html_pages_show_the_list_and_a_waterfall(servers: TraceServers) -> None:
    trace_id = purchase_trace(servers)

    listing = viewer(servers, "/?service=purchase")
    detail = viewer(servers, f"/trace/{trace_id}")

    assert listing.status_code == 200 and listing.headers["Content-Type"].startswith("text/html")
    assert f"/trace/{trace_id}" in listing.text and "POST api/v1/purchases" in listing.text
    assert detail.status_code == 200
    for name in ("purchase publish", "purchase process", "saga.execute CREATE_ORDER"):
        assert name in detail.text
    assert "order service is down" in detail.text  # the error, and its span in red
    assert "class=err" in detail.text
    assert "&quot;purchase.id&quot;: &quot;p-42&quot;" in detail.text  # attributes, folded
    assert "link →" in detail.text


def test_span_names_and_attributes_are_escaped(servers: TraceServers) -> None:
    def hostile(tracer: trace.Tracer) -> None:
        tracer.start_span("<script>alert(1)</script>", attributes={"q": "<img src=x>"}).end()

    spans = make_spans("<b>svc</b>", hostile)
    export(servers, spans)
    trace_id = format(spans[0].context.trace_id, "032x")

    for page in (viewer(servers, "/"), viewer(servers, f"/trace/{trace_id}")):
        assert page.status_code == 200
        assert "<script>" not in page.text and "<img" not in page.text and "<b>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert viewer(servers, f"/api/traces/{trace_id}").json()["spans"][0]["attributes"] == {
        "q": "<img src=x>"
    }


def post(
    servers: TraceServers, body: bytes | Iterator[bytes], content_type: str, **headers: str
) -> requests.Response:
    """POST a body to the collector; an iterator goes out with chunked encoding."""
    return requests.post(
        f"http://127.0.0.1:{servers.otlp_port}/v1/traces",
        data=body,
        headers={"Content-Type": content_type, **headers},
        timeout=10,
    )


def test_a_json_export_with_hex_ids_is_stored(servers: TraceServers) -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "drive purchases",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                                "status": {"code": 1},
                                "someFutureField": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }

    reply = post(servers, json.dumps(document).encode(), "application/json")

    assert reply.status_code == 200 and reply.json() == {}
    span = viewer(servers, f"/api/traces/{trace_id}").json()["spans"][0]
    assert span["span_id"] == span_id and span["service"] == "bench"
    assert span["kind"] == "CLIENT" and span["status_code"] == "OK"
    assert span["attributes"] == {"n": 7} and span["duration_ms"] == 250


def test_a_chunked_export_is_read(servers: TraceServers) -> None:
    spans = make_spans("payment", lambda t: t.start_span("CreatePayment").end())
    body = encode_spans(spans).SerializeToString()

    reply = post(servers, iter([body[:10], body[10:]]), "application/x-protobuf")

    assert reply.status_code == 200
    assert viewer(servers, "/api/services").json()["services"] == ["payment"]


@pytest.mark.parametrize(
    ("body", "content_type", "headers"),
    [
        (b"\xff\xff\xff not protobuf", "application/x-protobuf", {}),
        (b"{not json", "application/json", {}),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            {},
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "no ids"}]}]}]}',
            "application/json",
            {},
        ),
        (b"not gzip", "application/x-protobuf", {"Content-Encoding": "gzip"}),
        (gzip.compress(b"\xff\xff\xff"), "application/x-protobuf", {"Content-Encoding": "gzip"}),
    ],
    ids=["protobuf", "json", "hex id", "no ids", "gzip", "gzipped garbage"],
)
def test_a_bad_body_is_refused_with_400(
    servers: TraceServers, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    reply = post(servers, body, content_type, **headers)

    assert reply.status_code == 400, reply.text
    assert "error" in reply.json()
    assert viewer(servers, "/api/traces").json()["traces"] == []


def test_other_paths_and_types_are_refused(servers: TraceServers) -> None:
    assert post(servers, b"x", "text/plain").status_code == 415
    metrics = requests.post(
        f"http://127.0.0.1:{servers.otlp_port}/v1/metrics", data=b"", timeout=10
    )
    assert metrics.status_code == 404
    assert viewer(servers, "/api/traces/" + "0" * 32).status_code == 404
    assert viewer(servers, "/trace/" + "0" * 32).status_code == 404
    assert viewer(servers, "/trace/not-an-id").status_code == 404
    assert viewer(servers, "/nowhere").status_code == 404


# ------------------------------------------------------------ store and tree


def record(trace_id: str, span_id: str, parent: str = "", start: int = 0) -> SpanRecord:
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=f"span {span_id}",
        kind="INTERNAL",
        service="svc",
        start_ns=start,
        end_ns=start + 10,
        status_code="UNSET",
    )


def test_the_store_keeps_a_span_sent_twice_once(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.sqlite3")
    span = record("a" * 32, "1" * 16)

    assert store.add([span]) == 1
    assert store.add([span]) == 0
    assert store.span_count() == 1
    store.close()


def test_the_store_drops_the_oldest_traces_past_its_retention(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.sqlite3", retention_spans=10)
    for n, trace_id in enumerate(("a" * 32, "b" * 32, "c" * 32)):
        store.add([record(trace_id, f"{i:016x}", start=n * 100 + i) for i in range(4)])

    kept = [t["trace_id"] for t in store.traces(limit=10)]

    assert kept == ["c" * 32, "b" * 32]  # whole traces go, the oldest first
    assert store.span_count() == 8
    assert store.trace("a" * 32) is None
    store.close()
    assert TraceStore(tmp_path / "t.sqlite3").span_count() == 8  # counted again on open


def test_a_child_that_arrives_before_its_root_is_listed_under_the_root(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.sqlite3")
    store.add([record("a" * 32, "2" * 16, parent="1" * 16, start=5)])
    assert store.traces()[0]["root_name"] == "span " + "2" * 16  # the best guess so far

    store.add([record("a" * 32, "1" * 16, start=0)])

    assert store.traces()[0]["root_name"] == "span " + "1" * 16
    store.close()


def test_the_waterfall_order_is_depth_first_with_orphans_as_roots() -> None:
    spans: list[dict[str, Any]] = [
        {"span_id": "r", "parent_span_id": None},
        {"span_id": "a", "parent_span_id": "r"},
        {"span_id": "a1", "parent_span_id": "a"},
        {"span_id": "b", "parent_span_id": "r"},
        {"span_id": "o", "parent_span_id": "missing"},
        {"span_id": "x", "parent_span_id": "y"},  # a cycle: no root among them
        {"span_id": "y", "parent_span_id": "x"},
    ]

    order = [(depth, s["span_id"]) for depth, s in ordered_tree(spans)]

    assert order == [(0, "r"), (1, "a"), (2, "a1"), (1, "b"), (0, "o"), (0, "x"), (0, "y")]


# ------------------------------------------------------------- as a program


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_program_serves_until_sigterm(tmp_path: Path) -> None:
    otlp_port, viewer_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.traceview",
            f"--otlp-port={otlp_port}",
            f"--viewer-port={viewer_port}",
            f"--db={tmp_path / 'traces.sqlite3'}",
        ],
        cwd=paths.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TRACE_RETENTION_SPANS": "1000"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{viewer_port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert health.json() == {"status": "ok", "spans": 0}
        collector = requests.get(f"http://127.0.0.1:{otlp_port}/", timeout=2)
        assert "POST /v1/traces" in collector.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert (tmp_path / "traces.sqlite3").exists()
