"""Reading and replaying a DLQ (common.kafka.dlq), against the running platform's Kafka.

Each test gets a throwaway topic and its `.DLQ` (deleted afterwards), so the counts
are exact whatever else the platform's own DLQs hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common.kafka.consumer import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_TOPIC
from common.kafka.dlq import (
    DLQ_REPLAYS,
    DlqError,
    dlq_topic,
    read_dead_letters,
    replay,
)
from common.topology import INFRA


@pytest.fixture
def topic() -> Iterator[str]:
    """A fresh source topic and its DLQ, one partition each (offsets are exact)."""
    name = f"dlq-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": INFRA.kafka_bootstrap})
    created = admin.create_topics(
        [NewTopic(t, num_partitions=1, replication_factor=1) for t in (name, f"{name}.DLQ")]
    )
    for future in created.values():
        future.result(30)
    yield name
    for future in admin.delete_topics([name, f"{name}.DLQ"]).values():
        future.result(30)


def park(topic: str, *letters: tuple[str, bytes, dict[str, str]]) -> None:
    """Put messages on `topic`.DLQ as the consumer loop does: key, value, headers."""
    producer = Producer({"bootstrap.servers": INFRA.kafka_bootstrap})
    for index, (key, value, headers) in enumerate(letters):
        parked = {
            DLQ_REASON: f"reason {index}",
            DLQ_SOURCE_TOPIC: topic,
            DLQ_SOURCE_OFFSET: str(100 + index),
            **headers,
        }
        producer.produce(f"{topic}.DLQ", key=key, value=value, headers=list(parked.items()))
    assert producer.flush(10) == 0


def read_all(topic: str) -> list[Any]:
    """Every message of a one-partition topic, read from its start."""
    consumer = Consumer(
        {"bootstrap.servers": INFRA.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:8]}"}
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        if high <= low:
            return []
        consumer.assign([TopicPartition(topic, 0, low)])
        found: list[Any] = []
        while len(found) < high - low:
            found += [m for m in consumer.consume(100, 5.0) if m.error() is None]
        return found
    finally:
        consumer.close()


def test_the_dlq_of_a_topic_is_named_once() -> None:
    assert dlq_topic("purchase") == "purchase.DLQ"
    assert dlq_topic("purchase.DLQ") == "purchase.DLQ"


@pytest.mark.live
def test_listing_shows_each_message_with_its_reason_and_source(topic: str) -> None:
    park(topic, ("k1", b"{not json", {}), ("k2", b"[]", {}))

    listing = read_dead_letters(topic, limit=50)

    assert (listing.total, listing.pending) == (2, 2)
    assert [(m.key, m.value, m.reason) for m in listing.messages] == [
        ("k1", b"{not json", "reason 0"),
        ("k2", b"[]", "reason 1"),
    ]
    assert listing.messages[0].source == f"{topic}[?]@100"
    assert not any(listing.is_replayed(m) for m in listing.messages)


@pytest.mark.live
def test_listing_shows_the_newest_when_limited(topic: str) -> None:
    park(topic, *((f"k{i}", b"x", {}) for i in range(5)))

    listing = read_dead_letters(topic, limit=2)

    assert [m.key for m in listing.messages] == ["k3", "k4"]
    assert listing.total == 5


@pytest.mark.live
def test_replay_republishes_to_the_source_with_its_own_headers(topic: str) -> None:
    park(topic, ("k1", b'{"a": 1}', {"message-id": "42", "traceparent": "00-ab-cd-01"}))

    report = replay(topic)

    assert [m.key for m in report.replayed] == ["k1"]
    (sent,) = read_all(topic)
    headers = {k: v.decode() for k, v in sent.headers()}
    assert (sent.key(), sent.value()) == (b"k1", b'{"a": 1}')
    assert headers == {"message-id": "42", "traceparent": "00-ab-cd-01", DLQ_REPLAYS: "1"}


@pytest.mark.live
def test_a_second_replay_does_not_resend_what_the_first_replayed(topic: str) -> None:
    park(topic, ("k1", b"1", {}), ("k2", b"2", {}), ("k3", b"3", {}))

    first = replay(topic, limit=2)
    second = replay(topic)
    third = replay(topic)

    assert [m.key for m in first.replayed] == ["k1", "k2"]
    assert [m.key for m in second.replayed] == ["k3"]
    assert third.replayed == []
    assert [m.key() for m in read_all(topic)] == [b"k1", b"k2", b"k3"]
    listing = read_dead_letters(topic, limit=50)
    assert listing.pending == 0
    assert all(listing.is_replayed(m) for m in listing.messages)


@pytest.mark.live
def test_a_dry_run_sends_and_remembers_nothing(topic: str) -> None:
    park(topic, ("k1", b"1", {}))

    report = replay(topic, dry_run=True)

    assert [m.key for m in report.replayed] == ["k1"]
    assert read_all(topic) == []
    assert read_dead_letters(topic, limit=50).pending == 1


@pytest.mark.live
def test_a_message_replayed_too_often_is_skipped_and_left_for_a_person(topic: str) -> None:
    park(topic, ("again", b"x", {DLQ_REPLAYS: "3"}), ("fresh", b"y", {DLQ_REPLAYS: "1"}))

    report = replay(topic, max_replays=3)

    assert [m.key for m in report.skipped] == ["again"]
    assert [m.key for m in report.replayed] == ["fresh"]
    (sent,) = read_all(topic)
    assert dict(sent.headers())[DLQ_REPLAYS] == b"2"


@pytest.mark.live
def test_a_topic_without_a_dlq_is_refused() -> None:
    with pytest.raises(DlqError, match="no topic"):
        read_dead_letters(f"nosuch-{uuid.uuid4().hex[:8]}", limit=5)
