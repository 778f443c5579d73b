"""Reading and re-driving a dead-letter topic (`<topic>.DLQ`), for `manage.py kafka_dlq`.

The consumer loop parks a message it can never handle on `<topic>.DLQ` with the reason
and its origin in `dlq-*` headers (consumer.py). `read_dead_letters` shows what sits
there; `replay` publishes each message again, key, value and own headers unchanged, to
its source topic, where the consumer handles it as any delivery: consumers dedupe (by
purchase id, by message id), so a message replayed twice has the effect of one.

Replay remembers how far it got as the offsets of its own consumer group on the DLQ
(`REPLAY_GROUP_ID`), committed only after the re-published messages were delivered:
a second replay starts after what the first one re-published. A message that comes
back to the DLQ after a replay carries the count in `dlq-replays`; replay skips one
that was replayed `max_replays` times already (still poison: a person reads it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from common.kafka.config import consumer_config
from common.kafka.consumer import (
    DLQ_CONSUMER_GROUP,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)
from common.kafka.messages import decode_headers
from common.kafka.producer import DeliveryError, KafkaPublisher, Publisher

# The consumer group whose committed offsets on each DLQ say what was replayed already.
REPLAY_GROUP_ID = "dlq-replay"
# How many times a message was replayed (set by `replay`, kept by the consumer's DLQ copy).
DLQ_REPLAYS = "dlq-replays"
DLQ_HEADERS = frozenset(
    {DLQ_REASON, DLQ_SOURCE_TOPIC, DLQ_SOURCE_PARTITION, DLQ_SOURCE_OFFSET, DLQ_CONSUMER_GROUP}
)
METADATA_TIMEOUT = 10.0
# Re-published messages are flushed and their offsets committed this many at a time.
REPLAY_CHUNK = 500


class DlqError(Exception):
    """The DLQ cannot be read or replayed (no such topic, broker away, delivery failed)."""


def dlq_topic(topic: str) -> str:
    """`purchase` -> `purchase.DLQ`; a name that already ends in `.DLQ` stays."""
    return topic if topic.endswith(".DLQ") else f"{topic}.DLQ"


@dataclass(frozen=True)
class DeadLetter:
    """One message on a DLQ, with where it came from and why it was parked."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: str | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_kafka(cls, message: Message) -> DeadLetter:
        key = message.key()
        kind, millis = message.timestamp()
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            timestamp=datetime.fromtimestamp(millis / 1000, UTC) if kind and millis > 0 else None,
            key=key.decode(errors="replace") if isinstance(key, bytes) else key,
            value=message.value() or b"",
            headers=decode_headers(message.headers()),
        )

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode(errors="replace")

    @property
    def reason(self) -> str:
        return self.header(DLQ_REASON)

    @property
    def source_topic(self) -> str:
        """The topic it was consumed from: its header, else the DLQ's name without `.DLQ`."""
        return self.header(DLQ_SOURCE_TOPIC) or self.topic.removesuffix(".DLQ")

    @property
    def source(self) -> str:
        """`topic[partition]@offset` of the message it is a copy of."""
        partition, offset = self.header(DLQ_SOURCE_PARTITION), self.header(DLQ_SOURCE_OFFSET)
        return f"{self.source_topic}[{partition or '?'}]@{offset or '?'}"

    @property
    def replays(self) -> int:
        """How many times this message was replayed before it came back here."""
        text = self.header(DLQ_REPLAYS)
        return int(text) if text.isdigit() else 0

    def replay_headers(self) -> dict[str, str | bytes]:
        """Its own headers (message id, trace context) without the DLQ's, plus the count."""
        kept: dict[str, str | bytes] = {
            name: value for name, value in self.headers.items() if name not in DLQ_HEADERS
        }
        kept[DLQ_REPLAYS] = str(self.replays + 1)
        return kept


@dataclass
class DlqListing:
    """What sits on a DLQ: the messages read, and per partition its bounds and how far
    replay got (`replayed_to`: the replay group's next offset, or the low watermark)."""

    topic: str
    messages: list[DeadLetter]
    low: dict[int, int]
    high: dict[int, int]
    replayed_to: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.high[p] - self.low[p] for p in self.high)

    @property
    def pending(self) -> int:
        """Messages replay has not taken yet."""
        return sum(self.high[p] - max(self.replayed_to[p], self.low[p]) for p in self.high)

    def is_replayed(self, letter: DeadLetter) -> bool:
        return letter.offset < self.replayed_to.get(letter.partition, 0)


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    skipped: list[DeadLetter] = field(default_factory=list)  # replayed max_replays times
    dry_run: bool = False


class DlqReader:
    """A consumer on one DLQ that reads without joining a group (assign, not subscribe)
    and commits, only when asked, as the replay group."""

    def __init__(self, topic: str, overrides: dict[str, Any] | None = None) -> None:
        self.topic = dlq_topic(topic)
        self._consumer = Consumer(consumer_config(REPLAY_GROUP_ID, overrides))
        try:
            self.partitions = self._partitions()
            self.low, self.high = self._watermarks()
            self.replayed_to = self._committed()
        except BaseException:
            self._consumer.close()
            raise

    def close(self) -> None:
        self._consumer.close()

    def _partitions(self) -> list[int]:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=METADATA_TIMEOUT)
        except KafkaException as exc:
            raise DlqError(f"cannot read {self.topic}: {exc}") from exc
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            raise DlqError(f"no topic {self.topic} on the broker")
        return sorted(found.partitions)

    def _watermarks(self) -> tuple[dict[int, int], dict[int, int]]:
        low, high = {}, {}
        for partition in self.partitions:
            tp = TopicPartition(self.topic, partition)
            try:
                low[partition], high[partition] = self._consumer.get_watermark_offsets(
                    tp, timeout=METADATA_TIMEOUT
                )
            except KafkaException as exc:
                raise DlqError(f"cannot read {self.topic}[{partition}]: {exc}") from exc
        return low, high

    def _committed(self) -> dict[int, int]:
        tps = [TopicPartition(self.topic, p) for p in self.partitions]
        try:
            committed = self._consumer.committed(tps, timeout=METADATA_TIMEOUT)
        except KafkaException as exc:
            raise DlqError(f"cannot read the replay group's offsets: {exc}") from exc
        # No commit yet (a negative offset): nothing was replayed, start at the beginning.
        return {tp.partition: max(tp.offset, self.low[tp.partition]) for tp in committed}

    def read(self, start: dict[int, int], timeout: float = 30.0) -> Iterator[DeadLetter]:
        """The messages from `start` (per partition) to the high watermarks read when the
        reader was made; messages parked after that wait for the next run."""
        wanted = {p: s for p, s in start.items() if s < self.high[p]}
        if not wanted:
            return
        self._consumer.assign([TopicPartition(self.topic, p, s) for p, s in wanted.items()])
        deadline = time.monotonic() + timeout
        while wanted:
            if time.monotonic() > deadline:
                raise DlqError(f"{self.topic}: timed out reading partitions {sorted(wanted)}")
            for message in self._consumer.consume(500, 1.0):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise DlqError(f"{self.topic}: {error}")
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                if partition not in wanted or offset >= self.high[partition]:
                    continue
                yield DeadLetter.from_kafka(message)
                if offset + 1 >= self.high[partition]:
                    del wanted[partition]

    def commit(self, next_offsets: dict[int, int]) -> None:
        """Record, as the replay group, that replay is done up to these offsets."""
        if not next_offsets:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in next_offsets.items()]
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise DlqError(f"cannot commit the replay offsets: {exc}") from exc
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed:
            raise DlqError(f"cannot commit the replay offsets of {failed}")
        self.replayed_to.update(next_offsets)


def read_dead_letters(
    topic: str, *, limit: int, pending_only: bool = False, overrides: dict[str, Any] | None = None
) -> DlqListing:
    """The newest `limit` messages of `<topic>.DLQ` (only those replay has not taken yet
    with `pending_only`), oldest first. Commits nothing."""
    reader = DlqReader(topic, overrides)
    try:
        start = {}
        for partition in reader.partitions:
            first = reader.replayed_to[partition] if pending_only else reader.low[partition]
            start[partition] = max(first, reader.high[partition] - limit)
        messages = sorted(
            reader.read(start),
            key=lambda m: (m.timestamp or datetime.min.replace(tzinfo=UTC), m.partition, m.offset),
        )
        return DlqListing(
            topic=reader.topic,
            messages=messages[-limit:],
            low=reader.low,
            high=reader.high,
            replayed_to=dict(reader.replayed_to),
        )
    finally:
        reader.close()


def replay(
    topic: str,
    *,
    limit: int | None = None,
    max_replays: int = 3,
    dry_run: bool = False,
    publisher: Publisher | None = None,
    overrides: dict[str, Any] | None = None,
) -> ReplayReport:
    """Publish what `<topic>.DLQ` holds past the replay group's offsets (at most `limit`)
    to each message's source topic, then commit the group's offsets past it. A dry run
    reports what it would publish and changes nothing."""
    report = ReplayReport(dry_run=dry_run)
    reader = DlqReader(topic, overrides)
    try:
        out = publisher or KafkaPublisher()
        done: dict[int, int] = {}
        in_chunk = 0
        for letter in reader.read(dict(reader.replayed_to)):
            if limit is not None and len(report.replayed) + len(report.skipped) >= limit:
                break
            if letter.replays >= max_replays:
                report.skipped.append(letter)
            else:
                report.replayed.append(letter)
                in_chunk += 1
                if not dry_run:
                    out.publish(
                        letter.source_topic, letter.key, letter.value, letter.replay_headers()
                    )
            done[letter.partition] = letter.offset + 1
            if in_chunk >= REPLAY_CHUNK and not dry_run:
                _deliver_and_commit(out, reader, done)
                done, in_chunk = {}, 0
        if not dry_run:
            _deliver_and_commit(out, reader, done)
        return report
    finally:
        reader.close()


def _deliver_and_commit(out: Publisher, reader: DlqReader, done: dict[int, int]) -> None:
    """Commit past the re-published messages only once the broker has them all."""
    try:
        out.flush()
    except DeliveryError as exc:
        raise DlqError(f"replay not delivered, offsets not committed: {exc}") from exc
    reader.commit(done)
