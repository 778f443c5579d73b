"""The consumer loop: at-least-once, never skipping, poison to the DLQ.

Per batch from `Consumer.consume()` the loop calls the handler once per message, in
order; the offsets of a batch become committable only when every message of it was
handled. So a committed offset always stands for effects already made durable by the
handler. They are committed synchronously at most every `commit_interval` (1 s), and
whenever the loop goes idle, stops or gives partitions up in a rebalance: one commit a
second under a steady trickle instead of one per batch (each commit is a request the
broker writes to its offsets log). A crash re-delivers what was handled since the last
commit, at most about a second of messages, into idempotent handlers.

- `PoisonMessage`: the message goes to `<topic>.DLQ` with the reason and its origin
  in headers; once that produce is flushed it counts as handled and the loop goes on.
- any other exception: nothing is committed; each partition is rewound to its first
  unhandled offset and the loop backs off (exponential, capped) before consuming
  the same messages again. Messages handled before the failure are committed with
  the next successful batch (handlers are idempotent, so a crash in between only
  repeats them).
- SIGTERM (via `stop_event`): the batch in hand is finished and committed, then the
  consumer leaves the group cleanly.

With a `batch_scope` (the spec's `batch_transaction`) a batch is first tried in one
transaction: by the spec's batch handler, called once for the whole batch under one
batch span (`_batch_spans`), or else by the handler once per message. If anything raises, the batch
rolls back and is handled one by one as above. Offsets are committed after the batch
transaction committed, either way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from common.contract.consumers import BatchHandler, ConsumerSpec, Handler
from common.kafka.config import consumer_config
from common.kafka.messages import ConsumedMessage, PoisonMessage
from common.kafka.metrics import CONSUMED, STATISTICS_INTERVAL_MS, record_lag
from common.kafka.producer import KafkaPublisher, Publisher
from common.kafka.shutdown import stop_event_on_signals
from common.observability.tracing import batch_consumer_span, consumer_span, recording

logger = logging.getLogger(__name__)

# Seconds between offset commits while batches keep coming (see the module's docstring).
COMMIT_INTERVAL_SECONDS = 1.0

DLQ_REASON = "dlq-reason"
DLQ_SOURCE_TOPIC = "dlq-source-topic"
DLQ_SOURCE_PARTITION = "dlq-source-partition"
DLQ_SOURCE_OFFSET = "dlq-source-offset"
DLQ_CONSUMER_GROUP = "dlq-consumer-group"

PartitionKey = tuple[str, int]
RebalanceCallback = Callable[[Any, list[TopicPartition]], None]


class KafkaConsumerLike(Protocol):
    """The part of `confluent_kafka.Consumer` the loop uses (fakes in unit tests)."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None: ...
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]: ...
    def seek(self, partition: TopicPartition) -> None: ...
    def close(self) -> None: ...


class Backoff:
    """Exponential delays, capped, reset by a success."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base, self.cap = base, cap
        self._failures = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2.0**self._failures)
        self._failures += 1
        return delay

    def reset(self) -> None:
        self._failures = 0


def close_stale_db_connections() -> None:
    """Drop DB connections that died or aged while the loop waited (Django only)."""
    from django.conf import settings

    if settings.configured:
        from django.db import close_old_connections

        close_old_connections()


class ConsumerLoop:
    """Runs one `ConsumerSpec` on an injected consumer; `run_consumer` builds the real one."""

    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        consumer: KafkaConsumerLike,
        handler: Handler,
        dlq_publisher: Publisher,
        stop_event: threading.Event,
        max_batch: int,
        poll_timeout: float,
        backoff: Backoff | None = None,
        batch_scope: Callable[[], AbstractContextManager[Any]] | None = None,
        batch_handler: BatchHandler | None = None,
        commit_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_handler is not None and batch_scope is None:
            raise ValueError("a batch handler runs only inside a batch_scope")
        self.spec = spec
        # One transaction around a whole batch (django.db.transaction.atomic): one
        # commit instead of one per message, the handlers' own atomics become savepoints.
        self._batch_scope = batch_scope
        # Called once per batch inside that transaction, instead of `handler` per message.
        self._batch_handler = batch_handler
        self._consumer = consumer
        self._handler = handler
        self._dlq = dlq_publisher
        self._stop = stop_event
        self._max_batch = max_batch
        self._poll_timeout = poll_timeout
        self._backoff = backoff or Backoff()
        # Next offset to commit per partition: handled, not yet committed.
        self._pending: dict[PartitionKey, int] = {}
        # Seconds between commits while batches keep coming (0: after every batch).
        self._commit_interval = commit_interval
        self._clock = clock
        self._committed_at = clock()

    def run(self) -> None:
        """Consume until `stop_event` is set, then commit what was handled and close."""
        self.subscribe()
        logger.info("consumer %s started on %s", self.spec.name, self.spec.topic)
        try:
            while not self._stop.is_set():
                if not self.run_once():
                    self._stop.wait(self._backoff.next_delay())
        finally:
            if self._pending:
                self._commit()
            self._consumer.close()
            logger.info("consumer %s stopped", self.spec.name)

    def subscribe(self) -> None:
        """Join the group; rebalances commit or forget what was handled on lost partitions."""
        self._consumer.subscribe(
            [self.spec.topic], on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _next_batch(self) -> list[Message]:
        """Whatever is ready now, up to a batch; else wait for the first message only.

        `consume(n, timeout)` waits until n messages arrived or the timeout passed, so
        asking for a full batch with a timeout would hold a lone message for up to
        `poll_timeout`: under light load every saga would start up to a second late.
        """
        records = self._consumer.consume(self._max_batch, 0)
        if records:
            return records
        first = self._consumer.consume(1, self._poll_timeout)
        if not first:
            return first
        return first + self._consumer.consume(self._max_batch - 1, 0)

    def run_once(self) -> bool:
        """Consume and handle one batch; answer False when the loop should back off."""
        records = self._next_batch()
        messages = [ConsumedMessage.from_kafka(r) for r in records if self._is_message(r)]
        if not messages:
            # Idle: what was handled since the last commit, the leftovers of a failed
            # batch or of a failed commit.
            return self._commit()
        close_stale_db_connections()
        try:
            handled = self._handle_in_order(messages)
        finally:
            close_stale_db_connections()
        if not handled:
            return False
        if self._clock() - self._committed_at >= self._commit_interval and not self._commit():
            return False
        self._backoff.reset()
        return True

    def _handle_batch_at_once(self, messages: list[ConsumedMessage]) -> bool:
        """Handle the batch inside one `batch_scope`; answer False if anything raised.

        Any exception (a poison message included) rolls the whole batch back; the caller
        then handles it message by message, where each outcome is precise.
        """
        assert self._batch_scope is not None
        try:
            with self._batch_scope():
                if self._batch_handler is not None:
                    with self._batch_spans(messages):
                        self._batch_handler(messages)
                else:
                    for message in messages:
                        with self._span(message):
                            self._handler(message)
        except Exception as exc:
            logger.info("consumer %s: batch fell back to one by one: %r", self.spec.name, exc)
            return False
        for message in messages:
            self._pending[(message.topic, message.partition)] = message.offset + 1
        for topic, handled in Counter(message.topic for message in messages).items():
            CONSUMED.labels(topic, "handled").inc(handled)
        return True

    def _handle_in_order(self, messages: list[ConsumedMessage]) -> bool:
        """Handle each message; on a failure rewind to it and answer False."""
        # A lone message gains nothing from the batch transaction, unless a batch
        # handler applies it in fewer statements than the per-message handler.
        at_once = self._batch_scope is not None and (
            self._batch_handler is not None or len(messages) > 1
        )
        if at_once and self._handle_batch_at_once(messages):
            return True
        for index, message in enumerate(messages):
            try:
                self._handle(message)
            except Exception as exc:
                logger.exception(
                    "consumer %s failed at %s[%s]@%s; will retry",
                    self.spec.name,
                    message.topic,
                    message.partition,
                    message.offset,
                )
                CONSUMED.labels(message.topic, "retried").inc()
                self._rewind(messages[index:])
                if getattr(self._dlq, "broken", False):
                    # A fatal producer error: only a new process gets a new producer.
                    raise RuntimeError(f"consumer {self.spec.name}: DLQ producer broken") from exc
                return False
            self._pending[(message.topic, message.partition)] = message.offset + 1
        return True

    def _handle(self, message: ConsumedMessage) -> None:
        with self._span(message):
            try:
                self._handler(message)
            except PoisonMessage as poison:
                self._dead_letter(message, poison.reason)
                CONSUMED.labels(message.topic, "dead_lettered").inc()
                return
        CONSUMED.labels(message.topic, "handled").inc()

    def _span(self, message: ConsumedMessage) -> AbstractContextManager[Any]:
        """The message's `process` span: continues the trace its producer sent along."""
        return consumer_span(
            message.topic,
            message.headers,
            **{
                "messaging.consumer.group.name": self.spec.group_id,
                "messaging.destination.partition.id": str(message.partition),
                "messaging.kafka.offset": message.offset,
                "messaging.message.id": message.message_id or "",
            },
        )

    @contextlib.contextmanager
    def _batch_spans(self, messages: list[ConsumedMessage]) -> Iterator[None]:
        """One `process` span for a batch, linked to each message's producer context.

        When spans are recorded (an exporter is configured) each message also gets its
        own `process` span below its producer's, covering the batch's handling, so every
        message's trace still shows where it was consumed. Without recording those would
        cost tens of microseconds a message for nothing, and are not made.
        """
        with contextlib.ExitStack() as spans:
            if recording():
                for message in messages:
                    spans.enter_context(self._span(message))
            spans.enter_context(
                batch_consumer_span(
                    self.spec.topic,
                    (message.headers for message in messages),
                    **{"messaging.consumer.group.name": self.spec.group_id},
                )
            )
            yield

    def _dead_letter(self, message: ConsumedMessage, reason: str) -> None:
        """Park the message on the DLQ; raises if the DLQ did not take it (retried)."""
        logger.warning(
            "consumer %s: poison message %s[%s]@%s to %s: %s",
            self.spec.name,
            message.topic,
            message.partition,
            message.offset,
            self.spec.dlq,
            reason,
        )
        headers: dict[str, str | bytes] = {
            **message.headers,
            DLQ_REASON: reason,
            DLQ_SOURCE_TOPIC: message.topic,
            DLQ_SOURCE_PARTITION: str(message.partition),
            DLQ_SOURCE_OFFSET: str(message.offset),
            DLQ_CONSUMER_GROUP: self.spec.group_id,
        }
        self._dlq.publish(self.spec.dlq, message.key, message.value, headers)
        self._dlq.flush()

    def _is_message(self, record: Message) -> bool:
        error = record.error()
        if error is None:
            return True
        if error.fatal():
            raise KafkaException(error)
        if error.code() != KafkaError._PARTITION_EOF:
            logger.warning("consumer %s: %s", self.spec.name, error)
        return False

    def _rewind(self, unhandled: list[ConsumedMessage]) -> None:
        """Seek each partition back to its first unhandled offset, so nothing is skipped."""
        first: dict[PartitionKey, int] = {}
        for message in unhandled:
            first.setdefault((message.topic, message.partition), message.offset)
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                # Partition no longer ours: its new owner starts from the committed
                # offset, which is not past this one.
                logger.warning("seek %s[%s]@%s failed: %s", topic, partition, offset, exc)

    def _commit(self, only: set[PartitionKey] | None = None) -> bool:
        """Commit pending offsets synchronously; answer whether all were accepted."""
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in self._pending.items()
            if only is None or (topic, partition) in only
        ]
        if not offsets:
            return True
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            logger.warning("consumer %s: commit failed: %s", self.spec.name, exc)
            return False
        self._committed_at = self._clock()
        failed = {(tp.topic, tp.partition) for tp in result if tp.error is not None}
        for tp in offsets:
            key = (tp.topic, tp.partition)
            if key not in failed and self._pending.get(key) == tp.offset:
                del self._pending[key]
        if failed:
            logger.warning("consumer %s: commit failed for %s", self.spec.name, sorted(failed))
        return not failed

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Still ours during revoke: commit what was handled, then forget it.
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._commit(only=revoked)
        self._forget(revoked)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Already someone else's: committing could overwrite their progress.
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, partitions: set[PartitionKey]) -> None:
        for key in partitions:
            self._pending.pop(key, None)


def run_consumer(
    spec: ConsumerSpec,
    *,
    stop_event: threading.Event | None = None,
    max_batch: int | None = None,
    poll_timeout: float = 1.0,
    commit_interval: float = COMMIT_INTERVAL_SECONDS,
    handler: Handler | None = None,
    batch_handler: BatchHandler | None = None,
    consumer_overrides: Mapping[str, Any] | None = None,
    producer_overrides: Mapping[str, Any] | None = None,
) -> None:
    """Run `spec` against the configured broker until `stop_event` (default: SIGTERM/SIGINT).

    `handler` replaces the spec's handler (and then the spec's batch handler is not
    used unless `batch_handler` is given too), and the overrides reach librdkafka's
    config, so a test can run a real consumer against its own broker and group.
    """
    if handler is None:
        handler = spec.load_handler()
        batch_handler = batch_handler or spec.load_batch_handler()
    batch_scope = None
    if spec.batch_transaction:
        from django.db import transaction

        batch_scope = transaction.atomic
    ConsumerLoop(
        spec,
        consumer=Consumer(
            {
                # librdkafka reports each partition's lag in its statistics (no extra calls).
                "statistics.interval.ms": STATISTICS_INTERVAL_MS,
                "stats_cb": lambda stats: record_lag(spec.group_id, stats),
                **consumer_config(spec.group_id, consumer_overrides),
            }
        ),
        handler=handler,
        dlq_publisher=KafkaPublisher(config_overrides=producer_overrides),
        stop_event=stop_event or stop_event_on_signals(),
        max_batch=max_batch or spec.batch_size,
        poll_timeout=poll_timeout,
        batch_scope=batch_scope,
        batch_handler=batch_handler,
        commit_interval=commit_interval,
    ).run()
