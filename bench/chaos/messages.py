"""The message faults: poison on a saga topic, and the run's messages published twice.

Blocking (librdkafka): run them in a thread. The run's messages are found by key (the
purchase id) between the offsets the topic had when the load began and its end now,
and published again as they were, headers included: a duplicate as a relay's retry
or a consumer's replay would make one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from common.contract.topics import Topic
from common.kafka.messages import MESSAGE_ID_HEADER, ConsumedMessage
from common.kafka.producer import KafkaPublisher
from common.topology import INFRA

Offsets = dict[int, int]  # partition -> offset
TIMEOUT = 10.0


def reader() -> Consumer:
    """A consumer that reads by assigned offsets (it never subscribes nor commits)."""
    return Consumer(
        {
            "bootstrap.servers": INFRA.kafka_bootstrap,
            "group.id": "bench-chaos",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            # Quiet: while Kafka is the fault, its refused connections are expected.
            "log_level": 0,
        }
    )


def end_offsets(topic: str) -> Offsets:
    """Each partition's high watermark: where the next message will go."""
    consumer = reader()
    try:
        partitions = consumer.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def read_since(topic: str, since: Offsets, *, timeout: float = 30.0) -> list[ConsumedMessage]:
    """Every message of `topic` from `since` to the partitions' ends as of now."""
    until = end_offsets(topic)
    left = {p: o for p, o in until.items() if o > since.get(p, 0)}  # partition -> its end
    if not left:
        return []
    consumer = reader()
    found: list[ConsumedMessage] = []
    try:
        consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in left])
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            record = consumer.poll(1.0)
            if record is None:
                continue
            error = record.error()
            if error is None:
                message = ConsumedMessage.from_kafka(record)
                found.append(message)
                done = message.offset + 1 >= left.get(message.partition, 0)
            elif error.code() == KafkaError._PARTITION_EOF:
                done = True
            else:
                raise KafkaException(error)
            if done:
                left.pop(record.partition() or 0, None)
    finally:
        consumer.close()
    return found


def republish(topic: str, since: Offsets, keys: Collection[str]) -> int:
    """Publish again every message of `topic` since `since` whose key is one of `keys`;
    how many."""
    again = [m for m in read_since(topic, since) if m.key in keys]
    publisher = KafkaPublisher()
    for message in again:
        publisher.publish(topic, message.key, message.value, message.headers)
    publisher.flush()
    return len(again)


def poison_bodies(topic: str) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """Values no consumer of `topic` can handle, each with its headers: not JSON, the
    wrong JSON shape, and one that parses but breaks a rule of the topic's events."""
    someone = str(uuid.uuid4())
    if topic == Topic.PURCHASE:
        # The lines' sum is not the amount: the order and the payment would disagree.
        subtle = {
            "purchase_id": someone,
            "customer_id": 1,
            "items": [{"product_id": 1, "quantity": 1, "unit_price": 100}],
            "amount": 999,
            "currency_code": "VND",
        }
        headers = [(MESSAGE_ID_HEADER, f"chaos-{someone}".encode())]
    else:
        # A step change without the message-id it is applied once by.
        subtle = {"purchase_id": someone, "step": "CREATE_ORDER", "status": "SUCCESS"}
        headers = []
    return [
        (b"\x00chaos: not JSON {", []),
        (b"[]", []),
        (json.dumps(subtle).encode(), headers),
    ]


def publish_poison(topic: str, key_prefix: str) -> list[str]:
    """Publish `poison_bodies(topic)`, keyed `<key_prefix>-<n>`; their keys."""
    publisher = KafkaPublisher()
    keys = []
    for n, (value, headers) in enumerate(poison_bodies(topic)):
        key = f"{key_prefix}-{n}"
        publisher.publish(topic, key, value, headers)
        keys.append(key)
    publisher.flush()
    return keys


def dead_lettered(dlq: str, since: Offsets, keys: Collection[str], *, wait: float) -> set[str]:
    """Which of `keys` reached `dlq` since `since`, looking for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        found = {r.key for r in read_since(dlq, since) if r.key in keys}
        if len(found) == len(keys) or time.monotonic() >= deadline:
            return {k for k in found if k is not None}
        time.sleep(1.0)
