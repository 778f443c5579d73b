"""The consumer loop's guarantees, against in-memory fakes (no broker).

Given a partitioned log, when the loop handles it, then offsets are committed only
for handled messages, poison goes to the DLQ, and a failed message comes back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from confluent_kafka import Message, TopicPartition

from common.contract.consumers import CONSUMERS, BatchHandler, ConsumerSpec, Handler
from common.contract.topics import Topic
from common.kafka.consumer import (
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    Backoff,
    ConsumerLoop,
    RebalanceCallback,
)
from common.kafka.messages import ConsumedMessage, PoisonMessage
from common.kafka.producer import DeliveryError, DeliveryFailure

TOPIC = Topic.PURCHASE


def handler_never_loaded() -> Handler:
    raise AssertionError("these tests hand the loop its handler")


SPEC = ConsumerSpec(name="test", topic=Topic.PURCHASE, group_id="g", handler=handler_never_loaded)


def record(topic: str, partition: int, offset: int, value: bytes) -> Message:
    return Message(
        topic=topic,
        partition=partition,
        offset=offset,
        key=f"key-{offset}".encode(),
        value=value,
        headers=[("message-id", str(offset).encode())],
    )


class FakeConsumer:
    """A broker-less consumer: a log per partition, a position per partition."""

    def __init__(self, logs: dict[int, list[bytes]]) -> None:
        self.logs = {(TOPIC, p): values for p, values in logs.items()}
        self.position = {tp: 0 for tp in self.logs}
        self.commits: list[dict[tuple[str, int], int]] = []
        self.closed = False
        self.callbacks: dict[str, RebalanceCallback | None] = {}

    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        self.callbacks = {"on_revoke": on_revoke, "on_lost": on_lost}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        batch: list[Message] = []
        for (topic, partition), values in sorted(self.logs.items()):
            while self.position[(topic, partition)] < len(values) and len(batch) < num_messages:
                offset = self.position[(topic, partition)]
                batch.append(record(topic, partition, offset, values[offset]))
                self.position[(topic, partition)] += 1
        return batch

    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]:
        assert asynchronous is False, "offsets must be committed synchronously"
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        return offsets

    def seek(self, partition: TopicPartition) -> None:
        self.position[(partition.topic, partition.partition)] = partition.offset

    def close(self) -> None:
        self.closed = True

    def committed(self) -> dict[tuple[str, int], int]:
        merged: dict[tuple[str, int], int] = {}
        for commit in self.commits:
            merged.update(commit)
        return merged


class FakePublisher:
    """Records DLQ messages; `fail_flushes` flushes raise DeliveryError first."""

    def __init__(self, fail_flushes: int = 0) -> None:
        self.queued: list[tuple[str, Any, bytes, dict[str, Any]]] = []
        self.delivered: list[tuple[str, Any, bytes, dict[str, Any]]] = []
        self.fail_flushes = fail_flushes

    def publish(self, topic: str, key: Any, value: bytes, headers: Any = None) -> None:
        self.queued.append((topic, key, value, dict(headers or {})))

    def flush(self, timeout: float = 0) -> None:
        queued, self.queued = self.queued, []
        if self.fail_flushes:
            self.fail_flushes -= 1
            raise DeliveryError([DeliveryFailure(q[0], q[1], {}, "broker down") for q in queued])
        self.delivered.extend(queued)


class RecordingHandler:
    """Handles messages, raising what `script` says for a given value."""

    def __init__(self, consumer: FakeConsumer, script: dict[bytes, list[Exception]] | None = None):
        self.consumer = consumer
        self.script = script or {}
        self.handled: list[bytes] = []
        self.commits_seen: list[int] = []

    def __call__(self, message: ConsumedMessage) -> None:
        self.commits_seen.append(len(self.consumer.commits))
        errors = self.script.get(message.value)
        if errors:
            raise errors.pop(0)
        self.handled.append(message.value)


def make_loop(
    consumer: FakeConsumer,
    handler: Callable[[ConsumedMessage], None],
    publisher: FakePublisher | None = None,
    stop_event: threading.Event | None = None,
    max_batch: int = 10,
    batch_scope: Callable[[], Any] | None = None,
    batch_handler: BatchHandler | None = None,
    commit_interval: float = 0.0,
    clock: Callable[[], float] | None = None,
) -> ConsumerLoop:
    return ConsumerLoop(
        SPEC,
        consumer=consumer,
        handler=handler,
        dlq_publisher=publisher or FakePublisher(),
        stop_event=stop_event or threading.Event(),
        max_batch=max_batch,
        poll_timeout=0,
        backoff=Backoff(base=0, cap=0),
        batch_scope=batch_scope,
        batch_handler=batch_handler,
        commit_interval=commit_interval,
        **({"clock": clock} if clock is not None else {}),
    )


def test_a_batch_is_committed_once_after_every_message_was_handled() -> None:
    consumer = FakeConsumer({0: [b"a", b"b"], 1: [b"c"]})
    handler = RecordingHandler(consumer)

    assert make_loop(consumer, handler).run_once() is True

    assert handler.handled == [b"a", b"b", b"c"]
    assert handler.commits_seen == [0, 0, 0]  # nothing committed while handling
    assert consumer.commits == [{(TOPIC, 0): 2, (TOPIC, 1): 1}]


def test_an_empty_poll_commits_nothing() -> None:
    consumer = FakeConsumer({0: []})

    assert make_loop(consumer, RecordingHandler(consumer)).run_once() is True

    assert consumer.commits == []


def test_a_poison_message_goes_to_the_dlq_and_the_next_one_is_handled() -> None:
    consumer = FakeConsumer({0: [b'{"n": 1}', b"{not json", b'{"n": 2}']})
    publisher = FakePublisher()
    handled: list[Any] = []

    def handler(message: ConsumedMessage) -> None:
        handled.append(message.json())  # raises PoisonMessage for what is not JSON

    assert make_loop(consumer, handler, publisher).run_once() is True

    assert handled == [{"n": 1}, {"n": 2}]
    [(topic, key, value, headers)] = publisher.delivered
    assert (topic, key, value) == (f"{TOPIC}.DLQ", "key-1", b"{not json")
    assert headers[DLQ_REASON].startswith("value is not JSON")
    assert headers[DLQ_SOURCE_TOPIC] == TOPIC
    assert headers[DLQ_SOURCE_PARTITION] == "0"
    assert headers[DLQ_SOURCE_OFFSET] == "1"
    assert headers["message-id"] == b"1"  # original headers travel along
    assert consumer.committed() == {(TOPIC, 0): 3}


def test_a_transient_error_commits_nothing_and_redelivers_from_the_failed_message() -> None:
    consumer = FakeConsumer({0: [b"a", b"b", b"c"], 1: [b"d"]})
    handler = RecordingHandler(consumer, {b"b": [RuntimeError("db down")]})
    loop = make_loop(consumer, handler)

    assert loop.run_once() is False
    assert consumer.commits == []
    assert consumer.position == {(TOPIC, 0): 1, (TOPIC, 1): 0}  # rewound to b and d

    assert loop.run_once() is True
    assert handler.handled == [b"a", b"b", b"c", b"d"]  # a once, nothing skipped
    assert consumer.committed() == {(TOPIC, 0): 3, (TOPIC, 1): 1}


def test_a_dlq_that_does_not_take_the_message_is_retried_not_skipped() -> None:
    consumer = FakeConsumer({0: [b"bad", b"good"]})
    publisher = FakePublisher(fail_flushes=1)

    def handler(message: ConsumedMessage) -> None:
        if message.value == b"bad":
            raise PoisonMessage("unreadable")

    loop = make_loop(consumer, handler, publisher)

    assert loop.run_once() is False
    assert consumer.commits == [] and publisher.delivered == []

    assert loop.run_once() is True
    assert [d[2] for d in publisher.delivered] == [b"bad"]
    assert consumer.committed() == {(TOPIC, 0): 2}


def test_stop_finishes_the_batch_commits_and_closes() -> None:
    consumer = FakeConsumer({0: [b"a", b"b", b"c"]})
    stop = threading.Event()
    handled: list[bytes] = []

    def handler(message: ConsumedMessage) -> None:
        stop.set()  # SIGTERM arrives while the first message is handled
        handled.append(message.value)

    make_loop(consumer, handler, stop_event=stop, max_batch=2).run()

    assert handled == [b"a", b"b"]
    assert consumer.committed() == {(TOPIC, 0): 2}
    assert consumer.closed is True


def test_revoked_partitions_get_their_handled_offsets_committed_lost_ones_do_not() -> None:
    consumer = FakeConsumer({0: [b"a", b"b"], 1: [b"c", b"d"]})
    handler = RecordingHandler(consumer, {b"d": [RuntimeError("transient")]})
    loop = make_loop(consumer, handler)
    loop.subscribe()
    loop.run_once()  # a, b, c handled; d failed: nothing committed yet
    on_lost, on_revoke = consumer.callbacks["on_lost"], consumer.callbacks["on_revoke"]
    assert on_lost is not None and on_revoke is not None

    on_lost(consumer, [TopicPartition(TOPIC, 1)])
    on_revoke(consumer, [TopicPartition(TOPIC, 0)])

    assert consumer.commits == [{(TOPIC, 0): 2}]


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trickle(consumer: FakeConsumer, *values: bytes) -> None:
    """More messages arrive on partition 0."""
    consumer.logs[(TOPIC, 0)].extend(values)


def test_under_a_steady_trickle_offsets_are_committed_once_an_interval() -> None:
    consumer, clock = FakeConsumer({0: []}), Clock()
    handler = RecordingHandler(consumer)
    loop = make_loop(consumer, handler, commit_interval=1.0, clock=clock)

    for at, value in ((0.1, b"a"), (0.5, b"b"), (0.9, b"c")):
        clock.now = at
        trickle(consumer, value)
        assert loop.run_once() is True
    assert consumer.commits == []  # handled, committable, not committed yet

    clock.now = 1.2
    trickle(consumer, b"d")
    assert loop.run_once() is True

    assert handler.handled == [b"a", b"b", b"c", b"d"]
    assert consumer.commits == [{(TOPIC, 0): 4}]  # one commit for the second's four


def test_going_idle_commits_what_was_handled_since_the_last_commit() -> None:
    consumer, clock = FakeConsumer({0: [b"a", b"b"]}), Clock()
    loop = make_loop(consumer, RecordingHandler(consumer), commit_interval=1.0, clock=clock)

    assert loop.run_once() is True
    assert consumer.commits == []
    assert loop.run_once() is True  # nothing more came

    assert consumer.commits == [{(TOPIC, 0): 2}]


def test_a_failed_message_is_never_committed_while_the_ones_before_it_are_on_time() -> None:
    consumer, clock = FakeConsumer({0: [b"a", b"bad", b"c"]}), Clock()
    handler = RecordingHandler(consumer, {b"bad": [RuntimeError("transient")]})
    loop = make_loop(consumer, handler, commit_interval=1.0, clock=clock)

    clock.now = 2.0
    assert loop.run_once() is False  # "bad" failed: back off, nothing committed
    assert consumer.commits == []
    assert loop.run_once() is True  # "bad" again, then "c"

    assert handler.handled == [b"a", b"bad", b"c"]
    assert consumer.committed() == {(TOPIC, 0): 3}


def test_stopping_and_a_revoke_commit_what_the_interval_held_back() -> None:
    consumer, clock = FakeConsumer({0: [b"a"], 1: [b"b"]}), Clock()
    stop = threading.Event()
    loop = make_loop(
        consumer, RecordingHandler(consumer), stop_event=stop, commit_interval=1.0, clock=clock
    )
    loop.subscribe()
    assert loop.run_once() is True and consumer.commits == []
    on_revoke = consumer.callbacks["on_revoke"]
    assert on_revoke is not None

    on_revoke(consumer, [TopicPartition(TOPIC, 1)])
    assert consumer.commits == [{(TOPIC, 1): 1}]

    stop.set()
    loop.run()
    assert consumer.commits == [{(TOPIC, 1): 1}, {(TOPIC, 0): 1}]
    assert consumer.closed is True


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(base=0.5, cap=3.0)

    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize("name", ["purchases", "purchase-results"])
def test_registry_declares_each_consumer_with_its_dlq(name: str) -> None:
    spec = CONSUMERS[name]

    assert spec.name == name
    assert spec.dlq == f"{spec.topic}.DLQ"


class FakeTransaction:
    """A batch scope that keeps what its batch handled only when the batch succeeds."""

    def __init__(self, store: list[Any]) -> None:
        self.store = store
        self.entered = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.entered += 1
        mark = len(self.store)
        try:
            yield
        except BaseException:
            del self.store[mark:]  # rolled back
            raise


def batch_loop(consumer: FakeConsumer, handler: Any, scope: FakeTransaction) -> ConsumerLoop:
    loop = make_loop(consumer, handler)
    loop._batch_scope = scope
    return loop


def test_a_batch_scope_handles_the_whole_batch_in_one_transaction() -> None:
    consumer = FakeConsumer({0: [b'{"n": 1}', b'{"n": 2}'], 1: [b'{"n": 3}']})
    stored: list[Any] = []
    scope = FakeTransaction(stored)

    assert batch_loop(consumer, lambda m: stored.append(m.json()), scope).run_once() is True

    assert scope.entered == 1
    assert sorted(s["n"] for s in stored) == [1, 2, 3]
    assert consumer.committed() == {(TOPIC, 0): 2, (TOPIC, 1): 1}


def test_a_poison_message_rolls_the_batch_back_and_it_is_handled_one_by_one() -> None:
    consumer = FakeConsumer({0: [b'{"n": 1}', b"{not json", b'{"n": 2}']})
    publisher = FakePublisher()
    stored: list[Any] = []
    scope = FakeTransaction(stored)
    loop = batch_loop(consumer, lambda m: stored.append(m.json()), scope)
    loop._dlq = publisher

    assert loop.run_once() is True

    assert stored == [{"n": 1}, {"n": 2}]  # once each: the rolled-back attempt left nothing
    assert [value for _, _, value, _ in publisher.delivered] == [b"{not json"]
    assert consumer.committed() == {(TOPIC, 0): 3}


# ------------------------------------------------------------------ batch handlers


class RecordingBatchHandler:
    """Stores a whole batch at once, raising what `script` holds (one error per call)."""

    def __init__(
        self, consumer: FakeConsumer, stored: list[Any], script: list[Exception] | None = None
    ) -> None:
        self.consumer = consumer
        self.stored = stored
        self.script = script or []
        self.calls: list[list[int]] = []
        self.commits_seen: list[int] = []

    def __call__(self, messages: list[ConsumedMessage]) -> None:
        self.calls.append([m.offset for m in messages])
        self.commits_seen.append(len(self.consumer.commits))
        self.stored.extend(m.json() for m in messages)  # raises PoisonMessage for non-JSON
        if self.script:
            raise self.script.pop(0)


def test_a_batch_handler_is_called_once_for_the_batch_and_offsets_are_committed_after() -> None:
    consumer = FakeConsumer({0: [b'{"n": 1}', b'{"n": 2}'], 1: [b'{"n": 3}']})
    stored: list[Any] = []
    scope = FakeTransaction(stored)
    batch = RecordingBatchHandler(consumer, stored)
    one_by_one = RecordingHandler(consumer)

    loop = make_loop(consumer, one_by_one, batch_scope=scope, batch_handler=batch)
    assert loop.run_once() is True

    assert batch.calls == [[0, 1, 0]]  # once, the whole batch in offset order per partition
    assert one_by_one.handled == []
    assert scope.entered == 1
    assert batch.commits_seen == [0]  # nothing committed while the batch was applied
    assert sorted(s["n"] for s in stored) == [1, 2, 3]
    assert consumer.commits == [{(TOPIC, 0): 2, (TOPIC, 1): 1}]


def test_a_lone_message_also_goes_to_the_batch_handler() -> None:
    consumer = FakeConsumer({0: [b'{"n": 1}']})
    stored: list[Any] = []
    batch = RecordingBatchHandler(consumer, stored)

    loop = make_loop(
        consumer,
        RecordingHandler(consumer),
        batch_scope=FakeTransaction(stored),
        batch_handler=batch,
    )
    assert loop.run_once() is True

    assert batch.calls == [[0]]
    assert consumer.committed() == {(TOPIC, 0): 1}


def test_a_poison_message_in_a_batch_falls_back_to_one_by_one_and_goes_to_the_dlq() -> None:
    consumer = FakeConsumer({0: [b'{"n": 1}', b"{not json", b'{"n": 2}']})
    publisher = FakePublisher()
    stored: list[Any] = []
    batch = RecordingBatchHandler(consumer, stored)

    loop = make_loop(
        consumer,
        lambda m: stored.append(m.json()),
        publisher,
        batch_scope=FakeTransaction(stored),
        batch_handler=batch,
    )
    assert loop.run_once() is True

    assert len(batch.calls) == 1
    assert stored == [{"n": 1}, {"n": 2}]  # the rolled-back batch left nothing
    [(topic, _, value, headers)] = publisher.delivered
    assert (topic, value) == (f"{TOPIC}.DLQ", b"{not json")
    assert headers[DLQ_REASON].startswith("value is not JSON")
    assert headers[DLQ_SOURCE_OFFSET] == "1"
    assert consumer.committed() == {(TOPIC, 0): 3}


def test_a_failed_batch_goes_one_by_one_where_a_transient_error_commits_nothing() -> None:
    consumer = FakeConsumer({0: [b'"a"', b'"b"', b'"c"']})
    stored: list[Any] = []
    batch = RecordingBatchHandler(consumer, stored, [RuntimeError("deadlock"), RuntimeError("x")])
    one_by_one = RecordingHandler(consumer, {b'"b"': [RuntimeError("db down")]})
    loop = make_loop(consumer, one_by_one, batch_scope=FakeTransaction(stored), batch_handler=batch)

    assert loop.run_once() is False  # batch failed, then b failed one by one
    assert stored == []
    assert one_by_one.handled == [b'"a"']
    assert consumer.commits == []
    assert consumer.position == {(TOPIC, 0): 1}  # rewound to b

    assert loop.run_once() is True  # b, c: the batch fails again, one by one succeeds
    assert batch.calls == [[0, 1, 2], [1, 2]]
    assert one_by_one.handled == [b'"a"', b'"b"', b'"c"']
    assert consumer.committed() == {(TOPIC, 0): 3}

    consumer.logs[(TOPIC, 0)].append(b'"d"')
    assert loop.run_once() is True  # the next batch goes to the batch handler again
    assert batch.calls[-1] == [3]
    assert stored == ["d"]
    assert consumer.committed() == {(TOPIC, 0): 4}


def test_a_batch_handler_needs_a_batch_transaction() -> None:
    with pytest.raises(ValueError, match="batch_transaction"):
        ConsumerSpec(
            name="t",
            topic=Topic.PURCHASE,
            group_id="g",
            handler=handler_never_loaded,
            batch_handler=lambda: lambda batch: None,
        )
    consumer = FakeConsumer({0: []})
    with pytest.raises(ValueError, match="batch_scope"):
        make_loop(consumer, RecordingHandler(consumer), batch_handler=lambda batch: None)


def test_the_purchase_results_consumer_has_a_batch_handler() -> None:
    # Which function it is: purchase_svc/tests/purchases/test_consumers.py (it needs the
    # purchase service's models).
    spec = CONSUMERS["purchase-results"]

    assert spec.batch_transaction
    assert spec.batch_handler is not None
