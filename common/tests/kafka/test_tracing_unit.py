"""Trace context through Kafka and the outbox, and the consumer's metrics (no broker).

Given a message whose producer sent its trace context along, when the loop handles it,
then the handler runs in a span of that same trace, below the producer's span.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from confluent_kafka import Message
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, get_current_span
from test_consumer_unit import (  # the fakes of the loop's own tests (same directory)
    TOPIC,
    FakeConsumer,
    FakePublisher,
    make_loop,
)

from common.kafka.messages import ConsumedMessage, PoisonMessage
from common.kafka.metrics import record_lag
from common.observability.tracing import inject_context, producer_span, tracer
from common.testing import metric_value, recorded_spans


class TracedConsumer(FakeConsumer):
    """A fake log whose messages carry the headers a traced producer wrote."""

    def __init__(self, values: list[bytes], headers: dict[str, str]) -> None:
        super().__init__({0: values})
        self.extra = [(k, v.encode()) for k, v in headers.items()]

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        return [
            Message(
                topic=m.topic(),
                partition=m.partition(),
                offset=m.offset(),
                key=m.key(),
                value=m.value(),
                headers=[*(m.headers() or []), *self.extra],
            )
            for m in super().consume(num_messages, timeout)
        ]


def sent_from_a_producer_span() -> tuple[dict[str, str], Any]:
    headers: dict[str, str] = {}
    with (
        tracer().start_as_current_span("POST /api/v1/purchases"),
        producer_span(TOPIC, headers) as span,
    ):
        pass
    return headers, span.get_span_context()


def test_the_handler_runs_in_the_producers_trace() -> None:
    spans = recorded_spans()
    headers, producer = sent_from_a_producer_span()
    seen: list[Any] = []
    consumer = TracedConsumer([b"a", b"b"], headers)

    make_loop(consumer, lambda m: seen.append(get_current_span().get_span_context())).run_once()

    assert [ctx.trace_id for ctx in seen] == [producer.trace_id] * 2
    processed = [s for s in spans.get_finished_spans() if s.name == f"{TOPIC} process"]
    assert len(processed) == 2
    assert all(s.kind is SpanKind.CONSUMER for s in processed)
    assert {s.parent.span_id for s in processed if s.parent} == {producer.span_id}
    assert processed[0].attributes["messaging.message.id"] == "0"


def test_a_batch_in_one_transaction_gives_each_message_its_own_span() -> None:
    spans = recorded_spans()
    headers, producer = sent_from_a_producer_span()
    consumer = TracedConsumer([b"a", b"b", b"c"], headers)
    loop = make_loop(consumer, lambda m: None)
    loop._batch_scope = contextlib.nullcontext  # the batch's transaction, minus the DB

    assert loop.run_once() is True

    processed = [s for s in spans.get_finished_spans() if s.name == f"{TOPIC} process"]
    assert [s.attributes["messaging.kafka.offset"] for s in processed] == [0, 1, 2]
    assert {s.context.trace_id for s in processed} == {producer.trace_id}


def test_a_batch_handler_runs_in_one_span_linked_to_every_producer() -> None:
    spans = recorded_spans()
    headers, producer = sent_from_a_producer_span()
    consumer = TracedConsumer([b"a", b"b", b"c"], headers)
    seen: list[Any] = []
    loop = make_loop(
        consumer,
        lambda m: None,
        batch_scope=contextlib.nullcontext,
        batch_handler=lambda batch: seen.append(get_current_span().get_span_context()),
    )

    assert loop.run_once() is True

    processed = [s for s in spans.get_finished_spans() if s.name == f"{TOPIC} process"]
    [batch] = [s for s in processed if "messaging.batch.message_count" in (s.attributes or {})]
    assert batch.kind is SpanKind.CONSUMER
    assert batch.parent is None  # the batch belongs to no one message's trace
    assert batch.attributes["messaging.batch.message_count"] == 3
    assert [link.context.span_id for link in batch.links] == [producer.span_id] * 3
    assert [ctx.span_id for ctx in seen] == [batch.context.span_id]  # the handler runs in it
    # Spans are recorded here, so each message's trace also shows where it was consumed.
    per_message = [s for s in processed if s is not batch]
    assert sorted(s.attributes["messaging.kafka.offset"] for s in per_message) == [0, 1, 2]
    assert {s.parent.span_id for s in per_message if s.parent} == {producer.span_id}


def test_without_recording_a_batch_makes_one_span_and_reads_no_message_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from common.kafka import consumer as consumer_module
    from common.observability import tracing

    headers, _ = sent_from_a_producer_span()
    made: list[Any] = []
    monkeypatch.setattr(consumer_module, "consumer_span", lambda *a, **k: made.append(a))
    monkeypatch.setattr(tracing, "extract_context", lambda h: made.append(h))
    seen: list[Any] = []
    loop = make_loop(
        TracedConsumer([b"a", b"b", b"c"], headers),
        lambda m: None,
        batch_scope=contextlib.nullcontext,
        batch_handler=lambda batch: seen.append(get_current_span()),
    )
    recording = tracing._recording.is_set()
    tracing._recording.clear()
    try:
        assert loop.run_once() is True
    finally:
        if recording:
            tracing._recording.set()

    [span] = seen
    assert not span.is_recording()
    assert made == []  # no span per message, no links worked out that nobody would see


def test_a_batch_that_falls_back_gives_each_message_its_own_span() -> None:
    spans = recorded_spans()
    headers, producer = sent_from_a_producer_span()
    consumer = TracedConsumer([b"a", b"b"], headers)

    def failing_batch(batch: list[ConsumedMessage]) -> None:
        raise PoisonMessage("one of them is bad")

    loop = make_loop(
        consumer, lambda m: None, batch_scope=contextlib.nullcontext, batch_handler=failing_batch
    )
    assert loop.run_once() is True

    processed = [s for s in spans.get_finished_spans() if s.name == f"{TOPIC} process"]
    # The failed attempt: the batch's span and (recorded here) a span per message, all
    # marked failed; then one span per message as they are handled one by one.
    attempt, one_by_one = processed[:3], processed[3:]
    assert attempt[0].attributes["messaging.batch.message_count"] == 2
    assert all(s.status.status_code is StatusCode.ERROR for s in attempt)
    assert [s.attributes["messaging.kafka.offset"] for s in one_by_one] == [0, 1]
    assert all(s.status.status_code is StatusCode.UNSET for s in one_by_one)
    assert {s.parent.span_id for s in one_by_one if s.parent} == {producer.span_id}


def test_the_producer_span_continues_the_stored_context_and_replaces_it() -> None:
    stored: dict[str, str] = {}
    with tracer().start_as_current_span("the write") as write:
        inject_context(stored)
    headers = dict(stored)

    with producer_span(TOPIC, headers) as publish:
        pass

    assert publish.parent is not None
    assert publish.parent.span_id == write.get_span_context().span_id
    assert publish.get_span_context().trace_id == write.get_span_context().trace_id
    assert headers["traceparent"] != stored["traceparent"]
    assert f"{publish.get_span_context().span_id:016x}" in headers["traceparent"]


def test_a_message_without_context_starts_a_trace_of_its_own() -> None:
    spans = recorded_spans()
    consumer = FakeConsumer({0: [b"a"]})

    make_loop(consumer, lambda m: None).run_once()

    [processed] = [s for s in spans.get_finished_spans() if s.name == f"{TOPIC} process"]
    assert processed.parent is None


def test_outcomes_are_counted() -> None:
    def counts() -> dict[str, float]:
        return {
            o: metric_value("kafka_messages_consumed_total", topic=TOPIC, outcome=o)
            for o in ("handled", "dead_lettered", "retried")
        }

    before = counts()
    calls = {"n": 0}

    def handler(message: ConsumedMessage) -> None:
        if message.value == b"poison":
            raise PoisonMessage("bad")
        if message.value == b"flaky" and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("db down")

    loop = make_loop(FakeConsumer({0: [b"ok", b"poison", b"flaky"]}), handler, FakePublisher())
    assert loop.run_once() is False
    assert loop.run_once() is True

    after = counts()
    assert {o: after[o] - before[o] for o in after} == {
        "handled": 2,
        "dead_lettered": 1,
        "retried": 1,
    }


def test_a_batch_handled_at_once_counts_each_message() -> None:
    before = metric_value("kafka_messages_consumed_total", topic=TOPIC, outcome="handled")

    loop = make_loop(
        FakeConsumer({0: [b"a", b"b"], 1: [b"c"]}),
        lambda m: None,
        batch_scope=contextlib.nullcontext,
        batch_handler=lambda batch: None,
    )
    assert loop.run_once() is True

    after = metric_value("kafka_messages_consumed_total", topic=TOPIC, outcome="handled")
    assert after - before == 3


def test_lag_is_read_from_librdkafka_statistics() -> None:
    stats = {
        "topics": {
            "purchase": {
                "partitions": {
                    "0": {"consumer_lag": 7},
                    "1": {"consumer_lag": -1},  # position not known yet: left out
                    "-1": {"consumer_lag": 0},  # librdkafka's unassigned bucket
                }
            }
        }
    }

    record_lag("orchestrator", json.dumps(stats))
    record_lag("orchestrator", "not json")  # ignored

    value = metric_value(
        "kafka_consumer_lag_messages", group="orchestrator", topic="purchase", partition="0"
    )
    assert value == 7
    assert (
        metric_value(
            "kafka_consumer_lag_messages", group="orchestrator", topic="purchase", partition="1"
        )
        == 0
    )


def test_no_trace_starts_with_a_client_call_but_client_calls_inside_one_are_kept() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from common.observability.tracing import _sampler, start_recording

    start_recording()  # as an exporter does
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=_sampler())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    own = provider.get_tracer("test")

    with own.start_as_current_span("SELECT 1", kind=SpanKind.CLIENT):
        pass  # a health probe's query: no trace of its own
    with (
        own.start_as_current_span("purchase process", kind=SpanKind.CONSUMER),
        own.start_as_current_span("INSERT", kind=SpanKind.CLIENT),
    ):
        pass

    assert [s.name for s in exporter.get_finished_spans()] == ["INSERT", "purchase process"]


def test_without_an_exporter_spans_record_nothing_but_the_context_travels() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from common.observability import tracing

    recording = tracing._recording.is_set()
    tracing._recording.clear()
    try:
        own = TracerProvider(sampler=tracing._sampler()).get_tracer("test")
        headers: dict[str, str] = {}
        with own.start_as_current_span("POST /api/v1/purchases") as request:
            inject_context(headers)
    finally:
        if recording:
            tracing._recording.set()

    assert not request.is_recording()
    trace_id = request.get_span_context().trace_id
    assert headers["traceparent"].startswith(f"00-{trace_id:032x}-")
    flags = int(headers["traceparent"].rsplit("-", 1)[1], 16)
    assert flags & 1 == 0  # not sampled: nobody downstream records it either
